package state

import (
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// Backend stores a state durably. The State type keeps the working copy in
// memory and calls a Backend to read the store once, when it is opened, and
// to write each change. Implementations: boltbackend (the embedded default),
// filebackend (the documented state.json), etcdbackend (a store shared by
// many controllers), statetest.Memory (for tests). The package
// documentation gives the contract as a whole; statetest.TestBackend
// checks it.
//
// A Backend may also offer optional capabilities, each an interface of
// this package with a helper that falls back when it is missing (as
// fs.Stat does for fs.StatFS): Checker (Check), LockReporter (StaleLock),
// and, on its Snapshots, TypeIndex (ResourcesOfType). Server (Serve) is
// used by State.Open itself: a backend that offers it lets other
// processes read the store while the State holds it.
//
// # Records and ownership
//
// A Backend stores hosts by name, resources by key and pending operations
// by ID, each in the value model of NormalizeValue, and returns them
// unchanged. Records handed to Commit are normalized and validated by the
// caller and immutable: neither the caller nor the backend modifies them
// afterwards, and the backend may keep them. Records a Snapshot hands out
// belong to the caller: a backend never hands out a record it keeps.
//
// # Missing keys
//
// Reading a missing host, resource or operation reports ok=false and no
// error. Deleting a missing key is not an error and leaves the store
// unchanged (State, not the backend, refuses to finish an operation that
// is not pending).
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
// error, none of the batch is stored, except that an error matching
// ErrOutcomeUnknown says the backend cannot tell (see ErrOutcomeUnknown).
// Commit first calls Batch.Validate: a batch it refuses fails with an error
// matching ErrInvalid before anything is written or grouped.
//
// # Views
//
// A View's Snapshot shows the store after some committed batch and before
// the next, whatever is committed while fn runs. fn must not call Commit
// nor wait for a Commit of another goroutine: a backend may make a Commit
// wait for the Views in progress (bbolt does when it must grow its file).
//
// # Close
//
// Close releases the store (and its lock). It may be called while Views
// run: their Snapshots keep working until their functions return (a
// backend may make Close wait for them). Calls after Close return an error
// matching ErrClosed; a second Close returns nil.
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

// Snapshot is a consistent read-only view of a store: the store after
// some committed batch and before the next, whatever is committed while it
// is in use. Records passed to callbacks or returned belong to the caller
// (deep copies: changing them changes nothing stored). Iteration is in
// byte order of the host name or resource key (not in the order of
// strings.ToLower, nor of Unicode collation). Callback errors stop an
// iteration and are returned unchanged. Errors from the store itself (a
// record that cannot be decoded) match ErrCorrupt. A Snapshot is valid
// until its View's function returns, for one goroutine at a time (bbolt's
// transactions are not safe for concurrent use).
//
// A Snapshot with an index of resources by type implements TypeIndex;
// callers use the ResourcesOfType function, which falls back to
// filtering Resources.
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
	// Operation returns the pending operation id; ok is false when there
	// is none.
	Operation(id string) (op *Operation, ok bool, err error)
	// Operations calls fn for every pending operation, in ID order.
	Operations(fn func(op *Operation) error) error
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
	// KindOperation addresses a pending Operation, by its ID.
	KindOperation
)

