// Package atomicfile writes files so that a reader (or a crash) sees either
// the old content or the new, never a mix: a unique temp file in the
// target's directory, write, fsync, close, rename over the target, fsync
// the directory (google/renameio's pattern). On any failure the temp file
// is removed and the target is untouched.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// TempPattern is the os.CreateTemp pattern of temp files: base +
// ".tmp-*", the star being digits. Temp files left by a killed process
// match it (see IsTemp).
func TempPattern(path string) string { return filepath.Base(path) + ".tmp-*" }

// IsTemp reports whether name, a file name in path's directory, is a temp
// file of a Write to path.
func IsTemp(path, name string) bool {
	rest, ok := strings.CutPrefix(name, filepath.Base(path)+".tmp-")
	if !ok || rest == "" {
		return false
	}
	for _, r := range rest {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Options tune Write. A nil *Options means the zero value.
type Options struct {
	// Perm is the mode path gets when it does not exist yet; an existing
	// file's mode is kept. Zero means 0o600: what this module writes may
	// hold credentials.
	Perm fs.FileMode
	// KeepOwner gives the new file the owner and group of the file it
	// replaces, where the process may (only root can give a file away;
	// others keep their own, silently).
	KeepOwner bool
	// Step, when not nil, is called before each step of the write with
	// its name: "create", "sync", "close", "rename", "syncdir". An error
	// it returns fails the write at that step, except ErrSkip, which
	// leaves out a "sync" or "syncdir" step. Tests inject faults with it.
	Step func(step string) error
}

// ErrSkip, returned by Options.Step for "sync" or "syncdir", makes Write
// leave that fsync out: the unsafe writer that power-loss tests must
// catch.
var ErrSkip = errors.New("atomicfile: skip this step")

// Write replaces path with what write produces (see the package
// documentation). write's errors, and the steps', are returned unchanged;
// until the rename, a failure leaves path as it was and no temp file. A
// failure after the rename matches ErrNotDurable.
func Write(path string, opts *Options, write func(w io.Writer) error) (err error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	step := func(name string) error {
		if o.Step != nil {
			return o.Step(name)
		}
		return nil
	}
	perm := o.Perm
	if perm == 0 {
		perm = 0o600
	}
	uid, gid := -1, -1
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && o.KeepOwner {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := step("create"); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPattern(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if uid >= 0 && (uid != os.Getuid() || gid != os.Getgid()) {
		f.Chown(uid, gid) // best effort: only root may give a file away
	}
	if err := write(f); err != nil {
		return err
	}
	if err := step("sync"); errors.Is(err, ErrSkip) {
	} else if err != nil {
		return err
	} else if err := f.Sync(); err != nil {
		return err
	}
	written, err := f.Stat()
	if err != nil {
		return err
	}
	if err := step("close"); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	err = step("rename")
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		// A rename that reports failure may have happened all the same
		// (an I/O error after the directory changed): ask the file system.
		if fi, serr := os.Lstat(path); serr == nil && os.SameFile(fi, written) {
			renamed = true
			return fmt.Errorf("%w: %w", ErrNotDurable, err)
		}
		return err
	}
	renamed = true
	err = step("syncdir")
	if err == nil {
		err = SyncDir(dir)
	} else if errors.Is(err, ErrSkip) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotDurable, err)
	}
	return nil
}

// ErrNotDurable is matched by a Write error after the new file took
// path's place: the rename happened, but making it durable (the directory
// fsync) failed, so after a crash path may hold the old content or the
// new. The outcome of the write is unknown.
var ErrNotDurable = errors.New("the new file is in place, but not durably")

// Copy replaces dst with a copy of src (see Write); dst keeps src's mode
// when dst is new.
func Copy(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	return Write(dst, &Options{Perm: fi.Mode().Perm()}, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// SyncDir fsyncs a directory, making a rename or a creation in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, os.ErrInvalid) {
		err = nil // a file system without directory sync
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// SyncFile fsyncs the file at path.
func SyncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
