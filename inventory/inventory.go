package inventory

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/go-ftl2/ftlstate/internal/clone"
)

// ErrInvalid is returned for a nil host, an empty host name or an empty
// group name.
var ErrInvalid = errors.New("inventory: invalid argument")

// Host is one machine that automation connects to.
type Host struct {
	Name    string
	Address string
	Port    int
	User    string
	Vars    map[string]any
}

// Clone returns a deep copy of h (Vars included). A nil h gives nil.
func (h *Host) Clone() *Host {
	if h == nil {
		return nil
	}
	c := *h
	c.Vars = clone.Map(h.Vars)
	return &c
}

// Inventory is a set of hosts arranged in named groups. A host (by name)
// exists once and may belong to several groups. The zero value is not
// usable; call New.
type Inventory struct {
	mu sync.RWMutex
	// hosts maps a host name to the host's current definition.
	hosts map[string]*Host
	// groups maps a group name to the set of host names in it.
	groups map[string]map[string]struct{}
}

// New returns an empty Inventory.
func New() *Inventory {
	return &Inventory{
		hosts:  make(map[string]*Host),
		groups: make(map[string]map[string]struct{}),
	}
}

// AddHost adds a copy of h to group, creating the group when needed. A host
// with the same name already in the inventory is updated (replaced by h) and
// keeps its other groups. It returns an error matching ErrInvalid for a nil
// host, an empty host name or an empty group.
func (inv *Inventory) AddHost(group string, h *Host) error {
	switch {
	case h == nil:
		return fmt.Errorf("%w: nil host", ErrInvalid)
	case h.Name == "":
		return fmt.Errorf("%w: empty host name", ErrInvalid)
	case group == "":
		return fmt.Errorf("%w: host %q: empty group name", ErrInvalid, h.Name)
	}
	c := h.Clone()
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.hosts[c.Name] = c
	g, ok := inv.groups[group]
	if !ok {
		g = make(map[string]struct{})
		inv.groups[group] = g
	}
	g[c.Name] = struct{}{}
	return nil
}

// Groups returns the names of all groups, sorted.
func (inv *Inventory) Groups() []string {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	return slices.Sorted(maps.Keys(inv.groups))
}

// Hosts returns copies of the hosts in group, sorted by name; nil when the
// group does not exist.
func (inv *Inventory) Hosts(group string) []*Host {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	g, ok := inv.groups[group]
	if !ok {
		return nil
	}
	out := make([]*Host, 0, len(g))
	for _, name := range slices.Sorted(maps.Keys(g)) {
		out = append(out, inv.hosts[name].Clone())
	}
	return out
}

// Host returns a copy of the named host and the sorted names of the groups
// it belongs to; ok is false when there is no such host.
func (inv *Inventory) Host(name string) (h *Host, groups []string, ok bool) {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	hh, ok := inv.hosts[name]
	if !ok {
		return nil, nil, false
	}
	for gname, g := range inv.groups {
		if _, in := g[name]; in {
			groups = append(groups, gname)
		}
	}
	slices.Sort(groups)
	return hh.Clone(), groups, true
}

// Len returns the number of distinct hosts.
func (inv *Inventory) Len() int {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	return len(inv.hosts)
}
