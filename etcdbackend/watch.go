package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// ErrReleased ends a Watch: the writer that held the store's lock
// released it (it closed the store, or its lease expired).
var ErrReleased = errors.New("the writer released the store")

// Watch follows the store's commits through etcd's own watch of its
// prefix, calling fn with each, in order, until ctx is done (it returns
// ctx's error), fn fails (its error), the lock's holder releases the
// store (an error matching ErrReleased, naming the holder), or etcd ends
// the watch (an error saying why: a compacted revision, a lost cluster).
//
// One etcd transaction is one Commit: its Serial and Time are those of
// the metadata it wrote, its Changes the records it put (decoded) or
// deleted. Group commit writes several batches in one transaction; they
// are seen as one Commit with the newest serial. A Replace (an import,
// which switches the store to a new generation of records) is seen as one
// Commit with Replaced set.
//
// from == 0 starts with the next commit; otherwise Watch starts with the
// transaction that made serial from, as long as etcd keeps that revision
// (it compacts old ones away); a from ahead of the store is an error.
// started, when not nil, is called once, when the watch is set up, with
// the serial of the first commit it can show.
//
// Watch reads only: a read-only Backend may watch, and it takes no lock.
func (b *Backend) Watch(ctx context.Context, from uint64, started func(from uint64), fn func(state.Commit) error) error {
	if !b.ops.Enter() {
		return b.errClosed()
	}
	defer b.ops.Leave()
	var resp *clientv3.TxnResponse
	err := b.retry(ctx, time.Time{}, "watch", func(ctx context.Context) (err error) {
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
	kv := first(rs[0].GetResponseRange().Kvs)
	if kv == nil {
		return b.errorf("key %q is missing (no store here, or it was deleted): %w", b.keys.meta, state.ErrCorrupt)
	}
	meta, err := record.DecodeMetadata(kv.Value)
	if err != nil {
		return b.errorf("key %q: %w", kv.Key, err)
	}
	rev, next := resp.Header.Revision+1, meta.Serial+1
	switch {
	case from > meta.Serial+1:
		return b.errorf("watch: serial %d is ahead of the store (serial %d): %w", from, meta.Serial, state.ErrInvalid)
	case from > 0 && from <= meta.Serial:
		if rev, err = b.revisionOf(ctx, from, resp.Header.Revision); err != nil {
			return err
		}
		next = from
	}
	if started != nil {
		started(next)
	}

	wctx, stop := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer stop()
	wch := b.client.Watch(wctx, b.prefix+"/", clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithPrevKV())
	recs := b.keys.of(gen)
	for wr := range wch {
		if err := wr.Err(); err != nil {
			if wr.CompactRevision != 0 || errors.Is(err, rpctypes.ErrCompacted) {
				return b.errorf("watch: etcd compacted its history up to revision %d: the commits from serial %d are gone; watch again from now", wr.CompactRevision, next)
			}
			return b.errorf("watch: %w", err)
		}
		// Events of one revision are one transaction's.
		for i := 0; i < len(wr.Events); {
			j := i + 1
			for j < len(wr.Events) && wr.Events[j].Kv.ModRevision == wr.Events[i].Kv.ModRevision {
				j++
			}
			c, released, err := b.txnCommit(wr.Events[i:j], &recs)
			if err != nil {
				return err
			}
			if c != nil {
				next = c.Serial + 1
				if err := fn(*c); err != nil {
					return err
				}
			}
			if released != nil {
				return released
			}
			i = j
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return b.errorf("watch: etcd ended the watch (the cluster lost its leader or is unreachable) after serial %d", next-1)
}

// txnCommit reads the events of one transaction: the commit it made (nil
// when it wrote no metadata: not a commit, or the first steps of an
// import), and whether it released the lock. recs are the record
// prefixes of the store's generation, which an import switches.
func (b *Backend) txnCommit(evs []*clientv3.Event, recs *records) (c *state.Commit, released error, err error) {
	var changes []state.Change
	var meta *state.Metadata
	newGen, staled := "", false
	for _, ev := range evs {
		key := string(ev.Kv.Key)
		put := ev.Type == mvccpb.PUT
		switch {
		case key == b.keys.meta && put:
			m, err := record.DecodeMetadata(ev.Kv.Value)
			if err != nil {
				return nil, nil, b.errorf("key %q: %w", key, err)
			}
			meta = &m
		case key == b.keys.generation && put:
			newGen = string(ev.Kv.Value)
		case strings.HasPrefix(key, b.keys.stale) && put:
			staled = true // an import: the generation it replaces awaits deletion
		case key == b.keys.lock && !put:
			holder := "a writer"
			if info := parseLockInfo(ev.PrevKv); info != nil {
				holder = info.String()
			}
			released = fmt.Errorf("etcdbackend: %s: %s released the store (closed it, or its lease expired): %w", b.prefix, holder, ErrReleased)
		}
	}
	replaced := newGen != "" && staled
	if newGen != "" {
		*recs = b.keys.of(newGen) // the store's first commit, or an import
	}
	if meta == nil {
		return nil, released, nil
	}
	if replaced {
		return &state.Commit{Serial: meta.Serial, Time: meta.UpdatedAt, Replaced: true}, released, nil
	}
	for _, ev := range evs {
		key := string(ev.Kv.Key)
		put := ev.Type == mvccpb.PUT
		for _, p := range []struct {
			kind   state.Kind
			prefix string
		}{{state.KindHost, recs.hosts}, {state.KindResource, recs.resources}, {state.KindOperation, recs.operations}} {
			name, ok := strings.CutPrefix(key, p.prefix)
			if !ok {
				continue
			}
			ch := state.Change{Kind: p.kind, Key: name}
			if put {
				switch p.kind {
				case state.KindHost:
					ch.Host, err = record.DecodeHost(ev.Kv.Value)
				case state.KindResource:
					ch.Resource, err = record.DecodeResource(ev.Kv.Value)
				default:
					ch.Operation, err = record.DecodeOperation(ev.Kv.Value)
				}
				if err != nil {
					return nil, nil, b.errorf("key %q: %w", key, err)
				}
			}
			changes = append(changes, ch)
		}
	}
	return &state.Commit{Serial: meta.Serial, Time: meta.UpdatedAt, Changes: changes}, released, nil
}

// revisionOf returns the revision of the transaction that made serial
// from (at most upTo, where the store's serial is at least from): the
// first revision whose metadata has a serial of at least from, when the
// metadata before it had a lower one.
func (b *Backend) revisionOf(ctx context.Context, from uint64, upTo int64) (int64, error) {
	serialAt := func(rev int64) (serial uint64, modRev int64, err error) {
		var resp *clientv3.GetResponse
		err = b.retry(ctx, time.Time{}, "watch", func(ctx context.Context) (err error) {
			resp, err = b.client.Get(ctx, b.keys.meta, clientv3.WithRev(rev))
			return err
		})
		if err != nil {
			return 0, 0, err
		}
		kv := first(resp.Kvs)
		if kv == nil {
			return 0, 0, nil // before the store existed
		}
		m, err := record.DecodeMetadata(kv.Value)
		if err != nil {
			return 0, 0, b.errorf("key %q at revision %d: %w", kv.Key, rev, err)
		}
		return m.Serial, kv.ModRevision, nil
	}
	gone := func() error {
		return b.errorf("watch: the commit of serial %d is older than etcd's history (compacted): watch from a later serial, or from now", from)
	}
	// The smallest revision in (lo, hi] whose serial is at least from.
	lo, hi := int64(0), upTo
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		s, _, err := serialAt(mid)
		switch {
		case errors.Is(err, rpctypes.ErrCompacted):
			lo = mid
		case err != nil:
			return 0, b.errorf("watch: %w", err)
		case s >= from:
			hi = mid
		default:
			lo = mid
		}
	}
	_, modRev, err := serialAt(hi)
	if err != nil {
		return 0, b.errorf("watch: %w", err)
	}
	// The metadata at hi was written at modRev; the value before it
	// must be older than from, or the commit of from is not known.
	before, _, err := serialAt(modRev - 1)
	switch {
	case errors.Is(err, rpctypes.ErrCompacted):
		return 0, gone()
	case err != nil:
		return 0, b.errorf("watch: %w", err)
	case before >= from:
		return 0, gone()
	}
	return modRev, nil
}
