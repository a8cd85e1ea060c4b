package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/internal/lockinfo"
)

// TestMessages: one line naming the store and the problem, without Go
// package prefixes or advice that does not apply (issue 17, item 14).
func TestMessages(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	seed(t, p)
	r := ftl(t, "--state", p, "inventory", "--host", "nope")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "ftlstate: "+p+": no host \"nope\"\n", r.stderr, "it was: export: inventory: host \"nope\" not found")

	r = ftl(t, "--state", dir, "hosts")
	assert.Equal(t, "ftlstate: "+dir+": a directory, not a store\n", r.stderr, "it was: not a regular file: corrupt")
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	r = ftl(t, "--state", fifo, "hosts")
	assert.Equal(t, "ftlstate: "+fifo+": a named pipe (FIFO), not a store\n", r.stderr, "and it does not hang")

	missing := filepath.Join(dir, "missing.db")
	r = ftl(t, "diff", missing, p)
	assert.Equal(t, "ftlstate: "+missing+": no such store\n", r.stderr, "no --state hint for a diff argument")
	r = ftl(t, "--state", missing, "hosts")
	assert.Equal(t, "ftlstate: "+missing+": no such store (--state, $FTLSTATE_PATH)\n", r.stderr)

	// A failure whose text happens to read like a usage error is still a
	// failure (usage errors are told by type, not by matching text).
	r = ftl(t, "--state", p, "host", "show", "invalid argument")
	assert.Equal(t, 1, r.code, r.stderr)
	r = ftl(t, "--state", p, "host", "show", "unknown flag")
	assert.Equal(t, 1, r.code, r.stderr)

	// The lock records the command, not just the program.
	ok(t, "--state", p, "import", p)
	assert.Equal(t, "ftlstate import", lockinfo.Self().Command)
	ok(t, "--state", p, "--lock-timeout", "1s", "host", "rm", "db01")
	assert.Equal(t, "ftlstate host rm", lockinfo.Self().Command)
}

// TestProgress_RightUnitsOnATerminal: long commands show progress on a
// terminal (stderr) only, bytes while reading a document, records while
// comparing, a moving spinner while one transaction writes.
func TestProgress_RightUnitsOnATerminal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	seed(t, p)
	doc := filepath.Join(dir, "doc.json")
	ok(t, "--state", p, "export", "--file", doc)
	ok(t, "--state", p, "host", "add", "x", "--address", "a")

	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.isTerminal = true
	require.Equal(t, 0, a.run([]string{"--state", p, "import", doc, "--force"}), errb.String())
	s := errb.String()
	assert.Contains(t, s, "read "+doc)
	assert.Regexp(t, `read [^\r\n]*doc\.json[^\r]*\d+ B`, s, "bytes while reading")
	assert.NotRegexp(t, `read [^\r\n]*doc\.json[^\r]*records`, s, "not records while reading bytes")
	assert.Contains(t, s, "compare")
	assert.Contains(t, s, "write 3 records to "+p)
	assert.Contains(t, s, "imported "+doc)

	// Not on a pipe.
	r := ok(t, "--state", p, "import", doc, "--force")
	assert.NotContains(t, r.stderr, "read "+doc)
	assert.NotContains(t, r.stderr, "\r")
}

// TestCompletion_Prefixes: completion offers only the names that start with
// what was typed, and completes groups and types (not file names).
func TestCompletion_Prefixes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	seed(t, p)
	ok(t, "--state", p, "host", "add", "web02", "--address", "a", "--group", "edge")
	ok(t, "--state", p, "resource", "add", "aws:1", "--type", "ec2", "--id", "1")
	lines := func(args ...string) []string {
		r := ok(t, append([]string{"--state", p, "__complete"}, args...)...)
		l := strings.Split(strings.TrimSpace(r.stdout), "\n")
		return l[:len(l)-1] // the last line is the directive
	}
	directive := func(args ...string) string {
		r := ok(t, append([]string{"--state", p, "__complete"}, args...)...)
		l := strings.Split(strings.TrimSpace(r.stdout), "\n")
		return l[len(l)-1]
	}
	assert.Equal(t, []string{"web01", "web02"}, lines("host", "show", "web"))
	assert.Equal(t, []string{"db01"}, lines("host", "rm", "web01", "d"))
	assert.Equal(t, []string{"databases", "edge", "webservers"}, lines("hosts", "--group", ""))
	assert.Equal(t, []string{"webservers"}, lines("host", "add", "x", "--group", "w"))
	assert.Equal(t, []string{"ec2", "linode"}, lines("resources", "--type", ""))
	assert.Equal(t, []string{"aws:1"}, lines("resource", "show", "a"))
	assert.Equal(t, []string{"db_password", "http_port"}, lines("host", "set", "web01", "--unset-var", ""))
	assert.Equal(t, ":4", directive("hosts", "--group", ""), "no file names")
	assert.Equal(t, ":4", directive("resources", "--type", ""))
}
