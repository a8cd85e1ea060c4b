package state

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Contents is a whole store held in memory: what a state.json document
// holds and what Replace writes.
type Contents struct {
	Metadata  Metadata
	Hosts     map[string]*HostState
	Resources map[string]*ResourceState
	// Operations are the pending operations by ID; nil and empty both
	// mean none.
	Operations map[string]*Operation
}

// Validate checks every record of c (normalizing them in place), that
// each host is stored under its own name and each operation under its own
// ID, and that no two groups have the same Ansible name (CheckGroups). Errors are *FieldError values with JSON paths such as
// "hosts.web01.port".
func (c *Contents) Validate() error {
	for _, name := range slices.Sorted(maps.Keys(c.Hosts)) {
		h := c.Hosts[name]
		if h == nil {
			return &FieldError{Path: "hosts." + PathKey(name), Msg: "must be an object"}
		}
		n, err := h.Normalize()
		if err != nil {
			return err.(*FieldError).Under("hosts." + PathKey(name))
		}
		if n.Name != name {
			return &FieldError{Path: "hosts." + PathKey(name) + ".name", Msg: fmt.Sprintf("%q does not match its key", n.Name)}
		}
		c.Hosts[name] = n
	}
	for _, key := range slices.Sorted(maps.Keys(c.Resources)) {
		p := "resources." + PathKey(key)
		if err := ValidateName(key); err != nil {
			return err.(*FieldError).Under(p)
		}
		r := c.Resources[key]
		if r == nil {
			return &FieldError{Path: p, Msg: "must be an object"}
		}
		n, err := r.Normalize()
		if err != nil {
			return err.(*FieldError).Under(p)
		}
		c.Resources[key] = n
	}
	for _, id := range slices.Sorted(maps.Keys(c.Operations)) {
		p := "operations." + PathKey(id)
		op := c.Operations[id]
		if op == nil {
			return &FieldError{Path: p, Msg: "must be an object"}
		}
		n, err := op.Normalize()
		if err != nil {
			return err.(*FieldError).Under(p)
		}
		if n.ID != id {
			return &FieldError{Path: p + ".id", Msg: fmt.Sprintf("%q does not match its key", n.ID)}
		}
		c.Operations[id] = n
	}
	return c.CheckGroups()
}

// Replace atomically replaces everything the store holds with c, in one
// durable write, with the safety rules of Terraform's "state push":
// unless force is set, it refuses with ErrConflict a document whose lineage
// differs from the store's, that has no lineage, or whose serial is lower
// than the store's, except when the store is empty (serial 0, no records).
//
// The store keeps c's metadata, except that the lineage stays the store's
// when c has none and the serial becomes one more than the larger of the
// two serials, so that the import itself counts as a change. c is
// validated first (see Contents.Validate) and copied.
func (s *State) Replace(c *Contents, force bool) error {
	cc := &Contents{Metadata: c.Metadata, Hosts: make(map[string]*HostState, len(c.Hosts)), Resources: make(map[string]*ResourceState, len(c.Resources)),
		Operations: make(map[string]*Operation, len(c.Operations))}
	maps.Copy(cc.Hosts, c.Hosts)
	maps.Copy(cc.Resources, c.Resources)
	maps.Copy(cc.Operations, c.Operations)
	if err := cc.Validate(); err != nil {
		return fmt.Errorf("state: replace: %w", err)
	}

	s.gate.Lock()
	defer s.gate.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	s.mu.RLock()
	cur := s.meta
	err := s.checkReplaceLocked(cc.Metadata, force)
	s.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("state: replace: %w", err)
	}

	now := Timestamp(s.now())
	meta := ReplaceMetadata(cur, cc.Metadata, now)

	changes := make([]Change, 0, len(cc.Hosts)+len(cc.Resources)+len(cc.Operations))
	for _, name := range slices.Sorted(maps.Keys(cc.Hosts)) {
		changes = append(changes, Change{Kind: KindHost, Key: name, Host: cc.Hosts[name]})
	}
	for _, key := range slices.Sorted(maps.Keys(cc.Resources)) {
		changes = append(changes, Change{Kind: KindResource, Key: key, Resource: cc.Resources[key]})
	}
	for _, id := range slices.Sorted(maps.Keys(cc.Operations)) {
		changes = append(changes, Change{Kind: KindOperation, Key: id, Operation: cc.Operations[id]})
	}
	got, err := s.b.Commit(&Batch{Changes: changes, Time: now, Replace: &meta})
	if err != nil {
		return fmt.Errorf("state: replace: %w", s.commitErr(err))
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta = got
	s.hosts = make(map[string]*HostState, len(cc.Hosts))
	s.resources = make(map[string]*ResourceState, len(cc.Resources))
	s.byType = make(map[string]map[string]struct{})
	s.ops = make(map[string]*Operation, len(cc.Operations))
	s.groups = groupIndex{}
	for _, h := range cc.Hosts {
		s.groups.add(h.AllGroups(), 1)
	}
	s.apply(changes)
	// No write is in flight (the gate is held): later serials follow got.
	s.pub.reset(got.Serial)
	s.log.replace(got.Serial, got.UpdatedAt)
	return nil
}

// ConflictError is why Replace refused a document: it comes from another
// store (lineage), is older than the store (serial), or has no lineage
// while the store is not empty. It matches ErrConflict.
type ConflictError struct {
	Reason string
}

