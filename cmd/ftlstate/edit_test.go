package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/go-ftl2/ftlstate/state"
)

// stores are the file stores every write test runs on.
var stores = []string{"state.db", "state.json"}

func showHost(t testing.TB, store, name string) state.HostState {
	t.Helper()
	r := ok(t, "--state", store, "host", "show", name, "-o", "json", "--show-secrets")
	var h state.HostState
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &h))
	return h
}

func serialOf(t testing.TB, store string) uint64 {
	t.Helper()
	r := ok(t, "--state", store, "check", "-o", "json")
	var rep checkReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	return rep.Serial
}

func TestHostSet_ChangesOnlyWhatIsGiven(t *testing.T) {
	for _, name := range stores {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			seed(t, p)
			before := showHost(t, p, "web01")

			r := ok(t, "--state", p, "host", "set", "web01", "--address", "192.168.1.11")
			assert.Equal(t, "updated host web01 in "+p+"\n", r.stderr)
			h := showHost(t, p, "web01")
			assert.Equal(t, "192.168.1.11", h.Address)
			assert.Equal(t, "admin", h.User, "user kept")
			assert.Equal(t, "webservers", h.Group, "group kept")
			assert.Equal(t, before.Vars, h.Vars, "vars kept")
			assert.Equal(t, before.CreatedAt, h.CreatedAt, "creation time kept")
			assert.True(t, h.UpdatedAt.After(before.UpdatedAt))

			ok(t, "--state", p, "host", "set", "web01", "--var", "http_port=8080", "--var", "role=web", "--unset-var", "db_password", "--port", "2222", "--user", "")
			h = showHost(t, p, "web01")
			assert.Equal(t, map[string]any{"http_port": 8080.0, "role": "web"}, h.Vars)
			assert.Equal(t, 2222, h.Port)
			assert.Equal(t, "", h.User, "--user '' empties it")
			assert.Equal(t, "webservers", h.Group)

			// Setting what is already there writes nothing.
			serial := serialOf(t, p)
			r = ok(t, "--state", p, "host", "set", "web01", "--group", "webservers")
			assert.Contains(t, r.stderr, "unchanged")
			assert.Equal(t, serial, serialOf(t, p), "no write")

			r = ftl(t, "--state", p, "host", "set", "nope", "--address", "a")
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, `no host "nope"; 'host add nope --address A' adds it`)
			r = ftl(t, "--state", p, "host", "set", "web01")
			assert.Equal(t, 2, r.code, "nothing to change")
			r = ftl(t, "--state", p, "host", "set", "web01", "--var", "a=1", "--unset-var", "a")
			assert.Equal(t, 2, r.code, "set and unset")
			r = ftl(t, "--state", p, "host", "set", "web01", "--port", "70000")
			assert.Equal(t, 2, r.code)
			assert.Contains(t, r.stderr, "port: must be 0..65535")
		})
	}
}

func TestHostAdd_SaysWhatItDrops(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	seed(t, p)
	r := ok(t, "--state", p, "host", "add", "web01", "--address", "192.168.1.11")
	assert.Equal(t, "updated host web01 in "+p+`; dropped user "admin", group "webservers", vars db_password, http_port ('host add' replaces the whole host; 'host set' changes only the fields given)`+"\n", r.stderr)
	h := showHost(t, p, "web01")
	assert.Empty(t, h.Vars)
	r = ok(t, "--state", p, "host", "add", "web01", "--address", "192.168.1.11")
	assert.Equal(t, "host web01 unchanged in "+p+"; nothing written\n", r.stderr)
}

func TestResourceSet_ChangesOnlyWhatIsGiven(t *testing.T) {
	for _, name := range stores {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			seed(t, p)
			ok(t, "--state", p, "resource", "set", "linode:12345678", "--data", "plan=g6", "--unset-data", "region", "--tag", "role=web", "--name", "web01b")
			r := ok(t, "--state", p, "resource", "show", "linode:12345678", "-o", "json")
			var got keyedResource
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
			assert.Equal(t, "linode", got.Type)
			assert.Equal(t, "12345678", got.ID)
			assert.Equal(t, "web01b", got.Name)
			assert.Equal(t, map[string]any{"plan": "g6", "ipv4": []any{"192.168.1.10"}}, got.Data)
			assert.Equal(t, map[string]string{"environment": "production", "role": "web"}, got.Tags)
			ok(t, "--state", p, "resource", "set", "linode:12345678", "--unset-tag", "environment")
			r = ok(t, "--state", p, "resource", "show", "linode:12345678", "-o", "json")
			got = keyedResource{}
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
			assert.Equal(t, map[string]string{"role": "web"}, got.Tags)
			r = ftl(t, "--state", p, "resource", "set", "nope", "--name", "x")
			assert.Equal(t, 1, r.code)
			r = ftl(t, "--state", p, "resource", "set", "linode:12345678", "--tag", "a=1", "--unset-tag", "a")
			assert.Equal(t, 2, r.code)
		})
	}
}

