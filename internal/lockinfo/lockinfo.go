package lockinfo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/state"
)

// MaxSize bounds what Read accepts; a lock-info record is tiny.
const MaxSize = 64 << 10

// Path returns the lock-info path of the store at store: store + ".lock".
func Path(store string) string { return store + ".lock" }

// command, when set, is what Self records as the command (SetCommand).
var command atomic.Pointer[string]

// SetCommand makes Self record cmd as this process's command instead of
// the words Command finds in os.Args. A program whose global flags come
// before its verb ("ftlstate --state s.db import x.json", where Command
// sees only "ftlstate") sets it to what it runs ("ftlstate import"). It
// must hold no secrets.
func SetCommand(cmd string) { command.Store(&cmd) }

// Self describes this process as a lock holder.
func Self() state.LockInfo {
	host, _ := os.Hostname()
	cmd := Command(os.Args)
	if c := command.Load(); c != nil {
		cmd = *c
	}
	return state.LockInfo{
		PID:      os.Getpid(),
		Host:     host,
		Command:  cmd,
		Since:    time.Now().UTC().Truncate(time.Second),
		Instance: state.NewLineage(),
	}
}

// Command condenses a command line for the record: the program's base name
// and the leading words that are not flags ("ftlstate host add"), at most
// four, so that no flag value (a token, a password) is ever recorded.
func Command(args []string) string {
	if len(args) == 0 {
		return ""
	}
	words := []string{filepath.Base(args[0])}
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "-") || len(words) == 4 {
			break
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}

// Write replaces the content of f (an open lock-info file) with info. It
// writes in place, so that a kernel lock held on f survives.
func Write(f *os.File, info state.LockInfo) error {
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Sync()
}

// openFlags are added to every open of a lock or lock-info file: never
// through a symbolic link (it would make us write into its target), never
// blocking on a FIFO, never inherited by a child process.
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC

// ErrNotRegular is matched by the error of a lock or lock-info path that
// holds something else than a regular file of one link: a symbolic link,
// a FIFO, a device, a directory, or a hard link to another file. Such a
// file is refused, never followed, read through or written into.
var ErrNotRegular = errors.New("not a regular file")

// openFile opens the lock or lock-info file at path with flag|openFlags
// and checks what it opened: a regular file with one link.
func openFile(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|openFlags, 0o600)
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EISDIR) {
		what := "a symbolic link"
		if errors.Is(err, syscall.EISDIR) {
			what = "a directory"
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%s): remove it", ErrNotRegular, what)}
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkRegular(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkRegular refuses fi, the file at path, unless it is a regular file
// with one link.
func checkRegular(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%s): remove it", ErrNotRegular, atomicfile.Describe(fi.Mode()))}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (it has %d hard links, so writing it would change another file): remove it", ErrNotRegular, st.Nlink)}
	}
	return nil
}

// Create opens (creating, mode 0600) the lock-info file at path and writes
// info into it. A path that holds anything but a regular file of one link
// gives an error matching ErrNotRegular, and nothing is written.
func Create(path string, info state.LockInfo) (*os.File, error) {
	f, err := openFile(path, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, err
	}
	if err := Write(f, info); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Remove removes the lock-info file f, created by Create at its name,
// unless that name now names another file (a successor's): a record is
// only ever removed by the process that holds it.
func Remove(f *os.File) error {
	mine, err := f.Stat()
	if err != nil {
		return err
	}
	cur, err := os.Lstat(f.Name())
	if errors.Is(err, fs.ErrNotExist) || err == nil && !os.SameFile(mine, cur) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.Remove(f.Name())
}

// Read returns the record at path; an error matching fs.ErrNotExist when
// there is none, one matching ErrNotRegular when path holds something
// else than a regular file (never followed or waited on), and nil with no
// error when the file is empty or not a record (a holder that died
// between creating and writing it).
func Read(path string) (*state.LockInfo, error) {
	f, err := openFile(path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readFrom(f)
}

// readFrom reads the record in f (see Read).
func readFrom(f *os.File) (*state.LockInfo, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, MaxSize))
	if err != nil {
		return nil, err
	}
	var info state.LockInfo
	if len(b) == 0 || json.Unmarshal(b, &info) != nil || info.PID <= 0 {
		return nil, nil
	}
	return &info, nil
}

// Alive reports whether the process described by info may still be
// running: true for another host (it cannot be checked from here), else
// whether the pid exists.
func Alive(info *state.LockInfo) bool {
	if info == nil {
		return false
	}
	if host, _ := os.Hostname(); info.Host != host {
		return true
	}
	err := syscall.Kill(info.PID, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Error builds the error returned when the store at store could not be
// locked: it names the holder found in the record at infoPath, or says the
// record is stale.
func Error(store, infoPath string, waited time.Duration) *state.LockError {
	e := &state.LockError{Path: store, Waited: waited}
	info, err := Read(infoPath)
	if err == nil && info != nil {
		e.Holder = info
		e.Stale = !Alive(info)
	}
	return e
}

// Stale returns the record at infoPath when it describes a process that is
// no longer running (a holder killed without closing the store), else nil.
// Backends call it before taking over the record, to report a crash.
func Stale(infoPath string) *state.LockInfo {
	info, err := Read(infoPath)
	if err != nil || info == nil || Alive(info) {
		return nil
	}
	return info
}
