package boltbackend_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/internal/powerfs"
	"github.com/go-ftl2/ftlstate/internal/testfs"
	"github.com/go-ftl2/ftlstate/state"
)

// names lists a directory.
func names(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestCreate_PowerLossLeavesNoTempLink cuts the power right after a
// store was created: the store is there, complete, and the temp name it
// was built under is not (it used to come back as a second hard link,
// its removal never made durable).
func TestCreate_PowerLossLeavesNoTempLink(t *testing.T) {
	backing := t.TempDir()
	fs := testfs.PowerFS(t, backing, nil)
	b, err := boltbackend.Open(filepath.Join(fs.Dir(), "state.db"), &boltbackend.Options{NoSocket: true})
	require.NoError(t, err)
	require.NoError(t, b.Close()) // writes nothing durable (the lock info's removal)
	_, err = fs.Crash()
	require.NoError(t, err)
	for _, name := range names(t, backing) {
		assert.Contains(t, []string{"state.db", "state.db.lock"}, name, "nothing else survives")
	}
	fi, err := os.Stat(filepath.Join(backing, "state.db"))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), linkCount(fi), "one link")
	ro := openTB(t, filepath.Join(backing, "state.db"), &boltbackend.Options{ReadOnly: true})
	require.NoError(t, ro.Check())
}

// TestClose_PowerLossAfterClose cuts the power after Close (a checkpoint,
// then the log emptied), keeping seeded parts of what was not synced:
// the store holds everything acknowledged each time. (A crash between
// the checkpoint and the emptying leaves the whole log beside a store
// that holds it: TestLog_ReplayIsIdempotent.)
func TestClose_PowerLossAfterClose(t *testing.T) {
	for _, torn := range []bool{false, true} {
		for seed := range uint64(4) {
			t.Run(fmt.Sprintf("torn=%v/seed=%d", torn, seed), func(t *testing.T) {
				backing := t.TempDir()
				fs := testfs.PowerFS(t, backing, powerfsOptions(torn, seed))
				path := filepath.Join(fs.Dir(), "state.db")
				st, err := state.Open(openRaw2(t, path, &boltbackend.Options{NoSocket: true}))
				require.NoError(t, err)
				workload(t, st, 0, 40)
				want, wantTypes := contents(t, st), byType(t, st)
				require.NoError(t, st.Close())
				_, err = fs.Crash()
				require.NoError(t, err)
				after := filepath.Join(backing, "state.db")
				ro := openTB(t, after, &boltbackend.Options{ReadOnly: true})
				sameAs(t, want, wantTypes, ro, "after the power cut")
				require.NoError(t, ro.Check())
				require.NoError(t, ro.Close())
				rw := openTB(t, after, nil)
				sameAs(t, want, wantTypes, rw, "reopened for writing")
			})
		}
	}
}

func linkCount(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

func powerfsOptions(torn bool, seed uint64) *powerfs.Options {
	return &powerfs.Options{Torn: torn, Seed: seed}
}
