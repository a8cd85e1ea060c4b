package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/state"
)

// beginOperation records a pending operation in the store at p.
func beginOperation(t testing.TB, p string) string {
	t.Helper()
	b, err := boltbackend.Open(p, nil)
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)
	op, err := st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: "linode:999", Host: "web09", Data: map[string]any{"token": "t-1"}})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	return op.ID
}

// TestSalvage: every record that can still be read is exported, each one
// skipped is listed, and the store can be rebuilt from the export (one
// corrupt record used to block every command).
func TestSalvage(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	seed(t, p)
	ok(t, "--state", p, "host", "add", "bad", "--address", "a")
	id := beginOperation(t, p)
	corruptHost(t, p, "bad")
	before := hashDir(t, dir)

	out := filepath.Join(dir, "salvaged.json")
	r := ok(t, "--state", p, "salvage", "--file", out)
	assert.Contains(t, r.stderr, `skipped host "bad": `)
	assert.Contains(t, r.stderr, "salvaged 2 hosts, 1 resources and 1 pending operations of "+p+" to "+out+"; skipped 1 unreadable (listed above)")
	after := hashDir(t, dir)
	delete(after, out)
	assert.Equal(t, before, after, "salvage writes nothing but its output")

	var doc struct {
		Hosts      map[string]any `json:"hosts"`
		Resources  map[string]any `json:"resources"`
		Operations map[string]any `json:"operations"`
		Metadata   struct{ Lineage string }
	}
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &doc))
	assert.Len(t, doc.Hosts, 2)
	assert.Contains(t, doc.Hosts, "web01")
	assert.Len(t, doc.Resources, 1)
	assert.Contains(t, doc.Operations, id, "pending operations survive a salvage")
	assert.Contains(t, string(b), "hunter2", "a faithful copy")

	// Rebuild the store in place: import keeps a backup of the damaged one.
	r = ok(t, "--state", p, "import", out)
	assert.Contains(t, r.stderr, "backup of the previous state")
	assert.Equal(t, "db01\nweb01\n", ok(t, "--state", p, "hosts", "-o", "name").stdout)
	r = ftl(t, "--state", p, "check")
	assert.Equal(t, 1, r.code, "sound, but the pending operation nobody is running needs attention")
	assert.Contains(t, r.stdout, p+": sound; 1 pending operation(s) need attention")
	r = ok(t, "--state", p, "export")
	assert.Contains(t, r.stdout, id, "the pending operation is in the rebuilt store")

	// A JSON store with one record of a wrong type.
	js := filepath.Join(dir, "broken.json")
	raw := `{"version": "1.0", "hosts": {"good": {"name": "good", "address": "a", "port": 22, "user": ""}, "bad": {"name": "bad", "port": "22"}}, "resources": {}}`
	require.NoError(t, os.WriteFile(js, []byte(raw), 0o600))
	assert.Equal(t, 1, ftl(t, "--state", js, "hosts").code, "the store does not open")
	r = ok(t, "--state", js, "salvage", "--file", "-")
	assert.Contains(t, r.stdout, `"good"`)
	assert.NotContains(t, r.stdout, `"bad"`)
	assert.Contains(t, r.stderr, `skipped host "bad": `)
	assert.Contains(t, r.stderr, "hosts.bad.port")

	r = ftl(t, "--state", p, "salvage")
	assert.Equal(t, 2, r.code, "--file is required")
	r = ftl(t, "--state", filepath.Join(dir, "none.db"), "salvage", "--file", "-")
	assert.Equal(t, 1, r.code)
	assert.True(t, strings.Contains(r.stderr, "no such store"), r.stderr)
}

// TestImportRestore_KeepPendingOperations: a store's pending operations
// go with it through import and restore.
func TestImportRestore_KeepPendingOperations(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	seed(t, p)
	id := beginOperation(t, p)
	copyTo := filepath.Join(dir, "copy.db")
	ok(t, "--state", copyTo, "import", p)
	assert.Contains(t, ok(t, "--state", copyTo, "export").stdout, id)
	ok(t, "--state", p, "host", "rm", "db01")
	ok(t, "--state", p, "restore")
	assert.Contains(t, ok(t, "--state", p, "export").stdout, id)
	r := ok(t, "--state", copyTo, "import", p)
	assert.Contains(t, r.stderr, "nothing to import", "the same records and operations")
}
