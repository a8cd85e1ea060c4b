package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// unsettled is a write transaction that was sent and got no answer: it
// may be applied, now or later (a proposal in a leader's log is applied
// once a quorum is back).
type unsettled struct {
	w    *write
	sent time.Time
	err  error // what the attempt returned
}

// verdicts of history.
type verdict int

const (
	// undecided: the history could not be read (yet).
	undecided verdict = iota
	// stored: the pending transaction was applied.
	stored
	// voided: a later write of ours was applied first; the pending
	// transaction can no longer be.
	voided
	// overtaken: another writer changed the store first (or took the
	// lock); the pending transaction was not applied.
	overtaken
)

// settle finds out, by limit, whether b.pending was stored. Every write
// transaction writes a marker of its own to PREFIX/txn and compares that
// the marker is as we last wrote it, so exactly one of the transactions
// sent after a write we know of can apply: the first to reach the
// cluster. settle sends a transaction that writes only a new marker,
// under the same comparisons. If it is committed, the pending one was not
// applied and never will be. If its comparisons fail, the store changed
// since our last known write: the pending transaction was applied if and
// only if its marker is the first value PREFIX/txn took after ours, which
// the key's current value or its history (a watch from that revision)
// tells, whoever holds the lock by now.
//
// done is false when the pending transaction is settled as not stored
// (b.pending is then nil, and the caller may send it again); otherwise
// err is nil when it was stored (b records it as committed), a refusal
// (lost lock, conflict: it was not stored), or, matching
// ErrOutcomeUnknown, that the outcome could not be settled by limit.
func (b *Backend) settle(limit time.Time) (done bool, err error) {
	p := b.pending
	last := p.err
	patience := b.cfg.RequestTimeout / 2
	for {
		b.seq++
		ctx, cancel := context.WithDeadline(context.Background(), earliest(time.Now().Add(patience), limit))
		resp, err := b.client.Txn(clientv3.WithRequireLeader(ctx)).
			If(b.cmps()...).
			Then(clientv3.OpPut(b.keys.txn, b.marker(b.seq))).
			Else(b.probeOps()...).
			Commit()
		cancel()
		if err == nil && resp.Succeeded {
			b.txnRev = resp.Header.Revision
			b.pending = nil
			return false, nil
		}
		if err == nil {
			v, rev, herr := b.history(resp.Responses, p, limit)
			switch v {
			case stored:
				p.w.rev = rev
				b.committed(p.w)
				if lockKV := first(resp.Responses[0].GetResponseRange().Kvs); !b.ours(lockKV) {
					lost := b.lostLock(lockKV, "nothing of this batch was written")
					b.broken.Store(&lost)
				}
				return true, nil
			case voided:
				b.txnRev = rev
				b.pending = nil
				return false, nil
			case overtaken:
				b.pending = nil
				return true, b.refused(resp.Responses, "nothing of this batch was written")
			}
			if herr == errCompacted {
				e := b.errorf("the outcome of a commit sent at %s can no longer be settled (etcd compacted the history that would tell); writes are refused until the store is reopened: %w",
					p.sent.Format("15:04:05.000"), ErrOutcomeUnknown)
				b.broken.Store(&e)
				return true, e
			}
			last = informative(last, herr)
		} else {
			last = informative(last, err)
		}
		if time.Until(limit) < minAttempt {
			ctx, cancel := context.WithDeadline(context.Background(), limit.Add(b.reserve()))
			diag := b.connectError(ctx, last)
			cancel()
			return true, b.errorf("commit sent, but etcd did not confirm whether it was stored within %s (%w); it may still be applied once the cluster recovers, and is settled before anything else is written: %w",
				time.Since(p.sent).Round(time.Millisecond), diag, ErrOutcomeUnknown)
		}
		time.Sleep(min(200*time.Millisecond, time.Until(limit)))
	}
}

// errCompacted says that the history settle needs is gone.
var errCompacted = fmt.Errorf("etcd compacted the history")

// history tells from the answers of probeOps (the lock, metadata and
// marker keys, read when a settling transaction's comparisons failed)
// what became of the pending transaction p, and at which revision.
func (b *Backend) history(resps []*etcdserverpb.ResponseOp, p *unsettled, limit time.Time) (verdict, int64, error) {
	txnKV := first(resps[2].GetResponseRange().Kvs)
	switch {
	case txnKV != nil && string(txnKV.Value) == p.w.marker:
		return stored, txnKV.ModRevision, nil
	case txnKV == nil && b.txnRev == 0, txnKV != nil && txnKV.ModRevision == b.txnRev:
		// The marker, which the pending transaction writes, is as we
		// left it: the lock or the metadata changed, not by us.
		return overtaken, 0, nil
	}
	ev, err := b.firstChange(b.keys.txn, b.txnRev+1, limit)
	if err != nil {
		return undecided, 0, err
	}
	switch {
	case ev.Type == mvccpb.PUT && string(ev.Kv.Value) == p.w.marker:
		return stored, ev.Kv.ModRevision, nil
	case ev.Type == mvccpb.PUT && strings.HasPrefix(string(ev.Kv.Value), fmt.Sprintf("%d.", b.lockRev)):
		// One of our settling writes, whose answer was lost.
		return voided, ev.Kv.ModRevision, nil
	}
	return overtaken, 0, nil
}

// firstChange returns the first change of key at or after revision rev,
// which must exist, reading etcd's history with a watch.
func (b *Backend) firstChange(key string, rev int64, limit time.Time) (*clientv3.Event, error) {
	ctx, cancel := context.WithDeadline(context.Background(), limit)
	defer cancel()
	for wr := range b.client.Watch(clientv3.WithRequireLeader(ctx), key, clientv3.WithRev(rev)) {
		if wr.CompactRevision != 0 {
			return nil, errCompacted
		}
		if err := wr.Err(); err != nil {
			return nil, err
		}
		if len(wr.Events) > 0 {
			return wr.Events[0], nil
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("the watch of %s ended", key)
}

// settlePending settles the outcome of an earlier commit, by deadline,
// before a new group is sent. It returns nil when that commit turned out
// not stored; otherwise the error of the new group, which is not sent.
func (b *Backend) settlePending(deadline time.Time) error {
	p := b.pending
	done, err := b.settle(deadline.Add(-b.reserve()))
	if !done {
		return nil
	}
	if err == nil {
		if q := b.broken.Load(); q != nil {
			return *q
		}
		e := b.errorf("a commit reported with an unknown outcome (sent at %s) turned out stored, and the caller's copy of the state misses it; nothing of this batch was written; reopen the store: %w",
			p.sent.Format("15:04:05.000"), ErrOutcomeUnknown)
		b.broken.Store(&e)
		return e
	}
	if q := b.broken.Load(); q != nil {
		return *q
	}
	if b.pending != nil {
		// Still unknown: this batch is not sent.
		why := "etcd did not answer"
		var ce *ConnectError
		if errors.As(err, &ce) {
			why = ce.Error()
		}
		return b.notSent(fmt.Sprintf("the outcome of an earlier commit (sent at %s) is still unknown (%s)", p.sent.Format("15:04:05.000"), why))
	}
	return err
}
