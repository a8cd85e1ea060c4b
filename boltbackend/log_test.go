package boltbackend_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/state"
)

// manual keeps the log from being checkpointed except when the Backend
// must (a View, Check, Compact, Backup, a full log, Close), so that a
// test decides what is in the bbolt file and what only in the log.
var manual = &boltbackend.Options{Log: boltbackend.LogOptions{CheckpointInterval: -1, CheckpointChanges: 1 << 30}}

// image copies the store's files at path (the bbolt file and its log) to
// a new directory and returns the copy's path: what a kill -9 leaves
// behind at a moment when no write is in flight.
func image(t testing.TB, path string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "state.db")
	copyFile(t, path, dst)
	if _, err := os.Stat(boltbackend.LogPath(path)); err == nil {
		copyFile(t, boltbackend.LogPath(path), boltbackend.LogPath(dst))
	}
	return dst
}

// workload makes n changes through st, of every kind: new hosts, host
// removals, resources whose type changes, pending operations begun and
// finished; each change is one commit.
func workload(t testing.TB, st *state.State, round, n int) {
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("r%d-h%03d", round, i)
		switch {
		case i%7 == 3:
			require.NoError(t, st.RemoveHost(fmt.Sprintf("r%d-h%03d", round, i-2)))
		case i%5 == 4:
			key := fmt.Sprintf("res:%d", i%13)
			require.NoError(t, st.AddResource(key, &state.ResourceState{Type: fmt.Sprintf("t%d", (i+round)%3), Data: map[string]any{"i": int64(i), "round": int64(round)}}))
		case i%11 == 10:
			op, err := st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: fmt.Sprintf("linode:%d", i)})
			require.NoError(t, err)
			if i%2 == 0 {
				require.NoError(t, st.FinishOperation(op.ID, nil))
			}
		case i%13 == 12:
			require.NoError(t, st.RemoveResource(fmt.Sprintf("res:%d", (i+5)%13)))
		default:
			require.NoError(t, st.AddHost(&state.HostState{Name: name, Address: "192.0.2.1", Vars: map[string]any{"i": int64(i)}}))
		}
	}
}

