package atomicfile_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/internal/atomicfile"
)

func writeString(path string, opts *atomicfile.Options, s string) error {
	return atomicfile.Write(path, opts, func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	})
}

// temps lists the temp files of path in its directory.
func temps(t *testing.T, path string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if atomicfile.IsTemp(path, e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestWrite_NewFileModeAndContent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.json")
	require.NoError(t, writeString(p, nil, "new"))
	b, _ := os.ReadFile(p)
	assert.Equal(t, "new", string(b))
	fi, _ := os.Stat(p)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "new files are private by default")
	assert.Empty(t, temps(t, p))

	q := filepath.Join(t.TempDir(), "shared.json")
	require.NoError(t, writeString(q, &atomicfile.Options{Perm: 0o644}, "x"))
	fi, _ = os.Stat(q)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
}

func TestWrite_KeepsExistingMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.json")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o640))
	require.NoError(t, os.Chmod(p, 0o640))
	require.NoError(t, writeString(p, nil, "new"))
	fi, _ := os.Stat(p)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}

func TestWrite_KeepOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can give a file away")
	}
	p := filepath.Join(t.TempDir(), "out.json")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o600))
	require.NoError(t, os.Chown(p, 4242, 4343))
	require.NoError(t, writeString(p, &atomicfile.Options{KeepOwner: true}, "new"))
	fi, _ := os.Stat(p)
	st := fi.Sys().(*syscall.Stat_t)
	assert.Equal(t, uint32(4242), st.Uid)
	assert.Equal(t, uint32(4343), st.Gid)
	require.NoError(t, writeString(p, nil, "again"))
	fi, _ = os.Stat(p)
	assert.Equal(t, uint32(0), fi.Sys().(*syscall.Stat_t).Uid, "without KeepOwner the writer owns the file")
}

func TestWrite_FailureLeavesTargetAndNoTemp(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.json")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o600))
	boom := errors.New("boom")
	err := atomicfile.Write(p, nil, func(w io.Writer) error {
		w.Write([]byte("half"))
		return boom
	})
	require.ErrorIs(t, err, boom)
	b, _ := os.ReadFile(p)
	assert.Equal(t, "old", string(b))
	assert.Empty(t, temps(t, p), "temp file removed")

	for _, step := range []string{"create", "sync", "close", "rename"} {
		err := writeString(p, &atomicfile.Options{Step: func(s string) error {
			if s == step {
				return boom
			}
			return nil
		}}, "new")
		require.ErrorIs(t, err, boom, step)
		b, _ := os.ReadFile(p)
		assert.Equal(t, "old", string(b), "a failure at %s leaves the file", step)
		assert.Empty(t, temps(t, p), "a failure at %s leaves no temp file", step)
	}
	var steps []string
	require.NoError(t, writeString(p, &atomicfile.Options{Step: func(s string) error { steps = append(steps, s); return nil }}, "new"))
	assert.Equal(t, []string{"create", "sync", "close", "rename", "syncdir"}, steps)
}

func TestWrite_ReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores directory permissions; use a missing directory instead.
		err := writeString(filepath.Join(t.TempDir(), "missing", "x"), nil, "")
		assert.Error(t, err)
		return
	}
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o500))
	defer os.Chmod(dir, 0o700)
	err := writeString(filepath.Join(dir, "x"), nil, "")
	assert.ErrorIs(t, err, os.ErrPermission)
}

func TestCopyAndIsTemp(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a[1].db")
	require.NoError(t, os.WriteFile(src, []byte("data"), 0o640))
	require.NoError(t, os.Chmod(src, 0o640))
	require.NoError(t, atomicfile.Copy(src+".backup", src))
	b, _ := os.ReadFile(src + ".backup")
	assert.Equal(t, "data", string(b))
	fi, _ := os.Stat(src + ".backup")
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "a new copy gets the source's mode")
	f, err := atomicfile.CreateTemp(src)
	require.NoError(t, err)
	f.Close()
	assert.Equal(t, []string{filepath.Base(f.Name())}, temps(t, src), "glob metacharacters in the name are nothing special")
	assert.Contains(t, f.Name(), fmt.Sprintf("a[1].db.tmp-%d-", os.Getpid()), "the name says whose it is")
	for name, want := range map[string]bool{
		"a[1].db.tmp-123": true, "a[1].db.tmp-": false, "a[1].db.tmp-12x": false,
		"a[1].db.tmp-12-345": true, "a[1].db.tmp-12-": false, "a[1].db.tmp-0-1": false, "a[1].db.tmp-1-2-3": false,
		"b.db.tmp-1": false, "a[1].db": false,
	} {
		assert.Equal(t, want, atomicfile.IsTemp(src, name), name)
	}
}

// TestWrite_NotDurableAfterRename: once the new file is in place, a
// failure to make that durable is not "failed, nothing changed": it
// matches ErrNotDurable (the outcome is unknown), and failures before the
// rename do not.
func TestWrite_NotDurableAfterRename(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.json")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o600))
	eio := &os.PathError{Op: "fsync", Path: filepath.Dir(p), Err: syscall.EIO}
	err := writeString(p, &atomicfile.Options{Step: func(s string) error {
		if s == "syncdir" {
			return eio
		}
		return nil
	}}, "new")
	require.ErrorIs(t, err, atomicfile.ErrNotDurable)
	require.ErrorIs(t, err, syscall.EIO)
	b, _ := os.ReadFile(p)
	assert.Equal(t, "new", string(b))

	for _, step := range []string{"create", "sync", "close", "rename"} {
		err := writeString(p, &atomicfile.Options{Step: func(s string) error {
			if s == step {
				return eio
			}
			return nil
		}}, "newer")
		require.ErrorIs(t, err, syscall.EIO)
		assert.NotErrorIs(t, err, atomicfile.ErrNotDurable, "a failure at %s changed nothing", step)
	}
}

// TestRemoveStale: a lock holder removes the temp files of dead
// processes, never a live process's (its own included) nor anything that
// is not a temp file of the targets.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "s.db")
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	deadPID := dead.Process.Pid
	live := exec.Command("sleep", "60")
	require.NoError(t, live.Start())
	defer func() { live.Process.Kill(); live.Wait() }()
	files := map[string]bool{ // name: stale
		fmt.Sprintf("s.db.tmp-%d-1", deadPID):        true,
		fmt.Sprintf("s.db.backup.tmp-%d-2", deadPID): true,
		"s.db.tmp-77": true, // older form, made under the lock
		fmt.Sprintf("s.db.tmp-%d-3", live.Process.Pid): false,
		fmt.Sprintf("s.db.tmp-%d-4", os.Getpid()):      false,
		fmt.Sprintf("other.db.tmp-%d-5", deadPID):      false,
		"s.db":        false,
		"s.db.backup": false,
	}
	for name := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o600))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, fmt.Sprintf("s.db.tmp-%d-9", deadPID)), 0o700))

	removed := atomicfile.RemoveStale(true, store, store+".backup")
	assert.Equal(t, []string{fmt.Sprintf("s.db.backup.tmp-%d-2", deadPID), fmt.Sprintf("s.db.tmp-%d-1", deadPID)}, removed,
		"unlocked: only what a dead process named")
	removed = atomicfile.RemoveStale(false, store, store+".backup")
	assert.Equal(t, []string{"s.db.tmp-77"}, removed, "locked: the older form too")
	for name, stale := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		assert.Equal(t, stale, errors.Is(err, os.ErrNotExist), name)
	}
	_, err := os.Stat(filepath.Join(dir, fmt.Sprintf("s.db.tmp-%d-9", deadPID)))
	assert.NoError(t, err, "directories are left alone")
}
