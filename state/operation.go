package state

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Operation is an intent, recorded durably before an external side effect
// starts: "I am about to create the instance for web01, with client token
// T". It stays pending until FinishOperation records the outcome (the
// resource and host, in the same atomic commit that removes the operation)
// or AbandonOperation says there was none. A run that finds pending
// operations when it starts knows which creations were in flight when an
// earlier run died, and what finds their outcome (Data: the request, a
// client token), so that it adopts what the provider made instead of
// making it twice. See PendingOperations for the reconcile loop.
type Operation struct {
	ID        string         `json:"id"`               // set by BeginOperation when empty (random, unique)
	Action    string         `json:"action"`           // "create", "update" or "delete"
	Resource  string         `json:"resource"`         // the resource key it is about
	Host      string         `json:"host,omitempty"`   // the host it will add or change, if any
	Data      map[string]any `json:"data,omitempty"`   // what finds the outcome after a crash: request, client token
	StartedAt time.Time      `json:"started_at"`       // set by BeginOperation
	Holder    string         `json:"holder,omitempty"` // who began it: pid, host, command (set by BeginOperation)
}

// The actions of an Operation.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

// Clone returns a deep copy of op; nil gives nil.
func (op *Operation) Clone() *Operation {
	if op == nil {
		return nil
	}
	c := *op
	c.Data = CloneMap(op.Data)
	return &c
}

// Normalize returns a validated deep copy of op in the package's value
// model (see HostState.Normalize): ID and Resource are valid names (see
// ValidateName), Host is empty or a valid name, Action is "create",
// "update" or "delete", Data holds JSON values, Holder is valid UTF-8 and
// StartedAt is normalized with Timestamp (years 0 to 9999). The error is a
// *FieldError (matching ErrInvalid) naming the field, such as "action".
func (op *Operation) Normalize() (*Operation, error) {
	if op == nil {
		return nil, &FieldError{Msg: "nil operation"}
	}
	if err := ValidateName(op.ID); err != nil {
		return nil, nameErr("id", err)
	}
	switch op.Action {
	case ActionCreate, ActionUpdate, ActionDelete:
	default:
		return nil, &FieldError{Path: "action", Msg: fmt.Sprintf("%q is not one of %q, %q and %q", truncate(op.Action), ActionCreate, ActionUpdate, ActionDelete)}
	}
	if err := ValidateName(op.Resource); err != nil {
		return nil, nameErr("resource", err)
	}
	if op.Host != "" {
		if err := ValidateName(op.Host); err != nil {
			return nil, nameErr("host", err)
		}
	}
	if err := validText("holder", op.Holder); err != nil {
		return nil, err
	}
	data, err := normalizeMap(op.Data, "data")
	if err != nil {
		return nil, err
	}
	c := *op
	c.Data = data
	c.StartedAt = Timestamp(op.StartedAt)
	if y := c.StartedAt.Year(); y < 0 || y > 9999 {
		return nil, &FieldError{Path: "started_at", Msg: fmt.Sprintf("year %d outside 0..9999", y)}
	}
	return &c, nil
}

// NewOperationID returns a new random operation ID: 16 lowercase
// hexadecimal digits (64 random bits).
func NewOperationID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// holder describes this process for Operation.Holder: "pid 4242 on host
// ci-7 (ftl2 apply)". The command is the program's base name and the
// leading words that are not flags, so that no flag value (a token) is
// recorded.
func holder() string {
	s := fmt.Sprintf("pid %d", os.Getpid())
	if h, err := os.Hostname(); err == nil && h != "" {
		s += " on host " + h
	}
	if len(os.Args) > 0 {
		words := []string{filepath.Base(os.Args[0])}
		for _, a := range os.Args[1:] {
			if strings.HasPrefix(a, "-") || len(words) == 4 {
				break
			}
			words = append(words, a)
		}
		s += " (" + strings.Join(words, " ") + ")"
	}
	return s
}

// opNotPending is the error of finishing or abandoning an operation that
// is not pending.
func opNotPending(id string) error {
	return fmt.Errorf("state: operation %q: %w", id, &FieldError{Path: "id", Msg: "no such pending operation (finished, abandoned, or never begun)"})
}

func opAlreadyPending(id string) error {
	return fmt.Errorf("state: operation %q: %w", id, &FieldError{Path: "id", Msg: "an operation with this ID is already pending"})
}

// prepareOperation returns the normalized record BeginOperation stores for
// op: a copy with the ID (when empty), StartedAt and Holder (when empty)
// set.
func prepareOperation(op *Operation) (*Operation, error) {
	if op == nil {
		return nil, fmt.Errorf("state: operation: %w", &FieldError{Msg: "nil operation"})
	}
	c := *op
	if c.ID == "" {
		c.ID = NewOperationID()
	}
	c.StartedAt = time.Now()
	if c.Holder == "" {
		c.Holder = holder()
	}
	n, err := c.Normalize()
	if err != nil {
		return nil, fmt.Errorf("state: operation %q: %w", c.ID, err)
	}
	return n, nil
}

