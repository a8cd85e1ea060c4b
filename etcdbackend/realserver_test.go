package etcdbackend_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/internal/etcdproc"
	"github.com/go-ftl2/ftlstate/state"
)

// The tests of this file run real etcd server processes (Debian's
// etcd-server, internal/etcdproc) on loopback and inject the faults of
// production: a leader killed, a controller paused past its lease and
// taken over, a cluster without a quorum. Writers record every answer
// in a ledger, which is checked against the store afterwards: every
// acknowledged write is stored, every write said to have written nothing
// is absent. They skip without an etcd binary unless
// FTLSTATE_REQUIRE_ETCD=1.

// Outcomes of one write, as its error tells them.
const (
	acked   = "ok"      // nil: stored
	none    = "none"    // an error not matching ErrOutcomeUnknown: nothing written
	unknown = "unknown" // ErrOutcomeUnknown: either
)

func outcome(err error) string {
	switch {
	case err == nil:
		return acked
	case errors.Is(err, etcdbackend.ErrOutcomeUnknown):
		return unknown
	}
	return none
}

// entry is one answer of the ledger.
type entry struct {
	name, outcome string
	took          time.Duration
	msg           string
	// at is when the answer came.
	at time.Time
}

// ledger collects the answers of writers.
type ledger struct {
	mu      sync.Mutex
	entries []entry
}

func (l *ledger) add(name string, took time.Duration, err error) {
	e := entry{name: name, outcome: outcome(err), took: took, at: time.Now()}
	if err != nil {
		e.msg = err.Error()
	}
	l.mu.Lock()
	l.entries = append(l.entries, e)
	l.mu.Unlock()
}

// verify checks the ledger against the hosts stored (names): acknowledged
// ones present, ones said not written absent. It returns the counts by
// outcome and the slowest answer.
func (l *ledger) verify(t *testing.T, names map[string]bool) (map[string]int, time.Duration) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	counts := map[string]int{}
	var slowest time.Duration
	for _, e := range l.entries {
		counts[e.outcome]++
		slowest = max(slowest, e.took)
		switch e.outcome {
		case acked:
			assert.True(t, names[e.name], "%s was acknowledged and is not stored", e.name)
		case none:
			assert.False(t, names[e.name], "%s is stored, but its error said nothing was written: %s", e.name, e.msg)
		}
	}
	return counts, slowest
}

// errorKinds counts the ledger's errors by a short form of their message.
func (l *ledger) errorKinds() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	kinds := map[string]int{}
	for _, e := range l.entries {
		if e.msg == "" {
			continue
		}
		k := e.msg
		for _, p := range []string{"lost the lock", "lease expired", "outcome unknown", "no leader", "not sent", "not written", "refused until the store", "closed", "changed by a writer without"} {
			if strings.Contains(e.msg, p) {
				k = p
				break
			}
		}
		kinds[k]++
	}
	return kinds
}

// storedHosts returns the names of the hosts of the store at prefix.
func storedHosts(t *testing.T, endpoints []string, prefix string) map[string]bool {
	t.Helper()
	b, err := etcdbackend.Open(context.Background(), etcdbackend.Config{Endpoints: endpoints, Prefix: prefix, ReadOnly: true, RequestTimeout: 10 * time.Second})
	require.NoError(t, err)
	defer b.Close()
	names := map[string]bool{}
	require.NoError(t, b.View(func(s state.Snapshot) error {
		return s.Hosts(func(h *state.HostState) error { names[h.Name] = true; return nil })
	}))
	return names
}

// controller is a State that writers share, reopened (as a controller
// would) when it refuses writes after an unknown outcome.
type controller struct {
	t   *testing.T
	cfg etcdbackend.Config

	mu      sync.Mutex
	st      *state.State
	reopens int
}

func newController(t *testing.T, cfg etcdbackend.Config) *controller {
	c := &controller{t: t, cfg: cfg}
	c.st = c.open()
	t.Cleanup(func() { c.current().Close() })
	return c
}

