package statetest

import (
	"cmp"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/state"
)

// This file proves the suite: a backend with one flaw at a time must make
// it fail, in the subtest meant to catch that flaw, without a panic, and a
// backend without flaws must pass it. The suite runs against a recorder,
// a testing.TB that collects failures instead of failing this test.

// recorder is a testing.TB that records failures; Run runs a subtest in a
// goroutine of its own, as testing does, so that FailNow ends only it.
type recorder struct {
	testing.TB // the real test, for TempDir

	name     string
	shared   *recording
	cleanups []func()
}

// recording is what every recorder of one run shares.
type recording struct {
	mu       sync.Mutex
	ran      []string
	failures map[string][]string // subtest -> messages
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{TB: t, shared: &recording{failures: map[string][]string{}}}
}

func (r *recorder) add(msg string) {
	r.shared.mu.Lock()
	defer r.shared.mu.Unlock()
	r.shared.failures[r.name] = append(r.shared.failures[r.name], msg)
}

func (r *recorder) Errorf(format string, args ...any) { r.add(fmt.Sprintf(format, args...)) }
func (r *recorder) Error(args ...any)                 { r.add(fmt.Sprint(args...)) }
func (r *recorder) Fatalf(format string, args ...any) {
	r.add(fmt.Sprintf(format, args...))
	r.FailNow()
}
func (r *recorder) Fatal(args ...any) { r.add(fmt.Sprint(args...)); r.FailNow() }
func (r *recorder) Fail()             { r.add("Fail") }
func (r *recorder) FailNow()          { runtime.Goexit() }
func (r *recorder) Skip(args ...any)  { r.add("skipped: " + fmt.Sprint(args...)); runtime.Goexit() }
func (r *recorder) Skipf(f string, args ...any) {
	r.add("skipped: " + fmt.Sprintf(f, args...))
	runtime.Goexit()
}
func (r *recorder) SkipNow()            { r.add("skipped"); runtime.Goexit() }
func (r *recorder) Helper()             {}
func (r *recorder) Log(args ...any)     {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Name() string        { return r.name }
func (r *recorder) Cleanup(f func())    { r.cleanups = append(r.cleanups, f) }

func (r *recorder) Failed() bool {
	r.shared.mu.Lock()
	defer r.shared.mu.Unlock()
	return len(r.shared.failures[r.name]) > 0
}

// Run runs fn as the subtest name and waits for it, its cleanups included.
func (r *recorder) Run(name string, fn func(t testing.TB)) {
	sub := &recorder{TB: r.TB, name: name, shared: r.shared}
	r.shared.mu.Lock()
	r.shared.ran = append(r.shared.ran, name)
	r.shared.mu.Unlock()
	sub.guard(func() { fn(sub) })
	for i := len(sub.cleanups) - 1; i >= 0; i-- {
		sub.guard(sub.cleanups[i])
	}
}

// guard runs fn in a goroutine and waits for it, recording a panic.
func (r *recorder) guard(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				r.add(fmt.Sprintf("panic: %v", p))
			}
		}()
		fn()
	}()
	<-done
}

// A flaw is one way a backend breaks the contract.
type flaw string

const (
	noFlaw             flaw = ""
	caseInsensitive    flaw = "iterates hosts and resources case-insensitively"
	losesChange        flaw = "drops the last change of a batch of several"
	staleSnapshot      flaw = "serves Views the store as of Open"
	sharesRecords      flaw = "hands out the records it keeps"
	wrongLen           flaw = "counts one host too many"
	writesReadOnly     flaw = "commits when opened read-only"
	partialOnError     flaw = "stores the changes before the bad one of a refused batch"
	replaceKeeps       flaw = "keeps the old records on Replace"
	staleTypeIndex     flaw = "indexes a resource under its first type forever"
	forgets            flaw = "forgets everything on reopen"
	viewsAfterClose    flaw = "serves Views after Close"
	closeBreaksViews   flaw = "fails the Snapshots of running Views on Close"
	swallowsCallback   flaw = "ignores the errors of iteration callbacks"
	liveMetadata       flaw = "shows the latest metadata in old Snapshots"
	emptyBatchNoSerial flaw = "does not count an empty batch"
	timeGoesBack       flaw = "moves UpdatedAt back to an earlier batch time"
	missesUpperCase    flaw = "cannot look up names with capitals"
	changesInput       flaw = "modifies the records it is given"
	noValidation       flaw = "stores what Batch.Validate refuses"
	keepsOperations    flaw = "never removes a pending operation"
	replaceKeepsOps    flaw = "keeps the pending operations on Replace"
)

// flawedStores is a set of named stores of a simple, correct in-memory
// backend that a flaw then breaks.
type flawedStores struct {
	flaw   flaw
	mu     sync.Mutex
	stores map[string]*flawedStore
}

