package crashtest

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/internal/powerfs"
	"github.com/go-ftl2/ftlstate/internal/testfs"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

var (
	rounds      = flag.Int("crash.rounds", 25, "kill -9 rounds per TestCrash")
	powerRounds = flag.Int("crash.power", 25, "power-cut rounds per TestPowerLoss")
	maxKill     = flag.Duration("crash.maxkill", 600*time.Millisecond, "kill the child at a random moment up to this long after it has opened the store (one round in eight: up to 250ms after it starts)")
	torn        = flag.Bool("crash.torn", true, "power loss: let 3 crashes in 4 keep part of the unsynced writes (torn writes)")
	seedFlag    = flag.Uint64("crash.seed", 0, "seed of the kill times, the crashes' torn writes and the children's maintenance timing (0: a new one; every run logs its seed)")
)

// Opener opens the backend stored in dir. The child process opens the
// store with it, and so does the parent to check each round.
type Opener func(dir string) (state.Backend, error)

// Compacter is implemented by backends that compact their store in place
// (bbolt): CompactInPlace replaces the store's file with a compacted copy,
// keeping the old one as backup, and closes the backend, as `ftlstate
// compact` does. The workload then compacts and reopens the store.
type Compacter interface {
	CompactInPlace(backup string) error
	Path() string
}

const (
	envDir   = "FTLSTATE_CRASHTEST_DIR"
	envRound = "FTLSTATE_CRASHTEST_ROUND"
	envSeed  = "FTLSTATE_CRASHTEST_SEED"
	// envExpect marks the test process MustCatch runs: there the harness
	// is expected to fail.
	envExpect = "FTLSTATE_CRASHTEST_EXPECT_FAILURE"
	writers   = 8
	// maint is the writer number of the maintenance goroutine, which
	// imports (Replace) and compacts while the other writers wait.
	maint    = writers
	ackTag   = "crashtest-ack"
	readyTag = "crashtest-ready"
	// lostTag begins every report of a lost or damaged acknowledged state.
	lostTag = "acknowledged state lost"
	// earlyKill bounds the kill time of rounds that kill the child while
	// it starts: about the time a child takes to open a store.
	earlyKill = 250 * time.Millisecond
)

// Stats sums up a crash run.
type Stats struct {
	Rounds       int // rounds run
	Acked        int // acknowledged changes checked
	InFlightSeen int // writers whose change in flight at the kill was found applied
	KilledEarly  int // rounds where the child was killed before it finished opening
	Maintenance  int // acknowledged imports (Replace) and compactions, of Acked
	// Power-loss runs only: rounds whose crash threw away unsynced
	// changes of the store's directory or files, and the unsynced writes
	// and truncates the crashes saw, and kept (torn writes).
	CrashesLosing, UnsyncedOps, KeptOps int
}

// Run is the kill -9 harness: it runs as test t (see the package
// documentation), SIGKILLs the writing child, and checks the store. In the
// child process it never returns.
func Run(t *testing.T, open Opener) Stats { return run(t, open, false) }

// PowerLoss is the power-loss harness: like Run, but the child writes
// through a powerfs mount over the store's directory, and each kill comes
// with a power cut that throws away what was not synced; the store is
// checked as the backing directory holds it, durable state only. It skips
// t where FUSE cannot be mounted (see testfs.FUSE). In the child process
// it never returns.
func PowerLoss(t *testing.T, open Opener) Stats { return run(t, open, true) }

