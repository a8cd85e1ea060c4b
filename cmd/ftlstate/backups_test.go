package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBackups_KeepGenerations: every destructive command keeps a backup of
// its own, the newest --keep-backups are kept, and a command that changes
// nothing keeps none.
func TestBackups_KeepGenerations(t *testing.T) {
	for _, name := range stores {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			seed(t, p)
			for i := range 4 {
				ok(t, "--state", p, "host", "add", fmt.Sprintf("tmp%d", i), "--address", "a")
			}
			serials := []uint64{}
			for i := range 3 {
				serials = append(serials, serialOf(t, p))
				ok(t, "--state", p, "host", "rm", fmt.Sprintf("tmp%d", i))
			}
			list, err := listBackups(p)
			require.NoError(t, err)
			require.Len(t, list, 3, "three rm, three backups")
			for i, b := range list {
				assert.Equal(t, serials[i], serialOf(t, b.Path), "backup %d holds the state before rm %d", i, i)
			}

			r := ok(t, "--state", p, "backups")
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			require.Len(t, lines, 4)
			assert.Regexp(t, `^BACKUP\s+TIME\s+SIZE\s+SERIAL\s+HOSTS\s+RESOURCES\s+NOTE$`, lines[0])
			assert.Regexp(t, `^`+regexpQuote(list[0].Path)+`\s+\d{4}-\d\d-\d\dT\S+Z\s+\S+( \S+)?\s+`+fmt.Sprint(serials[0])+`\s+6\s+1\s+-$`, lines[1])
			r = ok(t, "--state", p, "backups", "-o", "json")
			var infos []map[string]any
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &infos))
			require.Len(t, infos, 3)
			assert.Equal(t, float64(serials[2]), infos[2]["serial"])
			assert.Equal(t, list[2].Path+"\n", lastLine(ok(t, "--state", p, "backups", "-o", "name").stdout))

			// --keep-backups 2 prunes the oldest.
			r = ok(t, "--state", p, "--keep-backups", "2", "host", "rm", "tmp3")
			assert.Contains(t, r.stderr, "removed old backup "+list[0].Path)
			now, err := listBackups(p)
			require.NoError(t, err)
			require.Len(t, now, 2)
			assert.Equal(t, list[2].Path, now[0].Path)

			// Nothing to change: no backup.
			exported := filepath.Join(t.TempDir(), "e.json")
			ok(t, "--state", p, "export", "--file", exported)
			r = ok(t, "--state", p, "import", exported)
			assert.Contains(t, r.stderr, "already holds the content of "+exported+"; nothing to import")
			ftl(t, "--state", p, "host", "rm", "nope")
			after, err := listBackups(p)
			require.NoError(t, err)
			assert.Equal(t, now, after, "no backup when nothing changes")
		})
	}
}

func regexpQuote(s string) string {
	r := strings.NewReplacer(`.`, `\.`, `+`, `\+`, `(`, `\(`, `)`, `\)`, `[`, `\[`)
	return r.Replace(s)
}

func lastLine(s string) string {
	lines := strings.SplitAfter(strings.TrimSuffix(s, "\n"), "\n")
	return lines[len(lines)-1] + "\n"
}

func TestBackupNames(t *testing.T) {
	assert.Equal(t, "s.db.1700000000.backup", backupName("s.db", 1700000000, 0))
	assert.Equal(t, "s.db.1700000000.2.backup", backupName("s.db", 1700000000, 2))
	for name, want := range map[string][2]int64{
		"s.db.1700000000.backup":   {1700000000, 0},
		"s.db.1700000000.2.backup": {1700000000, 2},
	} {
		u, s, ok := parseBackupName("s.db", name)
		assert.True(t, ok, name)
		assert.Equal(t, want, [2]int64{u, s}, name)
	}
	for _, name := range []string{"s.db.backup", "s.db.x.backup", "s.db.1.0.backup", "s.db.1..backup", "s.db.17.backup.tmp-1", "t.db.1.backup"} {
		_, _, ok := parseBackupName("s.db", name)
		assert.False(t, ok, name)
	}
}

