// Package etcdbackend is a state.Backend on an etcd cluster
// (go.etcd.io/etcd/client/v3): one state shared by several controllers or
// CI runners, surviving the loss of a machine, with a lock that fences.
//
//	b, err := etcdbackend.Open(ctx, etcdbackend.Config{
//		Endpoints:   []string{"etcd-1:2379", "etcd-2:2379", "etcd-3:2379"},
//		Prefix:      "/ftl/prod",
//		LockTimeout: 30 * time.Second,
//		TLS:         tlsConfig, // CA, client certificate
//		Username:    "ftl", Password: password,
//	})
//	if err != nil {
//		return err // errors.Is(err, state.ErrLocked): another controller has it
//	}
//	st, err := state.Open(b) // st.Close closes b and releases the lock
//
// The command line names such a store etcd://host:port[,host:port...]/prefix,
// or etcds://... for TLS.
//
// # Layout
//
// Under the prefix, one key per record, values encoded by internal/record
// (MessagePack, the records of boltbackend): PREFIX/gen/ID/hosts/NAME,
// PREFIX/gen/ID/resources/KEY and PREFIX/gen/ID/operations/ID (pending
// operations), ID being the store's generation, named by
// PREFIX/generation; PREFIX/metadata (the store's state.Metadata);
// PREFIX/layout (the layout version, LayoutVersion; a store with a newer
// one is refused); PREFIX/txn, the marker every write transaction
// rewrites (see Outcomes); PREFIX/lock, the lock (see below); and
// PREFIX/stale/ID for each generation awaiting deletion. Stores of layout
// versions 1 and 2 keep their records under PREFIX/hosts/,
// PREFIX/resources/ and PREFIX/operations/; they are read and written in
// place (the first operation stored raises version 1 to 2), and an import
// moves them to a generation. One prefix holds one store. Records are checked as they are
// decoded (errors match state.ErrCorrupt and name the key); Check reads the
// whole store and reports every damaged record and stray key.
//
// A store comes into being with its first commit: Open writes nothing but
// its lock, so opening a prefix and writing nothing leaves no store.
//
// # Concurrency
//
// All methods may be called from many goroutines. Reads (View) go straight
// to etcd and run concurrently with each other and with writes. Writes go
// through one committer goroutine: Commit validates and encodes its batch,
// queues it and waits; the committer takes the first waiting batch and
// every other batch already queued that fits in the same transaction
// (etcd's limits of Config.MaxTxnOps operations and
// Config.MaxRequestBytes bytes, no key twice, a Replace alone), and
// commits them in one etcd transaction (group commit). There is no timer:
// a group is whatever arrived while the previous transaction was in
// flight. Batches are applied in queue order, each getting its own serial
// (state.NextMetadata), and each Commit returns its own result: when etcd
// refuses a group's transaction for a reason one batch may cause, the
// committer retries its batches one per transaction, within the same time
// bound, so that batch fails alone and the others commit exactly once.
//
// A View is the store at one etcd revision: it reads the metadata and
// the generation in one linearizable request, and every later read of its
// Snapshot asks for that revision (clientv3.WithRev, served by any member
// that has it), page by page when it iterates: pages of about 4 MiB, the
// next fetched while the caller handles the current one. Len counts the
// records when it is first called. So a View, and the load of state.Open,
// sees a state that existed, whatever is committed meanwhile, and reads
// only what it asks for: a lookup of one host is two requests, whatever
// the size of the store.
//
// # Durability
//
// Every Commit is one etcd transaction (Txn) holding its records, the new
// metadata, a new marker and the fencing comparisons: all of it is stored
// or none. It returns once etcd has committed the transaction, that is
// once a quorum of members has it in its fsync'ed write-ahead log, so an
// acknowledged batch survives the loss of any minority of the members and
// the restart of all. A View started after a Commit returned sees it.
//
// # Outcomes
//
// Every error of Commit says what became of its batch. Most say "nothing
// of this batch was written": etcd refused it (a comparison failed, a
// limit, no leader), or it was never sent. The others match
// ErrOutcomeUnknown: the transaction was sent and no answer came within
// the time bound. Such a transaction may still be applied later (a
// proposal in the log of a leader that lost its quorum is applied when
// the quorum returns), so before sending anything else the committer
// settles it:
//
//   - Every write transaction writes its own value to PREFIX/txn (our lock
//     revision and a sequence number) and compares that PREFIX/txn and
//     PREFIX/metadata are as our last known write left them: of the
//     transactions sent since, at most one can ever apply.
//   - Settling sends a transaction that writes only a new marker under
//     the same comparisons. When it commits, the pending transaction was
//     not applied and never will be: it is sent again while time remains,
//     and later commits go on.
//   - When its comparisons fail, the store changed: the pending
//     transaction was applied if and only if its marker is the first
//     value PREFIX/txn took after ours, which the key's value, or its
//     history (a watch from that revision), tells. This holds whoever
//     holds the lock by then: a controller paused past its lease learns
//     whether its last commit landed before the next holder took over.
//     If etcd compacted that history, the outcome can no longer be told,
//     and the Backend refuses writes until it is reopened.
//
// A commit that turns out stored after its caller was told
// ErrOutcomeUnknown makes every later Commit fail with an error matching
// ErrOutcomeUnknown (the caller's copy of the state misses it; reopen the
// store); one that turns out not stored lets writing go on.
//
// Time bound: a Commit returns within twice Config.RequestTimeout of its
// call, waiting in the queue included. Its group has the deadline of its
// oldest request; its attempts, settling, sending again and the batch by
// batch retries all end by it, with a little of it kept to find out why
// the cluster did not answer. A request whose time ran out in the queue
// is not sent. A Replace is bounded transaction by transaction instead
// (see Imports).
//
// Errors reaching the cluster say what is wrong: a *ConnectError tells
// that no member answered (with each endpoint's reason), that the cluster
// has no leader, a TLS problem (unknown CA, client certificate required
// or rejected, TLS on one side only), or an authentication one (wrong
// password, no user, permission denied). Open waits for the cluster up to
// Config.LockTimeout (RequestTimeout when it is zero).
//
// # Imports
//
// A Replace batch (state.State.Replace, ftlstate import) may hold any
// number of records, whatever the cluster's limits, and stays atomic for
// readers: its records are written under a new generation, in as many
// transactions as they need (several in flight), each comparing only our
// lock; then one transaction with the comparisons of every write points
// PREFIX/generation at it and writes the new metadata. Readers follow
// PREFIX/generation at their View's revision, so they see the old store
// or the new one whole, never a mix, and never the records of an import
// that has not switched. The new generation is marked stale before its
// first record is written and unmarked by the switch, which marks the old
// one; stale generations (an import that failed, was killed, or was
// replaced) are deleted in the background by the writer, and by the next
// writer's Open when that one could not finish. Close waits for the
// deletion.
//
// # Locking and fencing
//
// One writer at a time: a read-write Open grants a lease of
// Config.SessionTTL, kept alive by a concurrency.Session (renewed every
// third of the TTL), and creates PREFIX/lock attached to it, if that key
// does not exist, with the holder's lock-info record as its value (JSON:
// pid, host, command, start time; no secrets). When the key exists Open
// waits for its deletion, up to Config.LockTimeout (zero: not at all),
// and then fails with a *state.LockError naming the prefix and the
// holder, in the format of the local backends ("/ftl/prod: locked by pid
// 4242 (ftl2 apply) on host ci-7 since 10:31:05"), with the time its lease
// has left if not renewed (LockError.Expires). A holder of this host that
// is gone (killed) still holds the lock through its lease: "/ftl/prod:
// locked: held by pid 4242's lease, which expires within 12s". Close
// revokes the lease, which deletes the key. Lock reports the holder and
// its lease without taking the lock (ftlstate check).
//
// The TTL is a trade-off: a controller that dies without closing blocks
// the next one for up to the TTL (DefaultSessionTTL, 15s), while one that
// is paused, or cut off from the cluster, for longer than the TTL loses
// the lock, and its later commits fail. Shorter TTLs take over faster and
// tolerate shorter pauses (garbage collection, a stopped VM, a slow
// network); etcd raises TTLs below its minimum (about 1.5 × its election
// timeout), and a new leader renews every lease on election.
//
// Fencing: the lock key's create revision, unique in the cluster's
// history, is this Backend's token. Every write transaction compares that
// PREFIX/lock still has that create revision. When the lease expired or
// was revoked (a long pause, a partition), the key is gone or re-created
// by the next holder, so the comparison fails: the commit writes nothing
// and returns an error matching state.ErrLocked (a *state.LockError
// naming the new holder, when there is one), and so does every later
// Commit of this Backend: two controllers never both write, and a
// controller that lost the lock never writes again on a state it no
// longer knows. A Backend whose session reports its lease lost fails its
// commits at once, without asking etcd. Metadata or marker changed by a
// writer that ignores the lock makes the commit fail with an error
// matching state.ErrConflict.
//
// Read-only opens (Config.ReadOnly) take no lock and run beside a writer:
// listing and export work while a controller writes, each View seeing
// one committed state.
//
// # Caveats
//
//   - A batch other than a Replace is one transaction, and etcd bounds
//     transactions: at most --max-txn-ops operations (128 by default: a
//     batch of at most 126 changes, the metadata and the marker taking
//     two) and --max-request-bytes (1.5 MiB) in all. A bigger batch, or a
//     record bigger than a request, is refused before anything is sent,
//     with an error matching state.ErrInvalid that names the limit (or
//     the key).
//   - There is no index by resource type: Snapshot.ResourcesOfType reads
//     every resource (decoding in full only the matches). An index would
//     take a second operation per resource change, and a read before
//     every write; State keeps its own index in memory.
//   - etcd keeps old revisions until it compacts them. A View that runs
//     longer than the cluster's compaction retention fails with an error
//     saying so; retry it.
//   - The lock cannot protect against writers that do not use it:
//     etcdctl can still change or delete keys under the prefix (a
//     deleted PREFIX/lock fences the holder, as above; changed records
//     are read as they are).
//   - Prefixes must not nest inside another store's keys: the store at
//     /ftl/gen would write its keys among the generations of the store at
//     /ftl (Check reports such keys).
//   - SessionTTL is counted in whole seconds.
package etcdbackend
