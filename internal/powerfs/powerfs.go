package powerfs

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Options configure Mount. The zero value (or nil) throws away every
// unsynced change at a crash.
type Options struct {
	// Torn makes Crash keep part of the unsynced writes and truncates of
	// each file that the backing directory holds, chosen with Seed: none,
	// a prefix (the last write of which may be cut at a 512-byte
	// boundary), or an arbitrary subset. Without it a crash keeps none.
	Torn bool
	// Seed seeds the choices of Torn; a mount with the same seed and the
	// same operations crashes the same way.
	Seed uint64
}

// Stats counts what went through a mount.
type Stats struct {
	Writes     int   // write requests
	WriteBytes int64 // bytes written
	FileSyncs  int   // fsync/fdatasync of files
	DirSyncs   int   // fsync of directories
}

// Report says what a Crash threw away, and what it kept of it.
type Report struct {
	Stats
	// Files is the number of files with unsynced data or size; Dirs the
	// number of directories with unsynced entries.
	Files, Dirs int
	// Ops is the number of unsynced writes and truncates (counted with
	// Options.Torn only); Kept how many of them the crash kept.
	Ops, Kept int
	// Torn is the number of writes the crash kept only a prefix of.
	Torn int
}

func (r Report) String() string {
	s := fmt.Sprintf("lost the unsynced changes of %d files and %d directories", r.Files, r.Dirs)
	if r.Ops > 0 {
		s += fmt.Sprintf("; kept %d of %d unsynced writes and truncates (%d torn)", r.Kept, r.Ops, r.Torn)
	}
	return s + fmt.Sprintf(" [%d writes, %d bytes, %d file syncs, %d directory syncs]", r.Writes, r.WriteBytes, r.FileSyncs, r.DirSyncs)
}

// FS is a mounted power-loss file system. Its methods may be called
// concurrently with operations on the mount.
type FS struct {
	backing, mountpoint string
	opts                Options

	umu sync.Mutex // guards server, never held with mu
	// server serves the mount; nil once unmounted.
	server *fuse.Server

	mu sync.Mutex // guards everything below and every node
	// down is set by Crash and Unmount: every later operation on the
	// mount fails with EIO, and nothing reaches the backing directory.
	down bool
	// root is the mount's root, the backing directory itself.
	root *node
	// nodes holds every live node by inode number.
	nodes   map[uint64]*node
	nextIno uint64
	tmpSeq  int
	// err is the first failure to write the backing directory.
	err   error
	stats Stats
}

// Mount mounts a power-loss file system over the directory backing at
// mountpoint (an existing directory, not inside backing). Nothing but the
// mount may change backing until Crash or Unmount. It needs the right to
// mount FUSE file systems (root, with /dev/fuse); see Available.
func Mount(backing, mountpoint string, opts *Options) (*FS, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	var err error
	if backing, err = realDir(backing); err != nil {
		return nil, err
	}
	if mountpoint, err = realDir(mountpoint); err != nil {
		return nil, err
	}
	if rel, err := filepath.Rel(backing, mountpoint); err == nil && rel != ".." && !hasDotDot(rel) {
		return nil, fmt.Errorf("powerfs: mount point %s is inside the backing directory %s", mountpoint, backing)
	}
	f := &FS{backing: backing, mountpoint: mountpoint, opts: o, nodes: map[uint64]*node{}}
	fi, err := os.Stat(backing)
	if err != nil {
		return nil, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	f.root = f.newNode(syscall.S_IFDIR, st.Mode, st.Uid, st.Gid) // ino 1, FUSE's root
	if err := f.load(f.root, backing, map[[2]uint64]*node{}); err != nil {
		return nil, err
	}
	sec := time.Second
	server, err := gofs.Mount(mountpoint, &fnode{fs: f, n: f.root}, &gofs.Options{
		MountOptions: fuse.MountOptions{
			DirectMount:       true,
			DirectMountStrict: true, // no fusermount fallback: root mounts it or nobody
			FsName:            "powerfs:" + backing,
			Name:              "powerfs",
			DisableXAttrs:     true,
			// Every change passes through this mount, so the kernel's
			// page cache always matches the volatile state: it need not
			// drop pages when mtime changes, and keeps them across opens.
			ExplicitDataCacheControl: true,
			Options:                  []string{"default_permissions"},
		},
		EntryTimeout: &sec,
		AttrTimeout:  &sec,
		RootStableAttr: &gofs.StableAttr{
			Ino: f.root.ino,
		},
	})
	if err != nil {
		f.closeFiles()
		return nil, fmt.Errorf("powerfs: mount %s: %w", mountpoint, err)
	}
	f.server = server
	return f, nil
}

func realDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

func hasDotDot(rel string) bool {
	return len(rel) >= 3 && rel[:3] == ".."+string(filepath.Separator)
}

// Dir returns the mount point.
func (f *FS) Dir() string { return f.mountpoint }

// Backing returns the backing directory.
func (f *FS) Backing() string { return f.backing }

// Crash is the power cut: from this moment every operation on the mount
// fails with EIO, every change not made durable (see the package
// documentation) is thrown away, except what Options.Torn keeps, and the
// file system is unmounted, waiting (up to a minute) for processes that
// still have files open on it to close them or die. The backing directory
// then holds the durable state only. It returns an error when the backing
// directory could not be written at some point, or the unmount failed.
func (f *FS) Crash() (Report, error) {
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		return Report{}, errors.New("powerfs: already crashed or unmounted")
	}
	f.down = true
	r := Report{Stats: f.stats}
	rng := rand.New(rand.NewPCG(f.opts.Seed, 0x9e3779b97f4a7c15))
	inos := make([]uint64, 0, len(f.nodes))
	for ino := range f.nodes {
		inos = append(inos, ino)
	}
	slices.Sort(inos) // the same choices for the same seed
	for _, ino := range inos {
		n := f.nodes[ino]
		if !n.pending() {
			continue
		}
		if n.isDir() {
			r.Dirs++
			continue
		}
		r.Files++
		if len(n.log) > 0 && len(n.blinks) > 0 {
			r.Ops += len(n.log)
			kept, torn, err := f.tear(n, rng)
			r.Kept += kept
			r.Torn += torn
			if err != nil && f.err == nil {
				f.err = err
			}
		}
	}
	f.closeFiles()
	err := f.err
	f.mu.Unlock()
	if uerr := f.unmount(); err == nil {
		err = uerr
	}
	return r, err
}

