package powerfs

import (
	"context"
	"maps"
	"slices"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// fnode is the go-fuse face of a node. go-fuse may make several for one
// node (one per lookup) and keeps the first; all share the node.
type fnode struct {
	gofs.Inode
	fs *FS
	n  *node
}

// handle is an open file; it keeps an unlinked file alive.
type handle struct{ n *node }

var (
	_ gofs.NodeLookuper   = (*fnode)(nil)
	_ gofs.NodeGetattrer  = (*fnode)(nil)
	_ gofs.NodeSetattrer  = (*fnode)(nil)
	_ gofs.NodeOpener     = (*fnode)(nil)
	_ gofs.NodeCreater    = (*fnode)(nil)
	_ gofs.NodeReader     = (*fnode)(nil)
	_ gofs.NodeWriter     = (*fnode)(nil)
	_ gofs.NodeFsyncer    = (*fnode)(nil)
	_ gofs.NodeFlusher    = (*fnode)(nil)
	_ gofs.NodeReleaser   = (*fnode)(nil)
	_ gofs.NodeUnlinker   = (*fnode)(nil)
	_ gofs.NodeRmdirer    = (*fnode)(nil)
	_ gofs.NodeMkdirer    = (*fnode)(nil)
	_ gofs.NodeRenamer    = (*fnode)(nil)
	_ gofs.NodeLinker     = (*fnode)(nil)
	_ gofs.NodeSymlinker  = (*fnode)(nil)
	_ gofs.NodeReadlinker = (*fnode)(nil)
	_ gofs.NodeReaddirer  = (*fnode)(nil)
	_ gofs.NodeStatfser   = (*fnode)(nil)
)

// lock takes the file system's lock, or fails with EIO after a crash.
func (fn *fnode) lock() (*FS, syscall.Errno) {
	f := fn.fs
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		return nil, syscall.EIO
	}
	return f, 0
}

func caller(ctx context.Context) (uid, gid uint32) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return 0, 0
}

// attr describes n as the mount shows it.
func attr(n *node, a *fuse.Attr) {
	a.Ino = n.ino
	a.Mode = n.kind | n.perm
	a.Uid, a.Gid = n.uid, n.gid
	a.Nlink = uint32(n.vnlink)
	switch n.kind {
	case syscall.S_IFREG:
		a.Size = uint64(n.size)
	case syscall.S_IFDIR:
		a.Nlink = 2
		for _, c := range n.vol {
			if c.isDir() {
				a.Nlink++
			}
		}
		a.Size = uint64(len(n.vol))
	case syscall.S_IFLNK:
		a.Size = uint64(len(n.target))
	}
	a.Blksize = pageSize
	a.SetTimes(&n.atime, &n.mtime, &n.ctime)
}

// child returns the go-fuse inode of c, a child of fn, describing it in out.
func (fn *fnode) child(ctx context.Context, c *node, out *fuse.EntryOut) *gofs.Inode {
	attr(c, &out.Attr)
	return fn.NewInode(ctx, &fnode{fs: fn.fs, n: c}, gofs.StableAttr{Mode: c.kind, Ino: c.ino})
}

func (fn *fnode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	f, errno := fn.lock()
	if errno != 0 {
		return nil, errno
	}
	defer f.mu.Unlock()
	c := fn.n.vol[name]
	if c == nil {
		return nil, syscall.ENOENT
	}
	return fn.child(ctx, c, out), 0
}

func (fn *fnode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f, errno := fn.lock()
	if errno != 0 {
		return errno
	}
	defer f.mu.Unlock()
	attr(fn.n, &out.Attr)
	return 0
}

func (fn *fnode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	f, errno := fn.lock()
	if errno != 0 {
		return errno
	}
	defer f.mu.Unlock()
	n := fn.n
	now := time.Now()
	if size, ok := in.GetSize(); ok {
		if !n.isFile() {
			return syscall.EISDIR
		}
		f.truncate(n, int64(size))
		n.mtime = now
	}
	if mode, ok := in.GetMode(); ok {
		n.perm = mode & 0o7777
	}
	if uid, ok := in.GetUID(); ok {
		n.uid = uid
	}
	if gid, ok := in.GetGID(); ok {
		n.gid = gid
	}
	if t, ok := in.GetATime(); ok {
		n.atime = t
	}
	if t, ok := in.GetMTime(); ok {
		n.mtime = t
	}
	n.ctime = now
	attr(n, &out.Attr)
	return 0
}

