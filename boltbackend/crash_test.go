package boltbackend_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/internal/crashtest"
	"github.com/go-ftl2/ftlstate/state"
)

func openCrashStore(dir string) (state.Backend, error) {
	return boltbackend.Open(filepath.Join(dir, "state.db"), &boltbackend.Options{Timeout: 10 * time.Second})
}

// TestCrash kills a writing process with SIGKILL at random moments and
// checks that every acknowledged change survived, whole (see
// internal/crashtest; -crash.rounds=N for long runs). The workload
// includes imports and compactions (CompactInPlace, keeping a backup).
func TestCrash(t *testing.T) {
	crashtest.Run(t, openCrashStore)
}

// TestPowerLoss cuts the power under a writing process at random moments:
// the process writes through a file system that forgets what was not
// synced (internal/powerfs), and the store, reopened from what was
// durable, must hold every acknowledged change and pass Check
// (-crash.power=N for long runs).
func TestPowerLoss(t *testing.T) {
	crashtest.PowerLoss(t, openCrashStore)
}

// TestPowerLoss_NoSyncIsCaught proves that TestPowerLoss can fail: bbolt
// with NoSync, which never fsyncs a commit, loses acknowledged changes.
func TestPowerLoss_NoSyncIsCaught(t *testing.T) {
	crashtest.MustCatch(t, func(dir string) (state.Backend, error) {
		b, err := boltbackend.Open(filepath.Join(dir, "state.db"), &boltbackend.Options{Timeout: 10 * time.Second})
		if err == nil {
			boltbackend.SetNoSync(b)
		}
		return b, err
	})
}

// TestCrashOperations kills writers doing begin -> simulated cloud create
// -> finish at random moments, each round's child first reconciling what
// the last one left: every instance the provider holds is named by
// exactly one resource or one pending operation, and no acknowledged
// begin or finish is lost (see crashtest.Operations; -crash.ops=N).
func TestCrashOperations(t *testing.T) {
	crashtest.Operations(t, openCrashStore)
}

// TestPowerLossOperations is TestCrashOperations with power cuts under
// the store (the provider's file is outside them).
func TestPowerLossOperations(t *testing.T) {
	crashtest.OperationsPowerLoss(t, openCrashStore)
}