func (c *controller) open() *state.State {
	b, err := etcdbackend.Open(context.Background(), c.cfg)
	require.NoError(c.t, err)
	st, err := state.Open(b)
	require.NoError(c.t, err)
	return st
}

func (c *controller) current() *state.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// add adds host name, and reopens the State when the answer was an
// unknown outcome (the State refuses every later write until then). took
// is how long AddHost took to answer.
func (c *controller) add(name string) (took time.Duration, err error) {
	st := c.current()
	start := time.Now()
	err = st.AddHost(&state.HostState{Name: name})
	took = time.Since(start)
	if errors.Is(err, etcdbackend.ErrOutcomeUnknown) {
		c.mu.Lock()
		if c.st == st {
			st.Close()
			b, oerr := etcdbackend.Open(context.Background(), c.cfg)
			if oerr == nil {
				var nst *state.State
				if nst, oerr = state.Open(b); oerr == nil {
					c.st = nst
					c.reopens++
				}
			}
			if oerr != nil {
				c.t.Errorf("reopen: %v", oerr)
			}
		}
		c.mu.Unlock()
	}
	return took, err
}

// write runs writers goroutines adding hosts TAG-W-I through c until stop
// is closed, recording every answer in l.
func (c *controller) write(l *ledger, tag string, writers int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("%s-%02d-%05d", tag, w, i)
				took, err := c.add(name)
				l.add(name, took, err)
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	return &wg
}

// TestRealServer_LeaderKilledDuringWrites: sixteen writers on a
// three-member cluster; the leader is killed with SIGKILL, then started
// again on its data. Nothing acknowledged is lost, no error claims
// wrongly that nothing was written, every answer comes within the bound,
// and writes go on.
func TestRealServer_LeaderKilledDuringWrites(t *testing.T) {
	c := etcdproc.Start(t, etcdproc.Options{Members: 3})
	const rt = 2 * time.Second
	cfg := etcdbackend.Config{Endpoints: c.Endpoints(), Prefix: "/real/leader", RequestTimeout: rt, SessionTTL: 5 * time.Second, LockTimeout: 20 * time.Second}
	ctl := newController(t, cfg)
	var l ledger
	stop := make(chan struct{})
	wg := ctl.write(&l, "w", 16, stop)
	time.Sleep(time.Second)
	leader := c.Leader()
	require.GreaterOrEqual(t, leader, 0)
	c.Kill(leader)
	t.Logf("killed the leader, member %d", leader)
	time.Sleep(2 * time.Second)
	require.NoError(t, c.Restart(leader))
	require.NoError(t, c.WaitReady(leader, 30*time.Second))
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	require.NoError(t, ctl.current().Close())

	counts, slowest := l.verify(t, storedHosts(t, c.Endpoints(), cfg.Prefix))
	t.Logf("leader kill: outcomes %v, errors %v, slowest answer %s, %d reopens", counts, l.errorKinds(), slowest.Round(time.Millisecond), ctl.reopens)
	assert.Greater(t, counts[acked], 100)
	assert.LessOrEqual(t, slowest, 2*rt+schedulingSlack, "within twice RequestTimeout")
	assert.Zero(t, l.errorKinds()["changed by a writer without"], "no false conflict")
}

// writerEnv, when set, makes the test binary a writer process (see
// writer).
const writerEnv = "ETCDBACKEND_TEST_WRITER"

