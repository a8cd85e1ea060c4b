package crashtest

import (
	"bufio"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/state"
)

var (
	rounds  = flag.Int("crash.rounds", 25, "kill -9 rounds per crash test")
	maxKill = flag.Duration("crash.maxkill", 600*time.Millisecond, "kill the child at a random moment up to this long after it starts")
)

// Opener opens the backend stored in dir. The child process opens the
// store with it, and so does the parent to check each round.
type Opener func(dir string) (state.Backend, error)

const (
	envDir   = "FTLSTATE_CRASHTEST_DIR"
	envRound = "FTLSTATE_CRASHTEST_ROUND"
	writers  = 8
	ackTag   = "crashtest-ack"
	readyTag = "crashtest-ready"
)

// Stats sums up a crash run.
type Stats struct {
	Rounds       int // rounds run
	Acked        int // acknowledged changes checked
	InFlightSeen int // rounds where a change in flight at the kill was found applied
	KilledEarly  int // rounds where the child was killed before it finished opening
}

// Run runs the harness as test t (see the package documentation). In the
// child process it never returns.
func Run(t *testing.T, open Opener) Stats {
	if dir := os.Getenv(envDir); dir != "" {
		round, _ := strconv.Atoi(os.Getenv(envRound))
		child(dir, round, open)
		os.Exit(0) // not reached: the child writes until it is killed
	}
	if testing.Short() && *rounds == 25 {
		t.Log("short mode: 5 rounds")
		*rounds = 5
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("crashtest: %d rounds, seed %d, store in %s", *rounds, seed, dir)

	var st Stats
	m := newModel()
	for round := 1; round <= *rounds; round++ {
		acked, early := runChild(t, dir, round, time.Duration(rng.Int64N(int64(*maxKill))))
		if early {
			st.KilledEarly++
		}
		inflight := m.verify(t, dir, round, acked, open)
		st.Rounds++
		for _, n := range acked {
			st.Acked += n
		}
		st.InFlightSeen += inflight
		if t.Failed() {
			t.Fatalf("round %d failed (seed %d); store kept in %s", round, seed, dir)
		}
	}
	t.Logf("crashtest: %d rounds, %d acknowledged changes checked, %d in-flight changes found applied, %d kills during open",
		st.Rounds, st.Acked, st.InFlightSeen, st.KilledEarly)
	return st
}

// runChild starts the child for round, kills it after wait, and returns
// how many changes each writer acknowledged (ops 0..n-1 of writer w).
func runChild(t *testing.T, dir string, round int, wait time.Duration) (acked [writers]int, early bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), envDir+"="+dir, envRound+"="+strconv.Itoa(round))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		ready bool
		done  = make(chan struct{})
	)
	for w := range acked {
		acked[w] = -1
	}
	last := acked
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() { // a line cut by the kill has no newline and is dropped
			f := strings.Fields(sc.Text())
			mu.Lock()
			switch {
			case len(f) == 1 && f[0] == readyTag:
				ready = true
			case len(f) == 3 && f[0] == ackTag:
				w, _ := strconv.Atoi(f[1])
				i, _ := strconv.Atoi(f[2])
				if w >= 0 && w < writers && i > last[w] {
					last[w] = i
				}
			}
			mu.Unlock()
		}
	}()
	time.Sleep(wait)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("round %d: kill: %v", round, err)
	}
	<-done
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("round %d: child ended before the kill: %v", round, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for w := range acked {
		acked[w] = last[w] + 1
	}
	return acked, !ready
}

// An op is the i-th change of writer w in a round; op derives it, so the
// parent knows what each acknowledgment means.
type op struct {
	kind     int // see op()
	host     string
	resource string
	removed  string // Update: the host it removes
	typ      string
}

func opFor(w, i int) op {
	o := op{kind: i % 6}
	switch o.kind {
	case 0, 1, 4:
		o.host = fmt.Sprintf("w%d-h%d", w, i%7)
	case 2, 5:
		o.resource = fmt.Sprintf("w%d-r%d", w, i%5)
		o.typ = fmt.Sprintf("t%d", i%3)
	case 3:
		o.host = fmt.Sprintf("w%d-uh%d", w, i%4)
		o.resource = fmt.Sprintf("w%d-ur%d", w, i%4)
		o.removed = fmt.Sprintf("w%d-h%d", w, (i+3)%7)
		o.typ = "pair"
	}
	return o
}

