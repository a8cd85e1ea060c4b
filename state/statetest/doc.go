// Package statetest holds what tests of state backends share: TestBackend,
// the conformance suite every Backend must pass, and Memory, an in-memory
// Backend for tests of code that uses a State.
//
// A backend's test calls the suite once:
//
//	func TestBackend(t *testing.T) {
//		statetest.TestBackend(t, func(t testing.TB, dir string) state.Backend {
//			b, err := boltbackend.Open(filepath.Join(dir, "state.db"), nil)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return b
//		})
//	}
package statetest
