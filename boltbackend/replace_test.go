package boltbackend_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
)

// startAdder starts a process that opens the store at path (waiting for
// its lock up to 30 s), adds host and exits; it returns once the process
// is about to open.
func startAdder(t *testing.T, path, host string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"=add "+host, envPath+"="+path, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "opening\n", line)
	return cmd, out
}

func hostsOf(t *testing.T, path string) []string {
	t.Helper()
	b, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: true, Timeout: 10 * time.Second})
	require.NoError(t, err)
	defer b.Close()
	var names []string
	require.NoError(t, b.View(func(s state.Snapshot) error {
		return s.Hosts(func(h *state.HostState) error { names = append(names, h.Name); return nil })
	}))
	return names
}

// TestCompactInPlace_WaitingWritersFindTheNewFile: writers that wait for
// the lock while the store is compacted get the lock on the old file,
// which is the backup by then. They must notice that the path names
// another file (lock, then stat) and write into that one: each of their
// acknowledged hosts must be in the store. (They used to commit into the
// backup and exit 0.)
func TestCompactInPlace_WaitingWritersFindTheNewFile(t *testing.T) {
	path := newStore(t)
	b := openTB(t, path, nil)
	var adders []*exec.Cmd
	var outs []*bufio.Reader
	for i := range 3 {
		cmd, out := startAdder(t, path, fmt.Sprintf("w%d", i))
		adders, outs = append(adders, cmd), append(outs, out)
	}
	time.Sleep(300 * time.Millisecond) // they wait for the lock on the current file
	require.NoError(t, b.CompactInPlace(path+".backup"))
	for i, cmd := range adders {
		rest, _ := io.ReadAll(outs[i])
		require.NoError(t, cmd.Wait(), "adder %d: %s", i, rest)
		assert.Equal(t, fmt.Sprintf("added w%d\n", i), string(rest))
	}
	assert.Equal(t, []string{"w0", "w1", "w2", "web01"}, hostsOf(t, path), "every acknowledged host is in the store")
	assert.Equal(t, []string{"web01"}, hostsOf(t, path+".backup"), "the backup is the store as compacted, untouched")
}

// TestCompactInPlace_ThroughSymlink: compacting a store named through a
// symbolic link replaces the file it points to and keeps the link, so
// that later writes through the link reach the store.
func TestCompactInPlace_ThroughSymlink(t *testing.T) {
	real := newStore(t)
	link := filepath.Join(t.TempDir(), "link.db")
	require.NoError(t, os.Symlink(real, link))
	b := openTB(t, link, nil)
	require.NoError(t, b.CompactInPlace(link+".backup"))

	fi, err := os.Lstat(link)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSymlink, fi.Mode().Type(), "the link is still a link")
	target, err := os.Readlink(link)
	require.NoError(t, err)
	assert.Equal(t, real, target)
	b = openTB(t, link, nil)
	_, err = b.Commit(hostBatch("through-link"))
	require.NoError(t, err)
	require.NoError(t, b.Close())
	assert.Equal(t, []string{"through-link", "web01"}, hostsOf(t, real), "writes through the link reach the store")
}

// TestCompactInPlace_KeepsOwnerAndMode: root compacting a store owned by
// nobody, mode 0640, leaves it owned by nobody, mode 0640 (it used to
// become root's, 0600, locking its owner out).
func TestCompactInPlace_KeepsOwnerAndMode(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (CI runs as root)")
	}
	const nobody = 65534
	path := newStore(t)
	require.NoError(t, os.Chown(path, nobody, nobody))
	require.NoError(t, os.Chmod(path, 0o640))
	b := openTB(t, path, nil)
	require.NoError(t, b.CompactInPlace(""))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	assert.Equal(t, uint32(nobody), st.Uid)
	assert.Equal(t, uint32(nobody), st.Gid)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// TestOpen_RemovesLeftovers: what killed compactions, backups and store