// BeginOperation records op as pending and returns once that is durable,
// before the side effect it describes starts. It returns a copy of what
// was stored: op with its ID set (a new random one when op.ID is empty),
// StartedAt set to now, and Holder set (to this process's pid, host and
// command) when empty. op is not modified. An op that fails validation
// (see Operation.Normalize), or whose ID is already pending, gives an
// error matching ErrInvalid and records nothing.
//
// The pattern is begin, side effect, finish:
//
//	op, err := st.BeginOperation(&state.Operation{Action: "create", Resource: key, Host: name,
//		Data: map[string]any{"token": token}})
//	inst, err := cloud.Create(token, ...)          // idempotent by token
//	err = st.FinishOperation(op.ID, func(tx *state.Tx) error {
//		... tx.AddResource(key, ...); return tx.AddHost(...)
//	})
//
// A crash anywhere in between leaves either the operation (the next run
// reconciles it: see PendingOperations) or its outcome, never neither.
func (s *State) BeginOperation(op *Operation) (*Operation, error) {
	n, err := prepareOperation(op)
	if err != nil {
		return nil, err
	}
	if err := s.write([]Change{{Kind: KindOperation, Key: n.ID, Operation: n}}); err != nil {
		return nil, err
	}
	return n.Clone(), nil
}

// GetOperation returns a copy of the pending operation id; ok is false
// when no such operation is pending (or the State is closed).
func (s *State) GetOperation(id string) (op *Operation, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, false
	}
	o, ok := s.ops[id]
	return o.Clone(), ok
}

// PendingOperations returns copies of the pending operations, sorted by
// StartedAt, then ID. A run calls it first, to reconcile what an earlier
// run left in flight before it starts new work:
//
//	for _, op := range st.PendingOperations() {
//		inst, found, err := cloud.FindByToken(op.Data["token"].(string))
//		switch {
//		case err != nil:
//			return err // try again later: the operation stays pending
//		case found: // the create happened: adopt it
//			err = st.FinishOperation(op.ID, record(inst))
//		default: // it never happened: do it now, with the same token
//			inst, err = cloud.Create(op.Data["token"].(string), ...)
//			...
//			err = st.FinishOperation(op.ID, record(inst))
//		}
//	}
//
// An operation whose outcome is known to be nothing (the provider has no
// trace of it, and a create is no longer wanted) is removed with
// AbandonOperation.
func (s *State) PendingOperations() []*Operation {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	out := make([]*Operation, 0, len(s.ops))
	for _, o := range s.ops {
		out = append(out, o.Clone())
	}
	slices.SortFunc(out, compareOperations)
	return out
}

func compareOperations(a, b *Operation) int {
	return cmp.Or(a.StartedAt.Compare(b.StartedAt), cmp.Compare(a.ID, b.ID))
}

// FinishOperation records the outcome of the pending operation id: the
// changes fn stages (typically the resource created and its host) and the
// removal of the operation commit together, in one atomic, durable write,
// so that the store holds either the operation or its outcome, never both
// and never neither. fn may be nil (nothing but the removal). When fn
// returns an error, or the write fails, nothing changes and the operation
// stays pending. An id that is not pending (never begun, already finished
// or abandoned, also by a concurrent call) gives an error matching
// ErrInvalid: of two concurrent FinishOperation calls on one id, exactly
// one succeeds.
func (s *State) FinishOperation(id string, fn func(tx *Tx) error) error {
	if s.isClosed() {
		return fmt.Errorf("state: %w", ErrClosed)
	}
	if _, ok := s.GetOperation(id); !ok {
		return opNotPending(id)
	}
	return s.Update(func(tx *Tx) error {
		if err := tx.FinishOperation(id); err != nil {
			return err
		}
		if fn == nil {
			return nil
		}
		return fn(tx)
	})
}

// AbandonOperation removes the pending operation id, durably, recording
// that its outcome is known to be nothing (the side effect never happened,
// or was undone). An id that is not pending gives an error matching
// ErrInvalid.
func (s *State) AbandonOperation(id string) error {
	return s.FinishOperation(id, nil)
}

// BeginOperation stages the beginning of op (see State.BeginOperation),
// to commit with the transaction's other changes, and returns a copy of
// the record it will store, its ID, StartedAt and Holder set. An ID
// already pending (in the State or in this transaction) gives an error
// matching ErrInvalid.
func (tx *Tx) BeginOperation(op *Operation) (*Operation, error) {
	if tx.done {
		return nil, errTxDone
	}
	n, err := prepareOperation(op)
	if err != nil {
		return nil, err
	}
	if _, ok := tx.GetOperation(n.ID); ok {
		return nil, opAlreadyPending(n.ID)
	}
	if c, ok := tx.staged(KindOperation, n.ID); ok && c.Operation == nil {
		// Finished earlier in this transaction: beginning it again would
		// make the commit overwrite nothing and remove nothing.
		return nil, opAlreadyPending(n.ID)
	}
	tx.stage(Change{Kind: KindOperation, Key: n.ID, Operation: n})
	return n.Clone(), nil
}

// FinishOperation stages the removal of the pending operation id, to
// commit atomically with the transaction's other changes (its outcome).
// An id that is not pending (in the State, or as this transaction would
// leave it) gives an error matching ErrInvalid; so does the commit, when
// another goroutine finishes the operation first. Finishing an operation
// begun in this same transaction cancels its beginning.
func (tx *Tx) FinishOperation(id string) error {
	if tx.done {
		return errTxDone
	}
	if c, ok := tx.staged(KindOperation, id); ok && c.Operation != nil {
		tx.unstage(KindOperation, id)
		return nil
	}
	if _, ok := tx.GetOperation(id); !ok {
		return opNotPending(id)
	}
	tx.stage(Change{Kind: KindOperation, Key: id})
	return nil
}

// GetOperation returns a copy of the pending operation id as this
// transaction would leave it.
func (tx *Tx) GetOperation(id string) (*Operation, bool) {
	if c, ok := tx.staged(KindOperation, id); ok {
		return c.Operation.Clone(), c.Operation != nil
	}
	return tx.s.GetOperation(id)
}
