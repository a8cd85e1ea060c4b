package etcdbackend_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/state"
)

// faults injects failures into a backend's write requests (Txn calls
// that are not read-only): the next one can be lost before it reaches
// etcd, or have its answer lost after etcd applied it, running a hook
// first; and every one can be lost until some time (an outage).
type faults struct {
	mu sync.Mutex
	// next is what happens to the next write: "" (nothing), "lose" (not
	// sent) or "drop" (sent, answer lost); hook runs after it.
	next string
	hook func()
	// until loses every write until then.
	until time.Time
}

func (f *faults) option() grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if !strings.HasSuffix(method, "/Txn") || !isWrite(req) {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		f.mu.Lock()
		next, hook, until := f.next, f.hook, f.until
		f.next, f.hook = "", nil
		f.mu.Unlock()
		// A lost request or answer: the caller's time runs out.
		lost := func() error {
			<-ctx.Done()
			return status.FromContextError(ctx.Err()).Err()
		}
		switch {
		case time.Now().Before(until):
			return lost()
		case next == "lose":
			if hook != nil {
				hook()
			}
			return lost()
		case next == "drop":
			err := invoker(ctx, method, req, reply, cc, opts...)
			if hook != nil {
				hook()
			}
			if err != nil {
				return err
			}
			return lost()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
}

func (f *faults) set(next string, hook func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next, f.hook = next, hook
}

func (f *faults) outage(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.until = time.Now().Add(d)
}

// isWrite reports whether req (an etcdserverpb.TxnRequest) writes.
func isWrite(req any) bool {
	type txn interface{ String() string }
	t, ok := req.(txn)
	return ok && (strings.Contains(t.String(), "request_put") || strings.Contains(t.String(), "request_delete_range"))
}

// takeOver revokes the lease of the store's lock and has another
// controller take it and write host name.
func takeOver(t *testing.T, cfg etcdbackend.Config, name string) {
	revokeLock(t, cfg.Prefix)
	bcfg := cfg
	bcfg.LockTimeout = 5 * time.Second
	b, err := etcdbackend.Open(context.Background(), bcfg)
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)
	require.NoError(t, st.AddHost(&state.HostState{Name: name}))
	// B keeps the lock until the test ends.
	t.Cleanup(func() { st.Close() })
}

// TestOutcome_AppliedThenTakenOver: a commit is applied, its answer is
// lost, and before A settles it, A's lease goes and B takes the store
// and writes. A must not report "nothing was written": its commit is
// stored, and A's history read says so; A's next commit fails with
// ErrLocked.
func TestOutcome_AppliedThenTakenOver(t *testing.T) {
	cfg := config(newPrefix(t))
	cfg.RequestTimeout = time.Second
	var f faults
	st, err := state.Open(openTB(t, etcdbackend.WithDialOptions(cfg, f.option())))
	require.NoError(t, err)
	require.NoError(t, st.AddHost(&state.HostState{Name: "a-1"}))
	f.set("drop", func() { takeOver(t, cfg, "b-1") })
	err = st.AddHost(&state.HostState{Name: "a-2"})
	require.NoError(t, err, "a-2 was stored while A held the lock; its commit succeeded")
	err = st.AddHost(&state.HostState{Name: "a-3"})
	require.ErrorIs(t, err, state.ErrLocked)
	assert.Contains(t, err.Error(), "nothing of this batch was written")
	assert.Equal(t, []string{"a-1", "a-2", "b-1"}, hostNames(t, cfg))
}

// TestOutcome_LostThenTakenOver: the same, but the commit never reached
// etcd: A reports that nothing was written, truly.
func TestOutcome_LostThenTakenOver(t *testing.T) {
	cfg := config(newPrefix(t))
	cfg.RequestTimeout = time.Second
	var f faults
	st, err := state.Open(openTB(t, etcdbackend.WithDialOptions(cfg, f.option())))
	require.NoError(t, err)
	require.NoError(t, st.AddHost(&state.HostState{Name: "a-1"}))
	f.set("lose", func() { takeOver(t, cfg, "b-1") })
	err = st.AddHost(&state.HostState{Name: "a-2"})
	require.ErrorIs(t, err, state.ErrLocked)
	assert.Contains(t, err.Error(), "nothing of this batch was written")
	t.Logf("error: %v", err)
	assert.Equal(t, []string{"a-1", "b-1"}, hostNames(t, cfg))
}

