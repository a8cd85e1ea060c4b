package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

// The test binary re-executed as a holder that writes (liveWriter).
const (
	liveWriterEnv  = "FTLSTATE_TEST_LIVE_WRITER"
	liveCountEnv   = "FTLSTATE_TEST_LIVE_N"
	liveDelayEnv   = "FTLSTATE_TEST_LIVE_DELAY"
	liveHostFormat = "node-%05d"
)

// liveWriter opens the store at p for writing through state.Open, as any
// program using the library does (so it serves live reads), prints
// "serving SOCKET", commits $FTLSTATE_TEST_LIVE_N updates one after the
// other (a host and its resource each), printing "ack SERIAL HOST" once
// each has returned, prints "done", and closes the store when its stdin
// closes, printing "closed".
func liveWriter(p string) {
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	var b state.Backend
	var err error
	if kindOf(p) == kindJSON {
		b, err = filebackend.Open(p, nil)
	} else {
		b, err = boltbackend.Open(p, nil)
	}
	if err != nil {
		fail(err)
	}
	st, err := state.Open(b)
	if err != nil {
		fail(err)
	}
	// One operation stays pending for the whole run (pending, check).
	if _, err := st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: "vm:pending", Data: map[string]any{"client_token": "t-1"}}); err != nil && !errors.Is(err, state.ErrInvalid) {
		fail(err)
	}
	sock, serr := b.(interface{ Serving() (string, error) }).Serving()
	if serr != nil {
		fail(serr)
	}
	fmt.Println("serving", sock)
	n, _ := strconv.Atoi(os.Getenv(liveCountEnv))
	delay, _ := time.ParseDuration(os.Getenv(liveDelayEnv))
	start, _ := st.Len()
	for i := start; i < start+n; i++ {
		name := fmt.Sprintf(liveHostFormat, i)
		err := st.Update(func(tx *state.Tx) error {
			if err := tx.AddResource(fmt.Sprintf("vm:%05d", i), &state.ResourceState{Type: "vm", ID: strconv.Itoa(i), Data: map[string]any{"ip": fmt.Sprintf("192.0.2.%d", i%250)}}); err != nil {
				return err
			}
			return tx.AddHost(&state.HostState{Name: name, Address: fmt.Sprintf("192.0.2.%d", i%250), Port: 22, User: "admin",
				Group: []string{"web", "db", "cache"}[i%3], Vars: map[string]any{"i": i, "db_password": "pw-" + strconv.Itoa(i)}})
		})
		if err != nil {
			fail(err)
		}
		fmt.Printf("ack %d %s\n", st.Metadata().Serial, name)
		time.Sleep(delay)
	}
	fmt.Println("done")
	io.Copy(io.Discard, os.Stdin)
	if err := st.Close(); err != nil {
		fail(err)
	}
	fmt.Println("closed")
}

// writer is a running liveWriter.
type writer struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	socket string
	done   chan struct{} // closed at "done"
	closed chan struct{} // closed at "closed" (or when the process ends)

	mu sync.Mutex
	// acks maps each host acknowledged so far to its serial.
	acks map[string]uint64
}

func startWriter(t *testing.T, p string, n int, delay time.Duration) *writer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), liveWriterEnv+"="+p, liveCountEnv+"="+strconv.Itoa(n), liveDelayEnv+"="+delay.String())
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	w := &writer{cmd: cmd, stdin: stdin, done: make(chan struct{}), closed: make(chan struct{}), acks: map[string]uint64{}}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	require.True(t, sc.Scan(), "the writer starts")
	line := sc.Text()
	require.True(t, strings.HasPrefix(line, "serving "), line)
	w.socket = strings.TrimPrefix(line, "serving ")
	go func() {
		defer close(w.closed)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 3 && f[0] == "ack":
				s, _ := strconv.ParseUint(f[1], 10, 64)
				w.mu.Lock()
				w.acks[f[2]] = s
				w.mu.Unlock()
			case len(f) == 1 && f[0] == "done":
				close(w.done)
			case len(f) == 1 && f[0] == "closed":
				return
			default:
				t.Errorf("writer: %s", sc.Text())
			}
		}
	}()
	return w
}

func (w *writer) pid() int { return w.cmd.Process.Pid }

// acked returns a copy of the acknowledgements so far.
func (w *writer) acked() map[string]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.acks)
}

