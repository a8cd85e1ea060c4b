package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// opOverhead is an upper bound on the bytes one put or delete adds to a
// transaction besides its key and value (protobuf tags and lengths).
const opOverhead = 24

// txnOverhead is what a write transaction holds besides its records: the
// comparisons, the metadata record, the marker, the layout keys of a
// store's creation, the else branch and etcd's own request header.
// Generous: the metadata record is about 100 bytes.
const txnOverhead = 4 << 10

// genOverhead bounds what a generation adds to a record's key:
// "/gen/ID/" with ID two decimal int64s and a dot.
const genOverhead = 48

// minAttempt is the least time left worth sending a request with.
const minAttempt = 50 * time.Millisecond

// request is one Commit call on its way through the committer.
type request struct {
	batch *state.Batch
	ops   []op
	// size is an upper bound on the bytes ops take in a transaction.
	size int
	// putsOperations reports that the batch stores an operation (see
	// txnOps).
	putsOperations bool
	// deadline is when the Commit call must have returned.
	deadline time.Time
	// meta and err are the result, valid once done is closed.
	meta state.Metadata
	err  error
	done chan struct{}
}

// op is a Change encoded for etcd.
type op struct {
	kind  state.Kind
	key   string // the host name or resource key
	value []byte // the encoded record; nil for a delete
}

// etcd returns the operation on the record's key in generation recs.
func (o *op) etcd(recs records) clientv3.Op {
	k := recs.key(o.kind, o.key)
	if o.value == nil {
		return clientv3.OpDelete(k)
	}
	return clientv3.OpPut(k, string(o.value))
}

// maxRecordBytes is the most bytes of records one transaction may carry.
func (b *Backend) maxRecordBytes() int { return b.cfg.MaxRequestBytes - txnOverhead - 2*len(b.prefix) }

// maxChanges is the most changes one transaction may carry: etcd's
// operation limit, less the metadata and the marker.
func (b *Backend) maxChanges() int { return b.cfg.MaxTxnOps - 2 }

// Commit implements state.Backend. The batch is validated and encoded
// first (an invalid record, or one too large for an etcd request, fails
// the call with an error matching state.ErrInvalid that names the key,
// before anything is sent), then queued for the committer, which writes
// every batch that arrived while its previous transaction was in flight
// in one etcd transaction (up to the cluster's limits), each batch with
// its own serial. Commit returns once etcd has committed the transaction:
// a quorum of members has it in their fsync'ed logs. A batch with Replace
// set is written as the package documentation describes (Imports), in as
// many transactions as it needs, and becomes visible in one.
//
// Every transaction compares that this Backend still holds the lock and
// that the store is as it last wrote it. When the lock is lost the commit
// fails with an error matching state.ErrLocked, writes nothing, and so
// does every later Commit. When etcd does not answer (a leader election,
// a lost quorum) the committer settles whether the transaction was stored
// and sends it again while time remains. Commit returns within twice
// Config.RequestTimeout of its call (a Replace excepted), and every error
// says what became of the batch: nothing of it was written, or, matching
// ErrOutcomeUnknown, that this could not be settled in time.
func (b *Backend) Commit(batch *state.Batch) (state.Metadata, error) {
	deadline := time.Now().Add(2 * b.cfg.RequestTimeout)
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
	r.deadline = deadline
	r.done = make(chan struct{})
	b.queue <- r
	<-r.done
	if r.err != nil {
		return state.Metadata{}, r.err
	}
	return r.meta, nil
}

