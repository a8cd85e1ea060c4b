package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/state"
)

// crashedWithLog makes a bbolt store whose writer stopped with changes
// only in its write-ahead log (the files copied while it held them: what
// a kill -9 leaves), and returns its path.
func crashedWithLog(t *testing.T, hosts int) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "state.db")
	b, err := boltbackend.Open(src, &boltbackend.Options{NoSocket: true, Log: boltbackend.LogOptions{CheckpointInterval: -1, CheckpointChanges: 1 << 30}})
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)
	for i := range hosts {
		require.NoError(t, st.AddHost(&state.HostState{Name: fmt.Sprintf("h%03d", i), Address: "192.0.2.1"}))
	}
	db := filepath.Join(t.TempDir(), "state.db")
	for _, p := range [][2]string{{src, db}, {boltbackend.LogPath(src), boltbackend.LogPath(db)}} {
		data, err := os.ReadFile(p[0])
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p[1], data, 0o600))
	}
	require.NoError(t, st.Close())
	return db
}

// TestCheck_ReportsTheLog: check on a store whose log holds changes the
// file lacks says so (and what the next writer does with them), counts
// them in, and exits 0; listing commands show them; the first writer
// applies them, and check says nothing of a log then.
func TestCheck_ReportsTheLog(t *testing.T) {
	db := crashedWithLog(t, 12)
	before, _ := os.ReadFile(db)
	r := ok(t, "--state", db, "check")
	assert.Contains(t, r.stdout, "write-ahead log "+boltbackend.LogPath(db)+" holds 11 changes in 11 commits")
	assert.Contains(t, r.stdout, "ok: "+db+": 12 hosts")
	r = ok(t, "--state", db, "check", "-o", "json")
	var rep checkReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.NotNil(t, rep.Log)
	assert.Equal(t, 11, rep.Log.Changes)
	assert.Equal(t, 12, rep.Hosts)
	r = ok(t, "--state", db, "hosts", "-o", "json")
	assert.Contains(t, r.stdout, "h011")
	after, _ := os.ReadFile(db)
	assert.Equal(t, before, after, "reading commands write nothing")

	ok(t, "--state", db, "host", "add", "new", "--address", "192.0.2.2")
	r = ok(t, "--state", db, "check")
	assert.NotContains(t, r.stdout, "write-ahead log")
	assert.Contains(t, r.stdout, "ok: "+db+": 13 hosts")
	fi, err := os.Stat(boltbackend.LogPath(db))
	require.NoError(t, err)
	assert.Zero(t, fi.Size(), "a closed store is its file alone")
}
