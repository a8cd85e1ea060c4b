package state_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

// lateBackend stores each batch at once but can hold a Commit's return
// (a group commit whose goroutines wake up in another order than their
// serials).
type lateBackend struct {
	*statetest.Memory
	mu sync.Mutex
	// hold, when set, is waited for by the next Commit after it stored
	// its batch.
	hold chan struct{}
	// stored receives the serial of each stored batch.
	stored chan uint64
}

func (l *lateBackend) Commit(b *state.Batch) (state.Metadata, error) {
	l.mu.Lock()
	hold := l.hold
	l.hold = nil
	m, err := l.Memory.Commit(b)
	l.mu.Unlock()
	if err == nil {
		l.stored <- m.Serial
	}
	if hold != nil {
		<-hold
	}
	return m, err
}

// TestState_PublishesInSerialOrder: batch 1 is stored but its Commit
// returns late; batch 2 commits and returns at once. Memory must never
// show serial 2 without batch 1 (an export of it would claim serial 2 and
// lack host a), so the write of b returns only after a is published.
func TestState_PublishesInSerialOrder(t *testing.T) {
	l := &lateBackend{Memory: statetest.NewMemory(), stored: make(chan uint64, 4)}
	st, err := state.Open(l)
	require.NoError(t, err)
	defer st.Close()

	release := make(chan struct{})
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	defer unhold() // before Close, which waits for the held write
	l.hold = release
	errA, errB := make(chan error, 1), make(chan error, 1)
	go func() { errA <- st.AddHost(&state.HostState{Name: "a"}) }()
	require.Equal(t, uint64(1), <-l.stored)
	go func() { errB <- st.AddHost(&state.HostState{Name: "b"}) }()
	require.Equal(t, uint64(2), <-l.stored)

	// Batch 2's Commit has returned; batch 1's is held.
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
		require.NoError(t, st.View(func(s state.Snapshot) error {
			if s.Metadata().Serial >= 2 {
				_, ok, _ := s.Host("a")
				require.True(t, ok, "memory shows serial %d without batch 1", s.Metadata().Serial)
			}
			return nil
		}))
		select {
		case err := <-errB:
			t.Fatalf("the write of serial 2 returned (%v) before serial 1 was published", err)
		default:
		}
		time.Sleep(time.Millisecond)
	}
	assert.False(t, st.HasHost("b"), "serial 2 is not visible before serial 1")

	unhold()
	require.NoError(t, <-errA)
	require.NoError(t, <-errB)
	assert.True(t, st.HasHost("a"))
	assert.True(t, st.HasHost("b"))
	assert.Equal(t, uint64(2), st.Metadata().Serial)
}

// TestState_PublishesPastAFailedWrite: a write that fails leaves no gap
// that later writes wait for.
func TestState_PublishesPastAFailedWrite(t *testing.T) {
	st, b := openMemory(t)
	var calls sync.WaitGroup
	b.FailCommits(func(batch *state.Batch) error {
		if batch.Changes[0].Key == "bad" {
			return errDiskFull
		}
		return nil
	})
	for i := range 16 {
		calls.Go(func() {
			name := fmt.Sprintf("h%d", i)
			if i%4 == 0 {
				assert.ErrorIs(t, st.AddResource("bad", &state.ResourceState{Type: "t"}), errDiskFull)
				return
			}
			assert.NoError(t, st.AddHost(&state.HostState{Name: name}))
		})
	}
	calls.Wait()
	n, _ := st.Len()
	assert.Equal(t, 12, n)
	assert.Equal(t, uint64(12), st.Metadata().Serial)
}

// TestState_OutcomeUnknownRefusesLaterWrites: when the backend cannot tell
// whether a write was stored, the State says so and refuses every later
// write until the store is reopened, even once the backend would accept
// them again.
func TestState_OutcomeUnknownRefusesLaterWrites(t *testing.T) {
	st, b := openMemory(t)
	require.NoError(t, st.AddHost(&state.HostState{Name: "before"}))
	unknown := fmt.Errorf("membackend: sync failed after the write: %w", state.ErrOutcomeUnknown)
	b.FailCommits(func(*state.Batch) error { return unknown })
	err := st.AddHost(&state.HostState{Name: "maybe"})
	require.ErrorIs(t, err, state.ErrOutcomeUnknown)
	assert.Contains(t, err.Error(), "may or may not be stored")
	assert.False(t, st.HasHost("maybe"), "memory shows only what is known to be stored")

	b.FailCommits(nil)
	writes := map[string]error{
		"AddHost":     st.AddHost(&state.HostState{Name: "after"}),
		"RemoveHost":  st.RemoveHost("before"),
		"AddResource": st.AddResource("r", &state.ResourceState{Type: "t"}),
		"Update":      st.Update(func(tx *state.Tx) error { return tx.AddHost(&state.HostState{Name: "u"}) }),
		"Replace":     st.Replace(&state.Contents{}, true),
	}
	for name, err := range writes {
		require.ErrorIs(t, err, state.ErrOutcomeUnknown, name)
		assert.Contains(t, err.Error(), "reopened", name)
	}
	assert.True(t, st.HasHost("before"), "reads still work")
	assert.False(t, st.HasHost("after"))
	require.NoError(t, st.Close())
	assert.False(t, errors.Is(st.Close(), state.ErrOutcomeUnknown))
}
