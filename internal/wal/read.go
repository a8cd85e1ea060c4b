package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Info describes a log as Read found it.
type Info struct {
	// Exists is set when there is a file at the path; Size is its size
	// (0: an empty file, which holds no records).
	Exists bool
	Size   int64
	// SegmentSize is the size of its segments (0 without a header).
	SegmentSize int64
	// Records is the number of records beyond after (those passed to fn),
	// Bytes their size with framing, First and Last their LSNs (0 when
	// there are none).
	Records     int
	Bytes       int64
	First, Last uint64
	// End is the LSN of the last valid record of the chain, beyond after
	// or not (0 when the log holds none).
	End uint64
	// Torn is set when something that is not a valid record of the chain
	// and not zeros follows its last record (or a header was cut short):
	// the write in flight when the writer stopped. TornAt is its offset.
	Torn   bool
	TornAt int64
}

// Read reads the log at path, which must carry id, and calls fn with
// every record whose LSN is beyond after, in LSN order, once it has
// checked the whole file: when Read fails, fn has not been called. The
// payload passed to fn is the caller's to keep. A missing file or an
// empty one is a log without records (Info.Exists tells them apart). Read
// never writes.
//
// A torn tail (see the package documentation) is left out and reported
// in Info. Damage anywhere before it, a damaged header in a file that
// holds valid records, a gap between after and the log's first record, a
// log of another ID, or a file that is not a regular file, gives a
// *CorruptError naming the offset; a newer format, a *VersionError.
func Read(path string, id ID, after uint64, fn func(lsn uint64, payload []byte) error) (Info, error) {
	var info Info
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return info, nil
	case errors.Is(err, syscall.ELOOP):
		return info, &CorruptError{Path: path, Offset: -1, Msg: "a symbolic link, not a log file"}
	case err != nil:
		return info, err
	}
	defer f.Close()
	info.Exists = true
	fi, err := f.Stat()
	if err != nil {
		return info, err
	}
	if !fi.Mode().IsRegular() {
		return info, &CorruptError{Path: path, Offset: -1, Msg: fmt.Sprintf("not a regular file (%v)", fi.Mode().Type())}
	}
	if info.Size = fi.Size(); info.Size == 0 {
		return info, nil
	}
	if info.Size > MaxFileSize {
		return info, &CorruptError{Path: path, Offset: -1, Msg: fmt.Sprintf("%d bytes, larger than a log can be (%d)", info.Size, MaxFileSize)}
	}
	data := make([]byte, info.Size)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, info.Size), data); err != nil {
		return info, fmt.Errorf("wal: read %s: %w", path, err)
	}
	recs, err := parse(path, data, id, after, &info)
	if err != nil {
		return info, err
	}
	for _, r := range recs {
		if err := fn(r.lsn, r.payload); err != nil {
			return info, err
		}
	}
	return info, nil
}

type rec struct {
	lsn     uint64
	payload []byte
}

// frame reads the record at offset o of segment s: its LSN and size with
// padding, if its checksum holds.
func frame(sum uint32, s []byte, o int64) (lsn uint64, n int64, ok bool) {
	if o+frameHeader > int64(len(s)) {
		return 0, 0, false
	}
	le := binary.LittleEndian
	l := int64(le.Uint32(s[o:]))
	if l == 0 || l > int64(len(s))-o-frameHeader {
		return 0, 0, false
	}
	if frameSum(sum, s[o:o+frameHeader+l]) != le.Uint32(s[o+4:]) {
		return 0, 0, false
	}
	return le.Uint64(s[o+8:]), min(roundUp(frameHeader+l), int64(len(s))-o), true
}

