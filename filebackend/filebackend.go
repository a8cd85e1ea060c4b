package filebackend

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/internal/live"
	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

// Options configure Open. The zero value (or nil) opens the store for
// writing and fails at once when another process holds it.
type Options struct {
	// Timeout is how long Open waits for the lock that another process
	// holds. Zero fails at once with an error matching state.ErrLocked; a
	// negative value waits as long as it takes.
	Timeout time.Duration
	// ReadOnly opens the store for reading only: Open reads the file once,
	// without taking the lock (so it neither waits for a writer nor blocks
	// one), and Commit fails with state.ErrReadOnly. The file is always a
	// complete committed state, so what a read-only Backend sees is the
	// store as of Open. A missing file is an empty store; nothing is
	// created.
	ReadOnly bool
	// MaxSize is the largest state file Open reads, in bytes; zero means
	// statefile.DefaultMaxSize (1 GiB), a negative value no limit. A commit
	// that would make the file larger is refused (an error matching
	// state.ErrInvalid) before anything is written, so that every
	// acknowledged write stays readable.
	MaxSize int64
	// NoSocket keeps a read-write Backend from serving the store to other
	// processes while a State holds it (see Live reads in the package
	// documentation).
	NoSocket bool
}

// Backend is a state.Backend over one state.json file. It is safe for
// concurrent use; see the package documentation.
type Backend struct {
	path     string // the state file, symlinks resolved
	dir      string // its directory
	base     string // its name
	readOnly bool
	maxSize  int64
	lock     *lockinfo.Lock  // the exclusive lock on PATH.lock, holding our lock info; nil when read-only
	stale    *state.LockInfo // lock info left by a holder that died, found at Open
	holder   state.LockInfo  // the lock info this Backend wrote
	noSocket bool
	// live serves the store to other processes (see Serve).
	live live.Service

	// cur is the store as of the last successful rewrite, each record as
	// its text in the file (statefile.Raw: about the size of the file,
	// sharing the memory the file was read into; records are decoded
	// when a View asks for them). Its maps and slices are never
	// modified: each rewrite publishes new maps.
	cur atomic.Pointer[statefile.Raw]
	// rewrites counts rewrites attempted (tests and benchmarks read it).
	rewrites atomic.Int64
	// broken, once set, is returned by every later Commit, View and
	// Check: a rewrite put its file in place but could not make that
	// durable, so what the store holds is unknown (it matches
	// state.ErrOutcomeUnknown), or the lock file was removed or replaced
	// under us, so another process may be writing (state.ErrLocked).
	broken atomic.Pointer[error]

	mu sync.Mutex // guards the fields below
	// wake signals the writer goroutine that queue or closed changed.
	wake *sync.Cond
	// queue holds the commits waiting for the next rewrite, in order.
	queue []*pending
	// closed is set by Close; queued commits are still written.
	closed bool
	// hooks are the test seams of the write path (zero in production).
	hooks hooks

	// wmu is held by the writer goroutine while it rewrites and publishes,
	// and by Check, so that Check compares the file with the memory that
	// matches it.
	wmu sync.Mutex
	// done is closed when the writer goroutine ends.
	done chan struct{}
}

var _ state.Backend = (*Backend)(nil)

// hooks let tests inject failures into a rewrite.
type hooks struct {
	// writer wraps the temp file's writer.
	writer func(io.Writer) io.Writer
	// step is called before each step of a rewrite ("create", "sync",
	// "close", "rename", "syncdir"); an error it returns fails the step.
	step func(step string) error
}

// pending is one Commit waiting for its rewrite.
type pending struct {
	batch *state.Batch
	meta  state.Metadata
	err   error
	done  chan struct{}
}

