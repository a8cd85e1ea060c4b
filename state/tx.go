package state

import (
	"fmt"
	"slices"
)

// Tx collects the changes of one Update. Its methods validate and stage;
// nothing is written until the function given to Update returns nil. A Tx
// must not be used after Update returns, nor from several goroutines.
type Tx struct {
	s       *State
	changes []Change
	// at maps a record to its index in changes, so that a record changed
	// twice is written once, with its last value.
	at   map[recordID]int
	done bool
}

// Update runs fn and commits the changes it staged as one atomic, durable
// write: all of them or, when fn returns an error or the write fails, none
// (in memory and on disk). The whole batch counts as one change to
// Metadata.Serial. An Update that stages nothing effective (or only
// removals of absent keys) writes nothing.
//
// Reads through the Tx see its own staged changes; reads of other records
// see the State's latest committed values. Update makes the batch atomic,
// not isolated: another goroutine may change a record fn read but did not
// write before the batch commits.
func (s *State) Update(fn func(tx *Tx) error) error {
	if err := s.writable(); err != nil {
		return err
	}
	tx := &Tx{s: s, at: make(map[recordID]int)}
	err := fn(tx)
	tx.done = true
	if err != nil {
		return err
	}
	if len(tx.changes) == 0 {
		return nil
	}
	return s.write(tx.changes)
}

func (tx *Tx) stage(c Change) {
	id := recordID{c.Kind, c.Key}
	if i, ok := tx.at[id]; ok {
		tx.changes[i] = c
		return
	}
	tx.at[id] = len(tx.changes)
	tx.changes = append(tx.changes, c)
}

// unstage drops the staged change of a record.
func (tx *Tx) unstage(kind Kind, key string) {
	id := recordID{kind, key}
	i, ok := tx.at[id]
	if !ok {
		return
	}
	tx.changes = slices.Delete(tx.changes, i, i+1)
	delete(tx.at, id)
	for j := i; j < len(tx.changes); j++ {
		tx.at[recordID{tx.changes[j].Kind, tx.changes[j].Key}] = j
	}
}

func (tx *Tx) staged(kind Kind, key string) (Change, bool) {
	i, ok := tx.at[recordID{kind, key}]
	if !ok {
		return Change{}, false
	}
	return tx.changes[i], true
}

// AddHost stages an add-or-update of host (copied and normalized, as in
// State.AddHost).
func (tx *Tx) AddHost(host *HostState) error {
	if tx.done {
		return errTxDone
	}
	h, err := host.Normalize()
	if err != nil {
		return hostErr(host, err)
	}
	tx.stage(Change{Kind: KindHost, Key: h.Name, Host: h})
	return nil
}

// RemoveHost stages the removal of the named host.
func (tx *Tx) RemoveHost(name string) error {
	if tx.done {
		return errTxDone
	}
	tx.stage(Change{Kind: KindHost, Key: name})
	return nil
}

// AddResource stages an add-or-update of the resource under key (copied
// and normalized, as in State.AddResource).
func (tx *Tx) AddResource(key string, res *ResourceState) error {
	if tx.done {
		return errTxDone
	}
	if err := ValidateName(key); err != nil {
		return fmt.Errorf("state: resource %q: %w", key, err.(*FieldError).Under("key"))
	}
	r, err := res.Normalize()
	if err != nil {
		return fmt.Errorf("state: resource %q: %w", key, err)
	}
	tx.stage(Change{Kind: KindResource, Key: key, Resource: r})
	return nil
}

// RemoveResource stages the removal of the resource under key.
func (tx *Tx) RemoveResource(key string) error {
	if tx.done {
		return errTxDone
	}
	tx.stage(Change{Kind: KindResource, Key: key})
	return nil
}

// GetHost returns a copy of the named host as this transaction would leave
// it. Timestamps of a staged host are set when the transaction commits.
func (tx *Tx) GetHost(name string) (*HostState, bool) {
	if c, ok := tx.staged(KindHost, name); ok {
		return c.Host.Clone(), c.Host != nil
	}
	return tx.s.GetHost(name)
}

// GetResource returns a copy of the resource under key as this transaction
// would leave it.
func (tx *Tx) GetResource(key string) (*ResourceState, bool) {
	if c, ok := tx.staged(KindResource, key); ok {
		return c.Resource.Clone(), c.Resource != nil
	}
	return tx.s.GetResource(key)
}