func (fn *fnode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	f, errno := fn.lock()
	if errno != 0 {
		return nil, 0, errno
	}
	defer f.mu.Unlock()
	n := fn.n
	if !n.isFile() {
		return nil, 0, syscall.EISDIR
	}
	if flags&syscall.O_TRUNC != 0 {
		f.truncate(n, 0)
		n.mtime, n.ctime = time.Now(), time.Now()
	}
	n.opens++
	// Not direct I/O: reads, mmap included, go through the page cache,
	// which the kernel fills from Read, that is from the volatile state.
	return &handle{n}, fuse.FOPEN_KEEP_CACHE, 0
}

// add creates a new entry name in directory fn for a new node c.
func (fn *fnode) add(name string, c *node) {
	fn.n.vol[name] = c
	c.vnlink++
	fn.n.mtime, fn.n.ctime = time.Now(), time.Now()
}

// mknode creates a node of kind, named name in directory fn; init, when
// not nil, finishes it under the lock.
func (fn *fnode) mknode(ctx context.Context, name string, kind, mode uint32, out *fuse.EntryOut, init func(*node)) (*gofs.Inode, syscall.Errno) {
	f, errno := fn.lock()
	if errno != 0 {
		return nil, errno
	}
	defer f.mu.Unlock()
	if fn.n.vol[name] != nil {
		return nil, syscall.EEXIST
	}
	uid, gid := caller(ctx)
	c := f.newNode(kind, mode, uid, gid)
	if init != nil {
		init(c)
	}
	fn.add(name, c)
	return fn.child(ctx, c, out), 0
}

func (fn *fnode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	var h *handle
	in, errno := fn.mknode(ctx, name, syscall.S_IFREG, mode, out, func(c *node) {
		c.opens++
		h = &handle{c}
	})
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return in, h, fuse.FOPEN_KEEP_CACHE, 0
}

func (fn *fnode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return fn.mknode(ctx, name, syscall.S_IFDIR, mode, out, nil)
}

func (fn *fnode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return fn.mknode(ctx, name, syscall.S_IFLNK, 0o777, out, func(c *node) { c.target = target })
}

func (fn *fnode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	f, errno := fn.lock()
	if errno != 0 {
		return nil, errno
	}
	defer f.mu.Unlock()
	if fn.n.kind != syscall.S_IFLNK {
		return nil, syscall.EINVAL
	}
	return []byte(fn.n.target), 0
}

func (fn *fnode) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	f, errno := fn.lock()
	if errno != 0 {
		return nil, errno
	}
	defer f.mu.Unlock()
	t, ok := target.(*fnode)
	if !ok {
		return nil, syscall.EXDEV
	}
	if t.n.isDir() {
		return nil, syscall.EPERM
	}
	if fn.n.vol[name] != nil {
		return nil, syscall.EEXIST
	}
	fn.add(name, t.n)
	t.n.ctime = time.Now()
	return fn.child(ctx, t.n, out), 0
}

func (fn *fnode) Unlink(ctx context.Context, name string) syscall.Errno {
	return fn.remove(name, false)
}

func (fn *fnode) Rmdir(ctx context.Context, name string) syscall.Errno { return fn.remove(name, true) }

// remove removes the volatile entry name from directory fn: a directory
// (rmdir, which must be empty) or anything else (unlink).
func (fn *fnode) remove(name string, dir bool) syscall.Errno {
	f, errno := fn.lock()
	if errno != 0 {
		return errno
	}
	defer f.mu.Unlock()
	c := fn.n.vol[name]
	switch {
	case c == nil:
		return syscall.ENOENT
	case c.isDir() && !dir:
		return syscall.EISDIR
	case !c.isDir() && dir:
		return syscall.ENOTDIR
	case dir && len(c.vol) > 0:
		return syscall.ENOTEMPTY
	}
	delete(fn.n.vol, name)
	c.vnlink--
	now := time.Now()
	fn.n.mtime, fn.n.ctime, c.ctime = now, now, now
	f.maybeFree(c)
	return 0
}

