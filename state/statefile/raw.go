package statefile

import (
	"bytes"
	"io"
	"maps"
	"slices"

	"github.com/go-ftl2/ftlstate/state"
)

// Raw is a store held as the text of its records: for each host, resource
// and pending operation, the JSON value a document holds for it. A writer
// that rewrites the whole document after each change keeps a Raw rather
// than the decoded records: it takes about the size of the document (the
// decoded records take twice that and more), and a rewrite copies the
// text of every record it did not change instead of encoding it again.
//
// DecodeRaw fills one from a document (each value exactly as the document
// has it, sharing the document's memory); HostValue, ResourceValue and
// OperationValue give the text of a new record, as EncodeContents writes
// it; EncodeRaw writes the document; Snapshot decodes records as they are
// asked for. A Raw's maps and byte slices must not change once they are
// in use: a writer makes new maps for each change.
type Raw struct {
	Metadata state.Metadata
	// Hosts, Resources and Operations map a record's key to its JSON
	// value.
	Hosts      map[string][]byte
	Resources  map[string][]byte
	Operations map[string][]byte
}

// DecodeRaw reads one state.json document as Decode does, with every
// check and error of Decode, but keeps each record as its text (see Raw)
// instead of its decoded form. The values share the memory of the
// document as read, so that the Raw costs about the size of the document.
// A record written by hand keeps its formatting until it is changed.
func DecodeRaw(r io.Reader, opts *DecodeOptions) (*Raw, error) {
	_, raw, err := decode(r, opts, true)
	return raw, err
}

// EncodeRaw writes the document r holds to w: the metadata, then each
// record's text under its key, in key order; operations only when there
// are some. A Raw decoded from a document this package wrote (or built
// from HostValue and the like) is written exactly as EncodeContents would
// write its records. Errors writing to w are wrapped.
func EncodeRaw(w io.Writer, r *Raw) error {
	e := newEncoder(w, nil)
	return e.document(r.Metadata, rawSource(r.Hosts), rawSource(r.Resources), rawSource(r.Operations))
}

func rawSource(m map[string][]byte) source {
	return func(fn func(string, []byte) error) error {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if err := fn(k, m[k]); err != nil {
				return err
			}
		}
		return nil
	}
}

// HostValue returns the text of h (normalized) as EncodeContents writes it
// in a document, for a Raw.
func HostValue(h *state.HostState) ([]byte, error) {
	e := newEncoder(io.Discard, nil)
	b, err := e.hostValue(h)
	return bytes.Clone(b), err
}

// ResourceValue returns the text of r (normalized) as EncodeContents
// writes it in a document, for a Raw.
func ResourceValue(r *state.ResourceState) ([]byte, error) {
	e := newEncoder(io.Discard, nil)
	b, err := e.resourceValue(r)
	return bytes.Clone(b), err
}

// OperationValue returns the text of op (normalized) as EncodeContents
// writes it in a document, for a Raw.
func OperationValue(op *state.Operation) ([]byte, error) {
	e := newEncoder(io.Discard, nil)
	b, err := e.marshal(toWireOperation(op), "    ")
	return bytes.Clone(b), err
}

// DecodeHost decodes the text of host name, as a Raw holds it, with the
// checks of Decode. Errors match state.ErrCorrupt.
func DecodeHost(name string, b []byte) (*state.HostState, error) {
	d, c := rawDecoder(b, "hosts", name)
	if err := d.host(c, name); err != nil {
		return nil, d.fail(err)
	}
	return c.Hosts[name], d.end()
}

// DecodeResource decodes the text of the resource stored under key, as a
// Raw holds it. Errors match state.ErrCorrupt.
func DecodeResource(key string, b []byte) (*state.ResourceState, error) {
	d, c := rawDecoder(b, "resources", key)
	if err := d.resource(c, key, 0); err != nil {
		return nil, d.fail(err)
	}
	return c.Resources[key], d.end()
}

// DecodeOperation decodes the text of pending operation id, as a Raw holds
// it. Errors match state.ErrCorrupt.
func DecodeOperation(id string, b []byte) (*state.Operation, error) {
	d, c := rawDecoder(b, "operations", id)
	if err := d.operation(c, id, 0); err != nil {
		return nil, d.fail(err)
	}
	return c.Operations[id], d.end()
}

func rawDecoder(b []byte, section, key string) (*decoder, *state.Contents) {
	d := &decoder{data: b}
	d.push(section)
	d.push(key)
	d.ws()
	return d, &state.Contents{Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}, Operations: map[string]*state.Operation{}}
}

// fail gives err, from decoding a record's text, its position in that
// text.
func (d *decoder) fail(err error) error {
	if e, ok := err.(*Error); ok {
		e.position(d.data)
		return e
	}
	return err
}

// end checks that nothing follows the record.
func (d *decoder) end() error {
	d.ws()
	if d.off < len(d.data) {
		return d.fail(d.errAt(d.off, "unexpected data after the record"))
	}
	return nil
}

// Snapshot returns a state.Snapshot over r that decodes each record when
// it is asked for (so that a View costs memory only for what it reads).
// Records it hands out belong to the caller. r must not change while the
// Snapshot is in use. Errors decoding a record match state.ErrCorrupt and
// name it.
func (r *Raw) Snapshot() state.Snapshot { return &rawSnapshot{r: r} }

type rawSnapshot struct{ r *Raw }

func (s *rawSnapshot) Metadata() state.Metadata { return s.r.Metadata }

func (s *rawSnapshot) Len() (int, int) { return len(s.r.Hosts), len(s.r.Resources) }

func (s *rawSnapshot) Host(name string) (*state.HostState, bool, error) {
	b, ok := s.r.Hosts[name]
	if !ok {
		return nil, false, nil
	}
	h, err := DecodeHost(name, b)
	return h, err == nil, err
}

func (s *rawSnapshot) Resource(key string) (*state.ResourceState, bool, error) {
	b, ok := s.r.Resources[key]
	if !ok {
		return nil, false, nil
	}
	r, err := DecodeResource(key, b)
	return r, err == nil, err
}

func (s *rawSnapshot) Operation(id string) (*state.Operation, bool, error) {
	b, ok := s.r.Operations[id]
	if !ok {
		return nil, false, nil
	}
	op, err := DecodeOperation(id, b)
	return op, err == nil, err
}

func (s *rawSnapshot) Hosts(fn func(*state.HostState) error) error {
	for _, name := range slices.Sorted(maps.Keys(s.r.Hosts)) {
		h, err := DecodeHost(name, s.r.Hosts[name])
		if err != nil {
			return err
		}
		if err := fn(h); err != nil {
			return err
		}
	}
	return nil
}

func (s *rawSnapshot) Resources(fn func(string, *state.ResourceState) error) error {
	for _, key := range slices.Sorted(maps.Keys(s.r.Resources)) {
		r, err := DecodeResource(key, s.r.Resources[key])
		if err != nil {
			return err
		}
		if err := fn(key, r); err != nil {
			return err
		}
	}
	return nil
}

func (s *rawSnapshot) Operations(fn func(*state.Operation) error) error {
	for _, id := range slices.Sorted(maps.Keys(s.r.Operations)) {
		op, err := DecodeOperation(id, s.r.Operations[id])
		if err != nil {
			return err
		}
		if err := fn(op); err != nil {
			return err
		}
	}
	return nil
}
