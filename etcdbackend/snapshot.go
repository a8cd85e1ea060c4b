package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// pageSize is how many records one range request of a scan returns.
const pageSize = 512

// View implements state.Backend. It reads the metadata and the numbers of
// hosts and resources in one linearizable request, whose revision is the
// snapshot's: every later read of the Snapshot asks etcd for that
// revision (clientv3.WithRev), page by page for iterations, so fn sees
// the store as it was at that one moment whatever is committed meanwhile,
// and reads only what it asks for. Records are decoded as they are read;
// decoding errors match state.ErrCorrupt and name the key.
//
// etcd keeps old revisions until it compacts them: a View that outlives
// the cluster's compaction retention fails with an error saying so.
func (b *Backend) View(fn func(state.Snapshot) error) error {
	if !b.ops.Enter() {
		return b.errClosed()
	}
	defer b.ops.Leave()
	ctx, cancel := b.request(context.Background())
	resp, err := b.client.Txn(ctx).Then(
		clientv3.OpGet(b.keys.meta),
		clientv3.OpGet(b.keys.layout),
		clientv3.OpGet(b.keys.hosts, clientv3.WithPrefix(), clientv3.WithCountOnly()),
		clientv3.OpGet(b.keys.resources, clientv3.WithPrefix(), clientv3.WithCountOnly()),
	).Commit()
	cancel()
	if err != nil {
		return b.errorf("read: %w", err)
	}
	if _, err := b.checkLayout(first(resp.Responses[1].GetResponseRange().Kvs)); err != nil {
		return err
	}
	s := &snapshot{b: b, rev: resp.Header.Revision}
	kv := first(resp.Responses[0].GetResponseRange().Kvs)
	if kv == nil {
		return b.errorf("key %q is missing (the store was deleted?): %w", b.keys.meta, state.ErrCorrupt)
	}
	if s.meta, err = record.DecodeMetadata(kv.Value); err != nil {
		return b.errorf("key %q: %w", kv.Key, err)
	}
	s.hosts = int(resp.Responses[2].GetResponseRange().Count)
	s.resources = int(resp.Responses[3].GetResponseRange().Count)
	defer s.done.Store(true)
	return fn(s)
}

// snapshot is a state.Snapshot at one etcd revision.
type snapshot struct {
	b   *Backend
	rev int64
	// meta, hosts and resources are read when the View starts.
	meta             state.Metadata
	hosts, resources int
	// done is set when the View returns.
	done atomic.Bool
}

var errSnapshotDone = errors.New("etcdbackend: snapshot used after its View returned")

func (s *snapshot) Metadata() state.Metadata {
	if s.done.Load() {
		return state.Metadata{}
	}
	return s.meta
}

func (s *snapshot) Len() (hosts, resources int) {
	if s.done.Load() {
		return 0, 0
	}
	return s.hosts, s.resources
}

// get reads one key at the snapshot's revision; nil when absent.
func (s *snapshot) get(key string) (*mvccpb.KeyValue, error) {
	if s.done.Load() {
		return nil, errSnapshotDone
	}
	ctx, cancel := s.b.request(context.Background())
	resp, err := s.b.client.Get(ctx, key, clientv3.WithRev(s.rev))
	cancel()
	if err != nil {
		return nil, s.readError(err)
	}
	return first(resp.Kvs), nil
}

func (s *snapshot) readError(err error) error {
	if errors.Is(err, rpctypes.ErrCompacted) {
		return s.b.errorf("read at revision %d: etcd compacted that revision while the view was open (a view must end within the cluster's compaction retention); retry: %w", s.rev, err)
	}
	return s.b.errorf("read at revision %d: %w", s.rev, err)
}

func (s *snapshot) corrupt(key []byte, err error) error {
	return s.b.errorf("key %q: %w", key, err)
}

// host decodes the host record kv, checking that it is stored under its
// own name.
func (s *snapshot) host(kv *mvccpb.KeyValue) (*state.HostState, error) {
	h, err := record.DecodeHost(kv.Value)
	if err != nil {
		return nil, s.corrupt(kv.Key, err)
	}
	if string(kv.Key[len(s.b.keys.hosts):]) != h.Name {
		return nil, s.corrupt(kv.Key, fmt.Errorf("host named %q stored under another key: %w", h.Name, state.ErrCorrupt))
	}
	return h, nil
}

func (s *snapshot) resource(kv *mvccpb.KeyValue) (*state.ResourceState, error) {
	r, err := record.DecodeResource(kv.Value)
	if err != nil {
		return nil, s.corrupt(kv.Key, err)
	}
	return r, nil
}