// creations left beside the store (of this version, and the fixed names
// of older ones) is removed by the next writer; nothing of a live
// process, nothing else. And a leftover never blocks a compaction (a
// leftover s.db.compact used to make every later one fail).
func TestOpen_RemovesLeftovers(t *testing.T) {
	path := newStore(t)
	dir := filepath.Dir(path)
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	pid := dead.Process.Pid
	stale := []string{
		fmt.Sprintf("state.db.tmp-%d-1", pid),
		fmt.Sprintf("state.db.backup.tmp-%d-2", pid),
		"state.db.compact",
		"state.db.backup.new",
		".state.db.compact.compact-123",
		".state.db.backup.new.compact-456",
	}
	kept := []string{
		fmt.Sprintf("state.db.tmp-%d-3", os.Getpid()), // a live process's
		"other.db.compact",
		"state.db.compacted",
	}
	for _, name := range append(stale, kept...) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o600))
	}
	ro := openTB(t, path, &boltbackend.Options{ReadOnly: true})
	require.NoError(t, ro.Close())
	assert.Len(t, dirNames(t, dir), 1+len(stale)+len(kept), "readers remove nothing")

	b := openTB(t, path, nil)
	want := append([]string{"state.db", "state.db.lock"}, kept...)
	sort.Strings(want)
	assert.Equal(t, want, dirNames(t, dir))
	require.NoError(t, b.Close())

	require.NoError(t, os.WriteFile(path+".compact", []byte("junk"), 0o600))
	b = openTB(t, path, nil)
	require.NoError(t, b.CompactInPlace(path+".backup"), "a leftover never blocks")
	assert.Equal(t, []string{"web01"}, hostsOf(t, path))
}

// TestOpen_KilledCompactionLeavesNothingBehind: a process killed with
// SIGKILL in the middle of a compaction leaves its temp file; the next
// writer removes it, and the store is whole.
func TestOpen_KilledCompactionLeavesNothingBehind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := openTB(t, path, nil)
	for i := range 20 {
		batch := &state.Batch{Time: time.Now()}
		for j := range 500 {
			name := fmt.Sprintf("h%02d-%03d", i, j)
			batch.Changes = append(batch.Changes, state.Change{Kind: state.KindHost, Key: name, Host: &state.HostState{Name: name, Vars: map[string]any{"pad": strings.Repeat("x", 200)}}})
		}
		_, err := b.Commit(batch)
		require.NoError(t, err)
	}
	require.NoError(t, b.Close())

	var leftover bool
	for round := 0; round < 20 && !leftover; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCompact$")
		cmd.Env = append(os.Environ(), "BOLTBACKEND_TEST_COMPACT="+path)
		require.NoError(t, cmd.Start())
		// Kill it once its temp file exists.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if m, _ := filepath.Glob(path + ".tmp-*"); len(m) > 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		m, _ := filepath.Glob(path + ".tmp-*")
		leftover = len(m) > 0
	}
	require.True(t, leftover, "a killed compaction left its temp file")
	b = openTB(t, path, nil)
	m, _ := filepath.Glob(path + ".tmp-*")
	assert.Empty(t, m, "the next writer removed it")
	require.NoError(t, b.Check())
	n := 0
	require.NoError(t, b.View(func(s state.Snapshot) error { n, _ = s.Len(); return nil }))
	assert.Equal(t, 10000, n)
}

// TestHelperCompact is the process TestOpen_KilledCompactionLeavesNothingBehind
// kills: it compacts the store named by BOLTBACKEND_TEST_COMPACT in place.
func TestHelperCompact(t *testing.T) {
	path := os.Getenv("BOLTBACKEND_TEST_COMPACT")
	if path == "" {
		t.Skip("run by TestOpen_KilledCompactionLeavesNothingBehind")
	}
	b, err := boltbackend.Open(path, &boltbackend.Options{Timeout: 10 * time.Second})
	require.NoError(t, err)
	require.NoError(t, b.CompactInPlace(path+".backup"))
}

// TestOpen_LockInfoNotRegular: a symbolic link, FIFO or hard link at
// PATH.lock is never written through (a writer used to write its lock
// info into a symlink's target) nor waited on (a FIFO hung check): a
// writer refuses it, naming the file; readers read no info from it.
func TestOpen_LockInfoNotRegular(t *testing.T) {
	for _, kind := range []string{"symlink", "fifo", "hard link"} {
		t.Run(kind, func(t *testing.T) {
			path := newStore(t)
			victim := filepath.Join(filepath.Dir(path), "victim")
			require.NoError(t, os.WriteFile(victim, []byte("precious\n"), 0o600))
			lock := lockinfo.Path(path)
			switch kind {
			case "symlink":
				require.NoError(t, os.Symlink(victim, lock))
			case "fifo":
				require.NoError(t, syscall.Mkfifo(lock, 0o600))
			case "hard link":
				require.NoError(t, os.Link(victim, lock))
			}
			within(t, func() {
				_, err := boltbackend.Open(path, nil)
				require.ErrorIs(t, err, lockinfo.ErrNotRegular)
				assert.Contains(t, err.Error(), lock)
				ro, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: true})
				require.NoError(t, err, "readers only read the info, and skip what is not a file")
				assert.Nil(t, ro.StaleLock())
				require.NoError(t, ro.Check())
				require.NoError(t, ro.Close())
			})
			got, _ := os.ReadFile(victim)
			assert.Equal(t, "precious\n", string(got), "nothing written through it")
		})
	}
}

