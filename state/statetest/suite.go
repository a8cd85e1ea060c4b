package statetest

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/state"
)

// OpenOptions tell an Opener how to open a store.
type OpenOptions struct {
	// ReadOnly asks for a Backend that only reads: its Commit must fail
	// with an error matching state.ErrReadOnly and change nothing. The
	// suite asks for it only on a store it created and closed.
	ReadOnly bool
}

// Opener opens the backend stored in dir, as opts says. It may be called
// several times on one dir (never while an earlier backend on it is still
// open) and must return a backend on the same store each time. Failures
// should end the test with t.Fatal.
type Opener func(t testing.TB, dir string, opts OpenOptions) state.Backend

// TestBackend checks that the backends open returns meet the Backend and
// Snapshot contract (see the state package documentation), calling their
// methods directly, as testing/fstest.TestFS does for an fs.FS: a State
// sorts and copies on its own, and would hide a backend that does not.
//
// Each check is a named subtest on a store of its own: a new store, round
// trips of every field and value kind, byte order of every iteration,
// methods cross-checked against each other, deletes, type changes, the
// metadata rules, copies, callback errors, snapshot isolation, concurrent
// commits and views, Batch.Replace, read-only backends, commits that fail,
// Close while Views run, use after Close, and a store of many records.
// After each subtest the store is opened again and checked: with the
// backend's own Check when it is a state.Checker, and always with
// state.CheckSnapshot.
//
// Every misbehaviour is reported (t.Errorf), not only the first: a check
// that fails goes on with the next, and a subtest that cannot go on (its
// store does not open) ends alone.
func TestBackend(t *testing.T, open Opener) {
	run(testingRunner{t}, open)
}

// runner runs a subtest; *testing.T does, through testingRunner, and so
// does the recorder the suite's own tests use.
type runner interface {
	Run(name string, fn func(t testing.TB))
}

type testingRunner struct{ t *testing.T }

func (r testingRunner) Run(name string, fn func(t testing.TB)) {
	r.t.Run(name, func(t *testing.T) { fn(t) })
}

// subtest is one of the suite's checks.
type subtest struct {
	name string
	fn   func(s *suite, st *store)
}

// subtests are the suite's checks, in the order they run (then
// operationSubtests).
var subtests = []subtest{
	{"NewStore", (*suite).testNewStore},
	{"RoundTrip", (*suite).testRoundTrip},
	{"Ordering", (*suite).testOrdering},
	{"CrossChecks", (*suite).testCrossChecks},
	{"Deletes", (*suite).testDeletes},
	{"TypeChange", (*suite).testTypeChange},
	{"Metadata", (*suite).testMetadata},
	{"Copies", (*suite).testCopies},
	{"CallbackErrors", (*suite).testCallbackErrors},
	{"SnapshotIsolation", (*suite).testSnapshotIsolation},
	{"ConcurrentCommits", (*suite).testConcurrentCommits},
	{"Replace", (*suite).testReplace},
	{"ReadOnly", (*suite).testReadOnly},
	{"CommitErrorLeavesNoTrace", (*suite).testCommitErrorLeavesNoTrace},
	{"CloseWhileViewsRun", (*suite).testCloseWhileViewsRun},
	{"UseAfterClose", (*suite).testUseAfterClose},
	{"ManyRecords", (*suite).testManyRecords},
}

func run(r runner, open Opener) {
	s := &suite{open: open}
	for _, st := range slices.Concat(subtests, operationSubtests) {
		r.Run(st.name, func(t testing.TB) {
			dir := t.TempDir()
			// Registered first, so it runs last: after the test's own
			// cleanups have closed its backends.
			t.Cleanup(func() { s.checkStore(t, dir) })
			st.fn(s, &store{TB: t, s: s, dir: dir})
		})
	}
}

type suite struct{ open Opener }

// store is one subtest's store: a testing.TB with the suite's helpers.
type store struct {
	testing.TB
	s   *suite
	dir string
}

// openWith opens the subtest's store and closes it when the test ends
// (closing twice is allowed).
func (st *store) openWith(opts OpenOptions) state.Backend {
	st.Helper()
	b := st.s.open(st, st.dir, opts)
	if b == nil {
		st.Fatalf("Opener returned a nil Backend")
	}
	st.Cleanup(func() { b.Close() })
	return b
}

// open opens the store for reading and writing.
func (st *store) open() state.Backend { st.Helper(); return st.openWith(OpenOptions{}) }

// reopen closes b and opens the store again.
func (st *store) reopen(b state.Backend) state.Backend {
	st.Helper()
	if err := b.Close(); err != nil {
		st.Errorf("Close: %v", err)
	}
	return st.open()
}

// checkStore opens the store of dir after a test and checks its
// integrity.
func (s *suite) checkStore(t testing.TB, dir string) {
	t.Helper()
	b := s.open(t, dir, OpenOptions{})
	if b == nil {
		t.Errorf("after the test: Opener returned a nil Backend")
		return
	}
	defer b.Close()
	if _, ok := b.(state.Checker); ok {
		reportCheck(t, "after the test: Check", state.Check(b))
	}
	err := b.View(func(snap state.Snapshot) error {
		reportCheck(t, "after the test: CheckSnapshot", state.CheckSnapshot(snap))
		return nil
	})
	if err != nil {
		t.Errorf("after the test: View: %v", err)
	}
}

// reportCheck reports each problem of a check's error on its own.
func reportCheck(t testing.TB, what string, err error) {
	t.Helper()
	var ce *state.CheckError
	switch {
	case err == nil:
	case errors.As(err, &ce):
		for _, p := range ce.Problems {
			t.Errorf("%s: %s", what, p)
		}
		if ce.More > 0 {
			t.Errorf("%s: and %d more problems", what, ce.More)
		}
	default:
		t.Errorf("%s: %v", what, err)
	}
}

// ts is the time of the suite's records and batches: a whole number of
// nanoseconds past 2024-01-15, UTC.
var ts = time.Date(2024, 1, 15, 10, 30, 0, 123456789, time.UTC)

