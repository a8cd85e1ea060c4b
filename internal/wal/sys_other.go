//go:build !linux

package wal

import "os"

// fdatasync makes f's data durable (fsync where there is no fdatasync).
func fdatasync(f *os.File) error { return f.Sync() }

// preallocate grows f to off+size bytes.
func preallocate(f *os.File, off, size int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() >= off+size {
		return nil
	}
	return f.Truncate(off + size)
}
