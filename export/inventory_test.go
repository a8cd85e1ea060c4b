package export_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
)

// inventoryHosts is a state exercising every rule of the Ansible mapping.
func inventoryHosts() []*state.HostState {
	return []*state.HostState{
		{Name: "web01", Address: "192.168.1.10", Port: 22, User: "admin", Group: "webservers",
			Vars: map[string]any{"http_port": int64(80), "tls": map[string]any{"enabled": true}}},
		{Name: "web02", Address: "192.168.1.11", Group: "webservers"}, // no port, no user
		{Name: "db01", Address: "192.168.1.20", Port: 5432, Group: "db-servers",
			Vars: map[string]any{"db_password": "hunter2", "replicas": []any{map[string]any{"name": "db02", "token": "t"}}}},
		{Name: "lone", Address: "10.0.0.5"},                                    // no group
		{Name: "old-style", Address: "10.0.0.6", Group: "all"},                 // "all" means no group
		{Name: "explicit", Address: "10.0.0.7", Group: "ungrouped", User: "u"}, // already Ansible's name
		{Name: "override", Address: "10.0.0.8", Port: 2222, User: "ops", Group: "1st.wave",
			Vars: map[string]any{"ansible_host": "stale", "ansible_port": int64(1), "ansible_user": "x",
				"ansible_ssh_host": "legacy", "ansible_ssh_port": int64(2), "ansible_ssh_user": "y"}},
		{Name: "from-vars", Group: "1st.wave",
			Vars: map[string]any{"ansible_host": "10.9.9.9", "ansible_port": int64(2200), "ansible_ssh_user": "legacy"}},
		{Name: "app.example.com", Address: "2001:db8::1", Group: "web servers", Vars: map[string]any{"note": "<&>"}},
		{Name: "multi", Address: "10.0.0.9", Group: "db-servers", Groups: []string{"production", "1st.wave"}}, // several groups
	}
}

// wantHostvars is what every host of inventoryHosts should get.
func wantHostvars(redacted bool) map[string]any {
	pw, tok := any("hunter2"), any("t")
	if redacted {
		pw, tok = "<redacted>", "<redacted>"
	}
	return map[string]any{
		"web01": map[string]any{"ansible_host": "192.168.1.10", "ansible_port": 22.0, "ansible_user": "admin",
			"http_port": 80.0, "tls": map[string]any{"enabled": true}},
		"web02": map[string]any{"ansible_host": "192.168.1.11"},
		"db01": map[string]any{"ansible_host": "192.168.1.20", "ansible_port": 5432.0,
			"db_password": pw, "replicas": []any{map[string]any{"name": "db02", "token": tok}}},
		"lone":            map[string]any{"ansible_host": "10.0.0.5"},
		"old-style":       map[string]any{"ansible_host": "10.0.0.6"},
		"explicit":        map[string]any{"ansible_host": "10.0.0.7", "ansible_user": "u"},
		"override":        map[string]any{"ansible_host": "10.0.0.8", "ansible_port": 2222.0, "ansible_user": "ops"},
		"from-vars":       map[string]any{"ansible_host": "10.9.9.9", "ansible_port": 2200.0, "ansible_ssh_user": "legacy"},
		"app.example.com": map[string]any{"ansible_host": "2001:db8::1", "note": "<&>"},
		"multi":           map[string]any{"ansible_host": "10.0.0.9"},
	}
}

// wantGroups maps each Ansible group of inventoryHosts to its hosts.
var wantGroups = map[string][]string{
	"_1st_wave":   {"from-vars", "multi", "override"},
	"db_servers":  {"db01", "multi"},
	"production":  {"multi"},
	"ungrouped":   {"explicit", "lone", "old-style"},
	"web_servers": {"app.example.com"},
	"webservers":  {"web01", "web02"},
}

func inventoryList(t testing.TB, v state.Viewer, opts *export.Options) (string, map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, export.WriteInventoryList(&buf, v, opts))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc), buf.String())
	return buf.String(), doc
}

