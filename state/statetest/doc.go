// Package statetest holds what tests of state backends share: TestBackend,
// the specification of the Backend contract as a test suite, and Memory,
// an in-memory Backend for tests of code that uses a State.
//
// A backend's test calls the suite once:
//
//	func TestBackend(t *testing.T) {
//		statetest.TestBackend(t, func(t testing.TB, dir string, opts statetest.OpenOptions) state.Backend {
//			b, err := boltbackend.Open(filepath.Join(dir, "state.db"), &boltbackend.Options{ReadOnly: opts.ReadOnly})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return b
//		})
//	}
//
// The suite calls the Backend and Snapshot methods themselves, as
// testing/fstest.TestFS calls those of an fs.FS, and cross-checks them
// against each other (state.CheckSnapshot); after each subtest it checks
// the store's integrity (state.Check where the backend is a
// state.Checker). It reports every misbehaviour it finds, not only the
// first. Its own tests run it against backends with one deliberate flaw
// each (an iteration order that ignores case, a lost change, a stale
// snapshot, records shared with the caller, and more) and require it to
// fail each of them in the subtest meant to catch the flaw.
//
// What a State does on top of a backend (Update, timestamps, Replace's
// rules, validation) is tested in package state, over Memory.
package statetest