// TestOpen_StoreNotRegular: a FIFO or a device as the store is refused
// before it is opened for reading, for writing and reading (it used to
// hang every command).
func TestOpen_StoreNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "state.db")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	within(t, func() {
		for _, path := range []string{fifo, "/dev/zero", "/dev/null"} {
			for _, ro := range []bool{false, true} {
				_, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: ro})
				require.ErrorIs(t, err, state.ErrCorrupt, "%s, read-only %v", path, ro)
				assert.Contains(t, err.Error(), "not a regular file")
			}
		}
	})
	fi, err := os.Stat("/dev/null")
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeCharDevice, "/dev/null is still a device")
}

// within runs fn and fails the test if it has not returned within 20 s.
func within(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("hangs")
	}
}

// TestCommit_StoreReplacedWhileHeld: a store file replaced or removed
// behind a writer's back (not by this package, which holds the lock to do
// it) makes the writer refuse to write into the file nobody reads any
// more.
func TestCommit_StoreReplacedWhileHeld(t *testing.T) {
	path := newStore(t)
	b := openTB(t, path, nil)
	_, err := b.Commit(hostBatch("before"))
	require.NoError(t, err)
	require.NoError(t, os.Rename(path, path+".moved"))
	_, err = b.Commit(hostBatch("after"))
	require.ErrorIs(t, err, state.ErrLocked)
	assert.Contains(t, err.Error(), "replaced")
	require.NoError(t, b.Close())
	assert.Equal(t, []string{"before", "web01"}, hostsOf(t, path+".moved"))
}

// TestBackup_ReplacesAtomically: Backup replaces an existing backup with a
// compacted copy, leaving no temp file.
func TestBackup_ReplacesAtomically(t *testing.T) {
	path := newStore(t)
	b := openTB(t, path, nil)
	dst := path + ".backup"
	require.NoError(t, os.WriteFile(dst, []byte("old backup"), 0o600))
	require.NoError(t, b.Backup(dst))
	_, err := b.Commit(hostBatch("later"))
	require.NoError(t, err)
	require.NoError(t, b.Backup(dst))
	require.NoError(t, b.Close())
	assert.Equal(t, []string{"later", "web01"}, hostsOf(t, dst))
	assert.Equal(t, []string{"state.db", "state.db.backup"}, dirNames(t, filepath.Dir(path)))
}

// TestOpen_LockThenStat: an Open that waits inside bbolt's own lock (its
// probe passed before another writer took the store) while that writer
// replaces the file must not use the file it finally locks, which is the
// backup by then: it starts over on the new file.
func TestOpen_LockThenStat(t *testing.T) {
	path := newStore(t)
	probed, proceed := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	boltbackend.SetAfterProbe(func() {
		if first.CompareAndSwap(false, true) { // only the first Open waits
			close(probed)
			<-proceed
		}
	})
	defer boltbackend.SetAfterProbe(nil)
	type result struct {
		b   *boltbackend.Backend
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := boltbackend.Open(path, &boltbackend.Options{Timeout: 30 * time.Second})
		done <- result{b, err}
	}()
	<-probed
	b := openTB(t, path, nil) // takes the lock first
	close(proceed)
	time.Sleep(200 * time.Millisecond) // the other Open waits in bbolt's flock on this file
	_, err := b.Commit(hostBatch("before-compact"))
	require.NoError(t, err)
	require.NoError(t, b.CompactInPlace(path+".backup"))

	r := <-done
	require.NoError(t, r.err)
	_, err = r.b.Commit(hostBatch("waiter"))
	require.NoError(t, err, "the waiter writes into the store, not the backup")
	require.NoError(t, r.b.Close())
	assert.Equal(t, []string{"before-compact", "waiter", "web01"}, hostsOf(t, path), "the waiter's acknowledged host is in the store")
	assert.Equal(t, []string{"before-compact", "web01"}, hostsOf(t, path+".backup"))
}
