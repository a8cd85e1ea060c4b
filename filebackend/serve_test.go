package filebackend_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/internal/live"
	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
)

func TestServe_WhileAStateHoldsTheStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	b, err := filebackend.Open(path, nil)
	require.NoError(t, err)
	sock, err := b.Serving()
	assert.NoError(t, err)
	assert.Empty(t, sock, "nothing served before a State holds the store")
	st, err := state.Open(b)
	require.NoError(t, err)
	defer st.Close()
	sock, err = b.Serving()
	require.NoError(t, err)
	assert.Equal(t, path+".sock", sock)
	info, err := lockinfo.Read(lockinfo.Path(path))
	require.NoError(t, err)
	assert.Equal(t, sock, info.Socket, "the lock info names the socket")
	assert.Equal(t, os.Getpid(), info.PID)

	require.NoError(t, st.AddHost(&state.HostState{Name: "web01", Address: "192.0.2.1"}))
	_, err = filebackend.Open(path, nil)
	require.ErrorIs(t, err, state.ErrLocked, "the store stays locked")
	r, err := live.Open(path, nil)
	require.NoError(t, err)
	require.NoError(t, r.View(func(s state.Snapshot) error {
		h, ok, err := s.Host("web01")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, "192.0.2.1", h.Address)
		assert.Equal(t, st.Metadata(), s.Metadata())
		return nil
	}))
	r.Close()

	require.NoError(t, st.Close())
	_, err = os.Lstat(sock)
	assert.ErrorIs(t, err, os.ErrNotExist, "the socket goes before the lock")
	_, err = live.Open(path, nil)
	assert.ErrorIs(t, err, live.ErrNotServed)
}

func TestServe_NotByReadersNorWithNoSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	b, err := filebackend.Open(path, &filebackend.Options{NoSocket: true})
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)
	sock, err := b.Serving()
	assert.Empty(t, sock)
	assert.NoError(t, err)
	require.NoError(t, st.Close())

	b, err = filebackend.Open(path, &filebackend.Options{ReadOnly: true})
	require.NoError(t, err)
	st, err = state.Open(b)
	require.NoError(t, err)
	sock, _ = b.Serving()
	assert.Empty(t, sock)
	require.NoError(t, st.Close())
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		assert.NotEqual(t, os.ModeSocket, e.Type(), e.Name())
	}
}
