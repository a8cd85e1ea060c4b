package boltbackend_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/internal/boltdamage"
	"github.com/go-ftl2/ftlstate/state"
)

// TestOpen_DamagedStoreIsRefusedBeforeAnyWrite: damage to the pages or to
// the records' structure is found by Open, for writing and for reading,
// before anything is written or served: a write through a freelist that
// lists a live page destroyed every host; a zeroed freelist page made
// every write panic; a branch key offset out of range killed check with
// SIGSEGV; a lowered leaf count or a branch pointing at another leaf made
// hosts vanish or repeat, and only check noticed. Each is ErrCorrupt in one
// line naming the problem and pointing to check and salvage; the file is
// left byte for byte as it was; Check on a store opened with Inspect lists
// the damage without crashing.
func TestOpen_DamagedStoreIsRefusedBeforeAnyWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(path string) error
		msg    string
	}{
		{"freelist lists a live page", func(p string) error { return boltdamage.FreelistListsLivePage(p, "hosts") }, "which is in use"},
		{"zeroed freelist page", boltdamage.ZeroFreelist, "freelist: page"},
		{"branch key offset out of range", func(p string) error { return boltdamage.BranchKeyOffset(p, "hosts") }, "outside the page"},
		{"branch points at another leaf", func(p string) error { return boltdamage.BranchToOtherLeaf(p, "hosts") }, "reached twice"},
		{"branch points at the freelist page", func(p string) error { return boltdamage.BranchToFreelist(p, "hosts") }, "not a branch or leaf page"},
		{"branch points at itself", func(p string) error { return boltdamage.BranchToItself(p, "hosts") }, "reached twice"},
		{"leaf count lowered", func(p string) error { return boltdamage.LowerLeafCount(p, "hosts") }, `bucket "hosts" holds 499 records (and 0 nested buckets), but the metadata's counter says 500`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := bigStore(t)
			require.NoError(t, tc.damage(path))
			before := fileHash(t, path)
			for _, ro := range []bool{false, true} {
				_, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: ro})
				require.ErrorIs(t, err, state.ErrCorrupt, "read-only %v", ro)
				msg := err.Error()
				assert.Contains(t, msg, tc.msg)
				assert.Contains(t, msg, path)
				assert.Contains(t, msg, "ftlstate check")
				assert.Contains(t, msg, "salvage")
				assert.NotContains(t, msg, "\n")
				assert.NotContains(t, msg, "goroutine", "no stack trace")
			}
			assert.Equal(t, before, fileHash(t, path), "nothing written")

			b := openTB(t, path, &boltbackend.Options{Inspect: true})
			err := b.Check()
			var ce *state.CheckError
			require.ErrorAs(t, err, &ce)
			assert.Contains(t, err.Error(), tc.msg)
			_, err = b.Commit(hostBatch("x"))
			assert.ErrorIs(t, err, state.ErrReadOnly, "inspection never writes")
			require.NoError(t, b.Close())
			assert.Equal(t, before, fileHash(t, path))
		})
	}
}

// TestOpen_FlippedRecordByteIsNeverServed: a flipped byte inside a record
// (an address, a user, a password) used to be served by reads, and check
// said ok. The record's checksum makes every read of it fail with
// ErrCorrupt naming the key, and Check report it.
func TestOpen_FlippedRecordByteIsNeverServed(t *testing.T) {
	path := bigStore(t)
	b := openTB(t, path, nil)
	_, err := b.Commit(&state.Batch{Changes: []state.Change{{Kind: state.KindHost, Key: "db01",
		Host: &state.HostState{Name: "db01", Address: "192.0.2.77", User: "postgres", Vars: map[string]any{"password": "s3cr3t-Pa55"}}}}})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	require.NoError(t, boltdamage.FlipByte(path, []byte("s3cr3t-Pa55")))

	b = openTB(t, path, &boltbackend.Options{ReadOnly: true})
	require.NoError(t, b.View(func(s state.Snapshot) error {
		_, _, err := s.Host("db01")
		require.ErrorIs(t, err, state.ErrCorrupt)
		assert.Contains(t, err.Error(), `hosts/"db01"`)
		assert.Contains(t, err.Error(), "checksum mismatch")
		err = s.Hosts(func(*state.HostState) error { return nil })
		assert.ErrorIs(t, err, state.ErrCorrupt, "a walk stops at it")
		_, ok, err := s.Host("host-0001")
		assert.True(t, ok, "other records read")
		return err
	}))
	_, err = state.Open(b)
	require.ErrorIs(t, err, state.ErrCorrupt, "no State serves the store")
	b = openTB(t, path, &boltbackend.Options{ReadOnly: true})
	err = b.Check()
	require.ErrorIs(t, err, state.ErrCorrupt)
	assert.Contains(t, err.Error(), `hosts/"db01": record: byte`)
}

// TestOpen_SoundStoresOpen: the page walk finds nothing wrong with stores
// this package writes, after churn, compaction and the golden store of an
// earlier version.
func TestOpen_SoundStoresOpen(t *testing.T) {
	for _, path := range []string{churnedStore(t), bigStore(t)} {
		b := openTB(t, path, nil)
		require.NoError(t, b.Check())
		dst := path + ".compacted"
		require.NoError(t, b.Compact(dst))
		require.NoError(t, b.Close())
		c := openTB(t, dst, nil)
		require.NoError(t, c.Check())
	}
	dir := t.TempDir()
	p := dir + "/golden.db"
	copyFile(t, goldenStore, p)
	b := openTB(t, p, nil)
	require.NoError(t, b.Check())
	err := b.View(func(s state.Snapshot) error {
		return s.Hosts(func(*state.HostState) error { return nil })
	})
	require.NoError(t, err, "records of format version 1 (no checksum) are read")
	_ = errors.New
	_ = fmt.Sprint
	_ = strings.Contains
}