func run(t *testing.T, open Opener, power bool) Stats {
	if dir := os.Getenv(envDir); dir != "" {
		round, _ := strconv.Atoi(os.Getenv(envRound))
		seed, _ := strconv.ParseUint(os.Getenv(envSeed), 10, 64)
		child(dir, round, seed, open)
		os.Exit(0) // not reached: the child writes until it is killed
	}
	n, mode := *rounds, "kill -9"
	if power {
		n, mode = *powerRounds, "power loss"
		testfs.FUSE(t)
	}
	if testing.Short() && n == 25 {
		t.Log("short mode: 5 rounds")
		n = 5
	}
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	store := t.TempDir()
	var mnt string // the power-loss mount point
	if power {
		mnt = filepath.Join(t.TempDir(), "mnt")
		if err := os.Mkdir(mnt, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		if t.Failed() {
			t.Logf("crashtest: rerun with -crash.seed=%d for the same kill times and crashes", seed)
		}
	}()
	t.Logf("crashtest: %s, %d rounds, seed %d (-crash.seed=%d repeats the kill times and crashes), store in %s", mode, n, seed, seed, store)

	var st Stats
	m := newModel()
	for round := 1; round <= n; round++ {
		r := roundPlan{
			round: round,
			early: rng.IntN(8) == 0,
			wait:  time.Duration(rng.Int64N(int64(*maxKill))),
			child: rng.Uint64(),
			torn:  rng.IntN(4) != 0 && *torn,
			crash: rng.Uint64(),
		}
		if r.early { // while the child starts and opens the store
			r.wait = time.Duration(rng.Int64N(int64(earlyKill)))
		}
		acked, early, report := runRound(t, store, mnt, r)
		if early {
			st.KilledEarly++
		}
		var inflight int
		m, inflight = verifyWithin(t, m, store, round, acked, open)
		st.Rounds++
		for _, n := range acked {
			st.Acked += n
		}
		st.Maintenance += acked[maint]
		st.InFlightSeen += inflight
		if report != nil {
			if report.Files+report.Dirs > 0 {
				st.CrashesLosing++
			}
			st.UnsyncedOps += report.Ops
			st.KeptOps += report.Kept
		}
		if t.Failed() {
			t.Fatalf("crashtest: round %d failed (seed %d: -crash.seed=%d); store kept in %s", round, seed, seed, store)
		}
		if round%100 == 0 && round < n {
			t.Logf("crashtest: %d rounds of %d, %d acknowledged changes checked so far", round, n, st.Acked)
		}
	}
	t.Logf("crashtest: %s, %d rounds, %d acknowledged changes checked (%d of them imports and compactions), %d in-flight changes found applied, %d kills during open",
		mode, st.Rounds, st.Acked, st.Maintenance, st.InFlightSeen, st.KilledEarly)
	if power {
		t.Logf("crashtest: %d of %d crashes threw unsynced changes away; torn writes: %d of %d unsynced writes and truncates kept",
			st.CrashesLosing, st.Rounds, st.KeptOps, st.UnsyncedOps)
	}
	if st.Acked == 0 {
		t.Errorf("crashtest: no change was acknowledged in %d rounds: the run proved nothing (seed %d)", st.Rounds, seed)
	}
	return st
}

// roundPlan is what the seed decides about a round.
type roundPlan struct {
	round int
	early bool          // kill at wait after the start, not after ready
	wait  time.Duration // how long the child writes before the kill
	child uint64        // seed of the child's maintenance timing
	torn  bool          // power loss: the crash keeps torn writes
	crash uint64        // power loss: seed of the torn writes
}

// runRound runs the child of one round against the store in dir:
// directly, or (power loss) through a powerfs mount on mnt, crashed at the
// kill.
func runRound(t *testing.T, store, mnt string, r roundPlan) (acked [writers + 1]int, early bool, report *powerfs.Report) {
	t.Helper()
	if mnt == "" {
		acked, early = runChild(t, store, r, nil)
		return acked, early, nil
	}
	pfs, err := powerfs.Mount(store, mnt, &powerfs.Options{Torn: r.torn, Seed: r.crash})
	if err != nil {
		t.Fatalf("round %d: %v", r.round, err)
	}
	defer pfs.Close() // after a failure; a crash already unmounted it
	acked, early = runChild(t, mnt, r, func() {
		rep, err := pfs.Crash()
		if err != nil {
			t.Fatalf("round %d: crash: %v", r.round, err)
		}
		report = &rep
	})
	return acked, early, report
}

// runChild starts the child for round r on the store in dir, kills it as
// r says, calls crash (if not nil) right after the kill, and returns how
// many changes each writer acknowledged (ops 0..n-1 of writer w).
func runChild(t *testing.T, dir string, r roundPlan, crash func()) (acked [writers + 1]int, early bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), envDir+"="+dir, envRound+"="+strconv.Itoa(r.round), envSeed+"="+strconv.FormatUint(r.child, 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited { // a failure below: never leave the child running
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	var (
		mu    sync.Mutex
		ready = make(chan struct{})
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
				close(ready)
			case len(f) == 3 && f[0] == ackTag:
				w, _ := strconv.Atoi(f[1])
				i, _ := strconv.Atoi(f[2])
				if w >= 0 && w <= maint && i > last[w] {
					last[w] = i
				}
			}
			mu.Unlock()
		}
	}()
	if !r.early {
		select {
		case <-ready:
		case <-done:
		case <-time.After(2 * time.Minute):
			t.Fatalf("round %d: the child did not open the store within 2 minutes", r.round)
		}
	}
	time.Sleep(r.wait)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("round %d: kill: %v", r.round, err)
	}
	if crash != nil {
		crash()
	}
	<-done
	err = cmd.Wait()
	waited = true
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("round %d: child ended before the kill: %v", r.round, err)
	}
	mu.Lock()
	defer mu.Unlock()
	select {
	case <-ready:
	default:
		early = true
	}
	for w := range acked {
		acked[w] = last[w] + 1
	}
	return acked, early
}

