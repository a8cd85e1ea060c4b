package etcdbackend_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/internal/etcdtest"
	"github.com/go-ftl2/ftlstate/state"
)

// holdEnv, when set to ENDPOINT|PREFIX, makes the test binary a lock
// holder: it opens the store, says "locked" and waits to be killed.
const holdEnv = "ETCDBACKEND_TEST_HOLD"

func hold(p string) {
	endpoint, prefix, _ := strings.Cut(p, "|")
	b, err := etcdbackend.Open(context.Background(), etcdbackend.Config{
		Endpoints: []string{endpoint}, Prefix: prefix, SessionTTL: 3 * time.Second,
	})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	defer b.Close()
	fmt.Println("locked")
	select {}
}

// rawClient returns a plain etcd client on the shared server.
func rawClient(t testing.TB) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: server.Endpoints(), Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOpen_LockedFailsAtOnceNamingTheHolder(t *testing.T) {
	cfg := config(newPrefix(t))
	openTB(t, cfg)

	start := time.Now()
	_, err := etcdbackend.Open(context.Background(), cfg)
	assert.Less(t, time.Since(start), 2*time.Second, "zero LockTimeout does not wait")
	require.ErrorIs(t, err, state.ErrLocked)
	var le *state.LockError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, cfg.Prefix, le.Path)
	require.NotNil(t, le.Holder)
	assert.Equal(t, os.Getpid(), le.Holder.PID)
	host, _ := os.Hostname()
	assert.Equal(t, host, le.Holder.Host)
	assert.False(t, le.Stale)
	assert.Zero(t, le.Waited)
	msg := err.Error()
	assert.Contains(t, msg, cfg.Prefix+": locked by pid "+fmt.Sprint(os.Getpid()))
	assert.Contains(t, msg, "("+le.Holder.Command+")")
	assert.Contains(t, msg, "on host "+host)
}

func TestOpen_WaitsLockTimeout(t *testing.T) {
	cfg := config(newPrefix(t))
	openTB(t, cfg)

	cfg.LockTimeout = 700 * time.Millisecond
	start := time.Now()
	_, err := etcdbackend.Open(context.Background(), cfg)
	waited := time.Since(start)
	require.ErrorIs(t, err, state.ErrLocked)
	assert.GreaterOrEqual(t, waited, cfg.LockTimeout)
	assert.Less(t, waited, cfg.LockTimeout+3*time.Second)
	var le *state.LockError
	require.ErrorAs(t, err, &le)
	assert.GreaterOrEqual(t, le.Waited, cfg.LockTimeout)
	assert.Contains(t, err.Error(), "(waited ")
	assert.NotNil(t, le.Holder)
}

func TestOpen_GetsTheLockWhenReleased(t *testing.T) {
	cfg := config(newPrefix(t))
	first, err := etcdbackend.Open(context.Background(), cfg)
	require.NoError(t, err)
	go func() {
		time.Sleep(300 * time.Millisecond)
		first.Close()
	}()
	cfg.LockTimeout = 10 * time.Second
	start := time.Now()
	second := openTB(t, cfg)
	assert.Less(t, time.Since(start), 5*time.Second, "the lock is taken as soon as it is released")
	_, err = second.Commit(&state.Batch{Time: time.Now()})
	assert.NoError(t, err)
}

func TestOpen_CanceledContext(t *testing.T) {
	cfg := config(newPrefix(t))
	openTB(t, cfg)
	cfg.LockTimeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := etcdbackend.Open(ctx, cfg)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestOpen_ReadOnlyWhileAWriterHolds(t *testing.T) {
	cfg := config(newPrefix(t))
	w := openTB(t, cfg)
	st, err := state.Open(w)
	require.NoError(t, err)
	require.NoError(t, st.AddHost(&state.HostState{Name: "web01", Address: "192.0.2.1"}))

	ro := cfg
	ro.ReadOnly = true
	r := openTB(t, ro)
	require.NoError(t, r.View(func(s state.Snapshot) error {
		h, ok, err := s.Host("web01")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, "192.0.2.1", h.Address)
		assert.Equal(t, st.Metadata(), s.Metadata())
		return nil
	}))
	_, err = r.Commit(&state.Batch{Time: time.Now()})
	assert.ErrorIs(t, err, state.ErrReadOnly)

	// The writer goes on; the reader sees its writes.
	require.NoError(t, st.AddHost(&state.HostState{Name: "web02"}))
	require.NoError(t, r.View(func(s state.Snapshot) error {
		n, _ := s.Len()
		assert.Equal(t, 2, n)
		return nil
	}))
	require.NoError(t, r.Close())
	require.NoError(t, st.Close())
}

