package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The CLI-side items of issue 13.

// TestExport_RefusesTheStoreItsLockAndBackups: export --file (and the
// deprecated -o FILE) onto the store itself, another name of it (a hard or
// symbolic link), its lock file or one of its backups is refused and
// changes nothing. (It used to replace the bbolt store with JSON.)
func TestExport_RefusesTheStoreItsLockAndBackups(t *testing.T) {
	for _, name := range stores {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, name)
			seed(t, p)
			ok(t, "--state", p, "host", "rm", "db01")
			// A lock file exists while a writer holds the store; make one.
			lock := p + ".lock"
			if _, err := os.Stat(lock); err != nil {
				require.NoError(t, os.WriteFile(lock, nil, 0o600))
			}
			hard := filepath.Join(dir, "hard-link")
			require.NoError(t, os.Link(p, hard))
			soft := filepath.Join(dir, "soft-link")
			require.NoError(t, os.Symlink(p, soft))
			backup := newestBackup(t, p)
			legacy := legacyBackupPath(p)
			copyFile(t, backup, legacy)
			before := hashDir(t, dir)
			for target, want := range map[string]string{
				p: "the store itself", hard: "the store itself", soft: "the store itself",
				lock: "the store's lock file", backup: "a backup of", legacy: "a backup of",
			} {
				for _, flag := range []string{"--file", "-o"} {
					r := ftl(t, "--state", p, "export", flag, target)
					assert.Equal(t, 1, r.code, "%s %s", flag, target)
					assert.Contains(t, r.stderr, want, "%s %s", flag, target)
					assert.Equal(t, before, hashDir(t, dir), "export %s %s changed a file", flag, target)
				}
			}
		})
	}
}

// TestExport_ToDeviceOrPipe: a character device or a named pipe is written
// to, never replaced by a regular file (it used to replace /dev/null with
// a 0666 file holding the secrets). A directory is refused.
func TestExport_ToDeviceOrPipe(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	seed(t, p)

	// A character device: its own, so the test never touches /dev/null.
	dev := filepath.Join(dir, "null")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, int(devNullRdev(t))); err != nil {
		t.Logf("mknod: %v; using /dev/null", err)
		dev = "/dev/null"
	}
	r := ok(t, "--state", p, "export", "--file", dev)
	assert.Contains(t, r.stderr, "exported 3 records to "+dev)
	fi, err := os.Stat(dev)
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeCharDevice, "%s is still a character device", dev)

	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	got := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- err.Error()
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- string(b)
	}()
	ok(t, "--state", p, "export", "--file", fifo)
	assert.Contains(t, <-got, `"web01"`)
	fi, err = os.Lstat(fifo)
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeNamedPipe, "the FIFO is still a FIFO")

	r = ftl(t, "--state", p, "export", "--file", dir)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "a directory; export writes a file")
}

func devNullRdev(t testing.TB) uint64 {
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat("/dev/null", &st))
	return st.Rdev
}

// TestTable_EscapesControlCharacters: terminal escapes stored in fields do
// not reach the terminal raw from table output (they used to: a stored
// value could set the window title or clear the screen).
func TestTable_EscapesControlCharacters(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	esc := "\x1b]0;pwned\x07\x1b[2J"
	ok(t, "--state", p, "host", "add", "web01", "--address", esc, "--user", "u\x1b[31m", "--group", "g\u202eevil", "--var", "k\x1b[1m=v\u009b")
	ok(t, "--state", p, "resource", "add", "r1", "--type", "t", "--id", "i\x1b[2J", "--name", "n\x07", "--tag", "t=\x1b")
	for _, args := range [][]string{
		{"hosts"}, {"hosts", "-o", "wide"}, {"hosts", "-o", "name"}, {"host", "show", "web01"},
		{"resources"}, {"resources", "-o", "wide"}, {"resource", "show", "r1"},
	} {
		r := ok(t, append([]string{"--state", p}, args...)...)
		for _, bad := range []string{"\x1b", "\x07", "\u202e", "\x9b", "\u009b"} {
			assert.NotContains(t, r.stdout, bad, "%v", args)
		}
	}
	r := ok(t, "--state", p, "hosts")
	assert.Contains(t, r.stdout, `\x1b]0;pwned\x07\x1b[2J`)
	assert.Contains(t, r.stdout, `g\u202eevil`)
	r = ok(t, "--state", p, "host", "show", "web01")
	assert.Contains(t, r.stdout, `vars.k\x1b[1m`)
	assert.Equal(t, `a\tb\nc\x00\xff`, cell("a\tb\nc\x00\xff"))
}

// failWriter fails every write, like a full disk.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// TestStdoutWriteFailure_Exit1: a command whose output cannot be written
// fails (it used to exit 0: check >/dev/full).
func TestStdoutWriteFailure_Exit1(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	seed(t, p)
	for _, args := range [][]string{{"check"}, {"hosts"}, {"hosts", "-o", "json"}, {"export"}, {"host", "show", "web01"}, {"version"}, {"inventory", "--list"}, {"backups", "-o", "json"}} {
		var errb strings.Builder
		code := run(append([]string{"--state", p}, args...), failWriter{}, &errb)
		assert.Equal(t, 1, code, "%v", args)
		assert.Contains(t, errb.String(), "no space left on device", "%v", args)
	}
}

func TestBinary_CheckToDevFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	p := filepath.Join(t.TempDir(), "state.db")
	seed(t, p)
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	require.NoError(t, err)
	defer full.Close()
	cmd := exec.Command(binary, "--state", p, "check")
	cmd.Stdout = full
	var errb strings.Builder
	cmd.Stderr = &errb
	err = cmd.Run()
	var ee interface{ ExitCode() int }
	require.True(t, errors.As(err, &ee), "exit status: %v", err)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, errb.String(), "ftlstate: writing the output: ")
}

// TestUsage_LockTimeoutAndEmptyState: a negative --lock-timeout is a usage
// error (it used to wait forever on a JSON store), and --state ” says
// what is wrong (it used to say "create : link ./..new-N").
func TestUsage_LockTimeoutAndEmptyState(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	seed(t, p)
	r := ftl(t, "--state", p, "--lock-timeout", "-1s", "host", "add", "x", "--address", "a")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "--lock-timeout -1s: must not be negative")
	before := hashDir(t, dir)
	for _, args := range [][]string{{"hosts"}, {"host", "add", "x", "--address", "a"}, {"host", "rm", "x"}, {"import", p}, {"export"}, {"check"}, {"compact"}, {"backups"}, {"restore"}, {"salvage", "--file", "-"}} {
		t.Chdir(dir)
		r := ftl(t, append([]string{"--state", ""}, args...)...)
		assert.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "ftlstate: the store's name is empty: give --state PATH", "%v", args)
	}
	assert.Equal(t, before, hashDir(t, dir), "nothing created or changed")
}