// everyKind holds a value of every JSON kind, nested, in the normalized
// model.
func everyKind() map[string]any {
	return map[string]any{
		"string":   "hello, 世界",
		"empty":    "",
		"int":      int64(80),
		"negative": int64(-7),
		"big":      int64(math.MaxInt64),
		"small":    int64(math.MinInt64),
		"float":    1.5,
		"tiny":     1e-300,
		"huge":     1e300,
		"uint-ish": float64(math.MaxUint64),
		"true":     true,
		"false":    false,
		"null":     nil,
		"list":     []any{"a", int64(1), 2.5, true, nil, []any{}, map[string]any{}},
		"empty[]":  []any{},
		"empty{}":  map[string]any{},
		"nested": map[string]any{
			"deeper": map[string]any{"list": []any{map[string]any{"k": "v"}}},
			"ports":  []any{int64(80), int64(443)},
		},
		"quote\"and.dot":    "x",
		"":                  "empty key",
		"tab\tand\nnewline": "keys may hold control characters",
		"strings":           []any{"a\x00b", "\x01\x1f\x7f", "🙂", "\u2028\u2029", "<>&'\"\\", "\ufeff"},
		"floats":            []any{5e-324, 0.1, 1.0 / 3, math.MaxFloat64, -math.SmallestNonzeroFloat64, -2.5},
		"ints":              []any{int64(1<<53 + 1), int64(-1 << 53), int64(0)},
	}
}

// host returns a full host record named name, as a State would commit it.
func host(name string) *state.HostState {
	return &state.HostState{
		Name: name, Address: "192.0.2.10", Port: 22, User: "admin",
		Group: "webservers", Groups: []string{"production", "eu"},
		Vars:      everyKind(),
		CreatedAt: ts, UpdatedAt: ts.Add(time.Second),
	}
}

// bareHost returns a host with nothing but its name and times.
func bareHost(name string) *state.HostState {
	return &state.HostState{Name: name, CreatedAt: ts, UpdatedAt: ts}
}

// resource returns a full resource record of type typ.
func resource(typ, id string) *state.ResourceState {
	return &state.ResourceState{
		Type: typ, ID: id, Name: "web-" + id,
		Data:      everyKind(),
		Tags:      map[string]string{"environment": "production", "role": "webserver", "": "empty"},
		CreatedAt: ts, UpdatedAt: ts.Add(time.Second),
	}
}

// bareResource returns a resource with nothing but its type and times.
func bareResource(typ string) *state.ResourceState {
	return &state.ResourceState{Type: typ, CreatedAt: ts, UpdatedAt: ts}
}

func putHost(h *state.HostState) state.Change {
	return state.Change{Kind: state.KindHost, Key: h.Name, Host: h}
}

func putResource(key string, r *state.ResourceState) state.Change {
	return state.Change{Kind: state.KindResource, Key: key, Resource: r}
}

func delHost(name string) state.Change {
	return state.Change{Kind: state.KindHost, Key: name}
}

func delResource(key string) state.Change {
	return state.Change{Kind: state.KindResource, Key: key}
}

// commit commits changes at time ts and reports an error; ok is false
// when it failed.
func (st *store) commit(b state.Backend, changes ...state.Change) (state.Metadata, bool) {
	st.Helper()
	return st.commitBatch(b, &state.Batch{Time: ts, Changes: changes})
}

func (st *store) commitBatch(b state.Backend, batch *state.Batch) (state.Metadata, bool) {
	st.Helper()
	m, err := b.Commit(batch)
	if err != nil {
		st.Errorf("Commit of %d changes: %v", len(batch.Changes), err)
		return m, false
	}
	return m, true
}

// view runs fn in a View of b and reports View's error.
func (st *store) view(b state.Backend, what string, fn func(s state.Snapshot)) {
	st.Helper()
	err := b.View(func(s state.Snapshot) error {
		fn(s)
		return nil
	})
	if err != nil {
		st.Errorf("%s: View: %v", what, err)
	}
}

// contents is what a Snapshot shows through its iterations, in the order
// they yielded it.
type contents struct {
	meta      state.Metadata
	nHosts    int
	nRes      int
	hosts     []*state.HostState
	keys      []string
	resources map[string]*state.ResourceState
}

func (c *contents) hostNames() []string {
	names := make([]string, 0, len(c.hosts))
	for _, h := range c.hosts {
		if h != nil {
			names = append(names, h.Name)
		}
	}
	return names
}

func (c *contents) host(name string) *state.HostState {
	for _, h := range c.hosts {
		if h != nil && h.Name == name {
			return h
		}
	}
	return nil
}

// read reads everything s shows, reporting errors and nil records.
func (st *store) read(s state.Snapshot, what string) *contents {
	st.Helper()
	c := &contents{meta: s.Metadata(), resources: map[string]*state.ResourceState{}}
	c.nHosts, c.nRes = s.Len()
	err := s.Hosts(func(h *state.HostState) error {
		if h == nil {
			st.Errorf("%s: Hosts yielded a nil host", what)
			return nil
		}
		c.hosts = append(c.hosts, h)
		return nil
	})
	if err != nil {
		st.Errorf("%s: Hosts: %v", what, err)
	}
	err = s.Resources(func(key string, r *state.ResourceState) error {
		if r == nil {
			st.Errorf("%s: Resources yielded a nil resource under %q", what, key)
			return nil
		}
		c.keys = append(c.keys, key)
		c.resources[key] = r
		return nil
	})
	if err != nil {
		st.Errorf("%s: Resources: %v", what, err)
	}
	return c
}

// readView reads everything b shows in one View.
func (st *store) readView(b state.Backend, what string) *contents {
	st.Helper()
	c := &contents{resources: map[string]*state.ResourceState{}}
	st.view(b, what, func(s state.Snapshot) { c = st.read(s, what) })
	return c
}

// expect is what a store should hold.
type expect struct {
	hosts     map[string]*state.HostState
	resources map[string]*state.ResourceState
}

func newExpect() *expect {
	return &expect{hosts: map[string]*state.HostState{}, resources: map[string]*state.ResourceState{}}
}

// apply records the effect of changes, as a Commit applies them.
func (e *expect) apply(changes ...state.Change) {
	for _, c := range changes {
		switch {
		case c.Kind == state.KindHost && c.Host == nil:
			delete(e.hosts, c.Key)
		case c.Kind == state.KindHost:
			e.hosts[c.Key] = c.Host.Clone()
		case c.Resource == nil:
			delete(e.resources, c.Key)
		default:
			e.resources[c.Key] = c.Resource.Clone()
		}
	}
}