// Open opens the store in the state file at path, taking its lock (see
// Options), and reads the file. A missing file is an empty store, created
// by the first Commit. A file that cannot be read as a state (empty,
// invalid JSON, wrong types, invalid records) gives an error matching
// state.ErrCorrupt that names the path and the line and column or the
// JSON path of the problem; the file is left as it is. A held lock gives
// a *state.LockError (matching state.ErrLocked) naming the holder.
//
// A symbolic link at path is followed: the lock and the writes go to its
// target.
func Open(path string, opts *Options) (*Backend, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if path == "" {
		return nil, fmt.Errorf("filebackend: empty path: %w", state.ErrInvalid)
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	b := &Backend{
		path:     path,
		dir:      filepath.Dir(path),
		base:     filepath.Base(path),
		readOnly: o.ReadOnly,
		maxSize:  o.MaxSize,
		noSocket: o.NoSocket,
		done:     make(chan struct{}),
	}
	b.wake = sync.NewCond(&b.mu)
	if !o.ReadOnly {
		if err := b.acquire(o.Timeout); err != nil {
			return nil, err
		}
	} else {
		// Readers take no lock, but report what a writer killed while
		// holding it left (check does).
		b.stale = lockinfo.Stale(lockinfo.Path(b.path))
	}
	c, err := b.load()
	if err != nil {
		b.release()
		return nil, err
	}
	b.cur.Store(c)
	if o.ReadOnly {
		close(b.done)
	} else {
		go b.run()
	}
	return b, nil
}

// acquire takes the lock on PATH.lock (lockinfo.Acquire: never through a
// symbolic link or into another kind of file, and checking after the
// flock that the lock file is still the one at its path), writes this
// process's lock info into it, and removes the temp files that writers
// killed before us left (every temp file of the store is made under the
// lock, so all are stale now).
func (b *Backend) acquire(timeout time.Duration) error {
	lockPath := lockinfo.Path(b.path)
	start := time.Now()
	lk, ok, err := lockinfo.Acquire(lockPath, timeout)
	if err != nil {
		return fmt.Errorf("filebackend: lock: %w", err)
	}
	if !ok {
		var waited time.Duration
		if timeout != 0 {
			waited = time.Since(start).Round(time.Millisecond)
		}
		return fmt.Errorf("filebackend: %w", lockinfo.Error(b.path, lockPath, waited))
	}
	b.lock = lk
	b.stale = lk.Stale()
	b.holder = lockinfo.Self()
	if err := lk.Write(b.holder); err != nil {
		b.release()
		return fmt.Errorf("filebackend: write lock info: %w", err)
	}
	atomicfile.RemoveStale(false, b.path, b.path+".backup")
	return nil
}

// release stops serving live reads, clears the lock info and releases
// the lock.
func (b *Backend) release() error {
	if b.lock == nil {
		return nil
	}
	// Before the lock is released: no reader may find the socket of a
	// store that someone else may already be writing.
	serr := b.live.Stop()
	err := errors.Join(serr, b.lock.Release())
	b.lock = nil
	if err != nil {
		return fmt.Errorf("filebackend: %s: release lock: %w", b.path, err)
	}
	return nil
}

// openState opens the state file for reading. It refuses anything but a
// regular file before reading (a FIFO would block the reader forever, a
// device never end), without blocking on it.
func (b *Backend) openState() (*os.File, error) {
	f, err := os.OpenFile(b.path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: not a regular file (%s): a state file must be one: %w", b.path, atomicfile.Describe(fi.Mode()), state.ErrCorrupt)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// load reads the state file; a missing one is an empty store. Every
// record is checked, and kept as its text (statefile.DecodeRaw).
func (b *Backend) load() (*statefile.Raw, error) {
	now := state.Timestamp(time.Now())
	f, err := b.openState()
	if errors.Is(err, fs.ErrNotExist) {
		return &statefile.Raw{
			Metadata:   state.NewMetadata(now),
			Hosts:      map[string][]byte{},
			Resources:  map[string][]byte{},
			Operations: map[string][]byte{},
		}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("filebackend: %w", err)
	}
	defer f.Close()
	c, err := statefile.DecodeRaw(f, &statefile.DecodeOptions{MaxSize: b.maxSize})
	if err != nil {
		return nil, fmt.Errorf("filebackend: %s: %w", b.path, err)
	}
	// A hand-written file may lack metadata: the store gets it now, and
	// the file with the first commit.
	m := &c.Metadata
	if m.Lineage == "" {
		m.Lineage = state.NewLineage()
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now
	}
	if m.UpdatedAt.IsZero() {
		m.UpdatedAt = m.CreatedAt
	}
	return c, nil
}

// Path returns the path of the state file (symbolic links resolved).
func (b *Backend) Path() string { return b.path }

// StaleLock returns the lock info that a previous holder of the store
// left when it ended without closing it (killed, crashed), as found by
// Open (read-only opens too), or nil. Its last commits are in the file all the same: each was
// durable before it was acknowledged.
func (b *Backend) StaleLock() *state.LockInfo { return b.stale }

func (b *Backend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *Backend) errClosed() error {
	return fmt.Errorf("filebackend: %s: %w", b.path, state.ErrClosed)
}

// View implements state.Backend. The Snapshot is the store as of the last
// commit; it never waits for a rewrite in progress.
func (b *Backend) View(fn func(state.Snapshot) error) error {
	if b.isClosed() {
		return b.errClosed()
	}
	if p := b.broken.Load(); p != nil {
		return *p
	}
	return fn(b.cur.Load().Snapshot())
}

// Commit implements state.Backend. The batch joins the queue of the next
// rewrite of the file (see the package documentation) and Commit returns
// once that rewrite is durable, or failed.
func (b *Backend) Commit(batch *state.Batch) (state.Metadata, error) {
	p := &pending{batch: batch, done: make(chan struct{})}
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return state.Metadata{}, b.errClosed()
	case b.readOnly:
		b.mu.Unlock()
		return state.Metadata{}, fmt.Errorf("filebackend: %s: opened read-only: %w", b.path, state.ErrReadOnly)
	}
	if p := b.broken.Load(); p != nil {
		b.mu.Unlock()
		return state.Metadata{}, *p
	}
	b.queue = append(b.queue, p)
	b.wake.Signal()
	b.mu.Unlock()
	<-p.done
	return p.meta, p.err
}

// Close implements state.Backend: it waits for the commits already queued,
// clears the lock info and releases the lock.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.wake.Broadcast()
	b.mu.Unlock()
	<-b.done
	return b.release()
}

// run is the writer goroutine: it takes every queued commit, writes them
// in one rewrite, and repeats until closed and drained.
func (b *Backend) run() {
	defer close(b.done)
	b.mu.Lock()
	for {
		for len(b.queue) == 0 && !b.closed {
			b.wake.Wait()
		}
		if len(b.queue) == 0 {
			b.mu.Unlock()
			return
		}
		group, h := b.queue, b.hooks
		b.queue = nil
		b.mu.Unlock()
		b.commitGroup(group, h)
		b.mu.Lock()
	}
}

// commitGroup applies the batches of group, in order, to a copy of the
// store, writes the result and publishes it. A batch that is invalid fails
// alone; a failed write fails every batch of the group, and the store
// stays as it was.
func (b *Backend) commitGroup(group []*pending, h hooks) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	var valid []*pending
	for _, p := range group {
		if err := p.batch.Validate(); err != nil {
			p.err = fmt.Errorf("filebackend: %s: %w", b.path, err)
			close(p.done)
			continue
		}
		valid = append(valid, p)
	}
	if len(valid) == 0 {
		return
	}
	err := b.write(valid, h)
	if errors.Is(err, errTooLarge) && len(valid) > 1 {
		// Together they would make the file too large to read: write
		// them one by one, so that only those that do not fit fail.
		for _, p := range valid {
			p.err = b.write([]*pending{p}, h)
			if p.err != nil {
				p.meta = state.Metadata{}
			}
			close(p.done)
		}
		return
	}
	for _, p := range valid {
		if err != nil {
			p.meta, p.err = state.Metadata{}, err
		}
		close(p.done)
	}
}