func (e *ConflictError) Error() string { return "conflict: " + e.Reason }

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// checkReplaceLocked applies Replace's safety rules to a document with
// metadata doc; s.mu must be held.
func (s *State) checkReplaceLocked(doc Metadata, force bool) error {
	return ReplaceConflict(s.meta, len(s.hosts) == 0 && len(s.resources) == 0 && len(s.ops) == 0, doc, force)
}

// ReplaceMetadata returns the metadata a store whose metadata is cur
// has after Replace writes a document whose metadata is doc, at now: doc's,
// except that the lineage stays cur's when doc has none, the serial is one
// more than the larger of the two, and missing times are cur's creation
// time and now. Callers that replace a store through a Backend directly
// (Batch.Replace) use it, so that they agree with Replace.
func ReplaceMetadata(cur, doc Metadata, now time.Time) Metadata {
	meta := doc
	if meta.Lineage == "" {
		meta.Lineage = cur.Lineage
	}
	meta.Serial = max(doc.Serial, cur.Serial) + 1
	if meta.CreatedAt.IsZero() {
		meta.CreatedAt = cur.CreatedAt
	}
	if meta.UpdatedAt.IsZero() {
		meta.UpdatedAt = now
	}
	meta.CreatedAt, meta.UpdatedAt = Timestamp(meta.CreatedAt), Timestamp(meta.UpdatedAt)
	return meta
}

// ReplaceConflict applies Replace's safety rules (see Replace) to a
// document whose metadata is doc, for a store whose metadata is cur and
// which holds no records when empty is set: nil when Replace would accept
// it, else a *ConflictError. An empty store (serial 0, no records) takes
// any document; force takes any document.
func ReplaceConflict(cur Metadata, empty bool, doc Metadata, force bool) error {
	if force || cur.Serial == 0 && empty {
		return nil
	}
	switch {
	case doc.Lineage == "":
		return &ConflictError{fmt.Sprintf("the document has no lineage and the store is not empty (serial %d)", cur.Serial)}
	case cur.Lineage != "" && doc.Lineage != cur.Lineage:
		return &ConflictError{fmt.Sprintf("the document comes from another store (lineage %s, this store's is %s)", doc.Lineage, cur.Lineage)}
	case doc.Serial < cur.Serial:
		return &ConflictError{fmt.Sprintf("the document is older than the store (serial %d < %d)", doc.Serial, cur.Serial)}
	}
	return nil
}

// CheckReplace reports whether Replace(c, force) would refuse c as a
// conflict (a *ConflictError), without validating or writing anything:
// callers check it before work that should only happen for an accepted
// document, such as keeping a backup. Replace checks again.
func (s *State) CheckReplace(c *Contents, force bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("state: %w", ErrClosed)
	}
	return s.checkReplaceLocked(c.Metadata, force)
}

// memSnapshot is a Snapshot over immutable records held in maps. It hands
// out copies.
type memSnapshot struct {
	meta      Metadata
	hosts     map[string]*HostState
	resources map[string]*ResourceState
	// byType lists resource keys by type (unsorted).
	byType map[string][]string
	ops    map[string]*Operation
}

// NewSnapshot returns a Snapshot over c. The Snapshot hands out copies of
// c's records; c must not change while it is in use. Backends that keep
// their store in memory use it.
func NewSnapshot(c *Contents) Snapshot {
	s := &memSnapshot{meta: c.Metadata, hosts: c.Hosts, resources: c.Resources, ops: c.Operations}
	return s
}

func (m *memSnapshot) Metadata() Metadata { return m.meta }

func (m *memSnapshot) Len() (int, int) { return len(m.hosts), len(m.resources) }

func (m *memSnapshot) Host(name string) (*HostState, bool, error) {
	h, ok := m.hosts[name]
	return h.Clone(), ok, nil
}

func (m *memSnapshot) Resource(key string) (*ResourceState, bool, error) {
	r, ok := m.resources[key]
	return r.Clone(), ok, nil
}

func (m *memSnapshot) Hosts(fn func(*HostState) error) error {
	for _, name := range slices.Sorted(maps.Keys(m.hosts)) {
		if err := fn(m.hosts[name].Clone()); err != nil {
			return err
		}
	}
	return nil
}

func (m *memSnapshot) Resources(fn func(string, *ResourceState) error) error {
	for _, key := range slices.Sorted(maps.Keys(m.resources)) {
		if err := fn(key, m.resources[key].Clone()); err != nil {
			return err
		}
	}
	return nil
}

func (m *memSnapshot) ResourcesOfType(typ string, fn func(string, *ResourceState) error) error {
	var keys []string
	if m.byType != nil {
		keys = slices.Clone(m.byType[typ])
	} else {
		for k, r := range m.resources {
			if r.Type == typ {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		if err := fn(key, m.resources[key].Clone()); err != nil {
			return err
		}
	}
	return nil
}

func (m *memSnapshot) Operation(id string) (*Operation, bool, error) {
	op, ok := m.ops[id]
	return op.Clone(), ok, nil
}

func (m *memSnapshot) Operations(fn func(*Operation) error) error {
	for _, id := range slices.Sorted(maps.Keys(m.ops)) {
		if err := fn(m.ops[id].Clone()); err != nil {
			return err
		}
	}
	return nil
}
