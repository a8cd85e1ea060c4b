package state_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/inventory"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

// The tests of what a State does on top of its backend, over
// statetest.Memory: Update, timestamps, serials, copies, validation,
// Replace's rules, concurrency, use after Close, inventory. What each
// backend must do is statetest.TestBackend's.

// TestState runs them as subtests, each on a store of its own.
func TestState(t *testing.T) {
	s := &suite{}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"NewStoreMetadata", s.testNewStoreMetadata},
		{"HostRoundTrip", s.testHostRoundTrip},
		{"ResourceRoundTrip", s.testResourceRoundTrip},
		{"ValueModel", s.testValueModel},
		{"MissingKeys", s.testMissingKeys},
		{"Remove", s.testRemove},
		{"Ordering", s.testOrdering},
		{"ReopenPersists", s.testReopenPersists},
		{"UpdateAtomic", s.testUpdateAtomic},
		{"UpdateReadsOwnWrites", s.testUpdateReadsOwnWrites},
		{"Timestamps", s.testTimestamps},
		{"SerialRules", s.testSerialRules},
		{"Copies", s.testCopies},
		{"Validation", s.testValidation},
		{"Replace", s.testReplace},
		{"ReplaceConflicts", s.testReplaceConflicts},
		{"Snapshot", s.testSnapshot},
		{"ConcurrentUse", s.testConcurrentUse},
		{"ConcurrentSameKey", s.testConcurrentSameKey},
		{"UseAfterClose", s.testUseAfterClose},
		{"MergeToInventory", s.testMergeToInventory},
		{"OperationBeginFinish", s.testOperationBeginFinish},
		{"OperationConcurrent", s.testOperationConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.fn)
	}
}

// suite opens States over named in-memory stores, so that a test can
// close and reopen one.
type suite struct{ stores statetest.MemoryStores }

func (s *suite) open(t testing.TB, dir string) state.Backend {
	t.Helper()
	b, err := s.stores.Open(dir)
	require.NoError(t, err)
	return b
}

// openState opens a State on dir and closes it when the test ends (unless
// the test closed it).
func (s *suite) openState(t testing.TB, dir string) *state.State {
	t.Helper()
	st, err := state.Open(s.open(t, dir))
	require.NoError(t, err, "state.Open")
	t.Cleanup(func() { st.Close() })
	return st
}

// reopen closes st and opens the same store again.
func (s *suite) reopen(t testing.TB, st *state.State, dir string) *state.State {
	t.Helper()
	require.NoError(t, st.Close(), "Close")
	return s.openState(t, dir)
}

// everyKind holds a value of every JSON kind, nested, already in the
// normalized model.
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
		"quote\"and.dot": "x",
	}
}

func sampleHost(name string) *state.HostState {
	return &state.HostState{
		Name:    name,
		Address: "192.0.2.10",
		Port:    22,
		User:    "admin",
		Group:   "webservers",
		Groups:  []string{"production", "eu"},
		Vars:    everyKind(),
	}
}

func sampleResource(id string) *state.ResourceState {
	return &state.ResourceState{
		Type: "linode",
		ID:   id,
		Name: "web-" + id,
		Data: everyKind(),
		Tags: map[string]string{"environment": "production", "role": "webserver"},
	}
}

// sameHost compares two hosts field by field with a readable failure.
func sameHost(t testing.TB, want, got *state.HostState, msgAndArgs ...any) {
	t.Helper()
	require.NotNil(t, got, msgAndArgs...)
	assert.Equal(t, want.Name, got.Name, msgAndArgs...)
	assert.Equal(t, want.Address, got.Address, msgAndArgs...)
	assert.Equal(t, want.Port, got.Port, msgAndArgs...)
	assert.Equal(t, want.User, got.User, msgAndArgs...)
	assert.Equal(t, want.Group, got.Group, msgAndArgs...)
	assert.Equal(t, want.Groups, got.Groups, msgAndArgs...)
	assert.True(t, reflect.DeepEqual(want.Vars, got.Vars), "vars differ:\nwant %#v\n got %#v\n%v", want.Vars, got.Vars, fmt.Sprint(msgAndArgs...))
}

func sameResource(t testing.TB, want, got *state.ResourceState, msgAndArgs ...any) {
	t.Helper()
	require.NotNil(t, got, msgAndArgs...)
	assert.Equal(t, want.Type, got.Type, msgAndArgs...)
	assert.Equal(t, want.ID, got.ID, msgAndArgs...)
	assert.Equal(t, want.Name, got.Name, msgAndArgs...)
	assert.True(t, reflect.DeepEqual(want.Data, got.Data), "data differ:\nwant %#v\n got %#v\n%v", want.Data, got.Data, fmt.Sprint(msgAndArgs...))
	assert.Equal(t, want.Tags, got.Tags, msgAndArgs...)
}

func (s *suite) testNewStoreMetadata(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	m := st.Metadata()
	assert.Equal(t, state.FormatVersion, m.Version)
	assert.NotEmpty(t, m.Lineage, "a new store has a lineage")
	assert.Zero(t, m.Serial, "a new store has serial 0")
	hosts, resources := st.Len()
	assert.Zero(t, hosts)
	assert.Zero(t, resources)
	assert.Empty(t, st.AllHosts())
	assert.Empty(t, st.AllResources())

	require.NoError(t, st.AddHost(sampleHost("web01")))
	lineage := st.Metadata().Lineage
	require.NotEmpty(t, lineage)
	st = s.reopen(t, st, dir)
	assert.Equal(t, lineage, st.Metadata().Lineage, "lineage never changes")
	assert.Equal(t, uint64(1), st.Metadata().Serial)
}

