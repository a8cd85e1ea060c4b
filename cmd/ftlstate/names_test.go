package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNames_AnsibleCannotUse: names Ansible cannot address, and groups that
// break its inventory, are refused on every path (they used to be stored
// silently; two groups with one Ansible name made inventory --list fail for
// the whole store); a group Ansible rewrites, and a var the inventory
// overrides, are warned about.
func TestNames_AnsibleCannotUse(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	ok(t, "--state", p, "host", "add", "web01", "--address", "a", "--group", "edge-nodes.eu")
	before := hashDir(t, dir)
	for _, args := range [][]string{
		{"host", "add", "bad name", "--address", "a"},
		{"host", "add", "web/02", "--address", "a"},
		{"host", "add", "a,b", "--address", "a"},
		{"host", "add", "x", "--address", "a", "--group", "web\tservers"},
		{"host", "add", "x", "--address", "a", "--group", "_meta"},
		{"host", "add", "x", "--address", "a", "--group", "edge_nodes_eu"},
		{"host", "add", "x", "--address", "a", "--group", "web", "--group", "edge.nodes.eu"},
		{"host", "set", "web01", "--group", "edge-nodes.eu", "--group", "edge_nodes.eu"},
		{"host", "mv", "web01", "web 01"},
	} {
		r := ftl(t, append([]string{"--state", p}, args...)...)
		assert.Equal(t, 2, r.code, "%q: %s", args, r.stderr)
		assert.Equal(t, before, hashDir(t, dir), "%q changed the store", args)
	}
	r := ftl(t, "--state", p, "host", "add", "x", "--address", "a", "--group", "edge_nodes_eu")
	assert.Contains(t, r.stderr, `groups "edge_nodes_eu" and "edge-nodes.eu" are both "edge_nodes_eu" in the Ansible inventory; use "edge-nodes.eu"`)
	r = ftl(t, "--state", p, "host", "add", "bad name", "--address", "a")
	assert.Contains(t, r.stderr, `host "bad name": name: Ansible cannot address this host: whitespace`)

	// An import of a document with such names is refused too.
	doc := filepath.Join(t.TempDir(), "doc.json")
	require.NoError(t, os.WriteFile(doc, []byte(`{"hosts": {"a": {"name": "a", "group": "eu-west"}, "b": {"name": "b", "group": "eu.west"}}}`), 0o600))
	r = ftl(t, "--state", p, "import", doc, "--force")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `hosts.b.group: groups "eu.west" and "eu-west" are both "eu_west"`)

	// Warnings: a group Ansible rewrites; a var the address overrides.
	r = ok(t, "--state", p, "host", "add", "web02", "--address", "10.0.0.2", "--group", "edge-nodes.eu", "--group", "db.eu", "--var", "ansible_host=10.9.9.9")
	assert.Contains(t, r.stderr, `warning: group "db.eu" is "db_eu" in the Ansible inventory`)
	assert.Contains(t, r.stderr, "warning: host web02: var ansible_host is overridden by the host's address in the Ansible inventory")
	assert.NotContains(t, r.stderr, `group "edge-nodes.eu" is`, "only the groups the host joins")
	ok(t, "--state", p, "inventory", "--list")
}