// An op is the i-th change of writer w in a round; op derives it, so the
// parent knows what each acknowledgment means.
type op struct {
	kind     int // see opFor
	host     string
	resource string
	removed  string // Update, import: the host it removes
	typ      string
}

const (
	kindImport  = 6 // maintenance: Replace with an import of the store's own export, changed
	kindCompact = 7 // maintenance: CompactInPlace and reopen (or, without Compacter, an unchanged import)
)

func opFor(w, i int) op {
	if w == maint {
		if i%2 == 1 {
			return op{kind: kindCompact}
		}
		return op{kind: kindImport, host: fmt.Sprintf("w%d-h%d", w, (i/2)%3), removed: fmt.Sprintf("w%d-h%d", w, (i/2+1)%3)}
	}
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

// worker is the child's store: the writers hold mu shared for each change,
// the maintenance goroutine exclusively, so that an import or a compaction
// sees no change in flight and loses none.
type worker struct {
	dir  string
	open Opener

	mu sync.RWMutex
	b  state.Backend
	st *state.State
}

func (c *worker) openStore() error {
	var b state.Backend
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		// The previous child's lock is released by the kernel at its death,
		// which the parent has waited for; retry briefly all the same.
		if b, err = c.open(c.dir); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	st, err := state.Open(b)
	if err != nil {
		return fmt.Errorf("state.Open: %w", err)
	}
	c.b, c.st = b, st
	return nil
}

func (c *worker) apply(o op, w, round, i int) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	st := c.st
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

// maintain runs maintenance op i with every writer waiting.
func (c *worker) maintain(o op, round, i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cb, ok := c.b.(Compacter); ok && o.kind == kindCompact {
		return c.compact(cb)
	}
	return c.importChanged(o, round, i)
}

// importChanged exports the store, changes the maintenance writer's hosts
// in the document (for an import op) and imports it: `ftlstate export`,
// an edit, `ftlstate import`.
func (c *worker) importChanged(o op, round, i int) error {
	var buf bytes.Buffer
	if err := export.Write(&buf, c.st, nil); err != nil {
		return err
	}
	doc, err := export.Read(&buf, nil)
	if err != nil {
		return err
	}
	if o.kind == kindImport {
		if doc.Hosts == nil {
			doc.Hosts = map[string]*state.HostState{}
		}
		doc.Hosts[o.host] = &state.HostState{Name: o.host, Address: "10.0.0.3", Vars: hostVars(maint, round, i)}
		delete(doc.Hosts, o.removed)
	}
	buf.Reset()
	if err := statefile.EncodeContents(&buf, doc, nil); err != nil {
		return err
	}
	return export.Import(c.st, &buf, nil)
}

// compact compacts the store in place, keeping PATH.backup, as `ftlstate
// compact` does, and reopens it.
func (c *worker) compact(cb Compacter) error {
	if err := cb.CompactInPlace(cb.Path() + ".backup"); err != nil {
		return err
	}
	if err := c.st.Close(); err != nil { // the backend is closed already
		return err
	}
	return c.openStore()
}

func child(dir string, round int, seed uint64, open Opener) {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "crashtest child: "+format+"\n", args...)
		os.Exit(3)
	}
	time.AfterFunc(2*time.Minute, func() { fail("not killed after 2 minutes") })
	c := &worker{dir: dir, open: open}
	if err := c.openStore(); err != nil {
		fail("%v", err)
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
				if err := c.apply(opFor(w, i), w, round, i); err != nil {
					fail("writer %d op %d: %v", w, i, err)
				}
				say(fmt.Sprintf("%s %d %d\n", ackTag, w, i))
			}
		})
	}
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 2))
		for i := 0; ; i++ {
			time.Sleep(time.Duration(10+rng.IntN(50)) * time.Millisecond)
			if err := c.maintain(opFor(maint, i), round, i); err != nil {
				fail("maintenance op %d: %v", i, err)
			}
			say(fmt.Sprintf("%s %d %d\n", ackTag, maint, i))
		}
	})
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
	return &model{hosts: maps.Clone(m.hosts), resources: maps.Clone(m.resources)}
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
	case 5:
		delete(m.resources, o.resource)
	case kindImport:
		m.hosts[o.host] = v
		delete(m.hosts, o.removed)
	case kindCompact: // changes no record
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

