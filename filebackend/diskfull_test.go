package filebackend_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/internal/testfs"
	"github.com/go-ftl2/ftlstate/state"
)

// TestDiskFull: on a full file system a write fails with ENOSPC, the store
// holds exactly what was acknowledged, and it works again once there is
// room.
func TestDiskFull(t *testing.T) {
	dir := testfs.Tmpfs(t, "256k")
	filler := filepath.Join(dir, "filler")
	require.NoError(t, os.WriteFile(filler, make([]byte, 64<<10), 0o600))
	p := filepath.Join(dir, "state.json")
	b, err := filebackend.Open(p, nil)
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)
	defer func() { st.Close() }()

	pad := strings.Repeat("x", 2000)
	var acked []string
	var fullErr error
	for i := 0; fullErr == nil; i++ {
		require.Less(t, i, 1000, "the file system never filled up")
		name := fmt.Sprintf("h%04d", i)
		if fullErr = st.AddHost(&state.HostState{Name: name, Vars: map[string]any{"pad": pad}}); fullErr == nil {
			acked = append(acked, name)
		}
	}
	require.ErrorIs(t, fullErr, syscall.ENOSPC)
	assert.Contains(t, fullErr.Error(), p)
	require.NotEmpty(t, acked)
	t.Logf("full after %d hosts: %v", len(acked), fullErr)

	check := func(when string, want []string) {
		t.Helper()
		assert.Len(t, st.AllHosts(), len(want), when)
		for _, n := range want {
			assert.True(t, st.HasHost(n), "%s: %s", when, n)
		}
		require.NoError(t, b.Check(), "%s: file and memory agree", when)
		for _, e := range entries(t, dir) {
			assert.False(t, strings.Contains(e, ".tmp-"), "%s: temp file %s left", when, e)
		}
	}
	check("after ENOSPC", acked)
	// Still full: still failing, still nothing lost.
	assert.ErrorIs(t, st.AddHost(&state.HostState{Name: "more", Vars: map[string]any{"pad": pad}}), syscall.ENOSPC)
	check("after a second ENOSPC", acked)

	require.NoError(t, os.Remove(filler))
	require.NoError(t, st.AddHost(&state.HostState{Name: "after"}), "room again: writes work")
	acked = append(acked, "after")
	check("after space returned", acked)

	require.NoError(t, st.Close())
	b, err = filebackend.Open(p, nil)
	require.NoError(t, err)
	st, err = state.Open(b)
	require.NoError(t, err)
	check("after reopen", acked)
}

// TestReadOnlyFileSystem: a store on a read-only file system cannot be
// opened for writing (the error names the path) and is left as it was;
// it opens read-only.
func TestReadOnlyFileSystem(t *testing.T) {
	dir := testfs.Tmpfs(t, "1m")
	p := filepath.Join(dir, "state.json")
	b, err := filebackend.Open(p, nil)
	require.NoError(t, err)
	addHost(t, b, "web01", nil)
	require.NoError(t, b.Close())
	before := mustRead(t, p)
	testfs.ReadOnly(t, dir, true)

	_, err = filebackend.Open(p, nil)
	require.ErrorIs(t, err, syscall.EROFS)
	assert.Contains(t, err.Error(), p)
	assert.Equal(t, before, mustRead(t, p))

	ro, err := filebackend.Open(p, &filebackend.Options{ReadOnly: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"web01"}, hostNames(snapshot(t, ro)))
	require.NoError(t, ro.Close())
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