// byType lists the resources of every type a view shows, through its
// index.
func byType(t testing.TB, v state.Viewer) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	require.NoError(t, v.View(func(s state.Snapshot) error {
		for _, typ := range []string{"t0", "t1", "t2", "none"} {
			err := state.ResourcesOfType(s, typ, func(k string, r *state.ResourceState) error {
				if r.Type != typ {
					return fmt.Errorf("%s listed under %s", r.Type, typ)
				}
				out[typ] = append(out[typ], k)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	}))
	return out
}

// sameAs checks that the view v holds exactly what want holds, lengths,
// order of iteration and the type index included.
func sameAs(t testing.TB, want *state.Contents, wantTypes map[string][]string, v state.Viewer, what string) {
	t.Helper()
	got := contents(t, v)
	assert.Equal(t, want.Metadata, got.Metadata, what)
	assert.Equal(t, want.Hosts, got.Hosts, what)
	assert.Equal(t, want.Resources, got.Resources, what)
	assert.Equal(t, len(want.Operations), len(got.Operations), what)
	for id, op := range want.Operations {
		assert.Equal(t, op, got.Operations[id], what)
	}
	assert.Equal(t, wantTypes, byType(t, v), what)
	require.NoError(t, v.View(func(s state.Snapshot) error {
		nh, nr := s.Len()
		assert.Equal(t, len(want.Hosts), nh, what)
		assert.Equal(t, len(want.Resources), nr, what)
		var names []string
		if err := s.Hosts(func(h *state.HostState) error { names = append(names, h.Name); return nil }); err != nil {
			return err
		}
		assert.True(t, slices.IsSorted(names), "%s: hosts in order", what)
		var keys []string
		if err := s.Resources(func(k string, _ *state.ResourceState) error { keys = append(keys, k); return nil }); err != nil {
			return err
		}
		assert.True(t, slices.IsSorted(keys), "%s: resources in order", what)
		// The key scans (listing commands) see the same.
		ks, ok := s.(state.KeyScanner)
		require.True(t, ok)
		for _, prefix := range []string{"", "r1-", "r0-h00"} {
			var scanned, want []string
			require.NoError(t, ks.HostNames(prefix, func(n string) error { scanned = append(scanned, n); return nil }))
			for _, n := range names {
				if strings.HasPrefix(n, prefix) {
					want = append(want, n)
				}
			}
			assert.Equal(t, want, scanned, "%s: host names from %q", what, prefix)
		}
		var scanned []string
		require.NoError(t, ks.ResourceKeys("res:1", func(k string) error { scanned = append(scanned, k); return nil }))
		var wantKeys []string
		for _, k := range keys {
			if strings.HasPrefix(k, "res:1") {
				wantKeys = append(wantKeys, k)
			}
		}
		assert.Equal(t, wantKeys, scanned, "%s: resource keys", what)
		return nil
	}))
}

// TestLog_ReadOnlyShowsTheLogAndWritesNothing: a store whose writer died
// with changes only in its log: a read-only open shows them (over the
// bbolt file, in memory) and changes no file; check passes and reports
// the log; a read-write open applies them and empties the log; after Close
// the bbolt file alone is the whole store.
func TestLog_ReadOnlyShowsTheLogAndWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := openTB(t, path, manual)
	st, err := state.Open(b)
	require.NoError(t, err)
	workload(t, st, 0, 60) // applied at the end of the round by a View
	require.NoError(t, b.Checkpoint())
	workload(t, st, 1, 80) // only in the log
	want := contents(t, st)
	wantTypes := byType(t, st)
	stats := b.Stats()
	assert.Equal(t, uint64(1), stats.Direct, "the first commit only is direct")
	assert.Equal(t, stats.Batches-1, stats.LogSyncs, "one log append per commit (one writer)")
	logged := b.Log()
	assert.Greater(t, logged.Records, 60)
	crashed := image(t, path)
	require.NoError(t, st.Close())

	before, beforeLog := fileHash(t, crashed), fileHash(t, boltbackend.LogPath(crashed))
	ro := openTB(t, crashed, &boltbackend.Options{ReadOnly: true})
	ls := ro.Log()
	assert.Equal(t, logged.Changes, ls.Changes, "the log's changes, reported")
	assert.Equal(t, logged.Records, ls.Records)
	assert.False(t, ls.Torn)
	sameAs(t, want, wantTypes, ro, "read-only, over the log")
	require.NoError(t, ro.Check())
	c := filepath.Join(t.TempDir(), "compact.db")
	require.NoError(t, ro.Compact(c), "a read-only compaction copies the log too")
	require.NoError(t, ro.Close())
	assert.Equal(t, before, fileHash(t, crashed), "the read-only open wrote nothing")
	assert.Equal(t, beforeLog, fileHash(t, boltbackend.LogPath(crashed)))
	sameAs(t, want, wantTypes, openTB(t, c, &boltbackend.Options{ReadOnly: true}), "the compacted copy")

	rw := openTB(t, crashed, nil)
	assert.Zero(t, rw.Log().Records)
	fi, err := os.Stat(boltbackend.LogPath(crashed))
	require.NoError(t, err)
	assert.Zero(t, fi.Size(), "a read-write open applies the log and empties it")
	sameAs(t, want, wantTypes, rw, "read-write, applied")
	require.NoError(t, rw.Check())
	require.NoError(t, rw.Close())

	// The bbolt file alone is the store now.
	alone := filepath.Join(t.TempDir(), "state.db")
	copyFile(t, crashed, alone)
	sameAs(t, want, wantTypes, openTB(t, alone, &boltbackend.Options{ReadOnly: true}), "the file alone")
}

// TestLog_CleanCloseLeavesOneFile: after Close, the log is empty and the
// bbolt file holds everything, so that copying it is a complete backup.
func TestLog_CleanCloseLeavesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := state.Open(openRaw(t, path))
	require.NoError(t, err)
	workload(t, st, 0, 100)
	want, wantTypes := contents(t, st), byType(t, st)
	require.NoError(t, st.Close())
	fi, err := os.Stat(boltbackend.LogPath(path))
	require.NoError(t, err)
	assert.Zero(t, fi.Size())
	alone := filepath.Join(t.TempDir(), "state.db")
	copyFile(t, path, alone)
	sameAs(t, want, wantTypes, openTB(t, alone, &boltbackend.Options{ReadOnly: true}), "a copy of the file")
}