func (s *suite) testHostRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	want := sampleHost("web01")
	require.NoError(t, st.AddHost(want))
	got, ok := st.GetHost("web01")
	require.True(t, ok)
	sameHost(t, want, got, "before reopen")
	require.False(t, got.CreatedAt.IsZero())

	st = s.reopen(t, st, dir)
	again, ok := st.GetHost("web01")
	require.True(t, ok, "host survives reopen")
	sameHost(t, want, again, "after reopen")
	assert.True(t, got.CreatedAt == again.CreatedAt, "CreatedAt equal with == after reopen: %v vs %v", got.CreatedAt, again.CreatedAt)
	assert.True(t, got.UpdatedAt == again.UpdatedAt, "UpdatedAt equal with == after reopen")
	assert.True(t, reflect.DeepEqual(got, again), "whole record equal after reopen:\n%#v\n%#v", got, again)

	// A host with no vars and zero port round-trips too.
	bare := &state.HostState{Name: "bare"}
	require.NoError(t, st.AddHost(bare))
	st = s.reopen(t, st, dir)
	b, ok := st.GetHost("bare")
	require.True(t, ok)
	assert.Empty(t, b.Vars)
	assert.Zero(t, b.Port)
}

func (s *suite) testResourceRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	want := sampleResource("12345678")
	require.NoError(t, st.AddResource("linode:12345678", want))
	got, ok := st.GetResource("linode:12345678")
	require.True(t, ok)
	sameResource(t, want, got, "before reopen")

	st = s.reopen(t, st, dir)
	again, ok := st.GetResource("linode:12345678")
	require.True(t, ok, "resource survives reopen")
	sameResource(t, want, again, "after reopen")
	assert.True(t, reflect.DeepEqual(got, again), "whole record equal after reopen:\n%#v\n%#v", got, again)

	bare := &state.ResourceState{Type: "ip"}
	require.NoError(t, st.AddResource("ip:1", bare))
	st = s.reopen(t, st, dir)
	b, ok := st.GetResource("ip:1")
	require.True(t, ok)
	assert.Equal(t, "ip", b.Type)
	assert.Empty(t, b.Data)
	assert.Empty(t, b.Tags)
}

type point struct {
	X int    `json:"x"`
	Y string `json:"y,omitempty"`
}

func (s *suite) testValueModel(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	in := map[string]any{
		"int":       8080,
		"int32":     int32(-5),
		"uint8":     uint8(200),
		"uint64big": uint64(1e19), // beyond int64, exactly a float64
		"float32":   float32(0.5),
		"integral":  80.0,
		"strings":   []string{"a", "b"},
		"ints":      []int{1, 2},
		"strmap":    map[string]string{"k": "v"},
		"intkeys":   map[int]bool{7: true},
		"struct":    point{X: 1},
		"ptr":       &point{X: 2, Y: "z"},
		"nilptr":    (*point)(nil),
		"number":    json.Number("12"),
		"numfloat":  json.Number("1.25"),
		"time":      time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC),
		"bytes":     []byte("hi"),
		"array":     [2]string{"x", "y"},
	}
	want := map[string]any{
		"int":       int64(8080),
		"int32":     int64(-5),
		"uint8":     int64(200),
		"uint64big": float64(1e19),
		"float32":   0.5,
		"integral":  int64(80),
		"strings":   []any{"a", "b"},
		"ints":      []any{int64(1), int64(2)},
		"strmap":    map[string]any{"k": "v"},
		"intkeys":   map[string]any{"7": true},
		"struct":    map[string]any{"x": int64(1)},
		"ptr":       map[string]any{"x": int64(2), "y": "z"},
		"nilptr":    nil,
		"number":    int64(12),
		"numfloat":  1.25,
		"time":      "2024-01-15T10:30:00Z",
		"bytes":     "aGk=",
		"array":     []any{"x", "y"},
	}
	require.NoError(t, st.AddHost(&state.HostState{Name: "h", Vars: in}))
	require.NoError(t, st.AddResource("r", &state.ResourceState{Type: "t", Data: in}))
	check := func(when string) {
		h, ok := st.GetHost("h")
		require.True(t, ok)
		for k, w := range want {
			assert.True(t, reflect.DeepEqual(w, h.Vars[k]), "%s: vars[%q]: want %#v (%T), got %#v (%T)", when, k, w, w, h.Vars[k], h.Vars[k])
		}
		assert.Len(t, h.Vars, len(want))
		r, ok := st.GetResource("r")
		require.True(t, ok)
		assert.True(t, reflect.DeepEqual(want, r.Data), "%s: data normalized the same way", when)
	}
	check("right after AddHost")
	st = s.reopen(t, st, dir)
	check("after reopen")
}

func (s *suite) testMissingKeys(t *testing.T) {
	st := s.openState(t, t.TempDir())
	h, ok := st.GetHost("nope")
	assert.False(t, ok)
	assert.Nil(t, h)
	assert.False(t, st.HasHost("nope"))
	r, ok := st.GetResource("nope")
	assert.False(t, ok)
	assert.Nil(t, r)
	assert.Empty(t, st.GetResourcesByType("nope"))

	before := st.Metadata()
	require.NoError(t, st.RemoveHost("nope"), "removing an absent host is not an error")
	require.NoError(t, st.RemoveResource("nope"), "removing an absent resource is not an error")
	require.NoError(t, st.Update(func(tx *state.Tx) error {
		require.NoError(t, tx.RemoveHost("nope"))
		return tx.RemoveResource("nope")
	}))
	assert.Equal(t, before, st.Metadata(), "removing absent keys changes nothing, serial included")
}

func (s *suite) testRemove(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	require.NoError(t, st.AddHost(sampleHost("a")))
	require.NoError(t, st.AddHost(sampleHost("b")))
	require.NoError(t, st.AddResource("r1", sampleResource("1")))
	require.NoError(t, st.AddResource("r2", sampleResource("2")))
	serial := st.Metadata().Serial

	require.NoError(t, st.RemoveHost("a"))
	require.NoError(t, st.RemoveResource("r1"))
	assert.Equal(t, serial+2, st.Metadata().Serial, "each removal is a change")
	assert.False(t, st.HasHost("a"))
	assert.True(t, st.HasHost("b"))
	_, ok := st.GetResource("r1")
	assert.False(t, ok)
	assert.Len(t, st.GetResourcesByType("linode"), 1, "removal updates the by-type index")

	st = s.reopen(t, st, dir)
	assert.False(t, st.HasHost("a"), "removal survives reopen")
	assert.True(t, st.HasHost("b"))
	_, ok = st.GetResource("r1")
	assert.False(t, ok)
	_, ok = st.GetResource("r2")
	assert.True(t, ok)
	assert.Len(t, st.GetResourcesByType("linode"), 1)
}

