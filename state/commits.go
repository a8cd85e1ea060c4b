package state

import (
	"fmt"
	"sort"
	"time"
)

// Commit is one committed change of a store as State.Commits hands it
// out: the serial it gave the store, its time and the records it changed.
type Commit struct {
	// Serial is Metadata.Serial just after the commit.
	Serial uint64
	// Time is Metadata.UpdatedAt just after the commit.
	Time time.Time
	// Changes are the records the commit put (Host, Resource or
	// Operation set) or deleted (nil), in the order they were staged.
	// They are copies.
	Changes []Change
	// Replaced reports a Replace (an import): everything the store held
	// was replaced. Changes is then empty; read the store again.
	Replaced bool
}

// Limits of the commits a State holds in memory for Commits: the newest
// ones, at most HeldCommits commits and HeldChanges changes in all (a
// commit larger than that is held alone).
const (
	HeldCommits = 1 << 15
	HeldChanges = 1 << 16
)

// HistoryError is returned by State.Commits when asked for commits it
// does not hold: older than the oldest it holds, or made before the store
// was opened by this State.
type HistoryError struct {
	// From is the serial asked for; Oldest is the lowest serial Commits
	// accepts now.
	From, Oldest uint64
}

func (e *HistoryError) Error() string {
	return fmt.Sprintf("state: commits from serial %d are no longer in memory (the oldest this process holds is serial %d)", e.From, e.Oldest)
}

// Commits returns, in serial order, the commits with a serial of at
// least from that the State holds in memory (at most max of them; max <=
// 0 means all), and a channel that is closed as soon as a newer commit is
// held or the State is closed. A commit is held as it becomes visible to
// reads, which is in serial order, so that following Commits from one
// serial to the next sees every commit exactly once, in order. Serials
// grow by one from commit to commit, except across a Replace and where a
// write of another State took one (a store shared through etcd).
//
// The State holds the commits made since it was opened, the newest ones
// within HeldCommits and HeldChanges. from == 0 means from the oldest
// held; a from older than that gives a *HistoryError; a from newer than
// the newest gives no commits (and the channel to wait on). After Close,
// Commits returns an error matching ErrClosed and a closed channel.
//
// Commits never blocks a writer for longer than it takes to copy what it
// returns, and a caller that stops calling it holds nothing: a follower
// that falls behind finds its next serial gone (a *HistoryError).
func (s *State) Commits(from uint64, max int) ([]Commit, <-chan struct{}, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, closedChan, fmt.Errorf("state: %w", ErrClosed)
	}
	l := &s.log
	if from == 0 {
		from = l.base + 1
	}
	if from <= l.base {
		return nil, l.waitChan(), &HistoryError{From: from, Oldest: l.base + 1}
	}
	// The first commit held with a serial of at least from.
	i := sort.Search(l.n, func(i int) bool { return l.at(i).Serial >= from })
	if i >= l.n {
		return nil, l.waitChan(), nil
	}
	n := l.n - i
	if max > 0 && n > max {
		n = max
	}
	out := make([]Commit, n)
	for j := range out {
		c := l.at(i + j)
		cc := *c
		cc.Changes = make([]Change, len(c.Changes))
		for k, ch := range c.Changes {
			ch.Host, ch.Resource, ch.Operation = ch.Host.Clone(), ch.Resource.Clone(), ch.Operation.Clone()
			cc.Changes[k] = ch
		}
		out[j] = cc
	}
	return out, l.waitChan(), nil
}

// NextSerial returns the serial of the next commit Commits will hold: a
// follower that starts now passes it to Commits and sees every commit
// acknowledged from now on. It is 0 after Close.
func (s *State) NextSerial() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0
	}
	return s.log.next
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// commitLog holds the newest commits in a ring, in serial order. It is
// guarded by State.mu: add, replace and close need it exclusively.
// Records in it are the State's immutable records, shared.
type commitLog struct {
	// ring holds n commits from index start (modulo len(ring)), serials
	// increasing (by one, except after a Replace); it grows by doubling
	// up to HeldCommits.
	ring     []Commit
	start, n int
	// changes is the number of changes the ring holds.
	changes int
	// base is the newest serial the ring does not hold: the store's
	// serial at open, then the serial of the newest commit dropped.
	base uint64
	// next is one more than the serial of the newest commit held: the
	// lowest serial the next commit may have.
	next uint64
	// wake is closed (and replaced) when a commit is held, and closed for
	// good by close; reset makes the first.
	wake chan struct{}
}

func (l *commitLog) at(i int) *Commit { return &l.ring[(l.start+i)%len(l.ring)] }

// waitChan returns the channel the next commit closes. It only reads
// (Commits calls it under the State's read lock): reset, notify and close
// make the channels.
func (l *commitLog) waitChan() <-chan struct{} { return l.wake }

// reset empties the log of a store at serial (at open).
func (l *commitLog) reset(serial uint64) {
	l.drop(l.n)
	l.base, l.next = serial, serial+1
	if l.wake == nil {
		l.wake = make(chan struct{})
	}
}

// add holds c, the newest commit. The State publishes commits in serial
// order (see publisher); serials may skip (another writer of a shared
// store, a failed write), never go back.
func (l *commitLog) add(c Commit) {
	if c.Serial < l.next {
		return // cannot happen: never hand a serial out twice
	}
	l.push(c)
	l.notify()
}

// replace holds the commit of a Replace, which sets the serial to any
// value above the current one.
func (l *commitLog) replace(serial uint64, t time.Time) {
	l.push(Commit{Serial: serial, Time: t, Replaced: true})
	l.notify()
}

// push appends c, the newest commit, dropping the oldest commits beyond
// the limits.
func (l *commitLog) push(c Commit) {
	for l.n > 0 && (l.n >= HeldCommits || l.changes+len(c.Changes) > HeldChanges) {
		l.drop(1)
	}
	if l.n == len(l.ring) {
		ring := make([]Commit, max(16, 2*len(l.ring)))
		for i := range l.n {
			ring[i] = *l.at(i)
		}
		l.ring, l.start = ring, 0
	}
	*l.at(l.n) = c
	l.n++
	l.changes += len(c.Changes)
	l.next = c.Serial + 1
}

// drop forgets the k oldest commits.
func (l *commitLog) drop(k int) {
	for range k {
		c := l.at(0)
		l.changes -= len(c.Changes)
		l.base = c.Serial
		*c = Commit{}
		l.start = (l.start + 1) % len(l.ring)
		l.n--
	}
}

func (l *commitLog) notify() {
	if l.wake != closedChan {
		if l.wake != nil {
			close(l.wake)
		}
		l.wake = make(chan struct{})
	}
}

// close wakes every waiter for good (State.Close).
func (l *commitLog) close() {
	l.notify()
	l.wake = closedChan
}