func TestWriteInventoryList_Mapping(t *testing.T) {
	out, doc := inventoryList(t, store(inventoryHosts(), nil), nil)

	wantDoc := map[string]any{
		"all":   map[string]any{"children": []any{"_1st_wave", "db_servers", "production", "ungrouped", "web_servers", "webservers"}},
		"_meta": map[string]any{"hostvars": wantHostvars(false)},
	}
	for g, hosts := range wantGroups {
		hs := make([]any, len(hosts))
		for i, h := range hosts {
			hs[i] = h
		}
		wantDoc[g] = map[string]any{"hosts": hs, "vars": map[string]any{}}
	}
	assert.Equal(t, wantDoc, doc)

	// Layout: "all" first, groups in order, "_meta" last, two-space indent.
	assert.Regexp(t, `^\{\n  "all": \{\n    "children": \[\n      "_1st_wave",`, out)
	assert.Regexp(t, `"webservers": \{\n    "hosts": \[\n      "web01",\n      "web02"\n    \],\n    "vars": \{\}\n  \},\n  "_meta": \{\n    "hostvars": \{\n      "app.example.com": \{\n        "ansible_host": "2001:db8::1",`, out)
	assert.Regexp(t, `\n    \}\n  \}\n\}\n$`, out)
	assert.Contains(t, out, `"note": "<&>"`, "no HTML escaping")
}

func TestWriteInventoryList_Redact(t *testing.T) {
	out, doc := inventoryList(t, store(inventoryHosts(), nil), &export.Options{Redact: true})
	assert.Equal(t, wantHostvars(true), doc["_meta"].(map[string]any)["hostvars"])
	assert.NotContains(t, out, "hunter2")
	_, plain := inventoryList(t, store(inventoryHosts(), nil), &export.Options{})
	assert.Equal(t, wantHostvars(false), plain["_meta"].(map[string]any)["hostvars"], "zero Options: no redaction")
}

func TestWriteInventoryList_Empty(t *testing.T) {
	out, doc := inventoryList(t, store(nil, nil), nil)
	assert.Equal(t, map[string]any{
		"all":       map[string]any{"children": []any{"ungrouped"}},
		"ungrouped": map[string]any{"hosts": []any{}, "vars": map[string]any{}},
		"_meta":     map[string]any{"hostvars": map[string]any{}},
	}, doc)
	assert.Equal(t, `{
  "all": {
    "children": [
      "ungrouped"
    ]
  },
  "ungrouped": {
    "hosts": [],
    "vars": {}
  },
  "_meta": {
    "hostvars": {}
  }
}
`, out)
}

func TestWriteInventoryList_Deterministic(t *testing.T) {
	st := open()
	defer st.Close()
	for _, h := range inventoryHosts() {
		require.NoError(t, st.AddHost(h))
	}
	first, _ := inventoryList(t, st, nil)
	for range 5 {
		again, _ := inventoryList(t, st, nil)
		require.Equal(t, first, again)
	}
	// The same content in another store gives the same bytes.
	other, _ := inventoryList(t, store(inventoryHosts(), nil), nil)
	assert.Equal(t, first, other)
}

func TestWriteInventoryList_BadGroups(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hosts []*state.HostState
		msg   string
	}{
		{"collision", []*state.HostState{{Name: "a", Group: "web-servers"}, {Name: "b", Group: "web.servers"}},
			`groups "web-servers" and "web.servers" both map to Ansible group "web_servers"`},
		{"collision with a valid name", []*state.HostState{{Name: "a", Group: "web_servers"}, {Name: "b", Group: "web servers"}},
			`groups "web servers" and "web_servers" both map to Ansible group "web_servers"`},
		{"reserved", []*state.HostState{{Name: "a", Group: "_meta"}}, `host "a": group "_meta": "_meta" is reserved`},
		{"reserved after mapping", []*state.HostState{{Name: "a", Group: "-meta"}}, `group "-meta": "_meta" is reserved`},
		{"collision within one host's groups", []*state.HostState{{Name: "a", Group: "web-servers", Groups: []string{"web.servers"}}},
			`groups "web-servers" and "web.servers" both map to Ansible group "web_servers"`},
		{"reserved among Groups", []*state.HostState{{Name: "a", Group: "web", Groups: []string{"_meta"}}}, `host "a": group "_meta": "_meta" is reserved`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := export.WriteInventoryList(&buf, store(tc.hosts, nil), nil)
			require.ErrorIs(t, err, state.ErrInvalid)
			assert.Contains(t, err.Error(), tc.msg)
			assert.Contains(t, err.Error(), "export: inventory: ")
			assert.Empty(t, buf.String(), "nothing is written")
		})
	}
}

