package wal_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/go-ftl2/ftlstate/internal/wal"
)

var testID = wal.ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

// small segments, so that tests cross and reuse them.
var small = &wal.Options{SegmentSize: 1024, MaxSize: wal.HeaderSize + 4*1024}

// medium segments hold a test's records in one, and keep reads of the
// log quick under -race.
var medium = &wal.Options{SegmentSize: 16 << 10}

func payload(lsn uint64, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(lsn*31 + uint64(i)*7 + 1)
	}
	return p
}

// sizeOf returns the payload size of record lsn in the tests' logs: from
// 1 to 300 bytes, so that records end at every alignment.
func sizeOf(lsn uint64) int { return int(lsn*37%300) + 1 }

type got struct {
	lsn uint64
	p   []byte
}

func read(t testing.TB, path string, after uint64) ([]got, wal.Info, error) {
	t.Helper()
	var recs []got
	info, err := wal.Read(path, testID, after, func(lsn uint64, p []byte) error {
		recs = append(recs, got{lsn, p})
		return nil
	})
	return recs, info, err
}

// write appends records first..last to a new log at path, releasing
// every record as soon as it is written when release is set.
func write(t testing.TB, path string, opts *wal.Options, first, last uint64, release bool) *wal.Writer {
	t.Helper()
	w, err := wal.Open(path, testID, first, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, w, first, last, release)
	return w
}

func appendN(t testing.TB, w *wal.Writer, first, last uint64, release bool) {
	t.Helper()
	for lsn := first; lsn <= last; lsn++ {
		got, err := w.Append(payload(lsn, sizeOf(lsn)))
		if err != nil {
			t.Fatalf("append %d: %v", lsn, err)
		}
		if got != lsn {
			t.Fatalf("append: LSN %d, want %d", got, lsn)
		}
		if release {
			w.Release(lsn)
		}
	}
}

// wantRecords checks that recs are records from..to with their payloads.
func wantRecords(t testing.TB, recs []got, from, to uint64) {
	t.Helper()
	n := 0
	if to >= from {
		n = int(to - from + 1)
	}
	if len(recs) != n {
		t.Fatalf("%d records, want %d..%d", len(recs), from, to)
	}
	for i, r := range recs {
		lsn := from + uint64(i)
		if r.lsn != lsn || !bytes.Equal(r.p, payload(lsn, sizeOf(lsn))) {
			t.Fatalf("record %d: LSN %d, payload %d bytes; want LSN %d", i, r.lsn, len(r.p), lsn)
		}
	}
}

func TestRead_RoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w := write(t, path, nil, 1, 500, false)
	defer w.Close()
	for _, after := range []uint64{0, 1, 250, 499, 500, 600} {
		recs, info, err := read(t, path, after)
		if err != nil {
			t.Fatal(err)
		}
		wantRecords(t, recs, after+1, 500)
		if info.End != 500 || info.Torn || info.Records != len(recs) {
			t.Fatalf("after %d: info %+v", after, info)
		}
	}
	if fi, _ := os.Stat(path); fi.Size() != wal.HeaderSize+wal.DefaultSegmentSize {
		t.Fatalf("file of %d bytes, want the header and one segment", fi.Size())
	}
}

func TestRead_MissingAndEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	recs, info, err := read(t, path, 0)
	if err != nil || len(recs) != 0 || info.Exists {
		t.Fatalf("missing: %v %v %+v", recs, err, info)
	}
	os.WriteFile(path, nil, 0o600)
	recs, info, err = read(t, path, 0)
	if err != nil || len(recs) != 0 || !info.Exists || info.Size != 0 {
		t.Fatalf("empty: %v %v %+v", recs, err, info)
	}
}

// TestAppend_SegmentsAreReusedOnceReleased fills a log of four segments
// many times over, releasing as it goes: the file never grows beyond its
// bound, and what is not released is always read back.
func TestAppend_SegmentsAreReusedOnceReleased(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := wal.Open(path, testID, 1, small)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var released uint64
	for lsn := uint64(1); lsn <= 400; lsn++ {
		if _, err := w.Append(payload(lsn, sizeOf(lsn))); err != nil {
			t.Fatalf("append %d: %v", lsn, err)
		}
		if lsn%5 == 0 { // release all but the last few
			released = lsn - 3
			w.Release(released)
		}
		if w.Size() > small.MaxSize {
			t.Fatalf("log of %d bytes, bound %d", w.Size(), small.MaxSize)
		}
		if lsn%17 == 0 {
			recs, _, err := read(t, path, released)
			if err != nil {
				t.Fatalf("after %d: %v", lsn, err)
			}
			wantRecords(t, recs, released+1, lsn)
		}
	}
}

