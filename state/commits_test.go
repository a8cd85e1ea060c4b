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

func TestState_CommitsHoldsEveryCommitSinceOpen(t *testing.T) {
	st, _ := openMemory(t)
	base := st.Metadata().Serial
	require.NoError(t, st.AddHost(&state.HostState{Name: "web01", Address: "a"}))
	require.NoError(t, st.AddResource("r1", &state.ResourceState{Type: "t", ID: "1"}))
	require.NoError(t, st.Update(func(tx *state.Tx) error {
		if err := tx.RemoveHost("web01"); err != nil {
			return err
		}
		return tx.AddHost(&state.HostState{Name: "web02"})
	}))
	require.NoError(t, st.RemoveHost("absent"), "a removal of nothing commits nothing")

	cs, _, err := st.Commits(0, 0)
	require.NoError(t, err)
	require.Len(t, cs, 3)
	for i, c := range cs {
		assert.Equal(t, base+uint64(i)+1, c.Serial)
		assert.False(t, c.Time.IsZero())
		assert.False(t, c.Replaced)
	}
	assert.Equal(t, "web01", cs[0].Changes[0].Host.Name)
	assert.Equal(t, state.KindResource, cs[1].Changes[0].Kind)
	require.Len(t, cs[2].Changes, 2)
	assert.True(t, cs[2].Changes[0].Delete(), "the removal, as staged")
	assert.Equal(t, "web02", cs[2].Changes[1].Key)

	// From a serial, and at most max.
	cs, _, err = st.Commits(base+2, 1)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	assert.Equal(t, base+2, cs[0].Serial)

	// Newer than the newest: nothing yet.
	cs, _, err = st.Commits(base+4, 0)
	require.NoError(t, err)
	assert.Empty(t, cs)

	// Copies: changing what Commits returned changes nothing held.
	cs, _, _ = st.Commits(base+1, 1)
	cs[0].Changes[0].Host.Address = "changed"
	cs[0].Changes = nil
	cs, _, _ = st.Commits(base+1, 1)
	assert.Equal(t, "a", cs[0].Changes[0].Host.Address)
	h, _ := st.GetHost("web02")
	assert.NotNil(t, h)
}

func TestState_CommitsBeforeOpenAreHistory(t *testing.T) {
	var stores statetest.MemoryStores
	b, err := stores.Open("s")
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)
	require.NoError(t, st.AddHost(&state.HostState{Name: "a"}))
	require.NoError(t, st.Close())

	b, err = stores.Open("s")
	require.NoError(t, err)
	st, err = state.Open(b)
	require.NoError(t, err)
	defer st.Close()
	serial := st.Metadata().Serial
	_, _, err = st.Commits(serial, 0)
	var he *state.HistoryError
	require.ErrorAs(t, err, &he, "the commit that made the store's serial was made by an earlier open")
	assert.Equal(t, serial, he.From)
	assert.Equal(t, serial+1, he.Oldest)
	assert.Contains(t, err.Error(), "no longer in memory")
	cs, _, err := st.Commits(serial+1, 0)
	assert.NoError(t, err)
	assert.Empty(t, cs)
}

func TestState_CommitsWakesFollowersAndClose(t *testing.T) {
	st, _ := openMemory(t)
	next := st.Metadata().Serial + 1
	cs, wait, err := st.Commits(next, 0)
	require.NoError(t, err)
	require.Empty(t, cs)
	select {
	case <-wait:
		t.Fatal("woken before any commit")
	default:
	}
	require.NoError(t, st.AddHost(&state.HostState{Name: "a"}))
	select {
	case <-wait:
	case <-time.After(10 * time.Second):
		t.Fatal("not woken by a commit")
	}
	cs, wait, err = st.Commits(next, 0)
	require.NoError(t, err)
	require.Len(t, cs, 1)

	require.NoError(t, st.Close())
	select {
	case <-wait:
	case <-time.After(10 * time.Second):
		t.Fatal("not woken by Close")
	}
	_, wait, err = st.Commits(next, 0)
	assert.ErrorIs(t, err, state.ErrClosed)
	<-wait // closed for good
}

