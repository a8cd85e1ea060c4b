package state

import (
	"slices"
	"sync"
)

// publisher makes committed writes visible in memory in the order of
// their serials, whatever order their Commit calls return in (pebble's
// commit pipeline: a batch is published only after the batches before
// it). Without it, a snapshot of memory could claim serial N while
// lacking batch N-1, whose goroutine woke up later.
//
// A write takes a ticket before it calls Backend.Commit. A committed
// write with serial s is published once every serial below s that this
// State committed is published: at once when s follows the newest
// published serial; otherwise after every write that held a ticket when
// s returned has returned (a write that started later cannot get a
// serial below s, so the gap belongs to another writer of a shared
// store, or to a failed write). Whichever goroutine finds results ready
// publishes them, in order.
type publisher struct {
	mu   sync.Mutex // guards the fields below; held while publishing
	cond sync.Cond  // broadcast whenever something was published or left
	// next is the next ticket to hand out.
	next uint64
	// inflight holds the tickets of writes inside Backend.Commit.
	inflight map[uint64]struct{}
	// ready holds committed writes not yet published, by serial.
	ready []*committed
	// published is the serial of the newest published write.
	published uint64
}

// committed is a write that its backend has committed.
type committed struct {
	changes []Change
	meta    Metadata
	// barrier: every ticket below it was handed out before this write's
	// Commit returned.
	barrier uint64
	done    bool
}

// reset forgets every write and starts from serial (Open, Replace). No
// write may be in flight.
func (p *publisher) reset(serial uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cond.L = &p.mu
	p.inflight = make(map[uint64]struct{})
	p.ready = nil
	p.published = serial
}

// enter hands out a ticket for a write about to call Backend.Commit.
func (p *publisher) enter() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.next
	p.next++
	p.inflight[t] = struct{}{}
	return t
}

// leave returns the ticket of a write whose Commit failed; writes waiting
// for it may now publish.
func (p *publisher) leave(ticket uint64, publish func([]Change, Metadata)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inflight, ticket)
	p.drain(publish)
	p.cond.Broadcast()
}

// publish hands in the result of a committed write and returns once it is
// published (by this goroutine or another).
func (p *publisher) publish(ticket uint64, changes []Change, meta Metadata, publish func([]Change, Metadata)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inflight, ticket)
	c := &committed{changes: changes, meta: meta, barrier: p.next}
	i, _ := slices.BinarySearchFunc(p.ready, meta.Serial, func(r *committed, s uint64) int {
		switch {
		case r.meta.Serial < s:
			return -1
		case r.meta.Serial > s:
			return 1
		}
		return 0
	})
	p.ready = slices.Insert(p.ready, i, c)
	for {
		if p.drain(publish) {
			p.cond.Broadcast()
		}
		if c.done {
			return
		}
		p.cond.Wait()
	}
}

// drain publishes the ready writes that may be, in serial order, and
// reports whether it published any.
func (p *publisher) drain(publish func([]Change, Metadata)) bool {
	did := false
	for len(p.ready) > 0 {
		c := p.ready[0]
		if c.meta.Serial > p.published+1 && p.waitingBelow(c.barrier) {
			break
		}
		publish(c.changes, c.meta)
		p.published = max(p.published, c.meta.Serial)
		c.done = true
		p.ready[0] = nil
		p.ready = p.ready[1:]
		did = true
	}
	return did
}

// waitingBelow reports whether a write with a ticket below barrier is
// still inside Backend.Commit.
func (p *publisher) waitingBelow(barrier uint64) bool {
	for t := range p.inflight {
		if t < barrier {
			return true
		}
	}
	return false
}