// TestLog_ReplayIsIdempotent: applying the log twice changes nothing. A
// crash after the log was applied but before it was emptied (or before
// the emptying was durable) leaves records the store already holds: the
// next open skips them.
func TestLog_ReplayIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := openTB(t, path, manual)
	st, err := state.Open(b)
	require.NoError(t, err)
	workload(t, st, 0, 70)
	want, wantTypes := contents(t, st), byType(t, st)
	crashed := image(t, path)
	require.NoError(t, st.Close())
	stale := filepath.Join(t.TempDir(), "stale-wal")
	copyFile(t, boltbackend.LogPath(crashed), stale)

	b1 := openRaw(t, crashed) // applies the log
	require.NoError(t, b1.Close())
	applied := fileHash(t, crashed)
	copyFile(t, stale, boltbackend.LogPath(crashed)) // as if the emptying was lost
	ro := openTB(t, crashed, &boltbackend.Options{ReadOnly: true})
	assert.Zero(t, ro.Log().Records, "nothing beyond what the store holds")
	sameAs(t, want, wantTypes, ro, "read-only, log applied twice")
	require.NoError(t, ro.Close())
	b2 := openRaw(t, crashed)
	sameAs(t, want, wantTypes, b2, "read-write, log applied twice")
	require.NoError(t, b2.Check())
	require.NoError(t, b2.Close())
	assert.Equal(t, applied, fileHash(t, crashed), "the second replay did not write the store")
}

// TestLog_CrashDuringACheckpoint takes the store's files while a
// checkpoint transaction is under way (bbolt has written part of its
// pages, not its meta page): the copy reopens with every acknowledged
// change, from the log.
func TestLog_CrashDuringACheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := openTB(t, path, manual)
	st, err := state.Open(b)
	require.NoError(t, err)
	workload(t, st, 0, 120)
	want, wantTypes := contents(t, st), byType(t, st)
	var crashed string
	boltbackend.SetHooks(b, boltbackend.Hooks{Checkpoint: func() error {
		crashed = image(t, path)
		return nil
	}})
	require.NoError(t, b.Checkpoint())
	boltbackend.SetHooks(b, boltbackend.Hooks{})
	require.NotEmpty(t, crashed, "a checkpoint ran")
	require.NoError(t, st.Close())
	rw := openTB(t, crashed, nil)
	sameAs(t, want, wantTypes, rw, "reopened after a crash in a checkpoint")
	require.NoError(t, rw.Check())

	// The same, the checkpoint failing (a full disk): the changes stay in
	// the log, commits go on, and a later checkpoint applies them.
	path2 := filepath.Join(t.TempDir(), "state.db")
	b2 := openTB(t, path2, manual)
	st2, err := state.Open(b2)
	require.NoError(t, err)
	workload(t, st2, 0, 30)
	errFull := errors.New("no space left on device (injected)")
	boltbackend.SetHooks(b2, boltbackend.Hooks{Checkpoint: func() error { return errFull }})
	require.ErrorIs(t, b2.Checkpoint(), errFull)
	require.ErrorIs(t, b2.View(func(state.Snapshot) error { return nil }), errFull, "a View that needs the checkpoint says why it cannot be had")
	workload(t, st2, 1, 30)
	boltbackend.SetHooks(b2, boltbackend.Hooks{})
	want2, wantTypes2 := contents(t, st2), byType(t, st2)
	sameAs(t, want2, wantTypes2, b2, "after the fault")
	require.NoError(t, st2.Close())
	sameAs(t, want2, wantTypes2, openTB(t, path2, &boltbackend.Options{ReadOnly: true}), "reopened")
}

// logEnd returns the offset after the last byte of the log at path that
// is not zero: the end of its last record (the rest is preallocated).
func logEnd(t testing.TB, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return i + 1
		}
	}
	return 0
}

