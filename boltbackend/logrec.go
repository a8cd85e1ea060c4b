package boltbackend

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// The payload of a log record: one group commit.
//
//	version    byte     logRecordVersion
//	prev       uvarint  the serial of the store before the group
//	meta       uvarint length, then the record-encoded state.Metadata
//	                    after the group
//	changes    uvarint count, then each change:
//	  kind     byte     1 host, 2 resource, 3 operation; +0x80: a delete
//	  key      uvarint length, then the key
//	  value    uvarint length, then the record (puts only)
//
// Records (hosts, resources, operations, the metadata) are encoded by
// internal/record, each with its own checksum; the log adds its own over
// the whole payload (internal/wal).
const logRecordVersion = 1

const deleteFlag = 0x80

// logged is one group in the log, not yet applied to bbolt: what the
// checkpointer applies, and what a read-only open overlays.
type logged struct {
	lsn     uint64
	prev    uint64 // the serial before the group
	size    int64  // the payload's size in the log
	meta    state.Metadata
	changes []prepared
}

// appendGroup encodes the group whose changes are those of reqs, which
// takes the store from serial prev to meta, onto dst.
func appendGroup(dst []byte, prev uint64, meta *state.Metadata, reqs []*request) ([]byte, error) {
	dst = append(dst, logRecordVersion)
	dst = binary.AppendUvarint(dst, prev)
	mb, err := record.EncodeMetadata(meta)
	if err != nil {
		return dst, err
	}
	dst = binary.AppendUvarint(dst, uint64(len(mb)))
	dst = append(dst, mb...)
	n := 0
	for _, r := range reqs {
		n += len(r.changes)
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for _, r := range reqs {
		for i := range r.changes {
			c := &r.changes[i]
			k := byte(c.kind)
			if c.value == nil {
				k |= deleteFlag
			}
			dst = append(dst, k)
			dst = binary.AppendUvarint(dst, uint64(len(c.key)))
			dst = append(dst, c.key...)
			if c.value != nil {
				dst = binary.AppendUvarint(dst, uint64(len(c.value)))
				dst = append(dst, c.value...)
			}
		}
	}
	return dst, nil
}

var errLogRecord = errors.New("malformed log record")

// decodeGroup decodes the payload p of the log record lsn. The changes'
// keys and values alias p. A resource put's index key is derived from
// its record.
func decodeGroup(lsn uint64, p []byte) (*logged, error) {
	g := &logged{lsn: lsn, size: int64(len(p))}
	fail := func(format string, args ...any) (*logged, error) {
		return nil, fmt.Errorf("log record %d: %s: %w", lsn, fmt.Sprintf(format, args...), errLogRecord)
	}
	if len(p) == 0 || p[0] != logRecordVersion {
		if len(p) > 0 && p[0] > logRecordVersion {
			return fail("record format version %d is newer than this program reads (%d)", p[0], logRecordVersion)
		}
		return fail("no record format version")
	}
	at := 1
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(p[at:])
		if n <= 0 {
			return 0, false
		}
		at += n
		return v, true
	}
	bytesOf := func() ([]byte, bool) {
		l, ok := uvarint()
		if !ok || l > uint64(len(p)-at) {
			return nil, false
		}
		b := p[at : at+int(l) : at+int(l)]
		at += int(l)
		return b, true
	}
	var ok bool
	if g.prev, ok = uvarint(); !ok {
		return fail("truncated serial")
	}
	mb, ok := bytesOf()
	if !ok {
		return fail("truncated metadata")
	}
	meta, err := record.DecodeMetadata(mb)
	if err != nil {
		return fail("metadata: %v", err)
	}
	g.meta = meta
	n, ok := uvarint()
	if !ok || n > uint64(len(p)-at) { // every change takes two bytes at least
		return fail("truncated change count")
	}
	g.changes = make([]prepared, n)
	for i := range g.changes {
		if at >= len(p) {
			return fail("truncated change %d", i)
		}
		k := p[at]
		at++
		c := &g.changes[i]
		c.kind = state.Kind(k &^ deleteFlag)
		if c.kind < state.KindHost || c.kind > state.KindOperation {
			return fail("change %d: kind %d", i, k)
		}
		if c.key, ok = bytesOf(); !ok || len(c.key) == 0 {
			return fail("change %d: truncated key", i)
		}
		if k&deleteFlag != 0 {
			continue
		}
		if c.value, ok = bytesOf(); !ok || len(c.value) == 0 {
			return fail("change %d %q: truncated record", i, c.key)
		}
		if c.kind == state.KindResource {
			typ, err := record.ResourceType(c.value)
			if err != nil {
				return fail("change %d %q: %v", i, c.key, err)
			}
			c.index = indexKey(typ, c.key)
		}
	}
	if at != len(p) {
		return fail("%d bytes after the last change", len(p)-at)
	}
	return g, nil
}
