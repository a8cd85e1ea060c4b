package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// Sizes of the format, and the defaults and bounds of Options.
const (
	// HeaderSize is the size of the file header; segments start after it.
	HeaderSize = 4096
	// Version is the format version this package writes and reads.
	Version = 1

	DefaultSegmentSize = 4 << 20
	DefaultMaxSize     = 64 << 20
	// MinSegmentSize and MaxSegmentSize bound Options.SegmentSize.
	MinSegmentSize = 1 << 10
	MaxSegmentSize = 1 << 30
	// MaxFileSize bounds Options.MaxSize, and the size of a file Read
	// accepts as a log.
	MaxFileSize = 1 << 30

	frameHeader = 16
	align       = 8
)

var magic = [8]byte{'f', 't', 'l', 's', 'w', 'a', 'l', '\n'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ID identifies the log of one store: a log is read only by the store
// whose ID it carries, and its records' checksums are seeded with it.
type ID [16]byte

// Options size a log. Zero fields take the defaults.
type Options struct {
	// SegmentSize is the size of one segment (default 4 MiB); a record
	// (16 bytes of framing plus the payload, rounded up to 8) must fit in
	// one. It is rounded down to a multiple of 8.
	SegmentSize int64
	// MaxSize bounds the file: header and segments (default 64 MiB; at
	// least two segments). When every segment holds records not yet
	// released, Append fails with ErrFull.
	MaxSize int64
}

// sizes returns the segment size and the most segments the file may hold.
func (o *Options) sizes() (seg int64, segs int) {
	seg, limit := int64(DefaultSegmentSize), int64(DefaultMaxSize)
	if o != nil && o.SegmentSize > 0 {
		seg = o.SegmentSize
	}
	if o != nil && o.MaxSize > 0 {
		limit = o.MaxSize
	}
	seg = min(max(seg, MinSegmentSize), MaxSegmentSize) &^ (align - 1)
	limit = min(limit, MaxFileSize)
	return seg, int(max(2, (limit-HeaderSize)/seg))
}

// Errors of this package.
var (
	// ErrFull is returned by Append when no segment is free: records must
	// be released before the log takes more.
	ErrFull = errors.New("wal: log full: every segment holds records not yet applied")
	// ErrTooLarge is returned by Append for a payload that does not fit in
	// one segment.
	ErrTooLarge = errors.New("wal: record larger than a segment")
	// ErrCorrupt is matched by every *CorruptError.
	ErrCorrupt = errors.New("wal: damaged log")
)

// CorruptError reports a log that cannot be read as a log of the store:
// damage before its tail, a damaged header, a file that is not a regular
// file, a log of another store. It matches ErrCorrupt.
type CorruptError struct {
	Path string
	// Offset is where in the file the problem is (-1: the file as a
	// whole).
	Offset int64
	Msg    string
}

func (e *CorruptError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("%s: %s", e.Path, e.Msg)
	}
	return fmt.Sprintf("%s: offset %d: %s", e.Path, e.Offset, e.Msg)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// VersionError reports a log of a newer format version than this package
// reads. It matches errors.ErrUnsupported.
type VersionError struct {
	Path    string
	Version uint32
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("%s: log format version %d is newer than this program reads (%d); use a newer version of the program", e.Path, e.Version, Version)
}

// Unwrap returns errors.ErrUnsupported.
func (e *VersionError) Unwrap() error { return errors.ErrUnsupported }

// seed returns the CRC-32C of id, the seed of the log's record checksums.
func seed(id ID) uint32 { return crc32.Checksum(id[:], castagnoli) }

// frameSum is the checksum of a record: over its length, LSN and payload.
func frameSum(seed uint32, frame []byte) uint32 {
	c := crc32.Update(seed, castagnoli, frame[0:4])
	return crc32.Update(c, castagnoli, frame[8:])
}

func roundUp(n int64) int64 { return (n + align - 1) &^ (align - 1) }

// Writer appends records to a log. See the package documentation.
type Writer struct {
	f        *os.File
	path     string
	id       ID
	seed     uint32
	segSize  int64
	maxSegs  int
	released atomic.Uint64

	// ready is set once the file holds a durable header and its first
	// segment; Reset clears it.
	ready bool
	// created is set when Open created the file: the first
	// initialization syncs its directory.
	created bool
	// segs records, per segment, the first and last LSN written to it in
	// its current pass (0: none).
	segs []segment
	cur  int   // the segment written to
	off  int64 // where the next record goes in it
	next uint64
	// err, once set, fails every later Append: an fdatasync failed, and
	// what the file holds is unknown.
	err error
	buf []byte
}

type segment struct{ first, last uint64 }

// Open opens the log at path for appending, creating it if it does not
// exist; the first Append (re)initializes it: it truncates the file,
// writes the header and allocates the first segment, durably, so the
// caller must have read (Read) and applied whatever the file held. Its
// records get LSNs from next on. The file must be a regular file with
// one link; a symbolic link is not followed.
func Open(path string, id ID, next uint64, opts *Options) (*Writer, error) {
	if next == 0 {
		next = 1
	}
	created := true
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if errors.Is(err, fs.ErrExist) {
		created = false
		f, err = os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, &CorruptError{Path: path, Offset: -1, Msg: "a symbolic link, not a log file"}
		}
		return nil, err
	}
	if err := checkRegular(f, path); err != nil {
		f.Close()
		return nil, err
	}
	seg, segs := opts.sizes()
	return &Writer{f: f, path: path, id: id, seed: seed(id), segSize: seg, maxSegs: segs, next: next, created: created}, nil
}

