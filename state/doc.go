// Package state is the state store of Go-FTL2-style automation: the hosts
// it added to its inventory, the cloud resources it created, and metadata,
// kept so that the next run knows what already exists.
//
// A State is the working copy, in memory, of a store held by a Backend
// (boltbackend, filebackend, etcdbackend, or statetest.Memory in tests):
//
//	b, err := boltbackend.Open("state.db", nil)
//	...
//	st, err := state.Open(b)
//	...
//	defer st.Close()
//	err = st.Update(func(tx *state.Tx) error {
//		if err := tx.AddResource("linode:123", &state.ResourceState{Type: "linode", ID: "123"}); err != nil {
//			return err
//		}
//		return tx.AddHost(&state.HostState{Name: "web01", Address: "192.0.2.10", Port: 22})
//	})
//
// The API and the JSON field names are those of Go-FTL2's state management
// design; this package fixes its faults: values are copied in and out,
// memory changes only after the backend has stored the change, metadata
// always exists, and batches are atomic.
//
// # Values
//
// Vars and Data hold JSON values. They are normalized on write (see
// NormalizeValue) so that every backend returns the same Go values:
// int64, float64, string, bool, nil, []any and map[string]any. Timestamps
// are UTC with nanosecond precision and no monotonic reading (Timestamp).
// Validation errors are *FieldError values matching ErrInvalid.
//
// # The Backend contract
//
// A State keeps the store in memory and writes through a Backend (see
// Backend, Snapshot and Batch for each method's rules). In short:
//
//   - Commit applies a Batch atomically, exactly once and durably, in some
//     serial order with concurrent Commits (which it may group into one
//     write), and advances the metadata as NextMetadata says; an empty
//     batch counts as a change; a refused batch fails alone and leaves no
//     trace; a read-only backend refuses every batch with ErrReadOnly.
//   - View shows one committed version of the store: a View started
//     before a Commit does not see it, one started after it returned
//     does. Hosts, Resources, ResourcesOfType and Operations iterate in
//     byte order of the name, key or ID; Host, Resource, Operation and
//     Len agree with the iterations; records handed out are the caller's;
//     a missing key is ok=false without an error; a callback's error
//     stops an iteration and comes back unchanged.
//   - Records come back exactly as they were committed (the same bytes of
//     every string, the same Go types, times equal with ==), after a
//     reopen too.
//   - Close may be called while Views run; afterwards every call fails
//     with ErrClosed.
//
// statetest.TestBackend is this contract as a test suite: it calls the
// methods directly and cross-checks them (CheckSnapshot), and its own
// tests prove it fails backends that break each rule.
//
// # Optional capabilities
//
// A Backend or Snapshot may offer more, each declared here once as an
// interface with a function that falls back when it is missing, as fs.Stat
// does for fs.StatFS:
//
//   - Checker: Check verifies that the stored data is intact and
//     consistent: every record reads back valid, each host under its own
//     name, and whatever the backend keeps besides the records (bbolt's
//     type index and counters and page structure, the file against the
//     memory it serves) agrees with them. The findings are one shape for
//     every backend: a *CheckError listing Problems (section, key,
//     message). The function Check falls back to CheckSnapshot, which
//     checks what the Snapshot methods show.
//   - LockReporter: StaleLock tells who held the lock when it died; the
//     function StaleLock returns nil without one.
//   - TypeIndex, on a Snapshot: ResourcesOfType finds the resources of a
//     type at a cost in proportion to the matches; the function
//     ResourcesOfType filters Resources without one.
//   - Server: a backend that can let other processes read the store while
//     a State holds it (State.Open calls Serve).
//
// # Validation
//
// Three layers check what is written, each once:
//
//   - Normalize (HostState.Normalize, ResourceState.Normalize,
//     Operation.Normalize, NormalizeValue; Contents.Validate for a whole
//     document), run by the State on everything a caller hands it: it
//     converts values into the value model and refuses what breaks a
//     record rule: names and types (ValidateName, and the host names and
//     groups Ansible can address), ports 0..65535, UTF-8 text, finite
//     numbers that JSON holds exactly, nesting up to MaxValueDepth,
//     times in years 0..9999.
//   - Batch.Validate, run by every backend at the start of Commit: the
//     shape of the batch (known kinds, valid keys, deletes included, the
//     record of the change's kind and no other, a host under its own name,
//     an operation under its own ID, no record twice, batch and Replace
//     times in years 0..9999) and that each record is what Normalize
//     makes of it, so a backend never stores what it could not return as
//     given. Then each backend checks what only its storage limits: the
//     size of a bbolt value, of an etcd request and transaction.
//   - The codecs (internal/record for bbolt and etcd, state/statefile for
//     the JSON file) decode stored bytes under the same rules as Normalize
//     and report anything else as ErrCorrupt, naming the record; the
//     record codec also refuses, while encoding, what it could not decode.
//
// # Concurrency
//
// A State is safe for concurrent use. Reads are served from memory and
// never wait for a disk write. Writes of different records go to the
// backend concurrently, so a backend can commit them together (group
// commit); writes of the same record are serialized, so memory and storage
// end with the same last value.
//
// # Pending operations
//
// The store knows what was recorded; an Operation makes it know what is in
// flight. Before an external side effect (creating a cloud instance),
// BeginOperation records the intent durably, with what finds its outcome
// after a crash (a client token, the request); FinishOperation then
// records the outcome (the resource and its host) and removes the
// operation in one atomic commit. A crash at any point leaves either the
// pending operation or its outcome, never both and never neither, so the
// next run starts with PendingOperations: it asks the provider by token
// and adopts what was made, or makes it now (see the examples). This
// closes the gap behind "orphaned resources" after a killed run.
//
// # Durability
//
// A write (AddHost, RemoveHost, AddResource, RemoveResource, Update,
// Replace, BeginOperation, FinishOperation, AbandonOperation) returns nil
// only once its backend reports the change stored durably. When it
// returns an error nothing of it is visible, in memory or in storage, with
// one exception: an error matching ErrOutcomeUnknown
// means the backend cannot tell whether the change was stored (an fsync
// failed after the new data became visible). The change is then not in
// memory, and the State refuses every later write, saying why, until the
// store is closed and reopened, which shows what it holds.
//
// Committed writes become visible in memory in the order of their serials
// (Metadata.Serial), even when the backend's group commit wakes their
// goroutines in another order: a snapshot (View, and so an export) that
// shows serial N also shows every earlier write of this State.
//
// # Metadata
//
// Metadata.Serial grows by one with every committed change (an Update is
// one change, and so are a begin and a finish of an operation; a removal
// of an absent key is none); Metadata.Lineage is set
// once, when a store is created. Together they let Replace (import) refuse
// an older or foreign copy.
//
// # Caveats
//
// The State holds the whole store in memory. Update is atomic but not
// isolated (see Update). A State must be the only writer of its backend;
// the backends enforce that between processes with a lock.
package state
