// Package powerfs is a test file system that forgets what was not synced:
// a FUSE mount (github.com/hanwen/go-fuse/v2) over a backing directory,
// for power-loss tests. Processes use the mount like any directory; every
// change that has not been made durable is kept in the file system's
// memory only, and the backing directory holds exactly the durable state
// at every moment. Crash is the power cut: it throws the rest away and
// unmounts, and what the next run opens, the backing directory itself or
// a new mount over it, is what a disk would hold after the cut.
//
//	fs, err := powerfs.Mount(backing, mnt, &powerfs.Options{Torn: true, Seed: seed})
//	... a child process writes under mnt, and is killed ...
//	report, err := fs.Crash() // backing now holds the durable state only
//
// # Durability model
//
// POSIX's strict reading, stricter than ext4 (whose journal commits
// everything pending at each fsync, and every few seconds):
//
//   - File data becomes durable on fsync or fdatasync of that file (any
//     descriptor of it, also O_SYNC writes, for which the kernel sends
//     one): the writes since the previous fsync, its size and its mode and
//     owner. Nothing else becomes durable with it: not the file's entry
//     in its directory.
//   - A create, rename, unlink, link, mkdir, rmdir or symlink becomes
//     durable on fsync of its directory: that fsync makes the directory's
//     durable entries equal to its current ones, all of them. A rename
//     between two directories is two changes: the new entry is durable on
//     fsync of the new directory, the removal of the old one on fsync of
//     the old, so a crash may leave the file under both names or under
//     neither. A new file whose entry was made durable but whose data was
//     never synced is empty after a crash.
//   - A truncate (ftruncate, O_TRUNC) is durable on fsync of the file,
//     with its data, as fsync(2) requires, and also on fsync of a
//     directory holding the file, without the writes since.
//
// A crash keeps nothing else: with Options.Torn it keeps, for each file
// the backing directory holds, part of the writes and truncates since its
// last fsync, chosen by Options.Seed: none, a prefix whose last write may
// be cut at a 512-byte boundary (a torn write), or an arbitrary subset (a
// disk that reorders writes). Namespace changes are never kept in part.
//
// # mmap
//
// Files are not opened with direct I/O (which would rule out mmap): the
// kernel's page cache serves reads and maps, and fills itself through the
// file system's Read, which serves the volatile state (unsynced pages from
// memory, the rest from the backing file). Writes go through the page
// cache to the file system at once (FUSE's default write-through mode), so
// a process that writes with pwrite and reads through a shared read-only
// map, as bbolt does, sees its writes. Every change passes through the
// mount, so the page cache never holds stale data, and the mount keeps it
// across opens (FOPEN_KEEP_CACHE, explicit cache control). Writable shared
// maps work too, but their data reaches the file system only when the
// kernel writes the pages back, so an msync is what makes them visible to
// the model; nothing in this project writes through maps.
//
// # What it does not model
//
//   - Device write caches and reordering below the file system: a synced
//     write is durable whole; there is no barrier to get wrong between
//     fsyncs other than the ones above. A crash in the middle of an fsync
//     leaves it all or nothing (Torn covers writes, not syncs).
//   - Metadata journaling effects: with the model, fsync of one file never
//     makes another file's changes durable (on ext4 it often does), so
//     programs that rely on such side effects fail here, as they should.
//   - Timestamps (atime, mtime, ctime) are not durable state: the backing
//     directory's files carry the times at which they were written back.
//   - Extended attributes, FIFOs, devices and sockets are not supported;
//     neither are file locks beyond one mount: flock and fcntl locks are
//     the kernel's, local to the mount, and vanish with it.
//   - Renames of directories between directories fail with EXDEV, so that
//     a directory never has two durable parents.
//   - Everything runs in one process under one lock, and unsynced data is
//     kept in memory: for test stores, not for gigabytes.
//   - There are no permission checks beyond the kernel's (the mount uses
//     default_permissions); the tests run as root.
//
// # Use
//
// Mount needs the right to mount FUSE file systems: root (or
// CAP_SYS_ADMIN) and /dev/fuse; it calls mount(2) itself, so no fusermount
// is needed. Available reports whether that works here; internal/testfs
// turns its answer into a skip, or a failure where FTLSTATE_REQUIRE_FUSE
// is set. The process serving the mount must not touch the mount's files
// through mmap itself (a page fault would wait for a server that the Go
// runtime may have stopped); child processes may.
package powerfs
