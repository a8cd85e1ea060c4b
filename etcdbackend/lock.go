package etcdbackend

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
)

// lock creates a lease kept alive by a concurrency.Session and puts our
// lock-info record under PREFIX/lock with it, if that key is absent;
// otherwise it waits for the key's deletion, up to LockTimeout. The
// transaction that takes the lock also reads the store's keys and the
// markers of stale generations: it returns those responses (storeOps,
// then the markers).
func (b *Backend) lock(ctx context.Context, start time.Time) ([]*etcdserverpb.ResponseOp, error) {
	ttl := int64((b.cfg.SessionTTL + time.Second - 1) / time.Second)
	var lease *clientv3.LeaseGrantResponse
	err := b.retry(ctx, time.Time{}, "create the lock's lease", func(ctx context.Context) (err error) {
		lease, err = b.client.Grant(ctx, ttl)
		return err
	})
	if err != nil {
		return nil, err
	}
	// The session's keep-alive lives as long as the client, not ctx.
	s, err := concurrency.NewSession(b.client, concurrency.WithLease(lease.ID), concurrency.WithTTL(int(ttl)))
	if err != nil {
		rctx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
		b.client.Revoke(rctx, lease.ID)
		cancel()
		return nil, b.errorf("keep the lock's lease alive: %w", err)
	}
	b.session = s
	info, err := json.Marshal(lockinfo.Self())
	if err != nil {
		return nil, b.errorf("lock: %w", err)
	}
	then := append([]clientv3.Op{clientv3.OpPut(b.keys.lock, string(info), clientv3.WithLease(s.Lease()))}, b.storeOps()...)
	then = append(then, clientv3.OpGet(b.keys.stale, clientv3.WithPrefix()))
	deadline := start.Add(b.cfg.LockTimeout)
	for {
		var resp *clientv3.TxnResponse
		err := b.retry(ctx, time.Time{}, "lock", func(ctx context.Context) (err error) {
			resp, err = b.client.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(b.keys.lock), "=", 0)).
				Then(then...).
				Else(clientv3.OpGet(b.keys.lock)).
				Commit()
			return err
		})
		if err != nil {
			return nil, err
		}
		if resp.Succeeded {
			b.lockRev = resp.Header.Revision
			return resp.Responses[1:], nil
		}
		holder := first(resp.Responses[0].GetResponseRange().Kvs)
		if holder != nil && clientv3.LeaseID(holder.Lease) == s.Lease() {
			// An earlier attempt took the lock, but its answer was lost.
			b.lockRev = holder.CreateRevision
			return b.readStore(ctx)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil, b.lockError(ctx, holder, start)
		}
		// Wait for the holder's key to go (Close, or its lease expiring),
		// then try again.
		wctx, cancel := context.WithTimeout(ctx, wait)
		if err := b.waitDelete(wctx, resp.Header.Revision+1); err != nil && wctx.Err() == nil {
			// The watch failed (no leader, say): pause before retrying.
			select {
			case <-wctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		cancel()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", b.lockError(context.Background(), holder, start), ctx.Err())
		}
	}
}

// readStore reads the store's keys and the stale markers, as the lock
// transaction does.
func (b *Backend) readStore(ctx context.Context) ([]*etcdserverpb.ResponseOp, error) {
	var resps []*etcdserverpb.ResponseOp
	err := b.retry(ctx, time.Time{}, "read the store's metadata", func(ctx context.Context) error {
		resp, err := b.client.Txn(ctx).Then(append(b.storeOps(), clientv3.OpGet(b.keys.stale, clientv3.WithPrefix()))...).Commit()
		if err == nil {
			resps = resp.Responses
		}
		return err
	})
	return resps, err
}

// waitDelete waits until the lock key is deleted at or after revision
// rev, or ctx ends.
func (b *Backend) waitDelete(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range b.client.Watch(wctx, b.keys.lock, clientv3.WithRev(rev), clientv3.WithFilterPut()) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	return ctx.Err()
}

