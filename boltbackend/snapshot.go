package boltbackend

import (
	"bytes"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// View implements state.Backend: fn runs inside one bbolt read
// transaction, so the Snapshot is the store as of one commit, whatever is
// committed meanwhile. Records are decoded (copied out of the file) as
// they are read; decoding errors match state.ErrCorrupt and name the
// bucket and key. Long Views hold pages that writers cannot reuse, so
// the file may grow while they run.
func (b *Backend) View(fn func(state.Snapshot) error) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.ops.Leave()
	if b.lg != nil {
		// What was acknowledged is in the file first (a checkpoint, if
		// the log holds anything).
		if err := b.lg.sync(); err != nil {
			return err
		}
	}
	return b.db.View(func(tx *bolt.Tx) error {
		s := &snapshot{path: b.path, ov: b.ov}
		err := catchFaults(b.path, "read", func() error {
			var err error
			s.bk, err = b.openBuckets(tx)
			return err
		})
		if err != nil {
			return err
		}
		defer func() { s.bk = nil }()
		return fn(s)
	})
}

// snapshot is a state.Snapshot on a read transaction.
type snapshot struct {
	path string
	// bk holds the transaction's buckets; nil once View returned.
	bk *buckets
	// ov, when not nil, is shown over the file (a read-only Backend's
	// log).
	ov *overlay
}

var errSnapshotDone = errors.New("boltbackend: snapshot used after its View returned")

func (s *snapshot) Metadata() state.Metadata {
	if s.bk == nil {
		return state.Metadata{}
	}
	if s.ov != nil {
		return s.ov.meta
	}
	return s.bk.metadata
}

func (s *snapshot) Len() (hosts, resources int) {
	if s.bk == nil {
		return 0, 0
	}
	if s.ov != nil {
		return int(s.ov.nHosts), int(s.ov.nResources)
	}
	return int(s.bk.nHosts), int(s.bk.nResources)
}

func (s *snapshot) corrupt(bucket []byte, key []byte, err error) error {
	return fmt.Errorf("boltbackend: %s: %s/%q: %w", s.path, bucket, key, err)
}

// host decodes the host stored under k, checking that it is stored under
// its own name.
func (s *snapshot) host(k, v []byte) (*state.HostState, error) {
	if v == nil {
		return nil, s.corrupt(bucketHosts, k, fmt.Errorf("a bucket, not a record: %w", state.ErrCorrupt))
	}
	h, err := record.DecodeHost(v)
	if err != nil {
		return nil, s.corrupt(bucketHosts, k, err)
	}
	if h.Name != string(k) {
		return nil, s.corrupt(bucketHosts, k, fmt.Errorf("host named %q stored under another key: %w", h.Name, state.ErrCorrupt))
	}
	return h, nil
}

func (s *snapshot) resource(k, v []byte) (*state.ResourceState, error) {
	if v == nil {
		return nil, s.corrupt(bucketResources, k, fmt.Errorf("a bucket, not a record: %w", state.ErrCorrupt))
	}
	r, err := record.DecodeResource(v)
	if err != nil {
		return nil, s.corrupt(bucketResources, k, err)
	}
	return r, nil
}

func (s *snapshot) Host(name string) (h *state.HostState, ok bool, err error) {
	if s.bk == nil {
		return nil, false, errSnapshotDone
	}
	err = catchFaults(s.path, "read", func() error {
		k := []byte(name)
		v := s.get(s.bk.hosts, state.KindHost, k)
		if v == nil {
			return nil // absent (or a nested bucket, which Check reports)
		}
		h, err = s.host(k, v)
		return err
	})
	return h, h != nil, err
}

func (s *snapshot) Resource(key string) (r *state.ResourceState, ok bool, err error) {
	if s.bk == nil {
		return nil, false, errSnapshotDone
	}
	err = catchFaults(s.path, "read", func() error {
		k := []byte(key)
		v := s.get(s.bk.resources, state.KindResource, k)
		if v == nil {
			return nil
		}
		r, err = s.resource(k, v)
		return err
	})
	return r, r != nil, err
}

func (s *snapshot) Hosts(fn func(h *state.HostState) error) error {
	if s.bk == nil {
		return errSnapshotDone
	}
	c := s.newMerged(s.bk.hosts, state.KindHost)
	return walk(s, func(first bool) (*state.HostState, bool, error) {
		k, v := c.next(first)
		if k == nil {
			return nil, false, nil
		}
		h, err := s.host(k, v)
		return h, true, err
	}, fn)
}

// keyedResource is a resource with its key, as walks yield it.
type keyedResource struct {
	key string
	r   *state.ResourceState
}

func (s *snapshot) Resources(fn func(key string, r *state.ResourceState) error) error {
	if s.bk == nil {
		return errSnapshotDone
	}
	c := s.newMerged(s.bk.resources, state.KindResource)
	return walk(s, func(first bool) (keyedResource, bool, error) {
		k, v := c.next(first)
		if k == nil {
			return keyedResource{}, false, nil
		}
		r, err := s.resource(k, v)
		return keyedResource{string(k), r}, true, err
	}, func(kr keyedResource) error { return fn(kr.key, kr.r) })
}