// writer is a controller in a process of its own: sixteen goroutines
// adding hosts TAG-W-I to the store, each until its first error, writing
// every answer to the ledger file as a line "OUTCOME NAME MILLISECONDS
// MESSAGE". p is ENDPOINTS|PREFIX|TTL|LEDGER|TAG.
func writer(p string) {
	parts := strings.Split(p, "|")
	ttl, _ := time.ParseDuration(parts[2])
	f, err := os.OpenFile(parts[3], os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	b, err := etcdbackend.Open(context.Background(), etcdbackend.Config{
		Endpoints: strings.Split(parts[0], ","), Prefix: parts[1], SessionTTL: ttl, RequestTimeout: 2 * time.Second,
		Logger: zap.NewNop(),
	})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	st, err := state.Open(b)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("writing")
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				name := fmt.Sprintf("%s-%02d-%05d", parts[4], w, i)
				start := time.Now()
				err := st.AddHost(&state.HostState{Name: name})
				msg := ""
				if err != nil {
					msg = strings.ReplaceAll(err.Error(), "\n", " ")
				}
				fmt.Fprintf(f, "%s %s %d %s\n", outcome(err), name, time.Since(start).Milliseconds(), msg)
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	st.Close()
	fmt.Println("done")
}

// readLedger reads a writer process's ledger file.
func readLedger(t *testing.T, path string) *ledger {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var l ledger
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), " ", 4)
		require.GreaterOrEqual(t, len(fields), 3, "ledger line %q", sc.Text())
		ms, _ := strconv.Atoi(fields[2])
		e := entry{outcome: fields[0], name: fields[1], took: time.Duration(ms) * time.Millisecond}
		if len(fields) == 4 {
			e.msg = fields[3]
		}
		l.entries = append(l.entries, e)
	}
	require.NoError(t, sc.Err())
	return &l
}

// TestRealServer_PausedWriterTakenOver: controller A (a process) writes
// with sixteen goroutines and is stopped with SIGSTOP, commits in flight,
// for longer than its lease; B takes the store over and writes; A is
// continued. A writes nothing after B took the lock (every record of A
// was written before B's lock was created), and every answer A gives is
// true: its commits that landed before the takeover are acknowledged or
// unknown, never "nothing was written".
func TestRealServer_PausedWriterTakenOver(t *testing.T) {
	c := etcdproc.Start(t, etcdproc.Options{Members: 3})
	const prefix = "/real/pause"
	ledgerFile := filepath.Join(t.TempDir(), "a.ledger")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerEnv+"="+strings.Join(c.Endpoints(), ",")+"|"+prefix+"|2s|"+ledgerFile+"|a")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "writing\n", line)
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(ledgerFile)
		if strings.Count(string(b), "\n") >= 200 {
			break
		}
		require.True(t, time.Now().Before(deadline), "A does not write")
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGSTOP))
	paused := time.Now()

	// B waits for A's lease (2s) to expire, then writes.
	bcfg := etcdbackend.Config{Endpoints: c.Endpoints(), Prefix: prefix, LockTimeout: 20 * time.Second}
	b := newController(t, bcfg)
	t.Logf("B took the store %s after A was paused", time.Since(paused).Round(time.Millisecond))
	raw := rawClientOf(t, c.Endpoints())
	resp, err := raw.Get(context.Background(), prefix+"/lock")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	bLock := resp.Kvs[0].CreateRevision
	var bl ledger
	stop := make(chan struct{})
	wg := b.write(&bl, "b", 4, stop)
	time.Sleep(500 * time.Millisecond)

	require.NoError(t, cmd.Process.Signal(syscall.SIGCONT))
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		require.NoError(t, err, "A exits once each of its writers got an error")
	case <-time.After(30 * time.Second):
		t.Fatal("A keeps writing after B took over")
	}
	close(stop)
	wg.Wait()
	require.NoError(t, b.current().Close())

	al := readLedger(t, ledgerFile)
	names := storedHosts(t, c.Endpoints(), prefix)
	counts, _ := al.verify(t, names)
	bcounts, _ := bl.verify(t, names)
	t.Logf("A: outcomes %v, errors %v; B: outcomes %v", counts, al.errorKinds(), bcounts)
	shown := 0
	for _, e := range al.entries {
		if e.msg != "" && shown < 2 {
			t.Logf("A: %s %s after %s: %s", e.outcome, e.name, e.took, e.msg)
			shown++
		}
	}
	assert.Greater(t, bcounts[acked], 0, "B writes")
	assert.Zero(t, bcounts[none]+bcounts[unknown], "B's writes all succeed: %v", bl.errorKinds())

	// Fenced: every record of A was written before B's lock existed.
	recs, err := raw.Get(context.Background(), genBaseOf(t, raw, prefix)+"/hosts/a-", clientv3.WithPrefix())
	require.NoError(t, err)
	late := 0
	for _, kv := range recs.Kvs {
		if kv.ModRevision > bLock {
			late++
		}
	}
	assert.Zero(t, late, "records of A written after B took the lock (at revision %d)", bLock)
	t.Logf("A's %d records all written before revision %d (B's lock)", len(recs.Kvs), bLock)
	// A's errors after the takeover: it lost the lock (or its lease), or
	// an outcome it could not settle; never a conflict.
	for kind, n := range al.errorKinds() {
		assert.Contains(t, []string{"lost the lock", "lease expired", "outcome unknown", "refused until the store"}, kind, "%d errors of A", n)
	}
}

