package etcdbackend

import (
	"context"

	"github.com/go-ftl2/ftlstate/state"
)

// LockHolder returns what the controller holding the store's lock wrote
// about itself (PREFIX/lock), or nil when nobody holds it. The lock key
// lives as long as its holder's lease, so a holder that died is gone from
// it within the lease's TTL. `ftlstate check` uses it to tell pending
// operations that the current holder may still finish from those an
// earlier one left.
func (b *Backend) LockHolder() (*state.LockInfo, error) {
	if !b.ops.Enter() {
		return nil, b.errorf("%w", state.ErrClosed)
	}
	defer b.ops.Leave()
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
	defer cancel()
	resp, err := b.client.Get(ctx, b.keys.lock)
	if err != nil {
		return nil, b.errorf("read the lock: %w", err)
	}
	return parseLockInfo(first(resp.Kvs)), nil
}