// TestLog_TornLastRecordIsCutOff tears the log's last record (the commit
// in flight at a crash) at several lengths: the store opens without it,
// with everything before it.
func TestLog_TornLastRecordIsCutOff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := openTB(t, path, manual)
	st, err := state.Open(b)
	require.NoError(t, err)
	workload(t, st, 0, 20)
	want, wantTypes := contents(t, st), byType(t, st)
	require.NoError(t, st.AddHost(&state.HostState{Name: "in-flight"}))
	crashed := image(t, path)
	require.NoError(t, st.Close())
	end := logEnd(t, boltbackend.LogPath(crashed))
	for _, cut := range []int{1, 7, 8, 16, 20, 40, 60} {
		torn := image(t, crashed)
		f, err := os.OpenFile(boltbackend.LogPath(torn), os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteAt(make([]byte, cut), int64(end-cut))
		require.NoError(t, err)
		require.NoError(t, f.Close())
		ro := openTB(t, torn, &boltbackend.Options{ReadOnly: true})
		assert.True(t, ro.Log().Torn, "cut %d: reported torn", cut)
		sameAs(t, want, wantTypes, ro, fmt.Sprintf("read-only, last record cut by %d bytes", cut))
		require.NoError(t, ro.Close())
		rw := openTB(t, torn, nil)
		sameAs(t, want, wantTypes, rw, fmt.Sprintf("read-write, last record cut by %d bytes", cut))
		require.NoError(t, rw.Close())
	}
}

// TestLog_DamageBeforeTheTailIsRefused flips one byte in the middle of
// the log: every open refuses the store with ErrCorrupt naming the log
// and the offset, and neither file is changed; an Inspect open lets
// Check list it.
func TestLog_DamageBeforeTheTailIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := openTB(t, path, manual)
	st, err := state.Open(b)
	require.NoError(t, err)
	workload(t, st, 0, 40)
	crashed := image(t, path)
	require.NoError(t, st.Close())
	lp := boltbackend.LogPath(crashed)
	end := logEnd(t, lp)
	data, err := os.ReadFile(lp)
	require.NoError(t, err)
	at := (4096 + end) / 2
	for data[at] == 0 { // a zero may be padding, which no checksum covers
		at++
	}
	data[at] ^= 0x10
	require.NoError(t, os.WriteFile(lp, data, 0o600))
	before, beforeLog := fileHash(t, crashed), fileHash(t, lp)
	for _, opts := range []*boltbackend.Options{nil, {ReadOnly: true}} {
		_, err := boltbackend.Open(crashed, opts)
		require.ErrorIs(t, err, state.ErrCorrupt)
		assert.ErrorContains(t, err, lp)
		assert.ErrorContains(t, err, "offset")
		assert.ErrorContains(t, err, "nothing was applied or changed")
	}
	assert.Equal(t, before, fileHash(t, crashed))
	assert.Equal(t, beforeLog, fileHash(t, lp))
	in := openTB(t, crashed, &boltbackend.Options{Inspect: true})
	err = in.Check()
	var ce *state.CheckError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "log", ce.Problems[0].Section)
	assert.Contains(t, ce.Problems[0].Msg, "offset")
}

// TestLog_SegmentsAreReused runs many commits through a small log that
// checkpoints often: the file stays within its bound while its segments
// are reused, and a copy taken at any moment between commits, or with its
// last record torn, reopens with every acknowledged change.
func TestLog_SegmentsAreReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	opts := &boltbackend.Options{Log: boltbackend.LogOptions{SegmentSize: 4096, MaxSize: 4096 + 4*4096, CheckpointChanges: 25, CheckpointInterval: -1}}
	b := openTB(t, path, opts)
	st, err := state.Open(b)
	require.NoError(t, err)
	for round := range 12 {
		workload(t, st, round, 50)
		want, wantTypes := contents(t, st), byType(t, st) // State's memory: no checkpoint
		crashed := image(t, path)
		rw := openTB(t, crashed, nil)
		sameAs(t, want, wantTypes, rw, fmt.Sprintf("round %d", round))
		require.NoError(t, rw.Close())
	}
	s := b.Stats()
	assert.LessOrEqual(t, s.LogPeak, opts.Log.MaxSize, "the log within its bound")
	assert.Greater(t, s.Checkpoints, uint64(12), "checkpoints by count")
	assert.Greater(t, s.LogSyncs*200, uint64(opts.Log.MaxSize), "the log was filled several times over: its segments were reused")
	require.NoError(t, st.Close())
}