// rawClientOf returns a plain client of a cluster.
func rawClientOf(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, Logger: zap.NewNop(), DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// genBaseOf is genBase for a client of another cluster.
func genBaseOf(t *testing.T, raw *clientv3.Client, prefix string) string {
	t.Helper()
	resp, err := raw.Get(context.Background(), prefix+"/generation")
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return prefix
	}
	return prefix + "/gen/" + string(resp.Kvs[0].Value)
}

// TestRealServer_QuorumLoss: sixteen writers while two of three members
// are stopped with SIGSTOP (their connections hang, as with a partition)
// for longer than a commit's bound, then continued. During the outage
// every answer comes within the bound and says what became of its batch;
// there is never a false conflict; once the members are back the
// controller (reopened if an outcome was unknown) writes again; nothing
// acknowledged is lost.
func TestRealServer_QuorumLoss(t *testing.T) {
	c := etcdproc.Start(t, etcdproc.Options{Members: 3})
	const rt = time.Second
	cfg := etcdbackend.Config{Endpoints: c.Endpoints(), Prefix: "/real/quorum", RequestTimeout: rt, SessionTTL: 3 * time.Second, LockTimeout: 20 * time.Second}
	ctl := newController(t, cfg)
	var l ledger
	stop := make(chan struct{})
	wg := ctl.write(&l, "w", 16, stop)
	time.Sleep(time.Second)
	leader := c.Leader()
	require.GreaterOrEqual(t, leader, 0)
	other := (leader + 1) % 3
	c.Pause(leader)
	c.Pause(other)
	t.Logf("paused members %d (the leader) and %d", leader, other)
	time.Sleep(5 * time.Second)
	c.Resume(leader)
	c.Resume(other)
	resumed := time.Now()
	l.mu.Lock()
	during := len(l.entries)
	l.mu.Unlock()
	time.Sleep(6 * time.Second)
	close(stop)
	wg.Wait()
	require.NoError(t, ctl.current().Close())

	counts, slowest := l.verify(t, storedHosts(t, c.Endpoints(), cfg.Prefix))
	kinds := l.errorKinds()
	t.Logf("quorum loss: outcomes %v, errors %v, slowest answer %s, %d reopens", counts, kinds, slowest.Round(time.Millisecond), ctl.reopens)
	assert.LessOrEqual(t, slowest, 2*rt+schedulingSlack, "within twice RequestTimeout")
	assert.Zero(t, kinds["changed by a writer without"], "no false conflict")
	assert.Zero(t, kinds["lost the lock"], "the lease outlives a quorum loss")
	// Writing again: after the outage, writes are acknowledged again, and
	// the last ones all are.
	l.mu.Lock()
	after := l.entries[during:]
	l.mu.Unlock()
	lastErr, recovered := -1, time.Duration(-1)
	for i, e := range after {
		if e.outcome != acked {
			lastErr = i
		} else if recovered < 0 && e.at.After(resumed) {
			recovered = e.at.Sub(resumed)
		}
	}
	okAfter := len(after) - lastErr - 1
	t.Logf("writing again %s after the members were continued; %d acknowledged after the last error", recovered.Round(time.Millisecond), okAfter)
	assert.GreaterOrEqual(t, recovered, time.Duration(0), "writes go on after the outage")
	assert.Greater(t, okAfter, 100, "and the last ones all succeed")
}
