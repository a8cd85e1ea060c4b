package boltbackend

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/go-ftl2/ftlstate/internal/atomicfile"
)

// compactTxSize is how many bytes of records Compact copies per write
// transaction of the new file.
const compactTxSize = 64 << 20

// Compact writes a copy of the store, holding only live data, to a new
// file at dst: bbolt files never shrink after deletes, and the copy is as
// small as the data allows. The copy is the store as of one moment (one
// read transaction); writes may go on meanwhile. It is built under a
// temporary name in dst's directory, synced, given the name dst (a hard
// link, so that an existing file is never replaced) and the directory
// synced: dst either does not exist or holds the whole copy. The store
// itself is only read. dst must not exist (an error matching
// fs.ErrExist); to compact a store in place, compact it to a new name,
// close it, and rename the copy over it.
func (b *Backend) Compact(dst string) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.ops.Leave()
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			err = &fs.PathError{Op: "compact", Path: dst, Err: fs.ErrExist}
		}
		return fmt.Errorf("boltbackend: compact %s: %w", b.path, err)
	}
	dir := filepath.Dir(dst)
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".compact-*")
	if err != nil {
		return fmt.Errorf("boltbackend: compact %s: %w", b.path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after publishing, only the temporary name goes
	if err := f.Close(); err != nil {
		return fmt.Errorf("boltbackend: compact %s: %w", b.path, err)
	}
	if err := b.compactTo(tmp); err != nil {
		return fmt.Errorf("boltbackend: compact %s to %s: %w", b.path, dst, err)
	}
	if err := publish(tmp, dst); err != nil {
		return fmt.Errorf("boltbackend: compact %s: %w", b.path, err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("boltbackend: compact %s: %w", b.path, err)
	}
	return nil
}

// compactTo copies the store into the new bbolt file at path and syncs
// it. It does not use bolt.Compact: that commits its last batch into the
// new file after its read transaction on the store has ended, while the
// values it Put still point into the store's memory map, so pages that
// concurrent writers reuse meanwhile are copied as garbage. Here every
// batch commits inside the one read transaction, and values are copied.
func (b *Backend) compactTo(path string) error {
	db, err := bolt.Open(path, fileMode, &bolt.Options{Timeout: time.Nanosecond, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return err
	}
	err = catchFaults(b.path, "compact", func() error {
		return b.db.View(func(src *bolt.Tx) error { return copyTx(db, src) })
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return atomicfile.SyncFile(path)
}

// copyTx copies every bucket of src (the store's buckets are flat) into
// dst, committing every compactTxSize bytes.
func copyTx(dst *bolt.DB, src *bolt.Tx) error {
	tx, err := dst.Begin(true)
	if err != nil {
		return err
	}
	defer func() { tx.Rollback() }()
	size := 0
	err = src.ForEach(func(name []byte, sb *bolt.Bucket) error {
		db, err := tx.CreateBucket(name)
		if err != nil {
			return err
		}
		db.FillPercent = 0.9 // keys arrive in order: pack pages, leave room for updates
		c := sb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				return fmt.Errorf("unexpected nested bucket %q in %q", k, name)
			}
			if size += len(k) + len(v); size > compactTxSize {
				if err := tx.Commit(); err != nil {
					return err
				}
				if tx, err = dst.Begin(true); err != nil {
					return err
				}
				db = tx.Bucket(name)
				db.FillPercent = 0.9
				size = len(k) + len(v)
			}
			// bbolt keeps the value slice until commit: copy it out of the
			// store's memory map (the key is copied by Put).
			if err := db.Put(k, bytes.Clone(v)); err != nil {
				return err
			}
		}
		return db.SetSequence(sb.Sequence())
	})
	if err != nil {
		return err
	}
	return tx.Commit()
}
