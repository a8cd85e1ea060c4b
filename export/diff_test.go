package export_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

// fixed is a Viewer over contents given as they are, so tests control
// timestamps and metadata.
type fixed struct{ c state.Contents }

func (f *fixed) View(fn func(state.Snapshot) error) error { return fn(state.NewSnapshot(&f.c)) }

var (
	t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
)

// store returns a Viewer holding hosts and resources (by key), every
// record written at t0, with metadata serial 1.
func store(hosts []*state.HostState, resources map[string]*state.ResourceState) *fixed {
	c := state.Contents{
		Metadata:  state.Metadata{Version: "1.0", CreatedAt: t0, UpdatedAt: t0, Serial: 1, Lineage: "lin-a"},
		Hosts:     map[string]*state.HostState{},
		Resources: map[string]*state.ResourceState{},
	}
	for _, h := range hosts {
		h = h.Clone()
		if h.CreatedAt.IsZero() {
			h.CreatedAt, h.UpdatedAt = t0, t0
		}
		c.Hosts[h.Name] = h
	}
	for k, r := range resources {
		r = r.Clone()
		if r.CreatedAt.IsZero() {
			r.CreatedAt, r.UpdatedAt = t0, t0
		}
		c.Resources[k] = r
	}
	return &fixed{c}
}

func diffText(t testing.TB, a, b state.Viewer, opts *export.DiffOptions) string {
	t.Helper()
	res, err := export.Diff(a, b, opts)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, res.WriteText(&buf))
	return buf.String()
}

func lines(s ...string) string {
	if len(s) == 0 {
		return ""
	}
	return strings.Join(s, "\n") + "\n"
}

func TestDiff_EqualStates(t *testing.T) {
	h := &state.HostState{Name: "web01", Address: "10.0.0.1", Port: 22, Vars: nestedVars()}
	r := &state.ResourceState{Type: "linode", ID: "1", Data: nestedVars(), Tags: map[string]string{"a": "b"}}
	a := store([]*state.HostState{h}, map[string]*state.ResourceState{"linode:1": r})
	b := store([]*state.HostState{h}, map[string]*state.ResourceState{"linode:1": r})
	b.c.Metadata.Serial = 7 // metadata is not compared by default

	res, err := export.Diff(a, b, nil)
	require.NoError(t, err)
	assert.True(t, res.Empty())
	assert.Empty(t, res.Changes)

	var buf bytes.Buffer
	require.NoError(t, res.WriteText(&buf))
	assert.Empty(t, buf.String())
	buf.Reset()
	require.NoError(t, res.WriteJSON(&buf))
	assert.JSONEq(t, `{"changes": [], "summary": {
		"hosts": {"add": 0, "change": 0, "remove": 0},
		"resources": {"add": 0, "change": 0, "remove": 0},
		"operations": {"add": 0, "change": 0, "remove": 0},
		"metadata": {"add": 0, "change": 0, "remove": 0}}}`, buf.String())
}

func TestDiff_HostsAddedRemovedChanged(t *testing.T) {
	a := store([]*state.HostState{
		{Name: "a-only", Address: "10.0.0.9"},
		{Name: "web01", Address: "192.168.1.10", Port: 22, User: "admin", Group: "web"},
		{Name: "web02", Address: "192.168.1.12"},
	}, nil)
	b := store([]*state.HostState{
		{Name: "web01", Address: "192.168.1.11", Port: 2222, User: "", Group: "app"},
		{Name: "web02", Address: "192.168.1.12"},
		{Name: "web03", Address: "192.168.1.13"},
	}, nil)

	res, err := export.Diff(a, b, nil)
	require.NoError(t, err)
	assert.False(t, res.Empty())
	assert.Equal(t, lines(
		`- hosts.a-only`,
		`~ hosts.web01.address: "192.168.1.10" -> "192.168.1.11"`,
		`~ hosts.web01.port: 22 -> 2222`,
		`~ hosts.web01.user: "admin" -> ""`,
		`~ hosts.web01.group: "web" -> "app"`,
		`+ hosts.web03`,
	), diffText(t, a, b, nil))

	c := res.Changes[1]
	assert.Equal(t, export.Change{Op: export.OpChange, Kind: export.KindHost, Key: "web01", Field: "address",
		Path: "hosts.web01.address", Old: "192.168.1.10", New: "192.168.1.11"}, c)
	removed := res.Changes[0]
	assert.Equal(t, export.OpRemove, removed.Op)
	assert.Equal(t, "", removed.Field)
	assert.Equal(t, "10.0.0.9", removed.Old.(*state.HostState).Address)
	assert.Nil(t, removed.New)
	added := res.Changes[5]
	assert.Equal(t, "web03", added.New.(*state.HostState).Name)
	assert.Nil(t, added.Old)

	assert.Equal(t, export.Summary{Hosts: export.Counts{Add: 1, Change: 1, Remove: 1}}, res.Summary())
}