func (s *suite) testOrdering(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	names := []string{"web10", "db01", "Web02", "web02", "a-b", "zeta", "ω"}
	for _, n := range names {
		require.NoError(t, st.AddHost(&state.HostState{Name: n}))
	}
	keys := []string{"linode:9", "linode:10", "aws:1", "linode:1"}
	for _, k := range keys {
		typ := strings.SplitN(k, ":", 2)[0]
		require.NoError(t, st.AddResource(k, &state.ResourceState{Type: typ, ID: k}))
	}
	check := func(when string) {
		var got []string
		for _, h := range st.AllHosts() {
			got = append(got, h.Name)
		}
		assert.Equal(t, []string{"Web02", "a-b", "db01", "web02", "web10", "zeta", "ω"}, got, "%s: AllHosts sorted by name", when)
		var ids []string
		for _, r := range st.GetResourcesByType("linode") {
			ids = append(ids, r.ID)
		}
		assert.Equal(t, []string{"linode:1", "linode:10", "linode:9"}, ids, "%s: GetResourcesByType sorted by key, only that type", when)
		all := st.AllResources()
		assert.Len(t, all, 4)
		assert.Equal(t, "aws", all["aws:1"].Type)
	}
	check("before reopen")
	st = s.reopen(t, st, dir)
	check("after reopen")

	// Changing a resource's type moves it between types.
	require.NoError(t, st.AddResource("linode:9", &state.ResourceState{Type: "aws", ID: "moved"}))
	assert.Len(t, st.GetResourcesByType("linode"), 2)
	assert.Len(t, st.GetResourcesByType("aws"), 2)
	st = s.reopen(t, st, dir)
	assert.Len(t, st.GetResourcesByType("linode"), 2, "type change survives reopen")
	assert.Len(t, st.GetResourcesByType("aws"), 2)
}

func (s *suite) testReopenPersists(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	for i := range 50 {
		require.NoError(t, st.AddHost(&state.HostState{Name: fmt.Sprintf("h%03d", i), Port: i, Vars: map[string]any{"i": i}}))
		require.NoError(t, st.AddResource(fmt.Sprintf("r%03d", i), &state.ResourceState{Type: "t", ID: fmt.Sprint(i)}))
	}
	require.NoError(t, st.RemoveHost("h007"))
	meta := st.Metadata()
	hosts := st.AllHosts()
	res := st.AllResources()

	for range 2 {
		st = s.reopen(t, st, dir)
		assert.Equal(t, meta, st.Metadata(), "metadata survives reopen")
		assert.True(t, reflect.DeepEqual(hosts, st.AllHosts()), "hosts survive reopen")
		assert.True(t, reflect.DeepEqual(res, st.AllResources()), "resources survive reopen")
	}
}

var errAbort = errors.New("abort")

func (s *suite) testUpdateAtomic(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	require.NoError(t, st.AddHost(sampleHost("keep")))
	before := st.Metadata()

	err := st.Update(func(tx *state.Tx) error {
		require.NoError(t, tx.AddHost(sampleHost("ghost")))
		require.NoError(t, tx.AddResource("ghost:1", sampleResource("1")))
		require.NoError(t, tx.RemoveHost("keep"))
		return errAbort
	})
	assert.ErrorIs(t, err, errAbort, "Update returns fn's error")
	check := func(when string) {
		assert.False(t, st.HasHost("ghost"), "%s: aborted Update leaves no host", when)
		_, ok := st.GetResource("ghost:1")
		assert.False(t, ok, "%s: aborted Update leaves no resource", when)
		assert.True(t, st.HasHost("keep"), "%s: aborted removal not applied", when)
		assert.Equal(t, before, st.Metadata(), "%s: aborted Update changes no metadata", when)
	}
	check("after abort")

	// An invalid record inside the transaction aborts it too.
	err = st.Update(func(tx *state.Tx) error {
		require.NoError(t, tx.AddHost(sampleHost("ghost")))
		return tx.AddHost(&state.HostState{Name: "bad", Port: 70000})
	})
	assert.ErrorIs(t, err, state.ErrInvalid)
	check("after invalid")
	st = s.reopen(t, st, dir)
	check("after reopen")

	// A successful Update commits everything, as one change.
	require.NoError(t, st.Update(func(tx *state.Tx) error {
		if err := tx.AddResource("linode:1", sampleResource("1")); err != nil {
			return err
		}
		if err := tx.AddHost(sampleHost("web01")); err != nil {
			return err
		}
		return tx.RemoveHost("keep")
	}))
	assert.Equal(t, before.Serial+1, st.Metadata().Serial, "an Update is one change")
	st = s.reopen(t, st, dir)
	assert.True(t, st.HasHost("web01"))
	assert.False(t, st.HasHost("keep"))
	_, ok := st.GetResource("linode:1")
	assert.True(t, ok)
	assert.Equal(t, before.Serial+1, st.Metadata().Serial)
}

func (s *suite) testUpdateReadsOwnWrites(t *testing.T) {
	st := s.openState(t, t.TempDir())
	require.NoError(t, st.AddHost(sampleHost("old")))
	var saved *state.Tx
	require.NoError(t, st.Update(func(tx *state.Tx) error {
		saved = tx
		_, ok := tx.GetHost("new")
		assert.False(t, ok)
		require.NoError(t, tx.AddHost(&state.HostState{Name: "new", Address: "a"}))
		h, ok := tx.GetHost("new")
		require.True(t, ok, "tx sees its own add")
		assert.Equal(t, "a", h.Address)
		require.NoError(t, tx.AddHost(&state.HostState{Name: "new", Address: "b"}))
		h, _ = tx.GetHost("new")
		assert.Equal(t, "b", h.Address, "last staged value wins")

		_, ok = tx.GetHost("old")
		assert.True(t, ok, "tx sees committed records")
		require.NoError(t, tx.RemoveHost("old"))
		_, ok = tx.GetHost("old")
		assert.False(t, ok, "tx sees its own removal")
		assert.True(t, st.HasHost("old"), "nothing visible outside before commit")

		require.NoError(t, tx.AddResource("r", &state.ResourceState{Type: "t", ID: "1"}))
		r, ok := tx.GetResource("r")
		require.True(t, ok)
		assert.Equal(t, "1", r.ID)
		return nil
	}))
	h, ok := st.GetHost("new")
	require.True(t, ok)
	assert.Equal(t, "b", h.Address)
	assert.False(t, st.HasHost("old"))
	assert.Error(t, saved.AddHost(&state.HostState{Name: "late"}), "a Tx cannot be used after Update")
	assert.False(t, st.HasHost("late"))
}

