//go:build !linux

package live

import (
	"errors"
	"net"
)

var errUnsupported = errors.New("live reads need Linux (SO_PEERCRED)")

type fileID struct{ dev, ino uint64 }

type cred struct {
	pid int
	uid uint32
}

func listen(string) (net.Listener, fileID, error) { return nil, fileID{}, errUnsupported }

func idOf(string) (fileID, uint32, error) { return fileID{}, 0, errUnsupported }

func peer(net.Conn) (cred, error) { return cred{}, errUnsupported }

func ownerOf(string) uint32 { return 0 }
