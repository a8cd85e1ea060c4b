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
// only once its backend reports the change stored durably. When it returns an error nothing of it is visible, in memory or
// in storage, with one exception: an error matching ErrOutcomeUnknown
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