func (s *snapshot) Host(name string) (h *state.HostState, ok bool, err error) {
	kv, err := s.get(s.b.keys.hosts + name)
	if err != nil || kv == nil {
		return nil, false, err
	}
	h, err = s.host(kv)
	return h, err == nil, err
}

func (s *snapshot) Resource(key string) (r *state.ResourceState, ok bool, err error) {
	kv, err := s.get(s.b.keys.resources + key)
	if err != nil || kv == nil {
		return nil, false, err
	}
	r, err = s.resource(kv)
	return r, err == nil, err
}

func (s *snapshot) Hosts(fn func(h *state.HostState) error) error {
	return s.scan(s.b.keys.hosts, func(kv *mvccpb.KeyValue) error {
		h, err := s.host(kv)
		if err != nil {
			return err
		}
		return fn(h)
	})
}

func (s *snapshot) Resources(fn func(key string, r *state.ResourceState) error) error {
	n := len(s.b.keys.resources)
	return s.scan(s.b.keys.resources, func(kv *mvccpb.KeyValue) error {
		r, err := s.resource(kv)
		if err != nil {
			return err
		}
		return fn(string(kv.Key[n:]), r)
	})
}

// ResourcesOfType reads every resource and decodes in full only those of
// type typ: the store keeps no index by type (see Caveats in the package
// documentation), so its cost grows with the number of resources.
func (s *snapshot) ResourcesOfType(typ string, fn func(key string, r *state.ResourceState) error) error {
	n := len(s.b.keys.resources)
	return s.scan(s.b.keys.resources, func(kv *mvccpb.KeyValue) error {
		t, err := record.ResourceType(kv.Value)
		if err != nil {
			return s.corrupt(kv.Key, err)
		}
		if t != typ {
			return nil
		}
		r, err := s.resource(kv)
		if err != nil {
			return err
		}
		return fn(string(kv.Key[n:]), r)
	})
}

// scan calls fn for every key under prefix at the snapshot's revision, in
// key order. Errors of fn are returned unchanged.
func (s *snapshot) scan(prefix string, fn func(kv *mvccpb.KeyValue) error) error {
	if s.done.Load() {
		return errSnapshotDone
	}
	rev := s.rev
	err := s.b.scan(prefix, &rev, false, func(kv *mvccpb.KeyValue) error {
		if err := fn(kv); err != nil {
			return callbackError{err}
		}
		return nil
	})
	var ce callbackError
	if errors.As(err, &ce) {
		return ce.err
	}
	if err != nil {
		return s.readError(err)
	}
	return nil
}

// callbackError carries an error of a scan's callback through it
// unchanged.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// scan calls fn for every key under prefix, in key order, a page at a
// time, at revision *rev: when *rev is 0, at the revision of the first
// page, which it stores in *rev. keysOnly leaves values out.
func (b *Backend) scan(prefix string, rev *int64, keysOnly bool, fn func(kv *mvccpb.KeyValue) error) error {
	end := clientv3.GetPrefixRangeEnd(prefix)
	from := prefix
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(pageSize), clientv3.WithRev(*rev)}
		if keysOnly {
			opts = append(opts, clientv3.WithKeysOnly())
		}
		ctx, cancel := b.request(context.Background())
		resp, err := b.client.Get(ctx, from, opts...)
		cancel()
		if err != nil {
			return err
		}
		if *rev == 0 {
			*rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if err := fn(kv); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// operation decodes the operation record kv, checking that it is stored
// under its own ID.
func (s *snapshot) operation(kv *mvccpb.KeyValue) (*state.Operation, error) {
	op, err := record.DecodeOperation(kv.Value)
	if err != nil {
		return nil, s.corrupt(kv.Key, err)
	}
	if string(kv.Key[len(s.b.keys.operations):]) != op.ID {
		return nil, s.corrupt(kv.Key, fmt.Errorf("operation %q stored under another key: %w", op.ID, state.ErrCorrupt))
	}
	return op, nil
}

func (s *snapshot) Operation(id string) (op *state.Operation, ok bool, err error) {
	kv, err := s.get(s.b.keys.operations + id)
	if err != nil || kv == nil {
		return nil, false, err
	}
	op, err = s.operation(kv)
	return op, err == nil, err
}

func (s *snapshot) Operations(fn func(op *state.Operation) error) error {
	return s.scan(s.b.keys.operations, func(kv *mvccpb.KeyValue) error {
		op, err := s.operation(kv)
		if err != nil {
			return err
		}
		return fn(op)
	})
}
