// Package testfs gives tests real file systems with limits: a small tmpfs
// to fill up (ENOSPC) or to make read-only, mounted for one test, and the
// power-loss file system of package powerfs. Root can mount; elsewhere the
// tests skip, unless FTLSTATE_REQUIRE_TMPFS (for tmpfs) or
// FTLSTATE_REQUIRE_FUSE (for FUSE) is set (CI sets both), in which case
// they fail: the disk-full and power-loss tests must run somewhere. Each
// backend also covers the disk-full error paths by fault injection, which
// runs everywhere.
package testfs

import (
	"os"
	"syscall"
	"testing"

	"github.com/go-ftl2/ftlstate/internal/powerfs"
)

// Tmpfs mounts a tmpfs of size (such as "1m") on a new temp dir for the
// test and unmounts it when the test ends.
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		if os.Getenv("FTLSTATE_REQUIRE_TMPFS") != "" {
			t.Fatalf("mount tmpfs (FTLSTATE_REQUIRE_TMPFS is set): %v", err)
		}
		t.Skipf("cannot mount a tmpfs here (%v): run as root, or rely on the fault-injection tests", err)
	}
	t.Cleanup(func() {
		syscall.Mount("", dir, "", syscall.MS_REMOUNT, "") // writable again, if a test made it read-only
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Resize changes the size of a tmpfs from Tmpfs ("space returns").
func Resize(t testing.TB, dir, size string) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size="+size); err != nil {
		t.Fatalf("resize tmpfs %s: %v", dir, err)
	}
}

// ReadOnly remounts a tmpfs from Tmpfs read-only, or read-write again.
func ReadOnly(t testing.TB, dir string, ro bool) {
	t.Helper()
	var flags uintptr = syscall.MS_REMOUNT
	if ro {
		flags |= syscall.MS_RDONLY
	}
	if err := syscall.Mount("", dir, "", flags, ""); err != nil {
		t.Fatalf("remount %s (read-only %v): %v", dir, ro, err)
	}
}

// FUSE skips t when FUSE file systems cannot be mounted here (see
// powerfs.Available: no /dev/fuse, not root), or fails it when
// FTLSTATE_REQUIRE_FUSE is set (CI sets it): the power-loss tests must run
// somewhere.
func FUSE(t testing.TB) {
	t.Helper()
	if err := powerfs.Available(); err != nil {
		if os.Getenv("FTLSTATE_REQUIRE_FUSE") != "" {
			t.Fatalf("mount a FUSE file system (FTLSTATE_REQUIRE_FUSE is set): %v", err)
		}
		t.Skipf("cannot mount a FUSE file system here (%v): run as root with /dev/fuse, or set FTLSTATE_REQUIRE_FUSE=1 to make this a failure", err)
	}
}

// PowerFS mounts a power-loss file system (package powerfs) over backing
// on a new temp dir, for the test, after FUSE. It is unmounted when the
// test ends, unless the test crashed or unmounted it already.
func PowerFS(t testing.TB, backing string, opts *powerfs.Options) *powerfs.FS {
	t.Helper()
	FUSE(t)
	fs, err := powerfs.Mount(backing, t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	return fs
}