func (w *writer) waitAcks(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for len(w.acked()) < n {
		require.True(t, time.Now().Before(deadline), "the writer acknowledged %d of %d", len(w.acked()), n)
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *writer) isDone() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// close makes the writer close the store, and waits for it.
func (w *writer) close(t *testing.T) {
	t.Helper()
	w.stdin.Close()
	select {
	case <-w.closed:
	case <-time.After(time.Minute):
		t.Fatal("the writer does not close")
	}
	require.NoError(t, w.cmd.Wait())
}

func holderLine(p string, pid int) string {
	return fmt.Sprintf("%s: read from the running holder, pid %d", p, pid)
}

// stores are the local kinds of store the live tests run on.
var liveStores = []string{"state.db", "state.json"}

// The read commands work on a store a process is writing, from its
// running holder: what they print decodes, serials only grow, nothing
// acknowledged is missing and nothing unacknowledged appears. Writes keep
// failing with the lock message.
func TestLive_ReadCommandsWhileAHolderWrites(t *testing.T) {
	for _, name := range liveStores {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, name)
			w := startWriter(t, p, 300, 5*time.Millisecond)
			w.waitAcks(t, 10)
			pid := w.pid()
			listed := map[string]bool{} // every host some read returned
			var lastSerial uint64
			first := filepath.Join(dir, "first.json")
			for round := 0; round < 3 || !w.isDone(); round++ {
				before := w.acked()

				r := bin(t, nil, "--state", p, "export")
				require.Equal(t, 0, r.code, r.stderr)
				assert.Contains(t, r.stderr, holderLine(p, pid))
				doc, err := statefile.Decode(strings.NewReader(r.stdout), nil)
				require.NoError(t, err, "round %d: the export decodes", round)
				assert.GreaterOrEqual(t, doc.Metadata.Serial, lastSerial, "serials only grow")
				lastSerial = doc.Metadata.Serial
				for h := range before {
					assert.Contains(t, doc.Hosts, h, "acknowledged before the export began")
				}
				for h := range doc.Hosts {
					listed[h] = true
				}
				if round == 0 {
					require.NoError(t, os.WriteFile(first, []byte(r.stdout), 0o600))
				}

				r = bin(t, nil, "--state", p, "hosts", "-o", "json", "--show-secrets")
				require.Equal(t, 0, r.code, r.stderr)
				var hosts []*state.HostState
				require.NoError(t, json.Unmarshal([]byte(r.stdout), &hosts))
				names := map[string]bool{}
				for _, h := range hosts {
					names[h.Name] = true
					listed[h.Name] = true
				}
				for h := range before {
					assert.True(t, names[h], "hosts lists %s, acknowledged before", h)
				}

				for _, args := range [][]string{
					{"pending"},
					{"host", "show", "node-00003"},
					{"resources", "--type", "vm"},
					{"resource", "show", "vm:00004"},
					{"inventory", "--host", "node-00002"},
				} {
					r := bin(t, nil, append([]string{"--state", p}, args...)...)
					assert.Equal(t, 0, r.code, "%v: %s", args, r.stderr)
					assert.Contains(t, r.stderr, holderLine(p, pid), "%v", args)
				}

				r = bin(t, nil, "--state", p, "inventory", "--list")
				require.Equal(t, 0, r.code, r.stderr)
				var inv struct {
					Meta struct {
						Hostvars map[string]map[string]any `json:"hostvars"`
					} `json:"_meta"`
				}
				require.NoError(t, json.Unmarshal([]byte(r.stdout), &inv))
				for h := range before {
					assert.Contains(t, inv.Meta.Hostvars, h)
				}
				for h := range inv.Meta.Hostvars {
					listed[h] = true
				}

				r = bin(t, nil, "--state", p, "check", "--quick")
				assert.Equal(t, 0, r.code, r.stderr)
				assert.Contains(t, r.stdout, "ok: "+p)
				assert.Contains(t, r.stderr, holderLine(p, pid))

				r = bin(t, nil, "diff", first, p)
				assert.Equal(t, 0, r.code, r.stderr)
				assert.Contains(t, r.stderr, holderLine(p, pid))

				r = bin(t, nil, "--state", p, "host", "add", "intruder", "--address", "x")
				assert.Equal(t, 1, r.code)
				assert.Contains(t, r.stderr, fmt.Sprintf("locked by pid %d", pid), "writes keep failing with the lock message")
				assert.NotContains(t, r.stderr, "read from the running holder")
			}
			r := bin(t, nil, "diff", first, p)
			assert.Contains(t, r.stdout, "+ hosts.node-", "the diff shows the hosts added since the first export")
			w.close(t)
			final := w.acked()
			for h := range listed {
				assert.Contains(t, final, h, "every host read was acknowledged")
			}
			assert.NotContains(t, listed, "intruder")
			r = bin(t, nil, "--state", p, "hosts")
			assert.Equal(t, 0, r.code, r.stderr)
			assert.NotContains(t, r.stderr, "read from the running holder", "no holder: the file")
			assert.Equal(t, len(final)+1, strings.Count(r.stdout, "\n"))
		})
	}
}

