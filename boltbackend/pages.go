package boltbackend

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// The page structure of a bbolt file, as bbolt writes it (native byte
// order): a 16-byte header (id, flags, count, overflow), then count
// elements of 16 bytes. A branch element holds its key's offset (from the
// element) and size and the child's page id; a leaf element its flags
// (1: the value is a bucket), its key's offset and size and its value's
// size (the value follows the key). A bucket value starts with the
// bucket's root page and sequence; a root of 0 means the bucket's one
// leaf page is inline, right after. A freelist page lists page ids (a
// count of 0xffff means the real count is the first id).
const (
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01
	elementSize      = 16
	bucketHeaderSize = 16
	maxTreeDepth     = 64
)

// pageWalk is what walkPages found: the damage (at most limit problems),
// and, per top-level bucket, how many records and nested buckets it
// holds.
type pageWalk struct {
	problems []string
	more     int
	records  map[string]int
	nested   map[string]int
	// counters are the record counters of the metadata bucket
	// ("hosts", "resources"), as found in its leaf.
	counters map[string]uint64
	// hurt names the top-level buckets whose pages have problems
	// ("" for the root bucket's own pages, outsideTrees for the freelist,
	// lost pages and counters): walking them with bbolt's
	// cursors may fault, or never end (a branch that points back up makes
	// a cycle); incomplete is set when the walk stopped at its limit of
	// problems, before it saw every bucket.
	hurt       map[string]bool
	incomplete bool
}

// outsideTrees is the walker's bucket while it checks the freelist, the
// pages' coverage and the counters: none of it is in a tree that bbolt's
// cursors walk.
const outsideTrees = "\x00"

// sound reports whether bbolt's cursors can walk the top-level bucket
// name safely: the walk saw all of it and the root, and found nothing
// wrong in either.
func (w *pageWalk) sound(name string) bool {
	return w != nil && !w.incomplete && !w.hurt[name] && !w.hurt[""]
}

// damaged returns the first problem, "" when there is none.
func (w *pageWalk) damaged() string {
	if len(w.problems) == 0 {
		return ""
	}
	return w.problems[0]
}

// walker walks the pages of a mapped bbolt file, checking every bound
// before it reads, so that no damage can make it read outside the file.
type walker struct {
	data     []byte
	pageSize uint64
	hwm      uint64 // pages [0, hwm) are in use
	seen     []byte // bitmap of the pages reached
	free     []byte // bitmap of the pages the freelist lists
	limit    int
	out      *pageWalk
	// bucket is the top-level bucket being walked ("" at the root).
	bucket string
	// leaf, when set, gets every record (not a nested bucket) found in a
	// leaf of a top-level bucket that passed its checks.
	leaf func(bucket string, k, v []byte)
	// leafKeys is the keys of the leaf page being checked, reused from
	// page to page.
	leafKeys [][]byte
}

// where names the place of a problem: a bucket, and once its page is
// checked, the page or its inline page. Its text is built only when a
// problem is reported (a walk builds millions of them otherwise).
type where struct {
	name   string // the bucket ("" for the root)
	label  string // when set, names the place instead of a bucket
	id     uint64
	page   bool // id is the bucket's page, checked
	inline bool // the bucket's inline page
}

func (at where) String() string {
	switch {
	case at.label != "":
		return at.label
	case at.inline:
		return "bucket " + bucketName(at.name) + ", inline page"
	case at.page:
		return fmt.Sprintf("bucket %s, page %d", bucketName(at.name), at.id)
	}
	return "bucket " + bucketName(at.name)
}

// walkPages checks the structure of the bbolt file f as of its newest
// meta page (what bbolt reads): every page reachable from the root
// bucket lies below the high-water mark, is a branch or leaf page whose
// header names it, is reached once, and holds elements, keys and values
// within its bounds, keys in order and within the range its parent gives
// it; the freelist page is one, and lists pages below the high-water mark,
// once each, none reachable; every page is the meta, the freelist, free
// or reachable. It reads the file through its own read-only mapping and
// never follows a bound it has not checked; a fault (the file shrank
// under us) is caught by catchFaults. At most limit problems are kept.
func walkPages(f *os.File, path string, limit int) (*pageWalk, error) {
	return walkPagesLeaves(f, path, limit, nil)
}

