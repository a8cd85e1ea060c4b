package statetest

import (
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
)

// The operations cases of the suite: pending operations (state.Operation)
// stored, read and removed through the Backend and Snapshot methods
// themselves. (What a State does with them is tested in package state.)
var operationSubtests = []subtest{
	{"OperationRoundTrip", (*suite).testOperationRoundTrip},
	{"OperationOrder", (*suite).testOperationOrder},
	{"OperationRemove", (*suite).testOperationRemove},
	{"OperationFinishAtomic", (*suite).testOperationFinishAtomic},
	{"OperationSnapshotIsolation", (*suite).testOperationSnapshotIsolation},
	{"OperationReplace", (*suite).testOperationReplace},
}

// sampleOperation is a normalized operation record, as State stores it.
func sampleOperation(id string) *state.Operation {
	return &state.Operation{
		ID: id, Action: state.ActionCreate, Resource: "linode:" + id, Host: "web-" + id,
		Data:      map[string]any{"token": "tok-" + id, "request": everyKind()},
		StartedAt: state.Timestamp(time.Date(2024, 1, 15, 10, 30, 0, 123456789, time.UTC)),
		Holder:    "pid 4242 on host ci-7 (ftl2 apply)",
	}
}

// commit commits changes at now and returns the metadata Commit reports.
func commit(t testing.TB, b state.Backend, changes ...state.Change) state.Metadata {
	t.Helper()
	m, err := b.Commit(&state.Batch{Time: state.Timestamp(time.Now()), Changes: changes})
	require.NoError(t, err, "Commit")
	return m
}

func putOp(op *state.Operation) state.Change {
	return state.Change{Kind: state.KindOperation, Key: op.ID, Operation: op}
}

func delOp(id string) state.Change { return state.Change{Kind: state.KindOperation, Key: id} }

// opIDs lists the IDs snap.Operations yields, in its order, and checks
// each against snap.Operation.
func opIDs(t testing.TB, snap state.Snapshot) []string {
	t.Helper()
	var ids []string
	err := snap.Operations(func(op *state.Operation) error {
		ids = append(ids, op.ID)
		one, ok, err := snap.Operation(op.ID)
		if assert.NoError(t, err) && assert.True(t, ok, "Operation(%q) finds what Operations yields", op.ID) {
			assert.True(t, reflect.DeepEqual(op, one), "Operation(%q) and Operations agree:\n%#v\n%#v", op.ID, one, op)
		}
		return nil
	})
	assert.NoError(t, err, "Operations")
	return ids
}

func (s *suite) testOperationRoundTrip(t *store) {
	b := t.open()
	full := sampleOperation("0123456789abcdef")
	bare := &state.Operation{ID: "bare", Action: state.ActionDelete, Resource: "r"}
	empty := &state.Operation{ID: "empty-data", Action: state.ActionUpdate, Resource: "r", Data: map[string]any{}}
	var before uint64
	require.NoError(t, b.View(func(snap state.Snapshot) error { before = snap.Metadata().Serial; return nil }))
	// The records given to Commit are the backend's now (it may keep
	// them): compare with copies.
	pristine := []*state.Operation{full.Clone(), bare.Clone(), empty.Clone()}
	m := commit(t, b, putOp(full), putOp(bare), putOp(empty))
	assert.Equal(t, before+1, m.Serial, "a batch of operations is one change")
	check := func(what string) {
		require.NoError(t, b.View(func(snap state.Snapshot) error {
			for _, want := range pristine {
				got, ok, err := snap.Operation(want.ID)
				if !assert.NoError(t, err, what) || !assert.True(t, ok && got != nil, "%s: %s", what, want.ID) {
					continue
				}
				assert.True(t, reflect.DeepEqual(want, got), "%s: stored exactly (nil and empty Data too):\n%#v\n%#v", what, want, got)
				assert.True(t, want.StartedAt == got.StartedAt, "%s: StartedAt equal with ==", what)
				got.Data = map[string]any{"mutated": true}
				again, _, _ := snap.Operation(want.ID)
				assert.True(t, reflect.DeepEqual(want, again), "%s: records handed out are copies", what)
			}
			_, ok, err := snap.Operation("missing")
			assert.NoError(t, err, "a missing operation is no error")
			assert.False(t, ok)
			nh, nr := snap.Len()
			assert.Zero(t, nh+nr, "%s: operations are neither hosts nor resources", what)
			var hosts, resources int
			assert.NoError(t, snap.Hosts(func(*state.HostState) error { hosts++; return nil }))
			assert.NoError(t, snap.Resources(func(string, *state.ResourceState) error { resources++; return nil }))
			assert.Zero(t, hosts+resources, what)
			stop := errors.New("stop")
			n := 0
			assert.ErrorIs(t, snap.Operations(func(*state.Operation) error { n++; return stop }), stop, "callback errors stop the iteration")
			assert.Equal(t, 1, n)
			return nil
		}))
	}
	check("before reopen")
	require.NoError(t, b.Close())
	b = t.open()
	defer b.Close()
	check("after reopen")
}