func TestRm_SeveralNamesInOneWrite(t *testing.T) {
	for _, name := range stores {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			seed(t, p)
			ok(t, "--state", p, "host", "add", "web02", "--address", "a")
			serial := serialOf(t, p)
			r := ftl(t, "--state", p, "host", "rm", "web01", "nope", "web02")
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, `no host "nope"; nothing removed`)
			assert.Equal(t, serial, serialOf(t, p))

			r = ok(t, "--state", p, "host", "rm", "web01", "web02", "web01")
			assert.Contains(t, r.stderr, "removed host web01 from "+p)
			assert.Contains(t, r.stderr, "removed host web02 from "+p)
			assert.Equal(t, serial+1, serialOf(t, p), "one write")
			assert.Equal(t, "db01\n", ok(t, "--state", p, "hosts", "-o", "name").stdout)

			ok(t, "--state", p, "resource", "add", "aws:i-1", "--type", "ec2", "--id", "i-1")
			ok(t, "--state", p, "resource", "rm", "aws:i-1", "linode:12345678")
			assert.Equal(t, "", ok(t, "--state", p, "resources", "-o", "name").stdout)
		})
	}
}

func TestMv_RenamesAtomically(t *testing.T) {
	for _, name := range stores {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			seed(t, p)
			before := showHost(t, p, "web01")
			serial := serialOf(t, p)
			r := ok(t, "--state", p, "host", "mv", "web01", "web01.example.com")
			assert.Contains(t, r.stderr, "renamed host web01 to web01.example.com in "+p)
			assert.Contains(t, r.stderr, "backup of the previous state: ")
			assert.Equal(t, serial+1, serialOf(t, p), "one write")
			after := showHost(t, p, "web01.example.com")
			assert.Equal(t, before.CreatedAt, after.CreatedAt)
			assert.Equal(t, before.Vars, after.Vars)
			assert.Equal(t, before.Group, after.Group)
			assert.Equal(t, before.Address, after.Address)
			assert.Equal(t, 1, ftl(t, "--state", p, "host", "show", "web01").code)

			r = ftl(t, "--state", p, "host", "mv", "db01", "web01.example.com")
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, `host "web01.example.com" exists`)
			r = ftl(t, "--state", p, "host", "mv", "nope", "x")
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, `no host "nope"; nothing renamed`)

			ok(t, "--state", p, "resource", "mv", "linode:12345678", "linode:web01", "--no-backup")
			assert.Equal(t, "linode:web01\n", ok(t, "--state", p, "resources", "-o", "name").stdout)
			r = ok(t, "--state", p, "resources", "--type", "linode", "-o", "name")
			assert.Equal(t, "linode:web01\n", r.stdout, "the type index follows the move")
		})
	}
}

// TestDryRun_ChangesNothing runs every write command with --dry-run: the
// diff it would make is printed, and no file changes.
func TestDryRun_ChangesNothing(t *testing.T) {
	for _, name := range stores {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, name)
			seed(t, p)
			ok(t, "--state", p, "host", "rm", "db01") // one backup, to restore
			exported := filepath.Join(t.TempDir(), "export.json")
			ok(t, "--state", p, "export", "--file", exported)
			ok(t, "--state", p, "host", "add", "web02", "--address", "b")
			cases := []struct {
				args []string
				want string // in the printed diff
			}{
				{[]string{"host", "add", "web03", "--address", "c"}, "+ hosts.web03"},
				{[]string{"host", "add", "web01", "--address", "x"}, `~ hosts.web01.address: "192.168.1.10" -> "x"`},
				{[]string{"host", "set", "web01", "--var", "http_port=81"}, "~ hosts.web01.vars.http_port: 80 -> 81"},
				{[]string{"host", "rm", "web01", "web02"}, "- hosts.web02"},
				{[]string{"host", "mv", "web01", "web09"}, "+ hosts.web09"},
				{[]string{"resource", "add", "aws:i-1", "--type", "ec2", "--id", "i-1"}, "+ resources.aws:i-1"},
				{[]string{"resource", "set", "linode:12345678", "--name", "x"}, `~ resources.linode:12345678.name: "web01" -> "x"`},
				{[]string{"resource", "rm", "linode:12345678"}, "- resources.linode:12345678"},
				{[]string{"resource", "mv", "linode:12345678", "linode:x"}, "+ resources.linode:x"},
				{[]string{"import", exported, "--force"}, "- hosts.web02"},
				{[]string{"restore"}, "+ hosts.db01"},
				{[]string{"compact"}, ""},
			}
			before := hashDir(t, dir)
			for _, tc := range cases {
				if tc.args[0] == "compact" && name == "state.json" {
					continue // nothing to compact
				}
				args := append([]string{"--state", p}, tc.args...)
				r := ok(t, append(args, "--dry-run")...)
				assert.Contains(t, r.stdout, tc.want, "%v", tc.args)
				assert.Contains(t, r.stderr, "dry run", "%v", tc.args)
				assert.NotContains(t, r.stdout, "hunter2", "secrets redacted in the plan")
				assert.Equal(t, before, hashDir(t, dir), "%v --dry-run changed a file", tc.args)
			}
		})
	}
}