// A read through the holder prints exactly what the same read of the
// file prints once the holder has closed it. (check --quick and the pending
// table are left out: they report ages and whether the operations' holder
// still runs, which closing it changes.)
func TestLive_SameOutputAsTheFile(t *testing.T) {
	for _, name := range liveStores {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, name)
			w := startWriter(t, p, 25, 0)
			<-w.done
			other := filepath.Join(dir, "other.json")
			require.NoError(t, os.WriteFile(other, []byte(`{"hosts": {"node-00001": {"name": "node-00001", "address": "10.0.0.1"}}}`), 0o600))
			cmds := [][]string{
				{"hosts"}, {"hosts", "-o", "json"}, {"hosts", "-o", "yaml", "--show-secrets"}, {"hosts", "--group", "web"}, {"hosts", "-o", "wide"},
				{"host", "show", "node-00001"}, {"host", "show", "node-00001", "-o", "json", "--show-secrets"}, {"host", "show", "nope"},
				{"resources"}, {"resources", "--type", "vm", "-o", "json"}, {"resource", "show", "vm:00002"}, {"resource", "show", "nope"},
				{"export"}, {"export", "--redact"},
				{"inventory", "--list"}, {"inventory", "--host", "node-00002"}, {"inventory", "--host", "nope"},
				{"pending", "-o", "json"},
				{"diff", other, p}, {"diff", p, other, "-o", "json"},
			}
			type out struct {
				stdout, stderr string
				code           int
			}
			run := func(args []string) out {
				if args[0] != "diff" {
					args = append([]string{"--state", p}, args...)
				}
				r := bin(t, nil, args...)
				return out{r.stdout, r.stderr, r.code}
			}
			served := make([]out, len(cmds))
			for i, args := range cmds {
				served[i] = run(args)
				assert.Contains(t, served[i].stderr, holderLine(p, w.pid()), "%v", args)
			}
			w.close(t)
			for i, args := range cmds {
				file := run(args)
				assert.NotContains(t, file.stderr, "read from the running holder", "%v", args)
				assert.Equal(t, file.code, served[i].code, "%v", args)
				assert.Equal(t, file.stdout, served[i].stdout, "%v: stdout", args)
				var rest []string
				for _, l := range strings.SplitAfter(served[i].stderr, "\n") {
					if !strings.Contains(l, "read from the running holder") {
						rest = append(rest, l)
					}
				}
				assert.Equal(t, file.stderr, strings.Join(rest, ""), "%v: stderr, but for the holder line", args)
			}
		})
	}
}