// prepare validates (state.Batch.Validate) and encodes batch, and checks
// what only etcd limits: the size of a record and, but for a Replace, of a
// transaction.
func (b *Backend) prepare(batch *state.Batch) (*request, error) {
	if err := batch.Validate(); err != nil {
		return nil, b.errorf("%w", err)
	}
	r := &request{batch: batch, ops: make([]op, 0, len(batch.Changes))}
	room := b.maxRecordBytes()
	for _, c := range batch.Changes {
		o := op{kind: c.Kind, key: c.Key}
		var err error
		switch {
		case c.Delete():
			if batch.Replace != nil {
				continue // the new generation starts empty
			}
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
		size := opSize(b.prefix, &o)
		if size > room {
			return nil, b.errorf("%v %q: record of %s does not fit in one etcd request (at most %s of records, from etcd's --max-request-bytes of %s; Config.MaxRequestBytes): %w",
				c.Kind, c.Key, human(len(o.value)), human(room), human(b.cfg.MaxRequestBytes), state.ErrInvalid)
		}
		r.ops = append(r.ops, o)
		r.size += size
	}
	if batch.Replace == nil {
		if err := b.fits(r.txnOps(), r.size); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// txnOps is the number of etcd operations r may need in a transaction,
// besides the metadata and the marker: a batch that stores an operation
// may have to raise the layout version of a layout 1 store too.
func (r *request) txnOps() int {
	if r.putsOperations {
		return len(r.ops) + 1 // PREFIX/layout
	}
	return len(r.ops)
}

// opSize bounds the bytes o takes in a transaction of the store at
// prefix, whatever its generation.
func opSize(prefix string, o *op) int {
	return len(prefix) + genOverhead + len("/resources/") + len(o.key) + len(o.value) + opOverhead
}

// fits checks that a batch of n changes and size bytes fits in one
// transaction, with the metadata and the marker.
func (b *Backend) fits(n, size int) error {
	if n > b.maxChanges() {
		return b.errorf("a batch of %d changes needs %d operations in one etcd transaction, more than the %d etcd allows (its --max-txn-ops; Config.MaxTxnOps): %w",
			n, n+2, b.cfg.MaxTxnOps, state.ErrInvalid)
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
		if r.batch.Replace != nil {
			b.replace(r)
			close(r.done)
			continue
		}
		group = append(group[:0], r)
		n, size := r.txnOps(), r.size
		clear(seen)
		for _, o := range r.ops {
			seen[o.mapKey()] = struct{}{}
		}
	collect:
		for {
			select {
			case next, ok := <-b.queue:
				if !ok {
					break collect
				}
				if next.batch.Replace != nil || n+next.txnOps() > b.maxChanges() || size+next.size > b.maxRecordBytes() || overlaps(seen, next) {
					carry = next
					break collect
				}
				for _, o := range next.ops {
					seen[o.mapKey()] = struct{}{}
				}
				group = append(group, next)
				n += next.txnOps()
				size += next.size
			default:
				break collect
			}
		}
		b.commitGroup(group)
		for _, r := range group {
			close(r.done)
		}
		clear(group)
	}
}

func (o *op) mapKey() string { return string(rune('0'+o.kind)) + o.key }

func overlaps(seen map[string]struct{}, r *request) bool {
	for _, o := range r.ops {
		if _, ok := seen[o.mapKey()]; ok {
			return true
		}
	}
	return false
}

// commitGroup commits group in one transaction or, when etcd refuses that
// transaction for a reason one of its batches may cause, each batch in
// its own, all within the time left to the group's first request.
// Requests whose time ran out in the queue are not sent.
func (b *Backend) commitGroup(group []*request) {
	now := time.Now()
	live := make([]*request, 0, len(group))
	for _, r := range group {
		if r.deadline.Sub(now) < minAttempt {
			r.err = b.notSent(fmt.Sprintf("it waited its whole time bound (%s) in the queue, behind commits etcd did not answer in time", 2*b.cfg.RequestTimeout))
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	deadline := live[0].deadline
	for _, r := range live {
		deadline = earliest(deadline, r.deadline)
	}
	retrySeparately, err := b.commitTxn(live, deadline)
	if err == nil {
		return
	}
	for _, r := range live {
		r.meta, r.err = state.Metadata{}, err
	}
	if !retrySeparately || len(live) == 1 {
		return
	}
	// Nothing of the group is stored: retry each batch alone, so that a
	// batch that fails fails alone and the others commit exactly once.
	for _, r := range live {
		if _, r.err = b.commitTxn([]*request{r}, deadline); r.err != nil {
			r.meta = state.Metadata{}
		}
	}
}

// notSent is the error of a batch that was never sent.
func (b *Backend) notSent(why string) error {
	return b.errorf("commit not sent: %s; nothing of this batch was written", why)
}

// write is one write transaction: the operations on records and layout
// keys, and what the store is once it is committed.
type write struct {
	ops  []clientv3.Op // besides the metadata and the marker
	meta state.Metadata
	mb   []byte // meta, encoded
	gen  string // the records' generation after the write
	// layoutVer is the layout version the write sets, 0 when none.
	layoutVer uint64
	// group are the requests answered by this transaction (their meta is
	// set when it is planned).
	group []*request
	// marker is the value of PREFIX/txn this transaction writes; rev the
	// revision it was committed at.
	marker string
	rev    int64
}

// commitTxn commits group in one transaction, setting each request's
// metadata, by deadline. retrySeparately reports a refusal that retrying each batch
// on its own may avoid (nothing was stored).
func (b *Backend) commitTxn(group []*request, deadline time.Time) (retrySeparately bool, err error) {
	if err := b.writable(deadline); err != nil {
		return false, err
	}
	w := &write{meta: b.meta, gen: b.gen, group: group}
	if !b.created.Load() {
		// The store's creation: its layout keys, in the same transaction
		// when they fit, else in one of their own first.
		w.gen, w.layoutVer = b.newGeneration(), LayoutVersion
		w.ops = append(w.ops, clientv3.OpPut(b.keys.layout, strconv.Itoa(LayoutVersion)), clientv3.OpPut(b.keys.generation, w.gen))
		n := 0
		for _, r := range group {
			n += r.txnOps()
		}
		if n+len(w.ops) > b.maxChanges() {
			w.mb, err = record.EncodeMetadata(&w.meta)
			if err == nil {
				_, err = b.write(w, deadline)
			}
			if err != nil {
				return false, err
			}
			w = &write{meta: b.meta, gen: b.gen, group: group}
		}
	}
	recs := b.keys.of(w.gen)
	for _, r := range group {
		for i := range r.ops {
			w.ops = append(w.ops, r.ops[i].etcd(recs))
		}
		if r.putsOperations && b.created.Load() && b.layoutVer < layoutOperations && w.layoutVer == 0 {
			w.layoutVer = layoutOperations
			w.ops = append(w.ops, clientv3.OpPut(b.keys.layout, strconv.Itoa(layoutOperations)))
		}
		w.meta = state.NextMetadata(w.meta, r.batch)
		r.meta = w.meta
	}
	if w.mb, err = record.EncodeMetadata(&w.meta); err != nil {
		return true, b.errorf("commit: metadata: %w", err)
	}
	return b.write(w, deadline)
}

// writable checks, before anything is sent by deadline, that this
// Backend may write: it is not broken, its lease lives, and the outcome
// of an earlier transaction is settled (it is, first, when it was not).
func (b *Backend) writable(deadline time.Time) error {
	if p := b.broken.Load(); p != nil {
		return *p
	}
	select {
	case <-b.session.Done():
		err := b.errorf("the lock's lease expired or could not be kept alive; nothing of this batch was written, and writes stay refused until the store is reopened: %w", &state.LockError{Path: b.prefix})
		b.broken.Store(&err)
		return err
	default:
	}
	if b.pending != nil {
		if err := b.settlePending(deadline); err != nil {
			return err
		}
	}
	if time.Until(deadline) < minAttempt+b.reserve() {
		return b.notSent("its time bound ran out settling an earlier commit")
	}
	return nil
}

// newGeneration returns a generation id no other Backend uses: our lock's
// revision, unique in the cluster's history, and a count.
func (b *Backend) newGeneration() string {
	b.imports++
	return fmt.Sprintf("%d.%d", b.lockRev, b.imports)
}

// marker returns the value of PREFIX/txn for our write transaction seq.
func (b *Backend) marker(seq uint64) string { return fmt.Sprintf("%d.%d", b.lockRev, seq) }

// cmps are the comparisons of every write: we hold the lock, and the
// metadata and the marker are as we last wrote them.
func (b *Backend) cmps() []clientv3.Cmp {
	return []clientv3.Cmp{
		b.fence(),
		clientv3.Compare(clientv3.ModRevision(b.keys.meta), "=", b.metaRev),
		clientv3.Compare(clientv3.ModRevision(b.keys.txn), "=", b.txnRev),
	}
}

// probeOps read, when a write's comparisons fail, what made them fail.
func (b *Backend) probeOps() []clientv3.Op {
	return []clientv3.Op{clientv3.OpGet(b.keys.lock), clientv3.OpGet(b.keys.meta), clientv3.OpGet(b.keys.txn)}
}

// write sends w until it is committed, refused, or deadline passes. Each
// attempt waits at most half a RequestTimeout: a proposal that reached a
// follower just as the leader died is dropped without an answer, and is
// better settled and sent again. An attempt without an answer is settled
// before anything else is sent (see settle).
func (b *Backend) write(w *write, deadline time.Time) (retrySeparately bool, err error) {
	limit := deadline.Add(-b.reserve()) // the rest is for explaining a failure
	patience := b.cfg.RequestTimeout / 2
	var last error
	for {
		b.seq++
		w.marker = b.marker(b.seq)
		ops := append(w.ops[:len(w.ops):len(w.ops)], clientv3.OpPut(b.keys.meta, string(w.mb)), clientv3.OpPut(b.keys.txn, w.marker))
		sent := time.Now()
		ctx, cancel := context.WithDeadline(context.Background(), earliest(sent.Add(patience), limit))
		resp, err := b.client.Txn(clientv3.WithRequireLeader(ctx)).If(b.cmps()...).Then(ops...).Else(b.probeOps()...).Commit()
		cancel()
		switch {
		case err == nil && resp.Succeeded:
			w.rev = resp.Header.Revision
			b.committed(w)
			return false, nil
		case err == nil:
			return false, b.refused(resp.Responses, "nothing of this batch was written")
		case errors.Is(err, rpctypes.ErrNoLeader):
			// Refused before it was proposed: nothing was written. Try
			// again while time remains (an election ends in seconds).
			last = informative(last, err)
		case refusedUnapplied(err):
			return true, b.errorf("commit refused by etcd, nothing of this batch was written: %w", explain(err))
		default:
			last = informative(last, err)
			b.pending = &unsettled{w: w, sent: sent, err: err}
			done, err := b.settle(limit)
			if done {
				return false, err
			}
			// Settled as not stored, and it never will be.
		}
		if time.Until(limit) < minAttempt {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			return false, b.errorf("commit not written: %w; nothing of this batch was written", b.connectError(ctx, last))
		}
		time.Sleep(min(100*time.Millisecond, time.Until(limit)))
	}
}

// committed records w as stored.
func (b *Backend) committed(w *write) {
	b.meta, b.metaBytes, b.metaRev, b.txnRev = w.meta, w.mb, w.rev, w.rev
	if w.layoutVer != 0 {
		b.layoutVer = w.layoutVer
	}
	if w.gen != b.gen || !b.created.Load() {
		b.gen = w.gen
		gen := w.gen
		b.viewGen.Store(&gen)
	}
	b.created.Store(true)
	b.pending = nil
	b.writeTxns.Add(1)
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// refused explains a write whose comparisons failed, from the answers of
// probeOps (the lock, metadata and marker keys as they are), and makes
// every later Commit fail. outcome says what became of the batch.
func (b *Backend) refused(resps []*etcdserverpb.ResponseOp, outcome string) error {
	lockKV := first(resps[0].GetResponseRange().Kvs)
	var err error
	if !b.ours(lockKV) {
		err = b.lostLock(lockKV, outcome)
	} else {
		err = b.errorf("the store was changed by a writer without this controller's lock (%s or %s is not as this controller wrote it); %s; reopen the store: %w", b.keys.meta, b.keys.txn, outcome, state.ErrConflict)
	}
	b.broken.Store(&err)
	return err
}

// explain adds advice to the errors of requests etcd refused.
func explain(err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrRequestTooLarge), strings.Contains(err.Error(), "received message larger than max"):
		return fmt.Errorf("%w (the cluster's --max-request-bytes is below Config.MaxRequestBytes)", err)
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return fmt.Errorf("%w (the cluster's --max-txn-ops is below Config.MaxTxnOps)", err)
	case errors.Is(err, rpctypes.ErrNoSpace):
		return fmt.Errorf("%w (etcd's database is full: compact and defragment it, or raise --quota-backend-bytes, then disarm the alarm)", err)
	}
	return err
}
