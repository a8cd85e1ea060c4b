package state_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

func createOp(resource string) *state.Operation {
	return &state.Operation{Action: state.ActionCreate, Resource: resource, Host: "web01",
		Data: map[string]any{"token": "tok-" + resource, "request": map[string]any{"region": "us-east", "size": 2}}}
}

func instance(id string) *state.ResourceState {
	return &state.ResourceState{Type: "linode", ID: id, Name: "web01", Data: map[string]any{"ipv4": []any{"192.0.2.10"}}}
}

func TestState_BeginOperationSetsIDTimeHolder(t *testing.T) {
	st, _ := openMemory(t)
	in := createOp("linode:1")
	before := time.Now()
	op, err := st.BeginOperation(in)
	require.NoError(t, err)
	assert.Len(t, op.ID, 16, "a random ID of 16 hex digits")
	assert.Empty(t, in.ID, "the argument is not modified")
	assert.False(t, op.StartedAt.Before(before.Add(-time.Second)) || op.StartedAt.After(time.Now().Add(time.Second)), "StartedAt is now: %v", op.StartedAt)
	assert.Equal(t, time.UTC, op.StartedAt.Location())
	assert.Contains(t, op.Holder, fmt.Sprintf("pid %d", os.Getpid()))
	assert.Equal(t, map[string]any{"token": "tok-linode:1", "request": map[string]any{"region": "us-east", "size": int64(2)}}, op.Data, "Data is normalized")
	assert.Equal(t, uint64(1), st.Metadata().Serial, "a begin is one change")

	got, ok := st.GetOperation(op.ID)
	require.True(t, ok)
	assert.Equal(t, op, got)

	// IDs and holders given by the caller are kept.
	mine, err := st.BeginOperation(&state.Operation{ID: "job-7/step-2", Action: state.ActionDelete, Resource: "dns:a", Holder: "ftl2 apply job 7"})
	require.NoError(t, err)
	assert.Equal(t, "job-7/step-2", mine.ID)
	assert.Equal(t, "ftl2 apply job 7", mine.Holder)

	// Two random IDs differ.
	other, err := st.BeginOperation(createOp("linode:2"))
	require.NoError(t, err)
	assert.NotEqual(t, op.ID, other.ID)
}

func TestState_FinishOperationCommitsOutcomeAndRemovalTogether(t *testing.T) {
	st, b := openMemory(t)
	op, err := st.BeginOperation(createOp("linode:1"))
	require.NoError(t, err)
	serial := st.Metadata().Serial

	var commits []*state.Batch
	b.FailCommits(func(batch *state.Batch) error { commits = append(commits, batch); return nil })
	err = st.FinishOperation(op.ID, func(tx *state.Tx) error {
		got, ok := tx.GetOperation(op.ID)
		assert.False(t, ok, "inside FinishOperation the operation is already staged as finished: %v", got)
		if err := tx.AddResource("linode:1", instance("1")); err != nil {
			return err
		}
		return tx.AddHost(&state.HostState{Name: "web01", Address: "192.0.2.10", Vars: map[string]any{"instance": "linode:1"}})
	})
	require.NoError(t, err)
	require.Len(t, commits, 1, "one commit")
	kinds := map[state.Kind]int{}
	for _, c := range commits[0].Changes {
		kinds[c.Kind]++
		if c.Kind == state.KindOperation {
			assert.True(t, c.Delete(), "the operation is removed")
			assert.Equal(t, op.ID, c.Key)
		}
	}
	assert.Equal(t, map[state.Kind]int{state.KindHost: 1, state.KindResource: 1, state.KindOperation: 1}, kinds)
	assert.Equal(t, serial+1, st.Metadata().Serial, "a finish is one change")

	_, ok := st.GetOperation(op.ID)
	assert.False(t, ok)
	assert.Empty(t, st.PendingOperations())
	assert.True(t, st.HasHost("web01"))
	_, ok = st.GetResource("linode:1")
	assert.True(t, ok)
	require.NoError(t, b.View(func(s state.Snapshot) error {
		_, ok, err := s.Operation(op.ID)
		assert.False(t, ok, "gone from the backend too")
		return err
	}))
}

