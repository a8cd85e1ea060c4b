package boltbackend

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/state"
)

// bbolt's meta page, as bbolt writes it (native byte order): a 16-byte
// page header, then magic, version, page size, flags (4 bytes each), the
// root bucket (root page, sequence), the freelist page, the high-water
// mark (pgid), the transaction id and an FNV-64a checksum of the bytes
// before it.
const (
	pageHeaderSize = 16
	metaSize       = 64
	metaMagic      = 0xED0CDAED
	metaVersion    = 2
	noFreelist     = ^uint64(0)
	minPageSize    = 1 << 10
	maxPageSize    = 1 << 24
)

type metaPage struct {
	pageSize uint64
	root     uint64
	freelist uint64
	pgid     uint64 // high-water mark: pages [0, pgid) are in use
	txid     uint64
}

var errNoMagic = errors.New("no bbolt magic number")

// parseMeta decodes and checks the meta at the start of page p.
func parseMeta(p []byte) (metaPage, error) {
	if len(p) < pageHeaderSize+metaSize {
		return metaPage{}, io.ErrUnexpectedEOF
	}
	m := p[pageHeaderSize : pageHeaderSize+metaSize]
	ne := binary.NativeEndian
	if ne.Uint32(m[0:]) != metaMagic {
		return metaPage{}, errNoMagic
	}
	if v := ne.Uint32(m[4:]); v != metaVersion {
		return metaPage{}, fmt.Errorf("bbolt format version %d, want %d", v, metaVersion)
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != ne.Uint64(m[56:]) {
		return metaPage{}, errors.New("checksum mismatch")
	}
	mp := metaPage{
		pageSize: uint64(ne.Uint32(m[8:])),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		pgid:     ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}
	if mp.pageSize < minPageSize || mp.pageSize > maxPageSize || bits.OnesCount64(mp.pageSize) != 1 {
		return metaPage{}, fmt.Errorf("page size %d", mp.pageSize)
	}
	return mp, nil
}

// probe checks the file at path before bbolt maps it, holding a shared
// lock so that no writer changes it meanwhile (waiting for one up to
// o.Timeout since start). It opens the file read-only, so that a file
// that is not a valid store is never modified, and refuses what bbolt
// would misread or crash on: an empty file, a file that is not bbolt, a
// damaged meta page, and a file shorter than its high-water mark (bbolt
// would map past the end and fault on the first read there).
func probe(path, real string, o Options, start time.Time) (fs.FileInfo, *pageWalk, error) {
	// O_NONBLOCK: a FIFO at the path must not block the open; it is
	// refused below, before anything reads or locks it.
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("boltbackend: open: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("boltbackend: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, corruptf(path, "not a regular file (%s): a store must be one", atomicfile.Describe(fi.Mode()))
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil, fmt.Errorf("boltbackend: lock %s: %w", path, err)
		}
		left := o.Timeout - time.Since(start)
		if left <= 0 {
			return nil, nil, lockError(path, real, o, start)
		}
		time.Sleep(min(left, 50*time.Millisecond))
	}
	// Closing f releases the lock.
	if err := checkFile(f, path); err != nil {
		return nil, nil, err
	}
	// The pages too, before bbolt reads any (a read-write bolt.Open reads
	// the freelist, and a damaged one made it panic). The walk's verdict
	// is Open's (see verify).
	walk, err := walkPages(f, path, 1)
	if err != nil {
		return nil, nil, err
	}
	return fi, walk, nil
}

// checkFile validates the bbolt structure of f that bbolt relies on
// before its first read: both meta pages and the file size.
func checkFile(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("boltbackend: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return corruptf(path, "not a regular file")
	}
	size := uint64(fi.Size())
	if size == 0 {
		return corruptf(path, "empty file, not a bbolt store")
	}
	read := func(off uint64) []byte {
		buf := make([]byte, pageHeaderSize+metaSize)
		n, _ := f.ReadAt(buf, int64(off))
		return buf[:n]
	}
	m0, err0 := parseMeta(read(0))
	var m1 metaPage
	var err1 error
	if err0 == nil {
		m1, err1 = parseMeta(read(m0.pageSize))
	} else {
		// Find meta page 1 at every page size bbolt allows, as bbolt does.
		err1 = errNoMagic
		for ps := uint64(minPageSize); ps <= maxPageSize && ps < size; ps <<= 1 {
			if m, err := parseMeta(read(ps)); err == nil && m.pageSize == ps {
				m1, err1 = m, nil
				break
			} else if !errors.Is(err, errNoMagic) && !errors.Is(err, io.ErrUnexpectedEOF) {
				err1 = err
			}
		}
	}
	notBolt := func(err error) bool { return errors.Is(err, errNoMagic) || errors.Is(err, io.ErrUnexpectedEOF) }
	switch {
	case notBolt(err0) && notBolt(err1):
		return corruptf(path, "not a bbolt store")
	case err0 == nil && errors.Is(err1, io.ErrUnexpectedEOF):
		return corruptf(path, "file is truncated: %d bytes, shorter than its two meta pages", size)
	case err0 != nil && err1 != nil:
		return corruptf(path, "both meta pages are damaged (page 0: %v; page 1: %v)", err0, err1)
	case err0 != nil:
		// A crash cannot tear a meta page (it lies within the first
		// sector of its page), so a damaged one means outside damage, and
		// the newest commit may be lost with it: refuse rather than fall
		// back silently as bbolt would.
		return corruptf(path, "meta page 0 is damaged (%v); page 1 is intact", err0)
	case err1 != nil:
		return corruptf(path, "meta page 1 is damaged (%v); page 0 is intact", err1)
	case m0.pageSize != m1.pageSize:
		return corruptf(path, "meta pages disagree on the page size (%d, %d)", m0.pageSize, m1.pageSize)
	}
	metas := []metaPage{m0, m1} // newest first: the one bbolt will use
	if m1.txid > m0.txid {
		metas[0], metas[1] = m1, m0
	}
	for _, m := range metas {
		i := m.txid % 2 // meta page i holds the transactions of parity i
		switch {
		case m.pgid < 2 || m.pgid > size/m.pageSize:
			return corruptf(path, "file is truncated: %d bytes, but meta page %d says %d pages of %d bytes are in use", size, i, m.pgid, m.pageSize)
		case m.root < 2 || m.root >= m.pgid:
			return corruptf(path, "meta page %d: root page %d outside the %d pages in use", i, m.root, m.pgid)
		case m.freelist == noFreelist:
			return corruptf(path, "meta page %d: no freelist (not written by this package)", i)
		case m.freelist < 2 || m.freelist >= m.pgid:
			return corruptf(path, "meta page %d: freelist page %d outside the %d pages in use", i, m.freelist, m.pgid)
		}
	}
	return nil
}

// catchFaults runs fn, which reads or writes bbolt data and calls no caller
// code, turning a panic, or a memory fault while touching the mapped file,
// into a *faultError (matching state.ErrCorrupt): a damaged page that
// points outside the file then fails the operation instead of killing the
// process. (bbolt reports damage it detects by panicking.)
func catchFaults(path, doing string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = &faultError{path: path, doing: doing, v: r}
		}
	}()
	return fn()
}

// faultError reports a panic or memory fault inside bbolt, which only a
// damaged file causes. It matches state.ErrCorrupt.
type faultError struct {
	path, doing string
	v           any
}

func (e *faultError) Error() string {
	return fmt.Sprintf("boltbackend: %s: %s: bbolt failed on damaged data: %v", e.path, e.doing, e.v)
}

func (e *faultError) Unwrap() error { return state.ErrCorrupt }
