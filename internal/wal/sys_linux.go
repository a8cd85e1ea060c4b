package wal

import (
	"errors"
	"os"
	"syscall"
)

// fdatasync makes f's data durable, and the metadata needed to read it
// (its size), not its times.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// preallocate gives f blocks for size bytes at off (growing the file),
// so that writing there later changes no file size: fallocate, or, where
// the file system has none, ftruncate.
func preallocate(f *os.File, off, size int64) error {
	err := syscall.Fallocate(int(f.Fd()), 0, off, size)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EINVAL) {
		return f.Truncate(off + size)
	}
	return err
}
