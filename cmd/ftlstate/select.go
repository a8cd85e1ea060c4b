package main

import (
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
)

// Listing filters: name globs and --selector.

// globs matches names against shell patterns (path.Match: *, ?, [a-z]);
// no patterns match every name.
type globs []string

func newGlobs(patterns []string) (globs, error) {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return nil, usageErrorf("pattern %q: %v", p, err)
		}
	}
	return globs(patterns), nil
}

func (g globs) match(name string) bool {
	if len(g) == 0 {
		return true
	}
	for _, p := range g {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// prefix returns the literal text every match starts with (for
// completion-like shortcuts); "" when any name may match.
func (g globs) prefix() string {
	if len(g) != 1 {
		return ""
	}
	i := strings.IndexAny(g[0], `*?[\`)
	if i < 0 {
		return g[0]
	}
	return g[0][:i]
}

// requirement is one term of a selector.
type requirement struct {
	field string // "group", "var.role", "tag.env", ...
	op    string // "=", "!=", "exists", "!exists"
	value string
}

// selector is --selector: terms joined by commas, all of which must hold
// (as in kubectl): FIELD=VALUE (or ==), FIELD!=VALUE, FIELD (set and not
// empty), !FIELD (unset or empty).
type selector []requirement

// parseSelector parses the --selector values of a listing of kind
// ("host" or "resource"), checking the field names.
func parseSelector(kind string, args []string) (selector, error) {
	var sel selector
	for _, arg := range args {
		for _, term := range strings.Split(arg, ",") {
			term = strings.TrimSpace(term)
			if term == "" {
				continue
			}
			var r requirement
			switch {
			case strings.Contains(term, "!="):
				r.field, r.value, _ = strings.Cut(term, "!=")
				r.op = "!="
			case strings.Contains(term, "=="):
				r.field, r.value, _ = strings.Cut(term, "==")
				r.op = "="
			case strings.Contains(term, "="):
				r.field, r.value, _ = strings.Cut(term, "=")
				r.op = "="
			case strings.HasPrefix(term, "!"):
				r.field, r.op = term[1:], "!exists"
			default:
				r.field, r.op = term, "exists"
			}
			r.field = strings.TrimSpace(r.field)
			if err := checkSelectorField(kind, r.field); err != nil {
				return nil, usageErrorf("--selector %q: %v", term, err)
			}
			sel = append(sel, r)
		}
	}
	return sel, nil
}

var selectorFields = map[string][]string{
	"host":     {"name", "address", "port", "user", "group"},
	"resource": {"key", "type", "id", "name"},
}

var selectorMaps = map[string][]string{
	"host":     {"var.", "vars."},
	"resource": {"data.", "tag.", "tags."},
}

func checkSelectorField(kind, field string) error {
	for _, f := range selectorFields[kind] {
		if field == f {
			return nil
		}
	}
	for _, p := range selectorMaps[kind] {
		if strings.HasPrefix(field, p) && len(field) > len(p) {
			return nil
		}
	}
	return usageErrorf("unknown field %q; %ss have %s, and %s<key>", field, kind,
		strings.Join(selectorFields[kind], ", "), strings.Join(selectorMaps[kind], "<key>, "))
}

// matches reports whether every requirement holds, get returning a
// field's text and whether it is set.
func (s selector) matches(get func(field string) (string, bool)) bool {
	for _, r := range s {
		v, set := get(r.field)
		set = set && v != ""
		switch r.op {
		case "=":
			if !set && r.value != "" || set && v != r.value {
				return false
			}
		case "!=":
			if set && v == r.value || !set && r.value == "" {
				return false
			}
		case "exists":
			if !set {
				return false
			}
		case "!exists":
			if set {
				return false
			}
		}
	}
	return true
}

// without returns s without the requirements on field with ops (given a
// value), which the caller checked itself.
func (s selector) without(field string, ops ...string) selector {
	var out selector
	for _, r := range s {
		if r.field == field && r.value != "" && slices.Contains(ops, r.op) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// valueText renders a var or data value for comparison with a selector's
// text: a string as it is, anything else as compact JSON (80, true,
// ["a"]).
func valueText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return compactJSON(v)
}

func (s selector) matchHost(h *state.HostState) bool {
	if len(s) == 0 {
		return true
	}
	for _, r := range s {
		// group=G holds when G is any of the host's groups.
		if r.field == "group" && (r.op == "=" || r.op == "!=") && r.value != "" {
			if inGroup(h, r.value) != (r.op == "=") {
				return false
			}
		}
	}
	return s.without("group", "=", "!=").matches(func(f string) (string, bool) {
		switch f {
		case "name":
			return h.Name, true
		case "address":
			return h.Address, true
		case "port":
			return strconv.Itoa(h.Port), true
		case "user":
			return h.User, true
		case "group":
			return strings.Join(h.AllGroups(), ","), true
		}
		_, k, _ := strings.Cut(f, ".")
		v, ok := h.Vars[k]
		if !ok {
			return "", false
		}
		return valueText(v), true
	})
}

func (s selector) matchResource(key string, r *state.ResourceState) bool {
	if len(s) == 0 {
		return true
	}
	return s.matches(func(f string) (string, bool) {
		switch f {
		case "key":
			return key, true
		case "type":
			return r.Type, true
		case "id":
			return r.ID, true
		case "name":
			return r.Name, true
		}
		m, k, _ := strings.Cut(f, ".")
		if m == "tag" || m == "tags" {
			v, ok := r.Tags[k]
			return v, ok
		}
		v, ok := r.Data[k]
		if !ok {
			return "", false
		}
		return valueText(v), true
	})
}

// inGroup reports whether h is in group g (any of its groups), named as
// stored or as Ansible names it (edge-nodes.eu is edge_nodes_eu there); ""
// and "ungrouped" find the hosts without a group.
func inGroup(h *state.HostState, g string) bool {
	if h.InGroup(g) {
		return true
	}
	groups := h.AllGroups()
	if len(groups) == 0 {
		groups = []string{""}
	}
	for _, sg := range groups {
		if ag, err := export.AnsibleGroup(sg); err == nil && ag == g {
			return true
		}
	}
	return false
}