func TestState_FinishOrAbandonUnknownOperationIsInvalid(t *testing.T) {
	st, _ := openMemory(t)
	op, err := st.BeginOperation(createOp("linode:1"))
	require.NoError(t, err)
	require.NoError(t, st.AbandonOperation(op.ID))
	serial := st.Metadata().Serial

	ran := false
	for name, err := range map[string]error{
		"FinishOperation never begun": st.FinishOperation("nope", func(*state.Tx) error { ran = true; return nil }),
		"FinishOperation abandoned":   st.FinishOperation(op.ID, nil),
		"AbandonOperation abandoned":  st.AbandonOperation(op.ID),
		"AbandonOperation empty ID":   st.AbandonOperation(""),
		"Tx.FinishOperation":          st.Update(func(tx *state.Tx) error { return tx.FinishOperation("nope") }),
	} {
		assert.ErrorIs(t, err, state.ErrInvalid, name)
		if err != nil {
			assert.Contains(t, err.Error(), "no such pending operation", name)
		}
	}
	assert.False(t, ran, "fn does not run for an unknown operation")
	assert.Equal(t, serial, st.Metadata().Serial, "nothing written")
}

func TestState_BeginOperationValidates(t *testing.T) {
	st, _ := openMemory(t)
	_, err := st.BeginOperation(&state.Operation{ID: "taken", Action: state.ActionCreate, Resource: "r"})
	require.NoError(t, err)
	serial := st.Metadata().Serial
	for _, tt := range []struct {
		name string
		op   *state.Operation
		path string
	}{
		{"nil", nil, ""},
		{"no action", &state.Operation{Resource: "r"}, "action"},
		{"unknown action", &state.Operation{Action: "destroy", Resource: "r"}, "action"},
		{"no resource", &state.Operation{Action: "create"}, "resource"},
		{"resource with control character", &state.Operation{Action: "create", Resource: "a\nb"}, "resource"},
		{"host with control character", &state.Operation{Action: "create", Resource: "r", Host: "web\x0001"}, "host"},
		{"ID with control character", &state.Operation{ID: "a\tb", Action: "create", Resource: "r"}, "id"},
		{"ID too long", &state.Operation{ID: strings.Repeat("x", state.MaxNameLen+1), Action: "create", Resource: "r"}, "id"},
		{"data outside the value model", &state.Operation{Action: "create", Resource: "r", Data: map[string]any{"f": func() {}}}, "data.f"},
		{"data not UTF-8", &state.Operation{Action: "create", Resource: "r", Data: map[string]any{"s": "\xff"}}, "data.s"},
		{"holder not UTF-8", &state.Operation{Action: "create", Resource: "r", Holder: "\xff"}, "holder"},
		{"ID already pending", &state.Operation{ID: "taken", Action: "create", Resource: "r"}, "id"},
	} {
		_, err := st.BeginOperation(tt.op)
		require.ErrorIs(t, err, state.ErrInvalid, tt.name)
		var fe *state.FieldError
		require.ErrorAs(t, err, &fe, tt.name)
		assert.Equal(t, tt.path, fe.Path, tt.name)
		_, err = func() (op *state.Operation, err error) {
			err = st.Update(func(tx *state.Tx) error { op, err = tx.BeginOperation(tt.op); return err })
			return
		}()
		assert.ErrorIs(t, err, state.ErrInvalid, "Tx: %s", tt.name)
	}
	assert.Equal(t, serial, st.Metadata().Serial, "nothing written")
	assert.Len(t, st.PendingOperations(), 1)
}

func TestOperation_NormalizeKeepsNilAndEmptyData(t *testing.T) {
	at := time.Date(2024, 1, 15, 10, 30, 0, 0, time.FixedZone("CET", 3600))
	n, err := (&state.Operation{ID: "a", Action: "update", Resource: "r", StartedAt: at}).Normalize()
	require.NoError(t, err)
	assert.Nil(t, n.Data)
	assert.Equal(t, at.UTC(), n.StartedAt)
	n, err = (&state.Operation{ID: "a", Action: "update", Resource: "r", Data: map[string]any{}}).Normalize()
	require.NoError(t, err)
	assert.NotNil(t, n.Data)
	_, err = (&state.Operation{ID: "a", Action: "update", Resource: "r", StartedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}).Normalize()
	assert.ErrorIs(t, err, state.ErrInvalid)
}

func TestState_PendingOperationsSortedByStartThenID(t *testing.T) {
	st, _ := openMemory(t)
	// Same start time for two (imported), then one later.
	at := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	require.NoError(t, st.Replace(&state.Contents{Operations: map[string]*state.Operation{
		"b": {ID: "b", Action: "create", Resource: "r1", StartedAt: at},
		"a": {ID: "a", Action: "create", Resource: "r2", StartedAt: at},
		"0": {ID: "0", Action: "create", Resource: "r3", StartedAt: at.Add(time.Second)},
	}}, false))
	var ids []string
	for _, op := range st.PendingOperations() {
		ids = append(ids, op.ID)
	}
	assert.Equal(t, []string{"a", "b", "0"}, ids)

	// A store holding only operations is not empty: a document without
	// lineage is refused.
	err := st.Replace(&state.Contents{}, false)
	assert.ErrorIs(t, err, state.ErrConflict)
}

