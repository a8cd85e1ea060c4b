package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// Pages of a scan: the first asks for firstPage records; each later one
// for as many as make about pageBytes at the size of the records so far,
// within [minPage, maxPage]. Large pages matter: etcd before 3.5 walks
// its index from a page's first key to the end of the range for every
// page, so the cost of a scan grows with the square of its number of
// pages.
const (
	firstPage = 2000
	minPage   = 64
	maxPage   = 20000
	pageBytes = 4 << 20
)

// nextPage returns the size of the page after one of n records of size
// bytes in all.
func nextPage(n, size int) int {
	if n == 0 || size == 0 {
		return firstPage
	}
	return min(max(pageBytes/max(size/n, 1), minPage), maxPage)
}

// View implements state.Backend. It reads the metadata and the layout in
// one linearizable request, whose revision is the snapshot's (Len counts
// the records when it is first asked): every later read of the Snapshot asks etcd
// for that revision (clientv3.WithRev), page by page for iterations, so
// fn sees the store as it was at that one moment whatever is committed
// meanwhile (an import included), and reads only what it asks for.
// Records are decoded as they are read; decoding errors match
// state.ErrCorrupt and name the key. A writer's View of a store that does
// not exist yet shows it empty.
//
// etcd keeps old revisions until it compacts them: a View that outlives
// the cluster's compaction retention fails with an error saying so.
func (b *Backend) View(fn func(state.Snapshot) error) error {
	if !b.ops.Enter() {
		return b.errClosed()
	}
	defer b.ops.Leave()
	// Whether the store existed is read before the store is: the first
	// Commit may create it between the read and the check, and a read
	// from before that rightly shows no metadata.
	existed := b.created.Load()
	var resp *clientv3.TxnResponse
	err := b.retry(context.Background(), time.Time{}, "read", func(ctx context.Context) (err error) {
		resp, err = b.client.Txn(ctx).Then(b.storeOps()...).Commit()
		return err
	})
	if err != nil {
		return err
	}
	rs := resp.Responses
	_, gen, err := b.layout(first(rs[1].GetResponseRange().Kvs), first(rs[2].GetResponseRange().Kvs))
	if err != nil {
		return err
	}
	s := &snapshot{b: b, rev: resp.Header.Revision, recs: b.keys.of(gen)}
	defer s.done.Store(true)
	kv := first(rs[0].GetResponseRange().Kvs)
	if kv == nil {
		if !b.cfg.ReadOnly && !existed {
			s.meta, s.empty = b.fresh, true
			s.counted.Do(func() {})
			return fn(s)
		}
		return b.errorf("key %q is missing (the store was deleted?): %w", b.keys.meta, state.ErrCorrupt)
	}
	if s.meta, err = record.DecodeMetadata(kv.Value); err != nil {
		return b.errorf("key %q: %w", kv.Key, err)
	}
	return fn(s)
}

