package ansible

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/go-ftl2/ftlstate/state"
)

// ansibleUngrouped is the group Ansible gives hosts that are in no other.
const ansibleUngrouped = "ungrouped"

// Options adjust WriteList and WriteHost. The nil *Options and the zero
// Options render every host as it is.
type Options struct {
	// Host, when set, is called with each host before its variables are
	// rendered and returns the host to render in its place (export's
	// redaction). It must not modify h: return a changed copy.
	Host func(h *state.HostState) *state.HostState
}

// Group returns the Ansible group name for a host's Group:
//
//   - "" (no group), "all" and "ungrouped" give "ungrouped", Ansible's
//     group of hosts that belong to no other group;
//   - a name made of ASCII letters, digits and '_' that does not start
//     with a digit is kept;
//   - any other name is mapped: each character other than an ASCII
//     letter, digit or '_' becomes '_', and a leading digit gets a '_'
//     in front ("web-servers" → "web_servers", "db.eu" → "db_eu",
//     "1st" → "_1st", "café" → "caf_").
//
// A name that is (or maps to) "_meta", the key the inventory script
// protocol reserves for host variables, is an error matching
// state.ErrInvalid.
//
// Ansible itself (ansible-core 2.14, TRANSFORM_INVALID_GROUP_CHARS=never,
// the default) keeps such names and warns that they hold invalid
// characters; names with ':' or ',' then cannot be used in host patterns.
// Mapping them here gives names valid in every Ansible version and
// pattern, without warnings.
func Group(group string) (string, error) {
	name := state.AnsibleGroupName(group)
	if name == "_meta" {
		return "", fmt.Errorf("group %q: %q is reserved by Ansible's inventory script protocol: %w", group, name, state.ErrInvalid)
	}
	return name, nil
}

// HostVars returns the Ansible variables of h (or of what opts.Host makes
// of it), a new map: its Vars, then ansible_host, ansible_port and
// ansible_user from its fields, which win over Vars of the same names
// (and drop the older aliases ansible_ssh_host, ansible_ssh_port and
// ansible_ssh_user, which Ansible would otherwise prefer) when the field
// is set. opts may be nil.
func HostVars(h *state.HostState, opts *Options) map[string]any {
	if opts != nil && opts.Host != nil {
		h = opts.Host(h)
	}
	out := make(map[string]any, len(h.Vars)+3)
	maps.Copy(out, h.Vars)
	set := func(name, alias string, v any) {
		out[name] = v
		delete(out, alias)
	}
	if h.Address != "" {
		set("ansible_host", "ansible_ssh_host", h.Address)
	}
	if h.Port != 0 {
		set("ansible_port", "ansible_ssh_port", h.Port)
	}
	if h.User != "" {
		set("ansible_user", "ansible_ssh_user", h.User)
	}
	return out
}

// WriteList writes the hosts of v as the output of an Ansible
// dynamic inventory script called with --list (see the package
// documentation for the mapping), from one consistent snapshot, indented
// by two spaces and followed by a newline, in this shape (shown here with
// short lists on one line):
//
//	{
//	  "all": {
//	    "children": ["ungrouped", "webservers"]
//	  },
//	  "ungrouped": {"hosts": [], "vars": {}},
//	  "webservers": {"hosts": ["web01"], "vars": {}},
//	  "_meta": {
//	    "hostvars": {
//	      "web01": {"ansible_host": "192.168.1.10", "ansible_port": 22, "http_port": 80}
//	    }
//	  }
//	}
//
// It reads the hosts twice within the snapshot, first to check and
// gather the groups, then to write the host variables, so memory grows
// with the number of hosts' names, not with their variables. A group
// name that cannot be mapped (see Group), or two groups that map
// to the same Ansible name, is an error matching state.ErrInvalid, and
// nothing is written. An error while writing host variables (a backend
// failing) may leave w with partial output. opts may be nil.
func WriteList(w io.Writer, v state.Viewer, opts *Options) error {
	err := v.View(func(s state.Snapshot) error {
		members := map[string][]string{ansibleUngrouped: {}}
		origin := map[string]string{} // Ansible group -> the state group mapped to it
		err := s.Hosts(func(h *state.HostState) error {
			groups := h.AllGroups()
			if len(groups) == 0 {
				groups = []string{""}
			}
			var mine []string // the host's Ansible groups so far
			for _, sg := range groups {
				g, err := Group(sg)
				if err != nil {
					return fmt.Errorf("host %q: %w", h.Name, err)
				}
				if g != ansibleUngrouped {
					if o, ok := origin[g]; ok && o != sg {
						a, b := min(o, sg), max(o, sg)
						return fmt.Errorf("groups %q and %q both map to Ansible group %q; rename one: %w", a, b, g, state.ErrInvalid)
					}
					origin[g] = sg
				}
				if slices.Contains(mine, g) {
					continue // "all" and "ungrouped" of one host
				}
				mine = append(mine, g)
				members[g] = append(members[g], h.Name)
			}
			return nil
		})
		if err != nil {
			return err
		}

		bw := bufio.NewWriter(w)
		groups := slices.Sorted(maps.Keys(members))
		all, err := marshal(struct {
			Children []string `json:"children"`
		}{groups}, "  ", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(bw, "{\n  \"all\": %s,\n", all)
		for _, g := range groups {
			entry, err := marshal(struct {
				Hosts []string `json:"hosts"`
				Vars  struct{} `json:"vars"`
			}{Hosts: members[g]}, "  ", "  ")
			if err != nil {
				return err
			}
			name, _ := marshal(g, "", "")
			fmt.Fprintf(bw, "  %s: %s,\n", name, entry)
		}
		members = nil

		bw.WriteString("  \"_meta\": {\n    \"hostvars\": {")
		first := true
		err = s.Hosts(func(h *state.HostState) error {
			vars, err := marshal(HostVars(h, opts), "      ", "  ")
			if err != nil {
				return fmt.Errorf("host %q: %w", h.Name, err)
			}
			name, _ := marshal(h.Name, "", "")
			if !first {
				bw.WriteByte(',')
			}
			first = false
			fmt.Fprintf(bw, "\n      %s: %s", name, vars)
			return nil
		})
		if err != nil {
			bw.Flush()
			return err
		}
		if first {
			bw.WriteString("}\n  }\n}\n")
		} else {
			bw.WriteString("\n    }\n  }\n}\n")
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	return nil
}

// WriteHost writes the variables of the named host, as an
// Ansible dynamic inventory script called with --host NAME does: a JSON
// object indented by two spaces and followed by a newline, the same
// content as the host's entry in WriteList's "_meta.hostvars".
// A host v does not hold is an error (the message names it) and nothing
// is written. opts may be nil.
func WriteHost(w io.Writer, v state.Viewer, name string, opts *Options) error {
	err := v.View(func(s state.Snapshot) error {
		h, ok, err := s.Host(name)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("host %q not found", name)
		}
		b, err := marshal(HostVars(h, opts), "", "  ")
		if err != nil {
			return fmt.Errorf("host %q: %w", name, err)
		}
		_, err = w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	return nil
}

// marshal is json.MarshalIndent(v, prefix, indent) without HTML escaping
// (so that "<redacted>" reads as it is) and without a final newline.
func marshal(v any, prefix, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent(prefix, indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
