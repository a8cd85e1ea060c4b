// Package wal is a small write-ahead log: one file of checksummed records
// numbered by a log sequence number (LSN), appended and made durable with
// one fdatasync each, in preallocated segments that are reused once the
// records they hold have been applied elsewhere. boltbackend writes every
// group commit to it and applies the groups to bbolt later, in large
// transactions (checkpoints).
//
//	w, err := wal.Create(path, id, next, nil) // a fresh log; LSNs from next
//	lsn, err := w.Append(payload)             // on disk when it returns
//	w.Release(lsn)                            // applied: its space may be reused
//	info, err := wal.Read(path, id, applied, func(lsn uint64, p []byte) error { ... })
//
// # Format (version 1)
//
// The file starts with a header of HeaderSize bytes: the magic
// "ftlswal\n", the format version (uint32), flags (uint32, zero), the
// segment size (uint64), the log's 16-byte ID, the creation time (Unix
// nanoseconds) and the CRC-32C of the bytes before it; integers are
// little-endian, the rest of the header is zero. Segments of the segment
// size follow, as many as the log has needed (at most Options.MaxSize in
// all). Each segment holds records back to back from its start, each at
// an offset that is a multiple of 8:
//
//	length  uint32  the payload's length, at least 1
//	crc     uint32  CRC-32C, seeded with the CRC-32C of the log's ID, of
//	                the length, the LSN and the payload
//	lsn     uint64
//	payload [length]byte
//	padding to a multiple of 8 (not checked)
//
// LSNs grow by one from record to record, across segments; a record is
// never split between segments. A record is valid when its checksum holds;
// the log is the chain of valid records that starts at the segment holding
// the first record wanted and continues with LSN+1, in the same segment
// right after, or at the start of another segment. Whatever follows the
// chain's last record is either unused (zeros) or stale: records of an
// earlier pass through a reused segment, whose LSNs are all lower.
//
// # Durability
//
// Append writes the record with one pwrite and returns after fdatasync: the
// space it writes into was allocated (fallocate, or ftruncate where the
// file system has no fallocate) and made durable before, when the segment
// was added, so that an append changes no file size and the fdatasync
// writes one or two data blocks. Create makes the header and the first
// segment durable, and the file's directory entry, before the first
// Append. Records are written one at a time, each after the previous one
// is durable, so a crash can only damage the last one: a partial or
// zeroed record at the end of the chain is a torn tail, the write that
// was in flight, and Read ignores it (Info.Torn). A damaged record before
// the tail is not a crash: Read finds a valid record with a higher LSN
// after the damage, and fails with a *CorruptError naming the offset.
//
// A segment is reused only when every record it holds has been released
// (Release: applied, and that made durable, elsewhere), so a crash while
// a reused segment is rewritten loses nothing that is not also stored
// elsewhere. Reset truncates the log to nothing once everything is
// applied; a crash before the truncation is durable leaves released
// records only, which Read skips (they are not beyond its after).
//
// # Concurrency
//
// A Writer is used by one goroutine at a time, except Release, which any
// goroutine may call. The caller keeps others from writing the file (boltbackend
// holds the store's lock); Read must not run while a Writer appends.
//
// # Caveats
//
//   - A flipped bit in the last record of the chain cannot be told from a
//     torn write: that record is dropped as torn. Every record before it
//     is covered.
//   - Read holds the whole file in memory (at most Options.MaxSize, 64 MiB
//     by default).
package wal