// checkRegular refuses what is not a regular file of one link: a FIFO, a
// device, a directory, or a hard link to some other file, which writing
// the log would overwrite.
func checkRegular(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return &CorruptError{Path: path, Offset: -1, Msg: fmt.Sprintf("not a regular file (%v)", fi.Mode().Type())}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		return &CorruptError{Path: path, Offset: -1, Msg: fmt.Sprintf("has %d hard links; a log file has one", st.Nlink)}
	}
	return nil
}

// Path returns the log's path.
func (w *Writer) Path() string { return w.path }

// File returns the open log file, to tell whether the path still names it.
func (w *Writer) File() *os.File { return w.f }

// Next returns the LSN the next record gets.
func (w *Writer) Next() uint64 { return w.next }

// Size returns the size of the file: the header and the segments
// allocated (0 before the first Append, and after Reset).
func (w *Writer) Size() int64 {
	if !w.ready {
		return 0
	}
	return HeaderSize + int64(len(w.segs))*w.segSize
}

// MaxRecord returns the largest payload Append takes.
func (w *Writer) MaxRecord() int { return int(w.segSize - frameHeader) }

// init truncates the file and writes the header and the first segment,
// durably.
func (w *Writer) init() error {
	if err := w.f.Truncate(0); err != nil {
		return err
	}
	h := make([]byte, HeaderSize)
	copy(h, magic[:])
	le := binary.LittleEndian
	le.PutUint32(h[8:], Version)
	le.PutUint64(h[16:], uint64(w.segSize))
	copy(h[24:40], w.id[:])
	le.PutUint64(h[40:], uint64(time.Now().UnixNano()))
	le.PutUint32(h[48:], crc32.Checksum(h[:48], castagnoli))
	if _, err := w.f.WriteAt(h, 0); err != nil {
		return err
	}
	w.segs = w.segs[:0]
	if err := w.grow(); err != nil {
		return err
	}
	// Nothing is acknowledged yet: a failure here leaves the writer to
	// start over on the next Append.
	if err := fdatasync(w.f); err != nil {
		return err
	}
	if w.created {
		if err := syncDir(filepath.Dir(w.path)); err != nil {
			return err
		}
		w.created = false
	}
	w.cur, w.off, w.ready = 0, 0, true
	return nil
}

// grow allocates one more segment at the end of the file.
func (w *Writer) grow() error {
	off := HeaderSize + int64(len(w.segs))*w.segSize
	if err := preallocate(w.f, off, w.segSize); err != nil {
		return err
	}
	w.segs = append(w.segs, segment{})
	return nil
}