// check compares what s shows with e: the records through Host and
// Resource, and through the iterations (in byte order), and Len.
func (st *store) check(s state.Snapshot, e *expect, what string) {
	st.Helper()
	c := st.read(s, what)
	wantNames := slices.Sorted(mapKeys(e.hosts))
	if got := c.hostNames(); !slices.Equal(got, wantNames) {
		st.Errorf("%s: Hosts yields %q, want %q (byte order)", what, got, wantNames)
	}
	wantKeys := slices.Sorted(mapKeys(e.resources))
	if !slices.Equal(c.keys, wantKeys) {
		st.Errorf("%s: Resources yields %q, want %q (byte order)", what, c.keys, wantKeys)
	}
	if c.nHosts != len(e.hosts) || c.nRes != len(e.resources) {
		st.Errorf("%s: Len = %d, %d; want %d, %d", what, c.nHosts, c.nRes, len(e.hosts), len(e.resources))
	}
	for _, name := range wantNames {
		want := e.hosts[name]
		if got := c.host(name); got != nil && !reflect.DeepEqual(got, want) {
			st.Errorf("%s: Hosts yields host %q as\n%#v\nwant\n%#v", what, name, got, want)
		}
		got, ok, err := s.Host(name)
		switch {
		case err != nil:
			st.Errorf("%s: Host(%q): %v", what, name, err)
		case !ok || got == nil:
			st.Errorf("%s: Host(%q) = %v, %v; want the host", what, name, got, ok)
		case !reflect.DeepEqual(got, want):
			st.Errorf("%s: Host(%q) =\n%#v\nwant\n%#v", what, name, got, want)
		}
	}
	for _, key := range wantKeys {
		want := e.resources[key]
		if got := c.resources[key]; got != nil && !reflect.DeepEqual(got, want) {
			st.Errorf("%s: Resources yields %q as\n%#v\nwant\n%#v", what, key, got, want)
		}
		got, ok, err := s.Resource(key)
		switch {
		case err != nil:
			st.Errorf("%s: Resource(%q): %v", what, key, err)
		case !ok || got == nil:
			st.Errorf("%s: Resource(%q) = %v, %v; want the resource", what, key, got, ok)
		case !reflect.DeepEqual(got, want):
			st.Errorf("%s: Resource(%q) =\n%#v\nwant\n%#v", what, key, got, want)
		}
	}
	types := map[string][]string{}
	for _, key := range wantKeys {
		types[e.resources[key].Type] = append(types[e.resources[key].Type], key)
	}
	types["no-such-type"] = nil
	for typ, want := range types {
		got := st.ofType(s, typ, what)
		if !slices.Equal(got, want) {
			st.Errorf("%s: ResourcesOfType(%q) yields %q, want %q (byte order)", what, typ, got, want)
		}
	}
	for _, absent := range []string{"no-such-record", "\U0010ffff"} {
		if _, ok := e.hosts[absent]; !ok {
			st.checkAbsentHost(s, absent, what)
		}
		if _, ok := e.resources[absent]; !ok {
			st.checkAbsentResource(s, absent, what)
		}
	}
}

// ofType lists the keys ResourcesOfType yields for typ, reporting records
// of another type.
func (st *store) ofType(s state.Snapshot, typ, what string) []string {
	st.Helper()
	var keys []string
	err := state.ResourcesOfType(s, typ, func(key string, r *state.ResourceState) error {
		keys = append(keys, key)
		if r == nil || r.Type != typ {
			st.Errorf("%s: ResourcesOfType(%q) yielded %q, a resource of another type (%v)", what, typ, key, r)
		}
		return nil
	})
	if err != nil {
		st.Errorf("%s: ResourcesOfType(%q): %v", what, typ, err)
	}
	return keys
}

func (st *store) checkAbsentHost(s state.Snapshot, name, what string) {
	st.Helper()
	h, ok, err := s.Host(name)
	if h != nil || ok || err != nil {
		st.Errorf("%s: Host(%q) of an absent host = %v, %v, %v; want nil, false, nil", what, name, h, ok, err)
	}
}

func (st *store) checkAbsentResource(s state.Snapshot, key, what string) {
	st.Helper()
	r, ok, err := s.Resource(key)
	if r != nil || ok || err != nil {
		st.Errorf("%s: Resource(%q) of an absent resource = %v, %v, %v; want nil, false, nil", what, key, r, ok, err)
	}
}

