package export_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
)

// ftl2Fixtures returns the files of testdata/ftl2 that are ftl2 state
// files (written by the real Python code: see testdata/ftl2/README.md).
func ftl2Fixtures(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(testdata("ftl2", "*.ftl2-state.json"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 6, "the fixtures of ../shared/ftl2py and those written here")
	return files
}

// rawJSON decodes b keeping numbers as json.Number.
func rawJSON(t testing.TB, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	require.NoError(t, d.Decode(&v), "%s", b)
	return v
}

// canon returns v (decoded with rawJSON) with every number replaced by
// its exact rational value ("2.0", "2" and "2e0" all give "2"; big
// integers stay exact), so that JSON values compare equal whatever their
// spelling.
func canon(v any) any {
	switch v := v.(type) {
	case json.Number:
		r, ok := new(big.Rat).SetString(string(v))
		if !ok {
			return "bad number " + string(v)
		}
		return "num:" + r.RatString()
	case float64: // from Python's output, decoded without UseNumber
		return "num:" + new(big.Rat).SetFloat64(v).RatString()
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = canon(e)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = canon(e)
		}
		return l
	}
	return v
}

// timeKeys are the keys of an ftl2 file that hold timestamps.
var timeKeys = []string{"created_at", "updated_at", "added_at", "last_seen"}

// ftl2Normalized applies to an ftl2 document (rawJSON) the normalisations
// the package documentation lists for ftl2 -> import -> export --format
// ftl2, and canon: what the round trip must give back.
//
//  1. key order (maps compare without it);
//  2. timestamps: the same instant, in UTC;
//  3. numbers: the same value (a float with an integral value becomes
//     an integer: canon);
//  4. groups: each group once, first occurrence kept; a missing list is [];
//  5. version: 1.
func ftl2Normalized(doc any) any {
	m := maps.Clone(doc.(map[string]any))
	m["version"] = json.Number("1")
	normTimes(m)
	for _, part := range []string{"hosts", "resources"} {
		entries, _ := m[part].(map[string]any)
		out := map[string]any{}
		for name, e := range entries {
			e := maps.Clone(e.(map[string]any))
			normTimes(e)
			if part == "hosts" {
				groups, _ := e["groups"].([]any)
				var once []any
				for _, g := range groups {
					if !slices.Contains(once, g) {
						once = append(once, g)
					}
				}
				if once == nil {
					once = []any{}
				}
				e["groups"] = once
			}
			out[name] = e
		}
		m[part] = out
	}
	return canon(m)
}

func normTimes(m map[string]any) {
	for _, k := range timeKeys {
		if s, ok := m[k].(string); ok {
			var tm time.Time
			if tm.UnmarshalText([]byte(s)) == nil {
				m[k] = "time:" + tm.UTC().Format(time.RFC3339Nano)
			}
		}
	}
}

// pyInventory is an inventory as upstream's Inventory holds it: the hosts
// of each group that has any, and per host the connection fields of its
// HostConfig and its vars (testdata/ftl2/ftl2py.py prints the same).
type pyInventory struct {
	Groups map[string][]string `json:"groups"`
	Hosts  map[string]pyHost   `json:"hosts"`
}

type pyHost struct {
	AnsibleHost       any            `json:"ansible_host"`
	AnsiblePort       any            `json:"ansible_port"`
	AnsibleUser       any            `json:"ansible_user"`
	AnsibleConnection any            `json:"ansible_connection"`
	Vars              map[string]any `json:"vars"`
}

func getOr(m map[string]any, k string, def any) any {
	if v, ok := m[k]; ok {
		return v
	}
	return def
}

// pyMerge mirrors upstream's merge_state_into_inventory (ftl2/state/
// merge.py) on a decoded ftl2 file: the Python tool's own inventory of
// it. TestFTL2_GoMirrorsAgreeWithPython checks the mirror against the real
// code.
func pyMerge(doc any) pyInventory {
	inv := pyInventory{Groups: map[string][]string{}, Hosts: map[string]pyHost{}}
	hosts, _ := doc.(map[string]any)["hosts"].(map[string]any)
	for name, hd := range hosts {
		h := hd.(map[string]any)
		vars := map[string]any{}
		for k, v := range h {
			switch k {
			case "ansible_host", "ansible_port", "ansible_user", "ansible_connection", "groups", "added_at":
				continue
			}
			vars[k] = v
		}
		inv.Hosts[name] = pyHost{getOr(h, "ansible_host", name), getOr(h, "ansible_port", json.Number("22")), getOr(h, "ansible_user", ""), getOr(h, "ansible_connection", "ssh"), vars}
		groups, _ := h["groups"].([]any)
		if len(groups) == 0 {
			groups = []any{"ungrouped"}
		}
		for _, g := range groups {
			if !slices.Contains(inv.Groups[g.(string)], name) {
				inv.Groups[g.(string)] = append(inv.Groups[g.(string)], name)
			}
		}
	}
	for g := range inv.Groups {
		slices.Sort(inv.Groups[g])
	}
	return inv
}

