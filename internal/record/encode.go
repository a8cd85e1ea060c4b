package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/go-ftl2/ftlstate/state"
)

// Version is the record format version this package writes, the first
// element of every record. Version 2 ends every record with a checksum
// (see the package documentation); version 1 records, without one, are
// still read.
const Version = 2

// versionNoChecksum is the first record format: no checksum.
const versionNoChecksum = 1

// checksumSize is the size of a record's checksum element: a MessagePack
// uint32 (0xce and 4 bytes, big-endian) holding the CRC-32C (Castagnoli)
// of every byte of the record before it.
const checksumSize = 5

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Field counts of each record, the version included and the checksum
// not. A host with Groups
// has one more field at the end (hostFieldsGroups); one without is
// written exactly as before that field existed.
const (
	hostFields       = 9
	hostFieldsGroups = hostFields + 1
	resourceFields   = 8
	metaFields       = 6
)

// Year limits of timestamps: what RFC 3339 (and so state.json) can hold.
const (
	minYear = 0
	maxYear = 9999
)

// appendWriter is the msgpack.Encoder's output: it appends to a slice and
// never fails.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

// encoder wraps a msgpack.Encoder writing into an appendWriter. err keeps
// the first error of the Encoder (its writer never fails, so err stays
// nil; it is checked anyway).
type encoder struct {
	w   appendWriter
	enc *msgpack.Encoder
	err error
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = msgpack.NewEncoder(&e.w)
	return e
}}

func getEncoder(dst []byte) *encoder {
	e := encoders.Get().(*encoder)
	e.w.b = dst
	e.err = nil
	return e
}

// begin writes a record's array header, for fields fields (the version
// included) and the checksum, and the version.
func (e *encoder) begin(fields int) {
	e.arrayLen(fields + 1)
	e.int(Version)
}

// finish appends the checksum of the record (the bytes after dst),
// returns the encoded bytes and releases e. On failure it returns dst as
// it was given.
func (e *encoder) finish(dst []byte, err error) ([]byte, error) {
	out := e.w.b
	if err == nil {
		err = e.err
	}
	e.w.b = nil
	encoders.Put(e)
	if err != nil {
		return dst, err
	}
	sum := crc32.Checksum(out[len(dst):], castagnoli)
	return binary.BigEndian.AppendUint32(append(out, codeUint32), sum), nil
}

func (e *encoder) check(err error) {
	if e.err == nil && err != nil {
		e.err = err
	}
}

func (e *encoder) arrayLen(n int) { e.check(e.enc.EncodeArrayLen(n)) }
func (e *encoder) mapLen(n int)   { e.check(e.enc.EncodeMapLen(n)) }
func (e *encoder) str(s string)   { e.check(e.enc.EncodeString(s)) }
func (e *encoder) int(n int64)    { e.check(e.enc.EncodeInt(n)) }
func (e *encoder) uint(n uint64)  { e.check(e.enc.EncodeUint(n)) }
func (e *encoder) nil()           { e.check(e.enc.EncodeNil()) }

func (e *encoder) time(t time.Time, path string) error {
	if err := checkTime(t, path); err != nil {
		return err
	}
	e.check(e.enc.EncodeTime(t))
	return nil
}

func checkTime(t time.Time, path string) error {
	if y := t.UTC().Year(); y < minYear || y > maxYear {
		return &state.FieldError{Path: path, Msg: fmt.Sprintf("year %d outside %d..%d", y, minYear, maxYear)}
	}
	return nil
}

// text writes a string field after checking that it is valid UTF-8.
func (e *encoder) text(s, path string) error {
	if !utf8.ValidString(s) {
		return &state.FieldError{Path: path, Msg: "not valid UTF-8"}
	}
	e.str(s)
	return nil
}

// EncodeHost returns the encoding of h. See AppendHost.
func EncodeHost(h *state.HostState) ([]byte, error) { return AppendHost(nil, h) }

// AppendHost appends the encoding of h to dst. A host that breaks the
// rules of the package documentation gives a *state.FieldError (matching
// state.ErrInvalid) and dst unchanged.
func AppendHost(dst []byte, h *state.HostState) ([]byte, error) {
	if h == nil {
		return dst, &state.FieldError{Msg: "nil host"}
	}
	if err := state.ValidateName(h.Name); err != nil {
		return dst, err.(*state.FieldError).Under("name")
	}
	if h.Port < 0 || h.Port > 65535 {
		return dst, &state.FieldError{Path: "port", Msg: "must be 0..65535"}
	}
	if err := state.ValidateGroups(h.Group, h.Groups); err != nil {
		return dst, err
	}
	e := getEncoder(dst)
	return e.finish(dst, e.host(h))
}

func (e *encoder) host(h *state.HostState) error {
	if len(h.Groups) > 0 {
		e.begin(hostFieldsGroups)
	} else {
		e.begin(hostFields)
	}
	e.str(h.Name)
	if err := e.text(h.Address, "address"); err != nil {
		return err
	}
	e.int(int64(h.Port))
	if err := e.text(h.User, "user"); err != nil {
		return err
	}
	e.str(h.Group) // checked by ValidateGroups
	if err := e.topMap(h.Vars, "vars"); err != nil {
		return err
	}
	if err := e.time(h.CreatedAt, "created_at"); err != nil {
		return err
	}
	if err := e.time(h.UpdatedAt, "updated_at"); err != nil {
		return err
	}
	if len(h.Groups) > 0 {
		e.arrayLen(len(h.Groups))
		for _, g := range h.Groups {
			e.str(g)
		}
	}
	return nil
}