// checkView checks what a new View of b shows.
func (st *store) checkView(b state.Backend, e *expect, what string) {
	st.Helper()
	st.view(b, what, func(s state.Snapshot) { st.check(s, e, what) })
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (st *store) metadata(b state.Backend, what string) state.Metadata {
	st.Helper()
	var m state.Metadata
	st.view(b, what, func(s state.Snapshot) { m = s.Metadata() })
	return m
}

func (s *suite) testNewStore(st *store) {
	b := st.open()
	m := st.metadata(b, "new store")
	if m.Version != state.FormatVersion {
		st.Errorf("new store: Version %q, want %q", m.Version, state.FormatVersion)
	}
	if m.Lineage == "" {
		st.Errorf("new store: no Lineage")
	}
	if m.Serial != 0 {
		st.Errorf("new store: Serial %d, want 0", m.Serial)
	}
	if m.CreatedAt.IsZero() || m.CreatedAt != state.Timestamp(m.CreatedAt) || m.UpdatedAt != state.Timestamp(m.UpdatedAt) {
		st.Errorf("new store: times %v, %v: want set, UTC, no monotonic reading", m.CreatedAt, m.UpdatedAt)
	}
	st.checkView(b, newExpect(), "new store")
	// A store that was never committed to may not exist yet (filebackend
	// creates its file with the first Commit), so its lineage is fixed by
	// the first Commit, and then for good.
	b = st.reopen(b)
	st.checkView(b, newExpect(), "new store, reopened")
	m1, ok := st.commit(b)
	if !ok {
		return
	}
	if m1.Serial != 1 || m1.Lineage == "" || m1.Version != state.FormatVersion {
		st.Errorf("the first Commit, of an empty batch: metadata %+v; want serial 1, a lineage, version %q", m1, state.FormatVersion)
	}
	for range 2 {
		b = st.reopen(b)
		if again := st.metadata(b, "reopened"); again.Lineage != m1.Lineage || again.Serial != 1 {
			st.Errorf("after reopen: lineage %q and serial %d, want %q and 1 (the lineage never changes)", again.Lineage, again.Serial, m1.Lineage)
		}
	}
	st.checkView(b, newExpect(), "after an empty batch")
}

func (s *suite) testRoundTrip(st *store) {
	b := st.open()
	e := newExpect()
	emptyMaps := &state.HostState{Name: "empty-maps", Vars: map[string]any{}, CreatedAt: ts, UpdatedAt: ts}
	emptyData := &state.ResourceState{Type: "ip", Data: map[string]any{}, Tags: map[string]string{}, CreatedAt: ts, UpdatedAt: ts}
	changes := []state.Change{
		putHost(host("web01")),
		putHost(bareHost("bare")),
		putHost(emptyMaps),
		putHost(&state.HostState{Name: "ünï-cödé.x", Port: 65535, Address: "[2001:db8::1]", CreatedAt: ts, UpdatedAt: ts}),
		putHost(&state.HostState{Name: strings.Repeat("n", state.MaxNameLen), User: strings.Repeat("u", 4096)}),
		putHost(&state.HostState{Name: "extreme-times", CreatedAt: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), UpdatedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}),
		putResource("linode:12345678", resource("linode", "12345678")),
		putResource("ip:1", bareResource("ip")),
		putResource("ip:2", emptyData),
		putResource("dns:a.example.com.", resource("dns", "a")),
		putResource(strings.Repeat("k", state.MaxNameLen), bareResource(strings.Repeat("t", state.MaxNameLen))),
		putResource("big", &state.ResourceState{Type: "blob", Data: map[string]any{"blob": strings.Repeat("x", 256<<10)}}),
	}
	// The records are copied first: Commit must not change what it is
	// given.
	given := make([]state.Change, len(changes))
	for i, c := range changes {
		given[i] = state.Change{Kind: c.Kind, Key: c.Key, Host: c.Host.Clone(), Resource: c.Resource.Clone()}
	}
	if m, ok := st.commit(b, changes...); ok && m.Serial != 1 {
		st.Errorf("Commit returned Serial %d, want 1", m.Serial)
	}
	for i := range changes {
		if !reflect.DeepEqual(changes[i], given[i]) {
			st.Errorf("Commit changed the record it was given for %v %q", changes[i].Kind, changes[i].Key)
		}
	}
	e.apply(given...)
	st.checkView(b, e, "after Commit")
	b = st.reopen(b)
	st.checkView(b, e, "after reopen")

	// A put of an existing key replaces the whole record.
	next := &state.HostState{Name: "web01", Address: "192.0.2.99", CreatedAt: ts, UpdatedAt: ts.Add(time.Hour)}
	nextR := &state.ResourceState{Type: "linode", ID: "other", CreatedAt: ts, UpdatedAt: ts.Add(time.Hour)}
	st.commit(b, putHost(next), putResource("linode:12345678", nextR))
	e.apply(putHost(next), putResource("linode:12345678", nextR))
	st.checkView(b, e, "after replacing records")
	b = st.reopen(b)
	st.checkView(b, e, "after replacing records and reopen")
}

// orderNames are host names whose byte order differs from a
// case-insensitive, a Unicode-collated or a numeric one (and that Ansible
// can address); orderKeys are resource keys, which may also hold
// separators and spaces.
var (
	orderNames = []string{
		"web10", "db01", "Web02", "web02", "a-b", "a_b", "a.b", "a", "B", "b",
		"zeta", "ω", "É", "e", "é", "Z", "_x", "x~", "web9", "10", "9",
	}
	orderKeys = []string{"a/b", "a b", "~x", "a:b", "A", "a", "é", "e", "10", "9", "ω", "z/../y"}
)

func (s *suite) testOrdering(st *store) {
	b := st.open()
	e := newExpect()
	var changes []state.Change
	types := []string{"linode", "Linode", "aws", "linode_instance", "linod", "linode\u00e9"}
	for i, n := range orderNames {
		changes = append(changes, putHost(bareHost(n)))
		changes = append(changes, putResource(n+":r", bareResource(types[i%len(types)])))
	}
	for i, k := range orderKeys {
		changes = append(changes, putResource(k, bareResource(types[i%len(types)])))
	}
	st.commit(b, changes...)
	e.apply(changes...)
	want := slices.Clone(orderNames)
	slices.Sort(want)
	st.view(b, "byte order", func(s state.Snapshot) {
		c := st.read(s, "byte order")
		if got := c.hostNames(); !slices.Equal(got, want) {
			st.Errorf("Hosts yields %q, want byte order %q", got, want)
		}
	})
	st.checkView(b, e, "byte order")
	b = st.reopen(b)
	st.checkView(b, e, "byte order after reopen")
}

func (s *suite) testCrossChecks(st *store) {
	b := st.open()
	e := newExpect()
	step := func(what string, changes ...state.Change) {
		st.commit(b, changes...)
		e.apply(changes...)
		st.view(b, what, func(s state.Snapshot) {
			reportCheck(st, what+": CheckSnapshot", state.CheckSnapshot(s))
			st.check(s, e, what)
		})
	}
	step("puts", putHost(host("a")), putHost(host("c")), putResource("r1", resource("t1", "1")), putResource("r2", resource("t2", "2")), putResource("r3", resource("t1", "3")))
	step("more puts", putHost(host("b")), putResource("r0", resource("t2", "0")))
	step("deletes", delHost("c"), delResource("r1"))
	step("type change", putResource("r3", resource("t2", "3")))
	step("an empty batch")
	b = st.reopen(b)
	st.view(b, "after reopen", func(s state.Snapshot) {
		reportCheck(st, "after reopen: CheckSnapshot", state.CheckSnapshot(s))
		st.check(s, e, "after reopen")
	})
}