func TestAppend_FullUntilReleased(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := wal.Open(path, testID, 1, small)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var lsn uint64
	for lsn = 1; ; lsn++ {
		_, err := w.Append(payload(lsn, 200))
		if errors.Is(err, wal.ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if lsn > 100 {
			t.Fatal("never full")
		}
	}
	if w.Free(200) {
		t.Fatal("Free says there is room in a full log")
	}
	w.Release(lsn - 1)
	if !w.Free(200) {
		t.Fatal("no room after releasing everything")
	}
	if got, err := w.Append(payload(lsn, 200)); err != nil || got != lsn {
		t.Fatalf("after release: %d, %v", got, err)
	}
	if _, err := w.Append(make([]byte, 2000)); !errors.Is(err, wal.ErrTooLarge) {
		t.Fatalf("a record larger than a segment: %v", err)
	}
}

// layout returns where write put records first..last in a fresh log
// with opts, and their sizes without padding.
func layout(opts *wal.Options, first, last uint64) (offsets []int64, sizes []int64) {
	seg := int64(wal.DefaultSegmentSize)
	if opts != nil {
		seg = opts.SegmentSize
	}
	var cur, off int64
	for lsn := first; lsn <= last; lsn++ {
		n := (16 + int64(sizeOf(lsn)) + 7) &^ 7
		if off+n > seg {
			cur, off = cur+1, 0
		}
		offsets = append(offsets, wal.HeaderSize+cur*seg+off)
		sizes = append(sizes, 16+int64(sizeOf(lsn)))
		off += n
	}
	return offsets, sizes
}

func patch(t testing.TB, path string, fn func(b []byte)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fn(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func hash(t testing.TB, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestRead_TornTailOfEveryLength cuts the last record after each of its
// bytes, as a crash during its write would (the rest still zeros, as
// preallocated): the records before it are read, the partial one is
// left out, and Read reports the tear without changing the file.
func TestRead_TornTailOfEveryLength(t *testing.T) {
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean")
	const last = 30
	write(t, clean, medium, 1, last, false).Close()
	offs, sizes := layout(medium, 1, last)
	at, size := offs[last-1], sizes[last-1]
	orig, _ := os.ReadFile(clean)
	for k := int64(0); k < size; k++ {
		path := filepath.Join(dir, fmt.Sprint("torn", k))
		os.WriteFile(path, orig, 0o600)
		patch(t, path, func(b []byte) { clear(b[at+k : at+size]) })
		before := hash(t, path)
		recs, info, err := read(t, path, 0)
		if err != nil {
			t.Fatalf("cut after %d bytes: %v", k, err)
		}
		wantRecords(t, recs, 1, last-1)
		if k > 0 && (!info.Torn || info.TornAt != at) {
			t.Fatalf("cut after %d bytes: info %+v, want torn at %d", k, info, at)
		}
		if hash(t, path) != before {
			t.Fatal("Read changed the file")
		}
		os.Remove(path)
	}
}

// TestRead_TornTailOverStaleRecords tears a record written into a reused
// segment, where the bytes after the cut are those of older records.
func TestRead_TornTailOverStaleRecords(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	w, err := wal.Open(path, testID, 1, small)
	if err != nil {
		t.Fatal(err)
	}
	// Fill past the fourth segment, releasing: the writer comes back to
	// the first segments.
	appendN(t, w, 1, 40, true)
	before, _ := os.ReadFile(path)
	appendN(t, w, 41, 41, false)
	w.Close()
	after, _ := os.ReadFile(path)
	// Where record 41 went: the bytes that changed.
	start, end := -1, -1
	for i := range after {
		if after[i] != before[i] {
			if start < 0 {
				start = i
			}
			end = i + 1
		}
	}
	if start < 0 {
		t.Fatal("record 41 changed nothing")
	}
	end = min(end, start+16+sizeOf(41)) // the padding may differ too
	for k := start; k < end; k++ {
		torn := bytes.Clone(after)
		copy(torn[k:end], before[k:end])
		p := filepath.Join(dir, "torn")
		os.WriteFile(p, torn, 0o600)
		recs, _, err := read(t, p, 40)
		if err != nil {
			t.Fatalf("cut after %d bytes: %v", k-start, err)
		}
		if len(recs) != 0 {
			t.Fatalf("cut after %d bytes: read %d records, want none", k-start, len(recs))
		}
	}
	recs, _, err := read(t, path, 40)
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, recs, 41, 41)
}

func TestRead_ZeroedTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	write(t, path, medium, 1, 20, false).Close()
	offs, _ := layout(medium, 1, 20)
	// The last record zeroed whole, and everything from it to the end.
	patch(t, path, func(b []byte) { clear(b[offs[19]:]) })
	recs, info, err := read(t, path, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, recs, 1, 19)
	if info.Torn {
		t.Fatalf("zeros reported as a torn record: %+v", info)
	}
}

// TestRead_FlippedByteInTheMiddle flips, one at a time, every byte of a
// record that is not the last (its framing and payload): Read fails with
// a *CorruptError naming the record's offset, and the file is unchanged.
func TestRead_FlippedByteInTheMiddle(t *testing.T) {
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean")
	write(t, clean, medium, 1, 10, false).Close()
	orig, _ := os.ReadFile(clean)
	offs, sizes := layout(medium, 1, 10)
	for _, victim := range []int{0, 4, 8} { // the first, a middle one, the one before the last
		at, size := offs[victim], sizes[victim]
		for k := int64(0); k < size; k++ {
			path := filepath.Join(dir, "flipped")
			os.WriteFile(path, orig, 0o600)
			patch(t, path, func(b []byte) { b[at+k] ^= 0x40 })
			before := hash(t, path)
			recs, _, err := read(t, path, 0)
			var ce *wal.CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, wal.ErrCorrupt) {
				t.Fatalf("record %d, byte %d flipped: %v (%d records), want a CorruptError", victim+1, k, err, len(recs))
			}
			if ce.Offset != at {
				t.Fatalf("record %d, byte %d flipped: offset %d, want %d (%v)", victim+1, k, ce.Offset, at, err)
			}
			if len(recs) != 0 {
				t.Fatal("records passed on although the log is refused")
			}
			if hash(t, path) != before {
				t.Fatal("Read changed the file")
			}
		}
	}
}

// TestRead_DamageAtTheStartOfASegment damages the first record of a
// segment that later records follow: no segment then seems to hold the
// next LSN, and the records after it must still be noticed.
func TestRead_DamageAtTheStartOfASegment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	write(t, path, small, 1, 12, false).Close()
	offs, _ := layout(small, 1, 12)
	var victim int
	for i := 1; i < len(offs); i++ {
		if (offs[i]-wal.HeaderSize)%small.SegmentSize == 0 {
			victim = i
			break
		}
	}
	if victim == 0 || victim == len(offs)-1 {
		t.Fatalf("no segment starts with a record that is not the last (%v)", offs)
	}
	patch(t, path, func(b []byte) { b[offs[victim]+20] ^= 1 })
	_, _, err := read(t, path, 0)
	if !errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
}

