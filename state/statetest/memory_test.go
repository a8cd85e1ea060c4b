package statetest_test

import (
	"testing"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

func TestMemory(t *testing.T) {
	var stores statetest.MemoryStores
	statetest.TestBackend(t, func(t testing.TB, dir string, opts statetest.OpenOptions) state.Backend {
		open := stores.Open
		if opts.ReadOnly {
			open = stores.OpenReadOnly
		}
		b, err := open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}
