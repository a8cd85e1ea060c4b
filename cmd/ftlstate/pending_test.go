package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/state"
)

// begin records pending operations in the store at p, as a run that died
// right after calling the cloud leaves them, and returns them.
func begin(t testing.TB, p string, resources ...string) []*state.Operation {
	t.Helper()
	var b state.Backend
	var err error
	if kindOf(p) == kindJSON {
		b, err = filebackend.Open(p, nil)
	} else {
		b, err = boltbackend.Open(p, nil)
	}
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)
	defer st.Close()
	var ops []*state.Operation
	for _, r := range resources {
		op, err := st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: r, Host: strings.TrimPrefix(r, "linode:"),
			Data: map[string]any{"client_token": "tok-" + r}})
		require.NoError(t, err)
		ops = append(ops, op)
	}
	return ops
}

func TestPending_ListAndAbandon(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	seed(t, db)
	ops := begin(t, db, "linode:web02", "linode:web03")

	r := ok(t, "--state", db, "pending")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 3, r.stdout)
	assert.Regexp(t, `^AGE\s+ID\s+ACTION\s+RESOURCE\s+HOST\s+HOLDER$`, lines[0])
	assert.Regexp(t, `^\d+s\s+`+ops[0].ID+`\s+create\s+linode:web02\s+web02\s+pid \d+ on host `, lines[1], "oldest first")
	assert.Contains(t, lines[2], ops[1].ID)

	r = ok(t, "--state", db, "pending", "-o", "json", "--show-secrets")
	var got []*state.Operation
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	assert.Equal(t, ops, got, "the operations as stored, in the issue's JSON form")
	assert.Contains(t, r.stdout, `"started_at": `)
	assert.Contains(t, r.stdout, `"client_token": "tok-linode:web02"`)
	r = ok(t, "--state", db, "pending", "-o", "json")
	assert.Contains(t, r.stdout, `"client_token": "<redacted>"`, "tokens are redacted like other secrets")
	r = ok(t, "--state", db, "pending", "-o", "name")
	assert.Equal(t, ops[0].ID+"\n"+ops[1].ID+"\n", r.stdout)

	// Unknown IDs: nothing removed, no backup.
	r = ftl(t, "--state", db, "pending", "abandon", ops[0].ID, "nope")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `no pending operation "nope"; nothing removed`)
	backups, _ := filepath.Glob(db + ".*backup")
	assert.Empty(t, backups)
	assert.Len(t, mustPending(t, db), 2)

	r = ok(t, "--state", db, "pending", "abandon", ops[0].ID, "--dry-run")
	assert.Equal(t, "- operations."+ops[0].ID+"\n", r.stdout)
	assert.Len(t, mustPending(t, db), 2, "a dry run writes nothing")

	r = ok(t, "--state", db, "pending", "abandon", ops[0].ID)
	assert.Contains(t, r.stderr, "backup of the previous state: ")
	assert.Contains(t, r.stderr, fmt.Sprintf("abandoned operation %s (create linode:web02 for host web02) in %s", ops[0].ID, db))
	left := mustPending(t, db)
	require.Len(t, left, 1)
	assert.Equal(t, ops[1].ID, left[0].ID)
	backups, _ = filepath.Glob(db + ".*backup")
	require.Len(t, backups, 1)
	assert.Len(t, mustPending(t, backups[0]), 2, "the backup holds the store as it was")

	// Usage errors.
	assert.Equal(t, 2, ftl(t, "--state", db, "pending", "abandon").code)
	assert.Equal(t, 2, ftl(t, "--state", db, "pending", "extra").code)
	assert.Equal(t, 2, ftl(t, "--state", db, "pending", "-o", "wide").code)

	// Completion offers the pending IDs.
	r = ok(t, "--state", db, "__complete", "pending", "abandon", "")
	assert.Contains(t, r.stdout, ops[1].ID+"\n")
}

func mustPending(t testing.TB, p string) []*state.Operation {
	t.Helper()
	r := ok(t, "--state", p, "pending", "-o", "json")
	var ops []*state.Operation
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ops))
	return ops
}