// pyStandardFields are upstream's _STANDARD_HOST_FIELDS (ftl2/inventory.py):
// hostvars that load_inventory_json makes HostConfig fields, not vars.
var pyStandardFields = []string{"ansible_host", "ansible_port", "ansible_user", "ansible_connection", "ansible_python_interpreter", "ansible_become", "ansible_become_user"}

// pyLoadList mirrors upstream's load_inventory_json (ftl2/inventory.py):
// how the Python tool reads a dynamic inventory's --list, here ours.
func pyLoadList(doc any) pyInventory {
	inv := pyInventory{Groups: map[string][]string{}, Hosts: map[string]pyHost{}}
	d := doc.(map[string]any)
	meta, _ := d["_meta"].(map[string]any)
	hostvars, _ := meta["hostvars"].(map[string]any)
	for g, gd := range d {
		if g == "_meta" {
			continue
		}
		list, _ := gd.(map[string]any)["hosts"].([]any)
		for _, hn := range list {
			name := hn.(string)
			hv, _ := hostvars[name].(map[string]any)
			vars := map[string]any{}
			for k, v := range hv {
				if !slices.Contains(pyStandardFields, k) {
					vars[k] = v
				}
			}
			inv.Hosts[name] = pyHost{getOr(hv, "ansible_host", name), getOr(hv, "ansible_port", json.Number("22")), getOr(hv, "ansible_user", ""), getOr(hv, "ansible_connection", "ssh"), vars}
			inv.Groups[g] = append(inv.Groups[g], name)
		}
	}
	for g := range inv.Groups {
		if len(inv.Groups[g]) == 0 {
			delete(inv.Groups, g)
		}
		slices.Sort(inv.Groups[g])
	}
	return inv
}

// canonInventory makes two inventories comparable: values by canon.
func canonInventory(inv pyInventory) any {
	hosts := map[string]any{}
	for n, h := range inv.Hosts {
		hosts[n] = canon(map[string]any{"ansible_host": h.AnsibleHost, "ansible_port": h.AnsiblePort, "ansible_user": h.AnsibleUser, "ansible_connection": h.AnsibleConnection, "vars": h.Vars})
	}
	return map[string]any{"groups": inv.Groups, "hosts": hosts}
}

// expectedOurs turns the Python tool's merge of an ftl2 file into what
// ftlstate's inventory --list of the imported file must equal, by the
// documented differences (and no others):
//
//   - group names are Ansible-safe (export.AnsibleGroup: "équipe" is
//     "_quipe");
//   - a host whose added_at is not a timestamp keeps it as the var
//     added_at (upstream's merge drops the key whatever it holds).
func expectedOurs(t testing.TB, doc any, inv pyInventory) pyInventory {
	t.Helper()
	out := pyInventory{Groups: map[string][]string{}, Hosts: map[string]pyHost{}}
	for g, hosts := range inv.Groups {
		ag, err := export.AnsibleGroup(g)
		require.NoError(t, err)
		for _, h := range hosts {
			if !slices.Contains(out.Groups[ag], h) {
				out.Groups[ag] = append(out.Groups[ag], h)
			}
		}
		slices.Sort(out.Groups[ag])
	}
	raw := doc.(map[string]any)["hosts"].(map[string]any)
	for n, h := range inv.Hosts {
		if a, ok := raw[n].(map[string]any)["added_at"]; ok {
			s, isString := a.(string)
			var tm time.Time
			if !isString || tm.UnmarshalText([]byte(s)) != nil {
				h.Vars = maps.Clone(h.Vars)
				h.Vars["added_at"] = a
			}
		}
		out.Hosts[n] = h
	}
	return out
}

// importFTL2 reads an ftl2 file into a new in-memory store.
func importFTL2(t testing.TB, path string) (*state.State, *export.ReadReport) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	c, rep, err := export.ReadAny(bytes.NewReader(b), nil)
	require.NoError(t, err, path)
	st := openMem(t)
	require.NoError(t, st.Replace(c, false), path)
	return st, rep
}

func writeFTL2(t testing.TB, v state.Viewer) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, export.WriteFTL2(&buf, v, nil))
	return buf.Bytes()
}

func inventoryOf(t testing.TB, v state.Viewer) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, export.WriteInventoryList(&buf, v, nil))
	return buf.Bytes()
}

// contentsOf returns what a store holds, for comparisons.
func contentsOf(t testing.TB, v state.Viewer) *state.Contents {
	t.Helper()
	c := &state.Contents{Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}}
	require.NoError(t, v.View(func(s state.Snapshot) error {
		c.Metadata = s.Metadata()
		if err := s.Hosts(func(h *state.HostState) error { c.Hosts[h.Name] = h; return nil }); err != nil {
			return err
		}
		return s.Resources(func(k string, r *state.ResourceState) error { c.Resources[k] = r; return nil })
	}))
	return c
}
