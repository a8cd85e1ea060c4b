package etcdbackend

import (
	"github.com/go-ftl2/ftlstate/state"
)

// LockHolder returns what the controller holding the store's lock wrote
// about itself (PREFIX/lock), or nil when nobody holds it. The lock key
// lives as long as its holder's lease, so a holder that died is gone from
// it within the lease's TTL. `ftlstate check` uses it to tell pending
// operations that the current holder may still finish from those an
// earlier one left. Lock says the same and more (the lease).
func (b *Backend) LockHolder() (*state.LockInfo, error) {
	st, err := b.Lock()
	return st.Holder, err
}