func (s *suite) testTimestamps(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	// The State's clock moves only when the test moves it.
	clock := time.Date(2099, 3, 1, 12, 0, 0, 0, time.Local) // later than the store's creation
	state.SetClock(st, func() time.Time { return clock })
	tick := func() { clock = clock.Add(time.Millisecond) }
	created := st.Metadata().CreatedAt
	start := clock
	bogus := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
	h := sampleHost("web01")
	h.CreatedAt, h.UpdatedAt = bogus, bogus
	require.NoError(t, st.AddHost(h))
	h1, _ := st.GetHost("web01")
	assert.True(t, h1.CreatedAt.Equal(start), "CreatedAt is set by the State's clock, not the caller: %v", h1.CreatedAt)
	assert.Equal(t, h1.CreatedAt, h1.UpdatedAt, "a new host: CreatedAt == UpdatedAt")
	assert.Equal(t, time.UTC, h1.CreatedAt.Location(), "timestamps are UTC")
	assert.Equal(t, h1.CreatedAt.String(), h1.CreatedAt.Round(0).String(), "no monotonic reading")
	m1 := st.Metadata()
	assert.False(t, m1.UpdatedAt.Before(h1.UpdatedAt), "metadata UpdatedAt moves with every change")

	tick()
	h.Address = "192.0.2.99"
	require.NoError(t, st.AddHost(h))
	h2, _ := st.GetHost("web01")
	assert.True(t, h1.CreatedAt == h2.CreatedAt, "update keeps CreatedAt")
	assert.True(t, h2.UpdatedAt.After(h1.UpdatedAt), "update moves UpdatedAt")
	assert.Equal(t, "192.0.2.99", h2.Address)
	m2 := st.Metadata()
	assert.True(t, m2.UpdatedAt.After(m1.UpdatedAt), "metadata UpdatedAt moves")
	assert.True(t, m2.CreatedAt == created, "metadata CreatedAt never moves")

	r := sampleResource("1")
	require.NoError(t, st.AddResource("k", r))
	r1, _ := st.GetResource("k")
	tick()
	r.Name = "renamed"
	require.NoError(t, st.AddResource("k", r))
	r2, _ := st.GetResource("k")
	assert.True(t, r1.CreatedAt == r2.CreatedAt, "resource update keeps CreatedAt")
	assert.True(t, r2.UpdatedAt.After(r1.UpdatedAt))
	assert.Equal(t, "renamed", r2.Name, "update replaces every field")

	st = s.reopen(t, st, dir)
	h3, _ := st.GetHost("web01")
	assert.True(t, h3.CreatedAt == h2.CreatedAt && h3.UpdatedAt == h2.UpdatedAt, "timestamps == after reopen")
	assert.True(t, st.Metadata().UpdatedAt == st.Metadata().UpdatedAt.UTC().Round(0))
}

func (s *suite) testSerialRules(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	serial := st.Metadata().Serial
	steps := []struct {
		name   string
		do     func() error
		change bool
	}{
		{"add host", func() error { return st.AddHost(sampleHost("a")) }, true},
		{"update host", func() error { return st.AddHost(sampleHost("a")) }, true},
		{"add resource", func() error { return st.AddResource("r", sampleResource("1")) }, true},
		{"remove absent host", func() error { return st.RemoveHost("zz") }, false},
		{"remove absent resource", func() error { return st.RemoveResource("zz") }, false},
		{"invalid host", func() error { st.AddHost(&state.HostState{}); return nil }, false},
		{"empty update", func() error { return st.Update(func(*state.Tx) error { return nil }) }, false},
		{"aborted update", func() error {
			st.Update(func(tx *state.Tx) error { tx.AddHost(sampleHost("x")); return errAbort })
			return nil
		}, false},
		{"update of 3", func() error {
			return st.Update(func(tx *state.Tx) error {
				tx.AddHost(sampleHost("b"))
				tx.AddHost(sampleHost("c"))
				return tx.RemoveResource("r")
			})
		}, true},
		{"remove host", func() error { return st.RemoveHost("a") }, true},
		{"save", func() error { return st.Save() }, false},
	}
	for _, step := range steps {
		require.NoError(t, step.do(), step.name)
		if step.change {
			serial++
		}
		assert.Equal(t, serial, st.Metadata().Serial, "serial after %s", step.name)
	}
	st = s.reopen(t, st, dir)
	assert.Equal(t, serial, st.Metadata().Serial, "serial survives reopen")
}

func (s *suite) testCopies(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	in := sampleHost("web01")
	require.NoError(t, st.AddHost(in))
	// The caller may reuse what it passed in.
	in.Address = "changed"
	in.Vars["string"] = "changed"
	in.Vars["nested"].(map[string]any)["ports"].([]any)[0] = int64(1)

	out, _ := st.GetHost("web01")
	sameHost(t, sampleHost("web01"), out, "input mutation did not reach the store")
	// Mutating what was returned changes nothing stored.
	out.Address = "changed"
	out.Vars["new"] = 1
	out.Vars["nested"].(map[string]any)["ports"].([]any)[0] = int64(1)
	again, _ := st.GetHost("web01")
	sameHost(t, sampleHost("web01"), again, "output mutation did not reach the store")
	for _, h := range st.AllHosts() {
		h.Vars["list"].([]any)[0] = "changed"
	}
	again, _ = st.GetHost("web01")
	sameHost(t, sampleHost("web01"), again, "AllHosts hands out copies")

	rin := sampleResource("1")
	require.NoError(t, st.AddResource("k", rin))
	rin.Tags["role"] = "changed"
	rin.Data["nested"].(map[string]any)["deeper"] = "changed"
	r, _ := st.GetResource("k")
	sameResource(t, sampleResource("1"), r)
	r.Tags["role"] = "changed"
	r.Data["string"] = "changed"
	for _, rr := range st.GetResourcesByType("linode") {
		rr.Tags["x"] = "y"
		rr.Data["x"] = "y"
	}
	for _, rr := range st.AllResources() {
		rr.Tags["z"] = "y"
		rr.Data["nested"].(map[string]any)["ports"] = nil
	}
	r, _ = st.GetResource("k")
	sameResource(t, sampleResource("1"), r, "returned resources are copies")

	require.NoError(t, st.Update(func(tx *state.Tx) error {
		h, _ := tx.GetHost("web01")
		h.Vars["string"] = "changed in tx"
		return nil
	}))
	again, _ = st.GetHost("web01")
	sameHost(t, sampleHost("web01"), again, "Tx.GetHost hands out copies")

	st = s.reopen(t, st, dir)
	again, _ = st.GetHost("web01")
	sameHost(t, sampleHost("web01"), again, "nothing mutated reached storage")
}

