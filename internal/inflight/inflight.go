// Package inflight is the open/close lifecycle the backends share: it
// counts the operations in flight, refuses new ones once Close began, and
// lets Close wait until those in flight have ended, so that a backend
// releases its file or connection only when no View or Commit uses it.
package inflight

import "sync"

// Ops tracks a backend's operations in flight. The zero value is open.
type Ops struct {
	mu sync.RWMutex // guards closed; held shared while an operation enters
	// closed is set by Close.
	closed bool
	// running counts operations between Enter and Leave.
	running sync.WaitGroup
}

// Enter registers an operation and reports true, or reports false once
// Close has begun. Every Enter that reports true must be followed by one
// Leave.
func (o *Ops) Enter() bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed {
		return false
	}
	o.running.Add(1)
	return true
}

// Leave ends an operation registered by Enter.
func (o *Ops) Leave() { o.running.Done() }

// Close refuses new operations and waits for those in flight to Leave. It
// reports whether this call closed o: false when o was already closed,
// and then it does not wait.
func (o *Ops) Close() (first bool) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	o.closed = true
	o.mu.Unlock()
	o.running.Wait()
	return true
}

// Closed reports whether Close has begun.
func (o *Ops) Closed() bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.closed
}