func TestDiff_NestedValues(t *testing.T) {
	a := store([]*state.HostState{{Name: "h", Vars: map[string]any{
		"same":     map[string]any{"x": int64(1), "l": []any{"a", map[string]any{"k": "v"}}},
		"changed":  map[string]any{"x": int64(1), "y": "old"},
		"list":     []any{int64(1), int64(2), int64(3)},
		"shrink":   []any{"a", "b"},
		"objlist":  []any{map[string]any{"name": "eth0", "ip": "10.0.0.1"}},
		"retyped":  map[string]any{"a": int64(1)},
		"nulled":   "x",
		"empty":    nil,
		"float":    1.5,
		"gone":     map[string]any{"deep": true},
		"a b":      "quoted key",
		"lst_null": []any{nil},
	}}}, nil)
	b := store([]*state.HostState{{Name: "h", Vars: map[string]any{
		"same":     map[string]any{"x": int64(1), "l": []any{"a", map[string]any{"k": "v"}}},
		"changed":  map[string]any{"x": int64(2), "z": "new"},
		"list":     []any{int64(1), int64(5), int64(3), int64(4)},
		"shrink":   []any{"a"},
		"objlist":  []any{map[string]any{"name": "eth0", "ip": "10.0.0.2"}},
		"retyped":  "now a string",
		"nulled":   nil,
		"empty":    map[string]any{},
		"float":    int64(2),
		"added":    []any{},
		"a b":      "still quoted",
		"lst_null": []any{false},
	}}}, nil)

	assert.Equal(t, lines(
		`~ hosts.h.vars."a b": "quoted key" -> "still quoted"`,
		`+ hosts.h.vars.added: []`,
		`~ hosts.h.vars.changed.x: 1 -> 2`,
		`- hosts.h.vars.changed.y: "old"`,
		`+ hosts.h.vars.changed.z: "new"`,
		`~ hosts.h.vars.empty: null -> {}`,
		`~ hosts.h.vars.float: 1.5 -> 2`,
		`- hosts.h.vars.gone: {"deep":true}`,
		`~ hosts.h.vars.list.1: 2 -> 5`,
		`+ hosts.h.vars.list.3: 4`,
		`~ hosts.h.vars.lst_null.0: null -> false`,
		`~ hosts.h.vars.nulled: "x" -> null`,
		`~ hosts.h.vars.objlist.0.ip: "10.0.0.1" -> "10.0.0.2"`,
		`~ hosts.h.vars.retyped: {"a":1} -> "now a string"`,
		`- hosts.h.vars.shrink.1: "b"`,
	), diffText(t, a, b, nil))
}

func TestDiff_NilAndEmptyMapsAreEqual(t *testing.T) {
	a := store([]*state.HostState{{Name: "h"}}, map[string]*state.ResourceState{"r": {Type: "t"}})
	b := store([]*state.HostState{{Name: "h", Vars: map[string]any{}}},
		map[string]*state.ResourceState{"r": {Type: "t", Data: map[string]any{}, Tags: map[string]string{}}})
	assert.Empty(t, diffText(t, a, b, nil))
	c := store([]*state.HostState{{Name: "h", Vars: map[string]any{"k": "v"}}}, nil)
	assert.Equal(t, lines(`+ hosts.h.vars.k: "v"`, `- resources.r`), diffText(t, a, c, nil))
}

