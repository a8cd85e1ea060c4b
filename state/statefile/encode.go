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
}

// Encode writes the contents of snap to w as a state.json document (see
// the package documentation for the format). The output is the same, byte
// for byte, as encoding/json writes the whole document with indent "  "
// and HTML escaping off (a json.Encoder with SetIndent("", "  ") and
// SetEscapeHTML(false)), but Encode holds only one record's encoding in
// memory at a time. It iterates snap once. Errors returned by snap are
// returned unchanged; errors writing to w are wrapped (errors.Is finds
// them). Encode buffers its writes and flushes them before it returns.
func Encode(w io.Writer, snap state.Snapshot, opts *EncodeOptions) error {
	e := newEncoder(w, opts)
	hosts := func(fn func(string, *state.HostState) error) error {
		return snap.Hosts(func(h *state.HostState) error { return fn(h.Name, h) })
	}
	ops := func(fn func(string, *state.Operation) error) error {
		return snap.Operations(func(op *state.Operation) error { return fn(op.ID, op) })
	}
	return e.document(snap.Metadata(), e.hostSource(hosts), e.resourceSource(snap.Resources), e.operationSource(ops))
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
	return e.document(c.Metadata, e.hostSource(hosts), e.resourceSource(resources), e.operationSource(ops))
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
}

func newEncoder(w io.Writer, opts *EncodeOptions) *encoder {
	e := &encoder{w: bufio.NewWriterSize(w, 64<<10)}
	if opts != nil {
		e.opts = *opts
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

// hostValue returns the encoding of h as a member of hosts, valid until
// the next encoding.
func (e *encoder) hostValue(h *state.HostState) ([]byte, error) {
	return e.marshal(toWireHost(h), "    ")
}

// resourceValue returns the encoding of r as a member of resources, valid
// until the next encoding.
func (e *encoder) resourceValue(r *state.ResourceState) ([]byte, error) {
	return e.marshal(toWireResource(r), "    ")
}

func closeMap(e *encoder, empty bool) error {
	if empty {
		return e.writeString("{}")
	}
	return e.writeString("\n  }")
}

// source yields the members of one section of a document (hosts,
// resources, operations), in key order, each as its key and the encoding
// of its value.
type source func(fn func(key string, value []byte) error) error

// hostSource encodes the hosts that each yields, applying opts.Host.
func (e *encoder) hostSource(each func(func(string, *state.HostState) error) error) source {
	return func(fn func(string, []byte) error) error {
		return each(func(name string, h *state.HostState) error {
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
			return fn(name, v)
		})
	}
}

// resourceSource encodes the resources that each yields, applying
// opts.Resource.
func (e *encoder) resourceSource(each func(func(string, *state.ResourceState) error) error) source {
	return func(fn func(string, []byte) error) error {
		return each(func(key string, r *state.ResourceState) error {
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
			return fn(key, v)
		})
	}
}

// operationSource encodes the operations that each yields, applying
// opts.Operation.
func (e *encoder) operationSource(each func(func(string, *state.Operation) error) error) source {
	return func(fn func(string, []byte) error) error {
		return each(func(id string, op *state.Operation) error {
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
			return fn(id, v)
		})
	}
}

func (e *encoder) document(meta state.Metadata, hosts, resources, ops source) error {
	err := e.body(meta, hosts, resources, ops)
	if err == nil {
		if ferr := e.w.Flush(); ferr != nil {
			err = &writeError{ferr}
		}
	}
	if we, ok := err.(*writeError); ok {
		return fmt.Errorf("statefile: write: %w", we.err)
	}
	return err
}

func (e *encoder) body(meta state.Metadata, hosts, resources, ops source) error {
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
	for _, sec := range []struct {
		name     string
		src      source
		optional bool
	}{{"hosts", hosts, false}, {"resources", resources, false}, {"operations", ops, true}} {
		// "operations" is written only when there are some, so that a
		// store without pending operations is the documented format byte
		// for byte.
		if !sec.optional {
			if err := e.writeString(",\n  \"" + sec.name + "\": "); err != nil {
				return err
			}
		}
		first := true
		err := sec.src(func(key string, v []byte) error {
			if first && sec.optional {
				if err := e.writeString(",\n  \"" + sec.name + "\": "); err != nil {
					return err
				}
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
		if !sec.optional || !first {
			if err := closeMap(e, first); err != nil {
				return err
			}
		}
	}
	return e.writeString("\n}\n")
}
