package state_test

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

var errDiskFull = errors.New("no space left on device")

func openMemory(t *testing.T) (*state.State, *statetest.Memory) {
	t.Helper()
	b := statetest.NewMemory()
	st, err := state.Open(b)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st, b
}

func TestState_FailedWriteLeavesMemoryUnchanged(t *testing.T) {
	st, b := openMemory(t)
	require.NoError(t, st.AddHost(&state.HostState{Name: "web01", Address: "a"}))
	require.NoError(t, st.AddResource("r", &state.ResourceState{Type: "t", ID: "1"}))
	hosts, res, meta := st.AllHosts(), st.AllResources(), st.Metadata()

	b.FailCommits(func(*state.Batch) error { return errDiskFull })
	writes := map[string]error{
		"AddHost new":      st.AddHost(&state.HostState{Name: "web02"}),
		"AddHost update":   st.AddHost(&state.HostState{Name: "web01", Address: "b"}),
		"RemoveHost":       st.RemoveHost("web01"),
		"AddResource":      st.AddResource("r", &state.ResourceState{Type: "other"}),
		"RemoveResource":   st.RemoveResource("r"),
		"Update":           st.Update(func(tx *state.Tx) error { return tx.AddHost(&state.HostState{Name: "web03"}) }),
		"Replace (import)": st.Replace(&state.Contents{}, true),
	}
	for name, err := range writes {
		assert.ErrorIs(t, err, errDiskFull, "%s returns the backend's error", name)
	}
	assert.True(t, reflect.DeepEqual(hosts, st.AllHosts()), "hosts unchanged after failed writes")
	assert.True(t, reflect.DeepEqual(res, st.AllResources()), "resources unchanged")
	assert.Equal(t, meta, st.Metadata(), "metadata unchanged")
	assert.Len(t, st.GetResourcesByType("t"), 1, "index unchanged")
	assert.Empty(t, st.GetResourcesByType("other"))

	// Once the backend recovers, writes work again.
	b.FailCommits(nil)
	require.NoError(t, st.AddHost(&state.HostState{Name: "web02"}))
	assert.True(t, st.HasHost("web02"))
	assert.Equal(t, meta.Serial+1, st.Metadata().Serial)
}

// gateBackend holds every Commit until n of them are in flight at once.
type gateBackend struct {
	*statetest.Memory
	n        int
	mu       sync.Mutex
	inFlight int
	max      int
	release  chan struct{}
}

func (g *gateBackend) Commit(b *state.Batch) (state.Metadata, error) {
	g.mu.Lock()
	g.inFlight++
	g.max = max(g.max, g.inFlight)
	if g.inFlight == g.n {
		close(g.release)
	}
	g.mu.Unlock()
	select {
	case <-g.release:
	case <-time.After(10 * time.Second):
		return state.Metadata{}, errors.New("commits were serialized: never had enough in flight")
	}
	defer func() { g.mu.Lock(); g.inFlight--; g.mu.Unlock() }()
	return g.Memory.Commit(b)
}

// Writes of different records must reach the backend concurrently, or no
// backend could group-commit them.
func TestState_WritesOfDifferentKeysReachBackendConcurrently(t *testing.T) {
	const n = 8
	g := &gateBackend{Memory: statetest.NewMemory(), n: n, release: make(chan struct{})}
	st, err := state.Open(g)
	require.NoError(t, err)
	defer st.Close()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			assert.NoError(t, st.AddHost(&state.HostState{Name: fmt.Sprintf("h%d", i)}))
		})
	}
	wg.Wait()
	assert.Equal(t, n, g.max)
	hosts, _ := st.Len()
	assert.Equal(t, n, hosts)
	assert.Equal(t, uint64(n), st.Metadata().Serial)
}

// Reads never wait for a disk write: while a commit is held inside the
// backend, every read of the State returns (and sees the state before the
// write).
func TestState_ReadsDoNotWaitForWritesInFlight(t *testing.T) {
	b := statetest.NewMemory()
	st, err := state.Open(b)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.AddHost(&state.HostState{Name: "old"}))
	entered, release := make(chan struct{}), make(chan struct{})
	b.FailCommits(func(*state.Batch) error {
		close(entered)
		<-release
		return nil
	})
	written := make(chan error)
	go func() { written <- st.AddHost(&state.HostState{Name: "new"}) }()
	<-entered

	reads := make(chan struct{})
	go func() {
		defer close(reads)
		_, ok := st.GetHost("old")
		assert.True(t, ok)
		assert.False(t, st.HasHost("new"), "not visible before it is durable")
		assert.Len(t, st.AllHosts(), 1)
		assert.Equal(t, uint64(1), st.Metadata().Serial)
		assert.NoError(t, st.View(func(snap state.Snapshot) error {
			n, _ := snap.Len()
			assert.Equal(t, 1, n)
			return nil
		}))
		st.GetResourcesByType("t")
		st.AllResources()
	}()
	select {
	case <-reads:
	case <-time.After(10 * time.Second):
		t.Fatal("reads waited for a write held in the backend")
	}
	close(release)
	require.NoError(t, <-written)
	assert.True(t, st.HasHost("new"))
}

