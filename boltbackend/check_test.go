package boltbackend_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// churnedStore writes a store through every kind of change (adds,
// updates, type changes, removals, an import) and returns its path,
// closed.
func churnedStore(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := state.Open(openRaw(t, path))
	require.NoError(t, err)
	update := func(fn func(tx *state.Tx, i int) error, n int) {
		t.Helper()
		require.NoError(t, st.Update(func(tx *state.Tx) error {
			for i := range n {
				if err := fn(tx, i); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	update(func(tx *state.Tx, i int) error {
		if err := tx.AddHost(&state.HostState{Name: fmt.Sprintf("h%02d", i), Vars: map[string]any{"i": i}}); err != nil {
			return err
		}
		return tx.AddResource(fmt.Sprintf("r%02d", i), &state.ResourceState{Type: []string{"linode", "dns", "ip"}[i%3], ID: fmt.Sprint(i)})
	}, 60)
	require.NoError(t, st.Replace(&state.Contents{
		Metadata:  st.Metadata(),
		Hosts:     map[string]*state.HostState{"imported": {Name: "imported"}},
		Resources: map[string]*state.ResourceState{"imported:1": {Type: "linode"}},
	}, false))
	update(func(tx *state.Tx, i int) error {
		if err := tx.AddHost(&state.HostState{Name: fmt.Sprintf("h%02d", i)}); err != nil {
			return err
		}
		return tx.AddResource(fmt.Sprintf("r%02d", i), &state.ResourceState{Type: []string{"linode", "dns"}[i%2]})
	}, 40)
	update(func(tx *state.Tx, i int) error {
		if err := tx.AddResource(fmt.Sprintf("r%02d", i), &state.ResourceState{Type: "moved"}); err != nil {
			return err
		}
		if err := tx.RemoveHost(fmt.Sprintf("h%02d", i+10)); err != nil {
			return err
		}
		return tx.RemoveResource(fmt.Sprintf("r%02d", i+20))
	}, 10)
	// Single changes too, one transaction each.
	require.NoError(t, st.AddResource("r00", &state.ResourceState{Type: "moved", ID: "again"}))
	require.NoError(t, st.RemoveResource("r01"))
	require.NoError(t, st.AddResource("r01", &state.ResourceState{Type: "moved"}))
	require.NoError(t, st.Close())
	return path
}

func TestCheck_HealthyStore(t *testing.T) {
	path := churnedStore(t)
	b := openTB(t, path, nil)
	require.NoError(t, b.Check())
	require.NoError(t, b.View(func(s state.Snapshot) error {
		nh, nr := s.Len()
		assert.Equal(t, 31, nh, "40 + imported - 10 removed")
		assert.Equal(t, 31, nr)
		var moved int
		require.NoError(t, state.ResourcesOfType(s, "moved", func(string, *state.ResourceState) error { moved++; return nil }))
		assert.Equal(t, 10, moved)
		return nil
	}))
	require.NoError(t, b.Close())
	ro := openTB(t, path, &boltbackend.Options{ReadOnly: true})
	assert.NoError(t, ro.Check(), "read-only backends check too")
}

func TestCheck_FindsDamage(t *testing.T) {
	goodHost, err := record.EncodeHost(&state.HostState{Name: "someone-else"})
	require.NoError(t, err)
	cases := []struct {
		name           string
		damage         func(tx *bolt.Tx) error
		bucket, key    string
		msg            string
		snapshotFinder func(s state.Snapshot) error
	}{
		{"undecodable host", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("hosts")).Put([]byte("h30"), []byte{0x99, 0x01, 0xa3, 'h'})
		}, "hosts", "h30", "record: byte", func(s state.Snapshot) error { _, _, err := s.Host("h30"); return err }},
		{"host record with port out of range", func(tx *bolt.Tx) error {
			b, err := record.EncodeHost(&state.HostState{Name: "h31", Port: 22})
			if err != nil {
				return err
			}
			// As a record of format version 1 (no checksum, so that the
			// decoder reads the bad field): [0x99, 1, "h31", "", port
			// 22, ...]; make the port 70000.
			b = b[: len(b)-5 : len(b)-5]
			b[0], b[1] = 0x99, 0x01
			require.Equal(t, byte(22), b[7])
			b = append(b[:7:7], append([]byte{0xce, 0, 1, 0x11, 0x70}, b[8:]...)...)
			return tx.Bucket([]byte("hosts")).Put([]byte("h31"), b)
		}, "hosts", "h31", "invalid port", func(s state.Snapshot) error { _, _, err := s.Host("h31"); return err }},
		{"host record with a flipped byte", func(tx *bolt.Tx) error {
			b, err := record.EncodeHost(&state.HostState{Name: "h33", Address: "192.0.2.1", User: "admin"})
			if err != nil {
				return err
			}
			b[bytes.Index(b, []byte("admin"))] ^= 0x20 // "Admin": still a valid record, but not the one written
			return tx.Bucket([]byte("hosts")).Put([]byte("h33"), b)
		}, "hosts", "h33", "checksum mismatch", func(s state.Snapshot) error { _, _, err := s.Host("h33"); return err }},
		{"host under another key", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("hosts")).Put([]byte("h32"), goodHost)
		}, "hosts", "h32", "stored under another key", func(s state.Snapshot) error { _, _, err := s.Host("h32"); return err }},
		{"undecodable resource", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("resources")).Put([]byte("r33"), []byte("garbage"))
		}, "resources", "r33", "record", func(s state.Snapshot) error { _, _, err := s.Resource("r33"); return err }},
		{"index entry missing", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("resources_by_type")).Delete([]byte("dns\x00r35"))
		}, "resources", "r35", "missing from the resources_by_type index", nil},
		{"index entry of a missing resource", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("resources_by_type")).Put([]byte("dns\x00ghost"), []byte{})
		}, "resources_by_type", "dns\x00ghost", "missing resource", func(s state.Snapshot) error {
			return state.ResourcesOfType(s, "dns", func(string, *state.ResourceState) error { return nil })
		}},
		{"index entry under the wrong type", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("resources_by_type")).Put([]byte("linode\x00r35"), []byte{})
		}, "resources_by_type", "linode\x00r35", `indexed under type "linode"`, func(s state.Snapshot) error {
			return state.ResourcesOfType(s, "linode", func(string, *state.ResourceState) error { return nil })
		}},
		{"malformed index key", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("resources_by_type")).Put([]byte("nonul"), []byte{})
		}, "resources_by_type", "nonul", "malformed", nil},
		{"host counter off", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("metadata")).Put([]byte("hosts"), binary.BigEndian.AppendUint64(nil, 5))
		}, "metadata", "hosts", "counter says 5 hosts, the bucket holds 31", nil},
		{"resource counter off", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("metadata")).Put([]byte("resources"), binary.BigEndian.AppendUint64(nil, 99))
		}, "metadata", "resources", "counter says 99 resources", nil},
		{"unexpected bucket", func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("extra"))
			return err
		}, "extra", "", "unexpected bucket", nil},
		{"nested bucket among hosts", func(tx *bolt.Tx) error {
			_, err := tx.Bucket([]byte("hosts")).CreateBucket([]byte("h99"))
			return err
		}, "hosts", "h99", "nested bucket", nil},
		{"unknown metadata key", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("metadata")).Put([]byte("x"), []byte("y"))
		}, "metadata", "x", "unexpected key", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := churnedStore(t)
			boltEdit(t, path, tc.damage)
			// Damage that would make a read miss or repeat records (the
			// counters or the index disagree with the buckets, a nested
			// bucket among records) is refused by Open, for reading and
			// writing; Check lists it on a store opened for inspection.
			b, err := boltbackend.Open(path, nil)
			if err == nil {
				require.NoError(t, b.Close())
			} else {
				assert.ErrorIs(t, err, state.ErrCorrupt)
				assert.Contains(t, err.Error(), "ftlstate check")
			}
			b = openTB(t, path, &boltbackend.Options{Inspect: true})
			err = b.Check()
			var ce *state.CheckError
			require.ErrorAs(t, err, &ce)
			assert.ErrorIs(t, err, state.ErrCorrupt)
			found := false
			for _, p := range ce.Problems {
				if p.Section == tc.bucket && p.Key == tc.key {
					found = true
					assert.Contains(t, p.Msg, tc.msg)
				}
			}
			assert.True(t, found, "no problem names %s/%q: %v", tc.bucket, tc.key, err)
			assert.Contains(t, err.Error(), tc.bucket)
			if tc.snapshotFinder != nil {
				err := b.View(tc.snapshotFinder)
				assert.ErrorIs(t, err, state.ErrCorrupt, "reads report the damage too")
				assert.Contains(t, err.Error(), tc.bucket+"/")
			}
		})
	}
}