func TestRead_Header(t *testing.T) {
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean")
	write(t, clean, medium, 1, 3, false).Close()
	orig, _ := os.ReadFile(clean)
	path := filepath.Join(dir, "log")
	for _, c := range []struct {
		name   string
		edit   func(b []byte) []byte
		offset int64
	}{
		{"flipped magic", func(b []byte) []byte { b[1] ^= 1; return b }, 0},
		{"flipped checksum", func(b []byte) []byte { b[49] ^= 1; return b }, 0},
		{"another store's", func(b []byte) []byte {
			b[24] ^= 1
			binary.LittleEndian.PutUint32(b[48:], crcHeader(b))
			return b
		}, 24},
		{"segment size 3", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[16:], 3)
			binary.LittleEndian.PutUint32(b[48:], crcHeader(b))
			return b
		}, 16},
	} {
		os.WriteFile(path, c.edit(bytes.Clone(orig)), 0o600)
		_, _, err := read(t, path, 0)
		var ce *wal.CorruptError
		if !errors.As(err, &ce) || ce.Offset != c.offset {
			t.Errorf("%s: %v, want a CorruptError at offset %d", c.name, err, c.offset)
		}
	}
	b := bytes.Clone(orig)
	binary.LittleEndian.PutUint32(b[8:], wal.Version+1)
	binary.LittleEndian.PutUint32(b[48:], crcHeader(b))
	os.WriteFile(path, b, 0o600)
	if _, _, err := read(t, path, 0); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("a newer version: %v, want a VersionError", err)
	}
	// A header cut short with nothing after it: a creation interrupted
	// before anything was appended.
	os.WriteFile(path, orig[:30], 0o600)
	if recs, info, err := read(t, path, 0); err != nil || len(recs) != 0 || !info.Torn {
		t.Errorf("a torn header: %v, %d records, %+v", err, len(recs), info)
	}
	zeros := make([]byte, wal.HeaderSize+2048)
	os.WriteFile(path, zeros, 0o600)
	if recs, info, err := read(t, path, 0); err != nil || len(recs) != 0 || info.Torn {
		t.Errorf("a zeroed file: %v, %d records, %+v", err, len(recs), info)
	}
}