// Append writes one record holding payload and makes it durable
// (fdatasync) before it returns its LSN. It fails with ErrTooLarge for a
// payload larger than MaxRecord, with ErrFull when no segment is free
// (nothing is written); an error from the file system otherwise. After a
// failed fdatasync every later Append fails: the file's content is then
// unknown.
func (w *Writer) Append(payload []byte) (uint64, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(payload) == 0 || len(payload) > w.MaxRecord() {
		if len(payload) == 0 {
			return 0, errors.New("wal: empty record")
		}
		return 0, ErrTooLarge
	}
	if !w.ready {
		if err := w.init(); err != nil {
			return 0, err
		}
	}
	total := roundUp(int64(frameHeader + len(payload)))
	if w.off+total > w.segSize {
		if err := w.advance(); err != nil {
			return 0, err
		}
	}
	lsn := w.next
	w.buf = append(w.buf[:0], make([]byte, frameHeader)...)
	w.buf = append(w.buf, payload...)
	for int64(len(w.buf)) < total {
		w.buf = append(w.buf, 0)
	}
	le := binary.LittleEndian
	le.PutUint32(w.buf[0:], uint32(len(payload)))
	le.PutUint64(w.buf[8:], lsn)
	le.PutUint32(w.buf[4:], frameSum(w.seed, w.buf[:frameHeader+len(payload)]))
	at := HeaderSize + int64(w.cur)*w.segSize + w.off
	if _, err := w.f.WriteAt(w.buf, at); err != nil {
		// Nothing was acknowledged; the next Append writes over it.
		return 0, err
	}
	if err := fdatasync(w.f); err != nil {
		w.err = fmt.Errorf("wal: %s: fdatasync: %w", w.path, err)
		return 0, w.err
	}
	s := &w.segs[w.cur]
	if s.first == 0 {
		s.first = lsn
	}
	s.last = lsn
	w.off += total
	w.next++
	return lsn, nil
}

// advance moves the writer to the start of a free segment: one whose
// records are all released, or a new one while the file may grow.
func (w *Writer) advance() error {
	rel := w.released.Load()
	for i := range w.segs {
		if i != w.cur && w.segs[i].last <= rel {
			w.segs[i] = segment{}
			w.cur, w.off = i, 0
			return nil
		}
	}
	if len(w.segs) >= w.maxSegs {
		return ErrFull
	}
	if err := w.grow(); err != nil {
		return err
	}
	w.cur, w.off = len(w.segs)-1, 0
	return nil
}

// Free reports whether an Append of a payload of n bytes would find room
// without waiting for a Release.
func (w *Writer) Free(n int) bool {
	if !w.ready || w.off+roundUp(int64(frameHeader+n)) <= w.segSize || len(w.segs) < w.maxSegs {
		return true
	}
	rel := w.released.Load()
	for i := range w.segs {
		if i != w.cur && w.segs[i].last <= rel {
			return true
		}
	}
	return false
}

// Release records that the records up to lsn are applied elsewhere,
// durably: the segments holding only such records may be reused. It may
// be called from any goroutine; a lower lsn than before changes nothing.
func (w *Writer) Release(lsn uint64) {
	for {
		cur := w.released.Load()
		if lsn <= cur || w.released.CompareAndSwap(cur, lsn) {
			return
		}
	}
}

// Reset truncates the log to nothing, durably: every record must have
// been applied. The next Append starts the file over.
func (w *Writer) Reset() error {
	if err := w.f.Truncate(0); err != nil {
		return err
	}
	w.ready = false
	w.segs = w.segs[:0]
	if err := fdatasync(w.f); err != nil {
		w.err = err
		return err
	}
	return nil
}

// Failed returns the error of a failed fdatasync of an Append, after
// which the file's content is unknown and every Append fails; nil
// otherwise. An Append that fails while Failed is nil wrote nothing that
// a later Read returns.
func (w *Writer) Failed() error { return w.err }

// Close closes the file; it does not sync (every Append did).
func (w *Writer) Close() error { return w.f.Close() }

// syncDir fsyncs the directory dir.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
