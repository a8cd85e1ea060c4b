// Package layers holds no code: its test checks that the module's imports
// point one way, down this table, and that what only tests may use is
// imported only by tests.
//
//	7  cmd/ftlstate                  the one place that wires everything together
//	6  cmd/ftlstate/internal/bench   "ftlstate bench": backends and export, measured
//	   internal/crashtest            the crash harness: writes, imports (export), crashes
//	5  boltbackend, filebackend, etcdbackend, export
//	4  internal/live                 the live-read server the local backends run
//	3  state/statefile, state/ansible, state/statetest, internal/record,
//	   internal/lockinfo, internal/benchkit
//	2  state                         State, the Backend contract, the types
//	1  inventory                     the inventory types state hosts merge into
//	   internal/testfs               tmpfs and powerfs mounts for tests
//	0  internal/clone, internal/inflight, internal/atomicfile,
//	   internal/fuzzseed, internal/etcdtest, internal/powerfs,
//	   internal/boltdamage, internal/wal
//
// A package imports only packages of lower layers: a backend never imports
// another backend, and nothing below the command imports the command's
// pieces.
//
// Test-only packages (state/statetest, internal/crashtest, internal/testfs,
// internal/powerfs, internal/fuzzseed, internal/etcdtest,
// internal/boltdamage) are imported by
// _test.go files and other test-only packages alone, so that no program
// built from the library compiles them:
// internal/etcdtest runs embedded etcd servers, and a program that imports
// state and boltbackend compiles no etcd, gRPC or testing package at all
// (see testdata/stateandbolt and the README's Library API section).
package layers
