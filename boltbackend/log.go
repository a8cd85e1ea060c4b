package boltbackend

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/go-ftl2/ftlstate/internal/wal"
	"github.com/go-ftl2/ftlstate/state"
)

// LogPath returns the path of the write-ahead log of the store at store
// (symbolic links resolved): store + "-wal".
func LogPath(store string) string { return store + "-wal" }

// Defaults of LogOptions.
const (
	DefaultLogMaxSize         = wal.DefaultMaxSize
	DefaultLogSegmentSize     = 1 << 20
	DefaultCheckpointChanges  = 4096
	DefaultCheckpointInterval = 100 * time.Millisecond
)

// LogOptions configure the write-ahead log (see Durability in the
// package documentation). The zero value uses it with the defaults.
type LogOptions struct {
	// Disabled commits every group straight to bbolt, two fdatasyncs
	// each, as versions before the log did. A log left by a crash is
	// still applied when the store is opened.
	Disabled bool
	// MaxSize bounds the log file (default 64 MiB). When the log is full,
	// commits wait for a checkpoint.
	MaxSize int64
	// SegmentSize is the unit in which the log file grows and is reused
	// (default 1 MiB). A group commit larger than a segment is committed
	// straight to bbolt.
	SegmentSize int64
	// CheckpointChanges and CheckpointInterval say when the checkpointer
	// applies the log to bbolt: once this many changes are logged
	// (default 4096) or the oldest change logged is this old (default
	// 100ms; negative: never by age), and whenever the log is full, a
	// View, Check, Compact or Backup needs it, or the Backend is closed.
	CheckpointChanges  int
	CheckpointInterval time.Duration
}

// logKey is the metadata key of the log: the log's ID (16 bytes), then
// the LSN of the last log record applied to the store (8 bytes,
// big-endian). Layout version 3 has it.
var keyLog = []byte("log")

// schemaLog is the first layout version with the log key.
const schemaLog = 3

// logMeta is the log key's value.
type logMeta struct {
	id      wal.ID
	applied uint64
}

func (m logMeta) encode() []byte {
	v := make([]byte, 0, 24)
	v = append(v, m.id[:]...)
	return append(v, u64(m.applied)...)
}

// Stats are counters of a Backend's commit path since Open, for
// benchmarks and diagnostics.
type Stats struct {
	// Batches is the number of batches committed; Groups the number of
	// group commits they took (log appends plus direct commits).
	Batches, Groups uint64
	// LogSyncs is the number of log appends (one fdatasync each); Direct
	// the number of groups committed straight to bbolt (the first of a
	// Backend, imports, groups larger than a segment, and every group
	// with the log disabled).
	LogSyncs, Direct uint64
	// Checkpoints is the number of checkpoints (bbolt transactions
	// applying the log), CheckpointedChanges the changes they applied.
	Checkpoints, CheckpointedChanges uint64
	// LogSize is the log file's size now; LogPeak the largest it was.
	LogSize, LogPeak int64
}

// LogStatus describes the changes a store's log holds that its bbolt
// file does not: for a read-only Backend, what Open found (a writer
// crashed or was killed; the next read-write Open applies them); for a
// read-write one, what is logged and not yet checkpointed.
type LogStatus struct {
	// Path is the log's path; Size the file's size in bytes (0: none).
	Path string
	Size int64
	// Records is the number of group commits not in the bbolt file,
	// Changes their changes and Bytes their size in the log.
	Records, Changes int
	Bytes            int64
	// Torn is set when the log ended with a partial record (the write in
	// flight at a crash), which was not applied.
	Torn bool
}

// Log returns the status of the store's write-ahead log.
func (b *Backend) Log() LogStatus {
	if b.lg == nil {
		return b.logFound
	}
	st := LogStatus{Path: b.lg.path}
	b.lg.mu.Lock()
	st.Records, st.Changes = len(b.lg.tail), b.lg.tailChanges
	st.Bytes = b.lg.tailBytes
	b.lg.mu.Unlock()
	st.Size = b.stats.logSize.Load()
	return st
}

// Stats returns the Backend's counters.
func (b *Backend) Stats() Stats {
	s := &b.stats
	return Stats{
		Batches: s.batches.Load(), Groups: s.groups.Load(), LogSyncs: s.logSyncs.Load(), Direct: s.direct.Load(),
		Checkpoints: s.checkpoints.Load(), CheckpointedChanges: s.checkpointed.Load(),
		LogSize: s.logSize.Load(), LogPeak: s.logPeak.Load(),
	}
}

