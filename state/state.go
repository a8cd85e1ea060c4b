package state

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/go-ftl2/ftlstate/inventory"
)

// State is the working copy of a store: every host, resource and the
// metadata, kept in memory and written through to a Backend on every
// change. It is safe for concurrent use; see the package documentation.
type State struct {
	b Backend
	// now is the clock of records' and batches' times: time.Now, or a
	// test's clock (export_test.go).
	now func() time.Time

	// gate is held shared by every write for its whole duration and
	// exclusively by Close and Replace, which need the store to themselves.
	gate sync.RWMutex
	// keys serializes writes of the same record; writes of different
	// records run (and reach the backend) concurrently.
	keys keyLocks
	// pub makes committed writes visible in memory in serial order.
	pub publisher

	mu sync.RWMutex // guards the fields below; never held across a backend call
	// closed is set by Close.
	closed bool
	// unknown is the error of a write whose outcome the backend could not
	// tell (ErrOutcomeUnknown); once set, every write is refused.
	unknown error
	// meta is the metadata as of the newest committed batch.
	meta Metadata
	// hosts and resources hold immutable records: a change replaces the
	// pointer, never the record, so a snapshot may share them.
	hosts     map[string]*HostState
	resources map[string]*ResourceState
	// byType indexes resource keys by resource Type.
	byType map[string]map[string]struct{}
	// ops holds the pending operations by ID (immutable records).
	ops map[string]*Operation
	// groups counts the hosts of each group, by Ansible name, the ones
	// being written included (see reserveGroups).
	groups groupIndex
	// log holds the newest commits, for Commits.
	log commitLog
}

// Open attaches a State to b, an opened backend, and loads what it holds
// from one consistent snapshot. The State owns b from then on: State.Close
// closes it (also when Open fails).
func Open(b Backend) (*State, error) {
	s := &State{
		b:         b,
		now:       time.Now,
		hosts:     make(map[string]*HostState),
		resources: make(map[string]*ResourceState),
		byType:    make(map[string]map[string]struct{}),
		ops:       make(map[string]*Operation),
		groups:    groupIndex{},
	}
	err := b.View(func(snap Snapshot) error {
		s.meta = snap.Metadata()
		// Len sizes the maps; bounded, so a damaged count cannot make Open
		// allocate without limit.
		nh, nr := snap.Len()
		s.hosts = make(map[string]*HostState, min(max(nh, 0), 1<<20))
		s.resources = make(map[string]*ResourceState, min(max(nr, 0), 1<<20))
		if err := snap.Hosts(func(h *HostState) error {
			s.hosts[h.Name] = h
			s.groups.add(h.AllGroups(), 1)
			return nil
		}); err != nil {
			return err
		}
		if err := snap.Resources(func(key string, r *ResourceState) error {
			s.resources[key] = r
			s.index(key, r)
			return nil
		}); err != nil {
			return err
		}
		return snap.Operations(func(op *Operation) error {
			s.ops[op.ID] = op
			return nil
		})
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("state: load: %w", err)
	}
	s.pub.reset(s.meta.Serial)
	s.log.reset(s.meta.Serial)
	if srv, ok := b.(Server); ok {
		srv.Serve(s) // best effort: see Server
	}
	return s, nil
}

// Close closes the State and its backend, after waiting for writes in
// flight. Every call afterwards, Close included, returns an error matching
// ErrClosed; reads return zero values.
func (s *State) Close() error {
	s.gate.Lock()
	defer s.gate.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("state: %w", ErrClosed)
	}
	s.closed = true
	s.log.close()
	s.mu.Unlock()
	return s.b.Close()
}

func (s *State) index(key string, r *ResourceState) {
	set, ok := s.byType[r.Type]
	if !ok {
		set = make(map[string]struct{})
		s.byType[r.Type] = set
	}
	set[key] = struct{}{}
}

func (s *State) unindex(key string, r *ResourceState) {
	if set, ok := s.byType[r.Type]; ok {
		delete(set, key)
		if len(set) == 0 {
			delete(s.byType, r.Type)
		}
	}
}