// TestWriteToMissingStore: a write that changes something says it creates
// the store; one that changes nothing creates nothing, not even a lock
// file (a typo in --state must not leave a store behind).
func TestWriteToMissingStore(t *testing.T) {
	for _, name := range stores {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "prdo-"+name)
			for _, args := range [][]string{
				{"host", "rm", "x"},
				{"resource", "rm", "x"},
				{"host", "set", "x", "--address", "a"},
				{"host", "mv", "x", "y"},
				{"resource", "set", "x", "--name", "n"},
				{"host", "add", "x", "--address", "a", "--dry-run"},
				{"restore", filepath.Join(dir, "none.json")},
			} {
				r := ftl(t, append([]string{"--state", p}, args...)...)
				entries, err := os.ReadDir(dir)
				require.NoError(t, err)
				assert.Empty(t, entries, "%v (exit %d, %s) created files", args, r.code, r.stderr)
			}
			r := ok(t, "--state", p, "host", "add", "x", "--address", "a")
			assert.Equal(t, "created new store "+p+"\nadded host x in "+p+"\n", r.stderr)
			r = ok(t, "--state", p, "host", "add", "y", "--address", "a")
			assert.NotContains(t, r.stderr, "created")
		})
	}
}

// corruptHost overwrites the stored record of host name, in the bbolt
// store at p, with bytes that do not decode.
func corruptHost(t testing.TB, p, name string) {
	t.Helper()
	db, err := bolt.Open(p, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("hosts")).Put([]byte(name), []byte("\xc1\xc1 not a record"))
	}))
	require.NoError(t, db.Close())
}

// TestDamagedRecord_DoesNotBlockOtherCommands: one record that cannot be
// read is named by the commands that read it, and can be removed or
// replaced; the other records stay usable.
func TestDamagedRecord_DoesNotBlockOtherCommands(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	seed(t, p)
	ok(t, "--state", p, "host", "add", "bad", "--address", "a")
	ok(t, "--state", p, "host", "add", "bad2", "--address", "a")
	corruptHost(t, p, "bad")
	corruptHost(t, p, "bad2")

	r := ftl(t, "--state", p, "hosts")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `hosts/"bad"`)
	ok(t, "--state", p, "host", "show", "web01")
	ok(t, "--state", p, "host", "set", "web01", "--address", "10.0.0.1")
	ok(t, "--state", p, "host", "add", "web09", "--address", "a")
	r = ftl(t, "--state", p, "host", "set", "bad", "--address", "b")
	assert.Equal(t, 1, r.code, "a damaged record cannot be edited")
	assert.Contains(t, r.stderr, "'host add' replaces it whole")

	r = ok(t, "--state", p, "host", "rm", "bad")
	assert.Contains(t, r.stderr, "removed host bad")
	r = ok(t, "--state", p, "host", "add", "bad2", "--address", "b")
	assert.Contains(t, r.stderr, "replaced unreadable host bad2")
	r = ok(t, "--state", p, "hosts", "-o", "name")
	assert.Equal(t, "bad2\ndb01\nweb01\nweb09\n", r.stdout)
	ok(t, "--state", p, "check")
}

func TestUnknownCommand_Suggests(t *testing.T) {
	r := ftl(t, "hots")
	assert.Equal(t, 2, r.code)
	assert.Equal(t, "ftlstate: unknown command \"hots\" for \"ftlstate\"; did you mean \"hosts\" or \"host\"?\nRun 'ftlstate --help' for usage.\n", r.stderr)
	r = ftl(t, "host", "sett", "x")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `unknown command "sett" for "ftlstate host"; did you mean "set"?`)
	assert.Contains(t, r.stderr, "Run 'ftlstate host --help' for usage.")
	r = ftl(t, "host", "add", "x")
	assert.Equal(t, 2, r.code)
	assert.Equal(t, "ftlstate: ftlstate host add needs --address\nRun 'ftlstate host add --help' for usage.\n", r.stderr)
	r = ftl(t, "hosts", "--nope")
	assert.True(t, strings.HasSuffix(r.stderr, "Run 'ftlstate hosts --help' for usage.\n"), r.stderr)
}
