package boltbackend_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/state"
)

func hostBatch(name string) *state.Batch {
	now := state.Timestamp(time.Now())
	h := &state.HostState{Name: name, CreatedAt: now, UpdatedAt: now}
	return &state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: name, Host: h}}}
}

// gate holds the first write transaction open until released, so that a
// test can queue batches behind it deterministically.
type gate struct {
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{})}
}

// hook is a commit hook that blocks the first transaction.
func (g *gate) hook() error {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
	}
	return nil
}

// direct are the options of tests of the direct commit path: every group
// in one bbolt transaction, no log (imports and groups too large for the
// log take it too).
var direct = &boltbackend.Options{Log: boltbackend.LogOptions{Disabled: true}}

// waitQueued waits until n batches wait for the committer.
func waitQueued(t testing.TB, b *boltbackend.Backend, n int) {
	t.Helper()
	for boltbackend.Queued(b) < n {
		time.Sleep(time.Millisecond)
	}
	require.Equal(t, n, boltbackend.Queued(b))
}

// TestCommit_GroupsConcurrentBatches: batches that arrive while a
// transaction commits share the next transaction, each with its own
// serial.
func TestCommit_GroupsConcurrentBatches(t *testing.T) {
	b := openTB(t, filepath.Join(t.TempDir(), "state.db"), direct)
	g := newGate()
	boltbackend.SetHooks(b, boltbackend.Hooks{Commit: g.hook})
	txns0 := boltbackend.WriteTxns(b)

	const n = 31
	var wg sync.WaitGroup
	serials := make(chan uint64, n+1)
	wg.Go(func() {
		m, err := b.Commit(hostBatch("first"))
		assert.NoError(t, err)
		serials <- m.Serial
	})
	<-g.entered
	for i := range n {
		wg.Go(func() {
			m, err := b.Commit(hostBatch(fmt.Sprintf("h%02d", i)))
			assert.NoError(t, err)
			serials <- m.Serial
		})
	}
	waitQueued(t, b, n)
	close(g.release)
	wg.Wait()
	close(serials)

	assert.Equal(t, txns0+2, boltbackend.WriteTxns(b), "32 batches in 2 transactions: the first, then all that queued behind it")
	seen := map[uint64]bool{}
	for s := range serials {
		assert.False(t, seen[s], "serial %d twice", s)
		seen[s] = true
	}
	for s := uint64(1); s <= n+1; s++ {
		assert.True(t, seen[s], "serial %d missing: each batch is one change", s)
	}
	require.NoError(t, b.View(func(s state.Snapshot) error {
		nh, _ := s.Len()
		assert.Equal(t, n+1, nh)
		assert.Equal(t, uint64(n+1), s.Metadata().Serial)
		return nil
	}))
	require.NoError(t, b.Check())
}

// TestCommit_FailingBatchFailsAlone: a batch that fails inside the group
// transaction fails alone; the others commit exactly once.
func TestCommit_FailingBatchFailsAlone(t *testing.T) {
	b := openTB(t, filepath.Join(t.TempDir(), "state.db"), direct)
	g := newGate()
	errPoison := errors.New("poisoned batch")
	var mu sync.Mutex
	applied := map[string]int{}
	boltbackend.SetHooks(b, boltbackend.Hooks{Apply: func(batch *state.Batch) error {
		key := batch.Changes[0].Key
		mu.Lock()
		applied[key]++
		mu.Unlock()
		if key == "poison" {
			return errPoison
		}
		return nil
	}, Commit: g.hook})

	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := b.Commit(hostBatch("first"))
		assert.NoError(t, err)
	})
	<-g.entered
	names := []string{"a", "b", "poison", "c", "d"}
	results := make([]error, len(names))
	for i, name := range names {
		wg.Go(func() {
			_, results[i] = b.Commit(hostBatch(name))
		})
	}
	waitQueued(t, b, len(names))
	close(g.release)
	wg.Wait()

	for i, name := range names {
		if name == "poison" {
			assert.ErrorIs(t, results[i], errPoison, "the failing batch gets its own error")
		} else {
			assert.NoError(t, results[i], name)
		}
	}
	require.NoError(t, b.View(func(s state.Snapshot) error {
		for _, name := range names {
			_, ok, err := s.Host(name)
			require.NoError(t, err)
			assert.Equal(t, name != "poison", ok, name)
		}
		assert.Equal(t, uint64(1+4), s.Metadata().Serial, "four good batches, each counted once")
		nh, _ := s.Len()
		assert.Equal(t, 5, nh)
		return nil
	}))
	mu.Lock()
	assert.Equal(t, 2, applied["poison"], "tried in the group, then alone")
	mu.Unlock()
	require.NoError(t, b.Check())
}

