package powerfs_test

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/go-ftl2/ftlstate/internal/powerfs"
	"github.com/go-ftl2/ftlstate/internal/testfs"
)

// Each test builds a backing directory (the durable state before the
// mount), mounts powerfs over it, works through the mount with real system
// calls, crashes, and reads the backing directory: the state a disk would
// hold after the power cut.

// backingWith returns a new backing directory holding files (name: content;
// a name ending in "/" is a directory).
func backingWith(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range slices.Sorted(maps.Keys(files)) {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			must(t, os.MkdirAll(p, 0o755))
			continue
		}
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(files[name]), 0o644))
	}
	return dir
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tree lists the backing directory: file name: content, "dir/" for a
// directory, "name -> target" for a symbolic link.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	must(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case rel == ".":
		case fi.IsDir():
			out[rel+"/"] = ""
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "-> " + target
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(data)
		}
		return nil
	}))
	return out
}

func wantTree(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	got := tree(t, dir)
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: missing, want %q", k, want[k])
		} else if g != want[k] {
			t.Errorf("%s = %q, want %q", k, g, want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			t.Errorf("%s = %q: should not exist", k, got[k])
		}
	}
}

func crash(t *testing.T, fs *powerfs.FS) powerfs.Report {
	t.Helper()
	r, err := fs.Crash()
	if err != nil {
		t.Fatalf("Crash: %v", err)
	}
	t.Logf("crash: %v", r)
	return r
}

// write writes data at off into the file at path (created if needed),
// without syncing it.
func write(t *testing.T, path string, off int64, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	_, err = f.WriteAt([]byte(data), off)
	must(t, err)
	must(t, f.Close())
}

func fsync(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	must(t, f.Sync())
	must(t, f.Close())
}

func fdatasync(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	must(t, syscall.Fdatasync(int(f.Fd())))
	must(t, f.Close())
}

func readMount(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	return string(data)
}

func TestFileData_LostWithoutFsync(t *testing.T) {
	backing := backingWith(t, map[string]string{"f": "old content"})
	fs := testfs.PowerFS(t, backing, nil)
	p := filepath.Join(fs.Dir(), "f")
	write(t, p, 0, "new")
	write(t, p, 20, "tail")
	if got, want := readMount(t, p), "new content\x00\x00\x00\x00\x00\x00\x00\x00\x00tail"; got != want {
		t.Fatalf("through the mount: %q, want %q", got, want)
	}
	wantTree(t, backing, map[string]string{"f": "old content"}) // nothing reached the backing
	r := crash(t, fs)
	wantTree(t, backing, map[string]string{"f": "old content"})
	if r.Files != 1 || r.Dirs != 0 {
		t.Errorf("report %+v: want 1 file and no directory with unsynced changes", r)
	}
}

func TestFileData_DurableOnFsync(t *testing.T) {
	for _, sync := range []struct {
		name string
		fn   func(*testing.T, string)
	}{{"fsync", fsync}, {"fdatasync", fdatasync}} {
		t.Run(sync.name, func(t *testing.T) {
			backing := backingWith(t, map[string]string{"f": "old content", "g": "other"})
			fs := testfs.PowerFS(t, backing, nil)
			p := filepath.Join(fs.Dir(), "f")
			write(t, p, 0, "new")
			write(t, p, 20, "tail")
			write(t, filepath.Join(fs.Dir(), "g"), 0, "OTHER")
			sync.fn(t, p)
			want := "new content\x00\x00\x00\x00\x00\x00\x00\x00\x00tail"
			wantTree(t, backing, map[string]string{"f": want, "g": "other"}) // durable at once
			write(t, p, 0, "lost")
			crash(t, fs)
			// g was not synced: the fsync of f made nothing else durable.
			wantTree(t, backing, map[string]string{"f": want, "g": "other"})
		})
	}
}