func (s *suite) testValidation(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	require.NoError(t, st.AddHost(sampleHost("ok")))
	before := st.Metadata()
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	cyclicList := []any{nil}
	cyclicList[0] = cyclicList
	deep := map[string]any{}
	cur := deep
	for range state.MaxValueDepth + 1 {
		next := map[string]any{}
		cur["d"] = next
		cur = next
	}
	hosts := []struct {
		name  string
		host  *state.HostState
		field string
	}{
		{"nil host", nil, ""},
		{"empty name", &state.HostState{}, "name"},
		{"control char", &state.HostState{Name: "a\nb"}, "name"},
		{"nul", &state.HostState{Name: "a\x00b"}, "name"},
		{"too long", &state.HostState{Name: strings.Repeat("x", state.MaxNameLen+1)}, "name"},
		{"bad utf8 name", &state.HostState{Name: "a\xffb"}, "name"},
		{"bad utf8 address", &state.HostState{Name: "a", Address: "\xff"}, "address"},
		{"negative port", &state.HostState{Name: "a", Port: -1}, "port"},
		{"port too big", &state.HostState{Name: "a", Port: 65536}, "port"},
		{"NaN", &state.HostState{Name: "a", Vars: map[string]any{"x": math.NaN()}}, "vars.x"},
		{"Inf", &state.HostState{Name: "a", Vars: map[string]any{"x": []any{math.Inf(1)}}}, "vars.x.0"},
		{"chan", &state.HostState{Name: "a", Vars: map[string]any{"c": make(chan int)}}, "vars.c"},
		{"func", &state.HostState{Name: "a", Vars: map[string]any{"f": func() {}}}, "vars.f"},
		{"complex", &state.HostState{Name: "a", Vars: map[string]any{"z": complex(1, 2)}}, "vars.z"},
		{"cyclic map", &state.HostState{Name: "a", Vars: cyclic}, "vars.self"},
		{"cyclic list", &state.HostState{Name: "a", Vars: map[string]any{"l": cyclicList}}, "vars.l"},
		{"too deep", &state.HostState{Name: "a", Vars: deep}, "vars.d"},
		{"bad utf8 value", &state.HostState{Name: "a", Vars: map[string]any{"s": "\xfe"}}, "vars.s"},
		{"bad map key type", &state.HostState{Name: "a", Vars: map[string]any{"m": map[float64]int{1: 1}}}, "vars.m"},
		// Names Ansible cannot address, and groups that break its inventory.
		{"space in name", &state.HostState{Name: "bad name"}, "name"},
		{"slash in name", &state.HostState{Name: "web/02"}, "name"},
		{"comma in name", &state.HostState{Name: "a,b"}, "name"},
		{"colon in name", &state.HostState{Name: "db:primary"}, "name"},
		{"bracket in name", &state.HostState{Name: "web[1]"}, "name"},
		{"pattern operator", &state.HostState{Name: "!web"}, "name"},
		{"implicit group as name", &state.HostState{Name: "all"}, "name"},
		{"tab in group", &state.HostState{Name: "a", Group: "web\tservers"}, "group"},
		{"_meta group", &state.HostState{Name: "a", Group: "_meta"}, "group"},
		{"_meta by Ansible's name", &state.HostState{Name: "a", Group: "web", Groups: []string{"-meta"}}, "groups.0"},
	}
	for _, tc := range hosts {
		err := st.AddHost(tc.host)
		require.Error(t, err, tc.name)
		assert.ErrorIs(t, err, state.ErrInvalid, tc.name)
		var fe *state.FieldError
		if assert.ErrorAs(t, err, &fe, tc.name) {
			assert.True(t, strings.HasPrefix(fe.Path, tc.field), "%s: error names the field %q, got %q (%v)", tc.name, tc.field, fe.Path, err)
		}
		err = st.Update(func(tx *state.Tx) error { return tx.AddHost(tc.host) })
		assert.ErrorIs(t, err, state.ErrInvalid, "%s in Update", tc.name)
	}
	resources := []struct {
		name, key string
		res       *state.ResourceState
		field     string
	}{
		{"empty key", "", &state.ResourceState{Type: "t"}, "key"},
		{"key control char", "a\tb", &state.ResourceState{Type: "t"}, "key"},
		{"key too long", strings.Repeat("k", state.MaxNameLen+1), &state.ResourceState{Type: "t"}, "key"},
		{"nil resource", "k", nil, ""},
		{"empty type", "k", &state.ResourceState{}, "type"},
		{"type control char", "k", &state.ResourceState{Type: "a\x01"}, "type"},
		{"NaN data", "k", &state.ResourceState{Type: "t", Data: map[string]any{"n": math.NaN()}}, "data.n"},
		{"bad utf8 tag", "k", &state.ResourceState{Type: "t", Tags: map[string]string{"k": "\xff"}}, "tags.k"},
	}
	for _, tc := range resources {
		err := st.AddResource(tc.key, tc.res)
		require.Error(t, err, tc.name)
		assert.ErrorIs(t, err, state.ErrInvalid, tc.name)
		var fe *state.FieldError
		if assert.ErrorAs(t, err, &fe, tc.name) {
			assert.True(t, strings.HasPrefix(fe.Path, tc.field), "%s: error names the field %q, got %q", tc.name, tc.field, fe.Path)
		}
		err = st.Update(func(tx *state.Tx) error { return tx.AddResource(tc.key, tc.res) })
		assert.ErrorIs(t, err, state.ErrInvalid, "%s in Update", tc.name)
	}
	// Host names may hold the punctuation Ansible addresses; resource keys
	// path separators and spaces too.
	for _, name := range []string{"a.b_c-d", "web-01.example.com", "ünïcode", "2001:db8::1", "10.0.0.1", "web*"} {
		require.NoError(t, st.AddHost(&state.HostState{Name: name}), name)
		require.NoError(t, st.RemoveHost(name))
	}
	for _, key := range []string{"a/b", "../x", "with space", "dns:a.b/A"} {
		require.NoError(t, st.AddResource(key, &state.ResourceState{Type: "t"}), key)
		require.NoError(t, st.RemoveResource(key))
	}
	after := st.Metadata()
	assert.Equal(t, before.Serial+20, after.Serial, "only the 20 valid changes were written")
	st = s.reopen(t, st, dir)
	assert.Len(t, st.AllHosts(), 1, "nothing invalid was stored")
	assert.Empty(t, st.AllResources())
}