func TestWriteInventoryList_SnapshotError(t *testing.T) {
	var buf bytes.Buffer
	err := export.WriteInventoryList(&buf, &brokenViewer{v: store(inventoryHosts(), nil), failAfter: 3}, nil)
	require.ErrorIs(t, err, errDisk)
	assert.Empty(t, buf.String(), "the first pass fails before anything is written")
}

func TestWriteInventoryHost(t *testing.T) {
	v := store(inventoryHosts(), nil)
	for _, redact := range []bool{false, true} {
		opts := &export.Options{Redact: redact}
		_, doc := inventoryList(t, v, opts)
		hostvars := doc["_meta"].(map[string]any)["hostvars"].(map[string]any)
		for _, h := range inventoryHosts() {
			var buf bytes.Buffer
			require.NoError(t, export.WriteInventoryHost(&buf, v, h.Name, opts))
			var got map[string]any
			require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
			assert.Equal(t, hostvars[h.Name], got, "--host %s matches its hostvars entry", h.Name)
			assert.Equal(t, wantHostvars(redact)[h.Name], got)
		}
	}

	var buf bytes.Buffer
	require.NoError(t, export.WriteInventoryHost(&buf, v, "web02", nil))
	assert.Equal(t, "{\n  \"ansible_host\": \"192.168.1.11\"\n}\n", buf.String())
}

func TestWriteInventoryHost_UnknownHost(t *testing.T) {
	var buf bytes.Buffer
	err := export.WriteInventoryHost(&buf, store(inventoryHosts(), nil), "nope", nil)
	require.Error(t, err)
	assert.Equal(t, `export: inventory: host "nope" not found`, err.Error())
	assert.Empty(t, buf.String())
}

func TestWriteInventory_ClosedState(t *testing.T) {
	st := open()
	require.NoError(t, st.Close())
	var buf bytes.Buffer
	require.ErrorIs(t, export.WriteInventoryList(&buf, st, nil), state.ErrClosed)
	require.ErrorIs(t, export.WriteInventoryHost(&buf, st, "x", nil), state.ErrClosed)
	assert.Empty(t, buf.String())
}

func TestAnsibleGroup(t *testing.T) {
	for in, want := range map[string]string{
		"":            "ungrouped",
		"all":         "ungrouped",
		"ungrouped":   "ungrouped",
		"webservers":  "webservers",
		"Web_Servers": "Web_Servers",
		"_private":    "_private",
		"web2":        "web2",
		"web-servers": "web_servers",
		"db.eu":       "db_eu",
		"a b:c,d":     "a_b_c_d",
		"1st":         "_1st",
		"9":           "_9",
		"café":        "caf_",
		"日本":          "__",
		"All":         "All",
	} {
		got, err := export.AnsibleGroup(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, "AnsibleGroup(%q)", in)
	}
	_, err := export.AnsibleGroup("_meta")
	require.ErrorIs(t, err, state.ErrInvalid)
	assert.Equal(t, `export: group "_meta": "_meta" is reserved by Ansible's inventory script protocol: invalid`, err.Error())
}

// A host is listed once per Ansible group, even when several of its groups
// mean "ungrouped".
func TestWriteInventoryList_UngroupedOnce(t *testing.T) {
	_, doc := inventoryList(t, store([]*state.HostState{
		{Name: "a", Group: "all", Groups: []string{"ungrouped"}},
		{Name: "b", Group: "ungrouped", Groups: []string{"web"}},
	}, nil), nil)
	assert.Equal(t, map[string]any{"hosts": []any{"a", "b"}, "vars": map[string]any{}}, doc["ungrouped"])
	assert.Equal(t, map[string]any{"hosts": []any{"b"}, "vars": map[string]any{}}, doc["web"])
}
