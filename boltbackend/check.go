package boltbackend

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// Check implements state.Checker: it verifies the whole store and returns
// nil or an error wrapping a *state.CheckError that lists what is wrong,
// each finding naming its bucket (Problem.Section) and key:
//
//   - the buckets and metadata keys of the layout are there, and nothing
//     else; the schema version is SchemaVersion, or 1 without the
//     operations bucket;
//   - every host and resource record decodes and validates (as
//     internal/record decodes: names, ports, UTF-8, the value model), and
//     every host is stored under its own name; so is every pending
//     operation, under its own ID;
//   - the resources_by_type index holds exactly one entry per resource,
//     under the resource's type;
//   - the host and resource counters match the records;
//   - bbolt's own consistency check (page references, freelist) passes.
//
// On a read-write Backend, Check runs in a write transaction that it
// rolls back, because bbolt's check reads the freelist that writers
// change: commits wait while it runs. A read-only Backend checks in a
// read transaction. Other errors (a closed Backend) are returned as they
// are.
func (b *Backend) Check() error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.ops.Leave()
	if b.lg != nil {
		// Everything acknowledged goes into the file first.
		if err := b.lg.sync(); err != nil {
			return err
		}
	}
	c := &checker{state.CheckError{Path: b.path}}
	run := func(tx *bolt.Tx) {
		// The pages first, by this package's own bounds-checked walk:
		// bbolt's check follows damaged pointers in a goroutine of its
		// own, where a memory fault cannot be caught (it killed the
		// process with SIGSEGV), so it runs only on pages found sound.
		pages, err := walkPages(b.file, b.path, state.MaxProblems)
		pagesOK := err == nil && len(pages.problems) == 0
		switch {
		case err != nil:
			c.Addf("", "", "pages: %v", err)
		default:
			for _, p := range pages.problems {
				c.Addf("", "", "pages: %s", p)
			}
			c.More += pages.more
		}
		if err != nil {
			pages = nil // nothing is known sound
		}
		err = catchFaults(b.path, "check", func() error { c.walk(tx, pages); return nil })
		if err != nil {
			var fe *faultError
			if errors.As(err, &fe) {
				c.Addf("", "", "bbolt failed on damaged data: %v", fe.v)
			} else {
				c.Addf("", "", "%v", err)
			}
			return
		}
		if !pagesOK {
			return
		}
		for err := range tx.Check() {
			c.Addf("", "", "bbolt: %v", err)
		}
	}
	if b.readOnly {
		if err := b.db.View(func(tx *bolt.Tx) error { run(tx); return nil }); err != nil {
			return fmt.Errorf("boltbackend: %s: check: %w", b.path, err)
		}
	} else {
		tx, err := b.db.Begin(true)
		if err != nil {
			return fmt.Errorf("boltbackend: %s: check: %w", b.path, err)
		}
		run(tx)
		if err := tx.Rollback(); err != nil {
			return fmt.Errorf("boltbackend: %s: check: %w", b.path, err)
		}
	}
	if b.logErr != nil {
		c.Addf("log", "", "%v", b.logErr)
	}
	if b.ov != nil {
		c.overlay(b.ov)
	}
	if err := c.Err(); err != nil {
		return fmt.Errorf("boltbackend: %w", err)
	}
	return nil
}

// overlay checks the records of the log that a read-only Backend shows
// over its file, as the file's own are checked (section "log").
func (c *checker) overlay(ov *overlay) {
	const section = "log"
	for k := range ov.kinds {
		ko := &ov.kinds[k]
		for _, key := range ko.keys {
			p := ko.m[key]
			if err := state.ValidateName(key); err != nil {
				c.Addf(section, key, "invalid key: %v", err)
			}
			if p.value == nil {
				continue
			}
			switch p.kind {
			case state.KindHost:
				if h, err := record.DecodeHost(p.value); err != nil {
					c.Addf(section, key, "host: %v", err)
				} else if h.Name != key {
					c.Addf(section, key, "host named %q logged under another key", h.Name)
				}
			case state.KindResource:
				if _, err := record.DecodeResource(p.value); err != nil {
					c.Addf(section, key, "resource: %v", err)
				}
			case state.KindOperation:
				if op, err := record.DecodeOperation(p.value); err != nil {
					c.Addf(section, key, "operation: %v", err)
				} else if op.ID != key {
					c.Addf(section, key, "operation %q logged under another key", op.ID)
				}
			}
		}
	}
}