// probeHost is the host the parent adds and removes after each check, to
// see that the store accepts writes.
const probeHost = "crashtest-probe"

// verifyTimeout bounds the check of a round: reading a store a round
// wrote takes well under a second, but damaged data may make a backend
// loop forever.
const verifyTimeout = time.Minute

// A verdict is what verify found.
type verdict struct {
	got      *model   // what the store holds, the model of the next round
	inflight int      // writers whose op in flight was found applied
	problems []string // failures, each naming the round
}

// verifyWithin runs verify and reports its problems on t, failing t if it
// does not end within verifyTimeout (the check is left running: the test
// binary ends with the test). It returns the model for the next round.
func verifyWithin(t *testing.T, m *model, dir string, round int, acked [writers + 1]int, open Opener) (*model, int) {
	t.Helper()
	done := make(chan verdict, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- verdict{problems: []string{fmt.Sprintf("round %d: %s: the check panicked: %v", round, lostTag, p)}}
			}
		}()
		done <- verify(m.clone(), dir, round, acked, open)
	}()
	select {
	case v := <-done:
		for _, p := range v.problems {
			t.Error(p)
		}
		if v.got == nil {
			t.FailNow()
		}
		return v.got, v.inflight
	case <-time.After(verifyTimeout):
		t.Fatalf("round %d: %s: checking the store (reopen, Check, read, one new write) did not end within %v (a loop on damaged data?)", round, lostTag, verifyTimeout)
		return nil, 0
	}
}

