package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/internal/live"
	"github.com/go-ftl2/ftlstate/state"
)

// The kinds of store --state can name.
type storeKind int

const (
	kindBolt storeKind = iota
	kindJSON
	kindEtcd
)

func kindOf(path string) storeKind {
	switch {
	case isEtcd(path):
		return kindEtcd
	case strings.HasSuffix(strings.ToLower(path), ".json"):
		return kindJSON
	}
	return kindBolt
}

// openBackend opens the store at path. Read-only opens need the store to
// exist; write opens create it. A file is opened by the backend its content
// names (see storeKindOf).
func (a *app) openBackend(path string, readOnly bool) (state.Backend, error) {
	if path == "" {
		return nil, usageErrorf("the store's name is empty: give --state PATH (or etcd://host:port/prefix), or set $FTLSTATE_PATH")
	}
	hint := ""
	if path == a.statePath {
		hint = " (--state, $FTLSTATE_PATH)"
	}
	kind, err := storeKindOf(path)
	if err != nil {
		return nil, err
	}
	if kind == kindEtcd {
		cfg, err := a.etcd.config(path)
		if err != nil {
			return nil, err
		}
		cfg.LockTimeout, cfg.ReadOnly = a.lockTimeout, readOnly
		b, err := etcdbackend.Open(context.Background(), cfg)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such store%s", path, hint)
		}
		return b, err
	}
	if readOnly {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s: no such store%s", path, hint)
			}
			return nil, err
		}
	}
	if readOnly {
		return a.openReader(path, kind)
	}
	switch kind {
	case kindJSON:
		return filebackend.Open(path, &filebackend.Options{Timeout: a.lockTimeout})
	default:
		return boltbackend.Open(path, &boltbackend.Options{Timeout: a.lockTimeout})
	}
}

// openReader opens the local store at path (of kind kind) for reading.
// When a running process holds it for writing and serves it (any program
// using the library: see internal/live), it is read from that holder's
// memory through its socket, and a line on stderr says so; what commands
// print is the same as from the file. Otherwise the file is opened as
// usual.
func (a *app) openReader(path string, kind storeKind) (state.Backend, error) {
	if kind == kindJSON {
		// The file can always be read (it is replaced whole), but a
		// holder's memory is as new and spares parsing it.
		if b, err := a.openLive(path); err == nil {
			return b, nil
		}
		return filebackend.Open(path, &filebackend.Options{ReadOnly: true})
	}
	b, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: true})
	if !errors.Is(err, state.ErrLocked) {
		return b, err
	}
	if lb, lerr := a.openLive(path); lerr == nil {
		return lb, nil
	}
	// Not served (a holder that does not serve, or one that has just
	// closed the store): the file, waiting as --lock-timeout says.
	return boltbackend.Open(path, &boltbackend.Options{ReadOnly: true, Timeout: a.lockTimeout})
}

// openFile opens the store at path, which must exist, for reading from
// its file, never from a running holder (check reads the file itself).
func (a *app) openFile(path string) (state.Backend, error) {
	kind, err := storeKindOf(path)
	switch {
	case err != nil:
		return nil, err
	case kind == kindEtcd:
		return a.openBackend(path, true)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return a.openBackend(path, true) // its message
	}
	if kind == kindJSON {
		return filebackend.Open(path, &filebackend.Options{ReadOnly: true})
	}
	return boltbackend.Open(path, &boltbackend.Options{ReadOnly: true, Timeout: a.lockTimeout})
}

// openLive opens the store at path through the socket of its running
// holder and says so on stderr. A socket that answers but is not the
// holder's is reported too.
func (a *app) openLive(path string) (state.Backend, error) {
	b, err := live.Open(path, nil)
	if err != nil {
		if errors.Is(err, live.ErrUntrusted) {
			fmt.Fprintf(a.stderr, "warning: %s: not reading from its socket: %s\n", path, trimLive(err))
		}
		return nil, err
	}
	h := b.Holder()
	cmd := ""
	if h.Command != "" {
		cmd = " (" + h.Command + ")"
	}
	fmt.Fprintf(a.stderr, "%s: read from the running holder, pid %d%s\n", path, h.PID, cmd)
	return b, nil
}

// trimLive drops the package and store prefix of a live error.
func trimLive(err error) string {
	msg := strings.TrimPrefix(err.Error(), "live: ")
	if i := strings.Index(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

// view runs fn on a consistent read-only snapshot of the store, without
// loading it whole.
func (a *app) view(fn func(snap state.Snapshot) error) error {
	return a.viewPath(a.statePath, fn)
}

func (a *app) viewPath(path string, fn func(snap state.Snapshot) error) error {
	b, err := a.openBackend(path, true)
	if err != nil {
		return err
	}
	defer b.Close()
	return b.View(fn)
}