// checker collects the findings of Check.
type checker struct{ state.CheckError }

// walk checks the layout and every record of tx, reading with bbolt's
// cursors only the buckets whose pages the page walk found sound: in a
// damaged tree they may fault or, where a branch points back up, never
// end.
func (c *checker) walk(tx *bolt.Tx, pages *pageWalk) {
	if !pages.sound("") {
		c.Addf("", "", "the records were not checked: the pages of the root bucket are damaged or were not all checked")
		return
	}
	notWalked := func(name []byte) bool {
		if pages.sound(string(name)) {
			return false
		}
		c.Addf(string(name), "", "the records were not checked: the bucket's pages are damaged (see the pages findings; 'ftlstate salvage' reads what is left)")
		return true
	}
	known := map[string]bool{}
	for _, n := range [][]byte{bucketHosts, bucketResources, bucketByType, bucketMetadata, bucketOperations} {
		known[string(n)] = true
	}
	root := tx.Cursor()
	for k, v := root.First(); k != nil; k, v = root.Next() {
		switch {
		case v != nil:
			c.Addf("", "", "unexpected key %q at the top level", k)
		case !known[string(k)]:
			c.Addf(string(k), "", "unexpected bucket")
		}
	}
	bk := &buckets{hosts: tx.Bucket(bucketHosts), resources: tx.Bucket(bucketResources), byType: tx.Bucket(bucketByType), meta: tx.Bucket(bucketMetadata)}
	missing := false
	for _, p := range []struct {
		name []byte
		b    *bolt.Bucket
	}{{bucketHosts, bk.hosts}, {bucketResources, bk.resources}, {bucketByType, bk.byType}, {bucketMetadata, bk.meta}} {
		if p.b == nil {
			c.Addf(string(p.name), "", "bucket is missing")
			missing = true
		}
	}
	if missing {
		return
	}
	if notWalked(bucketMetadata) {
		return
	}
	nHosts, nResources, countersOK := c.metadata(bk.meta)
	if ops := tx.Bucket(bucketOperations); ops != nil && !notWalked(bucketOperations) {
		if v := bk.meta.Get(keySchema); len(v) == 8 && binary.BigEndian.Uint64(v) < schemaOperations {
			c.Addf(string(bucketOperations), "", "bucket in a store of layout version %d", binary.BigEndian.Uint64(v))
		}
		c.operations(ops)
	} else if v := bk.meta.Get(keySchema); len(v) == 8 && binary.BigEndian.Uint64(v) >= schemaOperations {
		c.Addf(string(bucketOperations), "", "bucket is missing")
	}
	hosts, resources := nHosts, nResources
	if !notWalked(bucketHosts) {
		hosts = c.hosts(bk.hosts)
	}
	if damaged := notWalked(bucketResources); !damaged && !notWalked(bucketByType) {
		resources = c.resources(bk)
		c.index(bk)
	} else if !damaged {
		bk.byType = nil // resources checks its records without the index
		resources = c.resources(bk)
	}
	if countersOK {
		if nHosts != hosts {
			c.Addf(string(bucketMetadata), string(keyHosts), "counter says %d hosts, the bucket holds %d", nHosts, hosts)
		}
		if nResources != resources {
			c.Addf(string(bucketMetadata), string(keyResources), "counter says %d resources, the bucket holds %d", nResources, resources)
		}
	}
}

