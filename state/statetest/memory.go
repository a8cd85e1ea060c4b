package statetest

import (
	"fmt"
	"sync"
	"time"

	"github.com/go-ftl2/ftlstate/internal/inflight"
	"github.com/go-ftl2/ftlstate/state"
)

// Memory is an in-memory Backend for tests. Commits are atomic and, while
// the process lives, durable; a store outlives its Backend handle when it
// comes from MemoryStores, so tests can close and reopen it.
type Memory struct {
	store *memStore
	// ops tracks Views and Commits in flight; Close waits for them.
	ops inflight.Ops

	mu sync.Mutex // guards the field below
	// failCommit, when set, is called before each commit; an error it
	// returns fails the commit without storing anything.
	failCommit func(*state.Batch) error
}

var _ state.Backend = (*Memory)(nil)

type memStore struct {
	mu sync.RWMutex // guards the fields below; held during View callbacks
	// open is true while a Memory handle holds the store (its "lock").
	open bool
	// contents holds immutable records and the metadata.
	contents state.Contents
}

func newStore() *memStore {
	c := state.Contents{
		Hosts:      make(map[string]*state.HostState),
		Resources:  make(map[string]*state.ResourceState),
		Operations: make(map[string]*state.Operation),
	}
	return &memStore{contents: c}
}

// NewMemory returns a Backend over a new empty store of its own.
func NewMemory() *Memory {
	s := newStore()
	s.contents.Metadata = state.NewMetadata(time.Now())
	s.open = true
	return &Memory{store: s}
}

// MemoryStores is a set of named in-memory stores, so that a test can close
// a Memory backend and open the same store again. The zero value is ready
// to use.
type MemoryStores struct {
	mu sync.Mutex
	// stores maps a name to its store, created by the first Open.
	stores map[string]*memStore
}

// Open returns a Backend on the named store, creating it when needed. Like
// a real store it is locked while open: a second Open before Close returns
// a *state.LockError.
func (ms *MemoryStores) Open(name string) (*Memory, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.stores == nil {
		ms.stores = make(map[string]*memStore)
	}
	s, ok := ms.stores[name]
	if !ok {
		s = newStore()
		s.contents.Metadata = state.NewMetadata(time.Now())
		ms.stores[name] = s
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open {
		return nil, &state.LockError{Path: name}
	}
	s.open = true
	return &Memory{store: s}, nil
}

// FailCommits makes every following Commit call fn first and, when fn
// returns an error, fail with it, storing nothing. nil restores normal
// commits. It lets tests check what a State does when its backend fails
// (a full disk, a lost connection).
func (m *Memory) FailCommits(fn func(*state.Batch) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failCommit = fn
}

var errClosed = fmt.Errorf("statetest: memory: %w", state.ErrClosed)

// View implements state.Backend.
func (m *Memory) View(fn func(state.Snapshot) error) error {
	if !m.ops.Enter() {
		return errClosed
	}
	defer m.ops.Leave()
	m.store.mu.RLock()
	defer m.store.mu.RUnlock()
	return fn(state.NewSnapshot(&m.store.contents))
}

// Commit implements state.Backend.
func (m *Memory) Commit(b *state.Batch) (state.Metadata, error) {
	if !m.ops.Enter() {
		return state.Metadata{}, errClosed
	}
	defer m.ops.Leave()
	if err := b.Validate(); err != nil {
		return state.Metadata{}, fmt.Errorf("statetest: memory: %w", err)
	}
	m.mu.Lock()
	fail := m.failCommit
	m.mu.Unlock()
	if fail != nil {
		if err := fail(b); err != nil {
			return state.Metadata{}, err
		}
	}
	s := m.store
	s.mu.Lock() // waits for Views in progress, which keeps their snapshots consistent
	defer s.mu.Unlock()
	c := &s.contents
	meta := state.NextMetadata(c.Metadata, b)
	hosts, resources, ops := c.Hosts, c.Resources, c.Operations
	if b.Replace != nil {
		hosts = make(map[string]*state.HostState, len(b.Changes))
		resources = make(map[string]*state.ResourceState, len(b.Changes))
		ops = make(map[string]*state.Operation)
	}
	for _, ch := range b.Changes {
		switch {
		case ch.Kind == state.KindOperation && ch.Operation == nil:
			delete(ops, ch.Key)
		case ch.Kind == state.KindOperation:
			ops[ch.Key] = ch.Operation
		case ch.Kind == state.KindHost && ch.Host == nil:
			delete(hosts, ch.Key)
		case ch.Kind == state.KindHost:
			hosts[ch.Key] = ch.Host
		case ch.Resource == nil:
			delete(resources, ch.Key)
		default:
			resources[ch.Key] = ch.Resource
		}
	}
	c.Metadata, c.Hosts, c.Resources, c.Operations = meta, hosts, resources, ops
	return meta, nil
}

// Close implements state.Backend: it waits for Views and Commits in
// flight and releases the store for another Open.
func (m *Memory) Close() error {
	if !m.ops.Close() {
		return nil
	}
	m.store.mu.Lock()
	m.store.open = false
	m.store.mu.Unlock()
	return nil
}
