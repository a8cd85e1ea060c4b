package lockinfo_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
)

func TestCommand_KeepsNoFlagValues(t *testing.T) {
	assert.Equal(t, "ftlstate host add web01", lockinfo.Command([]string{"/usr/bin/ftlstate", "host", "add", "web01", "--var", "password=hunter2"}))
	assert.Equal(t, "ftl2", lockinfo.Command([]string{"ftl2", "--token=abc", "apply"}))
	assert.Equal(t, "a b c d", lockinfo.Command([]string{"a", "b", "c", "d", "e"}))
	assert.Empty(t, lockinfo.Command(nil))
}

func TestWriteRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db.lock")
	self := lockinfo.Self()
	f, err := lockinfo.Create(p, self)
	require.NoError(t, err)
	defer f.Close()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	got, err := lockinfo.Read(p)
	require.NoError(t, err)
	assert.Equal(t, self.PID, got.PID)
	assert.True(t, lockinfo.Alive(got))
	assert.Nil(t, lockinfo.Stale(p))

	// Rewriting in place shortens the file correctly.
	short := state.LockInfo{PID: 1}
	require.NoError(t, lockinfo.Write(f, short))
	got, _ = lockinfo.Read(p)
	assert.Equal(t, 1, got.PID)

	e := lockinfo.Error("state.db", p, 0)
	assert.ErrorIs(t, e, state.ErrLocked)
}

func TestStale_DeadProcess(t *testing.T) {
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	dead := cmd.Process.Pid // exited and reaped
	info := lockinfo.Self()
	info.PID = dead
	p := filepath.Join(t.TempDir(), "x.lock")
	f, err := lockinfo.Create(p, info)
	require.NoError(t, err)
	f.Close()
	assert.False(t, lockinfo.Alive(&info))
	require.NotNil(t, lockinfo.Stale(p))
	e := lockinfo.Error("x", p, 0)
	assert.True(t, e.Stale)
	assert.Contains(t, e.Error(), "stale")
}

func TestRead_GarbageIsNoRecord(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	require.NoError(t, os.WriteFile(p, []byte("{not json"), 0o600))
	info, err := lockinfo.Read(p)
	assert.NoError(t, err)
	assert.Nil(t, info)
	_, err = lockinfo.Read(p + ".missing")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestNotRegular: Create, Read and Acquire never follow a symbolic link,
// block on a FIFO or write into a hard link; they refuse, naming the
// file.
func TestNotRegular(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("precious"), 0o600))
	paths := map[string]func(p string) error{
		"symlink":   func(p string) error { return os.Symlink(victim, p) },
		"fifo":      func(p string) error { return syscall.Mkfifo(p, 0o600) },
		"hard link": func(p string) error { return os.Link(victim, p) },
		"directory": func(p string) error { return os.Mkdir(p, 0o700) },
	}
	for name, mk := range paths {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".lock")
		require.NoError(t, mk(p))
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err := lockinfo.Create(p, lockinfo.Self())
			assert.ErrorIs(t, err, lockinfo.ErrNotRegular, "Create: %s", name)
			assert.ErrorContains(t, err, p)
			_, err = lockinfo.Read(p)
			assert.ErrorIs(t, err, lockinfo.ErrNotRegular, "Read: %s", name)
			assert.Nil(t, lockinfo.Stale(p))
			_, _, err = lockinfo.Acquire(p, 0)
			assert.ErrorIs(t, err, lockinfo.ErrNotRegular, "Acquire: %s", name)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: hangs", name)
		}
	}
	b, _ := os.ReadFile(victim)
	assert.Equal(t, "precious", string(b))
}

// TestAcquire_LockThenStat: a lock file replaced while Acquire waits for
// it is not the lock: Acquire starts over on the new file.
func TestAcquire_LockThenStat(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.json.lock")
	first, ok, err := lockinfo.Acquire(p, 0)
	require.NoError(t, err)
	require.True(t, ok)
	got := make(chan *lockinfo.Lock, 1)
	go func() {
		l, ok, err := lockinfo.Acquire(p, 10*time.Second)
		assert.NoError(t, err)
		assert.True(t, ok)
		got <- l
	}()
	time.Sleep(200 * time.Millisecond) // waiting on the first file
	require.NoError(t, os.Remove(p))
	second, ok, err := lockinfo.Acquire(p, 0) // a new file at p
	require.NoError(t, err)
	require.True(t, ok, "the new file is free")
	require.Error(t, first.Check(), "the first lock is lost")
	assert.ErrorIs(t, first.Check(), lockinfo.ErrLockLost)
	require.NoError(t, first.Release())
	select {
	case l := <-got:
		t.Fatalf("Acquire took the lock of a deleted file while %v held the new one", l)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, second.Check())
	require.NoError(t, second.Release())
	l := <-got
	require.NoError(t, l.Check(), "the waiter holds the file at p")
	require.NoError(t, l.Release())
}