func (c *checker) metadata(md *bolt.Bucket) (nHosts, nResources uint64, ok bool) {
	const bucket = "metadata"
	ok = true
	cur := md.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		key := string(k)
		switch {
		case v == nil:
			c.Addf(bucket, key, "unexpected nested bucket")
		case bytes.Equal(k, keySchema):
			if len(v) != 8 {
				c.Addf(bucket, key, "not 8 bytes")
			} else if s := binary.BigEndian.Uint64(v); s < 1 || s > SchemaVersion {
				c.Addf(bucket, key, "layout version %d, want 1..%d", s, SchemaVersion)
			}
		case bytes.Equal(k, keyMeta):
			if _, err := record.DecodeMetadata(v); err != nil {
				c.Addf(bucket, key, "%v", err)
			}
		case bytes.Equal(k, keyLog):
			if len(v) != 24 {
				c.Addf(bucket, key, "%d bytes, want 24 (log ID and LSN)", len(v))
			}
			if s := md.Get(keySchema); len(s) == 8 && binary.BigEndian.Uint64(s) < schemaLog {
				c.Addf(bucket, key, "in a store of layout version %d", binary.BigEndian.Uint64(s))
			}
		case bytes.Equal(k, keyHosts), bytes.Equal(k, keyResources):
			if len(v) != 8 {
				c.Addf(bucket, key, "counter is not 8 bytes")
				ok = false
			} else if bytes.Equal(k, keyHosts) {
				nHosts = binary.BigEndian.Uint64(v)
			} else {
				nResources = binary.BigEndian.Uint64(v)
			}
		default:
			c.Addf(bucket, key, "unexpected key")
		}
	}
	if s := md.Get(keySchema); len(s) == 8 && binary.BigEndian.Uint64(s) >= schemaLog && md.Get(keyLog) == nil {
		c.Addf(bucket, string(keyLog), "missing in a store of layout version %d", binary.BigEndian.Uint64(s))
	}
	for _, k := range [][]byte{keySchema, keyMeta, keyHosts, keyResources} {
		if md.Get(k) == nil {
			c.Addf(bucket, string(k), "missing")
			if !bytes.Equal(k, keySchema) && !bytes.Equal(k, keyMeta) {
				ok = false
			}
		}
	}
	return nHosts, nResources, ok
}

func (c *checker) hosts(b *bolt.Bucket) (n uint64) {
	const bucket = "hosts"
	cur := b.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		key := string(k)
		if v == nil {
			c.Addf(bucket, key, "unexpected nested bucket")
			continue
		}
		n++
		if err := state.ValidateName(key); err != nil {
			c.Addf(bucket, key, "invalid key: %v", err)
		}
		h, err := record.DecodeHost(v)
		if err != nil {
			c.Addf(bucket, key, "%v", err)
			continue
		}
		if h.Name != key {
			c.Addf(bucket, key, "host named %q stored under another key", h.Name)
		}
	}
	return n
}

func (c *checker) operations(b *bolt.Bucket) {
	const bucket = "operations"
	cur := b.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		key := string(k)
		if v == nil {
			c.Addf(bucket, key, "unexpected nested bucket")
			continue
		}
		if err := state.ValidateName(key); err != nil {
			c.Addf(bucket, key, "invalid key: %v", err)
		}
		op, err := record.DecodeOperation(v)
		if err != nil {
			c.Addf(bucket, key, "%v", err)
			continue
		}
		if op.ID != key {
			c.Addf(bucket, key, "operation %q stored under another key", op.ID)
		}
	}
}

func (c *checker) resources(bk *buckets) (n uint64) {
	const bucket = "resources"
	cur := bk.resources.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		key := string(k)
		if v == nil {
			c.Addf(bucket, key, "unexpected nested bucket")
			continue
		}
		n++
		if err := state.ValidateName(key); err != nil {
			c.Addf(bucket, key, "invalid key: %v", err)
		}
		r, err := record.DecodeResource(v)
		if err != nil {
			c.Addf(bucket, key, "%v", err)
			continue
		}
		if bk.byType != nil && bk.byType.Get(indexKey(r.Type, k)) == nil {
			c.Addf(bucket, key, "missing from the resources_by_type index (type %q)", r.Type)
		}
	}
	return n
}

func (c *checker) index(bk *buckets) {
	const bucket = "resources_by_type"
	cur := bk.byType.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		key := string(k)
		i := bytes.IndexByte(k, 0)
		switch {
		case v == nil:
			c.Addf(bucket, key, "unexpected nested bucket")
			continue
		case i < 0:
			c.Addf(bucket, key, "malformed index key (no NUL between type and key)")
			continue
		case len(v) != 0:
			c.Addf(bucket, key, "index entry has a value")
		}
		typ, rk := k[:i], k[i+1:]
		rv := bk.resources.Get(rk)
		if rv == nil {
			c.Addf(bucket, key, "index entry of a missing resource %q", rk)
			continue
		}
		if got, err := record.ResourceType(rv); err == nil && got != string(typ) {
			c.Addf(bucket, key, "indexed under type %q, but resource %q has type %q", typ, rk, got)
		}
	}
}
