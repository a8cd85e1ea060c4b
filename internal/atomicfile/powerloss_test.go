package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/internal/testfs"
)

// TestWrite_SurvivesPowerLoss writes through a file system that forgets
// what was not synced (internal/powerfs) and cuts the power: a Write that
// returned is there; one that left out an fsync (ErrSkip) is not, or only
// as an empty file.
func TestWrite_SurvivesPowerLoss(t *testing.T) {
	for _, tc := range []struct {
		skip, want string
	}{
		{"", "new"},
		{"syncdir", "old"}, // the rename was never made durable
		{"sync", ""},       // the rename was, the data not
	} {
		t.Run("skip="+tc.skip, func(t *testing.T) {
			backing := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(backing, "f"), []byte("old"), 0o600))
			fs := testfs.PowerFS(t, backing, nil)
			step := func(s string) error {
				if s == tc.skip {
					return atomicfile.ErrSkip
				}
				return nil
			}
			require.NoError(t, writeString(filepath.Join(fs.Dir(), "f"), &atomicfile.Options{Step: step}, "new"))
			_, err := fs.Crash()
			require.NoError(t, err)
			data, err := os.ReadFile(filepath.Join(backing, "f"))
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(data))
			entries, err := os.ReadDir(backing)
			require.NoError(t, err)
			assert.Len(t, entries, 1, "no temp file survives")
		})
	}
}
