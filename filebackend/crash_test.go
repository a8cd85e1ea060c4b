package filebackend_test

import (
	"path/filepath"
	"testing"

	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/internal/crashtest"
	"github.com/go-ftl2/ftlstate/state"
)

func openCrashStore(dir string) (state.Backend, error) {
	return filebackend.Open(filepath.Join(dir, "state.json"), nil)
}

// TestCrash: kill -9 at random moments loses no acknowledged change, an
// Update is all or nothing, and the file always parses and matches what
// the store loads (the harness calls Backend.Check after every round).
// Temp files left by the kills are never read: each round's child would
// fail its checks otherwise. The workload includes imports. go test
// ./filebackend -run TestCrash -crash.rounds=500 runs a long one.
func TestCrash(t *testing.T) {
	crashtest.Run(t, openCrashStore)
}

// TestPowerLoss cuts the power under a writing process at random moments:
// the process writes through a file system that forgets what was not
// synced (internal/powerfs), and the store, reopened from what was
// durable, must hold every acknowledged change (-crash.power=N for long
// runs).
func TestPowerLoss(t *testing.T) {
	crashtest.PowerLoss(t, openCrashStore)
}

// TestPowerLoss_NoDirSyncIsCaught proves that TestPowerLoss can fail: a
// writer that renames its temp file over the state file but does not
// fsync the directory loses acknowledged changes.
func TestPowerLoss_NoDirSyncIsCaught(t *testing.T) {
	crashtest.MustCatch(t, openSkipping("syncdir"))
}

// TestPowerLoss_NoFileSyncIsCaught: a writer that renames its temp file
// unsynced leaves an empty or partial state file.
func TestPowerLoss_NoFileSyncIsCaught(t *testing.T) {
	crashtest.MustCatch(t, openSkipping("sync"))
}

// openSkipping opens stores whose rewrites leave out the fsync step.
func openSkipping(step string) crashtest.Opener {
	return func(dir string) (state.Backend, error) {
		b, err := filebackend.Open(filepath.Join(dir, "state.json"), nil)
		if err == nil {
			filebackend.SetFaults(b, nil, func(s string) error {
				if s == step {
					return atomicfile.ErrSkip
				}
				return nil
			})
		}
		return b, err
	}
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
