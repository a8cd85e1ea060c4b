package etcdbackend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// opOverhead is an upper bound on the bytes one put or delete adds to a
// transaction besides its key and value (protobuf tags and lengths).
const opOverhead = 24

// txnOverhead is what a write transaction holds besides its records: the
// comparisons, the metadata record, the else branch and etcd's own
// request header. Generous: the metadata record is about 100 bytes.
const txnOverhead = 4 << 10

// request is one Commit call on its way through the committer.
type request struct {
	batch *state.Batch
	ops   []op
	// size is an upper bound on the bytes ops take in a transaction.
	size int
	// putsOperations reports that the batch stores an operation: its
	// transaction may have to raise the layout version too (one more
	// etcd operation, counted by txnOps).
	putsOperations bool
	// meta and err are the result, valid once done is closed.
	meta state.Metadata
	err  error
	done chan struct{}
}

// op is a Change encoded for etcd.
type op struct {
	kind  state.Kind
	key   string // the etcd key
	value []byte // the encoded record; nil for a delete
}

func (o *op) etcd() clientv3.Op {
	if o.value == nil {
		return clientv3.OpDelete(o.key)
	}
	return clientv3.OpPut(o.key, string(o.value))
}

// maxRecordBytes is the most bytes of records one transaction may carry.
func (b *Backend) maxRecordBytes() int { return b.cfg.MaxRequestBytes - txnOverhead - 2*len(b.prefix) }

// Commit implements state.Backend. The batch is validated and encoded
// first (an invalid record, or one too large for an etcd request, fails
// the call with an error matching state.ErrInvalid that names the key,
// before anything is sent), then queued for the committer, which writes
// every batch that arrived while its previous transaction was in flight
// in one etcd transaction (up to the cluster's limits), each batch with
// its own serial. Commit returns once etcd has committed the transaction:
// a quorum of members has it in their fsync'ed logs.
//
// Every transaction compares that this Backend still holds the lock and
// that the metadata is as it last wrote it. When the lock is lost the
// commit fails with an error matching state.ErrLocked, writes nothing,
// and so does every later Commit. When etcd does not answer (a leader
// election, a lost quorum) the committer settles whether the transaction
// was stored and sends it again while time remains: at most twice
// Config.RequestTimeout per transaction (see the package documentation for
// why a Commit may take longer), ending with an error matching
// ErrOutcomeUnknown when the outcome could not be settled.
func (b *Backend) Commit(batch *state.Batch) (state.Metadata, error) {
	if !b.ops.Enter() {
		return state.Metadata{}, b.errClosed()
	}
	defer b.ops.Leave()
	if b.cfg.ReadOnly {
		return state.Metadata{}, b.errorf("commit: %w", state.ErrReadOnly)
	}
	if p := b.broken.Load(); p != nil {
		return state.Metadata{}, *p
	}
	r, err := b.prepare(batch)
	if err != nil {
		return state.Metadata{}, err
	}
	r.done = make(chan struct{})
	b.queue <- r
	<-r.done
	if r.err != nil {
		return state.Metadata{}, r.err
	}
	return r.meta, nil
}

// prepare validates (state.Batch.Validate) and encodes batch, and checks
// what only etcd limits: the size of a record and of a transaction.
func (b *Backend) prepare(batch *state.Batch) (*request, error) {
	if err := batch.Validate(); err != nil {
		return nil, b.errorf("%w", err)
	}
	r := &request{batch: batch, ops: make([]op, len(batch.Changes))}
	limit := b.maxRecordBytes()
	for i, c := range batch.Changes {
		o := &r.ops[i]
		o.kind = c.Kind
		var err error
		switch {
		case c.Delete():
		case c.Kind == state.KindHost:
			o.value, err = record.EncodeHost(c.Host)
		case c.Kind == state.KindOperation:
			o.value, err = record.EncodeOperation(c.Operation)
			r.putsOperations = true
		default:
			o.value, err = record.EncodeResource(c.Resource)
		}
		if err != nil {
			return nil, b.errorf("%v %q: %w", c.Kind, c.Key, err)
		}
		o.key = b.keys.of(c.Kind, c.Key)
		size := len(o.key) + len(o.value) + opOverhead
		if size > limit {
			return nil, b.errorf("%v %q: record of %s does not fit in one etcd request (at most %s of records, from etcd's --max-request-bytes of %s; Config.MaxRequestBytes): %w",
				c.Kind, c.Key, human(len(o.value)), human(limit), human(b.cfg.MaxRequestBytes), state.ErrInvalid)
		}
		r.size += size
	}
	if err := b.fits(r.txnOps(), r.size); err != nil {
		return nil, err
	}
	return r, nil
}