// lockError describes the holder of the lock key kv, and how long its
// lease has left.
func (b *Backend) lockError(ctx context.Context, kv *mvccpb.KeyValue, start time.Time) error {
	e := &state.LockError{Path: b.prefix}
	if b.cfg.LockTimeout > 0 {
		e.Waited = time.Since(start).Round(time.Millisecond)
	}
	e.Holder = parseLockInfo(kv)
	if kv != nil {
		e.Expires = b.leaseLeft(ctx, kv.Lease)
	}
	e.Stale = e.Holder != nil && !lockinfo.Alive(e.Holder)
	return fmt.Errorf("etcdbackend: %w", e)
}

// leaseLeft returns an upper bound on the time lease id has left if it is
// not renewed (etcd reports whole seconds, rounded down); 0 when it is
// unknown.
func (b *Backend) leaseLeft(ctx context.Context, id int64) time.Duration {
	if id == 0 {
		return 0
	}
	rctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	resp, err := b.client.TimeToLive(clientv3.WithRequireLeader(rctx), clientv3.LeaseID(id))
	if err != nil || resp.TTL < 0 {
		return 0
	}
	return time.Duration(resp.TTL+1) * time.Second
}

func parseLockInfo(kv *mvccpb.KeyValue) *state.LockInfo {
	if kv == nil {
		return nil
	}
	var info state.LockInfo
	if json.Unmarshal(kv.Value, &info) != nil || info.PID <= 0 {
		return nil
	}
	return &info
}

// LockStatus describes the lock of a store.
type LockStatus struct {
	// Held reports that the lock key exists.
	Held bool
	// Holder is what the holder wrote about itself (nil when the key
	// holds no lock-info record).
	Holder *state.LockInfo
	// Gone reports that Holder describes a process of this host that no
	// longer runs: its lease holds the lock until it expires.
	Gone bool
	// Expires bounds how long the lease has left if it is not renewed
	// (a live holder renews it every third of its TTL); 0 when unknown.
	Expires time.Duration
	// TTL is the lease's time to live as granted.
	TTL time.Duration
}

// Lock reports who holds the store's lock, without taking it: the holder's
// record and what its lease has left. ftlstate check prints it.
func (b *Backend) Lock() (LockStatus, error) {
	if !b.ops.Enter() {
		return LockStatus{}, b.errClosed()
	}
	defer b.ops.Leave()
	var kv *mvccpb.KeyValue
	err := b.retry(context.Background(), time.Time{}, "read the lock", func(ctx context.Context) error {
		resp, err := b.client.Txn(ctx).Then(clientv3.OpGet(b.keys.lock)).Commit()
		if err == nil {
			kv = first(resp.Responses[0].GetResponseRange().Kvs)
		}
		return err
	})
	if err != nil || kv == nil {
		return LockStatus{}, err
	}
	st := LockStatus{Held: true, Holder: parseLockInfo(kv)}
	st.Gone = st.Holder != nil && !lockinfo.Alive(st.Holder)
	if kv.Lease != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
		resp, err := b.client.TimeToLive(clientv3.WithRequireLeader(ctx), clientv3.LeaseID(kv.Lease))
		cancel()
		if err == nil && resp.TTL >= 0 {
			st.Expires = time.Duration(resp.TTL+1) * time.Second
			st.TTL = time.Duration(resp.GrantedTTL) * time.Second
		}
	}
	return st, nil
}

// fence is the comparison every write makes: our lock key still exists,
// created by our lock (a key re-created by another controller has
// another create revision).
func (b *Backend) fence() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(b.keys.lock), "=", b.lockRev)
}

// ours reports whether the lock key kv is our lock.
func (b *Backend) ours(kv *mvccpb.KeyValue) bool {
	return kv != nil && kv.CreateRevision == b.lockRev
}

// lostLock is the error of a write refused because this Backend no longer
// holds the lock; holder is the lock key now (nil when absent), outcome
// says what became of the batch.
func (b *Backend) lostLock(holder *mvccpb.KeyValue, outcome string) error {
	e := &state.LockError{Path: b.prefix, Holder: parseLockInfo(holder)}
	return fmt.Errorf("etcdbackend: %s: this controller lost the lock (its lease expired or was revoked); %s, and writes stay refused until the store is reopened: %w", b.prefix, outcome, e)
}