// TestCheck_WriteRepairsDamagedResource: overwriting or removing a
// resource whose record is damaged finds its index entries by scanning,
// so the store checks clean afterwards.
func TestCheck_WriteRepairsDamagedResource(t *testing.T) {
	path := churnedStore(t)
	boltEdit(t, path, func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("resources")).Put([]byte("r35"), []byte("garbage")); err != nil {
			return err
		}
		return tx.Bucket([]byte("resources")).Put([]byte("r36"), []byte("garbage"))
	})
	b := openTB(t, path, nil)
	require.Error(t, b.Check())
	now := state.Timestamp(goldenTime)
	_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{
		{Kind: state.KindResource, Key: "r35", Resource: &state.ResourceState{Type: "fixed", CreatedAt: now, UpdatedAt: now}},
		{Kind: state.KindResource, Key: "r36"},
	}})
	require.NoError(t, err)
	require.NoError(t, b.Check())
	require.NoError(t, b.View(func(s state.Snapshot) error {
		var keys []string
		require.NoError(t, state.ResourcesOfType(s, "fixed", func(k string, _ *state.ResourceState) error { keys = append(keys, k); return nil }))
		assert.Equal(t, []string{"r35"}, keys)
		return state.ResourcesOfType(s, "dns", func(k string, _ *state.ResourceState) error {
			assert.NotEqual(t, "r35", k)
			assert.NotEqual(t, "r36", k)
			return nil
		})
	}))
}

func TestCheck_AfterClose(t *testing.T) {
	b, err := boltbackend.Open(filepath.Join(t.TempDir(), "state.db"), nil)
	require.NoError(t, err)
	require.NoError(t, b.Close())
	assert.ErrorIs(t, b.Check(), state.ErrClosed)
	assert.ErrorIs(t, b.Compact(filepath.Join(t.TempDir(), "x.db")), state.ErrClosed)
}
