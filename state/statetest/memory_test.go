package statetest_test

import (
	"testing"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

func TestMemory(t *testing.T) {
	var stores statetest.MemoryStores
	statetest.TestBackend(t, func(t testing.TB, dir string) state.Backend {
		b, err := stores.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}