func (s *suite) testDeletes(st *store) {
	b := st.open()
	e := newExpect()
	puts := []state.Change{putHost(host("a")), putHost(host("b")), putResource("r1", resource("t", "1")), putResource("r2", resource("t", "2"))}
	st.commit(b, puts...)
	e.apply(puts...)
	m0 := st.metadata(b, "before deletes")
	dels := []state.Change{delHost("a"), delResource("r1")}
	m, ok := st.commit(b, dels...)
	e.apply(dels...)
	if ok && m.Serial != m0.Serial+1 {
		st.Errorf("a batch of deletes: Serial %d, want %d", m.Serial, m0.Serial+1)
	}
	st.checkView(b, e, "after deletes")
	// Deleting absent keys is not an error and changes no record; the
	// batch still counts.
	m, ok = st.commit(b, delHost("a"), delHost("never"), delResource("never"))
	if ok && m.Serial != m0.Serial+2 {
		st.Errorf("a batch of deletes of absent keys: Serial %d, want %d", m.Serial, m0.Serial+2)
	}
	st.checkView(b, e, "after deleting absent keys")
	// A key deleted and put back.
	st.commit(b, putHost(bareHost("a")))
	e.apply(putHost(bareHost("a")))
	b = st.reopen(b)
	st.checkView(b, e, "after reopen")
}

func (s *suite) testTypeChange(st *store) {
	b := st.open()
	e := newExpect()
	puts := []state.Change{putResource("k1", resource("linode", "1")), putResource("k2", resource("linode", "2")), putResource("k3", resource("aws", "3"))}
	st.commit(b, puts...)
	e.apply(puts...)
	moves := []state.Change{putResource("k1", resource("aws", "1")), putResource("k3", resource("gcp", "3"))}
	st.commit(b, moves...)
	e.apply(moves...)
	st.checkView(b, e, "after type changes")
	st.commit(b, delResource("k2"))
	e.apply(delResource("k2"))
	st.view(b, "after deleting the last of a type", func(s state.Snapshot) {
		if got := st.ofType(s, "linode", "after deleting the last linode"); len(got) != 0 {
			st.Errorf("ResourcesOfType(linode) yields %q after every linode resource moved or went", got)
		}
	})
	b = st.reopen(b)
	st.checkView(b, e, "after reopen")
}

func (s *suite) testMetadata(st *store) {
	b := st.open()
	m0 := st.metadata(b, "new store")
	// Batch times relative to the store's creation, which is now.
	later := m0.UpdatedAt.Add(24 * time.Hour)
	earlier := m0.UpdatedAt.Add(-24 * time.Hour)
	steps := []struct {
		name  string
		batch *state.Batch
		// updated is what UpdatedAt must be after the step (zero: not
		// earlier than before).
		updated time.Time
	}{
		{"a put", &state.Batch{Time: later, Changes: []state.Change{putHost(bareHost("a"))}}, later},
		{"an empty batch", &state.Batch{Time: later.Add(time.Nanosecond)}, later.Add(time.Nanosecond)},
		{"an earlier batch time", &state.Batch{Time: earlier, Changes: []state.Change{putHost(bareHost("b"))}}, later.Add(time.Nanosecond)},
		{"a delete", &state.Batch{Time: later.Add(time.Hour), Changes: []state.Change{delHost("a")}}, later.Add(time.Hour)},
	}
	prev := m0
	for i, step := range steps {
		m, ok := st.commitBatch(b, step.batch)
		if !ok {
			continue
		}
		stored := st.metadata(b, step.name)
		if !reflect.DeepEqual(m, stored) {
			st.Errorf("%s: Commit returned %+v, a View then shows %+v", step.name, m, stored)
		}
		if m.Serial != m0.Serial+uint64(i)+1 {
			st.Errorf("%s: Serial %d, want %d (one more per batch)", step.name, m.Serial, m0.Serial+uint64(i)+1)
		}
		if m.Lineage != m0.Lineage || m.Version != m0.Version || m.CreatedAt != m0.CreatedAt {
			st.Errorf("%s: Lineage, Version and CreatedAt changed: %+v, was %+v", step.name, m, m0)
		}
		if m.UpdatedAt != step.updated {
			st.Errorf("%s: UpdatedAt %v, want %v (the batch time, never earlier than before)", step.name, m.UpdatedAt, step.updated)
		}
		if m.UpdatedAt.Before(prev.UpdatedAt) {
			st.Errorf("%s: UpdatedAt went back from %v to %v", step.name, prev.UpdatedAt, m.UpdatedAt)
		}
		prev = m
	}
	b = st.reopen(b)
	if again := st.metadata(b, "after reopen"); !reflect.DeepEqual(again, prev) {
		st.Errorf("after reopen: metadata %+v, before %+v", again, prev)
	}
}

func (s *suite) testCopies(st *store) {
	b := st.open()
	e := newExpect()
	puts := []state.Change{putHost(host("web01")), putResource("k", resource("linode", "1"))}
	st.commit(b, puts...)
	e.apply(puts...)
	mutateHost := func(h *state.HostState) {
		if h == nil {
			return
		}
		h.Address = "changed"
		h.Vars["string"] = "changed"
		if n, ok := h.Vars["nested"].(map[string]any); ok {
			if p, ok := n["ports"].([]any); ok && len(p) > 0 {
				p[0] = int64(1)
			}
		}
		if len(h.Groups) > 0 {
			h.Groups[0] = "changed"
		}
	}
	mutateResource := func(r *state.ResourceState) {
		if r == nil {
			return
		}
		r.ID = "changed"
		r.Tags["role"] = "changed"
		if l, ok := r.Data["list"].([]any); ok && len(l) > 0 {
			l[0] = "changed"
		}
	}
	st.view(b, "mutating what a Snapshot hands out", func(s state.Snapshot) {
		h, _, _ := s.Host("web01")
		mutateHost(h)
		s.Hosts(func(h *state.HostState) error { mutateHost(h); return nil })
		r, _, _ := s.Resource("k")
		mutateResource(r)
		s.Resources(func(_ string, r *state.ResourceState) error { mutateResource(r); return nil })
		state.ResourcesOfType(s, "linode", func(_ string, r *state.ResourceState) error { mutateResource(r); return nil })
		// Within the same View too, the records are the caller's.
		st.check(s, e, "the same View, after mutating its records")
	})
	st.checkView(b, e, "a new View, after mutating a Snapshot's records")
	b = st.reopen(b)
	st.checkView(b, e, "after reopen")
}

