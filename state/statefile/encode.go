package statefile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/go-ftl2/ftlstate/state"
)

// EncodeOptions adjust what Encode writes. The zero value (or nil) writes
// every record as it is.
type EncodeOptions struct {
	// Host, when set, is called with each host before it is written and
	// returns the host to write in its place (export's redaction), or nil
	// to leave the host out. It must not modify h: return a changed copy
	// (h.Clone()). The host is written under its original name.
	Host func(h *state.HostState) *state.HostState
	// Resource is Host's counterpart for resources; key is the resource's
	// key, under which it is written.
	Resource func(key string, r *state.ResourceState) *state.ResourceState
	// Operation is Host's counterpart for pending operations, written
	// under their IDs.
	Operation func(op *state.Operation) *state.Operation
	// Progress, when set, is called after each record (host, resource or
	// operation) is encoded, with the number of records encoded so far.
	Progress func(done int)
	// Cache, when set, keeps the encoding of each record from one call of
	// EncodeContents to the next, so that a writer that rewrites a whole
	// store after each change re-encodes only the records that changed.
	// Records are known by identity (their pointer): a record must never
	// change once it has been encoded with a Cache, which holds for the
	// records a Backend keeps (they are immutable). It is not used when
	// Host, Resource or Operation is set, nor by Encode. Operations are
	// not cached: few are pending at a time.
	Cache *Cache
}

// Cache keeps the encodings of records for EncodeOptions.Cache. After each
// call it holds the records that call wrote, and no others; its memory is
// about the size of the document. The zero value is ready to use. A Cache
// must not be used by two calls at once.
type Cache struct {
	hosts     map[*state.HostState][]byte
	resources map[*state.ResourceState][]byte
}

// Encode writes the contents of snap to w as a state.json document (see
// the package documentation for the format). The output is the same, byte
// for byte, as encoding/json writes the whole document with indent "  "
// and HTML escaping off (a json.Encoder with SetIndent("", "  ") and
// SetEscapeHTML(false)), but Encode holds only one record's encoding in
// memory at a time. It iterates snap once. Errors returned by snap are
// returned unchanged; errors writing to w are wrapped (errors.Is finds
// them). Encode buffers its writes and flushes them before it returns.
// opts.Cache is not used: a Snapshot hands out fresh copies.
func Encode(w io.Writer, snap state.Snapshot, opts *EncodeOptions) error {
	e := newEncoder(w, opts)
	e.cache = nil
	hosts := func(fn func(string, *state.HostState) error) error {
		return snap.Hosts(func(h *state.HostState) error { return fn(h.Name, h) })
	}
	ops := func(fn func(string, *state.Operation) error) error {
		return snap.Operations(func(op *state.Operation) error { return fn(op.ID, op) })
	}
	return e.document(snap.Metadata(), hosts, snap.Resources, ops)
}

// EncodeContents is Encode for a whole store held in memory: hosts are
// written under their keys in c.Hosts (which Contents.Validate checks are
// their names). It reads c's records without copying them; c must not
// change while it runs. A nil record is an error.
func EncodeContents(w io.Writer, c *state.Contents, opts *EncodeOptions) error {
	e := newEncoder(w, opts)
	hosts := func(fn func(string, *state.HostState) error) error {
		for _, name := range slices.Sorted(maps.Keys(c.Hosts)) {
			if err := fn(name, c.Hosts[name]); err != nil {
				return err
			}
		}
		return nil
	}
	resources := func(fn func(string, *state.ResourceState) error) error {
		for _, key := range slices.Sorted(maps.Keys(c.Resources)) {
			if err := fn(key, c.Resources[key]); err != nil {
				return err
			}
		}
		return nil
	}
	ops := func(fn func(string, *state.Operation) error) error {
		for _, id := range slices.Sorted(maps.Keys(c.Operations)) {
			if err := fn(id, c.Operations[id]); err != nil {
				return err
			}
		}
		return nil
	}
	return e.document(c.Metadata, hosts, resources, ops)
}

