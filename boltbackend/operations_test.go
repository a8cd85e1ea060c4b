package boltbackend_test

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

func schemaOf(t testing.TB, path string) uint64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	require.NoError(t, err)
	defer db.Close()
	var v uint64
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		v = binary.BigEndian.Uint64(tx.Bucket([]byte("metadata")).Get([]byte("schema")))
		return nil
	}))
	return v
}

func hasBucket(t testing.TB, path, name string) bool {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	require.NoError(t, err)
	defer db.Close()
	var ok bool
	require.NoError(t, db.View(func(tx *bolt.Tx) error { ok = tx.Bucket([]byte(name)) != nil; return nil }))
	return ok
}

func TestOperations_NewStoreHasTheirBucket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := openTB(t, path, nil)
	require.NoError(t, b.Close())
	assert.Equal(t, uint64(boltbackend.SchemaVersion), schemaOf(t, path))
	assert.Equal(t, uint64(3), schemaOf(t, path))
	assert.True(t, hasBucket(t, path, "operations"))
}

// A store of layout version 1 (no operations bucket) reads as a store
// without pending operations, is left at version 1 by writes of other
// records without the log, and becomes version 2 in the commit of its
// first operation.
func TestOperations_Version1StoreUpgradesWithItsFirstOperation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	copyFile(t, goldenStore, path)
	require.Equal(t, uint64(1), schemaOf(t, path))
	openRaw := func(t testing.TB, path string) *boltbackend.Backend {
		b, err := boltbackend.Open(path, direct)
		require.NoError(t, err)
		return b
	}

	b := openRaw(t, path)
	require.NoError(t, b.Check(), "a version 1 store checks clean")
	st, err := state.Open(b)
	require.NoError(t, err)
	assert.Empty(t, st.PendingOperations())
	require.NoError(t, st.AddHost(&state.HostState{Name: "web02"}))
	assert.ErrorIs(t, st.AbandonOperation("x"), state.ErrInvalid)
	require.NoError(t, st.Close())
	assert.Equal(t, uint64(1), schemaOf(t, path), "other writes leave the layout as it is")
	assert.False(t, hasBucket(t, path, "operations"))

	b = openRaw(t, path)
	st, err = state.Open(b)
	require.NoError(t, err)
	op, err := st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: "linode:9", Host: "web09"})
	require.NoError(t, err)
	require.NoError(t, b.Check(), "upgraded in one commit: the layout checks clean")
	require.NoError(t, st.Close())
	assert.Equal(t, uint64(2), schemaOf(t, path))

	b = openTB(t, path, &boltbackend.Options{ReadOnly: true})
	require.NoError(t, b.View(func(s state.Snapshot) error {
		got, ok, err := s.Operation(op.ID)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, op, got)
		_, ok, _ = s.Host("web01")
		assert.True(t, ok, "the version 1 records are still there")
		return nil
	}))
}

// Replace (import) of a version 1 store with operations upgrades it in
// the same commit; a version 2 store whose operations bucket is missing is
// damaged.
func TestOperations_ReplaceUpgradesAndMissingBucketIsCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	copyFile(t, goldenStore, path)
	b := openRaw(t, path)
	now := state.Timestamp(time.Now())
	meta := state.Metadata{Version: "1.0", CreatedAt: now, UpdatedAt: now, Serial: 1, Lineage: "l"}
	op := &state.Operation{ID: "a", Action: "create", Resource: "r", StartedAt: now}
	_, err := b.Commit(&state.Batch{Time: now, Replace: &meta, Changes: []state.Change{{Kind: state.KindOperation, Key: "a", Operation: op}}})
	require.NoError(t, err)
	require.NoError(t, b.Check())
	require.NoError(t, b.Close())
	assert.Equal(t, uint64(3), schemaOf(t, path), "the first commit with the log makes it version 3")

	boltEdit(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("operations")) })
	_, err = boltbackend.Open(path, nil)
	assert.ErrorIs(t, err, state.ErrCorrupt)
	assert.ErrorContains(t, err, `bucket "operations" is missing`)
}

// A version 1 store opened with the log becomes version 3 (the log's key
// and the operations bucket) in its first commit, whatever it writes, and
// its records are all there.
func TestOperations_Version1StoreUpgradesToTheLogWithItsFirstCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	copyFile(t, goldenStore, path)
	st, err := state.Open(openRaw(t, path))
	require.NoError(t, err)
	for i := range 3 { // the first direct, the others through the log
		require.NoError(t, st.AddHost(&state.HostState{Name: fmt.Sprintf("new%d", i)}))
	}
	require.NoError(t, st.Close())
	assert.Equal(t, uint64(3), schemaOf(t, path))
	assert.True(t, hasBucket(t, path, "operations"))
	b := openTB(t, path, &boltbackend.Options{ReadOnly: true})
	require.NoError(t, b.Check())
	require.NoError(t, b.View(func(s state.Snapshot) error {
		for _, name := range []string{"web01", "new0", "new2"} {
			_, ok, err := s.Host(name)
			require.NoError(t, err)
			assert.True(t, ok, name)
		}
		return nil
	}))
}

func TestOperations_CheckFindsDamagedOperations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := state.Open(openRaw(t, path))
	require.NoError(t, err)
	op, err := st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: "linode:1"})
	require.NoError(t, err)
	require.NoError(t, st.Close())

	other, err := record.EncodeOperation(&state.Operation{ID: "other", Action: "create", Resource: "r"})
	require.NoError(t, err)
	boltEdit(t, path, func(tx *bolt.Tx) error {
		ops := tx.Bucket([]byte("operations"))
		if err := ops.Put([]byte("garbage"), []byte{0x93, 0x01}); err != nil {
			return err
		}
		return ops.Put([]byte("elsewhere"), other)
	})
	b := openRaw(t, path)
	err = b.Check()
	var ce *state.CheckError
	require.ErrorAs(t, err, &ce)
	assert.ErrorIs(t, err, state.ErrCorrupt)
	var found []string
	for _, p := range ce.Problems {
		found = append(found, p.String())
	}
	assert.Len(t, found, 2, "%q", found)
	assert.Contains(t, err.Error(), `operations/"garbage"`)
	assert.Contains(t, err.Error(), `operations/"elsewhere": operation "other" stored under another key`)

	require.NoError(t, b.View(func(s state.Snapshot) error {
		_, ok, err := s.Operation(op.ID)
		assert.True(t, ok, "the sound record still reads")
		assert.NoError(t, err)
		_, _, err = s.Operation("garbage")
		assert.ErrorIs(t, err, state.ErrCorrupt)
		assert.ErrorContains(t, err, `operations/"garbage"`)
		assert.ErrorIs(t, s.Operations(func(*state.Operation) error { return nil }), state.ErrCorrupt)
		return nil
	}))
}

func TestOperations_CompactKeepsThem(t *testing.T) {
	dir := t.TempDir()
	b := openRaw(t, filepath.Join(dir, "state.db"))
	st, err := state.Open(b)
	require.NoError(t, err)
	defer st.Close()
	for i := range 3 {
		_, err := st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: fmt.Sprintf("linode:%d", i), Data: map[string]any{"token": "t"}})
		require.NoError(t, err)
	}
	dst := filepath.Join(dir, "compact.db")
	require.NoError(t, b.Compact(dst))
	c := openTB(t, dst, &boltbackend.Options{ReadOnly: true})
	require.NoError(t, c.Check())
	want := contents(t, b)
	assert.Len(t, want.Operations, 3)
	assert.Equal(t, want, contents(t, c))
}
