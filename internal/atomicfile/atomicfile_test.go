package atomicfile_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/internal/atomicfile"
)

func TestWrite_NewFileModeAndContent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.json")
	require.NoError(t, atomicfile.WriteFile(p, []byte("new"), 0o600))
	b, _ := os.ReadFile(p)
	assert.Equal(t, "new", string(b))
	fi, _ := os.Stat(p)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	left, _ := atomicfile.Leftovers(p)
	assert.Empty(t, left)
}

func TestWrite_KeepsExistingMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.json")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o640))
	require.NoError(t, os.Chmod(p, 0o640))
	require.NoError(t, atomicfile.WriteFile(p, []byte("new"), 0o600))
	fi, _ := os.Stat(p)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}

func TestWrite_FailureLeavesTargetAndNoTemp(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.json")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o600))
	boom := errors.New("boom")
	err := atomicfile.Write(p, 0o600, func(w io.Writer) error {
		w.Write([]byte("half"))
		return boom
	})
	require.ErrorIs(t, err, boom)
	b, _ := os.ReadFile(p)
	assert.Equal(t, "old", string(b))
	left, _ := atomicfile.Leftovers(p)
	assert.Empty(t, left, "temp file removed")
}

func TestWrite_ReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores directory permissions; use a missing directory instead.
		err := atomicfile.WriteFile(filepath.Join(t.TempDir(), "missing", "x"), nil, 0o600)
		assert.Error(t, err)
		return
	}
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o500))
	defer os.Chmod(dir, 0o700)
	err := atomicfile.WriteFile(filepath.Join(dir, "x"), nil, 0o600)
	assert.ErrorIs(t, err, os.ErrPermission)
}

func TestCopyAndLeftovers(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a[1].db")
	require.NoError(t, os.WriteFile(src, []byte("data"), 0o600))
	require.NoError(t, atomicfile.Copy(src+".backup", src))
	b, _ := os.ReadFile(src + ".backup")
	assert.Equal(t, "data", string(b))
	f, err := os.CreateTemp(dir, atomicfile.TempPattern(src))
	require.NoError(t, err)
	f.Close()
	left, err := atomicfile.Leftovers(src)
	require.NoError(t, err)
	assert.Equal(t, []string{f.Name()}, left, "glob metacharacters in the name are escaped")
}