func (s *suite) testReplace(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	require.NoError(t, st.AddHost(sampleHost("old")))
	require.NoError(t, st.AddResource("old:1", sampleResource("1")))
	cur := st.Metadata()
	ts := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	doc := &state.Contents{
		Metadata: state.Metadata{Version: "1.0", CreatedAt: ts, UpdatedAt: ts.Add(time.Hour), Serial: cur.Serial, Lineage: cur.Lineage},
		Hosts: map[string]*state.HostState{
			"web01": {Name: "web01", Address: "192.168.1.10", Port: 22, Vars: map[string]any{"http_port": 80}, CreatedAt: ts, UpdatedAt: ts},
		},
		Resources: map[string]*state.ResourceState{
			"linode:1": {Type: "linode", ID: "1", CreatedAt: ts, UpdatedAt: ts},
		},
	}
	require.NoError(t, st.Replace(doc, false))
	check := func(when string) {
		assert.False(t, st.HasHost("old"), "%s: old contents gone", when)
		_, ok := st.GetResource("old:1")
		assert.False(t, ok, when)
		h, ok := st.GetHost("web01")
		require.True(t, ok, when)
		assert.Equal(t, int64(80), h.Vars["http_port"], "%s: imported values normalized", when)
		assert.True(t, h.CreatedAt == ts, "%s: imported records keep their timestamps", when)
		assert.Len(t, st.GetResourcesByType("linode"), 1, when)
		assert.Empty(t, st.GetResourcesByType("old"), when)
		m := st.Metadata()
		assert.Equal(t, cur.Lineage, m.Lineage, when)
		assert.Equal(t, cur.Serial+1, m.Serial, "%s: the import is a change", when)
		assert.True(t, m.CreatedAt == ts, when)
	}
	check("after Replace")
	st = s.reopen(t, st, dir)
	check("after reopen")

	// An invalid document is refused whole.
	bad := &state.Contents{Metadata: st.Metadata(), Hosts: map[string]*state.HostState{
		"good": {Name: "good"},
		"web9": {Name: "web9", Port: 99999},
	}}
	err := st.Replace(bad, true)
	require.ErrorIs(t, err, state.ErrInvalid)
	assert.Contains(t, err.Error(), "hosts.web9.port")
	mismatch := &state.Contents{Hosts: map[string]*state.HostState{"a": {Name: "b"}}}
	assert.ErrorIs(t, st.Replace(mismatch, true), state.ErrInvalid, "a host stored under another name")
	check("after refused Replace")
}

func (s *suite) testReplaceConflicts(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	// Into an empty store, a document without lineage or serial imports.
	plain := &state.Contents{Hosts: map[string]*state.HostState{"a": {Name: "a"}}}
	require.NoError(t, st.Replace(plain, false))
	lineage := st.Metadata().Lineage
	assert.NotEmpty(t, lineage, "store keeps a lineage")
	require.NoError(t, st.AddHost(sampleHost("b")))
	cur := st.Metadata()

	cases := []struct {
		name string
		meta state.Metadata
	}{
		{"no lineage", state.Metadata{}},
		{"other lineage", state.Metadata{Lineage: "other", Serial: cur.Serial + 5}},
		{"older serial", state.Metadata{Lineage: lineage, Serial: cur.Serial - 1}},
	}
	for _, tc := range cases {
		doc := &state.Contents{Metadata: tc.meta, Hosts: map[string]*state.HostState{"x": {Name: "x"}}}
		var ce *state.ConflictError
		assert.ErrorAs(t, st.CheckReplace(doc, false), &ce, "%s: CheckReplace agrees", tc.name)
		assert.NoError(t, st.CheckReplace(doc, true), "%s: forced", tc.name)
		err := st.Replace(doc, false)
		assert.ErrorIs(t, err, state.ErrConflict, tc.name)
		assert.ErrorAs(t, err, &ce, tc.name)
		assert.True(t, st.HasHost("b"), "%s: refused import changes nothing", tc.name)
		assert.Equal(t, cur, st.Metadata(), tc.name)
	}
	// Same lineage, same or newer serial: accepted.
	require.NoError(t, st.Replace(&state.Contents{Metadata: state.Metadata{Lineage: lineage, Serial: cur.Serial}}, false))
	assert.Equal(t, cur.Serial+1, st.Metadata().Serial)
	// Forced: anything goes; the lineage becomes the document's.
	require.NoError(t, st.Replace(&state.Contents{Metadata: state.Metadata{Lineage: "forced", Serial: 1}, Hosts: map[string]*state.HostState{"x": {Name: "x"}}}, true))
	assert.Equal(t, "forced", st.Metadata().Lineage)
	assert.Equal(t, cur.Serial+2, st.Metadata().Serial, "serial never goes back")
	st = s.reopen(t, st, dir)
	assert.Equal(t, "forced", st.Metadata().Lineage)
	assert.True(t, st.HasHost("x"))
	assert.False(t, st.HasHost("b"))
}