// Real ansible-inventory reads the inventory of a store a run is writing:
// it sees the hosts acknowledged so far.
func TestLive_AnsibleWhileAHolderWrites(t *testing.T) {
	ansible, err := exec.LookPath("ansible-inventory")
	if err != nil {
		if os.Getenv("FTLSTATE_REQUIRE_ANSIBLE") == "1" {
			t.Fatal("ansible-inventory not found and FTLSTATE_REQUIRE_ANSIBLE=1 (install ansible-core)")
		}
		t.Skip("ansible-inventory not installed (apt-get install ansible-core); set FTLSTATE_REQUIRE_ANSIBLE=1 to make this a failure")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	w := startWriter(t, p, 400, 5*time.Millisecond)
	w.waitAcks(t, 10)
	script := filepath.Join(dir, "ftlstate-inventory.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nexec "+binary+" --state "+p+" inventory \"$@\"\n"), 0o700))
	home := t.TempDir()
	env := append(os.Environ(),
		"HOME="+home, "ANSIBLE_LOCAL_TEMP="+filepath.Join(home, "tmp"), "ANSIBLE_REMOTE_TEMP="+filepath.Join(home, "rtmp"),
		"ANSIBLE_INVENTORY_ENABLED=script", "ANSIBLE_INVENTORY_UNPARSED_FAILED=1", "ANSIBLE_CONFIG="+filepath.Join(home, "none.cfg"),
		"ANSIBLE_NOCOLOR=1", "ANSIBLE_DEPRECATION_WARNINGS=0")
	var seen []map[string]bool
	for round := 0; round < 2 || (round < 10 && !w.isDone()); round++ {
		before := w.acked()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, ansible, "-i", script, "--list")
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		cancel()
		require.NoError(t, err, "ansible-inventory --list: %s", errb.String())
		assert.NotContains(t, errb.String(), "WARNING", "ansible warned: %s", errb.String())
		var inv struct {
			Meta struct {
				Hostvars map[string]map[string]any `json:"hostvars"`
			} `json:"_meta"`
			Web struct{ Hosts []string } `json:"web"`
		}
		require.NoError(t, json.Unmarshal(out.Bytes(), &inv))
		hosts := map[string]bool{}
		for h, vars := range inv.Meta.Hostvars {
			hosts[h] = true
			assert.Equal(t, "admin", vars["ansible_user"], h)
		}
		for h := range before {
			assert.True(t, hosts[h], "Ansible sees %s, acknowledged before it started", h)
		}
		assert.NotEmpty(t, inv.Web.Hosts)
		seen = append(seen, hosts)
	}
	w.close(t)
	final := w.acked()
	for _, hosts := range seen {
		for h := range hosts {
			assert.Contains(t, final, h, "every host Ansible saw was acknowledged")
		}
	}
	assert.Greater(t, len(seen[len(seen)-1]), len(seen[0]), "the inventory grew while the run wrote")
}

// watcher is a running "ftlstate watch".
type watcher struct {
	cmd    *exec.Cmd
	from   uint64
	lines  chan string
	stderr *bytes.Buffer
	mu     *sync.Mutex
	exited chan struct{}
}

// startWatch starts "ftlstate --state p watch args...".
func startWatch(t *testing.T, p string, args ...string) *watcher {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--state", p, "watch"}, args...)...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	errp, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill() })
	w := &watcher{cmd: cmd, lines: make(chan string, 1<<16), stderr: &bytes.Buffer{}, mu: &sync.Mutex{}, exited: make(chan struct{})}
	er := bufio.NewReader(errp)
	first, err := er.ReadString('\n')
	require.NoError(t, err, "watch starts: %s", first)
	i := strings.LastIndex(first, "from serial ")
	require.GreaterOrEqual(t, i, 0, first)
	fmt.Sscanf(first[i:], "from serial %d", &w.from)
	go func() {
		b, _ := io.ReadAll(er)
		w.mu.Lock()
		w.stderr.Write(b)
		w.mu.Unlock()
	}()
	go func() {
		defer close(w.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
	}()
	return w
}

// wait waits for the watch to end and returns its exit status, stdout
// lines and stderr.
func (w *watcher) wait(t *testing.T) (int, []string, string) {
	t.Helper()
	var lines []string
	timeout := time.After(time.Minute)
	for done := false; !done; {
		select {
		case l, ok := <-w.lines:
			if !ok {
				done = true
				break
			}
			lines = append(lines, l)
		case <-timeout:
			t.Fatal("watch does not end")
		}
	}
	err := w.cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return code, lines, w.stderr.String()
}

// watch sees every acknowledged commit exactly once, in serial order, and
// ends, saying so, when the holder closes the store.
func TestLive_WatchSeesEveryCommitOnce(t *testing.T) {
	for _, name := range liveStores {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			w := startWriter(t, p, 200, 3*time.Millisecond)
			w.waitAcks(t, 5)
			js := startWatch(t, p, "-o", "json", "--show-secrets")
			table := startWatch(t, p)
			<-w.done
			w.close(t)

			code, lines, stderr := js.wait(t)
			assert.Equal(t, 0, code, stderr)
			assert.Contains(t, stderr, fmt.Sprintf("%s: the holder, pid %d, closed the store", p, w.pid()))
			bySerial := map[uint64]string{}
			next := js.from
			for _, l := range lines {
				var c struct {
					Type   string                     `json:"type"`
					Serial uint64                     `json:"serial"`
					Hosts  map[string]json.RawMessage `json:"hosts"`
				}
				require.NoError(t, json.Unmarshal([]byte(l), &c), l)
				assert.Equal(t, "commit", c.Type)
				require.Equal(t, next, c.Serial, "serials one by one, in order")
				next++
				require.Len(t, c.Hosts, 1, l)
				for h, v := range c.Hosts {
					bySerial[c.Serial] = h
					assert.Contains(t, string(v), `"db_password":"pw-`, "--show-secrets")
				}
			}
			acks := w.acked()
			n := 0
			for h, s := range acks {
				if s >= js.from {
					n++
					assert.Equal(t, h, bySerial[s], "commit %d (host %s) seen", s, h)
				}
			}
			assert.Equal(t, n, len(lines), "every acknowledged commit once, nothing else")
			assert.Greater(t, n, 100)

			code, tlines, stderr := table.wait(t)
			assert.Equal(t, 0, code, stderr)
			require.NotEmpty(t, tlines)
			assert.True(t, strings.HasPrefix(tlines[0], "SERIAL"), tlines[0])
			added := 0
			for _, l := range tlines[1:] {
				if strings.Contains(l, "+ host node-") {
					added++
				}
			}
			assert.Equal(t, len(tlines[1:])/2, added, "a host and a resource per commit")
			want := 0
			for _, s := range acks {
				if s >= table.from {
					want++
				}
			}
			assert.Equal(t, want, added, "the table shows every acknowledged commit from its start")
		})
	}
}