func TestState_CommitsOfReplace(t *testing.T) {
	st, _ := openMemory(t)
	require.NoError(t, st.AddHost(&state.HostState{Name: "a"}))
	next := st.Metadata().Serial + 1
	doc := &state.Contents{Metadata: st.Metadata(), Hosts: map[string]*state.HostState{"b": {Name: "b"}}}
	doc.Metadata.Serial = 40
	require.NoError(t, st.Replace(doc, false))
	require.NoError(t, st.AddHost(&state.HostState{Name: "c"}))

	// A follower at the next serial sees the Replace, then what follows.
	cs, _, err := st.Commits(next, 0)
	require.NoError(t, err)
	require.Len(t, cs, 2)
	assert.True(t, cs[0].Replaced)
	assert.Equal(t, uint64(41), cs[0].Serial)
	assert.Empty(t, cs[0].Changes)
	assert.Equal(t, uint64(42), cs[1].Serial)
	assert.Equal(t, "c", cs[1].Changes[0].Key)
}

func TestState_CommitsFailedWriteHoldsNothing(t *testing.T) {
	st, b := openMemory(t)
	next := st.Metadata().Serial + 1
	b.FailCommits(func(*state.Batch) error { return errDiskFull })
	assert.Error(t, st.AddHost(&state.HostState{Name: "a"}))
	b.FailCommits(nil)
	require.NoError(t, st.AddHost(&state.HostState{Name: "b"}))
	cs, _, err := st.Commits(next, 0)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	assert.Equal(t, "b", cs[0].Changes[0].Key)
	assert.Equal(t, next, cs[0].Serial)
}

// A follower reading while many writers write sees every commit exactly
// once, serials one by one, and each acknowledged write in one of them.
func TestState_CommitsFollowerSeesEveryCommitOnce(t *testing.T) {
	st, _ := openMemory(t)
	from := st.Metadata().Serial + 1
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				assert.NoError(t, st.AddHost(&state.HostState{Name: fmt.Sprintf("w%d-%d", w, i)}))
			}
		})
	}
	// Other followers read at the same time (under -race: Commits only
	// reads).
	stop := make(chan struct{})
	var others sync.WaitGroup
	for range 2 {
		others.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, wait, err := st.Commits(from, 10)
				assert.NoError(t, err)
				select {
				case <-wait:
				case <-stop:
					return
				}
			}
		})
	}
	defer func() { close(stop); others.Wait() }()
	seen := map[string]int{}
	next := from
	for len(seen) < writers*each {
		cs, wait, err := st.Commits(next, 100)
		require.NoError(t, err)
		for _, c := range cs {
			require.Equal(t, next, c.Serial, "serials one by one")
			next++
			for _, ch := range c.Changes {
				seen[ch.Key]++
			}
		}
		if len(cs) == 0 {
			select {
			case <-wait:
			case <-time.After(30 * time.Second):
				t.Fatalf("stuck at serial %d with %d hosts seen", next, len(seen))
			}
		}
	}
	wg.Wait()
	for k, n := range seen {
		assert.Equal(t, 1, n, "host %s seen once", k)
	}
	assert.Equal(t, st.Metadata().Serial+1, next)
}

// servingMemory is a Memory backend that records the State it is asked
// to serve.
type servingMemory struct {
	*statetest.Memory
	served *state.State
	err    error
}

func (m *servingMemory) Serve(st *state.State) error { m.served = st; return m.err }

func TestState_OpenAsksTheBackendToServe(t *testing.T) {
	b := &servingMemory{Memory: statetest.NewMemory()}
	st, err := state.Open(b)
	require.NoError(t, err)
	defer st.Close()
	assert.Same(t, st, b.served)

	b2 := &servingMemory{Memory: statetest.NewMemory(), err: errors.New("no socket here")}
	st2, err := state.Open(b2)
	require.NoError(t, err, "a store that cannot be served still opens")
	require.NoError(t, st2.AddHost(&state.HostState{Name: "a"}))
	st2.Close()
}

func TestState_NextSerial(t *testing.T) {
	st, _ := openMemory(t)
	next := st.NextSerial()
	assert.Equal(t, st.Metadata().Serial+1, next)
	require.NoError(t, st.AddHost(&state.HostState{Name: "a"}))
	cs, _, err := st.Commits(next, 0)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	assert.Equal(t, next+1, st.NextSerial())
	st.Close()
	assert.Zero(t, st.NextSerial())
}