// stats are the counters behind Stats.
type stats struct {
	batches, groups, logSyncs, direct, checkpoints, checkpointed atomic.Uint64
	logSize, logPeak                                             atomic.Int64
}

func (s *stats) setLogSize(n int64) {
	s.logSize.Store(n)
	for {
		p := s.logPeak.Load()
		if n <= p || s.logPeak.CompareAndSwap(p, n) {
			return
		}
	}
}

// logState is a read-write Backend's log: the committer appends groups
// to it, the checkpointer applies them to bbolt.
type logState struct {
	b          *Backend
	path       string
	id         wal.ID
	wopts      wal.Options
	ckChanges  int
	ckInterval time.Duration

	// Owned by the committer goroutine:
	// w is the log writer, nil until the first group is logged.
	w *wal.Writer
	// meta is the store's metadata after the last group committed.
	meta state.Metadata
	// keyed is set once a direct commit of this Backend worked, which
	// gave bbolt the log key with id if it lacked it: groups are logged
	// only after it. The first group of a Backend is so committed
	// straight to bbolt, which costs a process that commits once (a
	// command-line edit) no log at all.
	keyed bool
	buf   []byte

	mu sync.Mutex // guards the fields below
	// tail are the groups logged and not yet applied to bbolt, in LSN
	// order, with their changes and bytes in the log.
	tail        []*logged
	tailChanges int
	tailBytes   int64
	tailSince   time.Time // when the oldest group of tail was logged
	// logged is the LSN of the last group logged; applied the last one
	// applied to bbolt (durably).
	logged, applied uint64
	// failed is the error of the last checkpoint, nil when it worked;
	// failedAt when it failed.
	failed   error
	failedAt time.Time
	// waiters wait for the groups up to their target to be applied.
	waiters []logWaiter

	wake chan struct{} // a nudge for the checkpointer (capacity 1)
	stop chan struct{} // closed to stop the checkpointer
	done chan struct{} // closed when it has stopped
}

type logWaiter struct {
	target uint64
	ch     chan error
}

// retryDelay is how long the checkpointer waits after a failed
// checkpoint before it tries again on its own.
const retryDelay = 100 * time.Millisecond

