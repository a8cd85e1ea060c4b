package boltbackend_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/internal/boltdamage"
	"github.com/go-ftl2/ftlstate/state"
)

// salvaged runs Salvage on path, within a time bound: a walk that never
// ends fails the test instead of hanging it.
func salvaged(t testing.TB, path string) (hosts, resources map[string]bool, errs []error) {
	t.Helper()
	hosts, resources = map[string]bool{}, map[string]bool{}
	done := make(chan error, 1)
	go func() {
		_, err := boltbackend.Salvage(path, nil, func(c state.Change, err error) error {
			switch {
			case err != nil:
				errs = append(errs, err)
			case c.Kind == state.KindHost:
				hosts[c.Key] = true
			case c.Kind == state.KindResource:
				resources[c.Key] = true
			}
			return nil
		})
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("Salvage did not end")
	}
	return hosts, resources, errs
}

// TestSalvage_BranchPointingBackUp: a branch page of the hosts bucket
// points at itself, a cycle that bbolt's cursors follow forever. Salvage
// reads the hosts from the intact leaves instead, reports the damage, and
// reads the other buckets as usual.
func TestSalvage_BranchPointingBackUp(t *testing.T) {
	path := bigStore(t)
	require.NoError(t, boltdamage.BranchToItself(path, "hosts"))
	hosts, resources, errs := salvaged(t, path)
	assert.Len(t, resources, 500, "the resources are intact")
	assert.Greater(t, len(hosts), 0, "the hosts of the intact leaves")
	assert.Less(t, len(hosts), 500, "the leaf no branch reaches now is lost")
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], state.ErrCorrupt)
	assert.ErrorContains(t, errs[0], `bucket "hosts" are damaged`)
}

// TestSalvage_ReadsTheLog: the changes a writer acknowledged before it
// died, which are in the log only, are salvaged too.
func TestSalvage_ReadsTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := openTB(t, path, manual)
	st, err := state.Open(b)
	require.NoError(t, err)
	for i := range 20 {
		require.NoError(t, st.AddHost(&state.HostState{Name: fmt.Sprintf("h%02d", i)}))
	}
	require.NoError(t, st.RemoveHost("h03"))
	crashed := image(t, path)
	require.NoError(t, st.Close())
	hosts, _, errs := salvaged(t, crashed)
	assert.Empty(t, errs)
	assert.Len(t, hosts, 19)
	assert.False(t, hosts["h03"], "removed in the log")
	assert.True(t, hosts["h19"], "added in the log")
}
