package state_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

// plainSnapshot hides every method of a Snapshot but those of the
// interface, so that the helpers' fallbacks run.
type plainSnapshot struct{ s state.Snapshot }

func (p plainSnapshot) Metadata() state.Metadata { return p.s.Metadata() }
func (p plainSnapshot) Len() (int, int)          { return p.s.Len() }
func (p plainSnapshot) Host(n string) (*state.HostState, bool, error) {
	return p.s.Host(n)
}
func (p plainSnapshot) Resource(k string) (*state.ResourceState, bool, error) {
	return p.s.Resource(k)
}
func (p plainSnapshot) Hosts(fn func(*state.HostState) error) error { return p.s.Hosts(fn) }
func (p plainSnapshot) Resources(fn func(string, *state.ResourceState) error) error {
	return p.s.Resources(fn)
}
func (p plainSnapshot) Operation(id string) (*state.Operation, bool, error) {
	return p.s.Operation(id)
}
func (p plainSnapshot) Operations(fn func(*state.Operation) error) error { return p.s.Operations(fn) }

func sampleContents() *state.Contents {
	ts := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	return &state.Contents{
		Metadata: state.Metadata{Version: "1.0", Lineage: "L", CreatedAt: ts, UpdatedAt: ts, Serial: 3},
		Hosts: map[string]*state.HostState{
			"web01": {Name: "web01", CreatedAt: ts, UpdatedAt: ts},
			"db01":  {Name: "db01", Vars: map[string]any{"port": int64(5432)}, CreatedAt: ts, UpdatedAt: ts},
		},
		Resources: map[string]*state.ResourceState{
			"linode:2": {Type: "linode", CreatedAt: ts, UpdatedAt: ts},
			"aws:1":    {Type: "aws", CreatedAt: ts, UpdatedAt: ts},
			"linode:1": {Type: "linode", Data: map[string]any{"x": 1.5}, CreatedAt: ts, UpdatedAt: ts},
		},
		Operations: map[string]*state.Operation{
			"op-b": {ID: "op-b", Action: "create", Resource: "linode:3", StartedAt: ts},
			"op-a": {ID: "op-a", Action: "delete", Resource: "aws:1", Data: map[string]any{"token": "t"}, StartedAt: ts},
		},
	}
}

func collectOfType(t *testing.T, s state.Snapshot, typ string) []string {
	t.Helper()
	var keys []string
	require.NoError(t, state.ResourcesOfType(s, typ, func(k string, r *state.ResourceState) error {
		assert.Equal(t, typ, r.Type)
		keys = append(keys, k)
		return nil
	}))
	return keys
}

func TestResourcesOfType_UsesTheIndexOrFiltersResources(t *testing.T) {
	snap := state.NewSnapshot(sampleContents())
	_, indexed := snap.(state.TypeIndex)
	require.True(t, indexed, "NewSnapshot's snapshots implement TypeIndex")
	plain := plainSnapshot{snap}
	for _, s := range []state.Snapshot{snap, plain} {
		assert.Equal(t, []string{"linode:1", "linode:2"}, collectOfType(t, s, "linode"))
		assert.Equal(t, []string{"aws:1"}, collectOfType(t, s, "aws"))
		assert.Empty(t, collectOfType(t, s, "none"))
		stop := errors.New("stop")
		n := 0
		err := state.ResourcesOfType(s, "linode", func(string, *state.ResourceState) error { n++; return stop })
		assert.ErrorIs(t, err, stop, "callback errors stop the walk, unchanged")
		assert.Equal(t, 1, n)
	}
}

func TestCheckSnapshot_PassesAConsistentSnapshot(t *testing.T) {
	assert.NoError(t, state.CheckSnapshot(state.NewSnapshot(sampleContents())))
	assert.NoError(t, state.CheckSnapshot(plainSnapshot{state.NewSnapshot(sampleContents())}))
	empty := &state.Contents{Metadata: state.NewMetadata(time.Now())}
	assert.NoError(t, state.CheckSnapshot(state.NewSnapshot(empty)))
}

// lyingSnapshot breaks one rule of a Snapshot at a time.
type lyingSnapshot struct {
	plainSnapshot
	lie string
}

func (l lyingSnapshot) Len() (int, int) {
	h, r := l.s.Len()
	if l.lie == "len" {
		return h + 1, r
	}
	return h, r
}

func (l lyingSnapshot) Host(n string) (*state.HostState, bool, error) {
	if l.lie == "host absent" {
		return nil, false, nil
	}
	return l.s.Host(n)
}

func (l lyingSnapshot) Hosts(fn func(*state.HostState) error) error {
	var hs []*state.HostState
	l.s.Hosts(func(h *state.HostState) error { hs = append(hs, h); return nil })
	if l.lie == "host order" {
		hs[0], hs[1] = hs[1], hs[0]
	}
	if l.lie == "invalid host" {
		hs[0].Port = -1
	}
	for _, h := range hs {
		if err := fn(h); err != nil {
			return err
		}
	}
	if l.lie == "hosts error" {
		return fmt.Errorf("bad page: %w", state.ErrCorrupt)
	}
	return nil
}