func (s *suite) testOperationOrder(t *store) {
	b := t.open()
	defer b.Close()
	// Byte order: upper case before lower case, "a" before "a-" before
	// "a0", multi-byte UTF-8 last.
	ids := []string{"é", "b", "a0", "B", "a", "a-", "ö1", "Z9"}
	var changes []state.Change
	for _, id := range ids {
		changes = append(changes, putOp(sampleOperation(id)))
	}
	commit(t, b, changes...)
	want := slices.Clone(ids)
	slices.Sort(want)
	require.NoError(t, b.View(func(snap state.Snapshot) error {
		assert.Equal(t, want, opIDs(t, snap), "Operations iterates in byte order of the ID")
		return nil
	}))
}

func (s *suite) testOperationRemove(t *store) {
	b := t.open()
	commit(t, b, putOp(sampleOperation("a")), putOp(sampleOperation("b")), putOp(sampleOperation("c")))
	m := commit(t, b, delOp("b"), delOp("never-begun"))
	require.NoError(t, b.Close())
	b = t.open()
	defer b.Close()
	require.NoError(t, b.View(func(snap state.Snapshot) error {
		assert.Equal(t, m, snap.Metadata())
		assert.Equal(t, []string{"a", "c"}, opIDs(t, snap), "removed for good; removing a missing operation is not an error")
		_, ok, err := snap.Operation("b")
		assert.NoError(t, err)
		assert.False(t, ok)
		return nil
	}))
	// An operation put again replaces the record.
	changed := sampleOperation("a")
	changed.Data = map[string]any{"token": "other"}
	commit(t, b, putOp(changed))
	require.NoError(t, b.View(func(snap state.Snapshot) error {
		got, ok, err := snap.Operation("a")
		if assert.NoError(t, err) && assert.True(t, ok, "an operation put again") && got != nil {
			assert.Equal(t, map[string]any{"token": "other"}, got.Data)
		}
		return nil
	}))
}