// AddHost adds host, or updates the host of the same name (keeping its
// CreatedAt), and returns once the change is durable. host is copied and
// normalized (see NormalizeValue); its CreatedAt and UpdatedAt are ignored.
// A host that fails validation gives a *FieldError matching ErrInvalid.
func (s *State) AddHost(host *HostState) error {
	h, err := host.Normalize()
	if err != nil {
		return hostErr(host, err)
	}
	return s.write([]Change{{Kind: KindHost, Key: h.Name, Host: h}})
}

// RemoveHost removes the named host and returns once that is durable.
// Removing an absent host is not an error and changes nothing.
func (s *State) RemoveHost(name string) error {
	return s.write([]Change{{Kind: KindHost, Key: name}})
}

// GetHost returns a copy of the named host; ok is false when it is absent
// (or the State is closed).
func (s *State) GetHost(name string) (h *HostState, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, false
	}
	hh, ok := s.hosts[name]
	return hh.Clone(), ok
}

// HasHost reports whether the named host exists.
func (s *State) HasHost(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.hosts[name]
	return ok && !s.closed
}

// AllHosts returns copies of all hosts, sorted by name.
func (s *State) AllHosts() []*HostState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	out := make([]*HostState, 0, len(s.hosts))
	for _, h := range s.hosts {
		out = append(out, h.Clone())
	}
	slices.SortFunc(out, func(a, b *HostState) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// AddResource stores res under key, or updates the resource stored there
// (keeping its CreatedAt; every other field is replaced), and returns once
// the change is durable. res is copied and normalized; its CreatedAt and
// UpdatedAt are ignored.
func (s *State) AddResource(key string, res *ResourceState) error {
	if err := ValidateName(key); err != nil {
		return fmt.Errorf("state: resource %q: %w", key, err.(*FieldError).Under("key"))
	}
	r, err := res.Normalize()
	if err != nil {
		return fmt.Errorf("state: resource %q: %w", key, err)
	}
	return s.write([]Change{{Kind: KindResource, Key: key, Resource: r}})
}

// RemoveResource removes the resource stored under key and returns once
// that is durable. Removing an absent key is not an error and changes
// nothing.
func (s *State) RemoveResource(key string) error {
	return s.write([]Change{{Kind: KindResource, Key: key}})
}

// GetResource returns a copy of the resource stored under key; ok is false
// when there is none.
func (s *State) GetResource(key string) (r *ResourceState, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, false
	}
	rr, ok := s.resources[key]
	return rr.Clone(), ok
}

// GetResourcesByType returns copies of the resources of type
// resourceType, sorted by key. Its cost is proportional to the number of
// matches.
func (s *State) GetResourcesByType(resourceType string) []*ResourceState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	set := s.byType[resourceType]
	keys := slices.Sorted(maps.Keys(set))
	out := make([]*ResourceState, len(keys))
	for i, k := range keys {
		out[i] = s.resources[k].Clone()
	}
	return out
}

// AllResources returns copies of all resources by key.
func (s *State) AllResources() map[string]*ResourceState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	out := make(map[string]*ResourceState, len(s.resources))
	for k, r := range s.resources {
		out[k] = r.Clone()
	}
	return out
}

// Metadata returns the store's metadata as of the newest committed change.
func (s *State) Metadata() Metadata {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Metadata{}
	}
	return s.meta
}

// Len returns the number of hosts and resources.
func (s *State) Len() (hosts, resources int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, 0
	}
	return len(s.hosts), len(s.resources)
}

// Save is kept from the design document for callers that save
// explicitly. Every change is already durable when its call returns, so
// Save only waits for writes in flight (from other goroutines) to finish
// and reports ErrClosed after Close.
func (s *State) Save() error {
	s.gate.Lock()
	defer s.gate.Unlock()
	if s.isClosed() {
		return fmt.Errorf("state: save: %w", ErrClosed)
	}
	return nil
}

// MergeToInventory adds every host, in name order, to inv under each of
// its groups (Group, then Groups); hosts without a group go to "all".
func (s *State) MergeToInventory(inv *inventory.Inventory) error {
	for _, h := range s.AllHosts() {
		groups := h.AllGroups()
		if len(groups) == 0 {
			groups = []string{"all"}
		}
		ih := &inventory.Host{Name: h.Name, Address: h.Address, Port: h.Port, User: h.User, Vars: h.Vars}
		for _, group := range groups {
			if err := inv.AddHost(group, ih); err != nil {
				return fmt.Errorf("state: merge host %q: %w", h.Name, err)
			}
		}
	}
	return nil
}

