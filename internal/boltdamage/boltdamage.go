// Package boltdamage damages bbolt files the ways the hostile tests of
// issue 13 did, page by page, for the tests of boltbackend and the CLI: a
// freelist that lists a live page, a zeroed freelist page, a branch key
// offset out of range, a leaf whose element count is lowered, a branch
// that points at another leaf, a flipped byte in a record. It finds pages
// through bbolt itself (read-only) and edits the file in place. Test-only.
package boltdamage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

const (
	pageHeaderSize = 16
	elementSize    = 16
	branchFlag     = 0x01
)

var ne = binary.NativeEndian

// file is a bbolt file held in memory while it is damaged.
type file struct {
	path     string
	data     []byte
	pageSize int
}

func load(path string) (*file, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	ps := db.Info().PageSize
	if err := db.Close(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return &file{path: path, data: data, pageSize: ps}, nil
}

func (f *file) page(id uint64) []byte { return f.data[int(id)*f.pageSize : int(id+1)*f.pageSize] }

// save writes page id back into the file, in place.
func (f *file) save(id uint64) error {
	w, err := os.OpenFile(f.path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	_, err = w.WriteAt(f.page(id), int64(int(id)*f.pageSize))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// Root returns the root page of the top-level bucket name of the bbolt
// file at path (0 for an inline bucket).
func Root(path, bucket string) (uint64, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var root uint64
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return fmt.Errorf("no bucket %q", bucket)
		}
		root = uint64(b.Root())
		return nil
	})
	return root, err
}

// Freelist returns the freelist page of the bbolt file at path, as its
// newer meta page names it.
func Freelist(path string) (uint64, error) {
	f, err := load(path)
	if err != nil {
		return 0, err
	}
	// A meta page: the page header, then magic, version, page size,
	// flags (4 bytes each), the root bucket (16), the freelist page id,
	// the high-water mark, the transaction id.
	var id, txid uint64
	for _, m := range [][]byte{f.page(0), f.page(1)} {
		meta := m[pageHeaderSize:]
		if tx := ne.Uint64(meta[48:]); tx >= txid {
			id, txid = ne.Uint64(meta[32:]), tx
		}
	}
	return id, nil
}

// branchRoot returns the file and the root page of bucket, which must be
// a branch page (a bucket of a few hundred records).
func branchRoot(path, bucket string) (*file, uint64, error) {
	root, err := Root(path, bucket)
	if err != nil {
		return nil, 0, err
	}
	f, err := load(path)
	if err != nil {
		return nil, 0, err
	}
	if root == 0 || ne.Uint16(f.page(root)[8:])&branchFlag == 0 {
		return nil, 0, fmt.Errorf("bucket %q has no branch root page (too few records)", bucket)
	}
	return f, root, nil
}

// FreelistListsLivePage adds the root page of bucket, which is in use, to
// the freelist: the next write may overwrite it.
func FreelistListsLivePage(path, bucket string) error {
	root, err := Root(path, bucket)
	if err != nil {
		return err
	}
	fl, err := Freelist(path)
	if err != nil {
		return err
	}
	f, err := load(path)
	if err != nil {
		return err
	}
	p := f.page(fl)
	count := int(ne.Uint16(p[10:]))
	if count >= 0xffff-1 || pageHeaderSize+8*(count+1) > len(p) {
		return errors.New("no room in the freelist page")
	}
	ne.PutUint64(p[pageHeaderSize+8*count:], root)
	ne.PutUint16(p[10:], uint16(count+1))
	return f.save(fl)
}

// ZeroFreelist fills the freelist page with zeros.
func ZeroFreelist(path string) error {
	fl, err := Freelist(path)
	if err != nil {
		return err
	}
	f, err := load(path)
	if err != nil {
		return err
	}
	clear(f.page(fl))
	return f.save(fl)
}

// BranchKeyOffset puts the key of the first element of bucket's root
// branch page far outside the file.
func BranchKeyOffset(path, bucket string) error {
	f, root, err := branchRoot(path, bucket)
	if err != nil {
		return err
	}
	ne.PutUint32(f.page(root)[pageHeaderSize:], 0x7ffffff0)
	return f.save(root)
}

// BranchToOtherLeaf makes the second element of bucket's root branch page
// point at the first element's page: one leaf is reached twice, the other
// not at all.
func BranchToOtherLeaf(path, bucket string) error {
	f, root, err := branchRoot(path, bucket)
	if err != nil {
		return err
	}
	p := f.page(root)
	first := ne.Uint64(p[pageHeaderSize+8:])
	ne.PutUint64(p[pageHeaderSize+elementSize+8:], first)
	return f.save(root)
}

// LowerLeafCount lowers by one the element count of the first leaf of
// bucket (under its root branch page): its last record vanishes.
func LowerLeafCount(path, bucket string) error {
	f, root, err := branchRoot(path, bucket)
	if err != nil {
		return err
	}
	leaf := ne.Uint64(f.page(root)[pageHeaderSize+8:])
	p := f.page(leaf)
	if ne.Uint16(p[8:])&0x02 == 0 {
		return errors.New("the first child is not a leaf")
	}
	ne.PutUint16(p[10:], ne.Uint16(p[10:])-1)
	return f.save(leaf)
}

// FlipByte flips the lowest bit of the first byte of every occurrence of
// marker in the file (a value written by the test: its record, and copies
// of it in pages freed since).
func FlipByte(path string, marker []byte) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	w, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer w.Close()
	n := 0
	for off := 0; ; {
		i := bytes.Index(data[off:], marker)
		if i < 0 {
			break
		}
		off += i
		if _, err := w.WriteAt([]byte{data[off] ^ 0x01}, int64(off)); err != nil {
			return err
		}
		off += len(marker)
		n++
	}
	if n == 0 {
		return fmt.Errorf("%q does not occur in %s", marker, path)
	}
	return w.Close()
}

// BranchToFreelist makes the second element of bucket's root branch page
// point at the freelist page, as a stale branch page left by a crash
// may: a walk of the bucket reaches a page that is not a node.
func BranchToFreelist(path, bucket string) error {
	fl, err := Freelist(path)
	if err != nil {
		return err
	}
	f, root, err := branchRoot(path, bucket)
	if err != nil {
		return err
	}
	ne.PutUint64(f.page(root)[pageHeaderSize+elementSize+8:], fl)
	return f.save(root)
}

// BranchToItself makes the second element of bucket's root branch page
// point at the root page itself: a cycle, which a walk that does not
// count its steps follows forever.
func BranchToItself(path, bucket string) error {
	f, root, err := branchRoot(path, bucket)
	if err != nil {
		return err
	}
	ne.PutUint64(f.page(root)[pageHeaderSize+elementSize+8:], root)
	return f.save(root)
}
