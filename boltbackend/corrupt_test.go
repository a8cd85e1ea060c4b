package boltbackend_test

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
)

var update = flag.Bool("update", false, "rewrite the golden store in testdata/bolt")

func fileHash(t testing.TB, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, 0o600))
}

// bigStore writes a store with enough records to span many pages and
// returns its path (closed).
func bigStore(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := state.Open(openRaw(t, path))
	require.NoError(t, err)
	require.NoError(t, st.Update(func(tx *state.Tx) error {
		for i := range 500 {
			if err := tx.AddHost(&state.HostState{Name: fmt.Sprintf("host-%04d", i), Address: "192.0.2.1", Vars: map[string]any{"i": i, "pad": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}); err != nil {
				return err
			}
			if err := tx.AddResource(fmt.Sprintf("linode:%d", i), &state.ResourceState{Type: "linode", ID: fmt.Sprint(i)}); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, st.Close())
	return path
}

// meta reads the page size and the meta fields of a store file.
type rawMeta struct {
	pageSize int
	pgid     uint64
}

// readMeta reads the newest meta page.
func readMeta(t testing.TB, path string) rawMeta {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	ps := int(binary.NativeEndian.Uint32(b[16+8:]))
	m0, m1 := b[16:], b[ps+16:]
	m := m0
	if binary.NativeEndian.Uint64(m1[48:]) > binary.NativeEndian.Uint64(m0[48:]) {
		m = m1
	}
	return rawMeta{pageSize: ps, pgid: binary.NativeEndian.Uint64(m[40:])}
}

// rewriteMeta changes a field of meta page i (at offset off within the
// meta) and fixes its checksum, so that only the field is wrong.
func rewriteMeta(t testing.TB, path string, page, off int, v uint64) {
	t.Helper()
	m := readMeta(t, path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	base := int64(page*m.pageSize + 16)
	meta := make([]byte, 64)
	_, err = f.ReadAt(meta, base)
	require.NoError(t, err)
	binary.NativeEndian.PutUint64(meta[off:], v)
	h := fnv.New64a()
	h.Write(meta[:56])
	binary.NativeEndian.PutUint64(meta[56:], h.Sum64())
	_, err = f.WriteAt(meta, base)
	require.NoError(t, err)
}

func flipByte(t testing.TB, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	b := []byte{0}
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	b[0] ^= 0x5a
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
}

// boltEdit changes a closed store with bbolt directly.
func boltEdit(t testing.TB, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	require.NoError(t, err)
	require.NoError(t, db.Update(fn))
	require.NoError(t, db.Close())
}

func TestOpen_CorruptFilesAreRefusedUntouched(t *testing.T) {
	cases := []struct {
		name string
		make func(t *testing.T, path string)
		msg  string
	}{
		{"empty file", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, nil, 0o600))
		}, "empty file"},
		{"JSON file", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte(`{"version": "1.0", "hosts": {}, "resources": {}}`), 0o600))
		}, "not a bbolt store"},
		{"random bytes", func(t *testing.T, path string) {
			b := make([]byte, 64<<10)
			rng := rand.NewChaCha8([32]byte{1})
			rng.Read(b)
			require.NoError(t, os.WriteFile(path, b, 0o600))
		}, "not a bbolt store"},
		{"first 100 bytes of a store", func(t *testing.T, path string) {
			src := bigStore(t)
			b, err := os.ReadFile(src)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, b[:100], 0o600))
		}, "truncated"},
		{"truncated to half", func(t *testing.T, path string) {
			copyFile(t, bigStore(t), path)
			m := readMeta(t, path)
			require.NoError(t, os.Truncate(path, int64(m.pgid)*int64(m.pageSize)/2))
		}, "truncated"},
		{"truncated by one page", func(t *testing.T, path string) {
			copyFile(t, bigStore(t), path)
			m := readMeta(t, path)
			require.NoError(t, os.Truncate(path, int64(m.pgid-1)*int64(m.pageSize)))
		}, "truncated"},
		{"meta page 0 damaged", func(t *testing.T, path string) {
			copyFile(t, bigStore(t), path)
			flipByte(t, path, 16+20)
		}, "meta page 0 is damaged"},
		{"meta page 1 damaged", func(t *testing.T, path string) {
			copyFile(t, bigStore(t), path)
			flipByte(t, path, int64(readMeta(t, path).pageSize)+16+44)
		}, "meta page 1 is damaged"},
		{"meta page 0 zeroed", func(t *testing.T, path string) {
			copyFile(t, bigStore(t), path)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			require.NoError(t, err)
			_, err = f.WriteAt(make([]byte, 4096), 0)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}, "meta page 0 is damaged"},
		{"both meta pages damaged", func(t *testing.T, path string) {
			copyFile(t, bigStore(t), path)
			flipByte(t, path, 16+60)
			flipByte(t, path, int64(readMeta(t, path).pageSize)+16+60)
		}, "both meta pages are damaged"},
		{"root page beyond the high-water mark", func(t *testing.T, path string) {
			copyFile(t, bigStore(t), path)
			m := readMeta(t, path)
			rewriteMeta(t, path, 0, 16, m.pgid+1000)
		}, "root page"},
		{"freelist page beyond the high-water mark", func(t *testing.T, path string) {
			copyFile(t, bigStore(t), path)
			rewriteMeta(t, path, 1, 32, 1<<40)
		}, "freelist page"},
		{"high-water mark beyond the file", func(t *testing.T, path string) {
			copyFile(t, bigStore(t), path)
			rewriteMeta(t, path, 0, 40, 1<<30)
		}, "truncated"},
		{"bbolt file of another program", func(t *testing.T, path string) {
			boltEdit(t, path, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("other"))
				if err != nil {
					return err
				}
				return b.Put([]byte("k"), []byte("v"))
			})
		}, "not a state store"},
		{"hosts bucket missing", func(t *testing.T, path string) {
			copyFile(t, bigStore(t), path)
			boltEdit(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("hosts")) })
		}, `bucket "hosts" is missing`},
		{"metadata record damaged", func(t *testing.T, path string) {
			copyFile(t, bigStore(t), path)
			boltEdit(t, path, func(tx *bolt.Tx) error { return tx.Bucket([]byte("metadata")).Put([]byte("meta"), []byte{0x96, 0x01}) })
		}, "metadata/meta"},
		{"schema version missing", func(t *testing.T, path string) {
			copyFile(t, bigStore(t), path)
			boltEdit(t, path, func(tx *bolt.Tx) error { return tx.Bucket([]byte("metadata")).Delete([]byte("schema")) })
		}, "metadata/schema"},
		{"counter impossibly large", func(t *testing.T, path string) {
			copyFile(t, bigStore(t), path)
			boltEdit(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("metadata")).Put([]byte("resources"), binary.BigEndian.AppendUint64(nil, 1<<62))
			})
		}, "but the metadata's counter says 4611686018427387904"},
		{"counter damaged", func(t *testing.T, path string) {
			copyFile(t, bigStore(t), path)
			boltEdit(t, path, func(tx *bolt.Tx) error { return tx.Bucket([]byte("metadata")).Put([]byte("hosts"), []byte{1}) })
		}, "counter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.db")
			tc.make(t, path)
			before := fileHash(t, path)
			for _, ro := range []bool{false, true} {
				b, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: ro})
				if err == nil {
					b.Close()
				}
				require.Error(t, err, "read-only %v", ro)
				t.Logf("read-only %v: %v", ro, err)
				assert.ErrorIs(t, err, state.ErrCorrupt, "read-only %v: %v", ro, err)
				assert.Contains(t, err.Error(), path, "the error names the file")
				assert.Contains(t, err.Error(), tc.msg)
				assert.Equal(t, before, fileHash(t, path), "read-only %v: the file is not modified", ro)
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "no lock info or temporary file is left beside a corrupt store")
		})
	}
}

