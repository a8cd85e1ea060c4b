package etcdbackend_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/state"
)

// hostNames returns the names of the hosts stored under cfg's prefix, read
// by a read-only open.
func hostNames(t testing.TB, cfg etcdbackend.Config) []string {
	t.Helper()
	cfg.ReadOnly = true
	b := openTB(t, cfg)
	var names []string
	require.NoError(t, b.View(func(s state.Snapshot) error {
		return s.Hosts(func(h *state.HostState) error { names = append(names, h.Name); return nil })
	}))
	require.NoError(t, b.Close())
	return names
}

// TestFencing_RevokedLease: controller A writes continuously; its lease
// is revoked (as when it expires during a partition); controller B takes
// the lock. A's first write after that fails with ErrLocked, and the store
// holds exactly the writes A was told succeeded.
func TestFencing_RevokedLease(t *testing.T) {
	cfg := config(newPrefix(t))
	a, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)

	var (
		mu    sync.Mutex
		acked []string
		fail  error
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("a-%d-%04d", w, i)
				err := a.AddHost(&state.HostState{Name: name})
				mu.Lock()
				if err == nil {
					acked = append(acked, name)
				} else if fail == nil {
					fail = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)

	raw := rawClient(t)
	resp, err := raw.Get(context.Background(), cfg.Prefix+"/lock")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	_, err = raw.Revoke(context.Background(), clientv3LeaseID(resp.Kvs[0].Lease))
	require.NoError(t, err)

	bcfg := cfg
	bcfg.LockTimeout = 5 * time.Second
	bb := openTB(t, bcfg)
	b, err := state.Open(bb)
	require.NoError(t, err)
	require.NoError(t, b.AddHost(&state.HostState{Name: "b-0"}))

	// A's writers all stop at their first failure.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		close(stop)
		<-done
		t.Fatal("controller A kept writing after losing its lock")
	}
	close(stop)
	require.Error(t, fail)
	assert.ErrorIs(t, fail, state.ErrLocked)
	t.Logf("A's error: %v", fail)
	late := a.AddHost(&state.HostState{Name: "a-late"})
	assert.ErrorIs(t, late, state.ErrLocked)

	// B's view: A's acknowledged writes, B's, nothing else.
	require.NoError(t, b.Close())
	want := append(slices.Clone(acked), "b-0")
	slices.Sort(want)
	assert.Equal(t, want, hostNames(t, cfg))
	assert.NotEmpty(t, acked)
	t.Logf("A wrote %d hosts before it lost the lock", len(acked))
}

// TestFencing_LockKeyDeleted: the lock key disappears while A's lease
// lives on (someone ran etcdctl del), and B takes the lock: A's lease
// keeps its session alive, so only the comparison in A's transaction
// stops A's write.
func TestFencing_LockKeyDeleted(t *testing.T) {
	cfg := config(newPrefix(t))
	a, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	require.NoError(t, a.AddHost(&state.HostState{Name: "a-1"}))

	_, err = rawClient(t).Delete(context.Background(), cfg.Prefix+"/lock")
	require.NoError(t, err)
	bcfg := cfg
	b := openTB(t, bcfg)
	_, err = b.Commit(&state.Batch{Time: time.Now(), Changes: []state.Change{{Kind: state.KindHost, Key: "b-1", Host: &state.HostState{Name: "b-1"}}}})
	require.NoError(t, err)

	err = a.AddHost(&state.HostState{Name: "a-2"})
	require.ErrorIs(t, err, state.ErrLocked)
	var le *state.LockError
	require.ErrorAs(t, err, &le)
	require.NotNil(t, le.Holder, "the error names the new holder: %v", err)
	t.Logf("A's error: %v", err)
	assert.ErrorIs(t, a.AddHost(&state.HostState{Name: "a-3"}), state.ErrLocked, "and stays refused")
	require.NoError(t, b.Close())
	assert.Equal(t, []string{"a-1", "b-1"}, hostNames(t, cfg))
}

// TestFencing_ChangedBehindOurBack: a write under the prefix that did not
// come through the lock (the metadata rewritten by hand) makes the next
// commit fail with ErrConflict rather than overwrite it.
func TestFencing_ChangedBehindOurBack(t *testing.T) {
	cfg := config(newPrefix(t))
	a, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	require.NoError(t, a.AddHost(&state.HostState{Name: "a-1"}))
	raw := rawClient(t)
	resp, err := raw.Get(context.Background(), cfg.Prefix+"/metadata")
	require.NoError(t, err)
	_, err = raw.Put(context.Background(), cfg.Prefix+"/metadata", string(resp.Kvs[0].Value))
	require.NoError(t, err)
	err = a.AddHost(&state.HostState{Name: "a-2"})
	assert.ErrorIs(t, err, state.ErrConflict)
	assert.False(t, errors.Is(err, state.ErrLocked))
	t.Logf("error: %v", err)
}