func TestState_FailedFinishLeavesOperationPending(t *testing.T) {
	st, b := openMemory(t)
	op, err := st.BeginOperation(createOp("linode:1"))
	require.NoError(t, err)
	serial := st.Metadata().Serial

	// fn fails: nothing changes.
	errCloud := errors.New("cloud said no")
	err = st.FinishOperation(op.ID, func(tx *state.Tx) error {
		require.NoError(t, tx.AddResource("linode:1", instance("1")))
		return errCloud
	})
	assert.ErrorIs(t, err, errCloud)
	_, ok := st.GetOperation(op.ID)
	assert.True(t, ok, "still pending after fn failed")

	// The backend fails: nothing changes, in memory or in the backend.
	b.FailCommits(func(*state.Batch) error { return errDiskFull })
	err = st.FinishOperation(op.ID, func(tx *state.Tx) error { return tx.AddResource("linode:1", instance("1")) })
	assert.ErrorIs(t, err, errDiskFull)
	_, err = st.BeginOperation(createOp("linode:2"))
	assert.ErrorIs(t, err, errDiskFull)
	assert.ErrorIs(t, st.AbandonOperation(op.ID), errDiskFull)
	b.FailCommits(nil)

	pending := st.PendingOperations()
	require.Len(t, pending, 1, "the failed begin left nothing")
	assert.Equal(t, op.ID, pending[0].ID)
	_, ok = st.GetResource("linode:1")
	assert.False(t, ok)
	assert.Equal(t, serial, st.Metadata().Serial)
	require.NoError(t, b.View(func(s state.Snapshot) error {
		n := 0
		err := s.Operations(func(*state.Operation) error { n++; return nil })
		assert.Equal(t, 1, n)
		_, ok, _ := s.Resource("linode:1")
		assert.False(t, ok)
		return err
	}))
}

func TestTx_OperationsWithOtherChanges(t *testing.T) {
	st, _ := openMemory(t)
	var a, b *state.Operation
	require.NoError(t, st.Update(func(tx *state.Tx) error {
		var err error
		if a, err = tx.BeginOperation(createOp("linode:1")); err != nil {
			return err
		}
		got, ok := tx.GetOperation(a.ID)
		assert.True(t, ok, "a transaction reads its own begin")
		assert.Equal(t, a, got)
		_, ok = st.GetOperation(a.ID)
		assert.False(t, ok, "others do not see it before the commit")
		if b, err = tx.BeginOperation(createOp("linode:2")); err != nil {
			return err
		}
		_, err = tx.BeginOperation(&state.Operation{ID: a.ID, Action: "create", Resource: "x"})
		assert.ErrorIs(t, err, state.ErrInvalid, "an ID begun in this transaction is pending")
		return tx.AddHost(&state.HostState{Name: "bastion"})
	}))
	assert.Equal(t, uint64(1), st.Metadata().Serial, "one Update, one change")
	assert.Len(t, st.PendingOperations(), 2)

	// Finish one and begin the next in one commit.
	var c *state.Operation
	require.NoError(t, st.Update(func(tx *state.Tx) error {
		if err := tx.FinishOperation(a.ID); err != nil {
			return err
		}
		assert.ErrorIs(t, tx.FinishOperation(a.ID), state.ErrInvalid, "finished twice in one transaction")
		_, err := tx.BeginOperation(&state.Operation{ID: a.ID, Action: "create", Resource: "x"})
		assert.ErrorIs(t, err, state.ErrInvalid, "begun again after its finish in one transaction")
		if err := tx.AddResource("linode:1", instance("1")); err != nil {
			return err
		}
		c, err = tx.BeginOperation(createOp("linode:3"))
		return err
	}))
	ids := map[string]bool{}
	for _, op := range st.PendingOperations() {
		ids[op.ID] = true
	}
	assert.Equal(t, map[string]bool{b.ID: true, c.ID: true}, ids)

	// Begin and finish in one transaction cancel out.
	serial := st.Metadata().Serial
	require.NoError(t, st.Update(func(tx *state.Tx) error {
		d, err := tx.BeginOperation(createOp("linode:4"))
		if err != nil {
			return err
		}
		return tx.FinishOperation(d.ID)
	}))
	assert.Equal(t, serial, st.Metadata().Serial, "nothing to write")
	assert.Len(t, st.PendingOperations(), 2)
}