func (k Kind) String() string {
	switch k {
	case KindHost:
		return "host"
	case KindResource:
		return "resource"
	case KindOperation:
		return "operation"
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
	// Operation is the record of an operation begun (Operation.ID ==
	// Key); nil with KindOperation means the operation is removed
	// (finished or abandoned).
	Operation *Operation
}

// Delete reports whether c removes its record.
func (c *Change) Delete() bool {
	switch c.Kind {
	case KindHost:
		return c.Host == nil
	case KindOperation:
		return c.Operation == nil
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

// Validate checks b against the rules of a Batch that every backend relies
// on, so that a backend can refuse a batch it could not store before it
// joins other batches in one physical write (and fails them too). Every
// backend calls it first in Commit. The rules:
//
//   - b is not nil; b.Time, and with Replace the metadata's times, lie in
//     years 0 to 9999, and the metadata's Version and Lineage are valid
//     UTF-8;
//   - every change has a known Kind and a Key that passes ValidateName
//     (deletes included: no record can have another key);
//   - a put sets the record of its Kind and no other: Host for KindHost,
//     Resource for KindResource, Operation for KindOperation; a host is
//     stored under its own name (Host.Name == Key), an operation under
//     its own ID (Operation.ID == Key);
//   - a put's record is valid and in the package's normalized form:
//     Normalize accepts it and returns it unchanged (so a backend never
//     stores what it could not return as it was given, or read back);
//   - no record (kind and key) appears twice.
//
// The error matches ErrInvalid and names the change and the field, such
// as `host "web01": name: "web1" does not match its key` or
// `host "web01": port: must be 0..65535`. See Validation in the package
// documentation for what Normalize, Validate and the backends' codecs
// each check.
func (b *Batch) Validate() error {
	if b == nil {
		return fmt.Errorf("nil batch: %w", ErrInvalid)
	}
	if err := checkYear("time", b.Time); err != nil {
		return fmt.Errorf("batch: %w", err)
	}
	if m := b.Replace; m != nil {
		if err := m.validate(); err != nil {
			return fmt.Errorf("batch: replace: %w", err.Under("metadata"))
		}
	}
	var seen map[recordID]struct{}
	if len(b.Changes) > 1 {
		seen = make(map[recordID]struct{}, len(b.Changes))
	}
	for i := range b.Changes {
		c := &b.Changes[i]
		if err := c.validate(); err != nil {
			if c.Kind == KindHost || c.Kind == KindResource || c.Kind == KindOperation {
				return fmt.Errorf("%v %q: %w", c.Kind, c.Key, err)
			}
			return fmt.Errorf("change %d: %w", i, err)
		}
		if seen != nil {
			id := recordID{c.Kind, c.Key}
			if _, dup := seen[id]; dup {
				return fmt.Errorf("%v %q: %w", c.Kind, c.Key, &FieldError{Msg: "changed twice in one batch"})
			}
			seen[id] = struct{}{}
		}
	}
	return nil
}

// validate checks one change of a batch (see Batch.Validate).
func (c *Change) validate() *FieldError {
	switch c.Kind {
	case KindHost, KindResource, KindOperation:
		for _, f := range [...]struct {
			kind Kind
			path string
			set  bool
		}{{KindHost, "host", c.Host != nil}, {KindResource, "resource", c.Resource != nil}, {KindOperation, "operation", c.Operation != nil}} {
			if f.set && f.kind != c.Kind {
				article := "a"
				if c.Kind == KindOperation {
					article = "an"
				}
				return &FieldError{Path: f.path, Msg: fmt.Sprintf("set on %s %v change", article, c.Kind)}
			}
		}
	default:
		return &FieldError{Path: "kind", Msg: fmt.Sprintf("unknown %v", c.Kind)}
	}
	if err := ValidateName(c.Key); err != nil {
		return err.(*FieldError).Under("key")
	}
	switch {
	case c.Host != nil:
		if c.Host.Name != c.Key {
			return &FieldError{Path: "name", Msg: fmt.Sprintf("%q does not match its key", c.Host.Name)}
		}
		n, err := c.Host.Normalize()
		return normalized(n, c.Host, err)
	case c.Resource != nil:
		n, err := c.Resource.Normalize()
		return normalized(n, c.Resource, err)
	case c.Operation != nil:
		if c.Operation.ID != c.Key {
			return &FieldError{Path: "id", Msg: fmt.Sprintf("%q does not match its key", c.Operation.ID)}
		}
		n, err := c.Operation.Normalize()
		return normalized(n, c.Operation, err)
	}
	return nil
}

// normalized reports the error of Normalize(rec), or that rec differs
// from n, what Normalize made of it.
func normalized[T any](n, rec *T, err error) *FieldError {
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return fe
		}
		return &FieldError{Msg: err.Error()}
	}
	if !reflect.DeepEqual(n, rec) {
		return &FieldError{Msg: "not in normalized form (Normalize changes it: a value outside the value model, a time that is not UTC or has a monotonic reading, an empty Groups)"}
	}
	return nil
}

// validate checks that m can be stored: times in years 0..9999 and UTF-8
// text.
func (m *Metadata) validate() *FieldError {
	for _, f := range [...]struct{ path, s string }{{"version", m.Version}, {"lineage", m.Lineage}} {
		if err := validText(f.path, f.s); err != nil {
			return err.(*FieldError)
		}
	}
	return checkTimes(m.CreatedAt, m.UpdatedAt)
}

// checkTimes checks a record's two times (see checkYear).
func checkTimes(created, updated time.Time) *FieldError {
	if err := checkYear("created_at", created); err != nil {
		return err
	}
	return checkYear("updated_at", updated)
}

// checkYear checks that t, in UTC, lies in years 0..9999: what RFC 3339
// (state.json) and the record codec can hold.
func checkYear(path string, t time.Time) *FieldError {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return &FieldError{Path: path, Msg: fmt.Sprintf("year %d outside 0..9999", y)}
	}
	return nil
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
