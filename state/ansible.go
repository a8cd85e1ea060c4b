package state

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Names Ansible can use.
//
// Hosts and groups end up in Ansible's inventory (see the export
// package), so Normalize refuses the names Ansible cannot address or
// that break the inventory document, and every write (State, Tx, an
// import, the CLI) refuses a group that Ansible would merge with another
// group of the store. The rules are ansible-core's (2.14): host patterns
// are split at commas, whitespace and colons (inventory/manager.py
// split_host_pattern), a leading '!', '&' or '~' makes a pattern an
// exclusion, an intersection or a regular expression, brackets are
// subscripts and ranges, 'all' selects every host, host variables are
// read from host_vars/NAME; and group names other than letters, digits
// and '_' are rewritten to them (TRANSFORM_INVALID_GROUP_CHARS) by
// dynamic inventories such as ours.

// validHostName checks the Ansible rules for a host name that passed
// ValidateName.
func validHostName(name string) error {
	bad := func(format string, args ...any) error {
		return &FieldError{Msg: "Ansible cannot address this host: " + fmt.Sprintf(format, args...)}
	}
	switch name {
	case "all", "ungrouped":
		return bad("%q is the name of one of its implicit groups", name)
	}
	switch name[0] {
	case '!', '&', '~':
		return bad("a leading %q makes a host pattern an %s", name[0], map[byte]string{'!': "exclusion", '&': "intersection", '~': "regular expression"}[name[0]])
	}
	for _, r := range name {
		switch {
		case unicode.IsSpace(r):
			return bad("whitespace (%U) separates host patterns", r)
		case r == ',':
			return bad("',' separates host patterns")
		case r == '[' || r == ']':
			return bad("brackets are host ranges and subscripts")
		case r == '/':
			return bad("'/' makes its host_vars file another host's")
		case r == ':':
			if a, err := netip.ParseAddr(name); err != nil || !a.Is6() {
				return bad("':' separates host patterns (only an IPv6 address may hold colons)")
			}
		}
	}
	return nil
}

// validAnsibleGroup checks the Ansible rules for one group name (not
// empty): no control characters, and not a name whose Ansible form is
// "_meta", the key that holds host variables in the inventory document.
func validAnsibleGroup(path, g string) error {
	for _, r := range g {
		if unicode.IsControl(r) {
			return &FieldError{Path: path, Msg: fmt.Sprintf("control character %U not allowed", r)}
		}
	}
	if AnsibleGroupName(g) == "_meta" {
		return &FieldError{Path: path, Msg: fmt.Sprintf("%q is %q in the Ansible inventory, the key reserved for host variables", g, "_meta")}
	}
	return nil
}

// AnsibleGroupName returns the name of a host's group in Ansible's
// inventory (see the export package):
//
//   - "" (no group), "all" and "ungrouped" give "ungrouped", Ansible's
//     group of hosts that belong to no other group;
//   - a name made of ASCII letters, digits and '_' that does not start
//     with a digit is kept;
//   - any other name is mapped: each character other than an ASCII
//     letter, digit or '_' becomes '_', and a leading digit gets a '_'
//     in front ("web-servers" → "web_servers", "db.eu" → "db_eu",
//     "1st" → "_1st", "café" → "caf_").
func AnsibleGroupName(group string) string {
	switch group {
	case "", "all", "ungrouped":
		return "ungrouped"
	}
	var b strings.Builder
	b.Grow(len(group) + 1)
	for i, r := range group {
		switch {
		case r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z':
			b.WriteRune(r)
		case '0' <= r && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// GroupClashError reports a group that Ansible would merge with another
// group of the store: both have the same Ansible name. It matches
// ErrInvalid.
type GroupClashError struct {
	// Group is the group refused, Other the store's group it clashes
	// with, Ansible the name both have in the inventory.
	Group, Other, Ansible string
}

func (e *GroupClashError) Error() string {
	return fmt.Sprintf("groups %q and %q are both %q in the Ansible inventory; use %q", e.Group, e.Other, e.Ansible, e.Other)
}

// Unwrap returns ErrInvalid.
func (e *GroupClashError) Unwrap() error { return ErrInvalid }

// groupIndex counts, for each Ansible group name, the hosts of each group
// that has it (committed or being written), so that a write cannot give
// two groups one Ansible name.
type groupIndex map[string]map[string]int

// add counts n more hosts in each of groups.
func (x groupIndex) add(groups []string, n int) {
	for _, g := range groups {
		a := AnsibleGroupName(g)
		m := x[a]
		if m == nil {
			m = map[string]int{}
			x[a] = m
		}
		if m[g] += n; m[g] <= 0 {
			delete(m, g)
			if len(m) == 0 {
				delete(x, a)
			}
		}
	}
}

// clash returns the *GroupClashError of giving a host group g, nil when
// no other group has g's Ansible name.
func (x groupIndex) clash(g string) error {
	a := AnsibleGroupName(g)
	if a == "ungrouped" {
		return nil
	}
	for _, other := range slices.Sorted(maps.Keys(x[a])) {
		if other != g {
			return &GroupClashError{Group: g, Other: other, Ansible: a}
		}
	}
	return nil
}

// newGroups returns the groups of h that old (nil when absent) is not in.
func newGroups(h, old *HostState) []string {
	var out []string
	for _, g := range h.AllGroups() {
		if old == nil || !old.InGroup(g) {
			out = append(out, g)
		}
	}
	return out
}

// lostGroups returns the groups of old that h (nil for a removal) is not
// in.
func lostGroups(old, h *HostState) []string {
	if old == nil {
		return nil
	}
	if h == nil {
		return old.AllGroups()
	}
	return newGroups(old, h)
}

// CheckGroups reports the first group of c that Ansible would merge with
// another group of c (a *GroupClashError, under the host's path such as
// "hosts.web01.groups.0"), nil when there is none. Contents.Validate
// calls it; so should a caller that builds Contents by other means
// before writing them.
func (c *Contents) CheckGroups() error {
	x := groupIndex{}
	for _, name := range slices.Sorted(maps.Keys(c.Hosts)) {
		h := c.Hosts[name]
		if h == nil {
			continue
		}
		for i, g := range h.AllGroups() {
			if err := x.clash(g); err != nil {
				path := "hosts." + PathKey(name) + ".group"
				if i > 0 {
					path = "hosts." + PathKey(name) + ".groups." + strconv.Itoa(i-1)
				}
				return &FieldError{Path: path, Msg: err.Error()}
			}
			x.add([]string{g}, 1)
		}
	}
	return nil
}
