package boltbackend

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/internal/inflight"
	"github.com/go-ftl2/ftlstate/internal/live"
	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/internal/wal"
	"github.com/go-ftl2/ftlstate/state"
)

// Buckets of a store.
var (
	bucketHosts     = []byte("hosts")
	bucketResources = []byte("resources")
	// bucketByType indexes resources by type: key type + "\x00" + resource
	// key, empty value. Names cannot hold NUL (state.ValidateName), so the
	// split is unambiguous.
	bucketByType   = []byte("resources_by_type")
	bucketMetadata = []byte("metadata")
	// bucketOperations holds the pending operations by ID (layout
	// version 2; a version 1 store has none and gets it, with version 2,
	// from its first operation).
	bucketOperations = []byte("operations")
)

// Keys of the metadata bucket.
var (
	keySchema    = []byte("schema")    // layout version, 8 bytes big-endian
	keyMeta      = []byte("meta")      // state.Metadata, record-encoded
	keyHosts     = []byte("hosts")     // number of hosts, 8 bytes big-endian
	keyResources = []byte("resources") // number of resources, 8 bytes big-endian
)

// SchemaVersion is the version of the on-disk layout (buckets and keys)
// this package writes. A store with a higher version is refused with a
// *SchemaError. Version 2 added the operations bucket: new stores are
// created with it; a version 1 store is read as it is (it holds no
// operations) and becomes version 2 in the commit of its first operation,
// so that a program that knows only version 1 refuses it instead of
// ignoring its pending operations. Version 3 added the write-ahead log's
// key to the metadata (the log's ID and the last record applied): a
// store gets it, and version 3, in the first commit made with the log,
// so that a program that knows no log refuses a store whose log may hold
// acknowledged changes.
const SchemaVersion = 3

// schemaOperations is the first layout version with the operations bucket.
const schemaOperations = 2

// fileMode is the mode of files this package creates: state may hold
// addresses and variables that are nobody else's business.
const fileMode = 0o600

// Options configure Open. The zero value (or nil) opens read-write and
// does not wait for a lock.
type Options struct {
	// Timeout is how long Open waits for another process to release the
	// store. Zero means no wait: Open fails at once with an error matching
	// state.ErrLocked (a *state.LockError naming the holder). Unlike
	// bbolt's own Timeout, zero never waits forever.
	Timeout time.Duration

	// ReadOnly opens the store for reading only: Commit returns an error
	// matching state.ErrReadOnly, the store is not created when missing,
	// and other read-only opens may share it. A writer excludes readers
	// (see Locking in the package documentation).
	ReadOnly bool

	// NoSocket keeps a read-write Backend from serving the store to other
	// processes while a State holds it (see Live reads in the package
	// documentation).
	NoSocket bool

	// Inspect opens, read-only, a store that Open would refuse as damaged
	// (its pages, or its counters against its records; see Corruption in
	// the package documentation), so that Check can list everything that
	// is wrong with it. Reads of such a store may fail with
	// state.ErrCorrupt. It implies ReadOnly.
	Inspect bool

	// Log configures the write-ahead log that read-write Backends commit
	// through (see Durability in the package documentation).
	Log LogOptions
}