func crcHeader(b []byte) uint32 {
	return crc32.Checksum(b[:48], crc32.MakeTable(crc32.Castagnoli))
}

func TestRead_GapBeforeTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	write(t, path, medium, 10, 12, false).Close()
	if _, _, err := read(t, path, 5); !errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("a log starting at 10 read after 5: %v, want ErrCorrupt", err)
	}
	recs, _, err := read(t, path, 9)
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, recs, 10, 12)
	// A log whose every record is applied is no gap.
	if recs, _, err := read(t, path, 100); err != nil || len(recs) != 0 {
		t.Fatalf("after 100: %v, %d records", err, len(recs))
	}
}

func TestReset_LeavesAnEmptyLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w := write(t, path, nil, 1, 5, false)
	stale, _ := os.ReadFile(path)
	if err := w.Reset(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Fatalf("%d bytes after Reset", fi.Size())
	}
	// A crash before the truncation was durable leaves the records, all
	// applied: nothing is read beyond what was applied.
	os.WriteFile(path+".stale", stale, 0o600)
	if recs, _, err := read(t, path+".stale", 5); err != nil || len(recs) != 0 {
		t.Fatalf("stale log: %v, %d records", err, len(recs))
	}
	// The log starts over on the next Append.
	appendN(t, w, 6, 8, false)
	w.Close()
	recs, _, err := read(t, path, 5)
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, recs, 6, 8)
}

// TestOpen_RefusesWhatIsNotALogFile: a symbolic link (whose target the
// log would overwrite), a FIFO, a directory, a hard link.
func TestOpen_RefusesWhatIsNotALogFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "precious")
	os.WriteFile(target, []byte("precious"), 0o600)
	cases := map[string]func(p string) error{
		"symlink":   func(p string) error { return os.Symlink(target, p) },
		"fifo":      func(p string) error { return syscall.Mkfifo(p, 0o600) },
		"directory": func(p string) error { return os.Mkdir(p, 0o700) },
		"hard link": func(p string) error { return os.Link(target, p) },
	}
	for name, mk := range cases {
		p := filepath.Join(dir, name)
		if err := mk(p); err != nil {
			t.Fatal(err)
		}
		if w, err := wal.Open(p, testID, 1, nil); err == nil {
			w.Close()
			t.Errorf("%s: Open accepted it", name)
		} else if name != "directory" && !errors.Is(err, wal.ErrCorrupt) {
			t.Errorf("%s: Open: %v, want ErrCorrupt", name, err)
		}
		if name != "hard link" {
			if _, _, err := read(t, p, 0); err == nil {
				t.Errorf("%s: Read accepted it", name)
			}
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "precious" {
		t.Fatal("the target was written")
	}
}

// TestRead_EveryByteFlipped flips each byte of a small log in turn, and
// each header byte, and requires that Read either refuses the log or
// returns exactly a prefix of what was written: never a changed record,
// never one out of order.
func TestRead_EveryByteFlipped(t *testing.T) {
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean")
	write(t, clean, small, 1, 12, false).Close()
	orig, _ := os.ReadFile(clean)
	offs, sizes := layout(small, 1, 12)
	end := offs[11] + sizes[11]
	path := filepath.Join(dir, "log")
	for k := int64(0); k < end; k++ {
		if k >= 52 && k < wal.HeaderSize {
			continue // the header's unused part
		}
		b := bytes.Clone(orig)
		b[k] ^= 0x01
		os.WriteFile(path, b, 0o600)
		recs, _, err := read(t, path, 0)
		if err != nil {
			if !errors.Is(err, wal.ErrCorrupt) {
				t.Fatalf("byte %d: %v", k, err)
			}
			continue
		}
		wantRecords(t, recs, 1, uint64(len(recs)))
		if len(recs) < 11 {
			t.Fatalf("byte %d: only %d records read, and no error", k, len(recs))
		}
	}
}