// hostVars and resData are the values op i of writer w in round writes.
func hostVars(w, round, i int) map[string]any {
	return map[string]any{
		"w": int64(w), "r": int64(round), "i": int64(i),
		"pad":  strings.Repeat("x", (i%5)*300),
		"list": []any{int64(i), float64(i) + 0.5, "s", true, nil},
	}
}

func resData(w, round, i int) map[string]any {
	return map[string]any{"w": int64(w), "r": int64(round), "i": int64(i), "nested": map[string]any{"i": int64(i)}}
}

func (o op) apply(st *state.State, w, round, i int) error {
	switch o.kind {
	case 0, 1:
		return st.AddHost(&state.HostState{Name: o.host, Address: "10.0.0.1", Port: 22, Vars: hostVars(w, round, i)})
	case 2:
		return st.AddResource(o.resource, &state.ResourceState{Type: o.typ, ID: strconv.Itoa(i), Data: resData(w, round, i)})
	case 3:
		return st.Update(func(tx *state.Tx) error {
			if err := tx.AddResource(o.resource, &state.ResourceState{Type: o.typ, ID: strconv.Itoa(i), Data: resData(w, round, i)}); err != nil {
				return err
			}
			if err := tx.AddHost(&state.HostState{Name: o.host, Address: "10.0.0.2", Vars: hostVars(w, round, i)}); err != nil {
				return err
			}
			return tx.RemoveHost(o.removed)
		})
	case 4:
		return st.RemoveHost(o.host)
	default:
		return st.RemoveResource(o.resource)
	}
}

func child(dir string, round int, open Opener) {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "crashtest child: "+format+"\n", args...)
		os.Exit(3)
	}
	time.AfterFunc(2*time.Minute, func() { fail("not killed after 2 minutes") })
	var b state.Backend
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		// The previous child's lock is released by the kernel at its death,
		// which the parent has waited for; retry briefly all the same.
		if b, err = open(dir); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		fail("open: %v", err)
	}
	st, err := state.Open(b)
	if err != nil {
		fail("state.Open: %v", err)
	}
	var mu sync.Mutex
	say := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		os.Stdout.WriteString(s) // one write per line, no buffering
	}
	say(readyTag + "\n")
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				if err := opFor(w, i).apply(st, w, round, i); err != nil {
					fail("writer %d op %d: %v", w, i, err)
				}
				say(fmt.Sprintf("%s %d %d\n", ackTag, w, i))
			}
		})
	}
	wg.Wait()
}

// model is what the parent expects the store to hold: per record, the
// (round, op) that wrote it.
type model struct {
	hosts     map[string]version
	resources map[string]version
}

type version struct {
	w, round, i int
	typ         string
}

func newModel() *model {
	return &model{hosts: map[string]version{}, resources: map[string]version{}}
}

func (m *model) clone() *model {
	c := newModel()
	for k, v := range m.hosts {
		c.hosts[k] = v
	}
	for k, v := range m.resources {
		c.resources[k] = v
	}
	return c
}

func (m *model) applyOp(w, round, i int) {
	o := opFor(w, i)
	v := version{w: w, round: round, i: i, typ: o.typ}
	switch o.kind {
	case 0, 1:
		m.hosts[o.host] = v
	case 2:
		m.resources[o.resource] = v
	case 3:
		m.resources[o.resource] = v
		m.hosts[o.host] = v
		delete(m.hosts, o.removed)
	case 4:
		delete(m.hosts, o.host)
	default:
		delete(m.resources, o.resource)
	}
}

// only returns the records of writer w.
func (m *model) only(w int) *model {
	c := newModel()
	prefix := fmt.Sprintf("w%d-", w)
	for k, v := range m.hosts {
		if strings.HasPrefix(k, prefix) {
			c.hosts[k] = v
		}
	}
	for k, v := range m.resources {
		if strings.HasPrefix(k, prefix) {
			c.resources[k] = v
		}
	}
	return c
}

