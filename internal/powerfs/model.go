package powerfs

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// pageSize is the unit in which unsynced file data is kept.
const pageSize = 4096

// A node is a file, directory or symbolic link of the mount. It has two
// states: the volatile one, which every operation through the mount sees
// and changes, and the durable one, which the backing directory holds
// (or, for files and directories not linked into it yet, FS memory).
// Every field is guarded by FS.mu.
type node struct {
	ino  uint64
	kind uint32 // syscall.S_IFREG, S_IFDIR or S_IFLNK

	// Volatile attributes.
	perm                uint32 // permission bits
	uid, gid            uint32
	atime, mtime, ctime time.Time
	// Durable attributes: applied to the backing file by an fsync.
	dperm      uint32
	duid, dgid uint32

	// References that keep a node alive: entries in volatile directories
	// (vnlink), entries in durable directory views (dnlink, including
	// those not in the backing directory yet), and open file handles.
	vnlink, dnlink, opens int

	// blinks are the entries that name this node in the backing
	// directory: a directory has at most one.
	blinks map[link]struct{}

	// Regular files. The durable content is bf (a file of the backing
	// directory, perhaps no longer linked there) or, when bf is nil and
	// no backing entry names the node, mem (len(mem) == dsize).
	bf    *os.File
	mem   []byte
	dsize int64 // durable size
	// The volatile content: dirty pages over the first valid bytes of
	// the durable content, zeros elsewhere, cut at size.
	size  int64
	valid int64 // ≤ size and ≤ dsize
	dirty map[int64][]byte
	// truncs are the truncates since the last fsync of the file; an fsync
	// of a directory holding the file makes them durable.
	truncs []int64
	// log holds the writes and truncates since the last fsync, in order,
	// for torn writes (only with Options.Torn).
	log []op

	// Directories: the volatile entries and the durable ones.
	vol, dur map[string]*node

	// Symbolic links.
	target string
}

// A link is one directory entry.
type link struct {
	dir  *node
	name string
}

// An op is an unsynced write (data != nil) or truncate (to size) of a file.
type op struct {
	off  int64
	data []byte
	size int64
}

func (n *node) isDir() bool  { return n.kind == syscall.S_IFDIR }
func (n *node) isFile() bool { return n.kind == syscall.S_IFREG }

// newNode registers a new node with the given kind and attributes.
func (f *FS) newNode(kind, perm, uid, gid uint32) *node {
	f.nextIno++
	now := time.Now()
	n := &node{
		ino: f.nextIno, kind: kind,
		perm: perm & 0o7777, uid: uid, gid: gid, dperm: perm & 0o7777, duid: uid, dgid: gid,
		atime: now, mtime: now, ctime: now,
		blinks: map[link]struct{}{},
	}
	switch kind {
	case syscall.S_IFDIR:
		n.vol, n.dur = map[string]*node{}, map[string]*node{}
	case syscall.S_IFREG:
		n.dirty = map[int64][]byte{}
	}
	f.nodes[n.ino] = n
	return n
}

// load builds the tree under d from the backing directory path: at
// mount, the volatile state equals the durable one.
func (f *FS) load(d *node, path string, seen map[[2]uint64]*node) error {
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(path, e.Name())
		if p == f.mountpoint {
			return fmt.Errorf("powerfs: mount point %s is inside the backing directory %s", f.mountpoint, f.backing)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		key := [2]uint64{uint64(st.Dev), st.Ino}
		n := seen[key]
		if n == nil {
			switch fi.Mode().Type() {
			case 0:
				n = f.newNode(syscall.S_IFREG, st.Mode, st.Uid, st.Gid)
				n.dsize, n.size, n.valid = st.Size, st.Size, st.Size
			case os.ModeDir:
				n = f.newNode(syscall.S_IFDIR, st.Mode, st.Uid, st.Gid)
			case os.ModeSymlink:
				n = f.newNode(syscall.S_IFLNK, st.Mode, st.Uid, st.Gid)
				if n.target, err = os.Readlink(p); err != nil {
					return err
				}
			default:
				return fmt.Errorf("powerfs: %s: %v files are not supported", p, fi.Mode().Type())
			}
			n.atime = time.Unix(st.Atim.Unix())
			n.mtime = time.Unix(st.Mtim.Unix())
			n.ctime = time.Unix(st.Ctim.Unix())
			seen[key] = n
			if n.isDir() {
				if err := f.load(n, p, seen); err != nil {
					return err
				}
			}
		}
		d.vol[e.Name()], d.dur[e.Name()] = n, n
		n.vnlink++
		n.dnlink++
		n.blinks[link{d, e.Name()}] = struct{}{}
	}
	return nil
}

