package boltbackend

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// Salvage reads what can still be read of the damaged store at path, so
// that an operator can rebuild it (ftlstate salvage). Unlike Open it does
// not refuse a store whose records, counters or buckets are damaged; it
// still refuses a file that is not a bbolt file or whose meta pages are
// damaged (see Open), and never writes.
//
// Inside one read transaction it calls fn for every host, then every
// resource, then every pending operation, in key order: with the decoded
// record in c (c.Host, c.Resource or c.Operation set) and a nil error, or with c.Key and the error that makes
// the record unreadable (matching state.ErrCorrupt). When damage to
// bbolt's own pages stops the walk of a bucket, fn gets that error with
// the last key read before it (or none), and the walk goes on with the
// next bucket. A bucket whose pages this package's page walk finds
// damaged is not walked with bbolt's cursors (which may fault, or never
// end where a branch points back up): its records are read from its leaf
// pages that are intact, then fn gets the damage. The changes of the
// store's write-ahead log that the file lacks (a writer died) are read
// over the file, as a read-only Open shows them; a damaged log is
// reported to fn with Kind 0 and left out. An error from fn stops Salvage and is returned. The
// returned Metadata is the store's, or the zero Metadata when it cannot
// be read (reported to fn with Kind 0).
//
// opts.Timeout is how long to wait for a writer (as for a read-only
// Open); opts.ReadOnly is implied.
func Salvage(path string, opts *Options, fn func(c state.Change, err error) error) (state.Metadata, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.ReadOnly = true
	start := time.Now()
	probed, _, err := probe(path, path, o, start)
	if err != nil {
		return state.Metadata{}, err
	}
	var file *os.File
	db, err := bolt.Open(path, fileMode, &bolt.Options{
		Timeout: remaining(o.Timeout, start), ReadOnly: true, FreelistType: bolt.FreelistMapType,
		OpenFile: openProbed(probed, &file),
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return state.Metadata{}, lockError(path, path, o, start)
		}
		return state.Metadata{}, corruptf(path, "%v", err)
	}
	defer db.Close()
	// The pages first: bbolt's cursors walk only the buckets found sound
	// (in a damaged tree they may fault or, where a branch points back
	// up, never end); the others are read from their intact leaf pages.
	pages, perr := walkPages(file, path, state.MaxProblems)
	if perr != nil {
		pages = nil
	}
	var meta state.Metadata
	errStop := errors.New("stop")
	var fnErr error
	call := func(c state.Change, err error) error {
		if fnErr = fn(c, err); fnErr != nil {
			return errStop
		}
		return nil
	}
	err = db.View(func(tx *bolt.Tx) error {
		s := &snapshot{path: path}
		merr := catchFaults(path, "reading the metadata", func() error {
			if !pages.sound("") || !pages.sound(string(bucketMetadata)) {
				return corruptf(path, "the pages of the metadata are damaged")
			}
			md := tx.Bucket(bucketMetadata)
			if md == nil {
				return corruptf(path, "no %q bucket", bucketMetadata)
			}
			m, err := record.DecodeMetadata(md.Get(keyMeta))
			if err != nil {
				return fmt.Errorf("boltbackend: %s: metadata/meta: %w", path, err)
			}
			meta = m
			// What the log holds beyond the file (a writer that died)
			// comes over it, as a read-only Open shows it.
			bk, err := (&Backend{path: path}).openBuckets(tx)
			if err != nil {
				return err
			}
			b := &Backend{path: path, real: path, db: db}
			recs, _, err := b.readLog(bk)
			if err != nil {
				return err
			}
			if len(recs) > 0 {
				bk.hosts, bk.resources = nil, nil // no counts: nothing is walked here
				s.ov = newOverlay(bk, recs)
				meta = s.ov.meta
			}
			return nil
		})
		if merr != nil {
			if err := call(state.Change{}, merr); err != nil {
				return err
			}
		}
		for _, b := range []struct {
			kind state.Kind
			name []byte
		}{{state.KindHost, bucketHosts}, {state.KindResource, bucketResources}, {state.KindOperation, bucketOperations}} {
			if !pages.sound("") || !pages.sound(string(b.name)) {
				if err := salvageLeaves(file, s, b.kind, b.name, call); err != nil {
					return err
				}
				continue
			}
			if b.kind == state.KindOperation && tx.Bucket(b.name) == nil && s.ov == nil {
				continue // a store of layout version 1: no operations
			}
			if err := salvageBucket(tx, s, b.kind, b.name, call); err != nil {
				return err
			}
		}
		return nil
	})
	if fnErr != nil {
		return meta, fnErr
	}
	return meta, err
}

// salvageBucket walks one record bucket for Salvage, with the log's
// changes over it.
func salvageBucket(tx *bolt.Tx, s *snapshot, kind state.Kind, name []byte, call func(state.Change, error) error) error {
	var b *bolt.Bucket
	if err := catchFaults(s.path, "salvage", func() error { b = tx.Bucket(name); return nil }); err != nil || b == nil && s.ov == nil {
		if err == nil {
			err = corruptf(s.path, "bucket %q is missing", name)
		}
		return call(state.Change{Kind: kind}, err)
	}
	c := s.newMerged(b, kind)
	var last string
	for first := true; ; first = false {
		var k, v []byte
		err := catchFaults(s.path, fmt.Sprintf("walking %s after %q", name, last), func() error {
			k, v = c.next(first)
			return nil
		})
		if err != nil {
			return call(state.Change{Kind: kind, Key: last}, err)
		}
		if k == nil {
			return nil
		}
		if err := salvageRecord(s, kind, k, v, call); err != nil {
			return err
		}
		last = string(k)
	}
}

// salvageLeaves reads the records of a bucket whose pages are damaged
// from its leaf pages that are intact, with the log's changes over them,
// and then reports the damage.
func salvageLeaves(file *os.File, s *snapshot, kind state.Kind, name []byte, call func(state.Change, error) error) error {
	recs := map[string][]byte{}
	_, err := walkPagesLeaves(file, s.path, state.MaxProblems, func(bucket string, k, v []byte) {
		if bucket == string(name) {
			if _, dup := recs[string(k)]; !dup {
				recs[string(k)] = bytes.Clone(v)
			}
		}
	})
	if s.ov != nil {
		for key, c := range s.ov.kinds[kind].m {
			if c.value == nil {
				delete(recs, key)
			} else {
				recs[key] = c.value
			}
		}
	}
	keys := slices.Sorted(maps.Keys(recs))
	for _, k := range keys {
		if err := salvageRecord(s, kind, []byte(k), recs[k], call); err != nil {
			return err
		}
	}
	if err == nil {
		err = corruptf(s.path, "the pages of bucket %q are damaged: its records were read from its intact leaf pages, and some may be missing", name)
	}
	last := ""
	if len(keys) > 0 {
		last = keys[len(keys)-1]
	}
	return call(state.Change{Kind: kind, Key: last}, err)
}

// salvageRecord decodes one record for Salvage and passes it on.
func salvageRecord(s *snapshot, kind state.Kind, k, v []byte, call func(state.Change, error) error) error {
	ch := state.Change{Kind: kind, Key: string(k)}
	err := catchFaults(s.path, "salvage", func() error {
		var err error
		switch kind {
		case state.KindHost:
			ch.Host, err = s.host(k, v)
		case state.KindResource:
			ch.Resource, err = s.resource(k, v)
		default:
			ch.Operation, err = s.operation(k, v)
		}
		return err
	})
	return call(ch, err)
}