func TestDiff_Resources(t *testing.T) {
	a := store(nil, map[string]*state.ResourceState{
		"dns:www":  {Type: "dns", ID: "www", Data: map[string]any{"ttl": int64(300)}},
		"linode:1": {Type: "linode", ID: "1", Name: "web01", Data: map[string]any{"ipv4": []any{"192.168.1.10"}}, Tags: map[string]string{"env": "prod", "old": "x"}},
		"s3:b/c":   {Type: "s3", ID: "c"},
	})
	b := store(nil, map[string]*state.ResourceState{
		"linode:1":  {Type: "linode", ID: "1", Name: "web01-renamed", Data: map[string]any{"ipv4": []any{"192.168.1.11"}}, Tags: map[string]string{"env": "stage", "new": "y"}},
		"linode:2":  {Type: "linode", ID: "2"},
		"s3:b/c":    {Type: "s3", ID: "c"},
		"dns:www.x": {Type: "dns", ID: "www.x"},
	})
	assert.Equal(t, lines(
		`- resources.dns:www`,
		`+ resources."dns:www.x"`,
		`~ resources.linode:1.name: "web01" -> "web01-renamed"`,
		`~ resources.linode:1.data.ipv4.0: "192.168.1.10" -> "192.168.1.11"`,
		`~ resources.linode:1.tags.env: "prod" -> "stage"`,
		`+ resources.linode:1.tags.new: "y"`,
		`- resources.linode:1.tags.old: "x"`,
		`+ resources.linode:2`,
	), diffText(t, a, b, nil))
	res, err := export.Diff(a, b, nil)
	require.NoError(t, err)
	assert.Equal(t, export.Summary{Resources: export.Counts{Add: 2, Change: 1, Remove: 1}}, res.Summary())
	assert.Equal(t, "linode:1", res.Changes[3].Key)
	assert.Equal(t, "data.ipv4.0", res.Changes[3].Field)
	assert.Equal(t, export.KindResource, res.Changes[3].Kind)
}

func TestDiff_QuotedHostNames(t *testing.T) {
	a := store([]*state.HostState{{Name: "web01.example.com", Address: "a"}}, nil)
	b := store([]*state.HostState{{Name: "web01.example.com", Address: "b"}}, nil)
	assert.Equal(t, lines(`~ hosts."web01.example.com".address: "a" -> "b"`), diffText(t, a, b, nil))
}

func TestDiff_TimestampsOnlyWithOption(t *testing.T) {
	a := store([]*state.HostState{{Name: "h", Address: "x"}}, map[string]*state.ResourceState{"r": {Type: "t"}})
	b := store([]*state.HostState{{Name: "h", Address: "x", CreatedAt: t0, UpdatedAt: t1}},
		map[string]*state.ResourceState{"r": {Type: "t", CreatedAt: t1, UpdatedAt: t1}})
	b.c.Metadata.UpdatedAt = t1

	assert.Empty(t, diffText(t, a, b, nil), "timestamps alone are not a content change")
	assert.Equal(t, lines(
		`~ hosts.h.updated_at: "2024-05-01T10:00:00Z" -> "2024-05-01T11:00:00Z"`,
		`~ resources.r.created_at: "2024-05-01T10:00:00Z" -> "2024-05-01T11:00:00Z"`,
		`~ resources.r.updated_at: "2024-05-01T10:00:00Z" -> "2024-05-01T11:00:00Z"`,
	), diffText(t, a, b, &export.DiffOptions{Timestamps: true}))
	assert.Equal(t, lines(
		`~ metadata.updated_at: "2024-05-01T10:00:00Z" -> "2024-05-01T11:00:00Z"`,
		`~ hosts.h.updated_at: "2024-05-01T10:00:00Z" -> "2024-05-01T11:00:00Z"`,
		`~ resources.r.created_at: "2024-05-01T10:00:00Z" -> "2024-05-01T11:00:00Z"`,
		`~ resources.r.updated_at: "2024-05-01T10:00:00Z" -> "2024-05-01T11:00:00Z"`,
	), diffText(t, a, b, &export.DiffOptions{Timestamps: true, Metadata: true}))
}

func TestDiff_MetadataOnlyWithOption(t *testing.T) {
	a := store(nil, nil)
	b := store(nil, nil)
	b.c.Metadata.Serial = 5
	b.c.Metadata.Lineage = "lin-b"
	b.c.Metadata.UpdatedAt = t1

	assert.Empty(t, diffText(t, a, b, nil))
	res, err := export.Diff(a, b, &export.DiffOptions{Metadata: true})
	require.NoError(t, err)
	assert.False(t, res.Empty())
	var buf bytes.Buffer
	require.NoError(t, res.WriteText(&buf))
	assert.Equal(t, lines(
		`~ metadata.serial: 1 -> 5`,
		`~ metadata.lineage: "lin-a" -> "lin-b"`,
	), buf.String())
	assert.Equal(t, export.KindMetadata, res.Changes[0].Kind)
	assert.Equal(t, "", res.Changes[0].Key)
	assert.Equal(t, export.Summary{Metadata: export.Counts{Change: 1}}, res.Summary())
}