func TestState_OperationCopies(t *testing.T) {
	st, _ := openMemory(t)
	in := createOp("linode:1")
	op, err := st.BeginOperation(in)
	require.NoError(t, err)
	in.Data["token"] = "changed"
	op.Data["token"] = "changed"
	op.Data["request"].(map[string]any)["region"] = "changed"
	got, _ := st.GetOperation(op.ID)
	assert.Equal(t, "tok-linode:1", got.Data["token"])
	assert.Equal(t, "us-east", got.Data["request"].(map[string]any)["region"])
	got.Data["token"] = "changed"
	again := st.PendingOperations()[0]
	assert.Equal(t, "tok-linode:1", again.Data["token"])
}

func TestState_ConcurrentFinishOfOneOperationSucceedsOnce(t *testing.T) {
	st, _ := openMemory(t)
	for round := range 50 {
		op, err := st.BeginOperation(createOp(fmt.Sprintf("linode:%d", round)))
		require.NoError(t, err)
		var ok atomic.Int32
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				var err error
				if w%2 == 0 {
					err = st.FinishOperation(op.ID, func(tx *state.Tx) error {
						return tx.AddResource(op.Resource, instance(fmt.Sprint(w)))
					})
				} else {
					err = st.AbandonOperation(op.ID)
				}
				if err == nil {
					ok.Add(1)
				} else {
					assert.ErrorIs(t, err, state.ErrInvalid)
				}
			})
		}
		wg.Wait()
		require.Equal(t, int32(1), ok.Load(), "round %d: exactly one finish succeeds", round)
	}
	assert.Empty(t, st.PendingOperations())
}

func TestState_OperationsSurviveReopen(t *testing.T) {
	var stores statetest.MemoryStores
	open := func() *state.State {
		b, err := stores.Open("s")
		require.NoError(t, err)
		st, err := state.Open(b)
		require.NoError(t, err)
		return st
	}
	st := open()
	op, err := st.BeginOperation(createOp("linode:1"))
	require.NoError(t, err)
	require.NoError(t, st.Close())
	st = open()
	defer st.Close()
	got, ok := st.GetOperation(op.ID)
	require.True(t, ok)
	assert.Equal(t, op, got)
	require.NoError(t, st.View(func(s state.Snapshot) error {
		got, ok, err := s.Operation(op.ID)
		assert.True(t, ok)
		assert.Equal(t, op, got)
		return err
	}))
}

func TestState_OperationsAfterClose(t *testing.T) {
	st, _ := openMemory(t)
	op, err := st.BeginOperation(createOp("linode:1"))
	require.NoError(t, err)
	require.NoError(t, st.Close())
	_, err = st.BeginOperation(createOp("linode:2"))
	assert.ErrorIs(t, err, state.ErrClosed)
	assert.ErrorIs(t, st.FinishOperation(op.ID, nil), state.ErrClosed)
	assert.ErrorIs(t, st.AbandonOperation(op.ID), state.ErrClosed)
	_, ok := st.GetOperation(op.ID)
	assert.False(t, ok)
	assert.Nil(t, st.PendingOperations())
}

