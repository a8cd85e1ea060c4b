// Package bench measures what a state store costs: the durable write, how
// it grows with the store, how concurrent writers share commits, and how
// fast a big store opens and exports, each beside the disk's fsync floor
// and beside the design document's whole-file rewrite. Run does all of it
// in one run (so that ratios hold on a noisy machine) for "ftlstate
// bench". It is part of the command: it wires the backends and export
// together, so it lives under cmd/ftlstate. The pieces every benchmark
// shares (the records, store builders, Floor, PeakHeap, Latencies) are in
// internal/benchkit, which imports state only.
//
// # Method
//
//   - Latencies are timed one operation at a time with time.Now (about
//     50ns of overhead, which matters only for the in-memory reads);
//     medians and 99th percentiles are nearest-rank. Each loop runs for
//     Config.Duration (at least MinSamples operations, or MinRuns for the
//     long ones: open, export, marshal) and records are built before the
//     clock starts.
//   - Throughput rows count operations over wall time; the ratio of 32
//     writers to one compares two such counts, each on a store of its own
//     of the same size, measured in alternating rounds and pooled, so
//     that a change in the machine's load moves both alike.
//   - The floor is a 4 KiB write at offset 0 plus fsync of one file in
//     the stores' directory, measured in short rounds before every step
//     and after the last (twice Config.Duration in all) and pooled, so
//     that it reflects the disk over the whole run.
//   - The raw bbolt rows time bbolt alone (one db.Update putting one value
//     of a host's size), with 1k keys and on the large store's own file,
//     to separate bbolt's cost from this module's.
//   - "x floor" is a row's median time (for throughput rows, wall time per
//     operation) divided by the floor's median.
//   - Peak heap is the peak of runtime/metrics
//     /memory/classes/heap/objects:bytes, sampled every millisecond while
//     the operation runs in a run of its own (not one of the timed runs),
//     minus its value after a runtime.GC just before. It counts garbage
//     not yet collected as well as live memory, so it is an upper bound on
//     what the operation holds; with GOGC=100 the garbage is bounded by
//     the live heap before it started, which Run keeps the same for both
//     export sizes by holding no records while they run.
//
// # Caveats
//
//   - Absolute times depend on the disk and on the machine's other load;
//     compare ratios within one run.
//   - The design baseline does not fsync (the document's Save does not),
//     so its rows are faster than a durable version of the same design
//     would be.
package bench