// FromInventoryHost returns a HostState for an inventory host in group.
// Vars are copied.
func FromInventoryHost(host *inventory.Host, group string) *HostState {
	return &HostState{
		Name:    host.Name,
		Address: host.Address,
		Port:    host.Port,
		User:    host.User,
		Vars:    CloneMap(host.Vars),
		Group:   group,
	}
}

// View calls fn with a consistent snapshot of the State's memory: the
// state after some committed change, unaffected by writes that happen
// while fn runs. Records it hands out are copies.
func (s *State) View(fn func(Snapshot) error) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("state: %w", ErrClosed)
	}
	snap := &memSnapshot{meta: s.meta, hosts: maps.Clone(s.hosts), resources: maps.Clone(s.resources), ops: maps.Clone(s.ops)}
	byType := make(map[string][]string, len(s.byType))
	for t, set := range s.byType {
		byType[t] = slices.Collect(maps.Keys(set))
	}
	snap.byType = byType
	s.mu.RUnlock()
	return fn(snap)
}

func (s *State) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

func hostErr(h *HostState, err error) error {
	if h == nil {
		return fmt.Errorf("state: host: %w", err)
	}
	return fmt.Errorf("state: host %q: %w", h.Name, err)
}

// write commits changes (normalized, each key at most once) durably, then
// applies them to memory. Deletes of absent hosts and resources are
// dropped; a write left with no change commits nothing. Operations are
// stricter: beginning one already pending, or removing one that is not,
// fails the whole write (checked under the operation's key lock, so that
// of two concurrent finishes exactly one succeeds).
func (s *State) write(changes []Change) error {
	s.gate.RLock()
	defer s.gate.RUnlock()
	if err := s.writable(); err != nil {
		return err
	}
	defer s.keys.lock(changes)()

	now := Timestamp(s.now())
	effective := make([]Change, 0, len(changes))
	s.mu.RLock()
	for _, c := range changes {
		switch {
		case c.Kind == KindOperation:
			if _, ok := s.ops[c.Key]; ok != (c.Operation == nil) {
				s.mu.RUnlock()
				if ok {
					return opAlreadyPending(c.Key)
				}
				return opNotPending(c.Key)
			}
		case c.Kind == KindHost && c.Host == nil:
			if _, ok := s.hosts[c.Key]; !ok {
				continue
			}
		case c.Kind == KindResource && c.Resource == nil:
			if _, ok := s.resources[c.Key]; !ok {
				continue
			}
		case c.Kind == KindHost:
			c.Host.CreatedAt, c.Host.UpdatedAt = now, now
			if old, ok := s.hosts[c.Key]; ok {
				c.Host.CreatedAt = old.CreatedAt
			}
		case c.Kind == KindResource:
			c.Resource.CreatedAt, c.Resource.UpdatedAt = now, now
			if old, ok := s.resources[c.Key]; ok {
				c.Resource.CreatedAt = old.CreatedAt
			}
		}
		effective = append(effective, c)
	}
	s.mu.RUnlock()
	if len(effective) == 0 {
		return nil
	}
	release, err := s.reserveGroups(effective)
	if err != nil {
		return err
	}

	ticket := s.pub.enter()
	meta, err := s.b.Commit(&Batch{Changes: effective, Time: now})
	if err != nil {
		s.pub.leave(ticket, s.publishLocked)
		release()
		return s.commitErr(err)
	}
	s.pub.publish(ticket, effective, meta, s.publishLocked)
	return nil
}

