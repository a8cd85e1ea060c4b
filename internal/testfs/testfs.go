// Package testfs gives tests real file systems with limits: a small tmpfs
// to fill up (ENOSPC) or to make read-only, mounted for one test. Root can
// mount; elsewhere the tests skip, unless FTLSTATE_REQUIRE_TMPFS is set
// (CI sets it), in which case they fail: the disk-full tests must run
// somewhere. Each backend also covers the same error paths by fault
// injection, which runs everywhere.
package testfs

import (
	"os"
	"syscall"
	"testing"
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
