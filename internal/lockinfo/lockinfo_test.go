package lockinfo_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

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