// writeError marks an error of the underlying writer, so that it is told
// apart from the snapshot's errors (returned unchanged).
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

type encoder struct {
	w    *bufio.Writer
	buf  bytes.Buffer
	enc  *json.Encoder // writes into buf
	kbuf bytes.Buffer
	kenc *json.Encoder // writes keys into kbuf
	opts EncodeOptions
	done int
	// cache is opts.Cache when it applies; next is what it holds after
	// this call.
	cache *Cache
	next  Cache
}

func newEncoder(w io.Writer, opts *EncodeOptions) *encoder {
	e := &encoder{w: bufio.NewWriterSize(w, 64<<10)}
	if opts != nil {
		e.opts = *opts
	}
	if c := e.opts.Cache; c != nil && e.opts.Host == nil && e.opts.Resource == nil && e.opts.Operation == nil {
		e.cache = c
		e.next = Cache{hosts: make(map[*state.HostState][]byte, len(c.hosts)), resources: make(map[*state.ResourceState][]byte, len(c.resources))}
	}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	e.kenc = json.NewEncoder(&e.kbuf)
	e.kenc.SetEscapeHTML(false)
	return e
}

// marshal returns the encoding of v as json.MarshalIndent(v, prefix, "  ")
// gives it, but without HTML escaping. The result is valid until the next
// call.
func (e *encoder) marshal(v any, prefix string) ([]byte, error) {
	e.enc.SetIndent(prefix, "  ")
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	b := e.buf.Bytes()
	return b[:len(b)-1], nil // Encode adds a newline
}

func (e *encoder) write(b []byte) error {
	if _, err := e.w.Write(b); err != nil {
		return &writeError{err}
	}
	return nil
}

func (e *encoder) writeString(s string) error {
	if _, err := e.w.WriteString(s); err != nil {
		return &writeError{err}
	}
	return nil
}

// member writes one "key": value member of a map nested at depth 2
// (hosts.NAME or resources.KEY), preceded by the map's opening brace or a
// comma. value is the value's encoding at that depth.
func (e *encoder) member(first bool, key string, value []byte) error {
	sep := ",\n    "
	if first {
		sep = "{\n    "
	}
	if err := e.writeString(sep); err != nil {
		return err
	}
	if err := e.key(key); err != nil {
		return err
	}
	if err := e.writeString(": "); err != nil {
		return err
	}
	if err := e.write(value); err != nil {
		return err
	}
	e.done++
	if e.opts.Progress != nil {
		e.opts.Progress(e.done)
	}
	return nil
}

// key writes k as encoding/json writes a map key (without HTML
// escaping): plain ASCII keys as they are, others through an Encoder.
func (e *encoder) key(k string) error {
	plain := true
	for i := 0; i < len(k) && plain; i++ {
		c := k[i]
		plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\'
	}
	if plain {
		if err := e.writeString(`"`); err != nil {
			return err
		}
		if err := e.writeString(k); err != nil {
			return err
		}
		return e.writeString(`"`)
	}
	e.kbuf.Reset()
	if err := e.kenc.Encode(k); err != nil {
		return err
	}
	b := e.kbuf.Bytes()
	return e.write(b[:len(b)-1])
}

// hostValue returns the encoding of h as a member of hosts.
func (e *encoder) hostValue(h *state.HostState) ([]byte, error) {
	if e.cache != nil {
		if b, ok := e.cache.hosts[h]; ok {
			e.next.hosts[h] = b
			return b, nil
		}
	}
	b, err := e.marshal(toWireHost(h), "    ")
	if err == nil && e.cache != nil {
		b = bytes.Clone(b)
		e.next.hosts[h] = b
	}
	return b, err
}

// resourceValue returns the encoding of r as a member of resources.
func (e *encoder) resourceValue(r *state.ResourceState) ([]byte, error) {
	if e.cache != nil {
		if b, ok := e.cache.resources[r]; ok {
			e.next.resources[r] = b
			return b, nil
		}
	}
	b, err := e.marshal(toWireResource(r), "    ")
	if err == nil && e.cache != nil {
		b = bytes.Clone(b)
		e.next.resources[r] = b
	}
	return b, err
}