func (s *suite) testCallbackErrors(st *store) {
	b := st.open()
	st.commit(b, putHost(bareHost("a")), putHost(bareHost("b")), putResource("r1", bareResource("t")), putResource("r2", bareResource("t")))
	stop := errors.New("statetest: stop")
	st.view(b, "callback errors", func(s state.Snapshot) {
		for name, walk := range map[string]func(func() error) error{
			"Hosts": func(cb func() error) error { return s.Hosts(func(*state.HostState) error { return cb() }) },
			"Resources": func(cb func() error) error {
				return s.Resources(func(string, *state.ResourceState) error { return cb() })
			},
			"ResourcesOfType": func(cb func() error) error {
				return state.ResourcesOfType(s, "t", func(string, *state.ResourceState) error { return cb() })
			},
		} {
			n := 0
			err := walk(func() error { n++; return stop })
			if err != stop {
				st.Errorf("%s: a callback's error comes back as %v, want it unchanged", name, err)
			}
			if n != 1 {
				st.Errorf("%s: called the callback %d times after it returned an error, want 1", name, n)
			}
		}
	})
	wrapped := fmt.Errorf("wrapped: %w", stop)
	err := b.View(func(state.Snapshot) error { return wrapped })
	if err != wrapped {
		st.Errorf("View returns fn's error as %v, want it unchanged", err)
	}
}

// waitFor waits up to d for c to be closed and reports whether it was.
func waitFor(c <-chan struct{}, d time.Duration) bool {
	select {
	case <-c:
		return true
	case <-time.After(d):
		return false
	}
}

func (s *suite) testSnapshotIsolation(st *store) {
	b := st.open()
	old := newExpect()
	puts := []state.Change{putHost(bareHost("a")), putResource("r", bareResource("t"))}
	m0, _ := st.commit(b, puts...)
	old.apply(puts...)
	next := newExpect()
	changes := []state.Change{putHost(host("a")), putHost(bareHost("b")), delResource("r"), putResource("s", bareResource("t"))}
	next.apply(puts...)
	next.apply(changes...)

	committed := make(chan struct{})
	var m1 state.Metadata
	var commitErr error
	st.view(b, "a View open while a Commit runs", func(snap state.Snapshot) {
		st.check(snap, old, "before the Commit")
		go func() {
			defer close(committed)
			m1, commitErr = b.Commit(&state.Batch{Time: ts, Changes: changes})
		}()
		// Backends may make a Commit wait for Views; give it the chance
		// to finish, and check the View either way.
		waitFor(committed, 2*time.Second)
		if m := snap.Metadata(); m.Serial != m0.Serial {
			st.Errorf("a View started before a Commit shows serial %d, want %d (as of its start)", m.Serial, m0.Serial)
		}
		st.check(snap, old, "a View started before a Commit, after it")
	})
	if !waitFor(committed, 30*time.Second) {
		st.Fatalf("Commit did not return 30 s after the View ended")
	}
	if commitErr != nil {
		st.Errorf("Commit while a View ran: %v", commitErr)
		return
	}
	if m1.Serial != m0.Serial+1 {
		st.Errorf("Commit returned serial %d, want %d", m1.Serial, m0.Serial+1)
	}
	st.view(b, "a View started after the Commit", func(snap state.Snapshot) {
		if m := snap.Metadata(); m.Serial != m1.Serial {
			st.Errorf("a View started after a Commit returned shows serial %d, want %d", m.Serial, m1.Serial)
		}
		st.check(snap, next, "a View started after the Commit")
	})
}

func (s *suite) testConcurrentCommits(st *store) {
	b := st.open()
	m0 := st.metadata(b, "start")
	const writers, each = 8, 6
	var wg sync.WaitGroup
	var mu sync.Mutex
	serials := map[uint64]string{}
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				name := fmt.Sprintf("w%d-h%d", w, i)
				m, err := b.Commit(&state.Batch{Time: ts, Changes: []state.Change{putHost(bareHost(name))}})
				if err != nil {
					st.Errorf("concurrent Commit of %s: %v", name, err)
					continue
				}
				mu.Lock()
				if prev, dup := serials[m.Serial]; dup {
					st.Errorf("concurrent Commits of %s and %s both returned serial %d", prev, name, m.Serial)
				}
				serials[m.Serial] = name
				mu.Unlock()
			}
		}()
	}
	// Views while the commits run: each sees the store after some number
	// of them, whole: one host per committed batch.
	var views sync.WaitGroup
	views.Add(1)
	torn := false // owned by the viewing goroutine
	go func() {
		defer views.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			err := b.View(func(s state.Snapshot) error {
				m := s.Metadata()
				n, _ := s.Len()
				walked := 0
				s.Hosts(func(*state.HostState) error { walked++; return nil })
				if (uint64(n) != m.Serial-m0.Serial || walked != n) && !torn {
					torn = true // once is enough
					st.Errorf("a View during concurrent Commits: serial %d (start %d), Len %d hosts, Hosts yields %d: not one consistent moment", m.Serial, m0.Serial, n, walked)
				}
				return nil
			})
			if err != nil && !torn {
				torn = true
				st.Errorf("a View during concurrent Commits: %v", err)
			}
		}
	}()
	wg.Wait()
	close(done)
	views.Wait()
	e := newExpect()
	for w := range writers {
		for i := range each {
			e.apply(putHost(bareHost(fmt.Sprintf("w%d-h%d", w, i))))
		}
	}
	if m := st.metadata(b, "after concurrent Commits"); m.Serial != m0.Serial+writers*each {
		st.Errorf("after %d concurrent Commits: serial %d, want %d", writers*each, m.Serial, m0.Serial+writers*each)
	}
	st.checkView(b, e, "after concurrent Commits")
	b = st.reopen(b)
	st.checkView(b, e, "after concurrent Commits and reopen")
}