func TestFileData_SyncedFileOpenedAgain(t *testing.T) {
	// Writes through one descriptor, fsync through another: fsync is of
	// the file, not of the descriptor.
	backing := backingWith(t, nil)
	fs := testfs.PowerFS(t, backing, nil)
	p := filepath.Join(fs.Dir(), "f")
	w, err := os.Create(p)
	must(t, err)
	defer w.Close()
	must(t, syncDir(fs.Dir()))
	_, err = w.Write([]byte("written by w"))
	must(t, err)
	fsync(t, p)
	must(t, w.Close())
	crash(t, fs)
	wantTree(t, backing, map[string]string{"f": "written by w"})
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func TestCreate_DurableOnDirFsync(t *testing.T) {
	backing := backingWith(t, nil)
	fs := testfs.PowerFS(t, backing, nil)
	write(t, filepath.Join(fs.Dir(), "synced"), 0, "data")
	fsync(t, filepath.Join(fs.Dir(), "synced"))
	write(t, filepath.Join(fs.Dir(), "empty"), 0, "data never synced")
	must(t, syncDir(fs.Dir()))
	wantTree(t, backing, map[string]string{"synced": "data", "empty": ""})
	crash(t, fs)
	// The entry of "empty" is durable, its data is not.
	wantTree(t, backing, map[string]string{"synced": "data", "empty": ""})
}

func TestCreate_FileFsyncIsNotEnough(t *testing.T) {
	backing := backingWith(t, map[string]string{"old": "x"})
	fs := testfs.PowerFS(t, backing, nil)
	p := filepath.Join(fs.Dir(), "new")
	write(t, p, 0, "data")
	fsync(t, p)
	must(t, os.Mkdir(filepath.Join(fs.Dir(), "dir"), 0o755))
	r := crash(t, fs)
	wantTree(t, backing, map[string]string{"old": "x"})
	if r.Dirs != 1 {
		t.Errorf("report %+v: want 1 directory with unsynced entries", r)
	}
}

func TestRename_DurableOnDirFsync(t *testing.T) {
	for _, synced := range []bool{false, true} {
		t.Run(fmt.Sprint("dirsync=", synced), func(t *testing.T) {
			backing := backingWith(t, map[string]string{"a": "A", "b": "B"})
			fs := testfs.PowerFS(t, backing, nil)
			must(t, os.Rename(filepath.Join(fs.Dir(), "a"), filepath.Join(fs.Dir(), "c")))
			must(t, os.Rename(filepath.Join(fs.Dir(), "b"), filepath.Join(fs.Dir(), "a")))
			if synced {
				must(t, syncDir(fs.Dir()))
			}
			crash(t, fs)
			if synced {
				wantTree(t, backing, map[string]string{"a": "B", "c": "A"})
			} else {
				wantTree(t, backing, map[string]string{"a": "A", "b": "B"})
			}
		})
	}
}

func TestRename_AtomicReplace(t *testing.T) {
	// The pattern of filebackend and atomicfile: temp file, write, fsync,
	// rename over the target, fsync the directory. Each step left out
	// loses the new content.
	steps := []string{"fsync", "rename", "dirsync"}
	for skip := -1; skip < len(steps); skip++ {
		name := "all steps"
		if skip >= 0 {
			name = "without " + steps[skip]
		}
		t.Run(name, func(t *testing.T) {
			backing := backingWith(t, map[string]string{"state.json": "old"})
			fs := testfs.PowerFS(t, backing, nil)
			tmp, target := filepath.Join(fs.Dir(), "state.json.tmp-1"), filepath.Join(fs.Dir(), "state.json")
			write(t, tmp, 0, "new state")
			if skip != 0 {
				fsync(t, tmp)
			}
			if skip != 1 {
				must(t, os.Rename(tmp, target))
			}
			if skip != 2 {
				must(t, syncDir(fs.Dir()))
			}
			crash(t, fs)
			switch skip {
			case -1:
				wantTree(t, backing, map[string]string{"state.json": "new state"})
			case 0: // renamed durably, data never synced: empty
				wantTree(t, backing, map[string]string{"state.json": ""})
			case 1: // the temp file is durable, the target unchanged
				wantTree(t, backing, map[string]string{"state.json": "old", "state.json.tmp-1": "new state"})
			case 2:
				wantTree(t, backing, map[string]string{"state.json": "old"})
			}
		})
	}
}

func TestRename_AcrossDirectories(t *testing.T) {
	for _, sync := range []string{"none", "from", "to", "both"} {
		t.Run(sync, func(t *testing.T) {
			backing := backingWith(t, map[string]string{"a/f": "F", "b/": ""})
			fs := testfs.PowerFS(t, backing, nil)
			must(t, os.Rename(filepath.Join(fs.Dir(), "a/f"), filepath.Join(fs.Dir(), "b/g")))
			if sync == "from" || sync == "both" {
				must(t, syncDir(filepath.Join(fs.Dir(), "a")))
			}
			if sync == "to" || sync == "both" {
				must(t, syncDir(filepath.Join(fs.Dir(), "b")))
			}
			crash(t, fs)
			want := map[string]string{"a/": "", "b/": ""}
			if sync == "none" || sync == "to" {
				want["a/f"] = "F"
			}
			if sync == "to" || sync == "both" {
				want["b/g"] = "F"
			}
			wantTree(t, backing, want)
		})
	}
}

func TestRename_DirectoryWithinItsParent(t *testing.T) {
	backing := backingWith(t, map[string]string{"d/f": "F", "d/sub/g": "G"})
	fs := testfs.PowerFS(t, backing, nil)
	must(t, os.Rename(filepath.Join(fs.Dir(), "d"), filepath.Join(fs.Dir(), "e")))
	write(t, filepath.Join(fs.Dir(), "e/sub/g"), 1, "g")
	fsync(t, filepath.Join(fs.Dir(), "e/sub/g"))
	must(t, syncDir(fs.Dir()))
	if err := os.Mkdir(filepath.Join(fs.Dir(), "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(fs.Dir(), "e/sub"), filepath.Join(fs.Dir(), "x/sub")); !errorsIs(err, syscall.EXDEV) {
		t.Errorf("rename of a directory to another directory: %v, want EXDEV", err)
	}
	crash(t, fs)
	wantTree(t, backing, map[string]string{"e/": "", "e/f": "F", "e/sub/": "", "e/sub/g": "Gg"})
}

func errorsIs(err error, errno syscall.Errno) bool {
	var e syscall.Errno
	for err != nil {
		if x, ok := err.(syscall.Errno); ok {
			e = x
			break
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			break
		}
		err = u.Unwrap()
	}
	return e == errno
}

func TestUnlink_DurableOnDirFsync(t *testing.T) {
	for _, synced := range []bool{false, true} {
		t.Run(fmt.Sprint("dirsync=", synced), func(t *testing.T) {
			backing := backingWith(t, map[string]string{"a": "A", "b": "B"})
			fs := testfs.PowerFS(t, backing, nil)
			must(t, os.Remove(filepath.Join(fs.Dir(), "a")))
			if synced {
				must(t, syncDir(fs.Dir()))
			}
			crash(t, fs)
			if synced {
				wantTree(t, backing, map[string]string{"b": "B"})
			} else {
				wantTree(t, backing, map[string]string{"a": "A", "b": "B"})
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		sync string
		want string
	}{
		{"none", "0123456789"},
		{"file", "012xy"},
		{"dir", "012"}, // the truncate, not the write after it
	} {
		t.Run(tc.sync, func(t *testing.T) {
			backing := backingWith(t, map[string]string{"f": "0123456789"})
			fs := testfs.PowerFS(t, backing, nil)
			p := filepath.Join(fs.Dir(), "f")
			must(t, os.Truncate(p, 3))
			write(t, p, 3, "xy")
			if got := readMount(t, p); got != "012xy" {
				t.Fatalf("through the mount: %q", got)
			}
			switch tc.sync {
			case "file":
				fsync(t, p)
			case "dir":
				must(t, syncDir(fs.Dir()))
			}
			crash(t, fs)
			wantTree(t, backing, map[string]string{"f": tc.want})
		})
	}
}

func TestTruncate_OTrunc(t *testing.T) {
	backing := backingWith(t, map[string]string{"f": "old old old"})
	fs := testfs.PowerFS(t, backing, nil)
	p := filepath.Join(fs.Dir(), "f")
	must(t, os.WriteFile(p, []byte("new"), 0o644)) // O_TRUNC, no fsync: ext4's empty-file bug
	crash(t, fs)
	wantTree(t, backing, map[string]string{"f": "old old old"})
}

func TestTruncate_GrowThenWrite(t *testing.T) {
	// bbolt's growth: ftruncate to a larger size, fsync, write pages.
	backing := backingWith(t, map[string]string{"db": "head"})
	fs := testfs.PowerFS(t, backing, nil)
	p := filepath.Join(fs.Dir(), "db")
	must(t, os.Truncate(p, 3*4096))
	fsync(t, p)
	write(t, p, 4096+10, "page two")
	if got := readMount(t, p); len(got) != 3*4096 || got[:4] != "head" || got[4096+10:4096+18] != "page two" || strings.Trim(got[4:4096+10], "\x00") != "" {
		t.Fatalf("through the mount: %d bytes", len(got))
	}
	crash(t, fs)
	got := tree(t, backing)["db"]
	if want := "head" + strings.Repeat("\x00", 3*4096-4); got != want {
		t.Fatalf("after the crash: %d bytes, want the synced size %d, zeros after head", len(got), len(want))
	}
}

func TestLink_DurableOnDirFsync(t *testing.T) {
	backing := backingWith(t, map[string]string{"a": "A"})
	fs := testfs.PowerFS(t, backing, nil)
	must(t, os.Link(filepath.Join(fs.Dir(), "a"), filepath.Join(fs.Dir(), "b")))
	must(t, os.Link(filepath.Join(fs.Dir(), "a"), filepath.Join(fs.Dir(), "c")))
	must(t, syncDir(fs.Dir()))
	must(t, os.Remove(filepath.Join(fs.Dir(), "c")))
	write(t, filepath.Join(fs.Dir(), "b"), 0, "B")
	fsync(t, filepath.Join(fs.Dir(), "a"))
	crash(t, fs)
	wantTree(t, backing, map[string]string{"a": "B", "b": "B", "c": "B"})
	fa, err := os.Stat(filepath.Join(backing, "a"))
	must(t, err)
	fb, err := os.Stat(filepath.Join(backing, "b"))
	must(t, err)
	if !os.SameFile(fa, fb) {
		t.Error("a and b are not one file in the backing directory")
	}
}

func TestMkdir_NeedsParentFsync(t *testing.T) {
	for _, synced := range []bool{false, true} {
		t.Run(fmt.Sprint("parent synced=", synced), func(t *testing.T) {
			backing := backingWith(t, nil)
			fs := testfs.PowerFS(t, backing, nil)
			d := filepath.Join(fs.Dir(), "d")
			must(t, os.Mkdir(d, 0o750))
			must(t, os.Mkdir(filepath.Join(d, "sub"), 0o755))
			write(t, filepath.Join(d, "sub", "f"), 0, "F")
			fsync(t, filepath.Join(d, "sub", "f"))
			must(t, syncDir(filepath.Join(d, "sub")))
			must(t, syncDir(d))
			write(t, filepath.Join(d, "unsynced"), 0, "U")
			if synced {
				must(t, syncDir(fs.Dir()))
			}
			crash(t, fs)
			if !synced {
				wantTree(t, backing, map[string]string{})
				return
			}
			wantTree(t, backing, map[string]string{"d/": "", "d/sub/": "", "d/sub/f": "F"})
			fi, err := os.Stat(filepath.Join(backing, "d"))
			must(t, err)
			if fi.Mode().Perm() != 0o750 {
				t.Errorf("d has mode %v, want 0750", fi.Mode().Perm())
			}
		})
	}
}

func TestRmdir_DurableOnParentFsync(t *testing.T) {
	backing := backingWith(t, map[string]string{"d/f": "F", "keep": "K"})
	fs := testfs.PowerFS(t, backing, nil)
	must(t, os.Link(filepath.Join(fs.Dir(), "d/f"), filepath.Join(fs.Dir(), "f2")))
	must(t, syncDir(fs.Dir())) // f2 is durable, with d/f
	must(t, os.Remove(filepath.Join(fs.Dir(), "d/f")))
	must(t, os.Remove(filepath.Join(fs.Dir(), "d")))
	must(t, syncDir(fs.Dir()))
	write(t, filepath.Join(fs.Dir(), "f2"), 0, "f")
	fsync(t, filepath.Join(fs.Dir(), "f2"))
	crash(t, fs)
	wantTree(t, backing, map[string]string{"keep": "K", "f2": "f"})
}

func TestSymlink_DurableOnDirFsync(t *testing.T) {
	backing := backingWith(t, map[string]string{"a": "A"})
	fs := testfs.PowerFS(t, backing, nil)
	must(t, os.Symlink("a", filepath.Join(fs.Dir(), "l1")))
	must(t, syncDir(fs.Dir()))
	must(t, os.Symlink("a", filepath.Join(fs.Dir(), "l2")))
	if got := readMount(t, filepath.Join(fs.Dir(), "l2")); got != "A" {
		t.Errorf("through the link: %q", got)
	}
	crash(t, fs)
	wantTree(t, backing, map[string]string{"a": "A", "l1": "-> a"})
}

func TestChmod_DurableOnFileFsync(t *testing.T) {
	backing := backingWith(t, map[string]string{"a": "A", "b": "B"})
	fs := testfs.PowerFS(t, backing, nil)
	must(t, os.Chmod(filepath.Join(fs.Dir(), "a"), 0o600))
	must(t, os.Chmod(filepath.Join(fs.Dir(), "b"), 0o600))
	fsync(t, filepath.Join(fs.Dir(), "a"))
	crash(t, fs)
	for name, want := range map[string]os.FileMode{"a": 0o600, "b": 0o644} {
		fi, err := os.Stat(filepath.Join(backing, name))
		must(t, err)
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
}

func TestUnlinkedOpenFile_KeepsItsContent(t *testing.T) {
	// A file whose last durable name is removed while it is open (bbolt's
	// old file after a compaction swaps it out) must still read back, and
	// can be linked and synced again.
	backing := backingWith(t, map[string]string{"f": strings.Repeat("x", 10000)})
	fs := testfs.PowerFS(t, backing, nil)
	p := filepath.Join(fs.Dir(), "f")
	h, err := os.OpenFile(p, os.O_RDWR, 0)
	must(t, err)
	defer h.Close()
	must(t, os.Remove(p))
	must(t, syncDir(fs.Dir()))
	if _, err := os.Stat(filepath.Join(backing, "f")); !os.IsNotExist(err) {
		t.Fatalf("f is still in the backing directory: %v", err)
	}
	_, err = h.WriteAt([]byte("yy"), 5000)
	must(t, err)
	must(t, h.Sync())
	buf := make([]byte, 10000)
	_, err = h.ReadAt(buf, 0)
	must(t, err)
	if want := strings.Repeat("x", 5000) + "yy" + strings.Repeat("x", 4998); string(buf) != want {
		t.Fatal("the unlinked file does not read back")
	}
	must(t, h.Close())
	crash(t, fs)
	wantTree(t, backing, map[string]string{})
}

func TestUnmount_KeepsEverything(t *testing.T) {
	backing := backingWith(t, map[string]string{"a": "A", "d/b": "B"})
	fs := testfs.PowerFS(t, backing, nil)
	write(t, filepath.Join(fs.Dir(), "a"), 1, "a")
	write(t, filepath.Join(fs.Dir(), "d/c"), 0, "C")
	must(t, os.Mkdir(filepath.Join(fs.Dir(), "e"), 0o755))
	write(t, filepath.Join(fs.Dir(), "e/f"), 0, "F")
	must(t, os.Rename(filepath.Join(fs.Dir(), "d/b"), filepath.Join(fs.Dir(), "b")))
	must(t, fs.Unmount())
	wantTree(t, backing, map[string]string{"a": "Aa", "b": "B", "d/": "", "d/c": "C", "e/": "", "e/f": "F"})
}

func TestCrash_Unmounts(t *testing.T) {
	backing := backingWith(t, map[string]string{"a": "A"})
	fs := testfs.PowerFS(t, backing, nil)
	crash(t, fs)
	if mounts, err := os.ReadFile("/proc/self/mounts"); err == nil && bytes.Contains(mounts, []byte(" "+fs.Dir()+" ")) {
		t.Errorf("%s is still mounted after Crash", fs.Dir())
	}
	if _, err := os.Stat(filepath.Join(fs.Dir(), "a")); !os.IsNotExist(err) {
		t.Errorf("the mount point still shows the files: %v", err)
	}
	if _, err := fs.Crash(); err == nil {
		t.Error("a second Crash succeeded")
	}
	must(t, fs.Close())
}

func TestMount_Refuses(t *testing.T) {
	testfs.FUSE(t)
	backing := t.TempDir()
	if _, err := powerfs.Mount(backing, backing, nil); err == nil {
		t.Error("mounted over its own backing directory")
	}
	inside := filepath.Join(backing, "mnt")
	must(t, os.Mkdir(inside, 0o755))
	if _, err := powerfs.Mount(backing, inside, nil); err == nil {
		t.Error("mounted inside its own backing directory")
	}
	fifo := t.TempDir()
	must(t, syscall.Mkfifo(filepath.Join(fifo, "p"), 0o600))
	if _, err := powerfs.Mount(fifo, t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("a FIFO in the backing directory: %v, want an error", err)
	}
}

func TestNewDirectory_KeepsSyncedEntriesOfRemovedFiles(t *testing.T) {
	// d/f is durable in d (fsync of d) while d is not durable itself; f is
	// then removed, without an fsync of d, and d made durable: f is there.
	backing := backingWith(t, nil)
	fs := testfs.PowerFS(t, backing, nil)
	d := filepath.Join(fs.Dir(), "d")
	must(t, os.Mkdir(d, 0o755))
	write(t, filepath.Join(d, "f"), 0, "synced")
	fsync(t, filepath.Join(d, "f"))
	must(t, syncDir(d))
	must(t, os.Remove(filepath.Join(d, "f")))
	must(t, syncDir(fs.Dir()))
	crash(t, fs)
	wantTree(t, backing, map[string]string{"d/": "", "d/f": "synced"})
}