// txnOps is the number of etcd operations r may need in a transaction,
// besides the metadata's.
func (r *request) txnOps() int {
	if r.putsOperations {
		return len(r.ops) + 1 // PREFIX/layout
	}
	return len(r.ops)
}

// fits checks that a batch of n operations and size bytes fits in one
// transaction, with the metadata.
func (b *Backend) fits(n, size int) error {
	if n+1 > b.cfg.MaxTxnOps {
		return b.errorf("a batch of %d changes needs %d operations in one etcd transaction, more than the %d etcd allows (its --max-txn-ops; Config.MaxTxnOps): %w",
			n, n+1, b.cfg.MaxTxnOps, state.ErrInvalid)
	}
	if size > b.maxRecordBytes() {
		return b.errorf("a batch of %d changes takes %s, more than one etcd transaction may carry (%s of records, from etcd's --max-request-bytes of %s; Config.MaxRequestBytes): %w",
			n, human(size), human(b.maxRecordBytes()), human(b.cfg.MaxRequestBytes), state.ErrInvalid)
	}
	return nil
}

func human(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// run is the committer: it takes a request, then every request already
// waiting that fits in the same transaction (etcd's operation and size
// limits, no key twice, Replace alone), commits them in one transaction,
// answers them, and starts over. There is no waiting to fill a group: a
// group is whatever arrived while the previous transaction was in flight.
func (b *Backend) run() {
	defer close(b.done)
	var (
		group []*request
		carry *request // taken from the queue but left for the next group
		seen  = make(map[string]struct{})
	)
	for {
		r := carry
		carry = nil
		if r == nil {
			var ok bool
			if r, ok = <-b.queue; !ok {
				return
			}
		}
		group = append(group[:0], r)
		if r.batch.Replace == nil {
			n, size := r.txnOps(), r.size
			clear(seen)
			for _, o := range r.ops {
				seen[o.key] = struct{}{}
			}
		collect:
			for {
				select {
				case next, ok := <-b.queue:
					if !ok {
						break collect
					}
					if next.batch.Replace != nil || n+next.txnOps()+1 > b.cfg.MaxTxnOps || size+next.size > b.maxRecordBytes() || overlaps(seen, next) {
						carry = next
						break collect
					}
					for _, o := range next.ops {
						seen[o.key] = struct{}{}
					}
					group = append(group, next)
					n += next.txnOps()
					size += next.size
				default:
					break collect
				}
			}
		}
		b.commitGroup(group)
		for _, r := range group {
			close(r.done)
		}
		clear(group)
	}
}

func overlaps(seen map[string]struct{}, r *request) bool {
	for _, o := range r.ops {
		if _, ok := seen[o.key]; ok {
			return true
		}
	}
	return false
}

// commitGroup commits group in one transaction or, when etcd refuses that
// transaction for a reason one of its batches may cause, each batch in
// its own.
func (b *Backend) commitGroup(group []*request) {
	retrySeparately, err := b.txn(group)
	if err == nil {
		return
	}
	for _, r := range group {
		r.meta = state.Metadata{}
		r.err = err
	}
	if !retrySeparately || len(group) == 1 {
		return
	}
	// Nothing of the group is stored: retry each batch alone, so that a
	// batch that fails fails alone and the others commit exactly once.
	for _, r := range group {
		_, r.err = b.txn([]*request{r})
		if r.err != nil {
			r.meta = state.Metadata{}
		}
	}
}

// txn commits group in one etcd transaction, setting each request's
// metadata. retrySeparately reports a failure that retrying each batch on
// its own may avoid (nothing was stored).
func (b *Backend) txn(group []*request) (retrySeparately bool, err error) {
	if p := b.broken.Load(); p != nil {
		return false, *p
	}
	select {
	case <-b.session.Done():
		err := b.errorf("the lock's lease expired or could not be kept alive; nothing was written, and writes stay refused until the store is reopened: %w", &state.LockError{Path: b.prefix})
		b.broken.Store(&err)
		return false, err
	default:
	}
	var cmps []clientv3.Cmp // beyond the fence and the metadata's revision
	var ops []clientv3.Op
	upgrade := false // ops raise the layout version
	meta := b.meta
	for _, r := range group {
		if r.batch.Replace != nil {
			dels, rev, err := b.replaced(r)
			if err != nil {
				return true, err
			}
			for _, k := range dels {
				ops = append(ops, clientv3.OpDelete(k))
			}
			// Nothing under the record prefixes changed since they were
			// listed (the metadata comparison says as much for writers
			// that follow this package's protocol).
			for _, pfx := range b.keys.records() {
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(pfx), "<", rev+1).WithPrefix())
			}
		}
		for i := range r.ops {
			ops = append(ops, r.ops[i].etcd())
		}
		if r.putsOperations && b.layout < layoutOperations && !upgrade {
			upgrade = true
			ops = append(ops, clientv3.OpPut(b.keys.layout, strconv.Itoa(layoutOperations)))
		}
		meta = state.NextMetadata(meta, r.batch)
		r.meta = meta
	}
	mb, err := record.EncodeMetadata(&meta)
	if err != nil {
		return true, b.errorf("commit: metadata: %w", err)
	}
	ops = append(ops, clientv3.OpPut(b.keys.meta, string(mb)))
	// Attempts, and settling the outcome of one that got no answer, end
	// by deadline. Each waits at most half a RequestTimeout: a proposal
	// that reached a follower just as the leader died is dropped without
	// an answer, and is better abandoned, settled and sent again.
	start := time.Now()
	deadline := start.Add(2 * b.cfg.RequestTimeout)
	patience := b.cfg.RequestTimeout / 2
	for {
		ctx, cancel := context.WithDeadline(context.Background(), earliest(time.Now().Add(patience), deadline))
		all := append([]clientv3.Cmp{b.fence(), clientv3.Compare(clientv3.ModRevision(b.keys.meta), "=", b.metaRev)}, cmps...)
		resp, err := b.client.Txn(ctx).If(all...).Then(ops...).Else(clientv3.OpGet(b.keys.lock), clientv3.OpGet(b.keys.meta)).Commit()
		cancel()
		if err == nil && !resp.Succeeded {
			return false, b.refused(first(resp.Responses[0].GetResponseRange().Kvs), first(resp.Responses[1].GetResponseRange().Kvs))
		}
		if err == nil {
			b.metaRev = resp.Header.Revision
			break
		}
		if refusedUnapplied(err) {
			return true, b.errorf("commit refused by etcd, nothing written: %w", explain(err))
		}
		applied, serr := b.settle(err, mb, start, deadline)
		if applied {
			break // stored after all (a later Commit reports a lost lock)
		}
		if !errors.Is(serr, errNotApplied) || time.Until(deadline) < patience {
			return false, serr
		}
		// Not stored, and it never will be: try again (a leader
		// election, say, is over by now).
		time.Sleep(min(100*time.Millisecond, time.Until(deadline)))
	}
	b.meta, b.metaBytes, b.unsettled = meta, mb, nil
	if upgrade {
		b.layout = layoutOperations
	}
	b.writeTxns.Add(1)
	return false, nil
}