// Backend is a state.Backend on a bbolt file. Its methods may be called
// concurrently; see the package documentation.
type Backend struct {
	path     string // as given to Open, for messages
	real     string // path with symbolic links resolved: the file itself
	db       *bolt.DB
	file     *os.File // the file bbolt opened and locked (bbolt's own descriptor)
	readOnly bool
	// locked identifies the file bbolt opened and locked, to tell whether
	// real still names it.
	locked fs.FileInfo
	// info is the open lock-info file (nil when read-only, or when it
	// could not be written); stale is the record a dead holder left.
	info  *os.File
	stale *state.LockInfo
	// holder is what this Backend wrote in the lock info.
	holder   state.LockInfo
	noSocket bool
	// live serves the store to other processes (see Serve).
	live live.Service

	// ops tracks the operations in flight (View, Commit, Check, Compact);
	// Close waits for them.
	ops inflight.Ops

	// queue feeds the committer goroutine; done is closed when it exits.
	queue chan *request
	done  chan struct{}
	// broken, once set, is returned by every later operation: a commit
	// failed in a way that leaves the store's content unknown to us (it
	// matches state.ErrOutcomeUnknown).
	broken atomic.Pointer[error]
	// writeTxns counts committed write transactions.
	writeTxns atomic.Uint64
	// hooks are fault-injection seams for tests (see export_test.go);
	// nil in production.
	hooks atomic.Pointer[hooks]

	// lg is the write-ahead log of a read-write Backend (nil with
	// Options.Log.Disabled, and when read-only).
	lg *logState
	// ov holds what a read-only Backend found in the log beyond the bbolt
	// file (nil: nothing), which its Views show over the file; logFound
	// describes it, and logErr is the damage Inspect let Open past.
	ov       *overlay
	logFound LogStatus
	logErr   error
	stats    stats
}

var _ state.Backend = (*Backend)(nil)

// hooks let whitebox tests make transactions fail. All nil in production.
type hooks struct {
	// apply, when set, runs inside the transaction before each batch is
	// applied; an error fails the transaction.
	apply func(*state.Batch) error
	// commit, when set, runs at the end of each write transaction; an
	// error fails (rolls back) the transaction.
	commit func() error
	// result, when set, replaces the outcome of each write transaction
	// (to simulate a commit that bbolt reports failed after it wrote the
	// meta page).
	result func(error) error
	// logAppend, when set, runs before each log append; an error fails
	// the append without writing, as a failed write (unknown false) or
	// a failed fdatasync (unknown true) would.
	logAppend func() (err error, unknown bool)
	// checkpoint, when set, runs inside each checkpoint's transaction
	// after the groups are applied; an error fails it.
	checkpoint func() error
}

// SchemaError reports a store whose layout version is newer than this
// package's SchemaVersion: it was written by a newer program and is not
// read, lest it be misread. It matches errors.ErrUnsupported.
type SchemaError struct {
	Path      string
	Version   uint64 // the store's
	Supported uint64 // SchemaVersion
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("boltbackend: %s: store layout version %d is newer than this program supports (%d); use a newer version of the program",
		e.Path, e.Version, e.Supported)
}

// Unwrap returns errors.ErrUnsupported.
func (e *SchemaError) Unwrap() error { return errors.ErrUnsupported }

// Open opens the store at path, creating it (read-write opens only) when
// it does not exist. See the package documentation for locking, and
// Options for the defaults a nil opts gives.
//
// Errors: a store locked by another process gives a *state.LockError
// (matching state.ErrLocked) naming the holder; a file that is not a
// valid store gives an error matching state.ErrCorrupt naming path, and
// the file is left untouched; a store of a newer layout gives a
// *SchemaError.
func Open(path string, opts *Options) (*Backend, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Inspect {
		o.ReadOnly = true
	}
	start := time.Now()
	// A symbolic link is resolved once: the store is the file it names,
	// and what replaces that file (CompactInPlace) replaces the file, not
	// the link.
	real := path
	if r, err := filepath.EvalSymlinks(path); err == nil {
		real = r
	}
	for attempt := 1; ; attempt++ {
		b, err := open(path, real, o, start)
		if !errors.Is(err, errReplaced) {
			return b, err
		}
		if attempt == maxOpenAttempts {
			return nil, fmt.Errorf("boltbackend: open %s: the store file was replaced %d times while this process waited for it", path, attempt)
		}
	}
}

// afterProbe, when set (by tests), runs between the probe and bbolt's
// open, where another process may take the lock first.
var afterProbe func()