// TestLog_FullLogWaitsForACheckpoint: with checkpoints only on demand, a
// log that fills up makes the next commit wait for one; none fails.
func TestLog_FullLogWaitsForACheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	opts := &boltbackend.Options{Log: boltbackend.LogOptions{SegmentSize: 4096, MaxSize: 4096 + 2*4096, CheckpointChanges: 1 << 30, CheckpointInterval: -1}}
	st, err := state.Open(openRaw2(t, path, opts))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				assert.NoError(t, st.AddHost(&state.HostState{Name: fmt.Sprintf("w%d-%d", w, i), Vars: map[string]any{"pad": "0123456789abcdef0123456789abcdef"}}))
			}
		})
	}
	wg.Wait()
	require.NoError(t, st.Close())
	ro := openTB(t, path, &boltbackend.Options{ReadOnly: true})
	require.NoError(t, ro.View(func(s state.Snapshot) error {
		nh, _ := s.Len()
		assert.Equal(t, 800, nh)
		return nil
	}))
}

func openRaw2(t testing.TB, path string, opts *boltbackend.Options) *boltbackend.Backend {
	t.Helper()
	b, err := boltbackend.Open(path, opts)
	require.NoError(t, err)
	return b
}

// TestLog_UnknownOutcome: a log append whose fdatasync fails may or may
// not be on disk: the commit says so (ErrOutcomeUnknown), every later
// commit and View is refused, and the next open reads what is there.
func TestLog_UnknownOutcome(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := boltbackend.Open(path, nil)
	require.NoError(t, err)
	for _, name := range []string{"direct", "logged"} {
		_, err = b.Commit(hostBatch(name))
		require.NoError(t, err)
	}
	errSync := errors.New("fdatasync: input/output error (injected)")
	var once sync.Once
	boltbackend.SetHooks(b, boltbackend.Hooks{LogAppend: func() (err error, unknown bool) {
		once.Do(func() { err, unknown = errSync, true })
		return err, unknown
	}})
	_, err = b.Commit(hostBatch("unknown"))
	require.ErrorIs(t, err, state.ErrOutcomeUnknown)
	require.ErrorIs(t, err, errSync)
	_, err = b.Commit(hostBatch("later"))
	require.ErrorIs(t, err, state.ErrOutcomeUnknown, "every later commit fails")
	require.ErrorIs(t, b.View(func(state.Snapshot) error { return nil }), state.ErrOutcomeUnknown)
	require.NoError(t, b.Close())

	b = openTB(t, path, nil)
	require.NoError(t, b.Check())
	require.NoError(t, b.View(func(s state.Snapshot) error {
		for name, want := range map[string]bool{"direct": true, "logged": true, "later": false} {
			_, ok, err := s.Host(name)
			require.NoError(t, err)
			assert.Equal(t, want, ok, name)
		}
		return nil
	}))
	_, err = b.Commit(hostBatch("after-reopen"))
	require.NoError(t, err)
}

// TestLog_FailedAppendIsCommittedDirectly: an append that wrote nothing
// (the log could not grow) makes its group go straight to bbolt; when
// that fails too, the commit fails and stores nothing.
func TestLog_FailedAppendIsCommittedDirectly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := openTB(t, path, nil)
	_, err := b.Commit(hostBatch("first"))
	require.NoError(t, err)
	errGrow := errors.New("fallocate: no space left on device (injected)")
	boltbackend.SetHooks(b, boltbackend.Hooks{LogAppend: func() (error, bool) { return errGrow, false }})
	_, err = b.Commit(hostBatch("direct"))
	require.NoError(t, err)
	assert.Equal(t, uint64(2), b.Stats().Direct)
	boltbackend.SetHooks(b, boltbackend.Hooks{
		LogAppend: func() (error, bool) { return errGrow, false },
		Commit:    func() error { return errGrow },
	})
	_, err = b.Commit(hostBatch("lost"))
	require.ErrorIs(t, err, errGrow)
	assert.NotErrorIs(t, err, state.ErrOutcomeUnknown)
	boltbackend.SetHooks(b, boltbackend.Hooks{})
	require.NoError(t, b.View(func(s state.Snapshot) error {
		_, ok, _ := s.Host("direct")
		assert.True(t, ok)
		_, ok, _ = s.Host("lost")
		assert.False(t, ok)
		return nil
	}))
}

