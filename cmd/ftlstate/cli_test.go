package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/state"
)

// result is one in-process run of the CLI.
type result struct {
	stdout, stderr string
	code           int
}

// ftl runs the CLI in-process with args.
func ftl(t testing.TB, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return result{out.String(), errb.String(), code}
}

// ok runs the CLI and requires exit status 0.
func ok(t testing.TB, args ...string) result {
	t.Helper()
	r := ftl(t, args...)
	require.Equal(t, 0, r.code, "ftlstate %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
	return r
}

func testdata(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "testdata"}, parts...)...)
}

// seed makes a bbolt store with two hosts and a resource.
func seed(t testing.TB, path string) {
	t.Helper()
	ok(t, "--state", path, "host", "add", "web01", "--address", "192.168.1.10", "--user", "admin", "--group", "webservers", "--var", "http_port=80", "--var", "db_password=hunter2")
	ok(t, "--state", path, "host", "add", "db01", "--address", "192.168.1.20", "--port", "2222", "--group", "databases", "--var", "postgres_version:=15")
	ok(t, "--state", path, "resource", "add", "linode:12345678", "--type", "linode", "--id", "12345678", "--name", "web01",
		"--data", "region=us-east", "--data", `ipv4=["192.168.1.10"]`, "--tag", "environment=production")
}

func TestHosts_AddShowListRemove(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	r := ok(t, "--state", db, "host", "add", "web01", "--address", "192.168.1.10", "--var", "http_port=80", "--var", "tags=[\"a\"]", "--var", "v:=15")
	assert.Empty(t, r.stdout, "messages go to stderr")
	assert.Contains(t, r.stderr, "added host web01")
	r = ok(t, "--state", db, "host", "add", "web01", "--address", "192.168.1.11", "--var", "http_port=8080")
	assert.Contains(t, r.stderr, "updated host web01")
	ok(t, "--state", db, "host", "add", "db01", "--address", "192.168.1.20", "--group", "databases")

	r = ok(t, "--state", db, "hosts")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 3)
	assert.Regexp(t, `^NAME\s+ADDRESS\s+PORT\s+USER\s+GROUP\s+VARS\s+UPDATED$`, lines[0])
	assert.Regexp(t, `^db01\s+192\.168\.1\.20\s+22\s+-\s+databases\s+0\s+\d{4}-`, lines[1])
	assert.Equal(t, strings.Index(lines[0], "ADDRESS"), strings.Index(lines[1], "192."), "columns aligned")

	r = ok(t, "--state", db, "hosts", "-o", "json")
	var hosts []state.HostState
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &hosts))
	require.Len(t, hosts, 2)
	assert.Equal(t, "web01", hosts[1].Name)
	assert.Equal(t, "192.168.1.11", hosts[1].Address)
	assert.Equal(t, map[string]any{"http_port": 8080.0}, hosts[1].Vars, "add replaces the vars")

	r = ok(t, "--state", db, "hosts", "--group", "databases", "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &hosts))
	require.Len(t, hosts, 1)
	assert.Equal(t, "db01", hosts[0].Name)

	r = ok(t, "--state", db, "host", "show", "web01")
	assert.Regexp(t, `(?m)^address\s+192\.168\.1\.11$`, r.stdout)
	assert.Regexp(t, `(?m)^vars\.http_port\s+8080$`, r.stdout)
	r = ok(t, "--state", db, "host", "show", "web01", "-o", "json")
	var h state.HostState
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &h))
	assert.Equal(t, "web01", h.Name)

	r = ok(t, "--state", db, "host", "rm", "db01")
	backup := newestBackup(t, db)
	assert.Contains(t, r.stderr, "backup of the previous state: "+backup)
	r = ok(t, "--state", backup, "hosts", "-o", "json")
	assert.Contains(t, r.stdout, "db01", "the backup holds the store as it was")
	r = ok(t, "--state", db, "hosts", "-o", "json")
	assert.NotContains(t, r.stdout, "db01")

	r = ftl(t, "--state", db, "host", "rm", "db01")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `no host "db01"; nothing removed`)
	r = ftl(t, "--state", db, "host", "show", "nope")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "ftlstate: "+db+": no host \"nope\"\n", r.stderr)
}

