package filebackend_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/state"
)

// TestRewrite_OutcomeUnknown: the rename put the new file in place but
// the directory fsync failed, so the batch may or may not survive a crash.
// Commit must not say "failed" (after a crash the batch could reappear):
// it says ErrOutcomeUnknown, and the Backend refuses writes and reads
// until it is reopened, which shows what the file holds.
func TestRewrite_OutcomeUnknown(t *testing.T) {
	for _, step := range []string{"syncdir", "rename-after"} {
		t.Run(step, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "state.json")
			b := open(t, p, nil)
			addHost(t, b, "acked", nil)
			filebackend.SetFaults(b, nil, func(s string) error {
				switch {
				case step == "syncdir" && s == "syncdir":
					return &os.PathError{Op: "fsync", Path: filepath.Dir(p), Err: syscall.EIO}
				case step == "rename-after" && s == "rename":
					// The rename happens, then reports an error.
					return renameThenFail(t, p)
				}
				return nil
			})
			now := state.Timestamp(time.Now())
			_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: "maybe", Host: &state.HostState{Name: "maybe", CreatedAt: now, UpdatedAt: now}}}})
			require.ErrorIs(t, err, state.ErrOutcomeUnknown)
			require.ErrorIs(t, err, syscall.EIO, "the cause is kept")
			assert.Contains(t, err.Error(), p)

			filebackend.SetFaults(b, nil, nil)
			_, err = b.Commit(&state.Batch{Time: now})
			require.ErrorIs(t, err, state.ErrOutcomeUnknown, "later commits are refused")
			assert.Contains(t, err.Error(), "reopened")
			require.ErrorIs(t, b.View(func(state.Snapshot) error { return nil }), state.ErrOutcomeUnknown, "and views")
			require.NoError(t, b.Close())

			b2 := open(t, p, nil)
			c := snapshot(t, b2)
			assert.Equal(t, []string{"acked", "maybe"}, hostNames(c), "reopening shows what the file holds")
		})
	}
}

// renameThenFail finds the temp file of the rewrite in progress, renames
// it over p itself (the step seam runs just before the real rename), and
// returns an I/O error, as a rename that did its work and then failed.
func renameThenFail(t *testing.T, p string) error {
	matches, err := filepath.Glob(p + ".tmp-*")
	require.NoError(t, err)
	require.Len(t, matches, 1)
	require.NoError(t, os.Rename(matches[0], p))
	return &os.LinkError{Op: "rename", Old: matches[0], New: p, Err: syscall.EIO}
}
