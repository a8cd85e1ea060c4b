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
	"github.com/go-ftl2/ftlstate/internal/atomicfile"
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
// exist; write opens create it.
func (a *app) openBackend(path string, readOnly bool) (state.Backend, error) {
	if kindOf(path) == kindEtcd {
		endpoints, prefix, err := parseEtcd(path)
		if err != nil {
			return nil, err
		}
		b, err := etcdbackend.Open(context.Background(), etcdbackend.Config{
			Endpoints: endpoints, Prefix: prefix, LockTimeout: a.lockTimeout, ReadOnly: readOnly,
		})
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such store (--state, $FTLSTATE_PATH)", path)
		}
		return b, err
	}
	if readOnly {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s: no such store (--state, $FTLSTATE_PATH)", path)
			}
			return nil, err
		}
	}
	switch kindOf(path) {
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

// update opens the store for writing and runs fn on its State.
func (a *app) update(fn func(st *state.State) error) error {
	return a.destructive(true, func(st *state.State, _ func() error) error { return fn(st) })
}

// backupPath is where destructive commands keep the store as it was.
func backupPath(path string) string { return path + ".backup" }

// backup copies the store (open and locked by this process, so nobody
// changes it meanwhile) to PATH.backup, atomically, and says so on stderr.
func (a *app) backup(b state.Backend, path string) error {
	dst := backupPath(path)
	var err error
	switch bb := b.(type) {
	case *etcdbackend.Backend:
		// etcd keeps earlier revisions until it compacts them; there is
		// no file to copy.
		fmt.Fprintf(a.stderr, "note: no backup of an etcd store is kept; 'ftlstate export -o FILE' makes one\n")
		return nil
	case *boltbackend.Backend:
		// Compact refuses an existing destination: write the new backup
		// beside the old one and swap them, so one always exists.
		tmp := dst + ".new"
		os.Remove(tmp)
		if err = bb.Compact(tmp); err == nil {
			if err = os.Rename(tmp, dst); err == nil {
				err = atomicfile.SyncDir(filepath.Dir(dst))
			}
		}
		os.Remove(tmp)
	default:
		if _, statErr := os.Stat(path); errors.Is(statErr, fs.ErrNotExist) {
			return nil // a JSON store not written yet: nothing to keep
		}
		err = atomicfile.Copy(dst, path)
	}
	if err != nil {
		return fmt.Errorf("%s: backup to %s: %w (use --no-backup to go on without one)", path, dst, err)
	}
	fmt.Fprintf(a.stderr, "backup of the previous state: %s\n", dst)
	return nil
}

// destructive opens the store for writing and runs fn, which calls
// keepBackup once it has checked that it will change something: that keeps
// PATH.backup (unless noBackup).
func (a *app) destructive(noBackup bool, fn func(st *state.State, keepBackup func() error) error) error {
	b, err := a.openBackend(a.statePath, false)
	if err != nil {
		return err
	}
	st, err := state.Open(b)
	if err != nil {
		return err
	}
	keep := func() error {
		if noBackup {
			return nil
		}
		return a.backup(b, a.statePath)
	}
	err = fn(st, keep)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}