func (s *suite) testReplace(st *store) {
	b := st.open()
	old := []state.Change{putHost(host("old")), putHost(host("kept")), putResource("old:1", resource("old", "1")), putResource("linode:1", resource("linode", "1"))}
	m0, _ := st.commit(b, old...)
	meta := state.Metadata{Version: state.FormatVersion, Lineage: "replaced-lineage", Serial: m0.Serial + 40, CreatedAt: ts.Add(-time.Hour), UpdatedAt: ts}
	e := newExpect()
	changes := []state.Change{putHost(bareHost("kept")), putHost(host("new")), putResource("linode:1", bareResource("linode")), putResource("linode:2", resource("linode", "2"))}
	e.apply(changes...)
	m, ok := st.commitBatch(b, &state.Batch{Time: ts.Add(time.Hour), Changes: changes, Replace: &meta})
	if ok && !reflect.DeepEqual(m, meta) {
		st.Errorf("Commit with Replace returned metadata %+v, want %+v as given", m, meta)
	}
	check := func(what string) {
		st.view(b, what, func(s state.Snapshot) {
			if got := s.Metadata(); !reflect.DeepEqual(got, meta) {
				st.Errorf("%s: metadata %+v, want %+v", what, got, meta)
			}
			st.check(s, e, what)
			if got := st.ofType(s, "old", what); len(got) != 0 {
				st.Errorf("%s: ResourcesOfType(old) yields %q: records of before the Replace", what, got)
			}
		})
	}
	check("after Replace")
	b = st.reopen(b)
	check("after Replace and reopen")
	// A later commit builds on the replaced metadata.
	if m, ok := st.commit(b, putHost(bareHost("later"))); ok && (m.Serial != meta.Serial+1 || m.Lineage != meta.Lineage) {
		st.Errorf("a Commit after Replace: serial %d, lineage %q; want %d, %q", m.Serial, m.Lineage, meta.Serial+1, meta.Lineage)
	}
	e.apply(putHost(bareHost("later")))
	st.checkView(b, e, "a Commit after Replace")

	// A Replace with no changes empties the store; missing version,
	// lineage or creation time are filled in.
	empty := state.Metadata{Serial: 3}
	m, ok = st.commitBatch(b, &state.Batch{Time: ts, Replace: &empty})
	if ok && (m.Serial != 3 || m.Version != state.FormatVersion || m.Lineage == "" || m.CreatedAt.IsZero()) {
		st.Errorf("Replace with sparse metadata: got %+v; want serial 3 as given, version, lineage and times filled in", m)
	}
	st.checkView(b, newExpect(), "after an empty Replace")
	b = st.reopen(b)
	st.checkView(b, newExpect(), "after an empty Replace and reopen")
}

func (s *suite) testReadOnly(st *store) {
	b := st.open()
	e := newExpect()
	puts := []state.Change{putHost(host("a")), putResource("r", resource("t", "1"))}
	st.commit(b, puts...)
	e.apply(puts...)
	meta := st.metadata(b, "before")
	if err := b.Close(); err != nil {
		st.Errorf("Close: %v", err)
	}

	ro := st.openWith(OpenOptions{ReadOnly: true})
	st.view(ro, "read-only", func(s state.Snapshot) {
		if got := s.Metadata(); !reflect.DeepEqual(got, meta) {
			st.Errorf("read-only: metadata %+v, want %+v", got, meta)
		}
		st.check(s, e, "read-only")
	})
	for name, batch := range map[string]*state.Batch{
		"a put":          {Time: ts, Changes: []state.Change{putHost(bareHost("b"))}},
		"a delete":       {Time: ts, Changes: []state.Change{delHost("a")}},
		"an empty batch": {Time: ts},
		"a Replace":      {Time: ts, Replace: &state.Metadata{Serial: 99}},
	} {
		if _, err := ro.Commit(batch); !errors.Is(err, state.ErrReadOnly) {
			st.Errorf("read-only: Commit of %s: %v, want an error matching state.ErrReadOnly", name, err)
		}
	}
	if _, ok := ro.(state.Checker); ok {
		reportCheck(st, "read-only: Check", state.Check(ro))
	}
	if err := ro.Close(); err != nil {
		st.Errorf("read-only: Close: %v", err)
	}
	b = st.open()
	if got := st.metadata(b, "after the read-only backend"); !reflect.DeepEqual(got, meta) {
		st.Errorf("after refused read-only Commits: metadata %+v, want %+v", got, meta)
	}
	st.checkView(b, e, "after refused read-only Commits")
}

func (s *suite) testCommitErrorLeavesNoTrace(st *store) {
	b := st.open()
	e := newExpect()
	puts := []state.Change{putHost(host("a")), putResource("r", resource("t", "1"))}
	m0, _ := st.commit(b, puts...)
	e.apply(puts...)
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	good := putHost(bareHost("good"))
	mismatch := bareHost("other")
	badTime := bareResource("t")
	badTime.UpdatedAt = far
	bad := map[string]*state.Batch{
		"a host under another name":  {Time: ts, Changes: []state.Change{good, delResource("r"), {Kind: state.KindHost, Key: "wrong", Host: mismatch}}},
		"a record time past 9999":    {Time: ts, Changes: []state.Change{good, putResource("r2", badTime)}},
		"a batch time past 9999":     {Time: far, Changes: []state.Change{good}},
		"a key changed twice":        {Time: ts, Changes: []state.Change{good, delHost("a"), putHost(bareHost("a"))}},
		"an empty key":               {Time: ts, Changes: []state.Change{good, delResource("")}},
		"a put under an invalid key": {Time: ts, Changes: []state.Change{good, putResource("a\nb", bareResource("t"))}},
		"an invalid resource type":   {Time: ts, Changes: []state.Change{good, putResource("k", &state.ResourceState{Type: "", CreatedAt: ts, UpdatedAt: ts})}},
		"a port out of range":        {Time: ts, Changes: []state.Change{good, putHost(&state.HostState{Name: "p", Port: 70000, CreatedAt: ts, UpdatedAt: ts})}},
		"groups without a group":     {Time: ts, Changes: []state.Change{good, putHost(&state.HostState{Name: "g", Groups: []string{"x"}, CreatedAt: ts, UpdatedAt: ts})}},
		"vars nested too deep":       {Time: ts, Changes: []state.Change{good, putHost(&state.HostState{Name: "d", Vars: deepMap(state.MaxValueDepth + 1), CreatedAt: ts, UpdatedAt: ts})}},
		"a string not UTF-8":         {Time: ts, Changes: []state.Change{good, putHost(&state.HostState{Name: "u", Vars: map[string]any{"s": "\xff"}, CreatedAt: ts, UpdatedAt: ts})}},
		"NaN":                        {Time: ts, Changes: []state.Change{good, putResource("n", &state.ResourceState{Type: "t", Data: map[string]any{"n": math.NaN()}, CreatedAt: ts, UpdatedAt: ts})}},
		"an int, not an int64":       {Time: ts, Changes: []state.Change{good, putHost(&state.HostState{Name: "i", Vars: map[string]any{"port": 80}, CreatedAt: ts, UpdatedAt: ts})}},
		"an integral float":          {Time: ts, Changes: []state.Change{good, putHost(&state.HostState{Name: "f", Vars: map[string]any{"port": 80.0}, CreatedAt: ts, UpdatedAt: ts})}},
		"a local time":               {Time: ts, Changes: []state.Change{good, putHost(&state.HostState{Name: "t", CreatedAt: ts.In(time.FixedZone("X", 3600)), UpdatedAt: ts})}},
		"an unknown kind":            {Time: ts, Changes: []state.Change{good, {Kind: 7, Key: "x"}}},
		"a Replace past 9999":        {Time: ts, Changes: []state.Change{good}, Replace: &state.Metadata{CreatedAt: far}},
		"no batch":                   nil,
	}
	for name, batch := range bad {
		if _, err := b.Commit(batch); !errors.Is(err, state.ErrInvalid) {
			st.Errorf("Commit of a batch with %s: %v, want an error matching state.ErrInvalid", name, err)
		}
	}
	st.checkView(b, e, "after refused Commits")
	if m := st.metadata(b, "after refused Commits"); m.Serial != m0.Serial {
		st.Errorf("after refused Commits: serial %d, want %d (unchanged)", m.Serial, m0.Serial)
	}
	// A bad batch fails alone when it is committed beside good ones.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := b.Commit(&state.Batch{Time: ts, Changes: []state.Change{putHost(bareHost(fmt.Sprintf("ok%d", i)))}}); err != nil {
				st.Errorf("a good Commit beside bad ones: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			batch := &state.Batch{Time: ts, Changes: []state.Change{putHost(bareHost(fmt.Sprintf("bad%d", i))), {Kind: state.KindHost, Key: "x", Host: mismatch}}}
			if _, err := b.Commit(batch); !errors.Is(err, state.ErrInvalid) {
				st.Errorf("a bad Commit beside good ones: %v, want an error matching state.ErrInvalid", err)
			}
		}()
		e.apply(putHost(bareHost(fmt.Sprintf("ok%d", i))))
	}
	wg.Wait()
	if m := st.metadata(b, "after good and bad Commits"); m.Serial != m0.Serial+8 {
		st.Errorf("after 8 good and 8 bad Commits: serial %d, want %d", m.Serial, m0.Serial+8)
	}
	st.checkView(b, e, "after good and bad Commits")
	b = st.reopen(b)
	st.checkView(b, e, "after good and bad Commits and reopen")
}