func TestResources_AddListShowRemove(t *testing.T) {
	for _, name := range []string{"state.db", "state.json"} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			seed(t, p)
			ok(t, "--state", p, "resource", "add", "aws:i-1", "--type", "ec2_instance", "--id", "i-1")
			r := ok(t, "--state", p, "resources")
			assert.Regexp(t, `(?m)^KEY\s+TYPE\s+ID\s+NAME\s+UPDATED$`, r.stdout)
			assert.Regexp(t, `(?m)^aws:i-1\s+ec2_instance\s+i-1\s+-\s+`, r.stdout)
			r = ok(t, "--state", p, "resources", "--type", "linode", "-o", "json")
			var list []map[string]any
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
			require.Len(t, list, 1)
			assert.Equal(t, "linode:12345678", list[0]["key"])
			assert.Equal(t, []any{"192.168.1.10"}, list[0]["data"].(map[string]any)["ipv4"])
			r = ok(t, "--state", p, "resources", "--type", "none", "-o", "json")
			assert.Equal(t, "[]\n", r.stdout, "an empty listing is [] for scripts")
			r = ok(t, "--state", p, "resource", "show", "linode:12345678")
			assert.Regexp(t, `(?m)^tags\.environment\s+production$`, r.stdout)
			assert.Regexp(t, `(?m)^data\.ipv4\s+\["192\.168\.1\.10"\]$`, r.stdout)
			ok(t, "--state", p, "resource", "rm", "aws:i-1", "--no-backup")
			backups, err := listBackups(p)
			require.NoError(t, err)
			assert.Empty(t, backups, "--no-backup")
			r = ftl(t, "--state", p, "resource", "show", "aws:i-1")
			assert.Equal(t, 1, r.code)
		})
	}
}

func TestExportImportDiff(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	seed(t, db)
	exported := filepath.Join(dir, "export.json")
	r := ok(t, "--state", db, "export", "--file", exported)
	assert.Contains(t, r.stderr, "not redacted")
	fi, err := os.Stat(exported)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm(), "exports hold secrets: 0600")
	stdout := ok(t, "--state", db, "export").stdout
	data, _ := os.ReadFile(exported)
	assert.Equal(t, string(data), stdout, "export to a file and to stdout agree")
	assert.Contains(t, stdout, "hunter2")

	red := ok(t, "--state", db, "export", "--redact").stdout
	assert.NotContains(t, red, "hunter2")
	assert.Contains(t, red, `"db_password": "<redacted>"`)

	// Import into a JSON store; the two now hold the same content.
	js := filepath.Join(dir, "copy.json")
	r = ok(t, "--state", js, "import", exported)
	assert.Contains(t, r.stderr, "imported "+exported)
	r = ok(t, "diff", db, js)
	assert.Empty(t, r.stdout, "no differences")
	ok(t, "diff", db, js, "--exit-code")

	// A change shows field by field, in text and JSON.
	ok(t, "--state", js, "host", "add", "web01", "--address", "192.168.1.99", "--user", "admin", "--group", "webservers", "--var", "http_port=80", "--var", "db_password=hunter2")
	ok(t, "--state", js, "host", "add", "web03", "--address", "10.0.0.3")
	r = ok(t, "diff", db, js)
	assert.Contains(t, r.stdout, `~ hosts.web01.address: "192.168.1.10" -> "192.168.1.99"`)
	assert.Contains(t, r.stdout, "+ hosts.web03")
	r = ftl(t, "diff", db, js, "--exit-code")
	assert.Equal(t, 1, r.code, "--exit-code: 1 when different")
	r = ok(t, "diff", db, js, "-o", "json")
	var parsed any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &parsed), r.stdout)

	// A redacted export is refused by import unless forced.
	redFile := filepath.Join(dir, "red.json")
	require.NoError(t, os.WriteFile(redFile, []byte(red), 0o600))
	fresh := filepath.Join(dir, "fresh.db")
	r = ftl(t, "--state", fresh, "import", redFile)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "redacted export")
	// An older copy is refused (serial), then forced; the refusal leaves
	// the previous backup alone.
	ok(t, "--state", db, "host", "add", "new", "--address", "a")
	ok(t, "--state", db, "host", "rm", "new")
	backupsBefore := hashBackups(t, db)
	ok(t, "--state", db, "host", "add", "new", "--address", "a")
	r = ftl(t, "--state", db, "import", exported)
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "ftlstate: "+db+": import of "+exported+" refused: the document is older than the store (serial 3 < 6); use --force to import anyway\n", r.stderr)
	assert.Equal(t, backupsBefore, hashBackups(t, db), "a refused import keeps no backup")
	ok(t, "--state", db, "import", exported, "--force")
	r = ok(t, "--state", db, "hosts", "-o", "json")
	assert.NotContains(t, r.stdout, `"new"`)
}

