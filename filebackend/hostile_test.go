package filebackend_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
)

// startTry starts the "try" helper (open with timeout, optionally add a
// host) and returns it with its output, once it has started.
func startTry(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := helperCmd(append([]string{"try"}, args...)...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, bufio.NewReader(out)
}

// TestLock_LockFileReplacedWhileWaiting: a process waits for PATH.lock;
// meanwhile the lock file is deleted and another process locks a new
// PATH.lock. When the first holder goes, the waiter gets the lock on the
// old, deleted file: it must see that PATH.lock is another file now
// (lock, then stat) and wait for that one, not write beside the new
// holder.
func TestLock_LockFileReplacedWhileWaiting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	holder := startHolder(t, p)
	waiter, out := startTry(t, p, "3s", "waiter")
	time.Sleep(300 * time.Millisecond) // the waiter is in its flock loop on the old file

	require.NoError(t, os.Remove(lockinfo.Path(p)))
	b := open(t, p, nil) // locks a new PATH.lock
	require.NoError(t, holder.Process.Kill())
	holder.Wait()

	rest, _ := io.ReadAll(out)
	err := waiter.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the waiter must not get in: %s", rest)
	assert.Equal(t, 3, exit.ExitCode(), "ErrLocked, by the new holder: %s", rest)
	assert.Contains(t, string(rest), "locked by pid")
	addHost(t, b, "mine", nil)
	require.NoError(t, b.Close())
	b2 := open(t, p, nil)
	assert.Equal(t, []string{"held", "mine"}, hostNames(snapshot(t, b2)))
}

// TestLock_LockFileDeletedWhileHeld: deleting PATH.lock while a writer
// holds it lets a second writer lock a new PATH.lock. The first writer
// must then write nothing more (its next rewrite would overwrite the
// second writer's acknowledged host): it checks its lock before each
// rename, and says so.
func TestLock_LockFileDeletedWhileHeld(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	b := open(t, p, nil)
	addHost(t, b, "first", nil)
	require.NoError(t, os.Remove(lockinfo.Path(p)))

	second, out := startTry(t, p, "0", "second")
	rest, _ := io.ReadAll(out)
	require.NoError(t, second.Wait(), "the second writer gets in: %s", rest)
	assert.Contains(t, string(rest), "added second")

	now := state.Timestamp(time.Now())
	_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: "third", Host: &state.HostState{Name: "third", CreatedAt: now, UpdatedAt: now}}}})
	require.ErrorIs(t, err, state.ErrLocked, "the first writer's lock is lost")
	require.ErrorIs(t, err, lockinfo.ErrLockLost)
	assert.Contains(t, err.Error(), "removed or replaced")
	_, err = b.Commit(&state.Batch{Time: now})
	require.ErrorIs(t, err, state.ErrLocked, "and stays lost")
	require.NoError(t, b.Close())

	b2 := open(t, p, nil)
	assert.Equal(t, []string{"first", "second"}, hostNames(snapshot(t, b2)), "the second writer's acknowledged host is kept")
}

// openWithin runs filebackend.Open in a goroutine and fails the test if
// it has not returned within 10 s (a FIFO would block it forever).
func openWithin(t *testing.T, p string, opts *filebackend.Options) (*filebackend.Backend, error) {
	t.Helper()
	type result struct {
		b   *filebackend.Backend
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := filebackend.Open(p, opts)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		if r.b != nil {
			t.Cleanup(func() { r.b.Close() })
		}
		return r.b, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("Open(%s) hangs", p)
		return nil, nil
	}
}

// TestLock_LockFileNotRegular: a symbolic link, FIFO, directory or hard
// link at PATH.lock is refused, never followed, waited on or written
// into (a writer used to truncate a symlink's target and write its lock
// info there).
func TestLock_LockFileNotRegular(t *testing.T) {
	for _, kind := range []string{"symlink", "dangling symlink", "fifo", "directory", "hard link"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "state.json")
			victim := filepath.Join(dir, "victim")
			require.NoError(t, os.WriteFile(victim, []byte("precious\n"), 0o600))
			lock := lockinfo.Path(p)
			switch kind {
			case "symlink":
				require.NoError(t, os.Symlink(victim, lock))
			case "dangling symlink":
				require.NoError(t, os.Symlink(filepath.Join(dir, "nowhere"), lock))
			case "fifo":
				require.NoError(t, syscall.Mkfifo(lock, 0o600))
			case "directory":
				require.NoError(t, os.Mkdir(lock, 0o700))
			case "hard link":
				require.NoError(t, os.Link(victim, lock))
			}
			_, err := openWithin(t, p, nil)
			require.ErrorIs(t, err, lockinfo.ErrNotRegular)
			assert.Contains(t, err.Error(), lock)
			assert.Equal(t, 1, strings.Count(err.Error(), "\n")+1, "one line")
			got, err := os.ReadFile(victim)
			require.NoError(t, err)
			assert.Equal(t, "precious\n", string(got), "nothing written through it")
			_, err = os.Stat(filepath.Join(dir, "nowhere"))
			assert.ErrorIs(t, err, os.ErrNotExist, "nothing created through it")
			_, err = os.Stat(p)
			assert.ErrorIs(t, err, os.ErrNotExist, "no store created")
		})
	}
}