// Writes of the same record are serialized: the second waits for the first.
func TestState_WritesOfSameKeyAreSerialized(t *testing.T) {
	b := statetest.NewMemory()
	var mu sync.Mutex
	inFlight, maxInFlight := 0, 0
	b.FailCommits(func(*state.Batch) error {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return nil
	})
	st, err := state.Open(b)
	require.NoError(t, err)
	defer st.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { assert.NoError(t, st.AddHost(&state.HostState{Name: "same", Port: i})) })
	}
	wg.Wait()
	assert.Equal(t, 1, maxInFlight, "two writes of one key never in flight together")
}

// closeSpy is a backend whose Close does not wait for anything: it notes
// whether a Commit was in flight when it was called, so that only the
// State's own waiting keeps them apart.
type closeSpy struct {
	*statetest.Memory
	mu             sync.Mutex
	inFlight       int
	closedInFlight bool
	closeCalled    chan struct{}
}

func (c *closeSpy) Commit(b *state.Batch) (state.Metadata, error) {
	c.mu.Lock()
	c.inFlight++
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.inFlight--; c.mu.Unlock() }()
	return c.Memory.Commit(b)
}

func (c *closeSpy) Close() error {
	c.mu.Lock()
	c.closedInFlight = c.closedInFlight || c.inFlight > 0
	c.mu.Unlock()
	close(c.closeCalled)
	return nil
}

// Close waits for the writes in flight: it closes the backend only after
// they returned, and they succeed.
func TestState_CloseWaitsForWritesInFlight(t *testing.T) {
	b := &closeSpy{Memory: statetest.NewMemory(), closeCalled: make(chan struct{})}
	defer b.Memory.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	b.FailCommits(func(*state.Batch) error {
		close(entered)
		<-release // the write stays in flight until the test lets it go
		return nil
	})
	st, err := state.Open(b)
	require.NoError(t, err)
	written := make(chan error)
	go func() { written <- st.AddHost(&state.HostState{Name: "h"}) }()
	<-entered
	closed := make(chan error)
	go func() { closed <- st.Close() }()
	// A Close that does not wait calls the backend's Close at once; give
	// it the time to, before letting the write go.
	select {
	case <-b.closeCalled:
		t.Error("Close closed the backend while a write was in flight")
	case err := <-closed:
		t.Errorf("Close returned (%v) while a write was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-written, "a write in flight when Close was called completes")
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the write did")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	assert.False(t, b.closedInFlight, "the backend was closed while a Commit was in flight")
}

func TestOpen_ClosesBackendOnLoadError(t *testing.T) {
	b := &failingView{Memory: statetest.NewMemory()}
	_, err := state.Open(b)
	require.ErrorIs(t, err, state.ErrCorrupt)
	assert.ErrorIs(t, b.Memory.View(func(state.Snapshot) error { return nil }), state.ErrClosed, "backend closed")
}

type failingView struct{ *statetest.Memory }

func (f *failingView) View(func(state.Snapshot) error) error {
	return fmt.Errorf("bad record: %w", state.ErrCorrupt)
}

func TestNextMetadata(t *testing.T) {
	t0 := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	prev := state.Metadata{Version: "1.0", CreatedAt: t0, UpdatedAt: t0.Add(time.Hour), Serial: 4, Lineage: "L"}

	m := state.NextMetadata(prev, &state.Batch{Time: t0.Add(2 * time.Hour)})
	assert.Equal(t, uint64(5), m.Serial)
	assert.Equal(t, t0.Add(2*time.Hour), m.UpdatedAt)
	assert.Equal(t, "L", m.Lineage)
	assert.Equal(t, t0, m.CreatedAt)

	m = state.NextMetadata(prev, &state.Batch{Time: t0})
	assert.Equal(t, t0.Add(time.Hour), m.UpdatedAt, "UpdatedAt never goes back")

	m = state.NextMetadata(state.Metadata{}, &state.Batch{Time: t0})
	assert.Equal(t, "1.0", m.Version, "a store without metadata gets it")
	assert.NotEmpty(t, m.Lineage)
	assert.Equal(t, t0, m.CreatedAt)
	assert.Equal(t, uint64(1), m.Serial)

	rep := state.Metadata{Serial: 9, Lineage: "X", CreatedAt: t0, UpdatedAt: t0}
	m = state.NextMetadata(prev, &state.Batch{Time: t0.Add(5 * time.Hour), Replace: &rep})
	assert.Equal(t, uint64(9), m.Serial, "Replace sets the serial as given")
	assert.Equal(t, "X", m.Lineage)
	assert.Equal(t, "1.0", m.Version)
}

func TestNewLineage(t *testing.T) {
	a, b := state.NewLineage(), state.NewLineage()
	assert.NotEqual(t, a, b)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, a)
}

func TestLockError_Message(t *testing.T) {
	since := time.Date(2024, 1, 15, 10, 31, 5, 0, time.Local)
	err := error(&state.LockError{Path: "state.db", Holder: &state.LockInfo{PID: 4242, Host: "ci-7", Command: "ftl2 apply", Since: since}})
	assert.ErrorIs(t, err, state.ErrLocked)
	assert.Equal(t, "state.db: locked by pid 4242 (ftl2 apply) on host ci-7 since 2024-01-15 10:31:05 "+since.Format("MST"), err.Error())
	err = &state.LockError{Path: "state.db"}
	assert.Equal(t, "state.db: locked by another process", err.Error())
	err = &state.LockError{Path: "s", Holder: &state.LockInfo{PID: 1, Host: "h"}, Stale: true}
	assert.Contains(t, err.Error(), "stale lock info from pid 1")
}