// dirPath returns the backing path of directory d, or false when d is
// not in the backing directory (yet).
func (f *FS) dirPath(d *node) (string, bool) {
	if d == f.root {
		return f.backing, true
	}
	for l := range d.blinks {
		p, ok := f.dirPath(l.dir)
		return filepath.Join(p, l.name), ok
	}
	return "", false
}

// blinkPath returns the backing path of one of n's backing entries.
func (f *FS) blinkPath(n *node) (string, bool) {
	for l := range n.blinks {
		if p, ok := f.dirPath(l.dir); ok {
			return filepath.Join(p, l.name), true
		}
	}
	return "", false
}

// backingFile returns the open backing file of file n, opening it through
// one of its backing entries if needed; nil when its durable content is
// in memory.
func (f *FS) backingFile(n *node) (*os.File, error) {
	if n.bf != nil {
		return n.bf, nil
	}
	p, ok := f.blinkPath(n)
	if !ok {
		return nil, nil
	}
	bf, err := os.OpenFile(p, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	n.bf = bf
	return bf, nil
}

// readDurable fills p with the durable content at off that the volatile
// view still shows (the first valid bytes), zeros elsewhere.
func (f *FS) readDurable(n *node, p []byte, off int64) error {
	clear(p)
	limit := min(n.valid, n.dsize)
	if off >= limit {
		return nil
	}
	m := min(int64(len(p)), limit-off)
	bf, err := f.backingFile(n)
	if err != nil {
		return err
	}
	if bf == nil {
		copy(p[:m], n.mem[off:])
		return nil
	}
	if _, err := bf.ReadAt(p[:m], off); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// read returns the volatile content of file n at off, up to len(dest).
func (f *FS) read(n *node, dest []byte, off int64) ([]byte, error) {
	if off >= n.size {
		return dest[:0], nil
	}
	out := dest[:min(int64(len(dest)), n.size-off)]
	end := off + int64(len(out))
	for pos := off; pos < end; {
		pg := pos / pageSize
		if d, ok := n.dirty[pg]; ok {
			k := copy(out[pos-off:], d[pos%pageSize:])
			pos += int64(k)
			continue
		}
		// A run of clean pages comes from the durable content in one read.
		run := (pg + 1) * pageSize
		for run < end {
			if _, ok := n.dirty[run/pageSize]; ok {
				break
			}
			run += pageSize
		}
		run = min(run, end)
		if err := f.readDurable(n, out[pos-off:run-off], pos); err != nil {
			return nil, err
		}
		pos = run
	}
	return out, nil
}

// write changes the volatile content of file n; nothing of it is durable.
func (f *FS) write(n *node, data []byte, off int64) error {
	end := off + int64(len(data))
	for pos := off; pos < end; {
		pg, po := pos/pageSize, pos%pageSize
		d, ok := n.dirty[pg]
		if !ok {
			d = make([]byte, pageSize)
			if po != 0 || end-pos < pageSize {
				if err := f.readDurable(n, d, pg*pageSize); err != nil {
					return err
				}
			}
			n.dirty[pg] = d
		}
		pos += int64(copy(d[po:], data[pos-off:]))
	}
	n.size = max(n.size, end)
	if f.opts.Torn {
		n.log = append(n.log, op{off: off, data: slices.Clone(data)})
	}
	f.stats.Writes++
	f.stats.WriteBytes += int64(len(data))
	return nil
}

// truncate sets the volatile size of file n.
func (f *FS) truncate(n *node, size int64) {
	if size < n.size {
		for pg := range n.dirty {
			if pg*pageSize >= size {
				delete(n.dirty, pg)
			}
		}
		if d, ok := n.dirty[size/pageSize]; ok {
			clear(d[size%pageSize:])
		}
	}
	n.valid = min(n.valid, size)
	n.size = size
	n.truncs = append(n.truncs, size)
	if f.opts.Torn {
		n.log = append(n.log, op{size: size})
	}
}

// syncFile makes the content and attributes of file n durable: fsync.
func (f *FS) syncFile(n *node) error {
	f.stats.FileSyncs++
	bf, err := f.backingFile(n)
	if err != nil {
		return err
	}
	pages := slices.Sorted(maps.Keys(n.dirty))
	if bf != nil {
		if n.valid < n.dsize {
			if err := bf.Truncate(n.valid); err != nil {
				return err
			}
		}
		for _, pg := range pages {
			start := pg * pageSize
			if _, err := bf.WriteAt(n.dirty[pg][:min(pageSize, n.size-start)], start); err != nil {
				return err
			}
		}
		if err := bf.Truncate(n.size); err != nil {
			return err
		}
		if n.dperm != n.perm {
			if err := bf.Chmod(os.FileMode(n.perm).Perm() | unixMode(n.perm)); err != nil {
				return err
			}
		}
		if n.duid != n.uid || n.dgid != n.gid {
			if err := bf.Chown(int(n.uid), int(n.gid)); err != nil {
				return err
			}
		}
	} else {
		mem := make([]byte, n.size)
		copy(mem, n.mem[:min(n.valid, int64(len(n.mem)))])
		for _, pg := range pages {
			copy(mem[pg*pageSize:], n.dirty[pg])
		}
		n.mem = mem
	}
	n.dsize, n.valid = n.size, n.size
	n.dperm, n.duid, n.dgid = n.perm, n.uid, n.gid
	clear(n.dirty)
	n.truncs, n.log = nil, nil
	return nil
}

// unixMode converts the setuid, setgid and sticky bits of perm to
// os.FileMode bits.
func unixMode(perm uint32) os.FileMode {
	var m os.FileMode
	if perm&syscall.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if perm&syscall.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if perm&syscall.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

// syncTruncates makes the truncates of file n since its last fsync
// durable (an fsync of a directory holding it), not its writes.
func (f *FS) syncTruncates(n *node) error {
	bf, err := f.backingFile(n)
	if err != nil {
		return err
	}
	for _, s := range n.truncs {
		if bf != nil {
			if err := bf.Truncate(s); err != nil {
				return err
			}
		} else if s <= int64(len(n.mem)) {
			n.mem = n.mem[:s:s]
		} else {
			n.mem = append(n.mem, make([]byte, s-int64(len(n.mem)))...)
		}
		n.dsize = s
	}
	n.truncs = nil
	return nil
}

// syncDir makes the entries of directory d durable: fsync of a directory.
func (f *FS) syncDir(d *node) error {
	f.stats.DirSyncs++
	for _, name := range slices.Sorted(maps.Keys(d.vol)) {
		if c := d.vol[name]; c.isFile() && len(c.truncs) > 0 {
			if err := f.syncTruncates(c); err != nil {
				return err
			}
		}
	}
	old, cur := d.dur, maps.Clone(d.vol)
	for _, c := range old {
		c.dnlink--
	}
	for _, c := range cur {
		c.dnlink++
	}
	d.dur = cur
	var err error
	if dpath, ok := f.dirPath(d); ok {
		err = f.reconcile(d, dpath, old, cur)
	}
	for _, c := range old {
		f.maybeFree(c)
	}
	return err
}

// reconcile changes the backing directory dpath of d from the entries
// old to the entries cur. New entries are first linked under temporary
// names (so that a file renamed within d can be linked from its old
// name), then the old ones removed, then the new ones renamed into place.
func (f *FS) reconcile(d *node, dpath string, old, cur map[string]*node) error {
	var names []string
	for name := range maps.Keys(old) {
		if cur[name] != old[name] {
			names = append(names, name)
		}
	}
	for name := range maps.Keys(cur) {
		if _, ok := old[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	type placed struct {
		name, tmp string
		n         *node
		fresh     bool // a new directory: its entries follow
	}
	var ps []placed
	moved := map[*node]bool{}
	for _, name := range names {
		n := cur[name]
		if n == nil {
			continue
		}
		tmp := f.tmpName()
		p := placed{name: name, tmp: tmp, n: n}
		if n.isDir() && len(n.blinks) > 0 {
			// A directory renamed within d (renames of directories
			// across directories are refused): move its backing copy.
			for l := range n.blinks {
				if err := os.Rename(filepath.Join(dpath, l.name), filepath.Join(dpath, tmp)); err != nil {
					return err
				}
				delete(n.blinks, l)
			}
			moved[n] = true
		} else {
			var err error
			p.fresh, err = f.place(n, filepath.Join(dpath, tmp))
			if err != nil {
				return err
			}
		}
		n.blinks[link{d, tmp}] = struct{}{}
		ps = append(ps, p)
	}
	for _, name := range names {
		if o := old[name]; o != nil && !moved[o] {
			if err := f.remove(d, filepath.Join(dpath, name), name, o); err != nil {
				return err
			}
		}
	}
	for _, p := range ps {
		if err := os.Rename(filepath.Join(dpath, p.tmp), filepath.Join(dpath, p.name)); err != nil {
			return err
		}
		delete(p.n.blinks, link{d, p.tmp})
		p.n.blinks[link{d, p.name}] = struct{}{}
	}
	for _, p := range ps {
		if p.fresh {
			if err := f.placeEntries(p.n, filepath.Join(dpath, p.name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// tmpName returns a name for an entry being placed in a backing directory.
func (f *FS) tmpName() string {
	f.tmpSeq++
	return fmt.Sprintf(".powerfs-%d-%d", os.Getpid(), f.tmpSeq)
}

// place creates path in the backing directory holding the durable state
// of n: a hard link to another backing entry of n, a copy of its durable
// content, a symbolic link, or an empty directory (fresh: its durable
// entries are to be placed once it has its final name).
func (f *FS) place(n *node, path string) (fresh bool, err error) {
	switch {
	case n.isDir():
		if err := os.Mkdir(path, 0o700); err != nil {
			return false, err
		}
		return true, setAttrs(path, n)
	case n.kind == syscall.S_IFLNK:
		if err := os.Symlink(n.target, path); err != nil {
			return false, err
		}
		return false, os.Lchown(path, int(n.duid), int(n.dgid))
	}
	if from, ok := f.blinkPath(n); ok {
		return false, os.Link(from, path)
	}
	nf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, err
	}
	if n.bf != nil {
		// Durable content in a backing file no longer linked anywhere.
		_, err = io.Copy(nf, io.NewSectionReader(n.bf, 0, n.dsize))
	} else {
		_, err = nf.Write(n.mem)
	}
	if err == nil {
		err = setAttrs(path, n)
	}
	if err != nil {
		nf.Close()
		return false, err
	}
	if n.bf != nil {
		n.bf.Close()
	}
	n.bf, n.mem = nf, nil
	return false, nil
}

// setAttrs gives path the durable mode and owner of n.
func setAttrs(path string, n *node) error {
	if err := os.Chmod(path, os.FileMode(n.dperm).Perm()|unixMode(n.dperm)); err != nil {
		return err
	}
	return os.Lchown(path, int(n.duid), int(n.dgid))
}

// placeEntries places the durable entries of the new directory d, whose
// backing path is dpath.
func (f *FS) placeEntries(d *node, dpath string) error {
	for _, name := range slices.Sorted(maps.Keys(d.dur)) {
		c := d.dur[name]
		p := filepath.Join(dpath, name)
		fresh, err := f.place(c, p)
		if err != nil {
			return err
		}
		c.blinks[link{d, name}] = struct{}{}
		if fresh {
			if err := f.placeEntries(c, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// remove removes the backing entry path (name in d) of o. A file keeps
// its durable content in its open backing file, should it be needed
// again; a directory's durable entries stay in memory.
func (f *FS) remove(d *node, path, name string, o *node) error {
	if o.isDir() {
		if err := f.forget(o); err != nil {
			return err
		}
		delete(o.blinks, link{d, name})
		return os.RemoveAll(path)
	}
	if o.isFile() && len(o.blinks) == 1 {
		if _, err := f.backingFile(o); err != nil {
			return err
		}
	}
	delete(o.blinks, link{d, name})
	return os.Remove(path)
}

// forget drops the backing entries under directory d (about to be removed
// from the backing directory), keeping the files' content open.
func (f *FS) forget(d *node) error {
	for name, c := range d.dur {
		if c.isDir() {
			if err := f.forget(c); err != nil {
				return err
			}
		} else if c.isFile() && len(c.blinks) == 1 {
			if _, err := f.backingFile(c); err != nil {
				return err
			}
		}
		delete(c.blinks, link{d, name})
	}
	return nil
}

// maybeFree drops n once nothing can reach it: no volatile or durable
// entry names it and no handle has it open.
func (f *FS) maybeFree(n *node) {
	if n.vnlink > 0 || n.dnlink > 0 || n.opens > 0 || n == f.root {
		return
	}
	if _, ok := f.nodes[n.ino]; !ok {
		return
	}
	delete(f.nodes, n.ino)
	if n.bf != nil {
		n.bf.Close()
		n.bf = nil
	}
	n.mem, n.dirty, n.log = nil, nil, nil
	if n.isDir() {
		for _, c := range n.dur {
			c.dnlink--
			f.maybeFree(c)
		}
		n.dur = map[string]*node{}
	}
}

// pending reports whether n has changes an fsync of it would make durable.
func (n *node) pending() bool {
	switch {
	case n.isFile():
		return len(n.dirty) > 0 || n.size != n.dsize || n.valid != n.dsize || len(n.truncs) > 0 ||
			n.perm != n.dperm || n.uid != n.duid || n.gid != n.dgid
	case n.isDir():
		return !maps.Equal(n.vol, n.dur)
	}
	return false
}