func TestDiff_Redact(t *testing.T) {
	a := store([]*state.HostState{
		{Name: "db01", Vars: map[string]any{"db": map[string]any{"password": "pw-old", "port": int64(5432)}, "x": int64(1)}},
		{Name: "gone", Vars: map[string]any{"api_key": "k1"}},
	}, map[string]*state.ResourceState{"r": {Type: "t", Tags: map[string]string{"token": "a"}}})
	b := store([]*state.HostState{
		{Name: "db01", Vars: map[string]any{"db": map[string]any{"password": "pw-new", "port": int64(5433)},
			"x": map[string]any{"secret": "s", "n": int64(1)}, "Secrets": []any{"a"}}},
		{Name: "new", Vars: map[string]any{"list": []any{map[string]any{"Token": "t"}}}},
	}, map[string]*state.ResourceState{"r": {Type: "t", Tags: map[string]string{"token": "b"}}})

	got := diffText(t, a, b, &export.DiffOptions{Redact: true})
	assert.Equal(t, lines(
		`+ hosts.db01.vars.Secrets: "<redacted>"`,
		`~ hosts.db01.vars.db.password: "<redacted>" -> "<redacted>"`,
		`~ hosts.db01.vars.db.port: 5432 -> 5433`,
		`~ hosts.db01.vars.x: 1 -> {"n":1,"secret":"<redacted>"}`,
		`- hosts.gone`,
		`+ hosts.new`,
		`~ resources.r.tags.token: "<redacted>" -> "<redacted>"`,
	), got)
	for _, s := range []string{"pw-old", "pw-new", `"s"`, "k1", `"t"`} {
		assert.NotContains(t, got, s)
	}

	res, err := export.Diff(a, b, &export.DiffOptions{Redact: true})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, res.WriteJSON(&buf))
	js := buf.String()
	assert.Contains(t, js, `"api_key": "<redacted>"`, "removed records are redacted")
	assert.Contains(t, js, `"Token": "<redacted>"`, "added records are redacted")
	for _, s := range []string{`"k1"`, `"t"`, `"s"`, "pw-old", "pw-new"} {
		assert.NotContains(t, js, s)
	}

	// Without Redact the values are shown; the viewers' records are intact.
	plain := diffText(t, a, b, nil)
	assert.Contains(t, plain, `~ hosts.db01.vars.db.password: "pw-old" -> "pw-new"`)
	assert.Equal(t, "k1", a.c.Hosts["gone"].Vars["api_key"])
}