func (s *suite) testSnapshot(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	require.NoError(t, st.AddHost(sampleHost("b")))
	require.NoError(t, st.AddHost(sampleHost("a")))
	require.NoError(t, st.AddResource("linode:2", sampleResource("2")))
	require.NoError(t, st.AddResource("linode:1", sampleResource("1")))
	require.NoError(t, st.AddResource("aws:1", &state.ResourceState{Type: "aws"}))
	meta := st.Metadata()
	check := func(v state.Viewer, what string) {
		require.NoError(t, v.View(func(snap state.Snapshot) error {
			assert.Equal(t, meta, snap.Metadata(), what)
			nh, nr := snap.Len()
			assert.Equal(t, 2, nh, what)
			assert.Equal(t, 3, nr, what)
			h, ok, err := snap.Host("a")
			require.NoError(t, err)
			require.True(t, ok)
			sameHost(t, sampleHost("a"), h, what)
			h.Vars["string"] = "mutated"
			_, ok, err = snap.Host("zz")
			assert.NoError(t, err)
			assert.False(t, ok)
			r, ok, err := snap.Resource("linode:1")
			require.NoError(t, err)
			require.True(t, ok)
			sameResource(t, sampleResource("1"), r, what)
			_, ok, _ = snap.Resource("zz")
			assert.False(t, ok)

			var names, keys, typed []string
			require.NoError(t, snap.Hosts(func(h *state.HostState) error { names = append(names, h.Name); return nil }))
			require.NoError(t, snap.Resources(func(k string, _ *state.ResourceState) error { keys = append(keys, k); return nil }))
			require.NoError(t, state.ResourcesOfType(snap, "linode", func(k string, r *state.ResourceState) error {
				assert.Equal(t, "linode", r.Type)
				typed = append(typed, k)
				return nil
			}))
			assert.Equal(t, []string{"a", "b"}, names, what)
			assert.Equal(t, []string{"aws:1", "linode:1", "linode:2"}, keys, what)
			assert.Equal(t, []string{"linode:1", "linode:2"}, typed, what)
			stop := errors.New("stop")
			n := 0
			err = snap.Hosts(func(*state.HostState) error { n++; return stop })
			assert.ErrorIs(t, err, stop, "callback errors stop the iteration")
			assert.Equal(t, 1, n)
			assert.ErrorIs(t, state.ResourcesOfType(snap, "linode", func(string, *state.ResourceState) error { return stop }), stop)
			return nil
		}))
		require.NoError(t, v.View(func(snap state.Snapshot) error {
			h, _, _ := snap.Host("a")
			sameHost(t, sampleHost("a"), h, what+": snapshot records are copies")
			return nil
		}))
	}
	check(st, "State snapshot")
	st = s.reopen(t, st, dir)
	check(st, "State snapshot after reopen")
	require.NoError(t, st.View(func(snap state.Snapshot) error {
		assert.NoError(t, state.CheckSnapshot(snap), "a State's snapshot passes the cross-checks")
		_, indexed := snap.(state.TypeIndex)
		assert.True(t, indexed, "a State's snapshot has a type index")
		return nil
	}))
}

func (s *suite) testConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	const workers, perWorker = 16, 25
	start := st.Metadata().Serial
	var wg sync.WaitGroup
	var mu sync.Mutex
	changes := 0
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				host := fmt.Sprintf("w%02d-h%02d", w, i)
				key := fmt.Sprintf("w%02d:r%02d", w, i)
				var err error
				switch i % 5 {
				case 0, 1:
					err = st.AddHost(&state.HostState{Name: host, Port: i, Vars: map[string]any{"w": w, "i": i}})
				case 2:
					err = st.AddResource(key, &state.ResourceState{Type: fmt.Sprintf("type%d", w%3), ID: key})
				case 3:
					err = st.Update(func(tx *state.Tx) error {
						if err := tx.AddResource(key, &state.ResourceState{Type: "pair", ID: key}); err != nil {
							return err
						}
						return tx.AddHost(&state.HostState{Name: host, Port: i})
					})
				case 4:
					prev := fmt.Sprintf("w%02d-h%02d", w, i-1) // added by the case-3 Update
					err = st.RemoveHost(prev)
				}
				assert.NoError(t, err)
				mu.Lock()
				changes++ // every step above changes the store
				mu.Unlock()
				// Mixed reads while others write.
				st.GetHost(host)
				st.HasHost(host)
				st.GetResourcesByType("pair")
				if i%10 == 0 {
					st.AllHosts()
					st.AllResources()
					st.Metadata()
					st.View(func(snap state.Snapshot) error { snap.Len(); return nil })
				}
			}
		})
	}
	wg.Wait()
	check := func(when string) {
		for w := range workers {
			for i := range perWorker {
				host := fmt.Sprintf("w%02d-h%02d", w, i)
				key := fmt.Sprintf("w%02d:r%02d", w, i)
				h, hok := st.GetHost(host)
				r, rok := st.GetResource(key)
				switch i % 5 {
				case 0, 1:
					if assert.True(t, hok, "%s: %s", when, host) {
						assert.Equal(t, map[string]any{"w": int64(w), "i": int64(i)}, h.Vars)
					}
					assert.False(t, rok)
				case 2:
					assert.False(t, hok)
					if assert.True(t, rok, "%s: %s", when, key) {
						assert.Equal(t, fmt.Sprintf("type%d", w%3), r.Type)
					}
				case 3:
					assert.False(t, hok, "%s: %s removed by the next step", when, host)
					assert.True(t, rok, "%s: %s", when, key)
				}
			}
		}
		assert.Len(t, st.GetResourcesByType("pair"), workers*perWorker/5, when)
		assert.Equal(t, start+uint64(changes), st.Metadata().Serial, "%s: one serial step per change", when)
	}
	check("in memory")
	st = s.reopen(t, st, dir)
	check("after reopen")
}

func (s *suite) testConcurrentSameKey(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 10 {
				v := map[string]any{"writer": w, "i": i}
				if i%2 == 0 {
					assert.NoError(t, st.AddHost(&state.HostState{Name: "shared", Vars: v}))
				} else {
					assert.NoError(t, st.Update(func(tx *state.Tx) error {
						if err := tx.AddResource("shared", &state.ResourceState{Type: "t", Data: v}); err != nil {
							return err
						}
						return tx.AddHost(&state.HostState{Name: "shared", Vars: v})
					}))
				}
			}
		})
	}
	wg.Wait()
	mem, _ := st.GetHost("shared")
	memR, _ := st.GetResource("shared")
	st = s.reopen(t, st, dir)
	disk, _ := st.GetHost("shared")
	diskR, _ := st.GetResource("shared")
	assert.True(t, reflect.DeepEqual(mem, disk), "memory and storage agree on the last value:\n%#v\n%#v", mem, disk)
	assert.True(t, reflect.DeepEqual(memR, diskR), "memory and storage agree on the last resource value")
}