// verify reopens the store, checks it against the model plus each writer's
// acknowledged ops (with at most one more op in flight), adopts what it
// found as the model for the next round, and returns how many writers had
// their in-flight op applied.
func (m *model) verify(t *testing.T, dir string, round int, acked [writers]int, open Opener) (inflight int) {
	t.Helper()
	b, err := open(dir)
	if err != nil {
		t.Fatalf("round %d: reopen after kill: %v", round, err)
	}
	if err := state.Check(b); err != nil {
		t.Errorf("round %d: Check after kill: %v", round, err)
	}
	st, err := state.Open(b)
	if err != nil {
		t.Fatalf("round %d: state.Open after kill: %v", round, err)
	}
	defer st.Close()
	got := newModel()
	for _, h := range st.AllHosts() {
		v, err := decodeHost(h)
		if err != nil {
			t.Errorf("round %d: host %s: %v", round, h.Name, err)
			continue
		}
		got.hosts[h.Name] = v
	}
	for k, r := range st.AllResources() {
		v, err := decodeResource(r)
		if err != nil {
			t.Errorf("round %d: resource %s: %v", round, k, err)
			continue
		}
		got.resources[k] = v
	}
	for w := range writers {
		want := m.only(w)
		for i := range acked[w] {
			want.applyOp(w, round, i)
		}
		next := want.clone()
		next.applyOp(w, round, acked[w])
		have := got.only(w)
		switch {
		case reflect.DeepEqual(have, want):
		case reflect.DeepEqual(have, next):
			inflight++
		default:
			t.Errorf("round %d: writer %d acknowledged ops 0..%d: store does not hold that state (nor the one after the op in flight)\n%s",
				round, w, acked[w]-1, describeDiff(want, have))
		}
	}
	for _, records := range []map[string]version{got.hosts, got.resources} {
		for k, v := range records {
			if !strings.HasPrefix(k, fmt.Sprintf("w%d-", v.w)) {
				t.Errorf("round %d: record %q not written where writer %d writes", round, k, v.w)
			}
		}
	}
	*m = *got
	return inflight
}

func decodeHost(h *state.HostState) (version, error) {
	w, r, i, ok := ints(h.Vars)
	if !ok {
		return version{}, fmt.Errorf("vars not written by the harness: %#v", h.Vars)
	}
	if want := hostVars(w, r, i); !reflect.DeepEqual(want, h.Vars) {
		return version{}, fmt.Errorf("vars damaged:\nwant %#v\n got %#v", want, h.Vars)
	}
	o := opFor(w, i)
	return version{w: w, round: r, i: i, typ: o.typ}, nil
}

func decodeResource(res *state.ResourceState) (version, error) {
	w, r, i, ok := ints(res.Data)
	if !ok {
		return version{}, fmt.Errorf("data not written by the harness: %#v", res.Data)
	}
	if want := resData(w, r, i); !reflect.DeepEqual(want, res.Data) || res.ID != strconv.Itoa(i) {
		return version{}, fmt.Errorf("data damaged: %#v", res)
	}
	if res.Type != opFor(w, i).typ {
		return version{}, fmt.Errorf("type %q, want %q", res.Type, opFor(w, i).typ)
	}
	return version{w: w, round: r, i: i, typ: res.Type}, nil
}

func ints(m map[string]any) (w, r, i int, ok bool) {
	wv, ok1 := m["w"].(int64)
	rv, ok2 := m["r"].(int64)
	iv, ok3 := m["i"].(int64)
	return int(wv), int(rv), int(iv), ok1 && ok2 && ok3
}

func describeDiff(want, have *model) string {
	var lines []string
	diff := func(kind string, a, b map[string]version) {
		keys := map[string]bool{}
		for k := range a {
			keys[k] = true
		}
		for k := range b {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			av, aok := a[k]
			bv, bok := b[k]
			if aok != bok || av != bv {
				lines = append(lines, fmt.Sprintf("  %s %s: want %v (present %v), have %v (present %v)", kind, k, av, aok, bv, bok))
			}
		}
	}
	diff("host", want.hosts, have.hosts)
	diff("resource", want.resources, have.resources)
	return strings.Join(lines, "\n")
}
