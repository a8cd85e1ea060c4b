package boltbackend

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
)

// compactTxSize is how many bytes of records Compact copies per write
// transaction of the new file.
const compactTxSize = 64 << 20

// Compact writes a copy of the store, holding only live data, to a new
// file at dst: bbolt files never shrink after deletes, and the copy is as
// small as the data allows. The copy is the store as of one moment (one
// read transaction); writes may go on meanwhile. It is built under a
// temporary name in dst's directory (atomicfile.CreateTemp: dst.tmp-PID-N,
// so that a later writer of the store can remove it if this process dies),
// synced, given the name dst (a hard link, so that an existing file is
// never replaced) and the directory synced: dst either does not exist or
// holds the whole copy. The store itself is only read. dst must not exist
// (an error matching fs.ErrExist); Backup replaces an existing file, and
// CompactInPlace compacts the store itself.
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
	return b.compactAs(dst, publish)
}

// Backup writes a compacted copy of the store (see Compact) to dst,
// replacing what dst holds in one rename: dst holds either its old
// content or the whole copy, never a mix. A symbolic link at dst is
// replaced, not followed.
func (b *Backend) Backup(dst string) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.ops.Leave()
	return b.compactAs(dst, os.Rename)
}

// compactAs compacts the store into a temp file for dst and gives it the
// name dst with place (publish or os.Rename), then syncs the directory.
func (b *Backend) compactAs(dst string, place func(tmp, dst string) error) error {
	if b.lg != nil {
		// The copy holds everything acknowledged: the log goes into the
		// file first.
		if err := b.lg.sync(); err != nil {
			return fmt.Errorf("boltbackend: compact %s: %w", b.path, err)
		}
	}
	f, err := atomicfile.CreateTemp(dst)
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
	if err := place(tmp, dst); err != nil {
		return fmt.Errorf("boltbackend: compact %s: %w", b.path, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("boltbackend: compact %s: %w", b.path, err)
	}
	return nil
}

// CompactInPlace replaces the store's file with a compacted copy of it
// (see Compact), and closes b. b must be open for writing: it holds the
// store's lock. Operations in flight end first; later ones fail with
// state.ErrClosed.
//
// The copy is written to a temp file beside the store (symbolic links
// resolved: the file is replaced, the links keep pointing at it), synced,
// and given the replaced file's mode and owner (as far as the process
// may: root can, others keep their own). When backup is not empty, the
// file as it was becomes backup (a hard link, or a copy where links are
// not supported), replacing backup. Then the copy is renamed over the
// store and the directory synced. A failure before the rename leaves the
// store as it was. A process that was waiting for the lock on the old
// file finds, once it has it, that the store's path names another file,
// and opens that one (see Open).
func (b *Backend) CompactInPlace(backup string) (err error) {
	if b.readOnly {
		return fmt.Errorf("boltbackend: %s: compact: %w", b.path, state.ErrReadOnly)
	}
	if !b.ops.Close() {
		return b.errClosed()
	}
	// Nothing changes the store from here on: no operation runs, and the
	// committer stops once it has written what is queued.
	close(b.queue)
	<-b.done
	defer func() {
		if cerr := b.release(); err == nil {
			err = cerr
		}
	}()
	if b.lg != nil {
		// Everything logged goes into the file, and the log is emptied:
		// the copy is the whole store.
		if err := b.stopLog(); err != nil {
			return fmt.Errorf("boltbackend: compact %s: %w", b.path, err)
		}
	}
	if p := b.broken.Load(); p != nil {
		return *p
	}
	wrap := func(err error) error { return fmt.Errorf("boltbackend: compact %s: %w", b.path, err) }
	if err := b.stillAtPath(); err != nil {
		return wrap(err)
	}
	f, err := atomicfile.CreateTemp(b.real)
	if err != nil {
		return wrap(err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename, there is nothing to remove
	err = f.Close()
	if err == nil {
		err = b.compactTo(tmp)
	}
	if err == nil {
		err = keepModeAndOwner(tmp, b.locked)
	}
	if err == nil && backup != "" {
		if err = linkOrCopy(b.real, backup); err != nil {
			return fmt.Errorf("boltbackend: %s: backup to %s: %w", b.path, backup, err)
		}
	}
	if err != nil {
		return wrap(err)
	}
	// The lock-info record goes while the lock still protects it: after
	// the rename, the next holder of the new file writes its own.
	if b.info != nil {
		lockinfo.Remove(b.info)
		b.info.Close()
		b.info = nil
	}
	if err := os.Rename(tmp, b.real); err != nil {
		return wrap(err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(b.real)); err != nil {
		return wrap(fmt.Errorf("%w: %w", atomicfile.ErrNotDurable, err))
	}
	return nil
}

// keepModeAndOwner gives the file at path the permission bits and, where
// the process may, the owner and group of fi.
func keepModeAndOwner(path string, fi fs.FileInfo) error {
	if err := os.Chmod(path, fi.Mode().Perm()); err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) == os.Getuid() && int(st.Gid) == os.Getgid() {
		return nil
	}
	if err := os.Lchown(path, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	// chown clears the set-id bits; restore the mode as it was.
	return os.Chmod(path, fi.Mode().Perm())
}

// linkOrCopy makes dst hold what src holds, replacing dst in one rename:
// a hard link to src (exact, and free), or a copy where the file system
// has no hard links.
func linkOrCopy(src, dst string) error {
	f, err := atomicfile.CreateTemp(dst)
	if err != nil {
		return err
	}
	tmp := f.Name()
	f.Close()
	os.Remove(tmp) // only its unique name is wanted, for the link
	if err := os.Link(src, tmp); err != nil {
		return atomicfile.Copy(dst, src)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(dst))
}

// legacyTemps are the fixed names under which older versions built
// compactions and backups of a store (always under its lock).
func legacyTemps(path string) []string {
	dir, base := filepath.Split(path)
	names := []string{path + ".compact", path + ".backup.new"}
	for _, pattern := range []string{"." + base + ".compact.compact-*", "." + base + ".backup.new.compact-*"} {
		m, _ := filepath.Glob(filepath.Join(dir, globEscape(pattern)))
		names = append(names, m...)
	}
	return names
}

// globEscape escapes the metacharacters of a file name, except the final
// "*" of a pattern.
func globEscape(pattern string) string {
	name, star := strings.CutSuffix(pattern, "*")
	name = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`).Replace(name)
	if star {
		name += "*"
	}
	return name
}

// removeLeftovers removes what writers of the store at path that died
// left beside it: temp files of compactions and backups (made under the
// lock, which the caller holds), temp files of store creations (made
// without it) whose process is gone (atomicfile.RemoveStale), and the
// fixed names older versions used. A leftover never blocks anything; this
// only returns the space.
func removeLeftovers(path string) {
	atomicfile.RemoveStale(true, path, path+".backup")
	for _, name := range legacyTemps(path) {
		if fi, err := os.Lstat(name); err == nil && fi.Mode().IsRegular() {
			os.Remove(name)
		}
	}
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
	if err == nil && b.ov != nil {
		// A read-only Backend's log goes into the copy, which so holds
		// everything acknowledged.
		err = catchFaults(b.path, "compact", func() error {
			return db.Update(func(tx *bolt.Tx) error { return b.applyLogged(tx, b.ov.recs, b.ov.id) })
		})
	}
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