func TestDiff_JSONForm(t *testing.T) {
	a := store([]*state.HostState{{Name: "web01", Address: "192.168.1.10", Vars: map[string]any{"n": nil}}, {Name: "web02"}}, nil)
	b := store([]*state.HostState{{Name: "web01", Address: "192.168.1.11", Vars: map[string]any{"n": "<b>"}}, {Name: "web03", Port: 22}}, nil)
	res, err := export.Diff(a, b, nil)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, res.WriteJSON(&buf))
	assert.True(t, strings.HasSuffix(buf.String(), "}\n"))
	assert.Contains(t, buf.String(), "\n  \"changes\": [\n    {\n      \"op\": \"change\",", "two-space indent")
	assert.Contains(t, buf.String(), `"new": "<b>"`, "no HTML escaping")

	assert.JSONEq(t, `{
	  "changes": [
	    {"op": "change", "path": "hosts.web01.address", "kind": "host", "key": "web01", "field": "address",
	     "old": "192.168.1.10", "new": "192.168.1.11"},
	    {"op": "change", "path": "hosts.web01.vars.n", "kind": "host", "key": "web01", "field": "vars.n",
	     "old": null, "new": "<b>"},
	    {"op": "remove", "path": "hosts.web02", "kind": "host", "key": "web02", "field": "",
	     "old": {"name": "web02", "address": "", "port": 0, "user": "",
	             "created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-01T10:00:00Z"}},
	    {"op": "add", "path": "hosts.web03", "kind": "host", "key": "web03", "field": "",
	     "new": {"name": "web03", "address": "", "port": 22, "user": "",
	             "created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-01T10:00:00Z"}}
	  ],
	  "summary": {
	    "hosts": {"add": 1, "change": 1, "remove": 1},
	    "resources": {"add": 0, "change": 0, "remove": 0},
	    "operations": {"add": 0, "change": 0, "remove": 0},
	    "metadata": {"add": 0, "change": 0, "remove": 0}
	  }
	}`, buf.String())

	// "old" is absent (not null) for an add, "new" for a remove.
	var doc struct {
		Changes []map[string]json.RawMessage `json:"changes"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))
	assert.Contains(t, doc.Changes[1], "old")
	assert.NotContains(t, doc.Changes[2], "new")
	assert.NotContains(t, doc.Changes[3], "old")
}

func TestDiff_Deterministic(t *testing.T) {
	a, b := randomPair(rand.New(rand.NewPCG(1, 2)), 300)
	var outs []string
	for range 3 {
		res, err := export.Diff(a, b, nil)
		require.NoError(t, err)
		var buf bytes.Buffer
		require.NoError(t, res.WriteJSON(&buf))
		require.NoError(t, res.WriteText(&buf))
		outs = append(outs, buf.String())
	}
	assert.Equal(t, outs[0], outs[1])
	assert.Equal(t, outs[0], outs[2])
}

// randomPair returns two states with n candidate hosts and resources each,
// some on one side only, some changed.
func randomPair(rng *rand.Rand, n int) (*fixed, *fixed) {
	var ha, hb []*state.HostState
	ra, rb := map[string]*state.ResourceState{}, map[string]*state.ResourceState{}
	for i := range n {
		name := fmt.Sprintf("h%04d", rng.IntN(n*2))
		h := &state.HostState{Name: name, Address: fmt.Sprint(i), Vars: map[string]any{"i": int64(i % 3)}}
		h2 := h.Clone()
		if rng.IntN(4) == 0 {
			h2.Vars["i"] = int64(99)
		}
		switch rng.IntN(3) {
		case 0:
			ha = append(ha, h)
		case 1:
			hb = append(hb, h2)
		default:
			ha, hb = append(ha, h), append(hb, h2)
		}
		key := fmt.Sprintf("t:%d", rng.IntN(n*2))
		r := &state.ResourceState{Type: "t", ID: fmt.Sprint(i)}
		switch rng.IntN(3) {
		case 0:
			ra[key] = r
		case 1:
			rb[key] = r
		default:
			ra[key] = r
			r2 := r.Clone()
			if rng.IntN(4) == 0 {
				r2.Name = "changed"
			}
			rb[key] = r2
		}
	}
	return store(ha, ra), store(hb, rb)
}

// The merge walk agrees with a naive comparison of the two key sets.
func TestDiff_MergeWalkMatchesNaive(t *testing.T) {
	for seed := range uint64(20) {
		a, b := randomPair(rand.New(rand.NewPCG(seed, 7)), 200)
		res, err := export.Diff(a, b, nil)
		require.NoError(t, err)

		type rec struct {
			kind export.Kind
			key  string
		}
		got := map[rec]export.Op{}
		var order []rec
		for _, c := range res.Changes {
			r := rec{c.Kind, c.Key}
			if _, ok := got[r]; !ok {
				order = append(order, r)
			}
			if c.Field == "" {
				got[r] = c.Op
			} else {
				got[r] = export.OpChange
			}
		}
		want := map[rec]export.Op{}
		for k, h := range a.c.Hosts {
			h2, ok := b.c.Hosts[k]
			switch {
			case !ok:
				want[rec{export.KindHost, k}] = export.OpRemove
			case h2.Vars["i"] != h.Vars["i"] || h2.Address != h.Address:
				want[rec{export.KindHost, k}] = export.OpChange
			}
		}
		for k := range b.c.Hosts {
			if _, ok := a.c.Hosts[k]; !ok {
				want[rec{export.KindHost, k}] = export.OpAdd
			}
		}
		for k, r := range a.c.Resources {
			r2, ok := b.c.Resources[k]
			switch {
			case !ok:
				want[rec{export.KindResource, k}] = export.OpRemove
			case r2.Name != r.Name || r2.ID != r.ID:
				want[rec{export.KindResource, k}] = export.OpChange
			}
		}
		for k := range b.c.Resources {
			if _, ok := a.c.Resources[k]; !ok {
				want[rec{export.KindResource, k}] = export.OpAdd
			}
		}
		require.Equal(t, want, got, "seed %d", seed)
		require.NotEmpty(t, want)

		// Sorted: hosts before resources, keys ascending.
		assert.True(t, slices.IsSortedFunc(order, func(x, y rec) int {
			if x.kind != y.kind {
				if x.kind == export.KindHost {
					return -1
				}
				return 1
			}
			return strings.Compare(x.key, y.key)
		}), "seed %d", seed)
	}
}

func TestDiffFunc_CallbackErrorStopsAndIsReturned(t *testing.T) {
	a := store([]*state.HostState{{Name: "a"}, {Name: "b"}, {Name: "c"}}, nil)
	b := store(nil, nil)
	stop := errors.New("enough")
	calls := 0
	err := export.DiffFunc(a, b, nil, func(c export.Change) error {
		calls++
		return stop
	})
	assert.Same(t, stop, err)
	assert.Equal(t, 1, calls)

	var paths []string
	require.NoError(t, export.DiffFunc(a, b, nil, func(c export.Change) error {
		paths = append(paths, c.Path)
		return nil
	}))
	assert.Equal(t, []string{"hosts.a", "hosts.b", "hosts.c"}, paths)
}

// brokenSnapshot wraps a Snapshot, failing or reordering its hosts.
type brokenSnapshot struct {
	state.Snapshot
	failAfter int  // fail the host iteration after this many hosts (-1: never)
	reverse   bool // hand out hosts in reverse order
}

var errDisk = errors.New("disk on fire")

func (s *brokenSnapshot) Hosts(fn func(*state.HostState) error) error {
	var hs []*state.HostState
	if err := s.Snapshot.Hosts(func(h *state.HostState) error { hs = append(hs, h); return nil }); err != nil {
		return err
	}
	if s.reverse {
		slices.Reverse(hs)
	}
	for i, h := range hs {
		if i == s.failAfter {
			return fmt.Errorf("read host: %w", errDisk)
		}
		if err := fn(h); err != nil {
			return err
		}
	}
	return nil
}

type brokenViewer struct {
	v         state.Viewer
	failAfter int
	reverse   bool
}

func (b *brokenViewer) View(fn func(state.Snapshot) error) error {
	return b.v.View(func(s state.Snapshot) error {
		return fn(&brokenSnapshot{Snapshot: s, failAfter: b.failAfter, reverse: b.reverse})
	})
}

func TestDiff_SnapshotErrors(t *testing.T) {
	good := store([]*state.HostState{{Name: "a"}, {Name: "b"}, {Name: "c"}}, nil)
	other := store([]*state.HostState{{Name: "a"}, {Name: "b2"}}, nil)

	_, err := export.Diff(&brokenViewer{v: good, failAfter: 2}, other, nil)
	require.ErrorIs(t, err, errDisk)
	assert.Contains(t, err.Error(), "export: diff: first state")

	_, err = export.Diff(other, &brokenViewer{v: good, failAfter: 0}, nil)
	require.ErrorIs(t, err, errDisk)
	assert.Contains(t, err.Error(), "second state")

	_, err = export.Diff(&brokenViewer{v: good, failAfter: -1, reverse: true}, other, nil)
	require.ErrorIs(t, err, state.ErrCorrupt)
	assert.Contains(t, err.Error(), "out of key order")
}

func TestDiff_ClosedState(t *testing.T) {
	st := open()
	require.NoError(t, st.Close())
	_, err := export.Diff(st, store(nil, nil), nil)
	require.ErrorIs(t, err, state.ErrClosed)
	assert.True(t, strings.HasPrefix(err.Error(), "export: diff: "), err.Error())
}

// Diff reads any Viewer: a State against a Backend, and a State against
// a later version of itself.
func TestDiff_StateAndBackend(t *testing.T) {
	mem := statetest.NewMemory()
	st, err := state.Open(mem)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.AddHost(&state.HostState{Name: "web01", Address: "10.0.0.1", Vars: map[string]any{"ports": []int{80, 443}}}))
	require.NoError(t, st.AddResource("linode:1", &state.ResourceState{Type: "linode", ID: "1"}))

	res, err := export.Diff(st, mem, nil)
	require.NoError(t, err)
	assert.True(t, res.Empty(), "a State and its own backend hold the same content")

	other := open()
	defer other.Close()
	require.NoError(t, other.AddHost(&state.HostState{Name: "web01", Address: "10.0.0.1", Vars: map[string]any{"ports": []int{80, 8443}}}))
	require.NoError(t, other.AddResource("linode:1", &state.ResourceState{Type: "linode", ID: "1"}))
	assert.Equal(t, lines(`~ hosts.web01.vars.ports.1: 443 -> 8443`), diffText(t, st, other, nil),
		"records written at different times, by stores of different lineage, differ only in content")
	assert.Empty(t, diffText(t, st, st, &export.DiffOptions{Metadata: true, Timestamps: true}))
}

func TestChange_String(t *testing.T) {
	for _, tc := range []struct {
		c    export.Change
		want string
	}{
		{export.Change{Op: export.OpAdd, Path: "hosts.web03", Kind: export.KindHost, Key: "web03", New: &state.HostState{}}, "+ hosts.web03"},
		{export.Change{Op: export.OpRemove, Path: "resources.x", Kind: export.KindResource, Key: "x"}, "- resources.x"},
		{export.Change{Op: export.OpChange, Path: "hosts.h.vars.s", Field: "vars.s", Old: "line1\nline2", New: "a&b"}, `~ hosts.h.vars.s: "line1\nline2" -> "a&b"`},
		{export.Change{Op: export.OpAdd, Path: "hosts.h.vars.m", Field: "vars.m", New: map[string]any{"b": int64(1), "a": []any{true, nil}}}, `+ hosts.h.vars.m: {"a":[true,null],"b":1}`},
		{export.Change{Op: export.OpRemove, Path: "hosts.h.vars.f", Field: "vars.f", Old: 0.25}, `- hosts.h.vars.f: 0.25`},
	} {
		assert.Equal(t, tc.want, tc.c.String())
	}
}

// A walk over many records finds exactly the records on one side only.
func TestDiff_LargeStates(t *testing.T) {
	if testing.Short() {
		t.Skip("large diff")
	}
	const n = 20000
	mk := func(skip int) *fixed {
		c := state.Contents{Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}}
		for i := range n {
			if i%1000 == skip {
				continue
			}
			name := fmt.Sprintf("h%06d", i)
			c.Hosts[name] = &state.HostState{Name: name, Port: 22}
			c.Resources[fmt.Sprintf("r:%06d", i)] = &state.ResourceState{Type: "r"}
		}
		return &fixed{c}
	}
	res, err := export.Diff(mk(1), mk(2), nil)
	require.NoError(t, err)
	s := res.Summary()
	assert.Equal(t, export.Counts{Add: n / 1000, Remove: n / 1000}, s.Hosts)
	assert.Equal(t, export.Counts{Add: n / 1000, Remove: n / 1000}, s.Resources)
	assert.Equal(t, "+ hosts.h000001", res.Changes[0].String())
	assert.Equal(t, "- hosts.h000002", res.Changes[1].String())
	assert.Equal(t, "+ resources.r:000001", res.Changes[2*n/1000].String())
}

func TestDiff_Groups(t *testing.T) {
	a := store([]*state.HostState{
		{Name: "web01", Group: "web", Groups: []string{"prod"}},
		{Name: "web02", Group: "web"},
		{Name: "web03", Group: "web", Groups: []string{"a", "b"}},
		{Name: "same", Group: "web", Groups: []string{"a"}},
	}, nil)
	b := store([]*state.HostState{
		{Name: "web01", Group: "web", Groups: []string{"prod", "eu"}},
		{Name: "web02", Group: "web", Groups: []string{"prod"}},
		{Name: "web03", Group: "web"},
		{Name: "same", Group: "web", Groups: []string{"a"}},
	}, nil)
	assert.Equal(t, lines(
		`~ hosts.web01.groups: ["prod"] -> ["prod","eu"]`,
		`~ hosts.web02.groups: null -> ["prod"]`,
		`~ hosts.web03.groups: ["a","b"] -> null`,
	), diffText(t, a, b, nil))
	// Order matters: the first group is the main one.
	c := store([]*state.HostState{{Name: "same", Group: "web", Groups: []string{"b", "a"}}}, nil)
	d := store([]*state.HostState{{Name: "same", Group: "web", Groups: []string{"a", "b"}}}, nil)
	assert.Equal(t, lines(`~ hosts.same.groups: ["b","a"] -> ["a","b"]`), diffText(t, c, d, nil))
}
