package boltbackend_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/state"
)

// contents reads everything a backend holds.
func contents(t testing.TB, v state.Viewer) *state.Contents {
	t.Helper()
	c := &state.Contents{Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}, Operations: map[string]*state.Operation{}}
	require.NoError(t, v.View(func(s state.Snapshot) error {
		c.Metadata = s.Metadata()
		if err := s.Hosts(func(h *state.HostState) error { c.Hosts[h.Name] = h; return nil }); err != nil {
			return err
		}
		if err := s.Operations(func(op *state.Operation) error { c.Operations[op.ID] = op; return nil }); err != nil {
			return err
		}
		return s.Resources(func(k string, r *state.ResourceState) error { c.Resources[k] = r; return nil })
	}))
	return c
}

func TestCompact_ShrinksAndKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	b := openTB(t, path, nil)
	st, err := state.Open(b)
	require.NoError(t, err)
	big := strings.Repeat("x", 2000)
	require.NoError(t, st.Update(func(tx *state.Tx) error {
		for i := range 2000 {
			if err := tx.AddHost(&state.HostState{Name: fmt.Sprintf("h%04d", i), Vars: map[string]any{"pad": big}}); err != nil {
				return err
			}
			if err := tx.AddResource(fmt.Sprintf("r%04d", i), &state.ResourceState{Type: fmt.Sprintf("t%d", i%3)}); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, st.Update(func(tx *state.Tx) error {
		for i := range 1950 {
			if err := tx.RemoveHost(fmt.Sprintf("h%04d", i)); err != nil {
				return err
			}
			if err := tx.RemoveResource(fmt.Sprintf("r%04d", i)); err != nil {
				return err
			}
		}
		return nil
	}))
	want := contents(t, b)
	srcHash := fileHash(t, path)

	dst := filepath.Join(dir, "compact.db")
	require.NoError(t, b.Compact(dst))
	assert.Equal(t, srcHash, fileHash(t, path), "the store is only read")
	fiSrc, err := os.Stat(path)
	require.NoError(t, err)
	fiDst, err := os.Stat(dst)
	require.NoError(t, err)
	assert.Less(t, fiDst.Size()*4, fiSrc.Size(), "the copy is much smaller (%d vs %d bytes)", fiDst.Size(), fiSrc.Size())
	assert.Equal(t, os.FileMode(0o600), fiDst.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 5, "state.db, its log, its lock info, its socket and compact.db; no temporary file: %v", entries)

	require.NoError(t, st.Close())
	c := openTB(t, dst, nil)
	require.NoError(t, c.Check(), "the copy is a valid store: index and counters included")
	got := contents(t, c)
	assert.Equal(t, want.Metadata, got.Metadata)
	assert.True(t, reflect.DeepEqual(want, got), "the copy holds the same records")
	require.NoError(t, c.View(func(s state.Snapshot) error {
		nh, nr := s.Len()
		assert.Equal(t, 50, nh)
		assert.Equal(t, 50, nr)
		return nil
	}))
}

func TestCompact_NeverReplacesAFile(t *testing.T) {
	dir := t.TempDir()
	b := openTB(t, filepath.Join(dir, "state.db"), nil)
	dst := filepath.Join(dir, "existing.db")
	require.NoError(t, os.WriteFile(dst, []byte("precious"), 0o600))
	err := b.Compact(dst)
	require.ErrorIs(t, err, os.ErrExist)
	data, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, "precious", string(data))
	assert.ErrorIs(t, b.Compact(filepath.Join(dir, "state.db")), os.ErrExist, "not onto the store itself")

	err = b.Compact(filepath.Join(dir, "missing-dir", "x.db"))
	require.Error(t, err)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 3, "no temporary file left")
}

// TestCompact_DuringWrites: a copy taken while writers run is a state that
// existed: it checks clean (index and counters match its records).
func TestCompact_DuringWrites(t *testing.T) {
	dir := t.TempDir()
	b := openTB(t, filepath.Join(dir, "state.db"), nil)
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
				name := fmt.Sprintf("w%d-%d", w, i%50)
				var err error
				if i%4 == 3 {
					err = st.RemoveResource(name)
				} else {
					err = st.AddResource(name, &state.ResourceState{Type: fmt.Sprintf("t%d", i%3)})
				}
				assert.NoError(t, err)
			}
		})
	}
	// Compact until the writers have committed a good many changes meanwhile.
	for i := 0; i < 5 || st.Metadata().Serial < 300; i++ {
		dst := filepath.Join(dir, fmt.Sprintf("copy%d.db", i))
		require.NoError(t, b.Compact(dst))
		c, err := boltbackend.Open(dst, &boltbackend.Options{ReadOnly: true})
		require.NoError(t, err)
		assert.NoError(t, c.Check())
		require.NoError(t, c.Close())
	}
	close(stop)
	wg.Wait()
	require.NoError(t, st.Close())
}
