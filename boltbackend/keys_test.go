package boltbackend_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/state"
)

// TestSnapshot_KeyScanner: the snapshot lists names and keys by prefix
// with a cursor seek, in byte order, and stops when fn fails.
func TestSnapshot_KeyScanner(t *testing.T) {
	b, err := boltbackend.Open(filepath.Join(t.TempDir(), "s.db"), nil)
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)
	defer st.Close()
	for _, n := range []string{"web02", "db01", "web01", "we", "webx"} {
		require.NoError(t, st.AddHost(&state.HostState{Name: n}))
	}
	require.NoError(t, st.AddResource("linode:1", &state.ResourceState{Type: "t"}))
	require.NoError(t, st.AddResource("aws:1", &state.ResourceState{Type: "t"}))
	var names, keys []string
	stop := errors.New("stop")
	err = b.View(func(s state.Snapshot) error {
		ks, ok := s.(state.KeyScanner)
		require.True(t, ok)
		require.NoError(t, ks.HostNames("web", func(n string) error { names = append(names, n); return nil }))
		require.NoError(t, ks.ResourceKeys("", func(k string) error { keys = append(keys, k); return nil }))
		n := 0
		assert.Equal(t, stop, ks.HostNames("", func(string) error { n++; return stop }))
		assert.Equal(t, 1, n)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"web01", "web02", "webx"}, names)
	assert.Equal(t, []string{"aws:1", "linode:1"}, keys)
}