// TestRestore: restore puts the newest backup back (or a given one),
// keeping a backup of what it replaces, although the backup is older.
func TestRestore(t *testing.T) {
	for _, name := range stores {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, name)
			seed(t, p)
			ok(t, "--state", p, "host", "rm", "db01")
			ok(t, "--state", p, "host", "rm", "web01")
			assert.Equal(t, "", ok(t, "--state", p, "hosts", "-o", "name").stdout)
			list, err := listBackups(p)
			require.NoError(t, err)
			require.Len(t, list, 2)

			r := ok(t, "--state", p, "restore")
			assert.Contains(t, r.stderr, "restored "+p+" from "+list[1].Path)
			assert.Equal(t, "web01\n", ok(t, "--state", p, "hosts", "-o", "name").stdout, "the newest backup: before the second rm")
			after, err := listBackups(p)
			require.NoError(t, err)
			require.Len(t, after, 3, "restore keeps a backup of what it replaced")
			assert.Equal(t, "", ok(t, "--state", after[2].Path, "hosts", "-o", "name").stdout)

			r = ok(t, "--state", p, "restore", list[0].Path)
			assert.Equal(t, "db01\nweb01\n", ok(t, "--state", p, "hosts", "-o", "name").stdout)
			assert.Greater(t, serialOf(t, p), serialOf(t, list[0].Path), "a restore is a new change")
			r = ok(t, "--state", p, "restore", list[0].Path)
			assert.Contains(t, r.stderr, "nothing to restore")

			// A file from another store is refused, unless --force.
			other := filepath.Join(dir, "other.db")
			ok(t, "--state", other, "host", "add", "x", "--address", "a")
			r = ftl(t, "--state", p, "restore", other)
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, "restore of "+other+" refused: it comes from another store")
			ok(t, "--state", p, "restore", other, "--force")
			assert.Equal(t, "x\n", ok(t, "--state", p, "hosts", "-o", "name").stdout)

			empty := filepath.Join(t.TempDir(), name)
			r = ftl(t, "--state", empty, "restore")
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, "no backups")
		})
	}
}

// TestKind_ByContent: a store is read by what it holds, whatever its name,
// so backups and copies work wherever a store or a document is accepted.
func TestKind_ByContent(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	js := filepath.Join(dir, "state.json")
	seed(t, db)
	seed(t, js)
	ok(t, "--state", db, "host", "rm", "db01")
	ok(t, "--state", js, "host", "rm", "db01")
	dbBackup, jsBackup := newestBackup(t, db), newestBackup(t, js)

	// import of a bbolt backup (it used to fail: "invalid control character U+0000").
	fresh := filepath.Join(dir, "fresh.db")
	r := ok(t, "--state", fresh, "import", dbBackup)
	assert.Contains(t, r.stderr, "imported "+dbBackup)
	assert.Equal(t, "db01\nweb01\n", ok(t, "--state", fresh, "hosts", "-o", "name").stdout)
	// diff of a JSON backup (it used to be opened as bbolt for its suffix).
	r = ok(t, "diff", jsBackup, js)
	assert.Equal(t, "- hosts.db01\n", r.stdout)
	r = ok(t, "diff", dbBackup, jsBackup)
	assert.Empty(t, r.stdout)

	// A JSON document named .db and a bbolt store named .json.
	copyFile(t, js, filepath.Join(dir, "looks-bolt.db"))
	copyFile(t, db, filepath.Join(dir, "looks-json.json"))
	assert.Equal(t, "web01\n", ok(t, "--state", filepath.Join(dir, "looks-bolt.db"), "hosts", "-o", "name").stdout)
	assert.Equal(t, "web01\n", ok(t, "--state", filepath.Join(dir, "looks-json.json"), "hosts", "-o", "name").stdout)
	ok(t, "--state", filepath.Join(dir, "looks-bolt.db"), "host", "add", "w", "--address", "a")
	r = ok(t, "--state", filepath.Join(dir, "looks-json.json"), "check")
	assert.Contains(t, r.stdout, "ok:")

	for head, want := range map[string]storeKind{"  \n{": kindJSON, "\xef\xbb\xbf{": kindJSON, "garbage": kindBolt} {
		assert.Equal(t, want, sniffKind([]byte(head), "x.db"), "%q", head)
	}
	assert.Equal(t, kindJSON, sniffKind(nil, "new.json"), "an empty file: by its name")
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, 0o600))
}

// TestBackups_SameSecond: backups taken within one second get distinct,
// ordered names.
func TestBackups_SameSecond(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.db")
	seed(t, p)
	start := time.Now().Unix()
	for i := range 5 {
		ok(t, "--state", p, "host", "add", fmt.Sprintf("h%d", i), "--address", "a")
		ok(t, "--state", p, "host", "rm", fmt.Sprintf("h%d", i))
	}
	list, err := listBackups(p)
	require.NoError(t, err)
	require.Len(t, list, 5)
	for i := 1; i < len(list); i++ {
		assert.Less(t, serialOf(t, list[i-1].Path), serialOf(t, list[i].Path), "ordered as taken")
	}
	assert.GreaterOrEqual(t, list[0].unix, start)
}
