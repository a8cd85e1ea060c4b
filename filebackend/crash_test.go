package filebackend_test

import (
	"path/filepath"
	"testing"

	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/internal/crashtest"
	"github.com/go-ftl2/ftlstate/state"
)

// TestCrash: kill -9 at random moments loses no acknowledged change, an
// Update is all or nothing, and the file always parses and matches what
// the store loads (the harness calls Backend.Check after every round).
// Temp files left by the kills are never read: each round's child would
// fail its checks otherwise. go test ./filebackend -run TestCrash
// -crash.rounds=500 runs a long one.
func TestCrash(t *testing.T) {
	st := crashtest.Run(t, func(dir string) (state.Backend, error) {
		return filebackend.Open(filepath.Join(dir, "state.json"), nil)
	})
	if st.Acked == 0 {
		t.Errorf("no change was acknowledged in %d rounds: the test proved nothing", st.Rounds)
	}
}