// parse checks the log in data and returns its records beyond after.
func parse(path string, data []byte, id ID, after uint64, info *Info) ([]rec, error) {
	sum := seed(id)
	le := binary.LittleEndian
	h := data[:min(len(data), HeaderSize)]
	if len(h) < 52 || !bytes.Equal(h[:8], magic[:]) || crc32.Checksum(h[:48], castagnoli) != le.Uint32(h[48:]) {
		// A header cut short: the log's creation was interrupted before
		// anything was appended, unless a record is found.
		if lsn, at, found := scan(sum, data, 0, after); found {
			return nil, &CorruptError{Path: path, Offset: 0, Msg: fmt.Sprintf("damaged header, but the log holds records (LSN %d at offset %d)", lsn, at)}
		}
		info.Torn, info.TornAt = !allZero(h), 0
		return nil, nil
	}
	if v := le.Uint32(h[8:]); v > Version {
		return nil, &VersionError{Path: path, Version: v}
	} else if v == 0 {
		return nil, &CorruptError{Path: path, Offset: 8, Msg: "format version 0"}
	}
	var got ID
	copy(got[:], h[24:40])
	if got != id {
		return nil, &CorruptError{Path: path, Offset: 24, Msg: fmt.Sprintf("the log of another store (log id %x, the store's %x)", got, id)}
	}
	segSize := int64(le.Uint64(h[16:]))
	if segSize < MinSegmentSize || segSize > MaxSegmentSize || segSize%align != 0 {
		return nil, &CorruptError{Path: path, Offset: 16, Msg: fmt.Sprintf("segment size %d", segSize)}
	}
	info.SegmentSize = segSize
	body := data[HeaderSize:]
	nseg := int((int64(len(body)) + segSize - 1) / segSize)
	seg := func(i int) []byte { return body[int64(i)*segSize : min(int64(i+1)*segSize, int64(len(body)))] }
	abs := func(i int, o int64) int64 { return HeaderSize + int64(i)*segSize + o }

	// The first LSN of each segment, 0 for a segment whose first record
	// is not valid (unused, or damaged: the scan below tells).
	firsts := make([]uint64, nseg)
	for i := range nseg {
		if lsn, _, ok := frame(sum, seg(i), 0); ok {
			firsts[i] = lsn
		}
	}
	find := func(lsn uint64) int {
		for i, f := range firsts {
			if f == lsn {
				return i
			}
		}
		return -1
	}
	// The chain starts in the segment with the highest first LSN at most
	// after+1: the one holding after+1, if it exists.
	start := -1
	for i, f := range firsts {
		if f != 0 && f <= after+1 && (start < 0 || f > firsts[start]) {
			start = i
		}
	}
	covered := make([]int64, nseg) // bytes of each segment the chain covers
	var recs []rec
	end := after // the last LSN known: of the chain, or after
	breakAt, breakSeg := int64(-1), -1
	if start < 0 {
		for i, f := range firsts {
			if f > after+1 {
				return nil, &CorruptError{Path: path, Offset: abs(i, 0), Msg: fmt.Sprintf("the log starts at LSN %d, but the store holds only up to %d: records %d to %d are missing", f, after, after+1, f-1)}
			}
		}
	} else {
		i, o, next := start, int64(0), firsts[start]
		for {
			lsn, n, ok := frame(sum, seg(i), o)
			if ok && lsn == next {
				if lsn > after {
					p := seg(i)[o+frameHeader : o+frameHeader+int64(le.Uint32(seg(i)[o:]))]
					recs = append(recs, rec{lsn, p})
					info.Bytes += n
				}
				info.End = lsn
				o += n
				covered[i] = o
				next++
				continue
			}
			if j := find(next); j >= 0 && j != i {
				i, o = j, 0
				continue
			}
			breakAt, breakSeg = abs(i, o), i
			if tail := seg(i)[o:]; len(tail) > 0 {
				tl, _, stale := frame(sum, tail, 0)
				stale = stale && tl < next
				if !stale && !allZero(tail[:min(len(tail), frameHeader)]) {
					info.Torn, info.TornAt = true, breakAt
				}
			}
			break
		}
		end = max(end, next-1)
	}
	// Nothing valid beyond the chain may have a higher LSN: a record that
	// does was written after the one where the chain breaks, which was
	// therefore complete once, and is damaged.
	for i := range nseg {
		s := seg(i)
		if lsn, at, found := scan(sum, s, covered[i], end); found {
			// The damage lies where the chain breaks, or, when the later
			// record is in a segment the chain does not reach, between
			// that segment's start and the record.
			where := breakAt
			if i != breakSeg {
				where = abs(i, covered[i])
			}
			return nil, &CorruptError{Path: path, Offset: where, Msg: fmt.Sprintf("damaged record: a later record (LSN %d at offset %d) follows it", lsn, abs(i, at))}
		}
	}
	if len(recs) > 0 {
		info.Records, info.First, info.Last = len(recs), recs[0].lsn, recs[len(recs)-1].lsn
	}
	return recs, nil
}

// scan looks in s from offset from on for a valid record with an LSN
// above end, at every aligned offset.
func scan(sum uint32, s []byte, from int64, end uint64) (lsn uint64, at int64, found bool) {
	le := binary.LittleEndian
	for o := roundUp(from); o+frameHeader <= int64(len(s)); o += align {
		l := le.Uint32(s[o:])
		if l == 0 || int64(l) > int64(len(s))-o-frameHeader || le.Uint64(s[o+8:]) <= end {
			continue
		}
		if lsn, _, ok := frame(sum, s, o); ok {
			return lsn, o, true
		}
	}
	return 0, 0, false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