// addHost commits a batch adding host name through b, without a State
// (a State refuses every write after an unknown outcome until it is
// reopened; the Backend settles it and goes on when it can).
func addHost(b *etcdbackend.Backend, name string) error {
	now := state.Timestamp(time.Now())
	h := &state.HostState{Name: name, CreatedAt: now, UpdatedAt: now}
	_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: name, Host: h}}})
	return err
}

// TestOutcome_UnknownThenStored: a commit is applied, its answer lost,
// and etcd answers nothing more for longer than the commit's bound: it
// fails with ErrOutcomeUnknown, within the bound, and the commits during
// the outage fail saying they wrote nothing. Once etcd answers again, the
// next commit settles the unknown one as stored and fails with
// ErrOutcomeUnknown (reopen: the caller's copy misses it), not with a
// false conflict; reopened, the store writes again.
func TestOutcome_UnknownThenStored(t *testing.T) {
	cfg := config(newPrefix(t))
	cfg.RequestTimeout = 400 * time.Millisecond
	var f faults
	b := openTB(t, etcdbackend.WithDialOptions(cfg, f.option()))
	require.NoError(t, addHost(b, "before"))
	f.set("drop", func() { f.outage(1500 * time.Millisecond) })
	start := time.Now()
	err := addHost(b, "unknown")
	require.ErrorIs(t, err, etcdbackend.ErrOutcomeUnknown)
	assert.LessOrEqual(t, time.Since(start), 2*cfg.RequestTimeout+schedulingSlack)
	t.Logf("error: %v", err)
	err = addHost(b, "during")
	require.Error(t, err)
	assert.False(t, errors.Is(err, etcdbackend.ErrOutcomeUnknown), "never sent: %v", err)
	assert.Contains(t, err.Error(), "nothing of this batch was written")
	t.Logf("during the outage: %v", err)

	time.Sleep(time.Until(start.Add(1600 * time.Millisecond)))
	err = addHost(b, "after")
	require.ErrorIs(t, err, etcdbackend.ErrOutcomeUnknown)
	assert.False(t, errors.Is(err, state.ErrConflict), "no false conflict: %v", err)
	assert.Contains(t, err.Error(), "turned out stored")
	t.Logf("after: %v", err)
	require.NoError(t, b.Close())

	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	require.NoError(t, st.AddHost(&state.HostState{Name: "reopened"}))
	require.NoError(t, st.Close())
	assert.Equal(t, []string{"before", "reopened", "unknown"}, hostNames(t, cfg))
}

// TestOutcome_UnknownThenNotStored: the same outage, but the commit never
// reached etcd: once etcd answers, the next commit settles it as not
// stored and the Backend goes on writing.
func TestOutcome_UnknownThenNotStored(t *testing.T) {
	cfg := config(newPrefix(t))
	cfg.RequestTimeout = 400 * time.Millisecond
	var f faults
	b := openTB(t, etcdbackend.WithDialOptions(cfg, f.option()))
	require.NoError(t, addHost(b, "before"))
	f.set("lose", func() { f.outage(1500 * time.Millisecond) })
	start := time.Now()
	require.ErrorIs(t, addHost(b, "unknown"), etcdbackend.ErrOutcomeUnknown)
	time.Sleep(time.Until(start.Add(1600 * time.Millisecond)))
	for _, name := range []string{"after-1", "after-2"} {
		require.NoError(t, addHost(b, name), "writing goes on")
	}
	require.NoError(t, b.Close())
	names := hostNames(t, cfg)
	assert.Equal(t, []string{"after-1", "after-2", "before"}, names)
	assert.False(t, slices.Contains(names, "unknown"))
}