func TestOpen_NewerSchemaIsRefused(t *testing.T) {
	path := bigStore(t)
	boltEdit(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("metadata")).Put([]byte("schema"), binary.BigEndian.AppendUint64(nil, boltbackend.SchemaVersion+1))
	})
	before := fileHash(t, path)
	for _, ro := range []bool{false, true} {
		_, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: ro})
		var se *boltbackend.SchemaError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, uint64(boltbackend.SchemaVersion+1), se.Version)
		assert.Equal(t, uint64(boltbackend.SchemaVersion), se.Supported)
		assert.ErrorIs(t, err, errors.ErrUnsupported)
		assert.NotErrorIs(t, err, state.ErrCorrupt, "a newer store is not corrupt")
		assert.Contains(t, err.Error(), path)
		assert.Contains(t, err.Error(), "newer")
	}
	assert.Equal(t, before, fileHash(t, path))
	_, err := os.Stat(lockinfo.Path(path))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestOpen_DamagedPageIsAnError damages a branch page pointer so that
// bbolt reads outside the mapped file (a memory fault) or beyond its
// largest possible mapping (a bounds panic): reads and Check fail with
// ErrCorrupt instead of killing the process.
func TestOpen_DamagedPageIsAnError(t *testing.T) {
	for _, tc := range []struct {
		name string
		pgid uint64
	}{{"memory fault", 1 << 20}, {"bounds panic", 1 << 36}} {
		t.Run(tc.name, func(t *testing.T) {
			path := bigStore(t)
			m := readMeta(t, path)
			db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
			require.NoError(t, err)
			var root uint64
			require.NoError(t, db.View(func(tx *bolt.Tx) error {
				root = uint64(tx.Bucket([]byte("hosts")).Root())
				return nil
			}))
			require.NoError(t, db.Close())
			raw, err := os.ReadFile(path)
			require.NoError(t, err)
			page := raw[int(root)*m.pageSize:]
			require.Equal(t, uint16(0x01), binary.NativeEndian.Uint16(page[8:]), "with 500 hosts the bucket root is a branch page")
			// The first branchPageElement (pos, ksize uint32; pgid uint64)
			// follows the 16-byte page header.
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			require.NoError(t, err)
			_, err = f.WriteAt(binary.NativeEndian.AppendUint64(nil, tc.pgid), int64(int(root)*m.pageSize+16+8))
			require.NoError(t, err)
			require.NoError(t, f.Close())

			before := fileHash(t, path)
			for _, ro := range []bool{false, true} {
				_, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: ro})
				require.ErrorIs(t, err, state.ErrCorrupt, "the page walk at Open refuses it, read-only %v", ro)
				assert.Contains(t, err.Error(), "outside the 64 pages in use")
			}
			assert.Equal(t, before, fileHash(t, path), "nothing written")

			b, err := boltbackend.Open(path, &boltbackend.Options{Inspect: true})
			require.NoError(t, err, "the meta pages are fine")
			_, err = state.Open(b) // closes b on failure
			require.ErrorIs(t, err, state.ErrCorrupt, "loading the records fails cleanly")
			assert.Contains(t, err.Error(), "bbolt failed on damaged data")

			b = openTB(t, path, &boltbackend.Options{Inspect: true})
			err = b.Check()
			var ce *state.CheckError
			require.ErrorAs(t, err, &ce)
			assert.ErrorIs(t, err, state.ErrCorrupt)
			assert.Contains(t, err.Error(), "outside the 64 pages in use")
			t.Log(err)
			// The other buckets still read.
			require.NoError(t, b.View(func(s state.Snapshot) error {
				_, ok, err := s.Resource("linode:1")
				assert.True(t, ok)
				return err
			}))
		})
	}
}