// testOperationFinishAtomic commits a finish (the resource, its host and
// the removal of the operation in one batch) and checks that it is all or
// nothing: a batch that the backend refuses leaves the operation pending
// and stores none of the outcome.
func (s *suite) testOperationFinishAtomic(t *store) {
	b := t.open()
	op := sampleOperation("op1")
	commit(t, b, putOp(op))
	now := state.Timestamp(time.Now())
	res := &state.ResourceState{Type: "linode", ID: "1", CreatedAt: now, UpdatedAt: now}
	host := &state.HostState{Name: op.Host, CreatedAt: now, UpdatedAt: now}
	// A batch with a host stored under a key other than its name is
	// refused by every backend (its records cannot be read back).
	bad := &state.HostState{Name: "not-its-key", CreatedAt: now, UpdatedAt: now}
	_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{
		{Kind: state.KindResource, Key: op.Resource, Resource: res},
		delOp(op.ID),
		{Kind: state.KindHost, Key: "other", Host: bad},
	}})
	if err == nil {
		t.Errorf("a batch with a host stored under another key was accepted")
	} else {
		require.NoError(t, b.View(func(snap state.Snapshot) error {
			_, pending, _ := snap.Operation(op.ID)
			_, stored, _ := snap.Resource(op.Resource)
			assert.True(t, pending, "a refused finish leaves the operation pending")
			assert.False(t, stored, "a refused finish stores none of the outcome")
			return nil
		}))
	}
	m := commit(t, b, state.Change{Kind: state.KindResource, Key: op.Resource, Resource: res},
		state.Change{Kind: state.KindHost, Key: host.Name, Host: host}, delOp(op.ID))
	require.NoError(t, b.Close())
	b = t.open()
	defer b.Close()
	require.NoError(t, b.View(func(snap state.Snapshot) error {
		assert.Equal(t, m, snap.Metadata())
		_, pending, _ := snap.Operation(op.ID)
		_, stored, _ := snap.Resource(op.Resource)
		_, hosted, _ := snap.Host(host.Name)
		assert.False(t, pending)
		assert.True(t, stored && hosted, "the outcome is stored with the removal")
		return nil
	}))
}

func (s *suite) testOperationSnapshotIsolation(t *store) {
	b := t.open()
	defer b.Close()
	commit(t, b, putOp(sampleOperation("old")))
	started, done := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		assert.NoError(t, b.View(func(snap state.Snapshot) error {
			close(started)
			<-done
			assert.Equal(t, []string{"old"}, opIDs(t, snap), "a View started before a Commit does not see it")
			return nil
		}))
	})
	<-started
	// Some backends let a Commit wait for the View in progress: commit in
	// the background and let the View end after a while.
	committed := make(chan struct{})
	wg.Go(func() {
		defer close(committed)
		_, err := b.Commit(&state.Batch{Time: state.Timestamp(time.Now()), Changes: []state.Change{putOp(sampleOperation("new")), delOp("old")}})
		assert.NoError(t, err, "Commit while a View runs")
	})
	select {
	case <-committed:
	case <-time.After(200 * time.Millisecond):
	}
	close(done)
	wg.Wait()
	require.NoError(t, b.View(func(snap state.Snapshot) error {
		assert.Equal(t, []string{"new"}, opIDs(t, snap), "a View started after a Commit sees it")
		return nil
	}))
}

func (s *suite) testOperationReplace(t *store) {
	b := t.open()
	commit(t, b, putOp(sampleOperation("gone")), putOp(sampleOperation("kept")))
	now := state.Timestamp(time.Now())
	meta := state.Metadata{Version: state.FormatVersion, CreatedAt: now, UpdatedAt: now, Serial: 9, Lineage: "l"}
	kept := sampleOperation("kept")
	kept.Holder = "imported"
	_, err := b.Commit(&state.Batch{Time: now, Replace: &meta, Changes: []state.Change{putOp(kept), putOp(sampleOperation("new"))}})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	b = t.open()
	defer b.Close()
	require.NoError(t, b.View(func(snap state.Snapshot) error {
		assert.Equal(t, []string{"kept", "new"}, opIDs(t, snap), "Replace empties the operations too")
		if got, ok, _ := snap.Operation("kept"); assert.True(t, ok, "the kept operation") && got != nil {
			assert.Equal(t, "imported", got.Holder)
		}
		return nil
	}))
	// A Replace without operations leaves none.
	_, err = b.Commit(&state.Batch{Time: now, Replace: &meta})
	require.NoError(t, err)
	require.NoError(t, b.View(func(snap state.Snapshot) error {
		assert.Empty(t, opIDs(t, snap))
		return nil
	}))
}