// snapshot is a state.Snapshot at one etcd revision.
type snapshot struct {
	b    *Backend
	rev  int64
	recs records
	// empty is set for a store that does not exist yet.
	empty bool
	// meta is read when the View starts.
	meta state.Metadata
	// counted counts hosts and resources, the first time Len is called
	// (counting walks etcd's index of every record: a View that does not
	// ask does not pay it); countErr is why counting failed, returned by
	// every later read.
	counted          sync.Once
	hosts, resources int
	countErr         error
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

// Len counts the hosts and resources at the snapshot's revision, the
// first time it is called. When etcd does not answer it reports 0 and 0,
// and every later read of the Snapshot fails with the reason.
func (s *snapshot) Len() (hosts, resources int) {
	if s.done.Load() {
		return 0, 0
	}
	s.counted.Do(func() {
		err := s.b.retry(context.Background(), time.Time{}, fmt.Sprintf("count at revision %d", s.rev), func(ctx context.Context) error {
			r, err := s.b.client.Txn(ctx).Then(
				clientv3.OpGet(s.recs.hosts, clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithRev(s.rev)),
				clientv3.OpGet(s.recs.resources, clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithRev(s.rev)),
			).Commit()
			if err == nil {
				s.hosts, s.resources = int(r.Responses[0].GetResponseRange().Count), int(r.Responses[1].GetResponseRange().Count)
			}
			return err
		})
		if err != nil {
			s.countErr = s.readError(err)
		}
	})
	return s.hosts, s.resources
}

// usable returns why the snapshot may not be read: its View returned, or
// counting failed.
func (s *snapshot) usable() error {
	if s.done.Load() {
		return errSnapshotDone
	}
	return s.countErr
}

// get reads one key at the snapshot's revision; nil when absent.
func (s *snapshot) get(key string) (*mvccpb.KeyValue, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	if s.empty {
		return nil, nil
	}
	var kv *mvccpb.KeyValue
	err := s.b.retry(context.Background(), time.Time{}, fmt.Sprintf("read at revision %d", s.rev), func(ctx context.Context) error {
		resp, err := s.b.client.Txn(ctx).Then(clientv3.OpGet(key, clientv3.WithRev(s.rev))).Commit()
		if err == nil {
			kv = first(resp.Responses[0].GetResponseRange().Kvs)
		}
		return err
	})
	if err != nil {
		return nil, s.readError(err)
	}
	return kv, nil
}

func (s *snapshot) readError(err error) error {
	if errors.Is(err, rpctypes.ErrCompacted) {
		return s.b.errorf("read at revision %d: etcd compacted that revision while the view was open (a view must end within the cluster's compaction retention); retry: %w", s.rev, err)
	}
	return err
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
	if string(kv.Key[len(s.recs.hosts):]) != h.Name {
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
	kv, err := s.get(s.recs.hosts + name)
	if err != nil || kv == nil {
		return nil, false, err
	}
	h, err = s.host(kv)
	return h, err == nil, err
}

func (s *snapshot) Resource(key string) (r *state.ResourceState, ok bool, err error) {
	kv, err := s.get(s.recs.resources + key)
	if err != nil || kv == nil {
		return nil, false, err
	}
	r, err = s.resource(kv)
	return r, err == nil, err
}

func (s *snapshot) Hosts(fn func(h *state.HostState) error) error {
	return s.scan(s.recs.hosts, func(kv *mvccpb.KeyValue) error {
		h, err := s.host(kv)
		if err != nil {
			return err
		}
		return fn(h)
	})
}

func (s *snapshot) Resources(fn func(key string, r *state.ResourceState) error) error {
	n := len(s.recs.resources)
	return s.scan(s.recs.resources, func(kv *mvccpb.KeyValue) error {
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
	n := len(s.recs.resources)
	return s.scan(s.recs.resources, func(kv *mvccpb.KeyValue) error {
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
	if err := s.usable(); err != nil {
		return err
	}
	if s.empty {
		return nil
	}
	rev := s.rev
	err := s.b.scan(prefix, clientv3.GetPrefixRangeEnd(prefix), &rev, false, func(kv *mvccpb.KeyValue) error {
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

// scan calls fn for every key in [from, end), in key order, a page at a
// time, at revision *rev: when *rev is 0, at the revision of the first
// page, which it stores in *rev. keysOnly leaves values out. The next
// page is asked for while fn runs over the current one.
func (b *Backend) scan(from, end string, rev *int64, keysOnly bool, fn func(kv *mvccpb.KeyValue) error) error {
	type page struct {
		resp *etcdserverpb.RangeResponse
		rev  int64
		err  error
	}
	fetch := func(from string, rev int64, limit int) <-chan page {
		ch := make(chan page, 1)
		go func() {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(int64(limit)), clientv3.WithRev(rev)}
			if keysOnly {
				opts = append(opts, clientv3.WithKeysOnly())
			}
			// A page at a revision already read needs no round of the
			// leader (a linearizable read): any member that has applied
			// the revision serves it. One that has not yet says so, and
			// the page is read linearizably.
			serializable := rev != 0
			var p page
			p.err = b.retry(context.Background(), time.Time{}, fmt.Sprintf("read at revision %d", rev), func(ctx context.Context) error {
				o := opts
				if serializable {
					o = append(o[:len(o):len(o)], clientv3.WithSerializable())
				}
				resp, err := b.client.Txn(ctx).Then(clientv3.OpGet(from, o...)).Commit()
				if serializable && errors.Is(err, rpctypes.ErrFutureRev) {
					serializable = false
					resp, err = b.client.Txn(ctx).Then(clientv3.OpGet(from, opts...)).Commit()
				}
				if err == nil {
					p.resp, p.rev = resp.Responses[0].GetResponseRange(), resp.Header.Revision
				}
				return err
			})
			ch <- p
		}()
		return ch
	}
	next := fetch(from, *rev, firstPage)
	for {
		p := <-next
		if p.err != nil {
			return p.err
		}
		if *rev == 0 {
			*rev = p.rev
		}
		kvs := p.resp.Kvs
		more := p.resp.More && len(kvs) > 0
		if more {
			size := 0
			for _, kv := range kvs {
				size += len(kv.Key) + len(kv.Value)
			}
			next = fetch(string(kvs[len(kvs)-1].Key)+"\x00", *rev, nextPage(len(kvs), size))
		}
		for _, kv := range kvs {
			if err := fn(kv); err != nil {
				if more {
					go func() { <-next }()
				}
				return err
			}
		}
		if !more {
			return nil
		}
	}
}

// operation decodes the operation record kv, checking that it is stored
// under its own ID.
func (s *snapshot) operation(kv *mvccpb.KeyValue) (*state.Operation, error) {
	op, err := record.DecodeOperation(kv.Value)
	if err != nil {
		return nil, s.corrupt(kv.Key, err)
	}
	if string(kv.Key[len(s.recs.operations):]) != op.ID {
		return nil, s.corrupt(kv.Key, fmt.Errorf("operation %q stored under another key: %w", op.ID, state.ErrCorrupt))
	}
	return op, nil
}

func (s *snapshot) Operation(id string) (op *state.Operation, ok bool, err error) {
	kv, err := s.get(s.recs.operations + id)
	if err != nil || kv == nil {
		return nil, false, err
	}
	op, err = s.operation(kv)
	return op, err == nil, err
}

func (s *snapshot) Operations(fn func(op *state.Operation) error) error {
	return s.scan(s.recs.operations, func(kv *mvccpb.KeyValue) error {
		op, err := s.operation(kv)
		if err != nil {
			return err
		}
		return fn(op)
	})
}

var _ state.KeyScanner = (*snapshot)(nil)

// HostNames implements state.KeyScanner: a keys-only range read of the
// names that start with prefix, so it reads no record.
func (s *snapshot) HostNames(prefix string, fn func(name string) error) error {
	return s.keys(s.recs.hosts, prefix, fn)
}

// ResourceKeys implements state.KeyScanner (see HostNames).
func (s *snapshot) ResourceKeys(prefix string, fn func(key string) error) error {
	return s.keys(s.recs.resources, prefix, fn)
}

func (s *snapshot) keys(base, prefix string, fn func(string) error) error {
	if err := s.usable(); err != nil {
		return err
	}
	if s.empty {
		return nil
	}
	from := base + prefix
	rev := s.rev
	err := s.b.scan(from, clientv3.GetPrefixRangeEnd(from), &rev, true, func(kv *mvccpb.KeyValue) error {
		if err := fn(string(kv.Key[len(base):])); err != nil {
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