func TestImport_DocumentedExample(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	ok(t, "--state", db, "import", testdata("state.json"))
	r := ok(t, "--state", db, "host", "show", "web01", "-o", "json")
	assert.Contains(t, r.stdout, `"http_port": 80`)
	r = ok(t, "--state", db, "resources", "--type", "linode")
	assert.Contains(t, r.stdout, "linode:12345678")
}

func TestInventory(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	seed(t, db)
	ok(t, "--state", db, "host", "add", "lonely", "--address", "10.0.0.9")
	r := ok(t, "--state", db, "inventory", "--list")
	var inv map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &inv))
	assert.Equal(t, []any{"web01"}, inv["webservers"].(map[string]any)["hosts"])
	assert.Equal(t, []any{"lonely"}, inv["ungrouped"].(map[string]any)["hosts"])
	hv := inv["_meta"].(map[string]any)["hostvars"].(map[string]any)["db01"].(map[string]any)
	assert.Equal(t, "192.168.1.20", hv["ansible_host"])
	assert.Equal(t, 2222.0, hv["ansible_port"])
	assert.Equal(t, "15", hv["postgres_version"])
	r = ok(t, "--state", db, "inventory", "--host", "web01")
	assert.Contains(t, r.stdout, `"ansible_user": "admin"`)
	r = ok(t, "--state", db, "inventory", "--host", "web01", "--redact")
	assert.NotContains(t, r.stdout, "hunter2")
	assert.Equal(t, 2, ftl(t, "--state", db, "inventory").code, "needs --list or --host")
	assert.Equal(t, 2, ftl(t, "--state", db, "inventory", "--list", "--host", "x").code)
	assert.Equal(t, 1, ftl(t, "--state", db, "inventory", "--host", "nope").code)
}

func TestCheckAndCompact(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	seed(t, db)
	for i := range 300 {
		ok(t, "--state", db, "host", "add", fmt.Sprintf("bulk%03d", i), "--address", "a", "--var", "pad="+strings.Repeat("x", 2000))
	}
	for i := range 300 {
		ok(t, "--state", db, "host", "rm", fmt.Sprintf("bulk%03d", i), "--no-backup")
	}
	r := ok(t, "--state", db, "check")
	assert.Contains(t, r.stdout, "ok: "+db+": 2 hosts, 1 resources")
	r = ok(t, "--state", db, "check", "-o", "json")
	var rep checkReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	assert.True(t, rep.OK)

	before, _ := os.Stat(db)
	r = ok(t, "--state", db, "compact")
	after, _ := os.Stat(db)
	assert.Less(t, after.Size(), before.Size(), "compaction returns freed pages")
	assert.Contains(t, r.stdout, "compacted "+db)
	bfi, err := os.Stat(newestBackup(t, db))
	require.NoError(t, err)
	assert.Equal(t, before.Size(), bfi.Size(), "the original is the backup")
	ok(t, "--state", db, "check")
	r = ok(t, "--state", db, "hosts", "-o", "json")
	assert.Contains(t, r.stdout, "web01")
	r = ok(t, "--state", newestBackup(t, db), "check")
	assert.Contains(t, r.stdout, "ok:")
}