func (s *suite) testCloseWhileViewsRun(st *store) {
	b := st.open()
	e := newExpect()
	puts := []state.Change{putHost(host("a")), putHost(bareHost("b")), putResource("r", resource("t", "1"))}
	st.commit(b, puts...)
	e.apply(puts...)

	const views = 3
	inView := make(chan struct{}, views)
	closing, closed := make(chan struct{}), make(chan struct{})
	var closeErr error
	var wg sync.WaitGroup
	for i := range views {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.View(func(snap state.Snapshot) error {
				inView <- struct{}{}
				<-closing
				// Close has been called: it may wait for this View, or
				// not; either way the Snapshot works until fn returns.
				waitFor(closed, 100*time.Millisecond)
				st.check(snap, e, fmt.Sprintf("View %d, while Close runs", i))
				return nil
			})
			if err != nil {
				st.Errorf("a View while Close runs: %v", err)
			}
		}()
	}
	for range views {
		select {
		case <-inView:
		case <-time.After(30 * time.Second):
			st.Fatalf("Views did not start within 30 s")
		}
	}
	go func() {
		defer close(closed)
		close(closing)
		closeErr = b.Close()
	}()
	wg.Wait()
	if !waitFor(closed, 30*time.Second) {
		st.Fatalf("Close did not return 30 s after the Views ended")
	}
	if closeErr != nil {
		st.Errorf("Close while Views ran: %v", closeErr)
	}
	if err := b.View(func(state.Snapshot) error { return nil }); !errors.Is(err, state.ErrClosed) {
		st.Errorf("View after Close: %v, want an error matching state.ErrClosed", err)
	}
	b = st.open()
	st.checkView(b, e, "after reopen")
}

func (s *suite) testUseAfterClose(st *store) {
	b := st.open()
	e := newExpect()
	st.commit(b, putHost(bareHost("a")))
	e.apply(putHost(bareHost("a")))
	if err := b.Close(); err != nil {
		st.Errorf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		st.Errorf("a second Close: %v, want nil", err)
	}
	called := false
	if err := b.View(func(state.Snapshot) error { called = true; return nil }); !errors.Is(err, state.ErrClosed) {
		st.Errorf("View after Close: %v, want an error matching state.ErrClosed", err)
	}
	if called {
		st.Errorf("View after Close called its function")
	}
	for name, batch := range map[string]*state.Batch{
		"a put":          {Time: ts, Changes: []state.Change{putHost(bareHost("late"))}},
		"an empty batch": {Time: ts},
	} {
		if _, err := b.Commit(batch); !errors.Is(err, state.ErrClosed) {
			st.Errorf("Commit of %s after Close: %v, want an error matching state.ErrClosed", name, err)
		}
	}
	b = st.open()
	st.checkView(b, e, "nothing written after Close")
	if m := st.metadata(b, "after Close"); m.Serial != 1 {
		st.Errorf("after Commits refused by a closed backend: serial %d, want 1", m.Serial)
	}
}

func (s *suite) testManyRecords(st *store) {
	b := st.open()
	e := newExpect()
	// More than a page of the etcd backend's scans (512), in batches that
	// fit in one etcd transaction.
	const n, per = 1100, 100
	for start := 0; start < n; start += per {
		var changes []state.Change
		for i := start; i < start+per/2; i++ {
			changes = append(changes, putHost(bareHost(fmt.Sprintf("host-%05d", n-i))))
			changes = append(changes, putResource(fmt.Sprintf("res:%d", i), bareResource([]string{"a", "b", "c"}[i%3])))
		}
		if _, ok := st.commit(b, changes...); ok {
			e.apply(changes...)
		}
	}
	st.checkView(b, e, fmt.Sprintf("%d records", len(e.hosts)+len(e.resources)))
	b = st.reopen(b)
	st.checkView(b, e, "after reopen")
}

// deepMap returns maps nested depth levels deep.
func deepMap(depth int) map[string]any {
	m := map[string]any{}
	for cur := m; depth > 1; depth-- {
		next := map[string]any{}
		cur["d"] = next
		cur = next
	}
	return m
}
