package main

import (
	"bytes"
	byteorder "encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// bboltMagic is the magic number at offset 16 of a bbolt file's first
// meta page (after the 16-byte page header), in the byte order of the
// machine that wrote it.
const bboltMagic = 0xED0CDAED

// storeKindOf tells which backend reads the store at path: etcd for an
// etcd:// URL; for an existing file, what its content is (a bbolt file by
// its magic number, a state.json document by its opening brace), so that
// a backup, a copy or an export works under any name; for a missing or
// empty file (or one that is neither), its name (kindOf: .json is JSON,
// anything else bbolt), which is also what a new store is created as.
//
// A path that names something other than a regular file (a directory, a
// named pipe, a device) is an error: opening it could block or mean
// nothing.
func storeKindOf(path string) (storeKind, error) {
	if isEtcd(path) {
		return kindEtcd, nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return kindOf(path), nil
	}
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s: %s, not a store", path, describeMode(fi.Mode()))
	}
	// O_NONBLOCK: should the file be swapped for a FIFO since the Stat,
	// the open does not hang.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s: not a regular file, not a store", path)
	}
	head := make([]byte, 4096)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, err
	}
	return sniffKind(head[:n], path), nil
}

// sniffKind tells a store's kind from its first bytes, falling back on
// its name.
func sniffKind(head []byte, path string) storeKind {
	if len(head) >= 20 {
		m := head[16:20]
		if byteorder.LittleEndian.Uint32(m) == bboltMagic || byteorder.BigEndian.Uint32(m) == bboltMagic {
			return kindBolt
		}
	}
	rest := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(rest) > 0 && rest[0] == '{' {
		return kindJSON
	}
	return kindOf(path)
}

// describeMode names what a non-regular file is, for messages.
func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a regular file"
}