func TestCompletion(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	seed(t, db)
	r := ok(t, "completion", "bash")
	assert.Contains(t, r.stdout, "__start_ftlstate")
	r = ok(t, "--state", db, "__complete", "host", "show", "")
	assert.Contains(t, r.stdout, "web01\n")
	assert.Contains(t, r.stdout, "db01\n")
}

// newestBackup returns the newest backup of the store at path.
func newestBackup(t testing.TB, path string) string {
	t.Helper()
	list, err := listBackups(path)
	require.NoError(t, err)
	require.NotEmpty(t, list, "backups of %s", path)
	return list[len(list)-1].Path
}

// hashBackups returns the sha256 of every backup of the store at path.
func hashBackups(t testing.TB, path string) map[string][32]byte {
	t.Helper()
	list, err := listBackups(path)
	require.NoError(t, err)
	out := map[string][32]byte{}
	for _, b := range list {
		data, err := os.ReadFile(b.Path)
		require.NoError(t, err)
		out[b.Path] = sha256.Sum256(data)
	}
	return out
}

// hashDir returns the sha256 of every file under dir.
func hashDir(t testing.TB, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil {
			out[p] = sha256.Sum256(b)
		}
		return nil
	})
	return out
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	js := filepath.Join(dir, "state.json")
	seed(t, db)
	seed(t, js)
	corruptDB := filepath.Join(dir, "corrupt.db")
	require.NoError(t, os.WriteFile(corruptDB, bytes.Repeat([]byte("not a bbolt file "), 512), 0o600))
	corruptJSON := filepath.Join(dir, "corrupt.json")
	require.NoError(t, os.WriteFile(corruptJSON, []byte(`{"hosts": {"web01": {"name": "web01", "port": "22"}}}`), 0o600))
	emptyJSON := filepath.Join(dir, "empty.json")
	require.NoError(t, os.WriteFile(emptyJSON, nil, 0o600))
	notState := filepath.Join(dir, "notstate.json")
	require.NoError(t, os.WriteFile(notState, []byte(`[1, 2, 3]`), 0o600))
	missing := filepath.Join(dir, "missing.db")
	aDir := filepath.Join(dir, "adir.db")
	require.NoError(t, os.Mkdir(aDir, 0o700))

	// A store locked by another holder (this process, through another
	// open file: the kernel lock conflicts all the same).
	locked := filepath.Join(dir, "locked.db")
	seed(t, locked)
	holder, err := boltbackend.Open(locked, nil)
	require.NoError(t, err)
	defer holder.Close()

	cases := []struct {
		name string
		args []string
		code int
		msg  string // a fragment of the one-line error
	}{
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"unknown flag", []string{"hosts", "--frob"}, 2, "unknown flag"},
		{"extra argument", []string{"--state", db, "check", "extra"}, 2, "takes no arguments"},
		{"missing argument", []string{"--state", db, "host", "show"}, 2, "needs NAME"},
		{"too many arguments", []string{"--state", db, "host", "show", "a", "b"}, 2, "needs NAME"},
		{"missing required flag", []string{"--state", db, "host", "add", "x"}, 2, "address"},
		{"bad port", []string{"--state", db, "host", "add", "x", "--address", "a", "--port", "70000"}, 2, "port: must be 0..65535"},
		{"port not a number", []string{"--state", db, "host", "add", "x", "--address", "a", "--port", "ssh"}, 2, "invalid argument"},
		{"malformed var", []string{"--state", db, "host", "add", "x", "--address", "a", "--var", "novalue"}, 2, "expected key=value"},
		{"empty var key", []string{"--state", db, "host", "add", "x", "--address", "a", "--var", "=1"}, 2, "empty key"},
		{"control char in name", []string{"--state", db, "host", "add", "a\x01b", "--address", "a"}, 2, "control character"},
		{"bad output format", []string{"--state", db, "hosts", "-o", "xml"}, 2, "must be table, wide, json, yaml or name"},
		{"bad lock timeout", []string{"--state", db, "--lock-timeout", "soon", "hosts"}, 2, "invalid argument"},
		{"missing store", []string{"--state", missing, "hosts"}, 1, missing + ": no such store"},
		{"missing store export", []string{"--state", missing, "export"}, 1, "no such store"},
		{"corrupt bbolt", []string{"--state", corruptDB, "hosts"}, 1, corruptDB},
		{"corrupt bbolt write", []string{"--state", corruptDB, "host", "add", "x", "--address", "a"}, 1, corruptDB},
		{"corrupt bbolt check", []string{"--state", corruptDB, "check"}, 1, corruptDB},
		{"corrupt json", []string{"--state", corruptJSON, "hosts"}, 1, "hosts.web01.port"},
		{"corrupt json write", []string{"--state", corruptJSON, "host", "add", "x", "--address", "a"}, 1, corruptJSON},
		{"empty json", []string{"--state", emptyJSON, "resources"}, 1, emptyJSON},
		{"store is a directory", []string{"--state", aDir, "hosts"}, 1, aDir},
		{"locked store write", []string{"--state", locked, "host", "add", "x", "--address", "a"}, 1, "locked by pid"},
		{"locked store read", []string{"--state", locked, "hosts"}, 1, "locked"},
		{"import not state", []string{"--state", db, "import", notState}, 1, notState},
		{"import corrupt", []string{"--state", db, "import", corruptJSON}, 1, "hosts.web01.port"},
		{"import missing file", []string{"--state", db, "import", filepath.Join(dir, "nope.json")}, 1, "nope.json"},
		{"import a directory", []string{"--state", db, "import", aDir}, 1, aDir + ": a directory, not a store"},
		{"diff missing", []string{"diff", db, missing}, 1, "no such store"},
		{"diff corrupt", []string{"diff", corruptDB, db}, 1, corruptDB},
		{"rm missing host", []string{"--state", db, "host", "rm", "nope"}, 1, "nothing removed"},
		{"export to missing dir", []string{"--state", db, "export", "--file", filepath.Join(dir, "no", "such", "dir.json")}, 1, "dir.json"},
		{"compact corrupt", []string{"--state", corruptDB, "compact"}, 1, corruptDB},
		{"demo bad size", []string{"demo", "--hosts", "0"}, 2, "--hosts"},
	}
	before := hashDir(t, dir)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ftl(t, tc.args...)
			assert.Equal(t, tc.code, r.code, "exit status\nstderr: %s", r.stderr)
			first, _, _ := strings.Cut(r.stderr, "\n")
			assert.True(t, strings.HasPrefix(first, "ftlstate: "), "one line starting ftlstate: %q", r.stderr)
			assert.Contains(t, first, tc.msg)
			assert.NotContains(t, r.stderr, "goroutine ", "no stack trace")
			assert.NotEqual(t, "ftlstate: EOF", first)
			lines := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1
			if tc.code == 2 {
				assert.LessOrEqual(t, lines, 2, "usage errors: the error and a pointer to --help")
			} else {
				assert.Equal(t, 1, lines, "one line: %q", r.stderr)
			}
			assert.Empty(t, r.stdout, "no data on stdout")
		})
	}
	after := hashDir(t, dir)
	for p, h := range before {
		if strings.HasSuffix(p, ".lock") {
			continue // lock-info records of stores opened read-write
		}
		assert.Equal(t, h, after[p], "%s changed", p)
	}
	for p := range after {
		if _, ok := before[p]; !ok && !strings.HasSuffix(p, ".lock") {
			t.Errorf("%s created by a failing command", p)
		}
	}
}