func newLogState(b *Backend, o LogOptions, m logMeta, meta state.Metadata) *logState {
	lg := &logState{
		b: b, path: LogPath(b.real), id: m.id, meta: meta,
		wopts:      wal.Options{MaxSize: o.MaxSize, SegmentSize: o.SegmentSize},
		ckChanges:  o.CheckpointChanges,
		ckInterval: o.CheckpointInterval,
		logged:     m.applied, applied: m.applied,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if lg.wopts.MaxSize <= 0 {
		lg.wopts.MaxSize = DefaultLogMaxSize
	}
	if lg.wopts.SegmentSize <= 0 {
		lg.wopts.SegmentSize = DefaultLogSegmentSize
	}
	if lg.ckChanges <= 0 {
		lg.ckChanges = DefaultCheckpointChanges
	}
	if lg.ckInterval == 0 {
		lg.ckInterval = DefaultCheckpointInterval
	}
	return lg
}

func newLogID() wal.ID {
	var id wal.ID
	rand.Read(id[:])
	return id
}

// kick nudges the checkpointer.
func (lg *logState) kick() {
	select {
	case lg.wake <- struct{}{}:
	default:
	}
}

// maxPayload is the largest group payload the log takes.
func (lg *logState) maxPayload() int {
	return int(min(max(lg.wopts.SegmentSize, wal.MinSegmentSize), wal.MaxSegmentSize)&^7) - 16
}

// direct reports whether r must be committed straight to bbolt: an
// import (Replace), a batch too large for one log record, and anything
// before bbolt holds the log key.
func (lg *logState) direct(r *request) bool {
	return !lg.keyed || r.batch.Replace != nil || r.size+groupOverhead+changeOverhead*len(r.changes) > lg.maxPayload()
}

// The log record's bytes besides keys and records: per group (version,
// serial, metadata, count), and per change (kind and two lengths).
const (
	groupOverhead  = 512
	changeOverhead = 12
)

// logGroup appends group to the log as one record and hands it to the
// checkpointer; each request gets its result. When the log cannot take
// it (no space can be made, the file cannot grow), the group is committed
// straight to bbolt instead.
func (b *Backend) logGroup(group []*request) {
	lg := b.lg
	fail := func(err error) {
		for _, r := range group {
			r.meta, r.err = state.Metadata{}, err
		}
	}
	if err := b.writable(); err != nil {
		fail(err)
		return
	}
	prev := lg.meta
	meta := prev
	changes := 0
	for _, r := range group {
		meta = state.NextMetadata(meta, r.batch)
		r.meta = meta
		changes += len(r.changes)
	}
	var err error
	lg.buf, err = appendGroup(lg.buf[:0], prev.Serial, &meta, group)
	if err != nil {
		fail(fmt.Errorf("boltbackend: %s: commit: %w", b.path, err))
		return
	}
	if lg.w == nil {
		w, err := wal.Open(lg.path, lg.id, lg.applied+1, &lg.wopts)
		if err != nil {
			b.commitDirect(group, fmt.Errorf("open the log: %w", err))
			return
		}
		lg.mu.Lock()
		lg.w = w
		lg.mu.Unlock()
	}
	if !lg.w.Free(len(lg.buf)) {
		// Full: wait until everything logged is applied, which frees
		// every segment.
		if err := lg.sync(); err != nil {
			fail(fmt.Errorf("boltbackend: %s: commit: the log is full and a checkpoint failed: %w", b.path, err))
			return
		}
	}
	var lsn uint64
	var unknown bool
	if hk := b.hooks.Load(); hk != nil && hk.logAppend != nil {
		err, unknown = hk.logAppend()
	}
	if err == nil {
		lsn, err = lg.w.Append(lg.buf)
		unknown = err != nil && lg.w.Failed() != nil
	}
	b.stats.setLogSize(lg.w.Size())
	if err != nil {
		if !unknown {
			// Nothing was acknowledged: commit it another way.
			b.commitDirect(group, err)
			return
		}
		broken := fmt.Errorf("boltbackend: %s: %w: a group written to the log %s may or may not be stored (its fdatasync failed); reads and writes are refused until the store is reopened: %w",
			b.path, state.ErrOutcomeUnknown, lg.path, err)
		b.broken.Store(&broken)
		fail(broken)
		return
	}
	g := &logged{lsn: lsn, prev: prev.Serial, meta: meta, size: int64(len(lg.buf)), changes: make([]prepared, 0, changes)}
	for _, r := range group {
		g.changes = append(g.changes, r.changes...)
	}
	lg.meta = meta
	lg.mu.Lock()
	if len(lg.tail) == 0 {
		lg.tailSince = time.Now()
	}
	lg.tail = append(lg.tail, g)
	lg.tailChanges += changes
	lg.tailBytes += int64(len(lg.buf))
	lg.logged = lsn
	due := lg.tailChanges >= lg.ckChanges || len(lg.tail) == 1
	lg.mu.Unlock()
	if due {
		lg.kick()
	}
	b.stats.logSyncs.Add(1)
	b.stats.groups.Add(1)
	b.stats.batches.Add(uint64(len(group)))
}

// commitDirect commits group straight to bbolt, after everything logged
// before it is applied (why says why it is not logged, for messages).
func (b *Backend) commitDirect(group []*request, why error) {
	if err := b.lg.sync(); err != nil {
		for _, r := range group {
			r.meta = state.Metadata{}
			if why != nil {
				r.err = fmt.Errorf("boltbackend: %s: commit: %v, and a checkpoint failed: %w", b.path, why, err)
			} else {
				r.err = fmt.Errorf("boltbackend: %s: commit: a checkpoint before it failed: %w", b.path, err)
			}
		}
		return
	}
	b.commitGroup(group)
}

// writable checks, before a group is written, that the store's files are
// still the ones this Backend holds, and that no earlier failure left the
// store's content unknown.
func (b *Backend) writable() error {
	if b.broken.Load() == nil {
		err := b.stillAtPath()
		if err == nil && b.lg != nil && b.lg.w != nil {
			err = sameFile(b.lg.w.File(), b.lg.path)
		}
		if err != nil {
			// Someone replaced or removed a file of the store while we
			// hold it: what we write would go to a file nobody reads.
			broken := fmt.Errorf("boltbackend: %s: %w while this process held it; refusing to write into the old file (reopen the store): %w", b.path, err, state.ErrLocked)
			b.broken.Store(&broken)
		}
	}
	if p := b.broken.Load(); p != nil {
		return *p
	}
	return nil
}

// sameFile checks that path still names the file f.
func sameFile(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	cur, err := os.Lstat(path)
	if err == nil && os.SameFile(fi, cur) {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return fmt.Errorf("%s: %w", path, errReplaced)
}

// sync waits until every group logged so far is applied to bbolt: a
// checkpoint, if one is needed. It returns the checkpoint's error.
func (lg *logState) sync() error {
	lg.mu.Lock()
	target := lg.logged
	if lg.applied >= target {
		lg.mu.Unlock()
		return nil
	}
	ch := make(chan error, 1)
	lg.waiters = append(lg.waiters, logWaiter{target, ch})
	lg.mu.Unlock()
	lg.kick()
	return <-ch
}

// run is the checkpointer: it applies the log's tail to bbolt when it is
// due (see LogOptions) or wanted (sync), until stopped.
func (lg *logState) run() {
	defer close(lg.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		lg.mu.Lock()
		due, wait := lg.dueLocked(time.Now())
		lg.mu.Unlock()
		if due {
			lg.checkpoint()
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-lg.wake:
		case <-timer.C:
		case <-lg.stop:
			timer.Stop()
			return
		}
		timer.Stop()
	}
}

// dueLocked reports whether a checkpoint is due now, and otherwise how
// long until one will be (0: none is coming).
func (lg *logState) dueLocked(now time.Time) (bool, time.Duration) {
	if len(lg.waiters) > 0 {
		return true, 0
	}
	if len(lg.tail) == 0 {
		return false, 0
	}
	if lg.failed != nil {
		if d := retryDelay - now.Sub(lg.failedAt); d > 0 {
			return false, d
		}
		return true, 0
	}
	if lg.tailChanges >= lg.ckChanges {
		return true, 0
	}
	if lg.ckInterval < 0 {
		return false, 0
	}
	if d := lg.ckInterval - now.Sub(lg.tailSince); d > 0 {
		return false, d
	}
	return true, 0
}

// checkpoint applies the groups logged so far to bbolt in one
// transaction, then releases their space in the log and answers the
// waiters.
func (lg *logState) checkpoint() {
	lg.mu.Lock()
	recs := lg.tail[:len(lg.tail):len(lg.tail)]
	w := lg.w
	lg.mu.Unlock()
	var err error
	if len(recs) > 0 {
		if p := lg.b.broken.Load(); p != nil {
			err = *p
		} else {
			err = lg.b.update("checkpoint", func(tx *bolt.Tx) error {
				return lg.b.applyLogged(tx, recs, lg.id)
			})
		}
	}
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if err == nil && len(recs) > 0 {
		n := 0
		for _, g := range recs {
			n += len(g.changes)
			lg.tailBytes -= g.size
		}
		lg.applied = recs[len(recs)-1].lsn
		rest := copy(lg.tail, lg.tail[len(recs):])
		clear(lg.tail[rest:])
		lg.tail = lg.tail[:rest]
		lg.tailChanges -= n
		if rest > 0 {
			lg.tailSince = time.Now() // no later than the truth: the oldest left was logged since
		}
		w.Release(lg.applied)
		lg.b.stats.checkpoints.Add(1)
		lg.b.stats.checkpointed.Add(uint64(n))
	}
	if err != nil {
		lg.failed, lg.failedAt = err, time.Now()
	} else {
		lg.failed = nil
	}
	keep := lg.waiters[:0]
	for _, wt := range lg.waiters {
		switch {
		case lg.applied >= wt.target:
			wt.ch <- nil
		case err != nil:
			wt.ch <- err
		default:
			keep = append(keep, wt)
		}
	}
	clear(lg.waiters[len(keep):])
	lg.waiters = keep
}

// applyLogged applies the logged groups recs, in order, in tx, and
// records the last one's metadata and LSN.
func (b *Backend) applyLogged(tx *bolt.Tx, recs []*logged, id wal.ID) error {
	bk, err := b.openBuckets(tx)
	if err != nil {
		return err
	}
	nHosts, nResources := int64(bk.nHosts), int64(bk.nResources)
	for _, g := range recs {
		if bk.ops == nil && storesOperations(g.changes) {
			if err := bk.addOperations(tx); err != nil {
				return err
			}
		}
		for i := range g.changes {
			c := &g.changes[i]
			dh, dr, err := bk.change(c)
			if err != nil {
				return fmt.Errorf("%v %q: %w", c.kind, c.key, err)
			}
			nHosts += dh
			nResources += dr
		}
	}
	last := recs[len(recs)-1]
	if err := bk.putMeta(last.meta, nHosts, nResources); err != nil {
		return err
	}
	if err := bk.putLog(tx, logMeta{id: id, applied: last.lsn}); err != nil {
		return err
	}
	if hk := b.hooks.Load(); hk != nil && hk.checkpoint != nil {
		return hk.checkpoint()
	}
	return nil
}

// stopLog applies what the log holds, stops the checkpointer and empties
// the log file, before the store is closed or replaced. When the store's
// content is unknown (broken), or the last checkpoint fails, the log is
// left as it is, for the next Open to apply.
func (b *Backend) stopLog() error {
	lg := b.lg
	var err error
	if b.broken.Load() == nil {
		err = lg.sync()
	}
	close(lg.stop)
	<-lg.done
	if lg.w == nil {
		return err
	}
	if err == nil && b.broken.Load() == nil {
		if err = lg.w.Reset(); err == nil {
			b.stats.setLogSize(0)
		}
	}
	return errors.Join(err, lg.w.Close())
}

// readLog reads the log beside the store whose metadata bk holds, and
// returns the groups it holds beyond what the store holds, checked to
// continue the store's serials. Damage is an error matching
// state.ErrCorrupt naming the log, and nothing is modified.
func (b *Backend) readLog(bk *buckets) ([]*logged, wal.Info, error) {
	path := LogPath(b.real)
	if !bk.hasLog {
		// A store that never had a log: only an empty file may be there.
		fi, err := os.Lstat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, wal.Info{}, nil
		case err != nil:
			return nil, wal.Info{}, fmt.Errorf("boltbackend: %w", err)
		case fi.Mode().IsRegular() && fi.Size() == 0:
			return nil, wal.Info{Exists: true}, nil
		}
		return nil, wal.Info{}, corruptf(b.path, "%s is there, but the store has never had a log (layout version %d): it is not this store's log; move it away", path, bk.schema)
	}
	var recs []*logged
	var derr error
	info, err := wal.Read(path, bk.log.id, bk.log.applied, func(lsn uint64, p []byte) error {
		g, err := decodeGroup(lsn, p)
		if err != nil {
			derr = err
			return err
		}
		recs = append(recs, g)
		return nil
	})
	if err != nil {
		var ve *wal.VersionError
		switch {
		case derr != nil:
			return nil, info, corruptf(b.path, "log %s: %v", path, derr)
		case errors.As(err, &ve):
			return nil, info, fmt.Errorf("boltbackend: %w", err)
		case errors.Is(err, wal.ErrCorrupt):
			return nil, info, corruptf(b.path, "log %v; nothing was applied or changed ('ftlstate check' reports it)", err)
		}
		return nil, info, fmt.Errorf("boltbackend: %s: read the log: %w", b.path, err)
	}
	serial := bk.metadata.Serial
	for _, g := range recs {
		if g.prev != serial {
			return nil, info, corruptf(b.path, "log %s: record %d follows serial %d, but the store is at serial %d there: the log does not continue this store; nothing was applied or changed", path, g.lsn, g.prev, serial)
		}
		serial = g.meta.Serial
	}
	return recs, info, nil
}

// replay applies the log beside a store opened for writing to bbolt, in
// one transaction, and empties the log file. It returns the store's log
// metadata after it.
func (b *Backend) replay() (logMeta, state.Metadata, error) {
	var bk *buckets
	err := b.db.View(func(tx *bolt.Tx) error {
		return catchFaults(b.path, "reading the metadata", func() (err error) {
			bk, err = b.openBuckets(tx)
			return err
		})
	})
	if err != nil {
		return logMeta{}, state.Metadata{}, err
	}
	recs, info, err := b.readLog(bk)
	if err != nil {
		return logMeta{}, state.Metadata{}, err
	}
	m, meta := bk.log, bk.metadata
	if len(recs) > 0 {
		err := b.update("applying the log", func(tx *bolt.Tx) error { return b.applyLogged(tx, recs, m.id) })
		if err != nil {
			return logMeta{}, state.Metadata{}, err
		}
		m.applied, meta = recs[len(recs)-1].lsn, recs[len(recs)-1].meta
	}
	if info.Size > 0 {
		// Everything in it is applied: the next writer starts it over.
		if err := truncateLog(LogPath(b.real)); err != nil {
			return logMeta{}, state.Metadata{}, fmt.Errorf("boltbackend: %s: empty the log: %w", b.path, err)
		}
	}
	return m, meta, nil
}

// truncateLog empties the log file at path without following a link.
func truncateLog(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Checkpoint applies everything the write-ahead log holds to the bbolt
// file, so that the file alone holds every change acknowledged before the
// call: a copy of the file made before the next commit is a complete
// backup. It does nothing on a Backend without a log (read-only, or
// Options.Log.Disabled).
func (b *Backend) Checkpoint() error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.ops.Leave()
	if b.lg == nil {
		return nil
	}
	return b.lg.sync()
}
