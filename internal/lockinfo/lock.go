package lockinfo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/go-ftl2/ftlstate/state"
)

// maxRestarts bounds how often Acquire starts over because the lock file
// it locked was replaced meanwhile.
const maxRestarts = 100

// Lock is an exclusive flock(2) held on a lock file (the file backend's
// PATH.lock), which also holds the holder's lock-info record. The kernel
// releases it when the holder exits, however it exits.
type Lock struct {
	path string
	f    *os.File    // the locked file, open read-write
	fi   fs.FileInfo // f's identity, to compare with what path names
}

// ErrLockLost is matched by Lock.Check's error: the lock file was
// removed or replaced while its lock was held, so another process may
// hold a lock on a new file of that name and write the store.
var ErrLockLost = errors.New("the lock file was removed or replaced while this process held it")

// Acquire takes an exclusive lock on the lock file at path, creating it
// (mode 0600) when missing. It waits up to timeout for another holder
// (zero: it tries once; negative: it waits as long as it takes); ok is
// false when the lock stayed held.
//
// The file must be a regular file with one link: a symbolic link, FIFO,
// device, directory or hard link gives an error matching ErrNotRegular,
// and it is never followed, waited on or written into.
//
// Once the lock is taken, Acquire checks that path still names the file
// it locked (lock, then stat): a file deleted or replaced while Acquire
// waited is not the lock any more, since another process may lock the
// new file at path. Acquire then lets go and starts over on the file path
// names now.
func Acquire(path string, timeout time.Duration) (l *Lock, ok bool, err error) {
	start := time.Now()
	poll := 50 * time.Millisecond
	if timeout > 0 {
		poll = max(min(timeout/10, poll), time.Millisecond)
	}
	for restarts := 0; ; restarts++ {
		f, err := openFile(path, os.O_RDWR|os.O_CREATE)
		if err != nil {
			return nil, false, err
		}
		ok, err := lockFile(f, timeout, start, poll)
		if err != nil || !ok {
			f.Close()
			if err != nil {
				err = &fs.PathError{Op: "flock", Path: path, Err: err}
			}
			return nil, false, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, false, err
		}
		cur, err := os.Lstat(path)
		if err == nil && os.SameFile(fi, cur) {
			return &Lock{path: path, f: f, fi: fi}, true, nil
		}
		f.Close() // releases the lock on a file that is no longer at path
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, false, err
		}
		if restarts == maxRestarts {
			return nil, false, fmt.Errorf("%s: the lock file keeps being replaced (%d times while locking it)", path, restarts+1)
		}
	}
}

// lockFile takes an exclusive flock on f, waiting up to timeout since
// start, polling every poll (or, with a negative timeout, blocking).
func lockFile(f *os.File, timeout time.Duration, start time.Time, poll time.Duration) (bool, error) {
	for {
		err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case !errors.Is(err, syscall.EWOULDBLOCK):
			return false, err
		case timeout < 0:
			return true, flock(f, syscall.LOCK_EX)
		}
		left := timeout - time.Since(start)
		if left <= 0 {
			return false, nil
		}
		time.Sleep(min(left, poll))
	}
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// Stale returns the record in the locked file when it describes a process
// that is no longer running: a holder killed without releasing, whose
// lock the kernel released. Call it before Write.
func (l *Lock) Stale() *state.LockInfo {
	info, err := readFrom(l.f)
	if err != nil || info == nil || Alive(info) {
		return nil
	}
	return info
}

// Write replaces the lock-info record in the locked file with info.
func (l *Lock) Write(info state.LockInfo) error { return Write(l.f, info) }

// Check reports whether the lock still protects the store: an error
// matching ErrLockLost when the lock file at its path was removed or
// replaced (someone deleted PATH.lock by hand, say), since another
// process may then have locked a new file there. Writers call it before
// each write.
func (l *Lock) Check() error {
	cur, err := os.Lstat(l.path)
	if err == nil && os.SameFile(l.fi, cur) {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return fmt.Errorf("%s: %w", l.path, ErrLockLost)
}

// Release empties the lock-info record and releases the lock. The file
// stays: removing it would let a process that is waiting for it lock a
// file nobody else sees.
func (l *Lock) Release() error {
	err := l.f.Truncate(0)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}