// maxOpenAttempts bounds how often Open starts over because the store
// file was replaced while it waited for its lock.
const maxOpenAttempts = 100

// errReplaced means that the file Open locked is no longer the one at the
// store's path: Open starts over.
var errReplaced = errors.New("the store file was replaced")

// open is one attempt of Open on the store at real (path resolved).
func open(path, real string, o Options, start time.Time) (*Backend, error) {
	if !o.ReadOnly {
		if err := create(real); err != nil {
			return nil, err
		}
	}
	probed, walk, err := probe(path, real, o, start)
	if err != nil {
		return nil, err
	}
	if p := walk.damaged(); p != "" && !o.Inspect {
		return nil, refusedf(path, "%s", p)
	}
	if afterProbe != nil {
		afterProbe()
	}
	var file *os.File // the file bbolt opened (and locks)
	var db *bolt.DB
	err = catchFaults(path, "opening", func() (err error) {
		db, err = bolt.Open(real, fileMode, &bolt.Options{
			Timeout:      remaining(o.Timeout, start),
			ReadOnly:     o.ReadOnly,
			FreelistType: bolt.FreelistMapType,
			OpenFile:     openProbed(probed, &file),
		})
		return err
	})
	if err != nil {
		switch {
		case errors.Is(err, errReplaced), errors.Is(err, state.ErrCorrupt):
			return nil, err
		case errors.Is(err, berrors.ErrTimeout):
			return nil, lockError(path, real, o, start)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
			return nil, corruptf(path, "%v", err)
		}
		return nil, fmt.Errorf("boltbackend: open %s: %w", path, err)
	}
	b := &Backend{path: path, real: real, db: db, file: file, readOnly: o.ReadOnly, noSocket: o.NoSocket}
	// Lock, then check what was locked: the file may have been replaced
	// while bbolt waited for its lock (a compaction swapped a new file in;
	// the one locked is now the backup). Writing into it would lose
	// every write; reading it would serve an old state.
	if err := b.stillAtPath(); err != nil {
		db.Close()
		return nil, errReplaced
	}
	if err := b.verify(); err != nil {
		db.Close()
		return nil, err
	}
	// The write-ahead log: applied to the file by a writer, shown over it
	// by a reader.
	var lm logMeta
	var meta state.Metadata
	if o.ReadOnly {
		err = b.loadOverlay(o.Inspect)
	} else {
		lm, meta, err = b.replay()
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	// Holding the lock, shared or exclusive, no writer is alive: a
	// lock-info record of a dead process is what a crash left.
	infoPath := lockinfo.Path(real)
	b.stale = lockinfo.Stale(infoPath)
	if !o.ReadOnly {
		// We hold bbolt's exclusive lock: the lock-info record is ours to
		// write. It is information only, so failing to write it (a full
		// disk, a read-only directory) does not fail Open; but a lock-info
		// path holding something else than a regular file (a symbolic
		// link, whose target we would overwrite) is refused.
		b.holder = lockinfo.Self()
		f, err := lockinfo.Create(infoPath, b.holder)
		switch {
		case err == nil:
			b.info = f
		case errors.Is(err, lockinfo.ErrNotRegular):
			db.Close()
			return nil, fmt.Errorf("boltbackend: %w", err)
		}
		// Every temp file of the store made under the lock is stale now;
		// those of store creations (made without it) are once their
		// process is gone.
		removeLeftovers(real)
		if !o.Log.Disabled {
			if lm.id == (wal.ID{}) {
				lm.id = newLogID() // written by the first commit
			}
			b.lg = newLogState(b, o.Log, lm, meta)
			go b.lg.run()
		}
		b.queue = make(chan *request, 256)
		b.done = make(chan struct{})
		go b.run()
	}
	return b, nil
}

// openProbed returns bbolt's OpenFile: it never creates the store (create
// did, complete), never follows a symbolic link that replaced the file,
// checks that it opened the file probe checked, and keeps it in *opened.
func openProbed(probed fs.FileInfo, opened **os.File) func(string, int, os.FileMode) (*os.File, error) {
	return func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag&^os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, perm)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ELOOP) {
				return nil, errReplaced
			}
			return nil, err
		}
		if fi, err := f.Stat(); err != nil || !os.SameFile(fi, probed) {
			f.Close()
			return nil, errReplaced
		}
		*opened = f
		return f, nil
	}
}