// ResourcesOfType walks the resources_by_type index: its cost grows with
// the number of matches, not the size of the store.
func (s *snapshot) ResourcesOfType(typ string, fn func(key string, r *state.ResourceState) error) error {
	if s.bk == nil {
		return errSnapshotDone
	}
	prefix := append([]byte(typ), 0)
	c := s.bk.byType.Cursor()
	var over []string // the overlay's resources of type typ
	if s.ov != nil {
		over = s.ov.types[typ]
	}
	var k []byte // the index entry next, nil at the end
	return walk(s, func(first bool) (keyedResource, bool, error) {
		if first {
			k, _ = c.Seek(prefix)
		}
		// Index entries of resources the overlay changes are not its.
		for k != nil && bytes.HasPrefix(k, prefix) && s.ov.change(state.KindResource, k[len(prefix):]) != nil {
			k, _ = c.Next()
		}
		if k != nil && !bytes.HasPrefix(k, prefix) {
			k = nil
		}
		var rk []byte
		switch {
		case len(over) > 0 && (k == nil || string(k[len(prefix):]) > over[0]):
			rk, over = []byte(over[0]), over[1:]
		case k == nil:
			return keyedResource{}, false, nil
		default:
			rk = k[len(prefix):]
			k, _ = c.Next()
		}
		v := s.get(s.bk.resources, state.KindResource, rk)
		if v == nil {
			return keyedResource{}, false, fmt.Errorf("boltbackend: %s: %s/%q: index entry of a missing resource: %w", s.path, bucketByType, k, state.ErrCorrupt)
		}
		r, err := s.resource(rk, v)
		if err != nil {
			return keyedResource{}, false, err
		}
		if r.Type != typ {
			return keyedResource{}, false, fmt.Errorf("boltbackend: %s: %s/%q: indexed as %q but of type %q: %w", s.path, bucketByType, k, typ, r.Type, state.ErrCorrupt)
		}
		return keyedResource{string(rk), r}, true, nil
	}, func(kr keyedResource) error { return fn(kr.key, kr.r) })
}

// get returns the record of kind k stored under key in bucket b (nil:
// absent), or the overlay's over it; nil when there is none.
func (s *snapshot) get(b *bolt.Bucket, k state.Kind, key []byte) []byte {
	if c := s.ov.change(k, key); c != nil {
		return c.value
	}
	if b == nil {
		return nil
	}
	return b.Get(key)
}

// step moves c to its first entry or its next one.
func step(c *bolt.Cursor, first bool) (k, v []byte) {
	if first {
		return c.First()
	}
	return c.Next()
}

// walk calls next (under catchFaults, since it reads the file) for one item
// after another until it reports none, and fn (outside catchFaults: a panic in
// the caller's code is not damage in the file) for each.
func walk[T any](s *snapshot, next func(first bool) (T, bool, error), fn func(T) error) error {
	for first := true; ; first = false {
		var item T
		var ok bool
		err := catchFaults(s.path, "read", func() (err error) {
			item, ok, err = next(first)
			return err
		})
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if err := fn(item); err != nil {
			return err
		}
	}
}

// operation decodes the operation stored under k, checking that it is
// stored under its own ID.
func (s *snapshot) operation(k, v []byte) (*state.Operation, error) {
	if v == nil {
		return nil, s.corrupt(bucketOperations, k, fmt.Errorf("a bucket, not a record: %w", state.ErrCorrupt))
	}
	op, err := record.DecodeOperation(v)
	if err != nil {
		return nil, s.corrupt(bucketOperations, k, err)
	}
	if op.ID != string(k) {
		return nil, s.corrupt(bucketOperations, k, fmt.Errorf("operation %q stored under another key: %w", op.ID, state.ErrCorrupt))
	}
	return op, nil
}

func (s *snapshot) Operation(id string) (op *state.Operation, ok bool, err error) {
	if s.bk == nil {
		return nil, false, errSnapshotDone
	}
	if s.bk.ops == nil && s.ov == nil {
		return nil, false, nil // a version 1 store holds no operations
	}
	err = catchFaults(s.path, "read", func() error {
		k := []byte(id)
		v := s.get(s.bk.ops, state.KindOperation, k)
		if v == nil {
			return nil
		}
		op, err = s.operation(k, v)
		return err
	})
	return op, op != nil, err
}

func (s *snapshot) Operations(fn func(op *state.Operation) error) error {
	if s.bk == nil {
		return errSnapshotDone
	}
	if s.bk.ops == nil && s.ov == nil {
		return nil
	}
	c := s.newMerged(s.bk.ops, state.KindOperation)
	return walk(s, func(first bool) (*state.Operation, bool, error) {
		k, v := c.next(first)
		if k == nil {
			return nil, false, nil
		}
		op, err := s.operation(k, v)
		return op, true, err
	}, fn)
}

var _ state.KeyScanner = (*snapshot)(nil)

// HostNames implements state.KeyScanner: a cursor seek to prefix, keys
// only, so its cost is that of the matches.
func (s *snapshot) HostNames(prefix string, fn func(name string) error) error {
	if s.bk == nil {
		return errSnapshotDone
	}
	return s.keys(s.bk.hosts, state.KindHost, prefix, fn)
}

// ResourceKeys implements state.KeyScanner (see HostNames).
func (s *snapshot) ResourceKeys(prefix string, fn func(key string) error) error {
	if s.bk == nil {
		return errSnapshotDone
	}
	return s.keys(s.bk.resources, state.KindResource, prefix, fn)
}

// keys walks the keys of bucket b (of records of kind k) that start with
// prefix, with the overlay's over them.
func (s *snapshot) keys(b *bolt.Bucket, k state.Kind, prefix string, fn func(string) error) error {
	p := []byte(prefix)
	c := s.newMerged(b, k)
	c.from = p
	return walk(s, func(first bool) (string, bool, error) {
		k, _ := c.next(first)
		if k == nil || !bytes.HasPrefix(k, p) {
			return "", false, nil
		}
		return string(k), true, nil
	}, fn)
}