// walkPagesLeaves is walkPages, calling leaf (when not nil) with every
// record of a top-level bucket that it finds in a sound leaf page (keys
// and values alias the mapping: valid until leaf returns).
func walkPagesLeaves(f *os.File, path string, limit int, leaf func(bucket string, k, v []byte)) (*pageWalk, error) {
	out := &pageWalk{records: map[string]int{}, nested: map[string]int{}, counters: map[string]uint64{}, hurt: map[string]bool{}}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() == 0 || int64(int(fi.Size())) != fi.Size() {
		return nil, corruptf(path, "file of %d bytes", fi.Size())
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("boltbackend: %s: map for checking: %w", path, err)
	}
	defer syscall.Munmap(data)
	err = catchFaults(path, "checking the pages", func() error {
		m, err := newestMeta(data)
		if err != nil {
			return corruptf(path, "%v", err)
		}
		if m.pgid*m.pageSize > uint64(len(data)) {
			return corruptf(path, "file is truncated: %d bytes, but %d pages of %d bytes are in use", len(data), m.pgid, m.pageSize)
		}
		w := &walker{data: data, pageSize: m.pageSize, hwm: m.pgid, limit: limit, out: out, leaf: leaf,
			seen: make([]byte, (m.pgid+7)/8), free: make([]byte, (m.pgid+7)/8)}
		w.mark(w.seen, 0)
		w.mark(w.seen, 1)
		w.tree(m.root, nil, nil, nil, "", 0)
		w.bucket = outsideTrees
		w.freelist(m.freelist)
		w.coverage()
		w.counts()
		out.incomplete = len(out.problems) >= limit
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// newestMeta returns the meta page bbolt uses: the valid one with the
// higher transaction id (probe has refused files where either is damaged).
func newestMeta(data []byte) (metaPage, error) {
	m0, err := parseMeta(data)
	if err != nil {
		return metaPage{}, fmt.Errorf("meta page 0: %v", err)
	}
	if uint64(len(data)) < 2*m0.pageSize {
		return metaPage{}, fmt.Errorf("file is truncated: shorter than its two meta pages")
	}
	m1, err := parseMeta(data[m0.pageSize:])
	if err != nil {
		return metaPage{}, fmt.Errorf("meta page 1: %v", err)
	}
	if m1.txid > m0.txid {
		return m1, nil
	}
	return m0, nil
}

func (w *walker) problem(format string, args ...any) {
	w.out.hurt[w.bucket] = true
	if len(w.out.problems) >= w.limit {
		w.out.more++
		return
	}
	w.out.problems = append(w.out.problems, fmt.Sprintf(format, args...))
}

// full reports whether enough problems were found to stop looking.
func (w *walker) full() bool { return len(w.out.problems) >= w.limit }

func (w *walker) mark(bits []byte, id uint64) bool {
	was := bits[id/8]&(1<<(id%8)) != 0
	bits[id/8] |= 1 << (id % 8)
	return was
}

func (w *walker) marked(bits []byte, id uint64) bool { return bits[id/8]&(1<<(id%8)) != 0 }

var ne = binary.NativeEndian

// page returns page id and its overflow pages, after checking them.
func (w *walker) page(id uint64, what where) ([]byte, bool) {
	if id < 2 || id >= w.hwm {
		w.problem("%s: page %d is outside the %d pages in use", what, id, w.hwm)
		return nil, false
	}
	start := id * w.pageSize
	hdr := w.data[start : start+pageHeaderSize]
	if allZero(hdr) {
		w.problem("%s: page %d is zeroed", what, id)
		return nil, false
	}
	overflow := uint64(ne.Uint32(hdr[12:]))
	if overflow >= w.hwm-id {
		w.problem("%s: page %d has %d overflow pages, beyond the %d pages in use", what, id, overflow, w.hwm)
		return nil, false
	}
	if got := ne.Uint64(hdr[0:]); got != id {
		w.problem("%s: page %d says it is page %d (overwritten?)", what, id, got)
		return nil, false
	}
	return w.data[start : start+(1+overflow)*w.pageSize], true
}

// tree walks the tree of the bucket named name (nested under parent
// buckets) rooted at page id, or, when inline is not nil, its inline
// page. lo and hi bound the keys the page may hold (hi excluded; nil:
// none). It counts the top-level buckets' records.
func (w *walker) tree(id uint64, inline, lo, hi []byte, name string, depth int) {
	if w.full() {
		return
	}
	what := where{name: name, id: id}
	top := name != "" && !strings.Contains(name, "/") // a bucket of the layout, whose records are counted
	if top {
		w.out.records[name] += 0
		prev := w.bucket
		w.bucket = name
		defer func() { w.bucket = prev }()
	}
	if depth > maxTreeDepth {
		w.problem("%s: tree deeper than %d levels (a cycle?)", what, maxTreeDepth)
		return
	}
	p := inline
	if p == nil {
		var ok bool
		if p, ok = w.page(id, what); !ok {
			return
		}
		for i := uint64(0); i < uint64(len(p))/w.pageSize; i++ {
			if w.mark(w.seen, id+i) {
				w.problem("%s: page %d is reached twice (a branch points at a page that is in use elsewhere)", what, id+i)
				return
			}
		}
		what.page = true
	} else {
		what.inline = true
		if len(p) < pageHeaderSize {
			w.problem("%s: %d bytes, shorter than a page header", what, len(p))
			return
		}
	}
	flags := ne.Uint16(p[8:])
	count := int(ne.Uint16(p[10:]))
	if pageHeaderSize+count*elementSize > len(p) {
		w.problem("%s: %d elements do not fit in %d bytes", what, count, len(p))
		return
	}
	switch {
	case flags&branchPageFlag != 0 && inline == nil && flags&^branchPageFlag == 0:
		if count == 0 {
			w.problem("%s: a branch page without elements", what)
			return
		}
		keys := make([][]byte, count)
		children := make([]uint64, count)
		for i := range count {
			e := pageHeaderSize + i*elementSize
			pos, ksize := int(ne.Uint32(p[e:])), int(ne.Uint32(p[e+4:]))
			if pos > len(p)-e || ksize > len(p)-e-pos {
				w.problem("%s: element %d: key (offset %d, %d bytes) outside the page", what, i, pos, ksize)
				return
			}
			keys[i] = p[e+pos : e+pos+ksize]
			children[i] = ne.Uint64(p[e+8:])
		}
		if !w.ordered(keys, lo, hi, what) {
			return
		}
		for i, child := range children {
			clo, chi := keys[i], hi
			if i == 0 {
				clo = lo
			}
			if i+1 < count {
				chi = keys[i+1]
			}
			w.tree(child, nil, clo, chi, name, depth+1)
			if w.full() {
				return
			}
		}
	case flags&leafPageFlag != 0 && flags&^leafPageFlag == 0:
		keys := w.leafKeys[:0]
		records := 0
		type sub struct {
			name   string
			root   uint64
			inline []byte
		}
		var subs []sub
		for i := range count {
			e := pageHeaderSize + i*elementSize
			eflags := ne.Uint32(p[e:])
			pos, ksize, vsize := int(ne.Uint32(p[e+4:])), int(ne.Uint32(p[e+8:])), int(ne.Uint32(p[e+12:]))
			if pos > len(p)-e || ksize > len(p)-e-pos || vsize > len(p)-e-pos-ksize {
				w.problem("%s: element %d: key and value (offset %d, %d+%d bytes) outside the page", what, i, pos, ksize, vsize)
				return
			}
			k := p[e+pos : e+pos+ksize]
			keys = append(keys, k)
			if eflags&bucketLeafFlag == 0 {
				records++
				if top && w.leaf != nil {
					w.leaf(name, k, p[e+pos+ksize:e+pos+ksize+vsize])
				}
				if name == string(bucketMetadata) && (string(k) == string(keyHosts) || string(k) == string(keyResources)) && vsize == 8 {
					w.out.counters[string(k)] = binary.BigEndian.Uint64(p[e+pos+ksize:])
				}
				continue
			}
			if top {
				w.out.nested[name]++
			}
			v := p[e+pos+ksize : e+pos+ksize+vsize]
			if len(v) < bucketHeaderSize {
				w.problem("%s: element %d: bucket %q has a value of %d bytes", what, i, k, len(v))
				return
			}
			s := sub{name: subName(name, k), root: ne.Uint64(v)}
			if s.root == 0 {
				s.inline = v[bucketHeaderSize:]
			}
			subs = append(subs, s)
		}
		w.leafKeys = keys
		if top {
			w.out.records[name] += records
		}
		if !w.ordered(keys, lo, hi, what) {
			return
		}
		for _, s := range subs {
			w.tree(s.root, s.inline, nil, nil, s.name, depth+1)
			if w.full() {
				return
			}
		}
	default:
		w.problem("%s: flags 0x%04x: not a branch or leaf page (overwritten or zeroed?)", what, flags)
	}
}

// ordered checks that keys increase strictly and lie in [lo, hi): once
// they increase, that is their first's and their last's bounds.
func (w *walker) ordered(keys [][]byte, lo, hi []byte, what where) bool {
	for i := 1; i < len(keys); i++ {
		if bytes.Compare(keys[i-1], keys[i]) >= 0 {
			w.problem("%s: keys out of order (%q before %q)", what, shortKey(string(keys[i-1])), shortKey(string(keys[i])))
			return false
		}
	}
	if len(keys) == 0 {
		return true
	}
	var out []byte
	switch first, last := keys[0], keys[len(keys)-1]; {
	case lo != nil && bytes.Compare(first, lo) < 0:
		out = first
	case hi != nil && bytes.Compare(last, hi) >= 0:
		out = last
	default:
		return true
	}
	w.problem("%s: key %q outside the range its parent branch gives the page (a branch points at the wrong page)", what, shortKey(string(out)))
	return false
}

// freelist checks the freelist page id and the pages it lists.
func (w *walker) freelist(id uint64) {
	what := where{label: "freelist"}
	p, ok := w.page(id, what)
	if !ok {
		return
	}
	if flags := ne.Uint16(p[8:]); flags != freelistPageFlag {
		w.problem("%s: page %d has flags 0x%04x, not a freelist page (zeroed or overwritten)", what, id, flags)
		return
	}
	for i := uint64(0); i < uint64(len(p))/w.pageSize; i++ {
		if w.mark(w.seen, id+i) {
			w.problem("%s: page %d is also in use by a bucket", what, id+i)
			return
		}
	}
	count, at := uint64(ne.Uint16(p[10:])), uint64(pageHeaderSize)
	if count == 0xffff {
		if len(p) < pageHeaderSize+8 {
			w.problem("%s: page %d: truncated count", what, id)
			return
		}
		count, at = ne.Uint64(p[pageHeaderSize:]), pageHeaderSize+8
	}
	if count > (uint64(len(p))-at)/8 {
		w.problem("%s: page %d lists %d pages, more than it holds", what, id, count)
		return
	}
	for i := range count {
		fid := ne.Uint64(p[at+8*i:])
		switch {
		case fid < 2 || fid >= w.hwm:
			w.problem("%s: lists page %d, outside the %d pages in use", what, fid, w.hwm)
		case w.mark(w.free, fid):
			w.problem("%s: lists page %d twice", what, fid)
		case w.marked(w.seen, fid):
			w.problem("%s: lists page %d, which is in use (a write would overwrite live data)", what, fid)
		}
		if w.full() {
			return
		}
	}
}

// coverage checks that every page is in use or free.
func (w *walker) coverage() {
	if w.full() {
		return
	}
	var leaked []uint64
	n := 0
	for id := uint64(2); id < w.hwm; id++ {
		if !w.marked(w.seen, id) && !w.marked(w.free, id) {
			if n++; len(leaked) < 5 {
				leaked = append(leaked, id)
			}
		}
	}
	if n > 0 {
		w.problem("%d pages are neither in use nor free (the first: %v)", n, leaked)
	}
}

// counts checks that each record bucket holds as many records as the
// metadata's counter says, and no nested bucket: a leaf whose element
// count was lowered, or a branch pointing at the wrong page, makes records
// vanish or appear twice while every page looks sound.
func (w *walker) counts() {
	if w.full() {
		return
	}
	for _, c := range []struct{ bucket, counter []byte }{
		{bucketHosts, keyHosts}, {bucketResources, keyResources}, {bucketByType, keyResources},
	} {
		want, ok := w.out.counters[string(c.counter)]
		got, present := w.out.records[string(c.bucket)]
		if !ok || !present {
			continue // verify reports a missing bucket or counter
		}
		if uint64(got) != want || w.out.nested[string(c.bucket)] > 0 {
			w.problem("bucket %q holds %d records (and %d nested buckets), but the metadata's counter says %d",
				c.bucket, got, w.out.nested[string(c.bucket)], want)
			return
		}
	}
}

// The names of nested buckets, for messages and counts: "hosts", or
// "hosts/x" for a bucket x nested in it.
func subName(parent string, k []byte) string {
	if parent == "" {
		return string(k)
	}
	return parent + "/" + string(k)
}

func bucketName(name string) string {
	if name == "" {
		return "root"
	}
	return fmt.Sprintf("%q", name)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func shortKey(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
