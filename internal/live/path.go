package live

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Limits of socket names and addresses.
const (
	// maxAddr is the longest path a sockaddr_un holds: 108 bytes with
	// the terminating NUL on Linux.
	maxAddr = 107
	// maxName is the longest socket file name used as it is: short
	// enough that /proc/self/fd/N/NAME always fits in maxAddr.
	maxName = 80
)

// SocketPath returns the path of the socket that the holder of the store
// at store serves: store + ".sock", in the store's directory, or, when
// that name is longer than 80 bytes, ".ftlstate-" + 16 hex digits of the
// SHA-256 of the store's file name + ".sock" in the same directory. The
// result is as absolute as store is.
//
// A socket address holds at most 107 bytes; a longer path is reached
// through the directory (see addr), so the socket stays beside the store
// whatever the directory's depth.
func SocketPath(store string) string {
	dir, base := filepath.Split(store)
	name := base + ".sock"
	if len(name) > maxName {
		sum := sha256.Sum256([]byte(base))
		name = ".ftlstate-" + hex.EncodeToString(sum[:8]) + ".sock"
	}
	return filepath.Join(dir, name)
}

// addr returns an address for the socket at path that fits in a
// sockaddr_un: path itself when it fits, else /proc/self/fd/N/NAME, N an
// open descriptor of path's directory, which release closes (after the
// bind or connect).
func addr(path string) (a string, release func(), err error) {
	if len(path) <= maxAddr {
		return path, func() {}, nil
	}
	dir, name := filepath.Split(path)
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	a = fmt.Sprintf("/proc/self/fd/%d/%s", fd, name)
	if len(a) > maxAddr {
		syscall.Close(fd)
		return "", nil, fmt.Errorf("%s: socket name too long", path)
	}
	return a, func() { syscall.Close(fd) }, nil
}
