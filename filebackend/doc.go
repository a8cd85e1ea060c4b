// Package filebackend stores a state in one state.json file, in the
// documented format (package statefile): the store people can read, review
// and edit by hand, written so that neither a crash nor a second process
// can lose it.
//
//	b, err := filebackend.Open("state.json", &filebackend.Options{Timeout: 10 * time.Second})
//	if err != nil {
//		return err // errors.Is(err, state.ErrLocked): someone else has it
//	}
//	st, err := state.Open(b)
//	...
//	defer st.Close()
//
// The whole store is held in memory and every commit rewrites the whole
// file, so the cost of a write grows with the store: see the benchmarks
// (BenchmarkCommit); the bbolt backend is the one for large stores.
//
// # Locking
//
// Open takes an exclusive advisory lock (flock) on a sidecar file,
// PATH.lock, and holds it until Close; a second process waits up to
// Options.Timeout and then fails with a *state.LockError (matching
// state.ErrLocked) that names the file and the holder. The holder writes
// who it is (pid, host, command, since; no secrets, see lockinfo) into
// PATH.lock, in place, and empties it on Close; PATH.lock is never renamed
// or removed, since that would split the lock. The kernel releases the lock
// when its holder dies, so a killed process never blocks the next one;
// the info it left is then reported as stale (Backend.StaleLock, also to
// read-only opens, for check). A read-only Open takes no lock (see
// Options.ReadOnly).
//
// The lock file is opened without following symbolic links and without
// blocking, and must be a regular file with one link (lockinfo.Acquire):
// anything else is refused, never written into. After the flock, Open
// checks that PATH.lock still names the file it locked, and starts over
// if it was deleted or replaced meanwhile. Should someone delete or
// replace PATH.lock while a writer holds it, a second writer can lock the
// new file: the first then refuses every later write (an error matching
// state.ErrLocked; it checks its lock before each rename), so that it
// never overwrites what the second acknowledged.
//
// A writer's Open removes the temp files that writers killed before it
// left (PATH.tmp-*, PATH.backup.tmp-*: all are made under the lock).
//
// # Durability
//
// Commit returns nil only once the change is on stable storage. Each
// rewrite creates a temp file (PATH.tmp-PID-NNNN) in the same directory,
// writes the document, fsyncs and closes it, renames it over PATH and
// fsyncs the directory. A crash at any point leaves either the old or the
// new file, complete. On a failure the temp file is removed, the file is
// left as it was, and the failed batches change nothing, in the file or
// in memory. Temp files left by a killed process are never read, and the
// next writer's Open removes them. A new file is created with mode
// 0600 (hosts' vars hold credentials); a rewrite keeps an existing file's
// mode and, when permitted, its owner.
//
// A FIFO or device named as the store is refused (state.ErrCorrupt)
// before it is read, by read-only opens too: it would block or never end.
// A file that cannot be read as a state (empty, truncated, invalid JSON,
// wrong types, invalid records, duplicate keys, unknown fields) makes Open
// fail with an error matching state.ErrCorrupt that names the path and
// the line and column or the JSON path of the problem; nothing is ever
// written over it. A missing file is an empty store, created by the first
// commit; a file without metadata gets a lineage and timestamps at Open,
// written by the first commit.
//
// # Concurrency
//
// A Backend is safe for concurrent use. Commits are group-committed: one
// writer goroutine rewrites the file; the commits that arrive while it
// writes wait, and go out together in the next rewrite (one rewrite and
// one fsync for all of them), each applied in arrival order as its own
// change with its own serial, and each Commit returns when the rewrite
// holding it is durable. A batch the backend refuses (a host under another
// name's key, a time the format cannot hold) fails alone; a failed rewrite
// fails every batch in it. View never waits for a rewrite: it sees the
// store as of the last successful commit (the records are immutable and
// each rewrite publishes new maps).
//
// # Live reads
//
// While a State holds a read-write Backend (state.Open calls Serve), the
// process serves the State's memory read-only on a Unix socket beside
// the file, PATH.sock (PATH with links resolved; mode 0600, named in the
// lock info), so that other
// processes read a store in use: ftlstate's read commands, Ansible
// through its inventory script, curl --unix-socket. Serving reads memory
// only and never delays a commit. The socket is removed before the lock
// is released; one left by a killed holder is replaced by the next. Only
// the store file's owner and root are answered. See package
// internal/live for the API, the socket path rule (long paths) and the
// security checks; Options.NoSocket turns it off, and Serving tells
// whether it runs.
//
// # Caveats
//
//   - Memory: the Backend keeps each record as its text in the file
//     (statefile.Raw), about the size of the file, and decodes records as
//     a View reads them; a rewrite copies the text of the records it did
//     not change and encodes only the others. Opening a store and
//     committing a change peaks at about 2.3 times the file's size
//     (BenchmarkMemory: 206 MiB for a 91 MiB file of 200k records, 128 MiB
//     for a 64 MiB file holding one large var). A State on top holds the
//     decoded records as well (4.5 and 3.0 times). A record edited by hand
//     keeps its formatting in the file until it is changed.
//   - If the rename succeeds but the directory fsync fails, the new file is
//     in place but may not survive a crash: the outcome is unknown, and
//     Commit fails with an error matching state.ErrOutcomeUnknown. So do
//     every later Commit and View of this Backend, until it is closed and
//     the store reopened, which reads what the file holds.
//   - A symbolic link at PATH is followed once, at Open: the lock and the
//     writes go to its target.
//   - The lock is advisory: a process that writes PATH without this
//     package is not stopped (Backend.Check notices).
//   - flock does not work across some network file systems; keep the
//     state on a local disk.
package filebackend
