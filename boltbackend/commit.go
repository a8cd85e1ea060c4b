package boltbackend

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// maxGroupChanges bounds the changes one group transaction collects from
// the queue; a bigger batch still commits, alone.
const maxGroupChanges = 16 << 10

// request is one Commit call on its way through the committer.
type request struct {
	batch   *state.Batch
	changes []prepared
	// size is the bytes of the changes' keys and records.
	size int
	// meta and err are the result, valid once done is closed.
	meta state.Metadata
	err  error
	done chan struct{}
}

// prepared is a Change encoded for bbolt.
type prepared struct {
	kind  state.Kind
	key   []byte
	value []byte // the encoded record; nil for a delete
	index []byte // resources put: the by-type index key
}

// indexKey returns the resources_by_type key of the resource key of type
// typ.
func indexKey(typ string, key []byte) []byte {
	k := make([]byte, 0, len(typ)+1+len(key))
	k = append(k, typ...)
	k = append(k, 0)
	return append(k, key...)
}

// Commit implements state.Backend. The batch is validated and encoded
// first (an invalid record fails the call with an error matching
// state.ErrInvalid, before anything is written), then queued for the
// committer, which writes every batch that arrived while its previous
// group was being made durable as one group: one record of the
// write-ahead log and one fdatasync, or one bbolt transaction (see
// Durability in the package documentation). Commit returns once its
// group is on disk. A batch that fails inside a bbolt transaction (a
// full disk, a damaged record) is retried alone, so it fails alone. A
// failure whose outcome is unknown (a failed fdatasync of the log, or
// bbolt's final sync failing after the new meta page was written, or a
// panic in bbolt) gives an error matching state.ErrOutcomeUnknown, and so
// does every later Commit and View: what the store holds is unknown.
// Reopening the store reads what is.
func (b *Backend) Commit(batch *state.Batch) (state.Metadata, error) {
	if err := b.enter(); err != nil {
		return state.Metadata{}, err
	}
	defer b.ops.Leave()
	if b.readOnly {
		return state.Metadata{}, fmt.Errorf("boltbackend: %s: commit: %w", b.path, state.ErrReadOnly)
	}
	r, err := prepare(batch)
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

// prepare validates (state.Batch.Validate) and encodes batch, every key
// and record in one buffer, and checks what only bbolt limits: the size of
// a record.
func prepare(batch *state.Batch) (*request, error) {
	if err := batch.Validate(); err != nil {
		return nil, fmt.Errorf("boltbackend: %w", err)
	}
	// Where each change's key, record and index key lie in buf: buf[key:
	// value] is the key, buf[value:index] the record (empty for a delete),
	// buf[index:end] the by-type index key (resource puts only).
	type offsets struct{ key, value, index, end int }
	at := make([]offsets, len(batch.Changes))
	// One buffer for every key and record; most records are small.
	buf := make([]byte, 0, min(512*len(batch.Changes), 1<<20))
	for n, c := range batch.Changes {
		o := &at[n]
		o.key = len(buf)
		buf = append(buf, c.Key...)
		o.value, o.index = len(buf), len(buf)
		var err error
		switch {
		case c.Delete():
		case c.Kind == state.KindHost:
			buf, err = record.AppendHost(buf, c.Host)
			o.index = len(buf)
		case c.Kind == state.KindOperation:
			buf, err = record.AppendOperation(buf, c.Operation)
			o.index = len(buf)
		default:
			buf, err = record.AppendResource(buf, c.Resource)
			o.index = len(buf)
			if err == nil {
				buf = append(buf, c.Resource.Type...)
				buf = append(buf, 0)
				buf = append(buf, c.Key...)
			}
		}
		if err == nil && o.index-o.value > bolt.MaxValueSize {
			err = &state.FieldError{Msg: fmt.Sprintf("record of %d bytes exceeds bbolt's limit", o.index-o.value)}
		}
		if err != nil {
			return nil, fmt.Errorf("boltbackend: %v %q: %w", c.Kind, c.Key, err)
		}
		o.end = len(buf)
	}
	r := &request{batch: batch, changes: make([]prepared, len(at)), size: len(buf)}
	for n, o := range at {
		p := &r.changes[n]
		p.kind = batch.Changes[n].Kind
		p.key = buf[o.key:o.value:o.value]
		if !batch.Changes[n].Delete() {
			p.value = buf[o.value:o.index:o.index]
		}
		if o.end > o.index {
			p.index = buf[o.index:o.end:o.end]
		}
	}
	return r, nil
}

// run is the committer: it takes a request, then every request already
// waiting (up to maxGroupChanges changes, and what fits in one log
// record), commits them as one group, answers them, and starts over.
// There is no waiting to fill a group: a group is whatever arrived while
// the previous one was being made durable. With the log, a group is one
// log record and one fdatasync (logGroup); without it, and for imports
// and groups too large for the log, one bbolt transaction (commitGroup).
func (b *Backend) run() {
	defer close(b.done)
	// A damaged page may point outside the mapped file; fault as a panic
	// (recovered by catchFaults) rather than kill the process.
	debug.SetPanicOnFault(true)
	var group []*request
	var next *request // taken from the queue for the next group
	for {
		r := next
		next = nil
		if r == nil {
			var ok bool
			if r, ok = <-b.queue; !ok {
				return
			}
		}
		group = append(group[:0], r)
		logged := b.lg != nil && !b.lg.direct(r)
		n, size := len(r.changes), r.size+changeOverhead*len(r.changes)
	collect:
		for n < maxGroupChanges {
			select {
			case q, ok := <-b.queue:
				if !ok {
					break collect
				}
				qsize := q.size + changeOverhead*len(q.changes)
				if logged && (b.lg.direct(q) || groupOverhead+size+qsize > b.lg.maxPayload()) {
					next = q
					break collect
				}
				group = append(group, q)
				n += len(q.changes)
				size += qsize
			default:
				break collect
			}
		}
		switch {
		case logged:
			b.logGroup(group)
		case b.lg != nil:
			b.commitDirect(group, nil)
		default:
			b.commitGroup(group)
		}
		for _, r := range group {
			close(r.done)
		}
		clear(group)
	}
}

// commitGroup commits group in one bbolt transaction or, when that
// fails, each batch in its own.
func (b *Backend) commitGroup(group []*request) {
	if err := b.writable(); err != nil {
		for _, r := range group {
			r.err = err
		}
		return
	}
	err := b.txn(group)
	switch {
	case err == nil:
	case len(group) == 1 || b.broken.Load() != nil:
		for _, r := range group {
			r.err = err
		}
	default:
		// Nothing of the group is stored: retry each batch alone, so that
		// a batch that fails fails alone and the others commit exactly
		// once.
		for _, r := range group {
			if p := b.broken.Load(); p != nil {
				r.err = *p
				continue
			}
			r.err = b.txn([]*request{r})
		}
	}
	if b.lg == nil {
		return
	}
	// The log follows the store: from its metadata after the last batch
	// stored, and only once bbolt holds the log's key.
	for _, r := range group {
		if r.err == nil {
			b.lg.meta, b.lg.keyed = r.meta, true
		}
	}
}

// txn commits group in one bbolt transaction, setting each request's
// metadata.
func (b *Backend) txn(group []*request) error {
	err := b.update("commit", func(tx *bolt.Tx) error { return b.apply(tx, group) })
	if err != nil {
		for _, r := range group {
			r.meta = state.Metadata{}
		}
		return err
	}
	b.stats.direct.Add(1)
	b.stats.groups.Add(1)
	b.stats.batches.Add(uint64(len(group)))
	return nil
}

// update runs fn in one bbolt write transaction (doing says what for
// messages). When the transaction fails in a way that leaves the store's
// content unknown (bbolt's final sync failed after it wrote the new meta
// page, or it panicked), b is broken: every later operation fails with
// that error until the store is reopened.
func (b *Backend) update(doing string, fn func(tx *bolt.Tx) error) error {
	var txid int
	err := catchFaults(b.path, doing, func() error {
		return b.db.Update(func(tx *bolt.Tx) error {
			txid = tx.ID()
			return fn(tx)
		})
	})
	if hk := b.hooks.Load(); hk != nil && hk.result != nil {
		err = hk.result(err)
	}
	if err == nil {
		b.writeTxns.Add(1)
		return nil
	}
	var fault *faultError
	if !errors.As(err, &fault) {
		err = fmt.Errorf("boltbackend: %s: %s: %w", b.path, doing, err)
	}
	// bbolt rolls back a failed commit in memory, but when the failure
	// came after it wrote the new meta page (its fsync failed), the page
	// cache holds that meta and later transactions would build on it:
	// what is on disk is then unknown to us. A panic leaves bbolt's state
	// unknown too. Refuse further writes; reopening reads what is there.
	if fault != nil || (txid != 0 && b.committedSince(txid)) {
		broken := fmt.Errorf("boltbackend: %s: %w: a failed commit may or may not be stored; reads and writes are refused until the store is reopened: %w",
			b.path, state.ErrOutcomeUnknown, err)
		b.broken.Store(&broken)
		return broken
	}
	return err
}

// committedSince reports whether the store's current transaction id is at
// least txid (or cannot be read).
func (b *Backend) committedSince(txid int) bool {
	cur := txid
	err := catchFaults(b.path, "read", func() error {
		return b.db.View(func(tx *bolt.Tx) error { cur = tx.ID(); return nil })
	})
	return err != nil || cur >= txid
}

// apply writes the batches of group, in order, in tx.
func (b *Backend) apply(tx *bolt.Tx, group []*request) error {
	bk, err := b.openBuckets(tx)
	if err != nil {
		return err
	}
	meta := bk.metadata
	nHosts, nResources := int64(bk.nHosts), int64(bk.nResources)
	hk := b.hooks.Load()
	for _, r := range group {
		if hk != nil && hk.apply != nil {
			if err := hk.apply(r.batch); err != nil {
				return err
			}
		}
		if r.batch.Replace != nil {
			if err := bk.reset(tx); err != nil {
				return err
			}
			nHosts, nResources = 0, 0
			// The index's keys (type, then resource key) come in resource
			// key order; put into the empty bucket in that order, each one
			// lands in the middle of one large node and bbolt moves all
			// the entries after it (quadratic: 7 of the 13 s of a 200k
			// import). Put them sorted, after the records.
			bk.indexLater = [][]byte{}
		}
		if bk.ops == nil && storesOperations(r.changes) {
			if err := bk.addOperations(tx); err != nil {
				return err
			}
		}
		for i := range r.changes {
			c := &r.changes[i]
			dh, dr, err := bk.change(c)
			if err != nil {
				return fmt.Errorf("%v %q: %w", c.kind, c.key, err)
			}
			nHosts += dh
			nResources += dr
		}
		if bk.indexLater != nil {
			slices.SortFunc(bk.indexLater, bytes.Compare)
			for _, k := range bk.indexLater {
				if err := bk.byType.Put(k, []byte{}); err != nil {
					return err
				}
			}
			bk.indexLater = nil
		}
		meta = state.NextMetadata(meta, r.batch)
		r.meta = meta
	}
	if err := bk.putMeta(meta, nHosts, nResources); err != nil {
		return err
	}
	if b.lg != nil && !bk.hasLog {
		// The store's first commit with the log: it gets the log's key
		// (and layout version 3) before any group is logged.
		if err := bk.putLog(tx, logMeta{id: b.lg.id, applied: b.lg.applied}); err != nil {
			return err
		}
	}
	if hk != nil && hk.commit != nil {
		return hk.commit()
	}
	return nil
}

// putMeta writes the store's metadata and record counters.
func (bk *buckets) putMeta(meta state.Metadata, nHosts, nResources int64) error {
	mb, err := record.EncodeMetadata(&meta)
	if err != nil {
		return err
	}
	for _, kv := range []struct{ k, v []byte }{
		{keyMeta, mb}, {keyHosts, u64(uint64(max(nHosts, 0)))}, {keyResources, u64(uint64(max(nResources, 0)))},
	} {
		if err := bk.meta.Put(kv.k, kv.v); err != nil {
			return err
		}
	}
	return nil
}

// putLog writes the log key, upgrading the store to layout version 3
// (and so giving it the operations bucket of version 2) when it has none.
func (bk *buckets) putLog(tx *bolt.Tx, m logMeta) error {
	if bk.schema < schemaLog {
		if bk.ops == nil {
			if err := bk.addOperations(tx); err != nil {
				return err
			}
		}
		if err := bk.meta.Put(keySchema, u64(schemaLog)); err != nil {
			return err
		}
		bk.schema = schemaLog
	}
	bk.hasLog, bk.log = true, m
	return bk.meta.Put(keyLog, m.encode())
}

// storesOperations reports whether changes store an operation.
func storesOperations(changes []prepared) bool {
	for i := range changes {
		if changes[i].kind == state.KindOperation && changes[i].value != nil {
			return true
		}
	}
	return false
}

// addOperations upgrades a version 1 store to the layout with the
// operations bucket, in the transaction of its first operation.
func (bk *buckets) addOperations(tx *bolt.Tx) error {
	ops, err := tx.CreateBucket(bucketOperations)
	if err != nil {
		return err
	}
	if err := bk.meta.Put(keySchema, u64(schemaOperations)); err != nil {
		return err
	}
	bk.ops, bk.schema = ops, schemaOperations
	return nil
}

// reset empties the record buckets (Batch.Replace).
func (bk *buckets) reset(tx *bolt.Tx) error {
	if bk.ops != nil {
		if err := tx.DeleteBucket(bucketOperations); err != nil {
			return err
		}
		nb, err := tx.CreateBucket(bucketOperations)
		if err != nil {
			return err
		}
		bk.ops = nb
	}
	for _, p := range []struct {
		name []byte
		b    **bolt.Bucket
	}{{bucketHosts, &bk.hosts}, {bucketResources, &bk.resources}, {bucketByType, &bk.byType}} {
		if err := tx.DeleteBucket(p.name); err != nil {
			return err
		}
		nb, err := tx.CreateBucket(p.name)
		if err != nil {
			return err
		}
		*p.b = nb
	}
	return nil
}

// change applies one change and returns how it changes the number of
// hosts and resources.
func (bk *buckets) change(c *prepared) (dHosts, dResources int64, err error) {
	if c.kind == state.KindOperation {
		if c.value == nil {
			if bk.ops == nil {
				return 0, 0, nil // a version 1 store holds no operations
			}
			return 0, 0, bk.ops.Delete(c.key)
		}
		return 0, 0, bk.ops.Put(c.key, c.value)
	}
	if c.kind == state.KindHost {
		existed := bk.hosts.Get(c.key) != nil
		switch {
		case c.value == nil && existed:
			return -1, 0, bk.hosts.Delete(c.key)
		case c.value == nil:
			return 0, 0, nil
		case existed:
			return 0, 0, bk.hosts.Put(c.key, c.value)
		}
		return 1, 0, bk.hosts.Put(c.key, c.value)
	}
	old := bk.resources.Get(c.key)
	keep := false
	if old != nil {
		// The old record's index entry goes, unless it is the new one.
		if keep, err = bk.unindex(c.key, old, c.index); err != nil {
			return 0, 0, err
		}
	}
	if c.value == nil {
		if old == nil {
			return 0, 0, nil
		}
		return 0, -1, bk.resources.Delete(c.key)
	}
	if err := bk.resources.Put(c.key, c.value); err != nil {
		return 0, 0, err
	}
	switch {
	case keep:
	case bk.indexLater != nil:
		bk.indexLater = append(bk.indexLater, c.index)
	default:
		if err := bk.byType.Put(c.index, []byte{}); err != nil {
			return 0, 0, err
		}
	}
	if old == nil {
		return 0, 1, nil
	}
	return 0, 0, nil
}

// unindex removes the index entry of old, the record stored under key,
// unless it equals next; kept reports that it does. When old is damaged,
// its entries are found by scanning the index, so that overwriting or
// removing a damaged record repairs the index.
func (bk *buckets) unindex(key, old, next []byte) (kept bool, err error) {
	typ, err := record.ResourceType(old)
	if err != nil {
		return false, bk.unindexScan(key)
	}
	idx := indexKey(typ, key)
	if bytes.Equal(idx, next) {
		return true, nil
	}
	return false, bk.byType.Delete(idx)
}

func (bk *buckets) unindexScan(key []byte) error {
	var stale [][]byte
	c := bk.byType.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if i := bytes.IndexByte(k, 0); i >= 0 && bytes.Equal(k[i+1:], key) {
			stale = append(stale, bytes.Clone(k))
		}
	}
	for _, k := range stale {
		if err := bk.byType.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
