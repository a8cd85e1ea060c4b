// Package crashtest is the kill -9 harness every local backend's tests
// share. Run re-executes the test binary as a child process that opens a
// store and writes to it from 8 goroutines (hosts, resources, multi-record
// Updates, removals), printing each change to stdout only after its call
// returned. The parent kills the child with SIGKILL at a random moment
// (sometimes while it is still opening the store), reopens the store and
// checks that:
//
//   - every acknowledged change is there with its exact value, and every
//     acknowledged removal is absent;
//   - each writer's records are exactly the state after its last
//     acknowledged change, or after the one change it may have had in
//     flight: so an Update is all or nothing;
//   - state.Check finds nothing (the backend's own Check, or
//     state.CheckSnapshot for a backend without one).
//
// Rounds continue on the same store, so later rounds also test recovery of
// a store that has been killed before. The default is 25 rounds;
// -crash.rounds=N runs more (per package: go test ./boltbackend
// -run TestCrash -crash.rounds=500).
package crashtest