func (s *suite) testUseAfterClose(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	require.NoError(t, st.AddHost(sampleHost("a")))
	require.NoError(t, st.AddResource("r", sampleResource("1")))
	require.NoError(t, st.Close())

	closed := map[string]error{
		"AddHost":        st.AddHost(sampleHost("b")),
		"RemoveHost":     st.RemoveHost("a"),
		"AddResource":    st.AddResource("r2", sampleResource("2")),
		"RemoveResource": st.RemoveResource("r"),
		"Update":         st.Update(func(tx *state.Tx) error { return tx.AddHost(sampleHost("c")) }),
		"Save":           st.Save(),
		"Replace":        st.Replace(&state.Contents{}, true),
		"View":           st.View(func(state.Snapshot) error { return nil }),
		"Close":          st.Close(),
	}
	for name, err := range closed {
		assert.ErrorIs(t, err, state.ErrClosed, name)
	}
	h, ok := st.GetHost("a")
	assert.Nil(t, h)
	assert.False(t, ok)
	assert.False(t, st.HasHost("a"))
	r, ok := st.GetResource("r")
	assert.Nil(t, r)
	assert.False(t, ok)
	assert.Empty(t, st.AllHosts())
	assert.Empty(t, st.AllResources())
	assert.Empty(t, st.GetResourcesByType("linode"))
	assert.Zero(t, st.Metadata())

	// Nothing written after Close reached the store.
	st = s.openState(t, dir)
	assert.True(t, st.HasHost("a"))
	assert.False(t, st.HasHost("b"))
	assert.False(t, st.HasHost("c"))
}

func (s *suite) testMergeToInventory(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	require.NoError(t, st.AddHost(&state.HostState{Name: "web01", Address: "192.0.2.1", Port: 22, User: "admin", Group: "web", Vars: map[string]any{"http_port": 80}}))
	require.NoError(t, st.AddHost(&state.HostState{Name: "web02", Group: "web"}))
	require.NoError(t, st.AddHost(&state.HostState{Name: "lonely"}))
	st = s.reopen(t, st, dir)

	inv := inventory.New()
	require.NoError(t, st.MergeToInventory(inv))
	assert.Equal(t, []string{"all", "web"}, inv.Groups())
	h, groups, ok := inv.Host("web01")
	require.True(t, ok)
	assert.Equal(t, []string{"web"}, groups)
	assert.Equal(t, &inventory.Host{Name: "web01", Address: "192.0.2.1", Port: 22, User: "admin", Vars: map[string]any{"http_port": int64(80)}}, h)
	_, groups, _ = inv.Host("lonely")
	assert.Equal(t, []string{"all"}, groups, "a host without a group goes to all")
	assert.Len(t, inv.Hosts("web"), 2)

	// The inventory holds copies: changing it changes nothing stored.
	h.Vars["http_port"] = 1
	inv.Hosts("web")[0].Vars["x"] = 1
	got, _ := st.GetHost("web01")
	assert.Equal(t, map[string]any{"http_port": int64(80)}, got.Vars)

	back := state.FromInventoryHost(h, "web")
	assert.Equal(t, "web", back.Group)
	assert.Equal(t, "192.0.2.1", back.Address)
}

// testOperationBeginFinish drives the State API: begin,
// reopen (a crash between begin and finish), reconcile, finish.
func (s *suite) testOperationBeginFinish(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	op, err := st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: "linode:1", Host: "web01",
		Data: map[string]any{"token": "t-1", "request": map[string]any{"size": 2}}})
	require.NoError(t, err)
	other, err := st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: "linode:2"})
	require.NoError(t, err)
	serial := st.Metadata().Serial

	st = s.reopen(t, st, dir)
	pending := st.PendingOperations()
	require.Len(t, pending, 2, "pending operations survive a reopen")
	assert.True(t, reflect.DeepEqual(op, pending[0]), "exactly:\n%#v\n%#v", op, pending[0])
	assert.Equal(t, serial, st.Metadata().Serial)

	require.NoError(t, st.FinishOperation(op.ID, func(tx *state.Tx) error {
		if err := tx.AddResource("linode:1", sampleResource("1")); err != nil {
			return err
		}
		return tx.AddHost(sampleHost("web01"))
	}))
	require.NoError(t, st.AbandonOperation(other.ID))
	assert.ErrorIs(t, st.AbandonOperation(other.ID), state.ErrInvalid)
	assert.Equal(t, serial+2, st.Metadata().Serial, "a finish and an abandon are one change each")

	st = s.reopen(t, st, dir)
	assert.Empty(t, st.PendingOperations())
	assert.True(t, st.HasHost("web01"))
	_, ok := st.GetResource("linode:1")
	assert.True(t, ok)
}

// testOperationConcurrent runs writers that begin and finish operations
// concurrently (each finish with its resource) and checks that every one
// is finished exactly once, with nothing left pending.
func (s *suite) testOperationConcurrent(t *testing.T) {
	dir := t.TempDir()
	st := s.openState(t, dir)
	const writers, each = 8, 10
	serial := st.Metadata().Serial
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("vm:%d-%d", w, i)
				op, err := st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: key})
				if !assert.NoError(t, err) {
					return
				}
				assert.NoError(t, st.FinishOperation(op.ID, func(tx *state.Tx) error {
					return tx.AddResource(key, &state.ResourceState{Type: "vm", ID: op.ID})
				}))
			}
		})
	}
	wg.Wait()
	assert.Empty(t, st.PendingOperations())
	assert.Equal(t, serial+2*writers*each, st.Metadata().Serial, "begin and finish are one change each")
	st = s.reopen(t, st, dir)
	_, nr := st.Len()
	assert.Equal(t, writers*each, nr)
	assert.Empty(t, st.PendingOperations())
}