// stillAtPath checks that the store's path still names the file b has
// open (and locked), recording its identity on the first call. Open calls
// it after the lock; the committer before each write.
func (b *Backend) stillAtPath() error {
	fi, err := b.file.Stat()
	if err != nil {
		return err
	}
	if b.locked == nil {
		b.locked = fi
	}
	cur, err := os.Lstat(b.real)
	if err == nil && os.SameFile(fi, cur) && os.SameFile(fi, b.locked) {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return fmt.Errorf("%s: %w", b.real, errReplaced)
}

// remaining returns the bbolt lock timeout left of timeout since start:
// at least 1ns, which makes bbolt try once instead of waiting forever.
func remaining(timeout time.Duration, start time.Time) time.Duration {
	return max(timeout-time.Since(start), time.Nanosecond)
}

// lockError describes why the store at path (real, resolved) could not
// be locked.
func lockError(path, real string, o Options, start time.Time) error {
	var waited time.Duration
	if o.Timeout > 0 {
		waited = time.Since(start).Round(time.Millisecond)
	}
	e := lockinfo.Error(path, lockinfo.Path(real), waited)
	if o.ReadOnly {
		return fmt.Errorf("boltbackend: a read-only open waits until the writer closes the store: %w", e)
	}
	return fmt.Errorf("boltbackend: %w", e)
}

// refusedf is the error of Open for a store whose structure is damaged:
// it says why, and what to do.
func refusedf(path, format string, args ...any) error {
	return corruptf(path, "%s; the store is refused so that nothing reads or overwrites damaged data ('ftlstate check' lists the damage, 'ftlstate salvage' reads what is left)", fmt.Sprintf(format, args...))
}

func corruptf(path, format string, args ...any) error {
	return fmt.Errorf("boltbackend: %s: %s: %w", path, fmt.Sprintf(format, args...), state.ErrCorrupt)
}

// create makes a new empty store at path when nothing is there. The store
// is built under a temporary name and linked into place complete, so that
// a crash never leaves an empty or half-initialized file at path, and two
// processes creating the same store at once end with one of them.
func create(path string) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil // exists, or Open reports why it cannot be read
	}
	dir := filepath.Dir(path)
	f, err := atomicfile.CreateTemp(path)
	if err != nil {
		return fmt.Errorf("boltbackend: create %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Close(); err != nil {
		return fmt.Errorf("boltbackend: create %s: %w", path, err)
	}
	db, err := bolt.Open(tmp, fileMode, &bolt.Options{Timeout: time.Nanosecond})
	if err != nil {
		return fmt.Errorf("boltbackend: create %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return initStore(tx, state.NewMetadata(time.Now())) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = atomicfile.SyncFile(tmp)
	}
	if err == nil {
		err = publish(tmp, path)
		if errors.Is(err, fs.ErrExist) {
			return nil // another process created it first: use theirs
		}
	}
	if err == nil {
		// The temp name goes before the directory is synced, so that the
		// sync makes the new name and the removal durable together: a
		// power cut must not bring back a second link to the store.
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = rerr
		}
	}
	if err == nil {
		err = atomicfile.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("boltbackend: create %s: %w", path, err)
	}
	return nil
}