// tear applies part of the unsynced log of file n to its backing file, as
// a crash in the middle of writing it back might.
func (f *FS) tear(n *node, rng *rand.Rand) (kept, torn int, err error) {
	bf, err := f.backingFile(n)
	if err != nil || bf == nil {
		return 0, 0, err
	}
	keep := make([]bool, len(n.log))
	tornAt, cut := -1, 0 // a prefix may end with the first cut bytes of write tornAt
	switch rng.IntN(3) {
	case 0: // nothing reached the disk
	case 1: // a prefix, the last write perhaps torn
		k := rng.IntN(len(n.log) + 1)
		for i := range k {
			keep[i] = true
		}
		if k < len(n.log) && len(n.log[k].data) > 512 {
			tornAt, cut = k, (1+rng.IntN((len(n.log[k].data)-1)/512))*512
		}
	default: // any subset
		for i := range keep {
			keep[i] = rng.IntN(2) == 0
		}
	}
	for i, o := range n.log {
		data := o.data
		switch {
		case keep[i]:
		case i == tornAt:
			data = data[:cut]
			torn++
		default:
			continue
		}
		kept++
		if data == nil {
			err = bf.Truncate(o.size)
		} else {
			_, err = bf.WriteAt(data, o.off)
		}
		if err != nil {
			return kept, torn, err
		}
	}
	return kept, torn, nil
}

// Unmount is a clean shutdown: it makes every change durable (as sync(2)
// would), and unmounts the file system like Crash. The backing directory
// then holds everything written through the mount.
func (f *FS) Unmount() error {
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		return errors.New("powerfs: already crashed or unmounted")
	}
	err := f.syncAll()
	f.down = true
	f.closeFiles()
	if err == nil {
		err = f.err
	}
	f.mu.Unlock()
	if uerr := f.unmount(); err == nil {
		err = uerr
	}
	return err
}

// syncAll fsyncs every file, then every directory from the root down.
func (f *FS) syncAll() error {
	inos := make([]uint64, 0, len(f.nodes))
	for ino, n := range f.nodes {
		if n.isFile() {
			inos = append(inos, ino)
		}
	}
	slices.Sort(inos)
	for _, ino := range inos {
		if n := f.nodes[ino]; n != nil && n.pending() {
			if err := f.syncFile(n); err != nil {
				return err
			}
		}
	}
	var walk func(d *node) error
	walk = func(d *node) error {
		if err := f.syncDir(d); err != nil {
			return err
		}
		for _, name := range slices.Sorted(maps.Keys(d.vol)) {
			if c := d.vol[name]; c.isDir() {
				if err := walk(c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(f.root)
}

// closeFiles closes the backing files; f.mu must be held.
func (f *FS) closeFiles() {
	for _, n := range f.nodes {
		if n.bf != nil {
			n.bf.Close()
			n.bf = nil
		}
	}
}

// Close unmounts the file system unless Crash or Unmount did, as a crash
// would (for cleanups: a test that failed half-way). It may be called
// more than once.
func (f *FS) Close() error {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if !down {
		_, err := f.Crash()
		return err
	}
	return f.unmount()
}

// unmount unmounts the file system, retrying while it is busy: a process
// killed at the crash may take a moment to die and close its files.
func (f *FS) unmount() error {
	f.umu.Lock()
	defer f.umu.Unlock()
	if f.server == nil {
		return nil
	}
	deadline := time.Now().Add(time.Minute)
	for {
		err := f.server.Unmount()
		if err == nil {
			f.server.Wait()
			f.server = nil
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("powerfs: unmount %s: %w", f.mountpoint, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fail records the first error writing the backing directory and returns
// EIO for the operation that met it.
func (f *FS) fail(err error) syscall.Errno {
	if f.err == nil {
		f.err = fmt.Errorf("powerfs: backing directory %s: %w", f.backing, err)
	}
	return syscall.EIO
}

var (
	availableOnce sync.Once
	availableErr  error
)

// Available reports whether FUSE file systems can be mounted here, by
// mounting one over an empty directory and unmounting it (once per
// process): nil, or why not (no /dev/fuse, not root, ...).
func Available() error {
	availableOnce.Do(func() {
		dir, err := os.MkdirTemp("", "powerfs-probe-")
		if err != nil {
			availableErr = err
			return
		}
		defer os.RemoveAll(dir)
		backing, mnt := filepath.Join(dir, "backing"), filepath.Join(dir, "mnt")
		for _, d := range []string{backing, mnt} {
			if err := os.Mkdir(d, 0o700); err != nil {
				availableErr = err
				return
			}
		}
		f, err := Mount(backing, mnt, nil)
		if err != nil {
			availableErr = err
			return
		}
		availableErr = f.Unmount()
	})
	return availableErr
}
