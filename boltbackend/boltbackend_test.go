package boltbackend_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

func TestBackend(t *testing.T) {
	statetest.TestBackend(t, func(t testing.TB, dir string, opts statetest.OpenOptions) state.Backend {
		b, err := boltbackend.Open(filepath.Join(dir, "state.db"), &boltbackend.Options{ReadOnly: opts.ReadOnly})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// openTB opens (creating) the store at path and closes it when the test
// ends.
func openTB(t testing.TB, path string, opts *boltbackend.Options) *boltbackend.Backend {
	t.Helper()
	b, err := boltbackend.Open(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}