// initStore creates the buckets and metadata of an empty store.
func initStore(tx *bolt.Tx, meta state.Metadata) error {
	for _, name := range [][]byte{bucketHosts, bucketResources, bucketByType, bucketMetadata, bucketOperations} {
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	md := tx.Bucket(bucketMetadata)
	mb, err := record.EncodeMetadata(&meta)
	if err != nil {
		return err
	}
	for _, kv := range []struct{ k, v []byte }{
		{keySchema, u64(SchemaVersion)}, {keyMeta, mb}, {keyHosts, u64(0)}, {keyResources, u64(0)},
		{keyLog, logMeta{id: newLogID()}.encode()},
	} {
		if err := md.Put(kv.k, kv.v); err != nil {
			return err
		}
	}
	return nil
}

// publish gives the complete file tmp the name dst without replacing
// anything there: a hard link, which fails when dst exists (an error
// matching fs.ErrExist). On file systems without hard links it falls back
// to a rename after checking that dst is absent.
func publish(tmp, dst string) error {
	err := os.Link(tmp, dst)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) || (errno != syscall.EPERM && errno != syscall.ENOTSUP && errno != syscall.EOPNOTSUPP && errno != syscall.EMLINK) {
		return err
	}
	if _, serr := os.Lstat(dst); !errors.Is(serr, fs.ErrNotExist) {
		return &fs.PathError{Op: "create", Path: dst, Err: fs.ErrExist}
	}
	return os.Rename(tmp, dst)
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// verify checks, in one read transaction, that the store has this
// package's layout: the schema version, the buckets, a metadata record
// and the counters. (probe's walk of the pages checked the rest.)
func (b *Backend) verify() error {
	return b.db.View(func(tx *bolt.Tx) error {
		return catchFaults(b.path, "reading the metadata", func() error {
			_, err := b.openBuckets(tx)
			return err
		})
	})
}

// buckets are the buckets of one transaction, and what the metadata
// bucket holds.
type buckets struct {
	hosts, resources, byType, meta *bolt.Bucket
	// ops is the operations bucket; nil in a version 1 store.
	ops                *bolt.Bucket
	schema             uint64
	metadata           state.Metadata
	nHosts, nResources uint64
	// indexLater, when not nil, collects the index entries of a
	// replacement (see apply).
	indexLater [][]byte
	// hasLog is set when the metadata holds the log key (layout version
	// 3), log is its value.
	hasLog bool
	log    logMeta
}

// openBuckets finds the buckets of tx and reads the metadata bucket.
func (b *Backend) openBuckets(tx *bolt.Tx) (*buckets, error) {
	bk := &buckets{meta: tx.Bucket(bucketMetadata)}
	if bk.meta == nil {
		return nil, corruptf(b.path, "not a state store (bbolt file without a %q bucket)", bucketMetadata)
	}
	v := bk.meta.Get(keySchema)
	if len(v) != 8 {
		return nil, corruptf(b.path, "metadata/schema: missing or not 8 bytes")
	}
	switch bk.schema = binary.BigEndian.Uint64(v); {
	case bk.schema > SchemaVersion:
		return nil, &SchemaError{Path: b.path, Version: bk.schema, Supported: SchemaVersion}
	case bk.schema < 1:
		return nil, corruptf(b.path, "metadata/schema: version %d", bk.schema)
	}
	bk.hosts = tx.Bucket(bucketHosts)
	bk.resources = tx.Bucket(bucketResources)
	bk.byType = tx.Bucket(bucketByType)
	bk.ops = tx.Bucket(bucketOperations)
	if bk.ops == nil && bk.schema >= schemaOperations {
		return nil, corruptf(b.path, "bucket %q is missing", bucketOperations)
	}
	for _, c := range []struct {
		name []byte
		b    *bolt.Bucket
	}{{bucketHosts, bk.hosts}, {bucketResources, bk.resources}, {bucketByType, bk.byType}} {
		if c.b == nil {
			return nil, corruptf(b.path, "bucket %q is missing", c.name)
		}
	}
	switch v := bk.meta.Get(keyLog); {
	case v == nil && bk.schema >= schemaLog:
		return nil, corruptf(b.path, "metadata/log: missing in a store of layout version %d", bk.schema)
	case v == nil:
	case len(v) != 24 || bk.schema < schemaLog:
		return nil, corruptf(b.path, "metadata/log: %d bytes in a store of layout version %d (want 24, version %d)", len(v), bk.schema, schemaLog)
	default:
		bk.hasLog = true
		copy(bk.log.id[:], v[:16])
		bk.log.applied = binary.BigEndian.Uint64(v[16:])
	}
	m, err := record.DecodeMetadata(bk.meta.Get(keyMeta))
	if err != nil {
		return nil, fmt.Errorf("boltbackend: %s: metadata/meta: %w", b.path, err)
	}
	bk.metadata = m
	// Every record takes at least a 16-byte leaf element in the file, so
	// a counter above size/16 is damaged (and would make a caller that
	// sizes a map by Len allocate without bound).
	limit := uint64(tx.Size()) / 16
	for _, c := range []struct {
		key []byte
		n   *uint64
	}{{keyHosts, &bk.nHosts}, {keyResources, &bk.nResources}} {
		v := bk.meta.Get(c.key)
		if len(v) != 8 {
			return nil, corruptf(b.path, "metadata/%s: counter missing or not 8 bytes", c.key)
		}
		if *c.n = binary.BigEndian.Uint64(v); *c.n > limit {
			return nil, corruptf(b.path, "metadata/%s: counter %d is impossible in a file of %d bytes", c.key, *c.n, tx.Size())
		}
	}
	return bk, nil
}

// Path returns the path the store was opened with.
func (b *Backend) Path() string { return b.path }

// StaleLock returns the lock-info record that a previous writer of the
// store left behind when it died without closing it (a crash or a kill),
// as found by this Backend's Open; nil when the previous writer closed the
// store. A read-write Open replaces the record with its own; a read-only
// one leaves it. Nothing needs repairing after such a crash: bbolt's
// commits are atomic. Callers may report it.
func (b *Backend) StaleLock() *state.LockInfo {
	if b.stale == nil {
		return nil
	}
	c := *b.stale
	return &c
}

// enter registers an operation (b.ops.Leave ends it). It fails after
// Close, and after a commit whose outcome is unknown (see Commit): bbolt's
// pages may then hold what is not on disk.
func (b *Backend) enter() error {
	if !b.ops.Enter() {
		return b.errClosed()
	}
	if p := b.broken.Load(); p != nil {
		b.ops.Leave()
		return *p
	}
	return nil
}

// errClosed is the error of an operation on a closed Backend.
func (b *Backend) errClosed() error {
	return fmt.Errorf("boltbackend: %s: %w", b.path, state.ErrClosed)
}

// Close waits for operations in flight, stops the committer, removes the
// lock-info record and closes the file, releasing the lock. It is safe to
// call more than once; calls after the first return nil.
func (b *Backend) Close() error {
	if !b.ops.Close() {
		return nil
	}
	if b.queue != nil {
		close(b.queue)
		<-b.done
	}
	var err error
	if b.lg != nil {
		if err = b.stopLog(); err != nil {
			err = fmt.Errorf("boltbackend: close %s: the log is left for the next Open to apply: %w", b.path, err)
		}
	}
	return errors.Join(err, b.release())
}

// release stops serving live reads, removes the lock-info record and
// closes the file, releasing the lock; the committer is stopped.
func (b *Backend) release() error {
	// Before the lock is released: no reader may find the socket of a
	// store that someone else may already be writing.
	errs := []error{b.live.Stop()}
	if b.info != nil {
		// Removed while the lock is still held, and only when it is ours,
		// so that it never removes a record of the next holder.
		errs = append(errs, lockinfo.Remove(b.info), b.info.Close())
		b.info = nil
	}
	errs = append(errs, b.db.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("boltbackend: close %s: %w", b.path, err)
	}
	return nil
}