// reserveGroups refuses a batch that would give a group the Ansible name
// of another group of the store (a *GroupClashError, matching
// ErrInvalid). Otherwise it counts the batch's hosts in their new groups
// and out of the groups they leave, at once, so that a concurrent write
// is checked against what the store will hold; release undoes that, for
// a batch that fails to commit. The keys of changes are locked (write),
// so the hosts they replace stay the ones in s.hosts until published.
func (s *State) reserveGroups(changes []Change) (release func(), err error) {
	type move struct{ joined, left []string }
	var moves []move
	undo := func() {
		for _, m := range moves {
			s.groups.add(m.joined, -1)
			s.groups.add(m.left, 1)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range changes {
		if c.Kind != KindHost {
			continue
		}
		old := s.hosts[c.Key]
		m := move{left: lostGroups(old, c.Host)}
		s.groups.add(m.left, -1)
		if c.Host != nil {
			m.joined = newGroups(c.Host, old)
		}
		for _, g := range m.joined {
			if err := s.groups.clash(g); err != nil {
				s.groups.add(m.left, 1)
				undo()
				return nil, fmt.Errorf("state: host %q: %w", c.Key, err)
			}
		}
		s.groups.add(m.joined, 1)
		moves = append(moves, m)
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		undo()
	}, nil
}

// writable returns nil when the State may write: it is open, and no
// earlier write ended with an unknown outcome.
func (s *State) writable() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case s.closed:
		return fmt.Errorf("state: %w", ErrClosed)
	case s.unknown != nil:
		return fmt.Errorf("state: writes are refused until the store is closed and reopened, because an earlier write's outcome is unknown: %w", s.unknown)
	}
	return nil
}

// commitErr wraps an error of Backend.Commit. An unknown outcome (the
// change may or may not be stored) makes the State refuse every later
// write: only reopening the store tells what it holds.
func (s *State) commitErr(err error) error {
	if errors.Is(err, ErrOutcomeUnknown) {
		s.mu.Lock()
		if s.unknown == nil {
			s.unknown = err
		}
		s.mu.Unlock()
		return fmt.Errorf("state: commit: the change may or may not be stored; writes are refused until the store is reopened: %w", err)
	}
	return fmt.Errorf("state: commit: %w", err)
}

// publishLocked makes one committed write visible; s.pub.mu is held.
func (s *State) publishLocked(changes []Change, meta Metadata) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(changes)
	if meta.Serial > s.meta.Serial {
		s.meta = meta
	}
	s.log.add(Commit{Serial: meta.Serial, Time: meta.UpdatedAt, Changes: changes})
}

// apply changes memory; s.mu must be held.
func (s *State) apply(changes []Change) {
	for _, c := range changes {
		switch c.Kind {
		case KindHost:
			// s.groups was brought up to date by reserveGroups.
			if c.Host == nil {
				delete(s.hosts, c.Key)
			} else {
				s.hosts[c.Key] = c.Host
			}
		case KindResource:
			if old, ok := s.resources[c.Key]; ok {
				s.unindex(c.Key, old)
			}
			if c.Resource == nil {
				delete(s.resources, c.Key)
			} else {
				s.resources[c.Key] = c.Resource
				s.index(c.Key, c.Resource)
			}
		case KindOperation:
			if c.Operation == nil {
				delete(s.ops, c.Key)
			} else {
				s.ops[c.Key] = c.Operation
			}
		}
	}
}

// keyLocks hands out one mutex per record key, created on demand and
// dropped when unused.
type keyLocks struct {
	mu sync.Mutex
	// held maps a record id to its lock and the number of goroutines
	// holding or waiting for it.
	held map[recordID]*keyLock
}

type recordID struct {
	kind Kind
	key  string
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// lock locks the keys of changes in a fixed order (so that two batches
// cannot deadlock) and returns the function that unlocks them.
func (k *keyLocks) lock(changes []Change) (unlock func()) {
	ids := make([]recordID, len(changes))
	for i, c := range changes {
		ids[i] = recordID{c.Kind, c.Key}
	}
	slices.SortFunc(ids, func(a, b recordID) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.key, b.key))
	})
	ids = slices.Compact(ids)
	locks := make([]*keyLock, len(ids))
	k.mu.Lock()
	if k.held == nil {
		k.held = make(map[recordID]*keyLock)
	}
	for i, id := range ids {
		l, ok := k.held[id]
		if !ok {
			l = &keyLock{}
			k.held[id] = l
		}
		l.refs++
		locks[i] = l
	}
	k.mu.Unlock()
	for _, l := range locks {
		l.mu.Lock()
	}
	return func() {
		for _, l := range locks {
			l.mu.Unlock()
		}
		k.mu.Lock()
		for i, id := range ids {
			if locks[i].refs--; locks[i].refs == 0 {
				delete(k.held, id)
			}
		}
		k.mu.Unlock()
	}
}

var errTxDone = errors.New("state: transaction used after its Update returned")