// write applies the batches of ps, in order, to a copy of the store,
// writes the result in one rewrite and publishes it, setting each one's
// metadata. On failure the store stays as it was.
func (b *Backend) write(ps []*pending, h hooks) error {
	if p := b.broken.Load(); p != nil {
		return *p
	}
	base := b.cur.Load()
	next := &statefile.Raw{Metadata: base.Metadata, Hosts: base.Hosts, Resources: base.Resources, Operations: base.Operations}
	shared := true // next's maps are base's
	for _, p := range ps {
		batch := p.batch
		switch {
		case batch.Replace != nil:
			next.Hosts = make(map[string][]byte, len(batch.Changes))
			next.Resources = make(map[string][]byte, len(batch.Changes))
			next.Operations = make(map[string][]byte)
			shared = false
		case shared:
			next.Hosts = maps.Clone(base.Hosts)
			next.Resources = maps.Clone(base.Resources)
			next.Operations = maps.Clone(base.Operations)
			if next.Operations == nil {
				next.Operations = make(map[string][]byte)
			}
			shared = false
		}
		for _, ch := range batch.Changes {
			var m map[string][]byte
			var v []byte
			var err error
			switch ch.Kind {
			case state.KindOperation:
				if m = next.Operations; ch.Operation != nil {
					v, err = statefile.OperationValue(ch.Operation)
				}
			case state.KindHost:
				if m = next.Hosts; ch.Host != nil {
					v, err = statefile.HostValue(ch.Host)
				}
			default:
				if m = next.Resources; ch.Resource != nil {
					v, err = statefile.ResourceValue(ch.Resource)
				}
			}
			if err != nil {
				return fmt.Errorf("filebackend: %s: %v %q: %w", b.path, ch.Kind, ch.Key, err)
			}
			if v == nil {
				delete(m, ch.Key)
			} else {
				m[ch.Key] = v
			}
		}
		next.Metadata = state.NextMetadata(next.Metadata, batch)
		p.meta = next.Metadata
	}
	err := b.rewrite(next, h)
	switch {
	case err == nil:
		b.cur.Store(next)
		return nil
	case errors.Is(err, atomicfile.ErrNotDurable):
		err = fmt.Errorf("filebackend: %s: %w: %w; the batches of this rewrite may or may not survive a crash, and reads and writes are refused until the store is reopened",
			b.path, state.ErrOutcomeUnknown, err)
		b.broken.Store(&err)
	case errors.Is(err, lockinfo.ErrLockLost):
		err = fmt.Errorf("filebackend: %s: %w; another process may be writing the store, so this one writes nothing more: %w", b.path, err, state.ErrLocked)
		b.broken.Store(&err)
	default:
		err = fmt.Errorf("filebackend: %s: %w", b.path, err)
	}
	return err
}

