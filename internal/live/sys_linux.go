package live

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// listen creates the socket at path, mode 0600, listening, and returns
// its listener and the socket file's identity. The socket is bound under
// a temporary name in the same directory, made 0600 before it listens
// (so nobody connects while it has the umask's mode), and renamed into
// place, which replaces a socket left there by a holder that died in one
// step. Anything at path other than a socket or a symbolic link is left
// alone and reported.
func listen(path string) (net.Listener, fileID, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() != fs.ModeSocket && fi.Mode().Type() != fs.ModeSymlink {
		return nil, fileID{}, fmt.Errorf("%s exists and is not a socket (%s); not replaced", path, fi.Mode().Type())
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fileID{}, err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(path), ".ftlstate-"+hex.EncodeToString(rnd[:])+".sock.new")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fileID{}, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), tmp) // closes fd on every path below
	defer f.Close()
	a, release, err := addr(tmp)
	if err != nil {
		return nil, fileID{}, err
	}
	err = syscall.Bind(fd, &syscall.SockaddrUnix{Name: a})
	release()
	if err != nil {
		return nil, fileID{}, &os.PathError{Op: "bind", Path: tmp, Err: err}
	}
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o600); err != nil {
		return nil, fileID{}, err
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(tmp, &st); err != nil {
		return nil, fileID{}, &os.PathError{Op: "lstat", Path: tmp, Err: err}
	}
	if err := syscall.Listen(fd, 64); err != nil {
		return nil, fileID{}, os.NewSyscallError("listen", err)
	}
	ln, err := net.FileListener(f) // dups fd
	if err != nil {
		return nil, fileID{}, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, fileID{}, err
	}
	ok = true
	return ln, fileID{dev: uint64(st.Dev), ino: st.Ino}, nil
}

// fileID identifies a file: its device and inode.
type fileID struct{ dev, ino uint64 }

// idOf returns the identity of the file at path (not following a link).
func idOf(path string) (fileID, uint32, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return fileID{}, 0, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino}, st.Uid, nil
}

// cred is what the kernel says about the process at the other end of a
// Unix socket (SO_PEERCRED): its pid and user, as of connect or listen.
type cred struct {
	pid int
	uid uint32
}

// peer returns the credentials of c's other end.
func peer(c net.Conn) (cred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return cred{}, fmt.Errorf("not a Unix socket connection: %T", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return cred{}, err
	}
	var u *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		u, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return cred{}, err
	}
	if serr != nil {
		return cred{}, os.NewSyscallError("getsockopt SO_PEERCRED", serr)
	}
	return cred{pid: int(u.Pid), uid: u.Uid}, nil
}

// ownerOf returns the owner of the file at path, following links; when
// there is none (a JSON store not written yet), this process's user.
func ownerOf(path string) uint32 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return uint32(os.Geteuid())
	}
	return st.Uid
}