func (l lyingSnapshot) Operation(id string) (*state.Operation, bool, error) {
	op, ok, err := l.s.Operation(id)
	if l.lie == "operation differs" && ok {
		op.Holder = "someone else"
	}
	return op, ok, err
}

func (l lyingSnapshot) Operations(fn func(*state.Operation) error) error {
	var ops []*state.Operation
	l.s.Operations(func(op *state.Operation) error { ops = append(ops, op); return nil })
	if l.lie == "operation order" {
		ops[0], ops[1] = ops[1], ops[0]
	}
	if l.lie == "invalid operation" {
		ops[0].Action = "destroy"
	}
	for _, op := range ops {
		if err := fn(op); err != nil {
			return err
		}
	}
	return nil
}

func (l lyingSnapshot) ResourcesOfType(typ string, fn func(string, *state.ResourceState) error) error {
	if l.lie == "index misses" && typ == "linode" {
		return fn("linode:1", &state.ResourceState{Type: "linode", Data: map[string]any{"x": 1.5}, CreatedAt: l.Metadata().CreatedAt, UpdatedAt: l.Metadata().CreatedAt})
	}
	return state.ResourcesOfType(l.s, typ, fn)
}

func TestCheckSnapshot_FindsEveryLie(t *testing.T) {
	cases := map[string]string{
		"len":               "Len reports 3 hosts",
		"host absent":       `hosts/"db01": Hosts yields it, Host reports it absent`,
		"host order":        `hosts/"db01": Hosts yielded it after "web01": not in byte order`,
		"invalid host":      `hosts/"db01": invalid record: port`,
		"hosts error":       "Hosts: bad page: corrupt",
		"index misses":      `ResourcesOfType("linode") yields ["linode:1"], Resources has ["linode:1" "linode:2"]`,
		"operation order":   `operations/"op-a": Operations yielded it after "op-b": not in byte order`,
		"invalid operation": `operations/"op-a": invalid record: action`,
		"operation differs": `operations/"op-a": Operation returns`,
	}
	for lie, want := range cases {
		err := state.CheckSnapshot(lyingSnapshot{plainSnapshot{state.NewSnapshot(sampleContents())}, lie})
		var ce *state.CheckError
		require.ErrorAs(t, err, &ce, lie)
		assert.ErrorIs(t, err, state.ErrCorrupt, lie)
		assert.Contains(t, err.Error(), want, lie)
	}
	// Several lies at once are all reported.
	c := sampleContents()
	c.Metadata.Lineage = ""
	c.Hosts["web01"].Port = 70000
	c.Resources["aws:1"].Type = ""
	err := state.CheckSnapshot(state.NewSnapshot(c))
	var ce *state.CheckError
	require.ErrorAs(t, err, &ce)
	assert.Len(t, ce.Problems, 3, "%v", err)
}

func TestCheckError_CollectsAndFormats(t *testing.T) {
	ce := &state.CheckError{Path: "s.db"}
	assert.NoError(t, ce.Err(), "no problem, no error")
	ce.Addf("hosts", "web01", "bad %s", "port")
	ce.Addf("", "/ftl/x/stray", "not a key of this store's layout")
	ce.Addf("metadata", "", "missing")
	ce.Addf("", "", "bbolt: page 3 unreachable")
	err := ce.Err()
	require.Error(t, err)
	assert.ErrorIs(t, err, state.ErrCorrupt)
	assert.Equal(t, `s.db: check found 4 problems; hosts/"web01": bad port; "/ftl/x/stray": not a key of this store's layout; metadata: missing; bbolt: page 3 unreachable`, err.Error())

	many := &state.CheckError{Path: "s.db"}
	for i := range state.MaxProblems + 5 {
		many.Addf("hosts", fmt.Sprint(i), "bad")
	}
	assert.Len(t, many.Problems, state.MaxProblems)
	assert.Equal(t, 5, many.More)
	assert.True(t, strings.HasPrefix(many.Error(), fmt.Sprintf("s.db: check found %d problems", state.MaxProblems+5)))
	assert.Contains(t, many.Error(), fmt.Sprintf("; and %d more", state.MaxProblems+5-10))
}

// checked is a Memory with a Check and a stale lock of its own.
type checked struct {
	*statetest.Memory
	err   error
	stale *state.LockInfo
}

func (c checked) Check() error               { return c.err }
func (c checked) StaleLock() *state.LockInfo { return c.stale }

func TestCheck_UsesTheBackendsCheckOrFallsBack(t *testing.T) {
	m := statetest.NewMemory()
	defer m.Close()
	st, err := state.Open(m)
	require.NoError(t, err)
	require.NoError(t, st.AddHost(&state.HostState{Name: "web01"}))
	assert.NoError(t, state.Check(m), "a sound store without a Check of its own")
	assert.Nil(t, state.StaleLock(m), "no LockReporter: nil")

	own := errors.New("own check")
	info := &state.LockInfo{PID: 7}
	c := checked{Memory: m, err: own, stale: info}
	assert.ErrorIs(t, state.Check(c), own, "a Checker's own Check is used")
	assert.Same(t, info, state.StaleLock(c))

	require.NoError(t, st.Close())
	assert.ErrorIs(t, state.Check(m), state.ErrClosed, "errors of View are returned")
}