// rewrite replaces the state file with c (atomicfile.Write: a temp file
// in the same directory, written, synced and closed, renamed over the
// file, and the directory synced). On failure before the rename the temp
// file is removed and the file is as it was. New files are private
// (hosts' vars hold credentials); an existing file keeps its mode and,
// where permitted, its owner.
func (b *Backend) rewrite(c *statefile.Raw, h hooks) error {
	b.rewrites.Add(1)
	opts := &atomicfile.Options{KeepOwner: true, Step: h.step, BeforeRename: b.lock.Check}
	return atomicfile.Write(b.path, opts, func(w io.Writer) error {
		if h.writer != nil {
			w = h.writer(w)
		}
		// The file must stay readable: what Open would refuse as too
		// large is refused here, before it replaces the file.
		if limit := b.sizeLimit(); limit > 0 {
			w = &limitWriter{w: w, left: limit}
		}
		return statefile.EncodeRaw(w, c) // errors name the temp file
	})
}

// sizeLimit is the largest file Open reads (statefile's rule for
// DecodeOptions.MaxSize); zero or less means none.
func (b *Backend) sizeLimit() int64 {
	if b.maxSize == 0 {
		return statefile.DefaultMaxSize
	}
	return b.maxSize
}

// errTooLarge marks a rewrite refused because the file would be larger
// than the store can be read at.
var errTooLarge = errors.New("too large")

