package etcdbackend_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// watching runs Watch in the background and collects what it sees.
type watching struct {
	mu      sync.Mutex
	commits []state.Commit
	from    chan uint64
	done    chan error
}

func startWatching(t *testing.T, b *etcdbackend.Backend, ctx context.Context, from uint64) *watching {
	t.Helper()
	w := &watching{from: make(chan uint64, 1), done: make(chan error, 1)}
	go func() {
		w.done <- b.Watch(ctx, from, func(s uint64) { w.from <- s }, func(c state.Commit) error {
			w.mu.Lock()
			w.commits = append(w.commits, c)
			w.mu.Unlock()
			return nil
		})
	}()
	select {
	case <-w.from:
	case err := <-w.done:
		t.Fatalf("watch ended at once: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("watch does not start")
	}
	return w
}

func (w *watching) seen() []state.Commit {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]state.Commit(nil), w.commits...)
}

func (w *watching) waitFor(t *testing.T, n int) []state.Commit {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(w.seen()) < n {
		require.True(t, time.Now().Before(deadline), "saw %d of %d commits", len(w.seen()), n)
		time.Sleep(10 * time.Millisecond)
	}
	return w.seen()
}

func TestWatch_EveryCommitInOrderUntilTheWriterCloses(t *testing.T) {
	cfg := config(newPrefix(t))
	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	require.NoError(t, st.AddHost(&state.HostState{Name: "before"}))
	ro := cfg
	ro.ReadOnly = true
	reader := openTB(t, ro)
	w := startWatching(t, reader, context.Background(), 0)

	first := st.Metadata().Serial + 1
	for i := range 20 {
		require.NoError(t, st.AddHost(&state.HostState{Name: fmt.Sprintf("h%02d", i), Vars: map[string]any{"i": i}}))
	}
	require.NoError(t, st.Update(func(tx *state.Tx) error {
		if err := tx.RemoveHost("h00"); err != nil {
			return err
		}
		return tx.AddResource("vm:1", &state.ResourceState{Type: "vm", ID: "1"})
	}))
	cs := w.waitFor(t, 21)
	for i, c := range cs[:20] {
		assert.Equal(t, first+uint64(i), c.Serial)
		require.Len(t, c.Changes, 1)
		assert.Equal(t, fmt.Sprintf("h%02d", i), c.Changes[0].Host.Name)
		assert.Equal(t, int64(i), c.Changes[0].Host.Vars["i"])
		assert.False(t, c.Time.IsZero())
	}
	last := cs[20]
	assert.Equal(t, first+20, last.Serial)
	require.Len(t, last.Changes, 2, "one transaction, one commit")

	// An import is one Replaced commit; the commits after it are seen in
	// the new generation of records.
	doc := &state.Contents{Metadata: st.Metadata(), Hosts: map[string]*state.HostState{"imported": {Name: "imported"}}}
	require.NoError(t, st.Replace(doc, false))
	require.NoError(t, st.AddHost(&state.HostState{Name: "after"}))
	cs = w.waitFor(t, 23)
	assert.True(t, cs[21].Replaced)
	assert.Empty(t, cs[21].Changes)
	assert.Equal(t, st.Metadata().Serial-1, cs[21].Serial)
	require.Len(t, cs[22].Changes, 1)
	assert.Equal(t, "after", cs[22].Changes[0].Key)

	require.NoError(t, st.Close())
	select {
	case err := <-w.done:
		require.ErrorIs(t, err, etcdbackend.ErrReleased)
		assert.Contains(t, err.Error(), "released the store")
	case <-time.After(30 * time.Second):
		t.Fatal("the watch goes on after the writer closed the store")
	}
	assert.Len(t, w.seen(), 23, "nothing else")
}

func TestWatch_From(t *testing.T) {
	cfg := config(newPrefix(t))
	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	defer st.Close()
	var serials []uint64
	for i := range 6 {
		require.NoError(t, st.AddHost(&state.HostState{Name: fmt.Sprint("h", i)}))
		serials = append(serials, st.Metadata().Serial)
	}
	ro := cfg
	ro.ReadOnly = true
	reader := openTB(t, ro)
	ctx, cancel := context.WithCancel(context.Background())
	w := startWatching(t, reader, ctx, serials[2])
	cs := w.waitFor(t, 4)
	assert.Equal(t, serials[2], cs[0].Serial, "starts with the commit of that serial")
	assert.Equal(t, "h2", cs[0].Changes[0].Key)
	assert.Equal(t, serials[5], cs[3].Serial)
	cancel()
	select {
	case err := <-w.done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatal("the watch ignores its context")
	}

	err = reader.Watch(context.Background(), serials[5]+5, nil, func(state.Commit) error { return nil })
	assert.ErrorIs(t, err, state.ErrInvalid)
	assert.Contains(t, err.Error(), "ahead of the store")
}

func TestWatch_CompactedHistory(t *testing.T) {
	c := etcdtest.New(t, etcdtest.Options{})
	cfg := etcdbackend.Config{Endpoints: c.Endpoints(), Prefix: "/watch/compacted"}
	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	defer st.Close()
	for i := range 5 {
		require.NoError(t, st.AddHost(&state.HostState{Name: fmt.Sprint("h", i)}))
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	resp, err := cli.Get(context.Background(), "x")
	require.NoError(t, err)
	_, err = cli.Compact(context.Background(), resp.Header.Revision)
	require.NoError(t, err)

	ro := cfg
	ro.ReadOnly = true
	reader := openTB(t, ro)
	err = reader.Watch(context.Background(), 2, nil, func(state.Commit) error { return nil })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "older than etcd's history")

	// From now works, and fn's error ends the watch.
	stop := errors.New("enough")
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done <- reader.Watch(context.Background(), 0, func(uint64) { close(started) }, func(state.Commit) error { return stop })
	}()
	<-started
	require.NoError(t, st.AddHost(&state.HostState{Name: "after"}))
	select {
	case err := <-done:
		assert.ErrorIs(t, err, stop)
	case <-time.After(30 * time.Second):
		t.Fatal("no commit seen")
	}
}