// The golden store pins the on-disk format: a store written by layout
// version 1 must stay readable, with the same content.
const goldenStore = "../testdata/bolt/v1-small.db"

var goldenTime = time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)

func goldenContents() *state.Contents {
	return &state.Contents{
		Metadata: state.Metadata{Version: "1.0", CreatedAt: goldenTime, UpdatedAt: goldenTime.Add(time.Hour), Serial: 7, Lineage: "5a3c5f6e-1d2b-4c8e-9f00-0123456789ab"},
		Hosts: map[string]*state.HostState{
			"web01": {Name: "web01", Address: "192.168.1.10", Port: 22, User: "admin", Group: "webservers",
				Vars:      map[string]any{"http_port": int64(80), "ratio": 0.5, "tls": true, "dns": []any{"192.0.2.1"}, "none": nil, "nested": map[string]any{"k": "v"}},
				CreatedAt: goldenTime, UpdatedAt: goldenTime},
			"db01": {Name: "db01", Address: "192.168.1.20", Port: 2222, CreatedAt: goldenTime, UpdatedAt: goldenTime},
		},
		Resources: map[string]*state.ResourceState{
			"linode:12345678": {Type: "linode", ID: "12345678", Name: "web01", Data: map[string]any{"ipv4": []any{"192.168.1.10"}, "region": "us-east"},
				Tags: map[string]string{"env": "production"}, CreatedAt: goldenTime, UpdatedAt: goldenTime},
			"dns:web01.example.com": {Type: "dns", ID: "web01.example.com", CreatedAt: goldenTime, UpdatedAt: goldenTime},
		},
	}
}

func TestGoldenStore_V1StaysReadable(t *testing.T) {
	want := goldenContents()
	if *update {
		tmp := filepath.Join(t.TempDir(), "golden.db")
		b := openRaw(t, tmp)
		var changes []state.Change
		for _, h := range want.Hosts {
			changes = append(changes, state.Change{Kind: state.KindHost, Key: h.Name, Host: h})
		}
		for k, r := range want.Resources {
			changes = append(changes, state.Change{Kind: state.KindResource, Key: k, Resource: r})
		}
		m := want.Metadata
		_, err := b.Commit(&state.Batch{Changes: changes, Time: goldenTime, Replace: &m})
		require.NoError(t, err)
		require.NoError(t, b.Close())
		require.NoError(t, os.MkdirAll(filepath.Dir(goldenStore), 0o755))
		copyFile(t, tmp, goldenStore)
	}
	path := filepath.Join(t.TempDir(), "state.db")
	copyFile(t, goldenStore, path)
	b, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: true})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.Check())
	require.NoError(t, b.View(func(s state.Snapshot) error {
		assert.Equal(t, want.Metadata, s.Metadata())
		nh, nr := s.Len()
		assert.Equal(t, len(want.Hosts), nh)
		assert.Equal(t, len(want.Resources), nr)
		for name, wh := range want.Hosts {
			h, ok, err := s.Host(name)
			require.NoError(t, err)
			require.True(t, ok, name)
			assert.True(t, reflect.DeepEqual(wh, h), "%s:\n%#v\n%#v", name, wh, h)
		}
		for key, wr := range want.Resources {
			r, ok, err := s.Resource(key)
			require.NoError(t, err)
			require.True(t, ok, key)
			assert.True(t, reflect.DeepEqual(wr, r), "%s", key)
		}
		return nil
	}))
}