// EncodeResource returns the encoding of r. See AppendResource.
func EncodeResource(r *state.ResourceState) ([]byte, error) { return AppendResource(nil, r) }

// AppendResource appends the encoding of r to dst. A resource that breaks
// the rules of the package documentation gives a *state.FieldError and dst
// unchanged.
func AppendResource(dst []byte, r *state.ResourceState) ([]byte, error) {
	if r == nil {
		return dst, &state.FieldError{Msg: "nil resource"}
	}
	if err := state.ValidateName(r.Type); err != nil {
		return dst, err.(*state.FieldError).Under("type")
	}
	e := getEncoder(dst)
	return e.finish(dst, e.resource(r))
}

func (e *encoder) resource(r *state.ResourceState) error {
	e.begin(resourceFields)
	e.str(r.Type)
	if err := e.text(r.ID, "id"); err != nil {
		return err
	}
	if err := e.text(r.Name, "name"); err != nil {
		return err
	}
	if err := e.topMap(r.Data, "data"); err != nil {
		return err
	}
	if err := e.tags(r.Tags); err != nil {
		return err
	}
	if err := e.time(r.CreatedAt, "created_at"); err != nil {
		return err
	}
	return e.time(r.UpdatedAt, "updated_at")
}

// EncodeMetadata returns the encoding of m. See AppendMetadata.
func EncodeMetadata(m *state.Metadata) ([]byte, error) { return AppendMetadata(nil, m) }

// AppendMetadata appends the encoding of m to dst. Strings must be valid
// UTF-8 and timestamps in years 0..9999; the error is a *state.FieldError.
func AppendMetadata(dst []byte, m *state.Metadata) ([]byte, error) {
	e := getEncoder(dst)
	return e.finish(dst, e.metadata(m))
}

func (e *encoder) metadata(m *state.Metadata) error {
	e.begin(metaFields)
	if err := e.text(m.Version, "version"); err != nil {
		return err
	}
	if err := e.time(m.CreatedAt, "created_at"); err != nil {
		return err
	}
	if err := e.time(m.UpdatedAt, "updated_at"); err != nil {
		return err
	}
	e.uint(m.Serial)
	return e.text(m.Lineage, "lineage")
}

func (e *encoder) tags(tags map[string]string) error {
	if tags == nil {
		e.nil()
		return nil
	}
	var buf [16]string
	keys := sortedKeys(buf[:0], tags)
	e.mapLen(len(keys))
	for _, k := range keys {
		p := "tags." + state.PathKey(k)
		if err := e.text(k, p); err != nil {
			return err
		}
		if err := e.text(tags[k], p); err != nil {
			return err
		}
	}
	return nil
}

// topMap writes Vars or Data: nil or a map at nesting level 1.
func (e *encoder) topMap(m map[string]any, path string) error {
	if m == nil {
		e.nil()
		return nil
	}
	if err := e.strMap(m, 1); err != nil {
		return err.(*state.FieldError).Under(path)
	}
	return nil
}

// strMap writes m, a container at nesting level depth. Errors are
// *state.FieldError values with paths relative to m.
func (e *encoder) strMap(m map[string]any, depth int) error {
	if depth > state.MaxValueDepth {
		return &state.FieldError{Msg: fmt.Sprintf("nested deeper than %d levels", state.MaxValueDepth)}
	}
	var buf [16]string
	keys := sortedKeys(buf[:0], m)
	e.mapLen(len(keys))
	for _, k := range keys {
		if !utf8.ValidString(k) {
			return &state.FieldError{Path: state.PathKey(k), Msg: "key is not valid UTF-8"}
		}
		e.str(k)
		if err := e.value(m[k], depth); err != nil {
			return err.(*state.FieldError).Under(state.PathKey(k))
		}
	}
	return nil
}

// value writes v, an element of a container at level depth.
func (e *encoder) value(v any, depth int) error {
	switch v := v.(type) {
	case nil:
		e.nil()
	case bool:
		e.check(e.enc.EncodeBool(v))
	case int64:
		e.int(v)
	case float64:
		if msg := badFloat(v); msg != "" {
			return &state.FieldError{Msg: msg}
		}
		e.check(e.enc.EncodeFloat64(v))
	case string:
		if !utf8.ValidString(v) {
			return &state.FieldError{Msg: "string is not valid UTF-8"}
		}
		e.str(v)
	case []any:
		if v == nil {
			e.nil()
			return nil
		}
		if depth+1 > state.MaxValueDepth {
			return &state.FieldError{Msg: fmt.Sprintf("nested deeper than %d levels", state.MaxValueDepth)}
		}
		e.arrayLen(len(v))
		for i, el := range v {
			if err := e.value(el, depth+1); err != nil {
				return err.(*state.FieldError).Under(strconv.Itoa(i))
			}
		}
	case map[string]any:
		if v == nil {
			e.nil()
			return nil
		}
		return e.strMap(v, depth+1)
	default:
		return &state.FieldError{Msg: fmt.Sprintf("%T is not in the value model (normalize it first)", v)}
	}
	return nil
}

// badFloat says what is wrong with f as a stored float, or "" when
// nothing is: NaN and infinities are not JSON, and integral values in
// int64's range are stored as int64 (state.NormalizeValue).
func badFloat(f float64) string {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return fmt.Sprintf("%v is not representable in JSON", f)
	case f == math.Trunc(f) && f >= -(1<<63) && f < (1<<63):
		return fmt.Sprintf("integral float %v must be stored as an integer", f)
	}
	return ""
}

func sortedKeys[V any](buf []string, m map[string]V) []string {
	for k := range m {
		buf = append(buf, k)
	}
	slices.Sort(buf)
	return buf
}