// limitWriter passes at most left bytes to w, then fails with an error
// matching errTooLarge and state.ErrInvalid.
type limitWriter struct {
	w    io.Writer
	left int64
	n    int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		return 0, fmt.Errorf("the file would grow beyond %d bytes, the largest this store is read at (Options.MaxSize; statefile.DefaultMaxSize when unset), so the change is refused before anything is written: %w: %w",
			l.n+l.left, errTooLarge, state.ErrInvalid)
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	l.n += int64(n)
	return n, err
}

// Check implements state.Checker: it reads the state file again and
// reports whether it can be read as a state (the decoder's rules: JSON
// syntax, the schema, every record valid) and holds what the Backend
// holds (every record, the serial, and the lineage when the file has one).
// Problems are listed in an error wrapping a *state.CheckError (matching
// state.ErrCorrupt), one per record that differs. Crash tests and
// `ftlstate check` call it.
func (b *Backend) Check() error {
	if b.isClosed() {
		return b.errClosed()
	}
	if p := b.broken.Load(); p != nil {
		return *p
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	mem := b.cur.Load()
	ce := &state.CheckError{Path: b.path}
	f, err := b.openState()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if len(mem.Hosts)+len(mem.Resources)+len(mem.Operations) > 0 || mem.Metadata.Serial > 0 {
			ce.Addf("", "", "the file is missing but the store holds data (serial %d)", mem.Metadata.Serial)
		}
		return b.checkResult(ce)
	case err != nil:
		return fmt.Errorf("filebackend: check: %w", err)
	}
	defer f.Close()
	disk, err := statefile.DecodeRaw(f, &statefile.DecodeOptions{MaxSize: b.maxSize})
	if err != nil {
		ce.Addf("", "", "%v", err)
		return b.checkResult(ce)
	}
	dsnap, msnap := disk.Snapshot(), mem.Snapshot()
	compareRecords(ce, "hosts", disk.Hosts, mem.Hosts, func(k string) (any, any) {
		d, _, _ := dsnap.Host(k)
		m, _, _ := msnap.Host(k)
		return d, m
	})
	compareRecords(ce, "resources", disk.Resources, mem.Resources, func(k string) (any, any) {
		d, _, _ := dsnap.Resource(k)
		m, _, _ := msnap.Resource(k)
		return d, m
	})
	compareRecords(ce, "operations", disk.Operations, mem.Operations, func(k string) (any, any) {
		d, _, _ := dsnap.Operation(k)
		m, _, _ := msnap.Operation(k)
		return d, m
	})
	if disk.Metadata.Serial != mem.Metadata.Serial {
		ce.Addf("metadata", "serial", "%d in the file, %d in memory", disk.Metadata.Serial, mem.Metadata.Serial)
	}
	if disk.Metadata.Lineage != "" && disk.Metadata.Lineage != mem.Metadata.Lineage {
		ce.Addf("metadata", "lineage", "%s in the file, %s in memory", disk.Metadata.Lineage, mem.Metadata.Lineage)
	}
	return b.checkResult(ce)
}

func (b *Backend) checkResult(ce *state.CheckError) error {
	if err := ce.Err(); err != nil {
		return fmt.Errorf("filebackend: %w", err)
	}
	return nil
}

// compareRecords reports every record of section that the file and the
// memory do not hold alike, in key order: the same text, or (for a file
// changed behind our back) records that decode alike (decoded reads both
// records of a key).
func compareRecords(ce *state.CheckError, section string, disk, mem map[string][]byte, decoded func(key string) (disk, mem any)) {
	keys := slices.Sorted(maps.Keys(disk))
	for k := range mem {
		if _, ok := disk[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		d, inDisk := disk[k]
		m, inMem := mem[k]
		switch {
		case !inDisk:
			ce.Addf(section, k, "in memory, missing from the file")
		case !inMem:
			ce.Addf(section, k, "in the file, not in memory")
		case bytes.Equal(d, m):
		default:
			if dr, mr := decoded(k); !reflect.DeepEqual(dr, mr) {
				ce.Addf(section, k, "the file's record differs from memory")
			}
		}
	}
}
