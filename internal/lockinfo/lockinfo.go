package lockinfo

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

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

// Create opens (creating, mode 0600) the lock-info file at path and writes
// info into it.
func Create(path string, info state.LockInfo) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := Write(f, info); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Read returns the record at path; an error matching fs.ErrNotExist when
// there is none, and nil with no error when the file is empty or not a
// record (a holder that died between creating and writing it).
func Read(path string) (*state.LockInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize))
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