// TestLog_HostileLogPath: what is at the log's path when it is not a log
// file of the store (a symbolic link, a FIFO, a directory, another
// store's log, a log beside a store that never had one) is refused with
// ErrCorrupt, and nothing is written through it.
func TestLog_HostileLogPath(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "precious")
	require.NoError(t, os.WriteFile(target, []byte("precious"), 0o600))

	mkStore := func(name string, opts *boltbackend.Options) string {
		p := filepath.Join(dir, name)
		b := openRaw2(t, p, opts)
		st, err := state.Open(b)
		require.NoError(t, err)
		workload(t, st, 0, 10)
		require.NoError(t, st.Close())
		return p
	}
	for name, mk := range map[string]func(p string) error{
		"symlink":   func(p string) error { return os.Symlink(target, p) },
		"fifo":      func(p string) error { return syscall.Mkfifo(p, 0o600) },
		"directory": func(p string) error { return os.Mkdir(p, 0o700) },
	} {
		p := mkStore(name+".db", nil)
		lp := boltbackend.LogPath(p)
		require.NoError(t, os.Remove(lp))
		require.NoError(t, mk(lp))
		for _, opts := range []*boltbackend.Options{nil, {ReadOnly: true}} {
			b, err := boltbackend.Open(p, opts)
			if err == nil {
				b.Close()
			}
			assert.ErrorIs(t, err, state.ErrCorrupt, "%s at the log's path", name)
		}
	}
	data, _ := os.ReadFile(target)
	assert.Equal(t, "precious", string(data))

	// Another store's log.
	a, c := mkStore("a.db", manual), mkStore("c.db", nil)
	ba := openRaw2(t, a, manual)
	st, err := state.Open(ba)
	require.NoError(t, err)
	workload(t, st, 1, 10)
	crashedA := image(t, a)
	require.NoError(t, st.Close())
	copyFile(t, boltbackend.LogPath(crashedA), boltbackend.LogPath(c))
	_, err = boltbackend.Open(c, nil)
	require.ErrorIs(t, err, state.ErrCorrupt)
	assert.ErrorContains(t, err, "another store")

	// A store that never had a log (layout version 1) with a log beside it.
	v1 := filepath.Join(dir, "v1.db")
	copyFile(t, goldenStore, v1)
	copyFile(t, boltbackend.LogPath(crashedA), boltbackend.LogPath(v1))
	_, err = boltbackend.Open(v1, &boltbackend.Options{ReadOnly: true})
	require.ErrorIs(t, err, state.ErrCorrupt)
	assert.ErrorContains(t, err, "never had a log")
}

// TestLog_RemovedWhileHeld: a log file deleted or replaced while a
// writer holds the store would take acknowledged changes with it: the
// next commit is refused.
func TestLog_RemovedWhileHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := openTB(t, path, nil)
	for _, name := range []string{"a", "b"} {
		_, err := b.Commit(hostBatch(name))
		require.NoError(t, err)
	}
	require.NoError(t, os.Remove(boltbackend.LogPath(path)))
	_, err := b.Commit(hostBatch("c"))
	require.ErrorIs(t, err, state.ErrLocked)
	assert.ErrorContains(t, err, "-wal")
}

// TestLog_ImportThenCommits: an import (Replace) is committed straight to
// bbolt, after what the log holds; commits after it are logged, and a
// crash image of it all reopens whole.
func TestLog_ImportThenCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := openTB(t, path, manual)
	st, err := state.Open(b)
	require.NoError(t, err)
	workload(t, st, 0, 20)
	c := contents(t, st)
	c.Hosts["imported"] = &state.HostState{Name: "imported", Address: "192.0.2.9"}
	require.NoError(t, st.Replace(c, true))
	workload(t, st, 1, 20)
	want, wantTypes := contents(t, st), byType(t, st)
	crashed := image(t, path)
	require.NoError(t, st.Close())
	ro := openTB(t, crashed, &boltbackend.Options{ReadOnly: true})
	sameAs(t, want, wantTypes, ro, "read-only")
	require.NoError(t, ro.Close())
	sameAs(t, want, wantTypes, openTB(t, crashed, nil), "read-write")
}

// TestLog_BackupHoldsTheLog: a backup of a store whose changes are in
// its log holds them.
func TestLog_BackupHoldsTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := openTB(t, path, manual)
	st, err := state.Open(b)
	require.NoError(t, err)
	workload(t, st, 0, 30)
	want, wantTypes := contents(t, st), byType(t, st)
	dst := filepath.Join(t.TempDir(), "backup.db")
	require.NoError(t, b.Backup(dst))
	sameAs(t, want, wantTypes, openTB(t, dst, &boltbackend.Options{ReadOnly: true}), "backup")
	require.NoError(t, st.Close())
}