// TestCommit_FailedCommitKeepsAcknowledgedData injects commit failures
// (as a full disk would cause): the failing writes report errors, store
// nothing, and the store keeps working once the fault is gone.
func TestCommit_FailedCommitKeepsAcknowledgedData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := boltbackend.Open(path, direct)
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)
	require.NoError(t, st.AddHost(&state.HostState{Name: "before", Address: "192.0.2.1"}))
	require.NoError(t, st.AddResource("r:1", &state.ResourceState{Type: "t"}))
	acked := st.Metadata()

	errDisk := errors.New("no space left on device (injected)")
	var mu sync.Mutex
	failing := true
	boltbackend.SetHooks(b, boltbackend.Hooks{Commit: func() error {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return errDisk
		}
		return nil
	}})
	err = st.AddHost(&state.HostState{Name: "lost"})
	require.ErrorIs(t, err, errDisk)
	err = st.Update(func(tx *state.Tx) error {
		if err := tx.RemoveHost("before"); err != nil {
			return err
		}
		return tx.AddResource("r:2", &state.ResourceState{Type: "t"})
	})
	require.ErrorIs(t, err, errDisk)
	assert.False(t, st.HasHost("lost"), "memory unchanged by a failed write")
	assert.True(t, st.HasHost("before"))
	assert.Equal(t, acked, st.Metadata())
	require.NoError(t, b.View(func(s state.Snapshot) error {
		assert.Equal(t, acked, s.Metadata(), "nothing of the failed writes is stored")
		_, ok, _ := s.Host("lost")
		assert.False(t, ok)
		return nil
	}))

	mu.Lock()
	failing = false
	mu.Unlock()
	require.NoError(t, st.AddHost(&state.HostState{Name: "after"}), "the store works again")
	assert.Equal(t, acked.Serial+1, st.Metadata().Serial)
	require.NoError(t, st.Close())

	b2 := openTB(t, path, nil)
	require.NoError(t, b2.Check())
	st2, err := state.Open(b2)
	require.NoError(t, err)
	assert.True(t, st2.HasHost("before"))
	assert.True(t, st2.HasHost("after"))
	assert.False(t, st2.HasHost("lost"))
	_, ok := st2.GetResource("r:2")
	assert.False(t, ok)
	assert.Equal(t, acked.Serial+1, st2.Metadata().Serial)
}

// TestCommit_InvalidBatchFailsBeforeTransaction: records that break the
// store's rules are refused with ErrInvalid, without a transaction.
func TestCommit_InvalidBatchFailsBeforeTransaction(t *testing.T) {
	b := openTB(t, filepath.Join(t.TempDir(), "state.db"), nil)
	txns := boltbackend.WriteTxns(b)
	now := state.Timestamp(time.Now())
	cases := map[string]*state.Batch{
		"nil batch":         nil,
		"name is not key":   {Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: "a", Host: &state.HostState{Name: "b"}}}},
		"port":              {Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: "a", Host: &state.HostState{Name: "a", Port: 70000}}}},
		"not normalized":    {Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: "a", Host: &state.HostState{Name: "a", Vars: map[string]any{"x": 1}}}}},
		"bad resource key":  {Time: now, Changes: []state.Change{{Kind: state.KindResource, Key: "a\x00b", Resource: &state.ResourceState{Type: "t"}}}},
		"bad resource type": {Time: now, Changes: []state.Change{{Kind: state.KindResource, Key: "k", Resource: &state.ResourceState{}}}},
		"unknown kind":      {Time: now, Changes: []state.Change{{Kind: 9, Key: "k"}}},
		"empty delete key":  {Time: now, Changes: []state.Change{{Kind: state.KindHost}}},
		"year 10000":        {Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"bad lineage":       {Time: now, Replace: &state.Metadata{Lineage: "\xff"}},
		"one bad of two": {Time: now, Changes: []state.Change{
			{Kind: state.KindHost, Key: "ok", Host: &state.HostState{Name: "ok"}},
			{Kind: state.KindHost, Key: "bad", Host: &state.HostState{Name: "bad", Port: -1}},
		}},
	}
	for name, batch := range cases {
		_, err := b.Commit(batch)
		assert.ErrorIs(t, err, state.ErrInvalid, name)
	}
	assert.Equal(t, txns, boltbackend.WriteTxns(b), "no transaction ran")
	require.NoError(t, b.View(func(s state.Snapshot) error {
		assert.Zero(t, s.Metadata().Serial)
		nh, nr := s.Len()
		assert.Zero(t, nh+nr)
		return nil
	}))
}

func TestCommit_EmptyBatchIsAChange(t *testing.T) {
	b := openTB(t, filepath.Join(t.TempDir(), "state.db"), nil)
	m, err := b.Commit(&state.Batch{Time: time.Now()})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), m.Serial)
}

