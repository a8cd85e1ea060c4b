package state

import (
	"maps"
	"slices"
	"time"

	"github.com/go-ftl2/ftlstate/internal/clone"
)

// HostState records a host that automation provisioned or added to its
// inventory. The JSON tags are the documented state.json format.
//
// A host may be in several inventory groups, as in Ansible: Group is the
// first (the one the design document has), Groups the others, in order.
// AllGroups and SetGroups handle them as one list.
type HostState struct {
	Name    string         `json:"name"`
	Address string         `json:"address"`
	Port    int            `json:"port"`
	User    string         `json:"user"`
	Vars    map[string]any `json:"vars,omitempty"`
	Group   string         `json:"group,omitempty"`
	// Groups are the host's groups beyond Group, in order: each one
	// non-empty, none repeated (nor equal to Group), and only when Group
	// is set (see ValidateGroups). nil when there are none.
	Groups    []string  `json:"groups,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ResourceState records a provisioned resource: a cloud instance, an IP, a
// DNS record. Its key in the store (such as "linode:12345678") is not part of
// the record; it is passed beside it.
type ResourceState struct {
	Type      string            `json:"type"`
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Data      map[string]any    `json:"data"`
	Tags      map[string]string `json:"tags,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// Metadata describes a store as a whole.
type Metadata struct {
	// Version is the state format version, "1.0".
	Version   string    `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Serial grows by one with every committed change, so that an older
	// copy of the same store can be recognised.
	Serial uint64 `json:"serial,omitempty"`
	// Lineage is a random id given to a store when it is created and never
	// changed, so that a copy of another store can be recognised.
	Lineage string `json:"lineage,omitempty"`
}

// FormatVersion is the Metadata.Version this package writes.
const FormatVersion = "1.0"

// Clone returns a deep copy of h; nil gives nil.
func (h *HostState) Clone() *HostState {
	if h == nil {
		return nil
	}
	c := *h
	c.Vars = CloneMap(h.Vars)
	c.Groups = slices.Clone(h.Groups)
	return &c
}

// AllGroups returns the host's groups in order, Group first and then
// Groups; nil when Group is "". The slice is the caller's.
func (h *HostState) AllGroups() []string {
	if h.Group == "" && len(h.Groups) == 0 {
		return nil
	}
	return append([]string{h.Group}, h.Groups...)
}

// InGroup reports whether g is one of the host's groups. The empty name
// asks whether the host has no group at all.
func (h *HostState) InGroup(g string) bool {
	if g == "" {
		return h.Group == "" && len(h.Groups) == 0
	}
	return h.Group == g || slices.Contains(h.Groups, g)
}

// SetGroups sets Group to the first of groups and Groups to a copy of the
// others (nil when there are none); no groups clears both. It does not
// check them: Normalize does (see ValidateGroups).
func (h *HostState) SetGroups(groups ...string) {
	h.Group, h.Groups = "", nil
	if len(groups) > 0 {
		h.Group = groups[0]
	}
	if len(groups) > 1 {
		h.Groups = slices.Clone(groups[1:])
	}
}

// Clone returns a deep copy of r; nil gives nil.
func (r *ResourceState) Clone() *ResourceState {
	if r == nil {
		return nil
	}
	c := *r
	c.Data = CloneMap(r.Data)
	c.Tags = maps.Clone(r.Tags)
	return &c
}

// CloneMap returns a deep copy of a Vars or Data map holding the value model
// of this package (nested map[string]any and []any are copied; other values
// are immutable). nil gives nil.
func CloneMap(m map[string]any) map[string]any { return clone.Map(m) }

// Timestamp returns t as this package stores times: UTC, nanosecond
// precision, with the monotonic clock reading stripped, so that it compares
// equal with == after any round trip through a backend.
func Timestamp(t time.Time) time.Time {
	return t.UTC().Round(0)
}
