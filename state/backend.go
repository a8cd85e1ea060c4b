package state

import (
	"crypto/rand"
	"fmt"
	"time"
)

// Backend stores a state durably. The State type keeps the working copy in
// memory and calls a Backend to read the store once, when it is opened, and
// to write each change. Implementations: boltbackend (the embedded default),
// filebackend (the documented state.json), statetest.Memory (for tests).
//
// # Records and ownership
//
// A Backend stores hosts by name and resources by key, each in the value
// model of NormalizeValue, and returns them unchanged. Records handed to
// Commit are normalized and validated by the caller and immutable: neither
// the caller nor the backend modifies them afterwards, and the backend may
// keep them. Records a Snapshot hands out belong to the caller: a backend
// never hands out a record it keeps.
//
// # Missing keys
//
// Reading a missing host or resource reports ok=false and no error.
// Deleting a missing key is not an error and leaves the store unchanged.
//
// # Concurrency
//
// All methods may be called concurrently. Concurrent Commit calls may be
// combined into one physical write (group commit), but each Batch is applied
// atomically and exactly once, and each call returns its own result: a Batch
// that fails (validation, a full disk) fails alone. Two batches touching the
// same key are never in flight at the same time from one State; a backend
// applies concurrent batches in some serial order.
//
// # Durability
//
// When Commit returns nil, the batch is on stable storage (fsync'ed or the
// equivalent) and a View started after that sees it. When Commit returns an
// error, none of the batch is stored.
//
// # Close
//
// Close releases the store (and its lock). Calls after Close return an error
// matching ErrClosed.
type Backend interface {
	// View calls fn with a consistent, read-only view of the store as of
	// one moment. The Snapshot is valid only until fn returns.
	View(fn func(Snapshot) error) error

	// Commit atomically and durably applies b, advancing the stored
	// Metadata as NextMetadata describes, and returns the Metadata as of
	// just after b. A Batch with no changes and no Replace still counts as
	// a committed change. A backend opened read-only returns an error
	// matching ErrReadOnly.
	Commit(b *Batch) (Metadata, error)

	// Close releases the store. It is safe to call more than once.
	Close() error
}

// Snapshot is a consistent read-only view of a store. Records passed to
// callbacks or returned belong to the caller. Iteration is in byte order of
// the host name or resource key. Callback errors stop an iteration and are
// returned unchanged. Errors from the store itself (a record that cannot
// be decoded) match ErrCorrupt.
type Snapshot interface {
	// Metadata returns the store's metadata.
	Metadata() Metadata
	// Len returns the number of hosts and resources.
	Len() (hosts, resources int)
	// Host returns the named host; ok is false when it is absent.
	Host(name string) (h *HostState, ok bool, err error)
	// Resource returns the resource stored under key; ok is false when it
	// is absent.
	Resource(key string) (r *ResourceState, ok bool, err error)
	// Hosts calls fn for every host, in name order.
	Hosts(fn func(h *HostState) error) error
	// Resources calls fn for every resource, in key order.
	Resources(fn func(key string, r *ResourceState) error) error
	// ResourcesOfType calls fn for every resource whose Type is typ, in key
	// order. Backends with an index make its cost proportional to the
	// number of matches.
	ResourcesOfType(typ string, fn func(key string, r *ResourceState) error) error
}

// Viewer is anything that offers a consistent Snapshot: every Backend, and
// *State (a snapshot of its memory). Export, diff and inventory rendering
// take a Viewer.
type Viewer interface {
	View(fn func(Snapshot) error) error
}

// Kind tells what a Change addresses.
type Kind uint8

// The kinds of record.
const (
	KindHost Kind = iota + 1
	KindResource
)

func (k Kind) String() string {
	switch k {
	case KindHost:
		return "host"
	case KindResource:
		return "resource"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Change is one put or delete of one record.
type Change struct {
	Kind Kind
	// Key is the host name or the resource key.
	Key string
	// Host is the new record for a host put (Host.Name == Key); nil with
	// KindHost means delete.
	Host *HostState
	// Resource is the new record for a resource put; nil with KindResource
	// means delete.
	Resource *ResourceState
}

// Delete reports whether c removes its record.
func (c *Change) Delete() bool {
	if c.Kind == KindHost {
		return c.Host == nil
	}
	return c.Resource == nil
}

// Batch is a set of changes that commit together or not at all.
type Batch struct {
	// Changes are applied in order; a key appears at most once.
	Changes []Change
	// Time is the commit time, used for Metadata.UpdatedAt.
	Time time.Time
	// Replace, when not nil, empties the store before Changes are applied
	// and becomes its Metadata (import). Its Serial is used as given.
	Replace *Metadata
}

// NewLineage returns a new random lineage id (a UUID, version 4).
func NewLineage() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// NewMetadata returns the metadata of a store created at now: version
// FormatVersion, serial 0 and a new lineage.
func NewMetadata(now time.Time) Metadata {
	now = Timestamp(now)
	return Metadata{Version: FormatVersion, CreatedAt: now, UpdatedAt: now, Lineage: NewLineage()}
}

// NextMetadata returns the metadata a store holding prev has after
// committing b. Every backend uses it, so that all agree:
//
//   - with b.Replace set, the result is *b.Replace (missing version,
//     lineage or creation time filled in);
//   - otherwise Serial grows by one and UpdatedAt becomes b.Time, unless
//     that is earlier than it already is (concurrent commits);
//   - a store without version, lineage or creation time (a hand-written
//     file) gets them.
func NextMetadata(prev Metadata, b *Batch) Metadata {
	now := Timestamp(b.Time)
	m := prev
	if b.Replace != nil {
		m = *b.Replace
	} else {
		m.Serial++
		if now.After(m.UpdatedAt) {
			m.UpdatedAt = now
		}
	}
	if m.Version == "" {
		m.Version = FormatVersion
	}
	if m.Lineage == "" {
		m.Lineage = NewLineage()
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now
	}
	if m.UpdatedAt.IsZero() {
		m.UpdatedAt = now
	}
	return m
}