// TestOperations_Property runs random interleavings of workers that
// begin operations and then finish, abandon or leave them, a reconciler
// racing them to finish what is pending, injected commit failures and
// reopens, and checks at every snapshot and at the end: an operation
// whose begin was acknowledged is pending or finished (its resource
// stored), never both, and never neither unless it was abandoned; a
// finish that was acknowledged is never undone; a begin that failed left
// nothing.
func TestOperations_Property(t *testing.T) {
	trials := 40
	if testing.Short() {
		trials = 8
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for trial := range trials {
		rng := rand.New(rand.NewPCG(seed, uint64(trial)))
		propertyTrial(t, rng, trial)
		if t.Failed() {
			t.Fatalf("trial %d failed (seed %d)", trial, seed)
		}
	}
}

// opModel is what the test knows of one operation.
type opModel struct {
	id, resource string
	// begun: BeginOperation returned nil (its resource may then be
	// created); failed: it returned an error.
	begun, failed atomic.Bool
	// abandoning is set before AbandonOperation is called, abandoned
	// once it returned nil; finished once a FinishOperation returned nil.
	abandoning, abandoned, finished atomic.Bool
}

func propertyTrial(t *testing.T, rng *rand.Rand, trial int) {
	var stores statetest.MemoryStores
	b, err := stores.Open("s")
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)

	workers := 2 + rng.IntN(6)
	perWorker := 5 + rng.IntN(20)
	failPct := rng.IntN(20)
	var models []*opModel
	for w := range workers {
		for i := range perWorker {
			id := fmt.Sprintf("t%d-w%d-op%d", trial, w, i)
			models = append(models, &opModel{id: id, resource: "res:" + id})
		}
	}
	var failMu sync.Mutex
	failRng := rand.New(rand.NewPCG(rng.Uint64(), 2))
	b.FailCommits(func(*state.Batch) error {
		failMu.Lock()
		defer failMu.Unlock()
		if failRng.IntN(100) < failPct {
			return errDiskFull
		}
		return nil
	})

	// acked captures what was acknowledged before a snapshot is taken:
	// the snapshot must show all of it.
	type acked struct{ begun, finished, abandoned bool }
	capture := func() []acked {
		a := make([]acked, len(models))
		for i, m := range models {
			a[i] = acked{m.begun.Load(), m.finished.Load(), m.abandoned.Load()}
		}
		return a
	}
	check := func(where string, before []acked, s state.Snapshot) {
		for i, m := range models {
			_, pending, err := s.Operation(m.id)
			require.NoError(t, err)
			_, done, err := s.Resource(m.resource)
			require.NoError(t, err)
			// Read after the snapshot: an abandon may have begun before it.
			abandoning := m.abandoning.Load()
			switch a := before[i]; {
			case pending && done:
				t.Errorf("%s: %s is both pending and finished", where, m.id)
			case m.failed.Load() && (pending || done):
				t.Errorf("%s: %s: a failed begin left a trace (pending %v, finished %v)", where, m.id, pending, done)
			case a.finished && (pending || !done):
				t.Errorf("%s: %s: an acknowledged finish is undone (pending %v, resource %v)", where, m.id, pending, done)
			case a.abandoned && (pending || done):
				t.Errorf("%s: %s: an acknowledged abandon is undone", where, m.id)
			case a.begun && !abandoning && !pending && !done:
				t.Errorf("%s: %s: begun and acknowledged, but neither pending nor finished", where, m.id)
			}
		}
	}

	var wg sync.WaitGroup
	var stop atomic.Bool
	// A writer begins its operations, one after the other, and then
	// finishes (with its resource), abandons or leaves each.
	for w := range workers {
		wrng := rand.New(rand.NewPCG(rng.Uint64(), 3))
		mine := models[w*perWorker : (w+1)*perWorker]
		wg.Go(func() {
			for _, m := range mine {
				_, err := st.BeginOperation(&state.Operation{ID: m.id, Action: "create", Resource: m.resource, Data: map[string]any{"token": m.id}})
				if err != nil {
					require.ErrorIs(t, err, errDiskFull)
					m.failed.Store(true)
					continue
				}
				m.begun.Store(true)
				switch wrng.IntN(4) {
				case 0, 1:
					if st.FinishOperation(m.id, func(tx *state.Tx) error {
						return tx.AddResource(m.resource, &state.ResourceState{Type: "vm", ID: m.id})
					}) == nil {
						m.finished.Store(true)
					}
				case 2:
					m.abandoning.Store(true)
					if st.AbandonOperation(m.id) == nil {
						m.abandoned.Store(true)
					}
				}
			}
		})
	}
	// The reconciler finishes whatever is pending, racing the writers.
	wg.Go(func() {
		for !stop.Load() {
			for _, op := range st.PendingOperations() {
				err := st.FinishOperation(op.ID, func(tx *state.Tx) error {
					return tx.AddResource(op.Resource, &state.ResourceState{Type: "vm", ID: op.ID})
				})
				if err == nil {
					for _, m := range models {
						if m.id == op.ID {
							m.finished.Store(true)
						}
					}
				} else if !errors.Is(err, errDiskFull) {
					require.ErrorIs(t, err, state.ErrInvalid, "only a lost race or a failed commit")
				}
			}
		}
	})
	// The observer checks snapshots of the State's memory and of the
	// backend while all this runs.
	wg.Go(func() {
		for !stop.Load() {
			before := capture()
			require.NoError(t, st.View(func(s state.Snapshot) error { check("State.View", before, s); return nil }))
			before = capture()
			require.NoError(t, b.View(func(s state.Snapshot) error { check("Backend.View", before, s); return nil }))
		}
	})
	time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
	for _, m := range models { // wait for the writers
		for !m.begun.Load() && !m.failed.Load() {
			time.Sleep(time.Millisecond)
		}
	}
	stop.Store(true)
	wg.Wait()

	// After a reopen, the same holds.
	b.FailCommits(nil)
	require.NoError(t, st.Close())
	b, err = stores.Open("s")
	require.NoError(t, err)
	st, err = state.Open(b)
	require.NoError(t, err)
	defer st.Close()
	before := capture()
	require.NoError(t, st.View(func(s state.Snapshot) error { check("after reopen", before, s); return nil }))
}