type flawedStore struct {
	mu  sync.Mutex // guards the fields below
	cur *state.Contents
	// firstType is the first type each resource key had.
	firstType map[string]string
}

func (fs *flawedStores) open(t testing.TB, dir string, opts OpenOptions) state.Backend {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.stores == nil {
		fs.stores = map[string]*flawedStore{}
	}
	s, ok := fs.stores[dir]
	if !ok || fs.flaw == forgets {
		s = &flawedStore{
			cur:       &state.Contents{Metadata: state.NewMetadata(time.Now()), Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}, Operations: map[string]*state.Operation{}},
			firstType: map[string]string{},
		}
		fs.stores[dir] = s
	}
	b := &flawed{store: s, flaw: fs.flaw, readOnly: opts.ReadOnly && fs.flaw != writesReadOnly}
	s.mu.Lock()
	b.atOpen = s.cur
	s.mu.Unlock()
	return b
}

type flawed struct {
	store    *flawedStore
	flaw     flaw
	readOnly bool
	atOpen   *state.Contents

	mu     sync.Mutex
	closed bool
}

func (b *flawed) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *flawed) View(fn func(state.Snapshot) error) error {
	if b.isClosed() && b.flaw != viewsAfterClose {
		return fmt.Errorf("flawed: %w", state.ErrClosed)
	}
	b.store.mu.Lock()
	c := b.store.cur
	first := maps.Clone(b.store.firstType)
	b.store.mu.Unlock()
	if b.flaw == staleSnapshot {
		c = b.atOpen
	}
	return fn(&flawedSnap{b: b, c: c, firstType: first})
}

func (b *flawed) Commit(batch *state.Batch) (state.Metadata, error) {
	if b.isClosed() {
		return state.Metadata{}, fmt.Errorf("flawed: %w", state.ErrClosed)
	}
	if b.readOnly {
		return state.Metadata{}, fmt.Errorf("flawed: %w", state.ErrReadOnly)
	}
	verr := batch.Validate()
	if verr != nil && batch != nil && (b.flaw == partialOnError || b.flaw == noValidation) {
		// Apply the changes up to the first that Validate refuses on its
		// own.
		var ok []state.Change
		for _, c := range batch.Changes {
			if (&state.Batch{Time: batch.Time, Changes: []state.Change{c}}).Validate() != nil {
				break
			}
			ok = append(ok, c)
		}
		m := b.apply(&state.Batch{Time: batch.Time, Changes: ok})
		if b.flaw == partialOnError {
			return state.Metadata{}, verr
		}
		return m, nil
	}
	if verr != nil {
		return state.Metadata{}, verr
	}
	if b.flaw == changesInput {
		for _, c := range batch.Changes {
			if c.Host != nil {
				c.Host.Address = strings.ToUpper(c.Host.Address) + " "
			}
		}
	}
	return b.apply(batch), nil
}

func (b *flawed) apply(batch *state.Batch) state.Metadata {
	s := b.store
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur
	next := &state.Contents{Metadata: state.NextMetadata(cur.Metadata, batch), Hosts: maps.Clone(cur.Hosts), Resources: maps.Clone(cur.Resources), Operations: maps.Clone(cur.Operations)}
	changes := batch.Changes
	switch {
	case batch.Replace != nil && b.flaw == replaceKeeps:
		next.Metadata.Serial = cur.Metadata.Serial + 1
	case batch.Replace != nil:
		next.Hosts, next.Resources = map[string]*state.HostState{}, map[string]*state.ResourceState{}
		if b.flaw != replaceKeepsOps {
			next.Operations = map[string]*state.Operation{}
		}
	case len(changes) == 0 && b.flaw == emptyBatchNoSerial:
		next.Metadata = cur.Metadata
	case b.flaw == timeGoesBack && batch.Replace == nil:
		next.Metadata.UpdatedAt = state.Timestamp(batch.Time)
	}
	if b.flaw == losesChange && len(changes) > 1 {
		changes = changes[:len(changes)-1]
	}
	for _, c := range changes {
		switch {
		case c.Kind == state.KindOperation && c.Operation == nil:
			if b.flaw != keepsOperations {
				delete(next.Operations, c.Key)
			}
		case c.Kind == state.KindOperation:
			next.Operations[c.Key] = c.Operation
		case c.Kind == state.KindHost && c.Host == nil:
			delete(next.Hosts, c.Key)
		case c.Kind == state.KindHost:
			next.Hosts[c.Key] = c.Host
		case c.Resource == nil:
			delete(next.Resources, c.Key)
		default:
			next.Resources[c.Key] = c.Resource
			if _, ok := s.firstType[c.Key]; !ok {
				s.firstType[c.Key] = c.Resource.Type
			}
		}
	}
	s.cur = next
	return next.Metadata
}

