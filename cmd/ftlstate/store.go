package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// etcdScheme starts a --state that names a store on an etcd cluster.
const etcdScheme = "etcd://"

func kindOf(path string) storeKind {
	switch {
	case strings.HasPrefix(path, etcdScheme):
		return kindEtcd
	case strings.HasSuffix(strings.ToLower(path), ".json"):
		return kindJSON
	}
	return kindBolt
}

// parseEtcd splits etcd://host:port[,host:port...]/prefix into the
// endpoints and the key prefix ("/prefix", the URL's path).
func parseEtcd(s string) (endpoints []string, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, etcdScheme)
	if !ok {
		return nil, "", usageErrorf("%s: not an etcd:// store", s)
	}
	hosts, path, _ := strings.Cut(rest, "/")
	prefix = strings.TrimRight("/"+path, "/")
	if strings.ContainsAny(hosts, "@?#") || strings.ContainsAny(path, "?#") {
		return nil, "", usageErrorf("%s: the form is etcd://host:port[,host:port...]/prefix (no user, query or fragment)", s)
	}
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			return nil, "", usageErrorf("%s: an empty endpoint; the form is etcd://host:port[,host:port...]/prefix", s)
		}
		endpoints = append(endpoints, h)
	}
	if prefix == "" {
		return nil, "", usageErrorf("%s: a key prefix is needed, as in etcd://%s/ftl/prod", s, hosts)
	}
	return endpoints, prefix, nil
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
		endpoints, prefix, err := parseEtcd(path)
		if err != nil {
			return nil, err
		}
		b, err := etcdbackend.Open(context.Background(), etcdbackend.Config{
			Endpoints: endpoints, Prefix: prefix, LockTimeout: a.lockTimeout, ReadOnly: readOnly,
		})
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

func dirOf(path string) string { return filepath.Dir(path) }