func closeMap(e *encoder, empty bool) error {
	if empty {
		return e.writeString("{}")
	}
	return e.writeString("\n  }")
}

func (e *encoder) document(meta state.Metadata,
	hosts func(func(string, *state.HostState) error) error,
	resources func(func(string, *state.ResourceState) error) error,
	ops func(func(string, *state.Operation) error) error) error {
	err := e.body(meta, hosts, resources, ops)
	if err == nil {
		if ferr := e.w.Flush(); ferr != nil {
			err = &writeError{ferr}
		}
	}
	if err == nil && e.cache != nil {
		*e.cache = e.next
	}
	if we, ok := err.(*writeError); ok {
		return fmt.Errorf("statefile: write: %w", we.err)
	}
	return err
}

func (e *encoder) body(meta state.Metadata,
	hosts func(func(string, *state.HostState) error) error,
	resources func(func(string, *state.ResourceState) error) error,
	ops func(func(string, *state.Operation) error) error) error {
	if err := e.writeString("{\n  \"metadata\": "); err != nil {
		return err
	}
	b, err := e.marshal(toWireMeta(meta), "  ")
	if err != nil {
		return fmt.Errorf("statefile: metadata: %w", err)
	}
	if err := e.write(b); err != nil {
		return err
	}
	if err := e.writeString(",\n  \"hosts\": "); err != nil {
		return err
	}
	first := true
	err = hosts(func(name string, h *state.HostState) error {
		if h == nil {
			return fmt.Errorf("statefile: hosts.%s: nil record", state.PathKey(name))
		}
		if e.opts.Host != nil {
			if h = e.opts.Host(h); h == nil {
				return nil
			}
		}
		v, err := e.hostValue(h)
		if err != nil {
			return fmt.Errorf("statefile: hosts.%s: %w", state.PathKey(name), err)
		}
		if err := e.member(first, name, v); err != nil {
			return err
		}
		first = false
		return nil
	})
	if err != nil {
		return err
	}
	if err := closeMap(e, first); err != nil {
		return err
	}
	if err := e.writeString(",\n  \"resources\": "); err != nil {
		return err
	}
	first = true
	err = resources(func(key string, r *state.ResourceState) error {
		if r == nil {
			return fmt.Errorf("statefile: resources.%s: nil record", state.PathKey(key))
		}
		if e.opts.Resource != nil {
			if r = e.opts.Resource(key, r); r == nil {
				return nil
			}
		}
		v, err := e.resourceValue(r)
		if err != nil {
			return fmt.Errorf("statefile: resources.%s: %w", state.PathKey(key), err)
		}
		if err := e.member(first, key, v); err != nil {
			return err
		}
		first = false
		return nil
	})
	if err != nil {
		return err
	}
	if err := closeMap(e, first); err != nil {
		return err
	}
	// "operations" is written only when there are some, so that a store
	// without pending operations is the documented format byte for byte.
	first = true
	err = ops(func(id string, op *state.Operation) error {
		if op == nil {
			return fmt.Errorf("statefile: operations.%s: nil record", state.PathKey(id))
		}
		if e.opts.Operation != nil {
			if op = e.opts.Operation(op); op == nil {
				return nil
			}
		}
		v, err := e.marshal(toWireOperation(op), "    ")
		if err != nil {
			return fmt.Errorf("statefile: operations.%s: %w", state.PathKey(id), err)
		}
		if first {
			if err := e.writeString(",\n  \"operations\": "); err != nil {
				return err
			}
		}
		if err := e.member(first, id, v); err != nil {
			return err
		}
		first = false
		return nil
	})
	if err != nil {
		return err
	}
	if !first {
		if err := closeMap(e, false); err != nil {
			return err
		}
	}
	return e.writeString("\n}\n")
}