func TestOpen_ReadOnlyMissingStore(t *testing.T) {
	cfg := config(newPrefix(t))
	cfg.ReadOnly = true
	_, err := etcdbackend.Open(context.Background(), cfg)
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), cfg.Prefix)
}

func TestOpen_BadConfig(t *testing.T) {
	_, err := etcdbackend.Open(context.Background(), etcdbackend.Config{Endpoints: server.Endpoints()})
	assert.ErrorIs(t, err, state.ErrInvalid, "no prefix")
	_, err = etcdbackend.Open(context.Background(), etcdbackend.Config{Prefix: "/x"})
	assert.ErrorIs(t, err, state.ErrInvalid, "no endpoints")
}

func TestOpen_NoServer(t *testing.T) {
	cfg := etcdbackend.Config{Endpoints: []string{"127.0.0.1:1"}, Prefix: "/x", RequestTimeout: 300 * time.Millisecond}
	start := time.Now()
	_, err := etcdbackend.Open(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "etcdbackend: /x:")
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestOpen_NewerLayoutRefused(t *testing.T) {
	cfg := config(newPrefix(t))
	b, err := etcdbackend.Open(context.Background(), cfg)
	require.NoError(t, err)
	require.NoError(t, b.Close())
	next := fmt.Sprint(etcdbackend.LayoutVersion + 1)
	_, err = rawClient(t).Put(context.Background(), cfg.Prefix+"/layout", next)
	require.NoError(t, err)
	_, err = etcdbackend.Open(context.Background(), cfg)
	assert.ErrorIs(t, err, errors.ErrUnsupported)
	assert.Contains(t, err.Error(), "layout version "+next)
}

// TestLock_KilledHolder: a holder killed with SIGKILL cannot release the
// lock; its lease does, one TTL later. Meanwhile the error names the
// holder and says its lock info is stale.
func TestLock_KilledHolder(t *testing.T) {
	cfg := config(newPrefix(t))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+server.Endpoint(0)+"|"+cfg.Prefix)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)

	_, err = etcdbackend.Open(context.Background(), cfg)
	var le *state.LockError
	require.ErrorAs(t, err, &le)
	require.NotNil(t, le.Holder)
	assert.Equal(t, cmd.Process.Pid, le.Holder.PID, "the error names the other process")
	assert.False(t, le.Stale)
	assert.Greater(t, le.Expires, time.Duration(0), "the holder's lease is known")
	assert.NotContains(t, err.Error(), "lease", "a live holder is named as such")

	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()
	_, err = etcdbackend.Open(context.Background(), cfg)
	if assert.ErrorAs(t, err, &le) {
		assert.True(t, le.Stale, "the holder is gone: %v", err)
		assert.Greater(t, le.Expires, time.Duration(0))
		assert.LessOrEqual(t, le.Expires, 4*time.Second, "within its TTL (3s), rounded up")
		assert.Contains(t, err.Error(), cfg.Prefix+": locked: held by pid "+fmt.Sprint(cmd.Process.Pid)+"'s lease, which expires within ")
		t.Logf("error: %v", err)
	}

	cfg.LockTimeout = 15 * time.Second
	start := time.Now()
	b := openTB(t, cfg)
	assert.Less(t, time.Since(start), 10*time.Second, "the lease expires after its TTL (3s)")
	_, err = b.Commit(&state.Batch{Time: time.Now()})
	assert.NoError(t, err)
}

// TestOpen_HonoursLockTimeoutForTheCluster: Open waits for a cluster that
// does not answer as long as LockTimeout says (not RequestTimeout), says
// then that no member answered, and gets the store when the cluster comes
// back within it.
func TestOpen_HonoursLockTimeoutForTheCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts a member")
	}
	cfg := etcdbackend.Config{Endpoints: []string{"127.0.0.1:1"}, Prefix: "/x", LockTimeout: 1500 * time.Millisecond}
	start := time.Now()
	_, err := etcdbackend.Open(context.Background(), cfg)
	took := time.Since(start)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no etcd member answered")
	assert.GreaterOrEqual(t, took, time.Second, "it waited")
	assert.Less(t, took, 1500*time.Millisecond+schedulingSlack, "for --lock-timeout, not more")
	var ce *etcdbackend.ConnectError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, etcdbackend.NoAnswer, ce.Problem)

	c := etcdtest.New(t, etcdtest.Options{NoFsync: true})
	c.Stop(0)
	back := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		back <- c.Restart(0)
	}()
	cfg = etcdbackend.Config{Endpoints: c.Endpoints(), Prefix: "/back", LockTimeout: 20 * time.Second}
	b, err := etcdbackend.Open(context.Background(), cfg)
	require.NoError(t, <-back)
	require.NoError(t, err, "the cluster came back within the lock timeout")
	require.NoError(t, b.Close())
}