// Rename renames within the volatile state; flags may be RENAME_NOREPLACE
// or RENAME_EXCHANGE. Directories are renamed within their directory
// only (EXDEV otherwise), so that a directory has one durable parent.
func (fn *fnode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	f, errno := fn.lock()
	if errno != 0 {
		return errno
	}
	defer f.mu.Unlock()
	np, ok := newParent.(*fnode)
	if !ok {
		return syscall.EXDEV
	}
	from, to := fn.n, np.n
	src, dst := from.vol[name], to.vol[newName]
	if src == nil {
		return syscall.ENOENT
	}
	if from != to && (src.isDir() || dst != nil && dst.isDir()) {
		return syscall.EXDEV
	}
	now := time.Now()
	const renameNoReplace = 0x1
	switch {
	case flags&gofs.RENAME_EXCHANGE != 0:
		if dst == nil {
			return syscall.ENOENT
		}
		from.vol[name], to.vol[newName] = dst, src
		from.mtime, from.ctime, to.mtime, to.ctime, src.ctime, dst.ctime = now, now, now, now, now, now
		return 0
	case flags&renameNoReplace != 0 && dst != nil:
		return syscall.EEXIST
	case flags&^renameNoReplace != 0:
		return syscall.EINVAL
	case dst == src:
		return 0
	case dst != nil && dst.isDir() && !src.isDir():
		return syscall.EISDIR
	case dst != nil && !dst.isDir() && src.isDir():
		return syscall.ENOTDIR
	case dst != nil && dst.isDir() && len(dst.vol) > 0:
		return syscall.ENOTEMPTY
	}
	delete(from.vol, name)
	to.vol[newName] = src
	from.mtime, from.ctime, to.mtime, to.ctime, src.ctime = now, now, now, now, now
	if dst != nil {
		dst.vnlink--
		f.maybeFree(dst)
	}
	return 0
}

func (fn *fnode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	f, errno := fn.lock()
	if errno != 0 {
		return nil, errno
	}
	defer f.mu.Unlock()
	names := slices.Sorted(maps.Keys(fn.n.vol))
	entries := make([]fuse.DirEntry, len(names))
	for i, name := range names {
		c := fn.n.vol[name]
		entries[i] = fuse.DirEntry{Name: name, Mode: c.kind, Ino: c.ino}
	}
	return gofs.NewListDirStream(entries), 0
}

func (fn *fnode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f, errno := fn.lock()
	if errno != 0 {
		return nil, errno
	}
	defer f.mu.Unlock()
	if !fn.n.isFile() {
		return nil, syscall.EISDIR
	}
	data, err := f.read(fn.n, dest, off)
	if err != nil {
		return nil, f.fail(err)
	}
	return fuse.ReadResultData(data), 0
}

func (fn *fnode) Write(ctx context.Context, fh gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	f, errno := fn.lock()
	if errno != 0 {
		return 0, errno
	}
	defer f.mu.Unlock()
	if !fn.n.isFile() {
		return 0, syscall.EISDIR
	}
	if err := f.write(fn.n, data, off); err != nil {
		return 0, f.fail(err)
	}
	fn.n.mtime, fn.n.ctime = time.Now(), time.Now()
	return uint32(len(data)), 0
}

// Fsync is fsync or fdatasync of a file (its data, size and attributes
// become durable) or fsync of a directory (its entries become durable,
// and the truncates of the files in it).
func (fn *fnode) Fsync(ctx context.Context, fh gofs.FileHandle, flags uint32) syscall.Errno {
	f, errno := fn.lock()
	if errno != 0 {
		return errno
	}
	defer f.mu.Unlock()
	var err error
	switch {
	case fn.n.isFile():
		err = f.syncFile(fn.n)
	case fn.n.isDir():
		err = f.syncDir(fn.n)
	}
	if err != nil {
		return f.fail(err)
	}
	return 0
}

func (fn *fnode) Flush(ctx context.Context, fh gofs.FileHandle) syscall.Errno { return 0 }

func (fn *fnode) Release(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	h, ok := fh.(*handle)
	if !ok {
		return 0
	}
	f := fn.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	h.n.opens--
	if !f.down {
		f.maybeFree(h.n)
	}
	return 0
}

func (fn *fnode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var st syscall.Statfs_t
	if err := syscall.Statfs(fn.fs.backing, &st); err != nil {
		return gofs.ToErrno(err)
	}
	out.FromStatfsT(&st)
	return 0
}
