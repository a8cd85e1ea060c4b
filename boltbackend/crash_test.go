package boltbackend_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/internal/crashtest"
	"github.com/go-ftl2/ftlstate/state"
)

// TestCrash kills a writing process with SIGKILL at random moments and
// checks that every acknowledged change survived, whole (see
// internal/crashtest; -crash.rounds=N for long runs).
func TestCrash(t *testing.T) {
	crashtest.Run(t, func(dir string) (state.Backend, error) {
		return boltbackend.Open(filepath.Join(dir, "state.db"), &boltbackend.Options{Timeout: 10 * time.Second})
	})
}
