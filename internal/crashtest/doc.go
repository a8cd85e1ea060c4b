// Package crashtest is the crash harness every local backend's tests
// share, in two modes: Run kills the writer (kill -9), PowerLoss cuts the
// power under it; Operations and OperationsPowerLoss do the same to
// writers using pending operations.
//
// Each round re-executes the test binary as a child process that opens a
// store and writes to it from 8 goroutines (hosts, resources, multi-record
// Updates, removals), printing each change to stdout only after its call
// returned, while a ninth goroutine, with the writers paused, imports
// (Replace) the store's own export with its records changed, and compacts
// the store in place, keeping a backup, as `ftlstate compact` does
// (backends with CompactInPlace; the others import again). The parent
// kills the child with SIGKILL at a random moment, one round in eight
// while it is still starting or opening the store, reopens the store and
// checks that:
//
//   - every acknowledged change is there with its exact value, and every
//     acknowledged removal is absent;
//   - each writer's records are exactly the state after its last
//     acknowledged change, or after the one change it may have had in
//     flight: so an Update, an import, a compaction is all or nothing;
//   - state.Check finds nothing (the backend's own Check, or
//     state.CheckSnapshot for a backend without one);
//   - the store accepts a new write.
//
// # Power loss
//
// A SIGKILL leaves the kernel's page cache alive: everything the child
// wrote is still read back, synced or not, so a backend that never fsyncs
// passes Run. PowerLoss runs the same rounds through internal/powerfs: the
// store's directory is the backing directory of a FUSE mount that keeps
// whatever was not fsynced (file data, and directory entries until their
// directory is fsynced) in memory, and the kill comes with Crash, which
// throws that away (three crashes in four keep a seeded part of the
// unsynced writes: torn writes). The store is then checked as the backing
// directory holds it: what a disk would hold after the power cut.
// MustCatch is the proof that this can fail: it runs PowerLoss against a
// backend that skips one fsync and requires a reported loss.
//
// # Pending operations
//
// Operations and OperationsPowerLoss run the same rounds (kill -9, power
// cuts) with another workload: writers provisioning instances of a
// simulated provider (internal/simcloud, whose file is outside the
// store's directory) through BeginOperation -> Create -> FinishOperation,
// and a reconciler settling what the previous round left pending. After
// each round every instance must be named by exactly one resource or one
// pending operation, and every acknowledged begin or finish must hold
// (see Operations). -crash.ops=N sets their rounds.
//
// # Flags and reproducing
//
// Rounds continue on the same store, so later rounds also test recovery of
// a store that crashed before. The defaults are 25 rounds each
// (-crash.rounds=N for Run, -crash.power=N for PowerLoss; 5 with -short);
// flags exist only in packages that import crashtest, so run them per
// package:
//
//	go test ./boltbackend -run '^TestPowerLoss$' -crash.power=1000 -v
//
// Every run logs its seed; -crash.seed=N repeats the kill times, the
// children's maintenance timing and the crashes' torn writes (the
// children's goroutines still interleave as the scheduler has them, so a
// rerun explores the same neighbourhood, not the same bytes).
// -crash.torn=false turns torn writes off; -crash.maxkill bounds how long
// a child writes. A run that acknowledged nothing fails: it proved
// nothing.
package crashtest