// With nothing holding the store, every pending operation needs attention:
// the process that began it is gone.
func TestCheck_PendingOperationsNeedAttention(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	seed(t, db)
	ops := begin(t, db, "linode:web02")

	r := ftl(t, "--state", db, "check")
	assert.Equal(t, 1, r.code, "pending operations needing attention are findings")
	assert.Contains(t, r.stdout, fmt.Sprintf("attention: %s: pending operation %s (create linode:web02 for host web02) begun ", db, ops[0].ID))
	assert.Contains(t, r.stdout, "nothing holds the store")
	assert.Contains(t, r.stdout, "ftlstate pending abandon "+ops[0].ID)
	assert.Contains(t, r.stdout, db+": sound; 1 pending operation(s) need attention")
	r = ftl(t, "--state", db, "check", "-o", "json")
	assert.Equal(t, 1, r.code)
	var rep checkReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	assert.False(t, rep.OK)
	assert.Empty(t, rep.Problems, "the store itself is sound")
	assert.Equal(t, 1, rep.Attention)
	require.Len(t, rep.Pending, 1)
	assert.True(t, rep.Pending[0].Attention)
	assert.Equal(t, ops[0].ID, rep.Pending[0].ID)

	ok(t, "--state", db, "pending", "abandon", ops[0].ID, "--no-backup")
	r = ok(t, "--state", db, "check")
	assert.Contains(t, r.stdout, "ok: "+db)
}

// A pending operation of the process holding the store is in flight; one
// begun before that process took the lock needs attention.
func TestBinary_CheckTellsInFlightFromLeftOver(t *testing.T) {
	js := filepath.Join(t.TempDir(), "state.json")
	seed(t, js)
	old := begin(t, js, "linode:web02")[0]
	time.Sleep(1100 * time.Millisecond) // lock info has whole seconds
	holder := startHolder(t, js, "FTLSTATE_TEST_HOLD_BEGIN=linode:web03")

	r := bin(t, nil, "--state", js, "check", "-o", "json")
	assert.Equal(t, 1, r.code, r.stdout+r.stderr)
	var rep checkReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.NotNil(t, rep.Holder, "a JSON store can be read while it is held")
	assert.Equal(t, holder.Process.Pid, rep.Holder.PID)
	require.Len(t, rep.Pending, 2)
	assert.Equal(t, old.ID, rep.Pending[0].ID)
	assert.True(t, rep.Pending[0].Attention, "begun before the holder took the lock")
	assert.Equal(t, "linode:web03", rep.Pending[1].Resource)
	assert.False(t, rep.Pending[1].Attention, "the holder's own operation is in flight")
	assert.Equal(t, 1, rep.Attention)
	r = bin(t, nil, "--state", js, "check")
	assert.Contains(t, r.stdout, fmt.Sprintf("before the store's current lock holder (pid %d", holder.Process.Pid))
	assert.Contains(t, r.stdout, fmt.Sprintf("1 pending operation(s) in flight in pid %d", holder.Process.Pid))

	// Killed, the holder's operation is left over too.
	require.NoError(t, holder.Process.Signal(syscall.SIGKILL))
	holder.Wait()
	r = bin(t, nil, "--state", js, "check", "-o", "json")
	var after checkReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &after))
	assert.Nil(t, after.Holder)
	assert.Equal(t, 2, after.Attention)
}

func TestPending_DiffShowsThemInventoryIgnoresThem(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	seed(t, db)
	before := filepath.Join(dir, "before.json")
	ok(t, "--state", db, "export", "-o", before)
	op := begin(t, db, "linode:web02")[0]

	r := ok(t, "diff", before, db)
	assert.Equal(t, "+ operations."+op.ID+"\n", r.stdout)
	r = ok(t, "diff", before, db, "-o", "json")
	assert.Contains(t, r.stdout, `"kind": "operation"`)

	after := filepath.Join(dir, "after.json")
	ok(t, "--state", db, "export", "-o", after)
	data, err := os.ReadFile(after)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"operations": {`)
	beforeData, err := os.ReadFile(before)
	require.NoError(t, err)
	assert.NotContains(t, string(beforeData), "operations", "omitted when there are none")

	r = ok(t, "--state", db, "inventory", "--list")
	assert.NotContains(t, r.stdout, "web02", "a host being created is not in the inventory")
	assert.Contains(t, r.stdout, "web01")

	// Imported into a new store, the operation is still pending.
	fresh := filepath.Join(dir, "fresh.db")
	ok(t, "--state", fresh, "import", after)
	got := mustPending(t, fresh)
	require.Len(t, got, 1)
	assert.Equal(t, op.ID, got[0].ID)
}