// kill -9 of the holder: a watch ends saying so, the next reader opens
// the file directly at once, and the next holder replaces the socket.
func TestLive_KilledHolder(t *testing.T) {
	for _, name := range liveStores {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			w := startWriter(t, p, 30, 0)
			<-w.done
			wt := startWatch(t, p)
			require.NoError(t, w.cmd.Process.Signal(syscall.SIGKILL))
			w.cmd.Wait()
			code, _, stderr := wt.wait(t)
			assert.Equal(t, 1, code)
			assert.Contains(t, stderr, fmt.Sprintf("the holder, pid %d, went away", w.pid()))

			_, err := os.Lstat(w.socket)
			require.NoError(t, err, "the dead holder's socket is still there")
			start := time.Now()
			r := bin(t, nil, "--state", p, "hosts", "-o", "name")
			assert.Less(t, time.Since(start), 10*time.Second, "no hang")
			assert.Equal(t, 0, r.code, r.stderr)
			assert.Empty(t, r.stderr, "no error, no holder")
			assert.Equal(t, 30, strings.Count(r.stdout, "\n"))

			r = bin(t, nil, "--state", p, "watch")
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, "no running process holds this store")

			// The next holder replaces the stale socket and serves.
			w2 := startWriter(t, p, 1, 0)
			<-w2.done
			assert.Equal(t, w.socket, w2.socket)
			r = bin(t, nil, "--state", p, "hosts", "-o", "name")
			assert.Equal(t, 0, r.code, r.stderr)
			assert.Contains(t, r.stderr, holderLine(p, w2.pid()))
			assert.Equal(t, 31, strings.Count(r.stdout, "\n"))
			w2.close(t)
		})
	}
}

// watch --from replays the commits the holder keeps, and refuses serials
// it does not have.
func TestLive_WatchFrom(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	w := startWriter(t, p, 10, 0)
	<-w.done
	acks := w.acked()
	serials := slices.Sorted(maps.Values(acks))
	wt := startWatch(t, p, "--from", strconv.FormatUint(serials[3], 10), "-o", "json")
	assert.Equal(t, serials[3], wt.from)
	w.close(t)
	code, lines, stderr := wt.wait(t)
	assert.Equal(t, 0, code, stderr)
	assert.Len(t, lines, 7, "serials %d to %d", serials[3], serials[9])
	for _, l := range lines {
		assert.Contains(t, l, `"db_password":"<redacted>"`, "secrets redacted without --show-secrets")
		assert.NotContains(t, l, "pw-")
	}

	w = startWriter(t, p, 1, 0)
	<-w.done
	r := bin(t, nil, "--state", p, "watch", "--from", "1")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "are no longer held by the holder", "made before this holder opened the store")
	r = bin(t, nil, "--state", p, "watch", "--from", "999999")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "is ahead of the store")
	w.close(t)
}
