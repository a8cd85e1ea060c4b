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
	switch kind {
	case kindJSON:
		return filebackend.Open(path, &filebackend.Options{Timeout: a.lockTimeout, ReadOnly: readOnly})
	default:
		return boltbackend.Open(path, &boltbackend.Options{Timeout: a.lockTimeout, ReadOnly: readOnly})
	}
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