// errNotApplied marks the error of a commit settled as not stored.
var errNotApplied = errors.New("nothing written")

// replaced returns the keys a Replace batch deletes (every record not
// among its puts), read at one revision, and that revision.
func (b *Backend) replaced(r *request) (dels []string, rev int64, err error) {
	puts := make(map[string]struct{}, len(r.ops))
	for _, o := range r.ops {
		puts[o.key] = struct{}{}
	}
	size := r.size
	for _, pfx := range b.keys.records() {
		err := b.scan(pfx, &rev, true, func(kv *mvccpb.KeyValue) error {
			if _, ok := puts[string(kv.Key)]; !ok {
				dels = append(dels, string(kv.Key))
				size += len(kv.Key) + opOverhead
			}
			return nil
		})
		if err != nil {
			return nil, 0, b.errorf("replace: list the records: %w", err)
		}
	}
	if err := b.fits(r.txnOps()+len(dels), size); err != nil {
		return nil, 0, fmt.Errorf("replace (%d records to delete, %d to write): %w", len(dels), len(r.ops), err)
	}
	return dels, rev, nil
}

// settle finds out whether the transaction that failed with err (a
// timeout, a lost connection) was applied, expected being the metadata it
// wrote: it makes sure that it can no longer be applied by writing the
// current metadata again under the same comparisons. If that succeeds the
// transaction was not applied and never will be (the error then matches
// errNotApplied); if it fails because the metadata is expected, it was.
// When neither can be established by deadline, the outcome stays unknown
// (the commit began at start).
func (b *Backend) settle(err error, expected []byte, start, deadline time.Time) (applied bool, _ error) {
	last := err
	for {
		ctx, cancel := context.WithDeadline(context.Background(), earliest(time.Now().Add(b.cfg.RequestTimeout/2), deadline))
		resp, err := b.client.Txn(ctx).
			If(b.fence(), clientv3.Compare(clientv3.ModRevision(b.keys.meta), "=", b.metaRev)).
			Then(clientv3.OpPut(b.keys.meta, string(b.metaBytes))).
			Else(clientv3.OpGet(b.keys.lock), clientv3.OpGet(b.keys.meta)).
			Commit()
		cancel()
		switch {
		case err == nil && resp.Succeeded:
			b.metaRev = resp.Header.Revision
			b.unsettled = nil
			return false, b.errorf("commit failed (%v): %w", last, errNotApplied)
		case err == nil:
			lockKV, metaKV := first(resp.Responses[0].GetResponseRange().Kvs), first(resp.Responses[1].GetResponseRange().Kvs)
			if metaKV != nil && bytes.Equal(metaKV.Value, expected) {
				b.metaRev = metaKV.ModRevision
				if lockKV == nil || lockKV.CreateRevision != b.lockRev {
					lost := b.lostLock(lockKV)
					b.broken.Store(&lost)
				}
				return true, nil
			}
			return false, b.refused(lockKV, metaKV)
		}
		last = err
		if time.Until(deadline) <= 0 {
			b.unsettled = expected
			return false, b.errorf("commit sent, but etcd did not confirm whether it was stored within %s (%v): %w",
				time.Since(start).Round(time.Millisecond), err, ErrOutcomeUnknown)
		}
		time.Sleep(min(200*time.Millisecond, time.Until(deadline)))
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// refused explains a transaction whose comparisons failed, lockKV and
// metaKV being the lock and metadata keys as they are, and makes every
// later Commit fail.
func (b *Backend) refused(lockKV, metaKV *mvccpb.KeyValue) error {
	var err error
	switch {
	case lockKV == nil || lockKV.CreateRevision != b.lockRev:
		err = b.lostLock(lockKV)
	case b.unsettled != nil && metaKV != nil && bytes.Equal(metaKV.Value, b.unsettled):
		err = b.errorf("a commit reported with an unknown outcome turned out stored, and this process's copy of the state misses it; reopen the store: %w", ErrOutcomeUnknown)
	default:
		err = b.errorf("the store was changed by a writer without this controller's lock (%s is not as this controller wrote it); nothing was written; reopen the store: %w", b.keys.meta, state.ErrConflict)
	}
	b.broken.Store(&err)
	return err
}

// explain adds advice to the errors of requests etcd refused.
func explain(err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return fmt.Errorf("%w (the cluster's --max-request-bytes is below Config.MaxRequestBytes)", err)
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return fmt.Errorf("%w (the cluster's --max-txn-ops is below Config.MaxTxnOps)", err)
	case errors.Is(err, rpctypes.ErrNoSpace):
		return fmt.Errorf("%w (etcd's database is full: compact and defragment it, or raise --quota-backend-bytes, then disarm the alarm)", err)
	}
	return err
}
