package state

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrInvalid means an argument or a record breaks a rule of the store
	// (an empty name, a port out of range, a value JSON cannot represent).
	ErrInvalid = errors.New("invalid")
	// ErrLocked means another process or controller holds the store's lock.
	ErrLocked = errors.New("locked")
	// ErrCorrupt means stored data cannot be read as a valid store.
	ErrCorrupt = errors.New("corrupt")
	// ErrClosed means the State or Backend was used after Close.
	ErrClosed = errors.New("closed")
	// ErrConflict means a write was refused because the store holds a
	// different or newer state (lineage or serial mismatch on import).
	ErrConflict = errors.New("conflict")
	// ErrReadOnly means a write was attempted on a store opened read-only.
	ErrReadOnly = errors.New("read-only")
	// ErrOutcomeUnknown means a write was sent but neither its success nor
	// its failure can be confirmed (an fsync failed after the new data may
	// already be visible, a request timed out): the change may or may not
	// be stored. The backend (and the State) refuses further writes until
	// it is reopened, and the next open decides what is stored.
	ErrOutcomeUnknown = errors.New("outcome unknown")
)

// FieldError reports a bad field, naming it by its JSON path relative to
// what was validated ("port", "vars.tls.key", "hosts.web01.port").
// It matches ErrInvalid with errors.Is.
type FieldError struct {
	Path string // JSON path of the bad field
	Msg  string // what is wrong with it
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Under returns a copy of e whose path is prefixed by prefix (and a dot).
func (e *FieldError) Under(prefix string) *FieldError {
	if e.Path == "" {
		return &FieldError{Path: prefix, Msg: e.Msg}
	}
	return &FieldError{Path: prefix + "." + e.Path, Msg: e.Msg}
}

// LockInfo describes the holder of a store's lock. It is written beside the
// store while the lock is held and holds no secrets.
type LockInfo struct {
	PID      int       `json:"pid"`
	Host     string    `json:"host"`
	Command  string    `json:"command"`
	Since    time.Time `json:"since"`
	Instance string    `json:"instance,omitempty"` // random id of the holder's open
	// Socket is the Unix socket where the holder serves reads of the
	// store (see Server), when it does.
	Socket string `json:"socket,omitempty"`
}

// String describes the holder: "pid 4242 (ftl2 apply) on host ci-7 since
// 2024-01-15 10:31:05 CET" (local time, with its date and zone: the
// holder may have started days ago, or on a machine in another zone).
func (i *LockInfo) String() string {
	s := fmt.Sprintf("pid %d", i.PID)
	if i.Command != "" {
		s += " (" + i.Command + ")"
	}
	if i.Host != "" {
		s += " on host " + i.Host
	}
	if !i.Since.IsZero() {
		s += " since " + i.Since.Local().Format("2006-01-02 15:04:05 MST")
	}
	return s
}

// LockError reports that a store is locked. It matches ErrLocked.
type LockError struct {
	// Path names the store (a file path or an etcd prefix).
	Path string
	// Holder is what the holder wrote about itself, nil when unknown.
	Holder *LockInfo
	// Stale reports that Holder describes a process that is gone; the lock
	// itself is then held by someone who did not write (or could not
	// write) lock info.
	Stale bool
	// Waited is how long Open waited for the lock.
	Waited time.Duration
	// Expires, when not zero, is how long the lock has left to live if
	// its holder stops renewing it (an etcd lease): with Stale, how long
	// until the lock is free.
	Expires time.Duration
}

func (e *LockError) Error() string {
	msg := e.Path + ": locked"
	switch h := e.Holder; {
	case h != nil && e.Stale && e.Expires > 0:
		msg += fmt.Sprintf(": held by pid %d's lease, which expires within %s", h.PID, e.Expires.Round(time.Second))
	case h != nil && !e.Stale:
		msg += " by " + h.String()
	case h != nil:
		msg += fmt.Sprintf(" by another process (stale lock info from pid %d on %s)", h.PID, h.Host)
	default:
		msg += " by another process"
	}
	if e.Waited > 0 {
		msg += fmt.Sprintf(" (waited %s)", e.Waited)
	}
	return msg
}

// Unwrap returns ErrLocked.
func (e *LockError) Unwrap() error { return ErrLocked }