func (b *flawed) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// flawedSnap is a Snapshot of one version of a flawed store.
type flawedSnap struct {
	b         *flawed
	c         *state.Contents
	firstType map[string]string
}

func (s *flawedSnap) broken() error {
	if s.b.flaw == closeBreaksViews && s.b.isClosed() {
		return fmt.Errorf("flawed: snapshot of a closed store: %w", state.ErrClosed)
	}
	return nil
}

func (s *flawedSnap) Metadata() state.Metadata {
	if s.b.flaw == liveMetadata {
		s.b.store.mu.Lock()
		defer s.b.store.mu.Unlock()
		return s.b.store.cur.Metadata
	}
	return s.c.Metadata
}

func (s *flawedSnap) Len() (int, int) {
	h, r := len(s.c.Hosts), len(s.c.Resources)
	if s.b.flaw == wrongLen && h > 0 {
		h++
	}
	return h, r
}

func (s *flawedSnap) hostOut(h *state.HostState) *state.HostState {
	if s.b.flaw == sharesRecords {
		return h
	}
	return h.Clone()
}

func (s *flawedSnap) resOut(r *state.ResourceState) *state.ResourceState {
	if s.b.flaw == sharesRecords {
		return r
	}
	return r.Clone()
}

func (s *flawedSnap) Host(name string) (*state.HostState, bool, error) {
	if err := s.broken(); err != nil {
		return nil, false, err
	}
	if s.b.flaw == missesUpperCase && strings.ToLower(name) != name {
		return nil, false, nil
	}
	h, ok := s.c.Hosts[name]
	return s.hostOut(h), ok, nil
}

func (s *flawedSnap) Resource(key string) (*state.ResourceState, bool, error) {
	if err := s.broken(); err != nil {
		return nil, false, err
	}
	r, ok := s.c.Resources[key]
	return s.resOut(r), ok, nil
}

func (s *flawedSnap) Operation(id string) (*state.Operation, bool, error) {
	if err := s.broken(); err != nil {
		return nil, false, err
	}
	op, ok := s.c.Operations[id]
	if s.b.flaw == sharesRecords {
		return op, ok, nil
	}
	return op.Clone(), ok, nil
}

func (s *flawedSnap) Operations(fn func(*state.Operation) error) error {
	if err := s.broken(); err != nil {
		return err
	}
	for _, id := range s.order(slices.Sorted(maps.Keys(s.c.Operations))) {
		op, _, _ := s.Operation(id)
		if err := fn(op); err != nil && s.b.flaw != swallowsCallback {
			return err
		}
	}
	return nil
}

func (s *flawedSnap) order(keys []string) []string {
	if s.b.flaw == caseInsensitive {
		slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(strings.ToLower(a), strings.ToLower(b)) })
	}
	return keys
}

func (s *flawedSnap) Hosts(fn func(*state.HostState) error) error {
	if err := s.broken(); err != nil {
		return err
	}
	for _, name := range s.order(slices.Sorted(maps.Keys(s.c.Hosts))) {
		if err := fn(s.hostOut(s.c.Hosts[name])); err != nil && s.b.flaw != swallowsCallback {
			return err
		}
	}
	return nil
}

func (s *flawedSnap) Resources(fn func(string, *state.ResourceState) error) error {
	if err := s.broken(); err != nil {
		return err
	}
	for _, key := range s.order(slices.Sorted(maps.Keys(s.c.Resources))) {
		if err := fn(key, s.resOut(s.c.Resources[key])); err != nil && s.b.flaw != swallowsCallback {
			return err
		}
	}
	return nil
}

func (s *flawedSnap) ResourcesOfType(typ string, fn func(string, *state.ResourceState) error) error {
	if err := s.broken(); err != nil {
		return err
	}
	for _, key := range s.order(slices.Sorted(maps.Keys(s.c.Resources))) {
		r := s.c.Resources[key]
		match := r.Type == typ
		if s.b.flaw == staleTypeIndex {
			match = s.firstType[key] == typ
		}
		if !match {
			continue
		}
		if err := fn(key, s.resOut(r)); err != nil && s.b.flaw != swallowsCallback {
			return err
		}
	}
	return nil
}

// runSuite runs the suite against the flawed backend and returns the
// recording.
func runSuite(t *testing.T, f flaw) *recording {
	r := newRecorder(t)
	stores := &flawedStores{flaw: f}
	run(r, stores.open)
	return r.shared
}