// TestView_ConsistentDuringWrites: a View sees one committed state while
// writers move records around: pairs written together are seen together,
// and Len matches what iteration finds.
func TestView_ConsistentDuringWrites(t *testing.T) {
	b := openTB(t, filepath.Join(t.TempDir(), "state.db"), nil)
	st, err := state.Open(b)
	require.NoError(t, err)
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
				name := fmt.Sprintf("w%d-%d", w, i%20)
				err := st.Update(func(tx *state.Tx) error {
					if i%3 == 2 {
						if err := tx.RemoveHost(name); err != nil {
							return err
						}
						return tx.RemoveResource(name)
					}
					if err := tx.AddHost(&state.HostState{Name: name, Vars: map[string]any{"i": i}}); err != nil {
						return err
					}
					return tx.AddResource(name, &state.ResourceState{Type: fmt.Sprintf("t%d", i%2), Data: map[string]any{"i": i}})
				})
				assert.NoError(t, err)
			}
		})
	}
	// View until the writers have committed a good many changes meanwhile.
	for views := 0; views < 30 || st.Metadata().Serial < 300; views++ {
		require.NoError(t, b.View(func(s state.Snapshot) error {
			nh, nr := s.Len()
			hosts := map[string]int64{}
			require.NoError(t, s.Hosts(func(h *state.HostState) error { hosts[h.Name] = h.Vars["i"].(int64); return nil }))
			res := map[string]int64{}
			require.NoError(t, s.Resources(func(k string, r *state.ResourceState) error { res[k] = r.Data["i"].(int64); return nil }))
			typed := 0
			for _, typ := range []string{"t0", "t1"} {
				require.NoError(t, state.ResourcesOfType(s, typ, func(string, *state.ResourceState) error { typed++; return nil }))
			}
			assert.Equal(t, nh, len(hosts), "Len matches the hosts")
			assert.Equal(t, nr, len(res), "Len matches the resources")
			assert.Equal(t, nr, typed, "the index matches the resources")
			assert.True(t, reflect.DeepEqual(hosts, res), "pairs written together are seen together")
			return nil
		}))
	}
	close(stop)
	wg.Wait()
	require.NoError(t, st.Close())
}

func TestView_SnapshotUnusableAfterView(t *testing.T) {
	b := openTB(t, filepath.Join(t.TempDir(), "state.db"), nil)
	var kept state.Snapshot
	require.NoError(t, b.View(func(s state.Snapshot) error { kept = s; return nil }))
	_, _, err := kept.Host("x")
	assert.Error(t, err)
	assert.Error(t, kept.Hosts(func(*state.HostState) error { return nil }))
	assert.Zero(t, kept.Metadata())
}

// TestCommit_UnknownOutcomeStopsWrites simulates a commit that bbolt
// reports failed after writing the new meta page (its last fsync
// failed): the outcome is unknown (state.ErrOutcomeUnknown), so that
// Commit and every later Commit and View fail until the store is
// reopened; reopening reads what is there.
func TestCommit_UnknownOutcomeStopsWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := boltbackend.Open(path, direct)
	require.NoError(t, err)
	_, err = b.Commit(hostBatch("acked"))
	require.NoError(t, err)
	errSync := errors.New("fdatasync: input/output error (injected)")
	var once sync.Once
	boltbackend.SetHooks(b, boltbackend.Hooks{Result: func(err error) error {
		once.Do(func() {
			if err == nil {
				err = errSync
			}
		})
		return err
	}})
	_, err = b.Commit(hostBatch("unknown"))
	require.ErrorIs(t, err, errSync)
	require.ErrorIs(t, err, state.ErrOutcomeUnknown)
	assert.Contains(t, err.Error(), "may or may not be stored")
	_, err = b.Commit(hostBatch("later"))
	require.ErrorIs(t, err, errSync, "every later commit fails")
	require.ErrorIs(t, err, state.ErrOutcomeUnknown)
	assert.Contains(t, err.Error(), "reopen")
	err = b.View(func(s state.Snapshot) error { return nil })
	require.ErrorIs(t, err, state.ErrOutcomeUnknown, "no View serves what may not be on disk")
	require.NoError(t, b.Close())

	b = openTB(t, path, nil)
	require.NoError(t, b.Check())
	require.NoError(t, b.View(func(s state.Snapshot) error {
		_, ok, _ := s.Host("acked")
		assert.True(t, ok, "acknowledged before the failure")
		_, ok, _ = s.Host("later")
		assert.False(t, ok, "refused after the failure")
		return nil
	}))
	_, err = b.Commit(hostBatch("after-reopen"))
	assert.NoError(t, err)
}
