// Package benchkit holds what every benchmark of the module shares, the Go
// benchmarks of each package and the runner of "ftlstate bench"
// (cmd/ftlstate/internal/bench) alike: records of realistic size (Host,
// Resource, Contents), store builders that take any opened Backend
// (Build, Store, Fill), the latency collector (Latencies, with medians and
// 99th percentiles), timed loops (Loop, Concurrent), the disk's fsync
// floor (Floor) and the heap peak of an operation (PeakHeap).
//
// It imports state only, so that a backend's benchmarks can use it without
// an import that runs up the layers; the rows, targets and the report of
// "ftlstate bench" live with the command. The method is described in
// cmd/ftlstate/internal/bench.
package benchkit
