package statetest

import (
	"fmt"
	"io/fs"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ftl2/ftlstate/internal/inflight"
	"github.com/go-ftl2/ftlstate/state"
)

// Memory is an in-memory Backend for tests. Commits are atomic and, while
// the process lives, durable; a store outlives its Backend handle when it
// comes from MemoryStores, so tests can close and reopen it. Like a real
// store it keeps every committed version apart: a View sees the store as
// of its start and never makes a Commit wait.
type Memory struct {
	store    *memStore
	readOnly bool
	// ops tracks Views and Commits in flight; Close waits for them.
	ops inflight.Ops

	mu sync.Mutex // guards the field below
	// failCommit, when set, is called before each commit; an error it
	// returns fails the commit without storing anything.
	failCommit func(*state.Batch) error
}

var _ state.Backend = (*Memory)(nil)

type memStore struct {
	// cur is the store as of the last commit. Its maps and records are
	// never modified: a commit publishes new maps.
	cur atomic.Pointer[state.Contents]

	mu sync.Mutex // guards the field below; held by a commit
	// open is true while a read-write Memory handle holds the store (its
	// "lock").
	open bool
}

func newStore() *memStore {
	s := &memStore{}
	s.cur.Store(&state.Contents{
		Metadata:   state.NewMetadata(time.Now()),
		Hosts:      make(map[string]*state.HostState),
		Resources:  make(map[string]*state.ResourceState),
		Operations: make(map[string]*state.Operation),
	})
	return s
}

// NewMemory returns a Backend over a new empty store of its own.
func NewMemory() *Memory {
	s := newStore()
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

// OpenReadOnly returns a Backend that reads the named store, which must
// exist (an error matching fs.ErrNotExist otherwise): its Commit fails
// with an error matching state.ErrReadOnly. It takes no lock, so it opens
// while a writer holds the store, and sees the writer's commits.
func (ms *MemoryStores) OpenReadOnly(name string) (*Memory, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	s, ok := ms.stores[name]
	if !ok {
		return nil, fmt.Errorf("statetest: memory: %s: %w", name, fs.ErrNotExist)
	}
	return &Memory{store: s, readOnly: true}, nil
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

// View implements state.Backend. The Snapshot is the store as of the last
// Commit that returned before View began, whatever is committed while fn
// runs.
func (m *Memory) View(fn func(state.Snapshot) error) error {
	if !m.ops.Enter() {
		return errClosed
	}
	defer m.ops.Leave()
	return fn(state.NewSnapshot(m.store.cur.Load()))
}

// Commit implements state.Backend. It validates the batch
// (state.Batch.Validate) and publishes a new version of the store.
func (m *Memory) Commit(b *state.Batch) (state.Metadata, error) {
	if !m.ops.Enter() {
		return state.Metadata{}, errClosed
	}
	defer m.ops.Leave()
	if m.readOnly {
		return state.Metadata{}, fmt.Errorf("statetest: memory: commit: %w", state.ErrReadOnly)
	}
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
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur.Load()
	next := &state.Contents{Metadata: state.NextMetadata(cur.Metadata, b)}
	if b.Replace != nil {
		next.Hosts = make(map[string]*state.HostState, len(b.Changes))
		next.Resources = make(map[string]*state.ResourceState, len(b.Changes))
		next.Operations = make(map[string]*state.Operation)
	} else {
		next.Hosts = cloneMap(cur.Hosts)
		next.Resources = cloneMap(cur.Resources)
		next.Operations = cloneMap(cur.Operations)
	}
	for _, ch := range b.Changes {
		switch {
		case ch.Kind == state.KindOperation && ch.Operation == nil:
			delete(next.Operations, ch.Key)
		case ch.Kind == state.KindOperation:
			next.Operations[ch.Key] = ch.Operation
		case ch.Kind == state.KindHost && ch.Host == nil:
			delete(next.Hosts, ch.Key)
		case ch.Kind == state.KindHost:
			next.Hosts[ch.Key] = ch.Host
		case ch.Resource == nil:
			delete(next.Resources, ch.Key)
		default:
			next.Resources[ch.Key] = ch.Resource
		}
	}
	s.cur.Store(next)
	return next.Metadata, nil
}

// Close implements state.Backend: it waits for Views and Commits in
// flight and releases the store for another Open.
func (m *Memory) Close() error {
	if !m.ops.Close() {
		return nil
	}
	if !m.readOnly {
		m.store.mu.Lock()
		m.store.open = false
		m.store.mu.Unlock()
	}
	return nil
}

// cloneMap returns a copy of m that is never nil.
func cloneMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return make(map[string]V)
	}
	return maps.Clone(m)
}
