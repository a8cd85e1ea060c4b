package boltbackend

import "github.com/go-ftl2/ftlstate/state"

// Hooks are fault-injection seams: Apply runs inside each write
// transaction before each batch and Commit at its end (an error from
// either fails and rolls back the transaction); Result replaces the
// outcome of each write transaction, to simulate a commit that bbolt
// reports failed after it wrote the meta page.
//
// LogAppend runs before each log append: an error fails the append
// without writing, as a failed write would, or a failed fdatasync when
// unknown is set;
// Checkpoint runs inside each checkpoint's transaction, after the logged
// groups are applied (an error fails the checkpoint).
type Hooks struct {
	Apply      func(*state.Batch) error
	Commit     func() error
	Result     func(error) error
	LogAppend  func() (err error, unknown bool)
	Checkpoint func() error
}

// SetHooks installs h on b (the zero Hooks removes them).
func SetHooks(b *Backend, h Hooks) {
	b.hooks.Store(&hooks{apply: h.Apply, commit: h.Commit, result: h.Result, logAppend: h.LogAppend, checkpoint: h.Checkpoint})
}

// WriteTxns returns the number of write transactions b committed.
func WriteTxns(b *Backend) uint64 { return b.writeTxns.Load() }

// Queued returns the number of batches waiting for the committer.
func Queued(b *Backend) int { return len(b.queue) }

// SetNoSync turns on bbolt's NoSync for b's commits (call it before the
// first): the unsafe backend the power-loss harness must catch.
func SetNoSync(b *Backend) { b.db.NoSync = true }

// SetAfterProbe makes every Open call fn between its probe of the file and
// bbolt's open of it (nil removes it).
func SetAfterProbe(fn func()) { afterProbe = fn }
