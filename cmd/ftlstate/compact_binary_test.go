package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
)

func storedHosts(t *testing.T, db string) []string {
	t.Helper()
	r := bin(t, nil, "--state", db, "--lock-timeout", "30s", "hosts", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var hosts []state.HostState
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &hosts))
	var names []string
	for _, h := range hosts {
		names = append(names, h.Name)
	}
	sort.Strings(names)
	return names
}

// TestBinary_CompactWhileWritersWait is the reproduction: writers
// wait for the lock (inside bbolt's, behind a shared lock like `flock -s
// s.db`) while compact takes it first and swaps a new file in. Every
// writer that exits 0 must find its host in the store (they used to
// commit into the old file, which had become s.db.backup).
func TestBinary_CompactWhileWritersWait(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.db")
	r := bin(t, nil, "--state", db, "host", "add", "seed", "--address", "1")
	require.Equal(t, 0, r.code, r.stderr)
	want := []string{"seed"}
	for round := range 4 {
		f, err := os.Open(db)
		require.NoError(t, err)
		require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_SH))
		var writers []*exec.Cmd
		for w := range 4 {
			name := fmt.Sprintf("r%dw%d", round, w)
			cmd := exec.Command(binary, "--state", db, "--lock-timeout", "30s", "host", "add", name, "--address", "1")
			cmd.Stderr = os.Stderr
			require.NoError(t, cmd.Start())
			writers = append(writers, cmd)
			want = append(want, name)
		}
		time.Sleep(300 * time.Millisecond) // the writers are past bbolt's probe, waiting for its lock
		compact := exec.Command(binary, "--state", db, "--lock-timeout", "30s", "compact")
		require.NoError(t, compact.Start())
		time.Sleep(100 * time.Millisecond)
		f.Close() // releases the shared lock: compact or a writer goes first
		for _, cmd := range append(writers, compact) {
			require.NoError(t, cmd.Wait(), "%v", cmd.Args)
		}
		sort.Strings(want)
		require.Equal(t, want, storedHosts(t, db), "round %d: every acknowledged host is in the store", round)
	}
}

// TestBinary_CompactKeepsLinkOwnerAndMode: compact through a symbolic
// link replaces the file it points to and keeps the link; the compacted
// file keeps its owner and mode (compact as root used to turn a nobody
// 0640 store into root's 0600).
func TestBinary_CompactKeepsLinkOwnerAndMode(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "data", "store.db")
	require.NoError(t, os.Mkdir(filepath.Dir(real), 0o755))
	r := bin(t, nil, "--state", real, "host", "add", "web01", "--address", "1")
	require.Equal(t, 0, r.code, r.stderr)
	link := filepath.Join(dir, "s.db")
	require.NoError(t, os.Symlink(real, link))
	root := os.Getuid() == 0
	if root {
		require.NoError(t, os.Chown(real, 65534, 65534))
	}
	require.NoError(t, os.Chmod(real, 0o640))

	r = bin(t, nil, "--state", link, "compact")
	require.Equal(t, 0, r.code, r.stderr)
	fi, err := os.Lstat(link)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSymlink, fi.Mode().Type(), "the link stays a link")
	fi, err = os.Stat(real)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "mode kept")
	if root {
		assert.Equal(t, uint32(65534), fi.Sys().(*syscall.Stat_t).Uid, "owner kept")
		assert.Equal(t, uint32(65534), fi.Sys().(*syscall.Stat_t).Gid, "group kept")
	}
	r = bin(t, nil, "--state", link, "host", "add", "web02", "--address", "2")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, []string{"web01", "web02"}, storedHosts(t, real), "writes through the link reach the store")

	// A leftover of an older version never blocks a compaction.
	require.NoError(t, os.WriteFile(real+".compact", []byte("junk"), 0o600))
	r = bin(t, nil, "--state", link, "compact")
	require.Equal(t, 0, r.code, r.stderr)
}