func TestSuite_PassesAFlawlessBackend(t *testing.T) {
	rec := runSuite(t, noFlaw)
	assert := func(ok bool, format string, args ...any) {
		t.Helper()
		if !ok {
			t.Errorf(format, args...)
		}
	}
	assert(len(rec.ran) == len(subtests)+len(operationSubtests), "ran %d subtests, want %d", len(rec.ran), len(subtests)+len(operationSubtests))
	for name, msgs := range rec.failures {
		for _, m := range msgs {
			t.Errorf("%s: %s", name, m)
		}
	}
}

func TestSuite_PassesMemory(t *testing.T) {
	r := newRecorder(t)
	var stores MemoryStores
	run(r, func(t testing.TB, dir string, opts OpenOptions) state.Backend {
		open := stores.Open
		if opts.ReadOnly {
			open = stores.OpenReadOnly
		}
		b, err := open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
	for name, msgs := range r.shared.failures {
		for _, m := range msgs {
			t.Errorf("%s: %s", name, m)
		}
	}
}

// TestSuite_FailsFlawedBackends: each flaw is caught by the subtests named
// beside it (and maybe others), never by a panic, and the run goes on to
// the end.
func TestSuite_FailsFlawedBackends(t *testing.T) {
	cases := []struct {
		flaw   flaw
		caught []string
	}{
		{caseInsensitive, []string{"Ordering", "OperationOrder"}},
		{losesChange, []string{"RoundTrip", "Ordering", "CrossChecks", "Deletes", "TypeChange", "Copies", "Replace", "ReadOnly", "CommitErrorLeavesNoTrace", "CloseWhileViewsRun", "ManyRecords"}},
		{staleSnapshot, []string{"RoundTrip", "SnapshotIsolation", "Metadata", "ConcurrentCommits"}},
		{sharesRecords, []string{"Copies", "OperationRoundTrip"}},
		{wrongLen, []string{"RoundTrip", "CrossChecks"}},
		{writesReadOnly, []string{"ReadOnly"}},
		{partialOnError, []string{"CommitErrorLeavesNoTrace"}},
		{replaceKeeps, []string{"Replace"}},
		{staleTypeIndex, []string{"TypeChange", "CrossChecks"}},
		{forgets, []string{"RoundTrip", "NewStore", "Metadata", "ReadOnly"}},
		{viewsAfterClose, []string{"UseAfterClose", "CloseWhileViewsRun"}},
		{closeBreaksViews, []string{"CloseWhileViewsRun"}},
		{swallowsCallback, []string{"CallbackErrors"}},
		{liveMetadata, []string{"SnapshotIsolation"}},
		{emptyBatchNoSerial, []string{"NewStore", "Metadata"}},
		{timeGoesBack, []string{"Metadata"}},
		{missesUpperCase, []string{"Ordering"}},
		{changesInput, []string{"RoundTrip"}},
		{noValidation, []string{"CommitErrorLeavesNoTrace"}},
		{keepsOperations, []string{"OperationRemove", "OperationFinishAtomic", "OperationSnapshotIsolation"}},
		{replaceKeepsOps, []string{"OperationReplace"}},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(string(tc.flaw), " ", "_"), func(t *testing.T) {
			rec := runSuite(t, tc.flaw)
			if want := len(subtests) + len(operationSubtests); len(rec.ran) != want {
				t.Errorf("ran %d subtests, want all %d", len(rec.ran), want)
			}
			total := 0
			for name, msgs := range rec.failures {
				total += len(msgs)
				for _, m := range msgs {
					if strings.HasPrefix(m, "panic:") {
						t.Errorf("%s: the suite panicked: %s", name, m)
					}
				}
			}
			for _, name := range tc.caught {
				if len(rec.failures[name]) == 0 {
					t.Errorf("a backend that %s passes %s", tc.flaw, name)
				}
			}
			if total == 0 {
				t.Errorf("a backend that %s passes the whole suite", tc.flaw)
			}
			t.Logf("%d failures in %d subtests; first of %s: %q", total, len(rec.failures), tc.caught[0], first(rec.failures[tc.caught[0]]))
		})
	}
}

// TestSuite_ReportsEveryMisbehaviour: a flaw that breaks many things is
// reported many times over, in one subtest as in the whole run.
func TestSuite_ReportsEveryMisbehaviour(t *testing.T) {
	rec := runSuite(t, losesChange)
	if n := len(rec.failures["RoundTrip"]); n < 3 {
		t.Errorf("RoundTrip reported %d failures of a backend that loses changes, want every one of them (3 or more)", n)
	}
	if n := len(rec.failures); n < 10 {
		t.Errorf("%d subtests failed for a backend that loses changes, want 10 or more", n)
	}
}

func first(msgs []string) string {
	if len(msgs) == 0 {
		return ""
	}
	return msgs[0]
}
