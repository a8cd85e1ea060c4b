package boltbackend_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/internal/testfs"
	"github.com/go-ftl2/ftlstate/state"
)

// TestCommit_DiskFull fills a small tmpfs: writes that hit ENOSPC fail,
// everything acknowledged before stays, and the store works again once
// there is space.
func TestCommit_DiskFull(t *testing.T) {
	dir := testfs.Tmpfs(t, "1m")
	path := filepath.Join(dir, "state.db")
	b, err := boltbackend.Open(path, nil)
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)
	defer st.Close()

	pad := strings.Repeat("x", 8<<10)
	var acked []string
	var full error
	for i := range 1000 {
		name := fmt.Sprintf("h%04d", i)
		if err := st.AddHost(&state.HostState{Name: name, Vars: map[string]any{"pad": pad}}); err != nil {
			full = err
			break
		}
		acked = append(acked, name)
	}
	require.Error(t, full, "1 MiB fills up")
	require.ErrorIs(t, full, syscall.ENOSPC)
	t.Logf("%d hosts acknowledged before: %v", len(acked), full)
	serial := st.Metadata().Serial

	// More writes fail the same way, and none is half done.
	for i := range 5 {
		err := st.Update(func(tx *state.Tx) error {
			for j := range 3 {
				if err := tx.AddHost(&state.HostState{Name: fmt.Sprintf("x%d-%d", i, j), Vars: map[string]any{"pad": pad}}); err != nil {
					return err
				}
			}
			return nil
		})
		assert.ErrorIs(t, err, syscall.ENOSPC)
	}
	assert.Equal(t, serial, st.Metadata().Serial)
	check := func(v state.Viewer, when string) {
		t.Helper()
		got := contents(t, v)
		assert.Len(t, got.Hosts, len(acked), when)
		for _, name := range acked {
			assert.Contains(t, got.Hosts, name, when)
		}
		assert.Equal(t, serial, got.Metadata.Serial, when)
	}
	check(b, "on disk while full")
	require.NoError(t, b.Check())

	// Space returns: the store works again.
	testfs.Resize(t, dir, "8m")
	require.NoError(t, st.AddHost(&state.HostState{Name: "after", Vars: map[string]any{"pad": pad}}))
	acked = append(acked, "after")
	serial++
	require.NoError(t, st.Close())

	b2, err := boltbackend.Open(path, nil)
	require.NoError(t, err)
	defer b2.Close()
	require.NoError(t, b2.Check())
	check(b2, "after reopen")
}

// TestOpen_ReadOnlyFileSystem: on a file system mounted read-only, a
// read-write Open fails with an error naming the path and changes
// nothing; a read-only Open works.
func TestOpen_ReadOnlyFileSystem(t *testing.T) {
	dir := testfs.Tmpfs(t, "4m")
	path := filepath.Join(dir, "state.db")
	b, err := boltbackend.Open(path, nil)
	require.NoError(t, err)
	_, err = b.Commit(hostBatch("web01"))
	require.NoError(t, err)
	require.NoError(t, b.Close())
	before := fileHash(t, path)
	testfs.ReadOnly(t, dir, true)

	_, err = boltbackend.Open(path, nil)
	require.ErrorIs(t, err, syscall.EROFS)
	assert.Contains(t, err.Error(), path)
	_, err = boltbackend.Open(filepath.Join(dir, "new.db"), nil)
	require.ErrorIs(t, err, syscall.EROFS, "creating a store")
	assert.Contains(t, err.Error(), filepath.Join(dir, "new.db"))

	ro, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: true})
	require.NoError(t, err)
	require.NoError(t, ro.Check())
	require.NoError(t, ro.View(func(s state.Snapshot) error {
		_, ok, err := s.Host("web01")
		assert.True(t, ok)
		return err
	}))
	require.NoError(t, ro.Close())
	assert.Equal(t, before, fileHash(t, path))
	testfs.ReadOnly(t, dir, false)
}