// TestOpen_StateFileNotRegular: a FIFO (or a device) named as the store
// is refused before it is read, for writing and for reading: it used to
// hang every command.
func TestOpen_StateFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "state.json")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for _, ro := range []bool{false, true} {
		_, err := openWithin(t, fifo, &filebackend.Options{ReadOnly: ro})
		require.ErrorIs(t, err, state.ErrCorrupt, "read-only %v", ro)
		assert.Contains(t, err.Error(), "not a regular file")
		assert.Contains(t, err.Error(), fifo)
	}
	_, err := openWithin(t, "/dev/zero", &filebackend.Options{ReadOnly: true})
	require.ErrorIs(t, err, state.ErrCorrupt, "a device that never ends")
}

// TestLock_StaleInfoReportedToReaders: a read-only open (what `ftlstate
// check` uses) reports the lock info a killed writer left, as bbolt's
// does; a live writer's info is not stale.
func TestLock_StaleInfoReportedToReaders(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	holder := startHolder(t, p)
	ro := open(t, p, &filebackend.Options{ReadOnly: true})
	assert.Nil(t, ro.StaleLock(), "the holder is alive")
	require.NoError(t, ro.Close())

	require.NoError(t, holder.Process.Kill())
	holder.Wait()
	ro = open(t, p, &filebackend.Options{ReadOnly: true})
	stale := ro.StaleLock()
	require.NotNil(t, stale, "a killed writer's lock info is reported")
	assert.Equal(t, holder.Process.Pid, stale.PID)
	assert.Equal(t, []string{"held"}, hostNames(snapshot(t, ro)))
}

// TestMaxSize_RefusedBeforeWriting: a write that would make the file
// larger than the store is read at (Options.MaxSize, 1 GiB by default) is
// refused before anything is written; every acknowledged write stays
// readable (20 writes used to be acknowledged, then Open refused the
// file). Batches committed together that do not fit together are written
// one by one, so only those that do not fit fail.
func TestMaxSize_RefusedBeforeWriting(t *testing.T) {
	const max = 64 << 10
	pad := strings.Repeat("x", 2000)
	for _, concurrent := range []bool{false, true} {
		t.Run(fmt.Sprintf("concurrent=%v", concurrent), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "state.json")
			opts := &filebackend.Options{MaxSize: max}
			b := open(t, p, opts)
			var mu sync.Mutex
			var acked, refused []string
			add := func(name string) {
				now := state.Timestamp(time.Now())
				_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: name,
					Host: &state.HostState{Name: name, Vars: map[string]any{"pad": pad}, CreatedAt: now, UpdatedAt: now}}}})
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					acked = append(acked, name)
					return
				}
				assert.ErrorIs(t, err, state.ErrInvalid)
				assert.Contains(t, err.Error(), "largest this store is read at")
				refused = append(refused, name)
			}
			var wg sync.WaitGroup
			for i := range 60 {
				name := fmt.Sprintf("h%02d", i)
				if concurrent {
					wg.Go(func() { add(name) })
				} else {
					add(name)
				}
			}
			wg.Wait()
			require.NotEmpty(t, refused, "the limit was reached")
			require.NotEmpty(t, acked)
			fi, err := os.Stat(p)
			require.NoError(t, err)
			assert.LessOrEqual(t, fi.Size(), int64(max))
			require.NoError(t, b.Close())

			b2 := open(t, p, opts)
			c := snapshot(t, b2)
			sort.Strings(acked)
			assert.Equal(t, acked, hostNames(c), "every acknowledged write is readable, nothing refused is there")
			assert.Equal(t, uint64(len(acked)), c.Metadata.Serial)
		})
	}
}