// verify reopens the store, checks it against the model m plus each
// writer's acknowledged ops (with at most one more op in flight), and
// checks that it accepts a write. A nil got means the store could not be
// read at all.
func verify(m *model, dir string, round int, acked [writers + 1]int, open Opener) (v verdict) {
	lost := func(format string, args ...any) {
		v.problems = append(v.problems, fmt.Sprintf("round %d: %s: %s", round, lostTag, fmt.Sprintf(format, args...)))
	}
	st := reopen(dir, open, lost)
	if st == nil {
		return v
	}
	defer func() {
		if err := st.Close(); err != nil {
			v.problems = append(v.problems, fmt.Sprintf("round %d: close: %v", round, err))
		}
	}()
	got := newModel()
	for _, h := range st.AllHosts() {
		ver, err := decodeHost(h)
		if err != nil {
			lost("host %s: %v", h.Name, err)
			continue
		}
		got.hosts[h.Name] = ver
	}
	for k, r := range st.AllResources() {
		ver, err := decodeResource(r)
		if err != nil {
			lost("resource %s: %v", k, err)
			continue
		}
		got.resources[k] = ver
	}
	for w := range maint + 1 {
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
			v.inflight++
		default:
			lost("writer %d acknowledged ops 0..%d: store does not hold that state (nor the one after the op in flight)\n%s",
				w, acked[w]-1, describeDiff(want, have))
		}
	}
	for _, records := range []map[string]version{got.hosts, got.resources} {
		for k, ver := range records {
			if !strings.HasPrefix(k, fmt.Sprintf("w%d-", ver.w)) {
				lost("record %q not written where writer %d writes", k, ver.w)
			}
		}
	}
	if p := probe(st, round); p != "" {
		v.problems = append(v.problems, p)
	}
	v.got = got
	return v
}

// reopen opens the store in dir after a crash, runs state.Check on it and
// loads it, reporting failures to lost; nil when it cannot be loaded.
func reopen(dir string, open Opener, lost func(format string, args ...any)) *state.State {
	b, err := open(dir)
	if err != nil {
		lost("reopen: %v", err)
		return nil
	}
	if err := state.Check(b); err != nil {
		lost("Check: %v", err)
	}
	st, err := state.Open(b)
	if err != nil {
		lost("state.Open: %v", err)
		return nil
	}
	return st
}

// probe adds and removes probeHost, to see that the store accepts writes
// after the crash; it returns the problem, or "".
func probe(st *state.State, round int) string {
	if err := st.AddHost(&state.HostState{Name: probeHost, Address: "10.9.9.9"}); err != nil {
		return fmt.Sprintf("round %d: the store refuses a write after the crash: %v", round, err)
	}
	if err := st.RemoveHost(probeHost); err != nil {
		return fmt.Sprintf("round %d: the store refuses a removal after the crash: %v", round, err)
	}
	return ""
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

// lostLine finds the harness's report of a lost acknowledged state.
var lostLine = regexp.MustCompile(`round \d+: ` + lostTag + `: .*`)

// MustCatch is the proof that the power-loss harness can fail: it runs
// PowerLoss on open (a backend that skips an fsync) in a separate run of
// the test binary, and fails t unless that run failed because an
// acknowledged change was lost or damaged. It skips t where FUSE cannot be
// mounted. t must be a top-level test.
func MustCatch(t *testing.T, open Opener) {
	if os.Getenv(envExpect) != "" || os.Getenv(envDir) != "" {
		PowerLoss(t, open) // the run expected to fail, or its child
		return
	}
	testfs.FUSE(t)
	// Without torn writes a crash keeps exactly the synced state, which
	// such a backend leaves behind old: the loss shows in the first round
	// that acknowledged something. (Torn writes can leave its files
	// damaged in ways that take longer to find.)
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v", "-crash.power=8", "-crash.torn=false")
	cmd.Env = append(os.Environ(), envExpect+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the power-loss harness passed a backend that skips an fsync:\n%s", out)
	}
	found := lostLine.Find(out)
	if found == nil {
		t.Fatalf("the power-loss harness failed, but not because an acknowledged change was lost:\n%s", out)
	}
	t.Logf("caught: %s", found)
}
