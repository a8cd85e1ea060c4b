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
	"strconv"
	"strings"
	"syscall"
)

// Temp files are named after their target and the process that made
// them: target + ".tmp-" + pid + "-" + random digits, in the target's
// directory ("state.db.tmp-4242-813377"). A lock holder can so tell the
// leftovers of a dead process from the temp files of a live one (see
// RemoveStale). Older versions wrote target + ".tmp-" + digits; IsTemp
// knows both.

// CreateTemp creates a new temp file for target (see the naming above),
// mode 0600.
func CreateTemp(target string) (*os.File, error) {
	return os.CreateTemp(filepath.Dir(target), fmt.Sprintf("%s.tmp-%d-*", filepath.Base(target), os.Getpid()))
}

// IsTemp reports whether name, a file name in path's directory, is a temp
// file for path (of this version or an older one).
func IsTemp(path, name string) bool {
	_, ok := tempPID(path, name)
	return ok
}

// tempPID parses name as a temp file for path: the pid that made it, 0
// for the older form that does not say.
func tempPID(path, name string) (pid int, ok bool) {
	rest, ok := strings.CutPrefix(name, filepath.Base(path)+".tmp-")
	if !ok {
		return 0, false
	}
	p, r, tagged := strings.Cut(rest, "-")
	if !digits(p) || tagged && !digits(r) {
		return 0, false
	}
	if !tagged {
		return 0, true
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// RemoveStale removes the temp files for the targets (paths in one
// directory) that were left by processes that are gone: those whose pid
// names no live process, and, when unlocked is false, those of the older
// form that names none. A caller removes them while it holds the lock
// under which such files are made (so none is in progress), passing
// unlocked only for targets whose temp files are also made without the
// lock (by then only a dead process's can be removed). Regular files only;
// it returns the names it removed and ignores errors: a leftover never
// stops anything.
func RemoveStale(unlocked bool, targets ...string) (removed []string) {
	if len(targets) == 0 {
		return nil
	}
	dir := filepath.Dir(targets[0])
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		for _, t := range targets {
			pid, ok := tempPID(t, e.Name())
			if !ok || pid == os.Getpid() || pid == 0 && unlocked || pid > 0 && alive(pid) {
				continue
			}
			if os.Remove(filepath.Join(dir, e.Name())) == nil {
				removed = append(removed, e.Name())
			}
			break
		}
	}
	return removed
}

// alive reports whether a process with pid may exist.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
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
	// BeforeRename, when not nil, is called after the new file is
	// complete and synced, just before it takes path's place; an error it
	// returns fails the write, leaving path as it was. A writer checks
	// there that it still holds its lock.
	BeforeRename func() error
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
	f, err := CreateTemp(path)
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
	if o.BeforeRename != nil {
		if err := o.BeforeRename(); err != nil {
			return err
		}
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

// Describe names the kind of file a mode is, for error messages: "a
// FIFO", "a symbolic link", "a character device", ...
func Describe(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsDir():
		return "a directory"
	case m.IsRegular():
		return "a regular file"
	}
	return "not a regular file"
}
