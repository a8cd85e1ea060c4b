// Package boltbackend is the embedded default state.Backend: a single
// bbolt file (go.etcd.io/bbolt) holding one record per host and per
// resource, so that a change costs one small transaction whatever the
// size of the store.
//
//	b, err := boltbackend.Open("state.db", &boltbackend.Options{Timeout: 5 * time.Second})
//	if err != nil {
//		return err // errors.Is(err, state.ErrLocked): another process has it
//	}
//	st, err := state.Open(b) // st.Close closes b
//
// # Layout
//
// Five buckets: "hosts" (key: host name), "resources" (key: resource key)
// and "operations" (key: the pending operation's ID), values encoded by
// internal/record (MessagePack); "resources_by_type" (key: type, NUL,
// resource key; empty value), the index that makes listing the resources
// of one type cost in proportion to the matches; and "metadata", holding
// the layout version ("schema", SchemaVersion), the store's
// state.Metadata ("meta"), the numbers of hosts and resources, so that
// Snapshot.Len costs nothing, and the write-ahead log's ID and the last
// log record applied ("log"). A store with a newer layout version is
// refused (*SchemaError), not misread. Layout version 1 lacked the
// operations bucket; such a store is read as one without pending
// operations and upgraded by the commit of its first operation. Layout
// version 2 lacked the log key; a store gets it, and version 3, in its
// first commit through the log.
//
// # Concurrency
//
// All methods may be called from many goroutines. Reads (View, Check,
// Compact) run in bbolt read transactions, concurrently with each other
// and with writes. Writes go through one committer goroutine: Commit
// validates and encodes its batch, queues it and waits; the committer
// takes the first waiting batch and every other batch already queued,
// and commits them together (group commit): as one record of the
// write-ahead log, or in one bbolt transaction (see Durability). There
// is no timer: a group is whatever arrived while the previous one was
// being made durable, so a lone writer never waits for company, and 32
// writers share the cost of each fsync. Batches are applied in queue
// order, each getting its own serial (state.NextMetadata), and each
// Commit returns its own result: a batch that fails inside a bbolt
// transaction makes the committer retry the group's batches one per
// transaction, so it fails alone and the others commit exactly once
// (everything a logged batch could fail on is checked before it is
// logged). bbolt's DB.Batch is not used: it waits up to 10ms to fill a
// batch and may run a function twice.
//
// A second goroutine, the checkpointer, is bbolt's only writer while the
// log is in use: it applies the logged groups to bbolt in one ordinary
// transaction at a time, while commits go on into the log.
//
// # Durability
//
// A read-write Backend commits through a write-ahead log beside the
// store, PATH-wal (PATH with symbolic links resolved; package
// internal/wal): each group commit is one record (the group's changes,
// the metadata after it and the serial before it, checksummed) appended
// to the log with one pwrite and made durable with one fdatasync, into
// space allocated before; then its callers are answered. Nothing else is
// on the commit path: an acknowledged batch survives a crash of the
// process or of the machine. The checkpointer applies the logged groups
// to bbolt in ordinary bbolt transactions (two fdatasyncs each) once
// LogOptions.CheckpointChanges changes are logged or the oldest is
// LogOptions.CheckpointInterval old (4096, 100ms), recording in the
// same transaction the last log record applied; only then may the log's
// space be reused. The log file grows by segments (1 MiB) up to
// LogOptions.MaxSize (64 MiB; it is bounded); when every segment holds
// records not yet applied, the next commit waits for a checkpoint.
//
// Committed straight to bbolt instead, one transaction per group after
// everything logged is applied: the first group of each Backend (a
// process that commits once pays no log, and the store gets the log's
// key before anything is logged), imports (Batch.Replace), groups larger
// than a segment, a group the log could not take (it could not grow),
// and every group with LogOptions.Disabled. bbolt's commit writes the
// changed pages, fdatasyncs, writes the new meta page and fdatasyncs
// again; NoSync is never set. A crash mid-commit, or mid-checkpoint,
// leaves the previous meta page in force, and the log still holds what
// the checkpoint was applying.
//
// Open (read-write) reads bbolt, then the log: the records beyond the
// last one the store holds, each checksum verified and each continuing
// the store's serials, are applied in one transaction, and the log is
// emptied. A torn last record (the write in flight at a crash) is left
// out; damage before it fails Open with an error matching
// state.ErrCorrupt that names the log and the offset, and nothing is
// modified. A read-only Open applies nothing: it shows the log's changes
// over the file, in memory, and writes nothing (Log reports them).
//
// View, Check, Compact, Backup and Checkpoint of a read-write Backend
// first apply the log, so they see everything acknowledged; Close
// applies it and empties the log file, so a cleanly closed store is its
// bbolt file alone: copying PATH after Close is a complete backup. While
// a process holds the store, or after one crashed, the file may lack
// changes only the log holds: copy both files (PATH first, then
// PATH-wal, with no writer running), or make the backup through the
// store ('ftlstate backups' keeps them; Backup, Compact). A store written
// without a log opens as before. A new store is built under a temporary
// name and linked into place complete, so a crash while creating one
// never leaves an empty or half-written file.
//
// # Locking
//
// bbolt's flock on the file is the lock between processes: exclusive for
// read-write opens, shared for read-only ones. The kernel releases it
// when its holder exits, however it exits, so a killed process never
// blocks anyone. While it holds the store, a read-write Backend keeps a
// lock-info record (pid, host, command, start time; no secrets) in
// PATH.lock, removed by Close. An Open that cannot get the lock within
// Options.Timeout (zero: at once) returns a *state.LockError matching
// state.ErrLocked, naming the store and the holder from that record
// ("state.db: locked by pid 4242 (ftl2 apply) on host ci-7 since
// 10:31:05"); a record left by a dead process is reported as stale, and
// StaleLock tells the next holder that its predecessor died holding the
// store.
//
// A read-only open (Options.ReadOnly, for export, check and listing
// commands) shares the store with other read-only opens but not with a
// writer: while a read-write Backend holds the store, a read-only Open
// waits for it to close, up to Options.Timeout, and then fails with a
// *state.LockError whose message says that read-only opens wait for the
// writer. With the default zero Timeout it fails at once, never hangs.
// Conversely a writer cannot open a store while readers hold it.
//
// Lock, then check what was locked: the file Open locks may have been
// replaced while it waited (CompactInPlace swaps a new file in, and the
// one it locked becomes the backup). Once it has the lock, Open checks
// that the store's path still names the file it locked, and otherwise
// starts over on the file the path names now; a writer also checks before
// each commit, and refuses to write (state.ErrLocked) into a file that was
// replaced or removed behind its back. A symbolic link at the store's
// path is resolved once, at Open: the file it names is the store.
//
// PATH.lock is opened without following symbolic links and without
// blocking: a symbolic link, FIFO, device, directory or hard link there
// makes a writer's Open fail (lockinfo.ErrNotRegular) rather than write
// into another file; readers skip it. Close removes the record only when
// it is still its own.
//
// # Files
//
// Beside the store: PATH.lock (lock info), PATH.sock (live reads) and
// PATH-wal (the write-ahead log, empty once the store is closed; it must
// be a regular file of one link, and a log of another store, or one
// beside a store that never had one, is refused as damage). A writer
// that finds its log removed or replaced while it runs refuses further
// commits (state.ErrLocked), as it does for the store's file.
//
// Every other file this package writes beside a store is built under a temp
// name saying whose it is (PATH.tmp-PID-N, atomicfile.CreateTemp): store
// creations, Compact, Backup and CompactInPlace. A process killed while
// writing one leaves it behind; the next writer's Open removes those of
// processes that are gone (and the fixed names older versions used,
// PATH.compact and PATH.backup.new), and a leftover never blocks anything.
// CompactInPlace gives the new file the mode and owner of the one it
// replaces. A FIFO or device named as the store is refused before it is
// opened for reading (an error matching state.ErrCorrupt).
//
// # Live reads
//
// While a State holds a read-write Backend (state.Open calls Serve), the
// process serves the State's memory read-only on a Unix socket beside
// the store's file, PATH.sock (PATH with symbolic links resolved; mode
// 0600, named in the lock info), so that other
// processes read a store in use: ftlstate's read commands, Ansible
// through its inventory script, curl --unix-socket. Serving reads memory
// only and never delays a commit. The socket is removed before the lock
// is released; one left by a killed holder is replaced by the next. Only
// the store file's owner and root are answered. See package
// internal/live for the API, the socket path rule (long paths) and the
// security checks; Options.NoSocket turns it off, and Serving tells
// whether it runs.
//
// # Corruption
//
// Open reads the file itself, read-only and under a shared lock, before
// bbolt maps it: an empty file, a file that is not bbolt, a damaged meta
// page, or a file shorter than the pages its meta page says are in use
// (bbolt would fault reading past the end) is refused with an error
// matching state.ErrCorrupt that names the path, and the file is not
// modified. Records are checked as they are decoded (errors match
// state.ErrCorrupt and name the bucket and key); Check verifies the whole
// store. A panic or memory fault inside bbolt caused by a damaged page is
// turned into an error matching state.ErrCorrupt instead of killing the
// process.
//
// # Caveats
//
//   - bbolt files never shrink: deleted records leave free pages that
//     later writes reuse. Compact writes a compacted copy.
//   - A long View or Check keeps old pages alive, so the file may grow
//     while it runs; Check on a read-write Backend holds off commits.
//   - One damaged meta page makes Open fail, even though bbolt could fall
//     back to the other copy: a crash cannot damage a meta page (it is
//     written within one disk sector), so damage means something else
//     wrote to the file, and falling back could silently drop the newest
//     commit. bbolt's own tool can inspect and repair it, on a copy
//     (bbolt surgery meta validate, bbolt surgery meta update).
//   - If bbolt's final fsync fails after it wrote the new meta page, the
//     outcome of that commit is unknown (it may or may not be on disk):
//     the Commit fails with an error matching state.ErrOutcomeUnknown,
//     and so does every later Commit and View of this Backend (bbolt's
//     page cache may hold pages that are not on disk), until it is closed
//     and the store reopened, which reads what is there.
//   - Locking relies on flock(2): a store on a network file system may
//     not be protected against another machine.
//   - A flipped bit in the log's last record cannot be told from a torn
//     write: that group is dropped as torn. Every record before it is
//     covered by its checksum.
//   - A read-only Backend of a store whose log holds many changes keeps
//     them in memory (at most the log's size).
package boltbackend
