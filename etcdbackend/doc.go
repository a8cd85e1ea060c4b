// Package etcdbackend is a state.Backend on an etcd cluster
// (go.etcd.io/etcd/client/v3): one state shared by several controllers or
// CI runners, surviving the loss of a machine, with a lock that fences.
//
//	b, err := etcdbackend.Open(ctx, etcdbackend.Config{
//		Endpoints:   []string{"etcd-1:2379", "etcd-2:2379", "etcd-3:2379"},
//		Prefix:      "/ftl/prod",
//		LockTimeout: 30 * time.Second,
//	})
//	if err != nil {
//		return err // errors.Is(err, state.ErrLocked): another controller has it
//	}
//	st, err := state.Open(b) // st.Close closes b and releases the lock
//
// The command line names such a store etcd://host:port[,host:port...]/prefix.
//
// # Layout
//
// Under the prefix, one key per record, values encoded by internal/record
// (MessagePack, the records of boltbackend): PREFIX/hosts/NAME,
// PREFIX/resources/KEY, PREFIX/operations/ID (pending operations) and
// PREFIX/metadata (the store's state.Metadata). PREFIX/layout holds the
// layout version (LayoutVersion); a store with a newer one is refused. PREFIX/lock is the lock (see below). Nothing else
// is written under the prefix, and one prefix holds one store. Records
// are checked as they are decoded (errors match state.ErrCorrupt and
// name the key); Check reads the whole store and reports every damaged
// record and stray key.
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
// committer retries its batches one per transaction, so that batch fails
// alone and the others commit exactly once.
//
// A View is the store at one etcd revision: it reads the metadata and the
// numbers of hosts and resources in one linearizable request, and every
// later read of its Snapshot asks for that revision (clientv3.WithRev),
// page by page when it iterates. So a View, and the load of state.Open,
// sees a state that existed, whatever is committed meanwhile, and reads
// only what it asks for.
//
// # Durability
//
// Every Commit is one etcd transaction (Txn) holding its records, the new
// metadata and the fencing comparisons: all of it is stored or none. It
// returns once etcd has committed the transaction, that is once a quorum
// of members has it in its fsync'ed write-ahead log, so an acknowledged
// batch survives the loss of any minority of the members and the restart
// of all. A View started after a Commit returned sees it.
//
// A commit that gets no answer (the cluster lost its quorum, the leader
// died while the request was in flight) may or may not have been applied.
// The committer then settles it: it rewrites the metadata under the same
// comparisons, which either succeeds, proving the lost transaction was
// not applied and never will be (it is sent again while time remains,
// which rides out a leader election), or fails because the transaction
// was applied, which then counts as a success. The committer spends at
// most twice Config.RequestTimeout on one transaction either way; a Commit
// can take longer, since it also waits for the transactions queued before
// its own, a group that fails is retried batch by batch (each with its own
// bound), and a Replace first lists the store's keys. When the cluster
// answers nothing at all in that time, the error matches ErrOutcomeUnknown: the batch may
// still be applied once the cluster recovers. The next Commit settles it:
// when it was not applied, writing goes on; when it was, that Commit
// fails with an error matching ErrOutcomeUnknown and every later one
// too, since the State's memory misses the batch: reopen the store.
//
// # Locking and fencing
//
// One writer at a time: a read-write Open grants a lease of
// Config.SessionTTL, kept alive by a concurrency.Session, and creates
// PREFIX/lock attached to it, if that key does not exist, with the
// holder's lock-info record as its value (JSON: pid, host, command, start
// time; no secrets). When the key exists Open waits for its deletion, up
// to Config.LockTimeout (zero: not at all), and then fails with a
// *state.LockError naming the prefix and the holder, in the format of the
// local backends ("/ftl/prod: locked by pid 4242 (ftl2 apply) on host
// ci-7 since 10:31:05"). Close revokes the lease, which deletes the key.
// A holder that dies or is cut off from the cluster keeps the lock until
// its lease expires, at most SessionTTL after its last keep-alive.
//
// Fencing: the lock key's create revision, unique in the cluster's
// history, is this Backend's token. Every write transaction compares that
// PREFIX/lock still has that create revision, and that PREFIX/metadata
// has the mod revision of this Backend's last write. When the lease
// expired or was revoked (a long pause, a partition), the key is gone or
// re-created by the next holder, so the comparison fails: the commit
// writes nothing and returns an error matching state.ErrLocked (a
// *state.LockError naming the new holder, when there is one), and so does
// every later Commit of this Backend: two controllers never both write,
// and a controller that lost the lock never writes again on a state it
// no longer knows. A Backend whose session reports its lease lost fails
// its commits at once, without asking etcd. Metadata changed by a writer
// that ignores the lock makes the commit fail with an error matching
// state.ErrConflict.
//
// Read-only opens (Config.ReadOnly) take no lock and run beside a writer:
// listing and export work while a controller writes, each View seeing
// one committed state.
//
// # Caveats
//
//   - A batch is one transaction, and etcd bounds transactions: at most
//     --max-txn-ops operations (128 by default: a batch of at most 127
//     changes, the metadata taking one) and --max-request-bytes (1.5 MiB)
//     in all. A bigger batch, or a record bigger than a request, is
//     refused before anything is sent, with an error matching
//     state.ErrInvalid that names the limit (or the key). A Replace
//     (import) also deletes, in the same transaction, every record it
//     does not rewrite, so importing into or over a store of more than
//     about 127 records needs a cluster with a higher --max-txn-ops and
//     Config.MaxTxnOps to match.
//   - There is no index by resource type: Snapshot.ResourcesOfType reads
//     every resource (decoding in full only the matches). An index would
//     take a second operation per resource change out of the 128, and a
//     read before every write; State keeps its own index in memory.
//   - etcd keeps old revisions until it compacts them. A View that runs
//     longer than the cluster's compaction retention fails with an error
//     saying so; retry it.
//   - Each Snapshot read is a request to etcd: iterate rather than look
//     up records one by one, or load a State.
//   - The lock cannot protect against writers that do not use it:
//     etcdctl can still change or delete keys under the prefix (a
//     deleted PREFIX/lock fences the holder, as above; changed records
//     are read as they are).
//   - Prefixes must not nest inside another store's record prefixes: the
//     store at /ftl/hosts would write its keys among the hosts of the
//     store at /ftl (Check reports such keys).
//   - SessionTTL is counted in whole seconds, and etcd raises a TTL
//     below its minimum (about 1.5 × the election timeout).
package etcdbackend
