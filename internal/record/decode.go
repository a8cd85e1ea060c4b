package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"time"
	"unicode/utf8"

	"github.com/go-ftl2/ftlstate/state"
)

// MessagePack type codes (the values of package msgpcode, which declares
// them as variables; a test checks that they agree).
const (
	codePosFixNumMax = 0x7f
	codeFixMapLow    = 0x80
	codeFixMapHigh   = 0x8f
	codeFixArrayLow  = 0x90
	codeFixArrayHigh = 0x9f
	codeFixStrLow    = 0xa0
	codeFixStrHigh   = 0xbf
	codeNil          = 0xc0
	codeFalse        = 0xc2
	codeTrue         = 0xc3
	codeExt8         = 0xc7
	codeFloat        = 0xca
	codeDouble       = 0xcb
	codeUint8        = 0xcc
	codeUint16       = 0xcd
	codeUint32       = 0xce
	codeUint64       = 0xcf
	codeInt8         = 0xd0
	codeInt16        = 0xd1
	codeInt32        = 0xd2
	codeInt64        = 0xd3
	codeFixExt4      = 0xd6
	codeFixExt8      = 0xd7
	codeStr8         = 0xd9
	codeStr16        = 0xda
	codeStr32        = 0xdb
	codeArray16      = 0xdc
	codeArray32      = 0xdd
	codeMap16        = 0xde
	codeMap32        = 0xdf
	codeNegFixNumMin = 0xe0

	// timeExtType is the MessagePack timestamp extension type, -1.
	timeExtType = 0xff
)

// prealloc bounds the capacity allocated up front for a list or map from
// its declared length; beyond it, containers grow as elements arrive, so
// memory follows the bytes actually present.
const prealloc = 1024

// corruptError reports bytes that are not a valid record. It matches
// state.ErrCorrupt.
type corruptError struct {
	off int
	msg string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("record: byte %d: %s", e.off, e.msg)
}

func (e *corruptError) Unwrap() error { return state.ErrCorrupt }

// decoder reads MessagePack from b, starting at off. Strings are cut from
// src, one copy of b made when the first string is read, so that a record
// costs one allocation for all its strings (they share its memory) rather
// than one each.
type decoder struct {
	b   []byte
	src string
	off int
}

func newDecoder(b []byte) decoder { return decoder{b: b} }

func (d *decoder) errorf(format string, args ...any) error {
	return &corruptError{off: d.off, msg: fmt.Sprintf(format, args...)}
}

// invalid reports a decoded field that breaks a validation rule.
func (d *decoder) invalid(path string, err error) error {
	fe := err.(*state.FieldError)
	if path != "" {
		fe = fe.Under(path)
	}
	return &corruptError{off: d.off, msg: "invalid " + fe.Error()}
}

// short truncates s for an error message.
func short(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

func (d *decoder) rest() int { return len(d.b) - d.off }

func (d *decoder) code() (byte, error) {
	if d.off >= len(d.b) {
		return 0, d.errorf("unexpected end of input")
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

// take returns the next n bytes (no copy).
func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || n > d.rest() {
		return nil, d.errorf("length %d exceeds the %d bytes left", n, d.rest())
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p, nil
}

func (d *decoder) u8() (int, error) {
	p, err := d.take(1)
	if err != nil {
		return 0, err
	}
	return int(p[0]), nil
}

func (d *decoder) u16() (int, error) {
	p, err := d.take(2)
	if err != nil {
		return 0, err
	}
	return int(binary.BigEndian.Uint16(p)), nil
}

func (d *decoder) u32() (uint32, error) {
	p, err := d.take(4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(p), nil
}

func (d *decoder) u64() (uint64, error) {
	p, err := d.take(8)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(p), nil
}

// length reads the length that follows a str, array or map code of width
// 8, 16 or 32 bits, and checks that at least n*unit bytes remain.
func (d *decoder) length(bits, unit int) (int, error) {
	var n int
	var err error
	switch bits {
	case 8:
		n, err = d.u8()
	case 16:
		n, err = d.u16()
	default:
		var u uint32
		u, err = d.u32()
		n = int(u)
	}
	if err != nil {
		return 0, err
	}
	return n, d.fits(n, unit)
}

// fits checks that n items of at least unit bytes each can follow.
func (d *decoder) fits(n, unit int) error {
	if n > d.rest()/unit {
		return d.errorf("length %d exceeds the %d bytes left", n, d.rest())
	}
	return nil
}

// arrayLen reads an array header.
func (d *decoder) arrayLen() (int, error) {
	c, err := d.code()
	if err != nil {
		return 0, err
	}
	return d.arrayLenOf(c)
}

func (d *decoder) arrayLenOf(c byte) (int, error) {
	switch {
	case c >= codeFixArrayLow && c <= codeFixArrayHigh:
		n := int(c - codeFixArrayLow)
		return n, d.fits(n, 1)
	case c == codeArray16:
		return d.length(16, 1)
	case c == codeArray32:
		return d.length(32, 1)
	}
	return 0, d.unexpected(c, "an array")
}

// mapLenOf reads the length of a map whose code is c; -1 means nil.
func (d *decoder) mapLenOf(c byte) (int, error) {
	switch {
	case c == codeNil:
		return -1, nil
	case c >= codeFixMapLow && c <= codeFixMapHigh:
		n := int(c - codeFixMapLow)
		return n, d.fits(n, 2)
	case c == codeMap16:
		return d.length(16, 2)
	case c == codeMap32:
		return d.length(32, 2)
	}
	return 0, d.unexpected(c, "a map or nil")
}

func (d *decoder) unexpected(c byte, want string) error {
	d.off--
	return d.errorf("type code 0x%02x where %s was expected", c, want)
}

// str reads a string, which must be valid UTF-8.
func (d *decoder) str() (string, error) {
	c, err := d.code()
	if err != nil {
		return "", err
	}
	return d.strOf(c)
}

// strOf reads the string whose code c was just read.
func (d *decoder) strOf(c byte) (string, error) {
	codeOff := d.off - 1
	var n int
	var err error
	switch {
	case c >= codeFixStrLow && c <= codeFixStrHigh:
		n = int(c - codeFixStrLow)
	case c == codeStr8:
		n, err = d.length(8, 1)
	case c == codeStr16:
		n, err = d.length(16, 1)
	case c == codeStr32:
		n, err = d.length(32, 1)
	default:
		return "", d.unexpected(c, "a string")
	}
	if err != nil {
		return "", err
	}
	start := d.off
	if _, err := d.take(n); err != nil {
		return "", err
	}
	if n == 0 {
		return "", nil
	}
	if d.src == "" {
		d.src = string(d.b)
	}
	s := d.src[start:d.off]
	if !utf8.ValidString(s) {
		d.off = codeOff
		return "", d.errorf("string is not valid UTF-8")
	}
	return s, nil
}

// int reads an integer that fits in int64.
func (d *decoder) int() (int64, error) {
	c, err := d.code()
	if err != nil {
		return 0, err
	}
	return d.intOf(c)
}

func (d *decoder) intOf(c byte) (int64, error) {
	switch {
	case c <= codePosFixNumMax:
		return int64(c), nil
	case c >= codeNegFixNumMin:
		return int64(int8(c)), nil
	}
	var u uint64
	var err error
	switch c {
	case codeUint8:
		var n int
		n, err = d.u8()
		return int64(n), err
	case codeUint16:
		var n int
		n, err = d.u16()
		return int64(n), err
	case codeUint32:
		var n uint32
		n, err = d.u32()
		return int64(n), err
	case codeUint64:
		if u, err = d.u64(); err != nil {
			return 0, err
		}
		if u > math.MaxInt64 {
			return 0, d.errorf("integer %d overflows int64", u)
		}
		return int64(u), nil
	case codeInt8:
		var n int
		n, err = d.u8()
		return int64(int8(n)), err
	case codeInt16:
		var n int
		n, err = d.u16()
		return int64(int16(n)), err
	case codeInt32:
		var n uint32
		n, err = d.u32()
		return int64(int32(n)), err
	case codeInt64:
		u, err = d.u64()
		return int64(u), err
	}
	return 0, d.unexpected(c, "an integer")
}

// uint reads a non-negative integer (any integer encoding).
func (d *decoder) uint() (uint64, error) {
	c, err := d.code()
	if err != nil {
		return 0, err
	}
	if c == codeUint64 {
		return d.u64()
	}
	n, err := d.intOf(c)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, d.errorf("negative integer %d where a count was expected", n)
	}
	return uint64(n), nil
}

// time reads a timestamp extension: 32-bit seconds, 30-bit nanoseconds and
// 34-bit seconds, or 32-bit nanoseconds and 64-bit signed seconds.
func (d *decoder) time() (time.Time, error) {
	start := d.off
	c, err := d.code()
	if err != nil {
		return time.Time{}, err
	}
	var size int
	switch c {
	case codeFixExt4:
		size = 4
	case codeFixExt8:
		size = 8
	case codeExt8:
		if size, err = d.u8(); err != nil {
			return time.Time{}, err
		}
		if size != 12 {
			d.off = start
			return time.Time{}, d.errorf("timestamp of %d bytes", size)
		}
	default:
		return time.Time{}, d.unexpected(c, "a timestamp")
	}
	typ, err := d.u8()
	if err != nil {
		return time.Time{}, err
	}
	if typ != timeExtType {
		d.off = start
		return time.Time{}, d.errorf("extension type %d where a timestamp (-1) was expected", int8(typ))
	}
	p, err := d.take(size)
	if err != nil {
		return time.Time{}, err
	}
	var sec int64
	var nsec uint32
	switch size {
	case 4:
		sec = int64(binary.BigEndian.Uint32(p))
	case 8:
		v := binary.BigEndian.Uint64(p)
		nsec, sec = uint32(v>>34), int64(v&(1<<34-1))
	case 12:
		nsec, sec = binary.BigEndian.Uint32(p), int64(binary.BigEndian.Uint64(p[4:]))
	}
	if nsec >= 1e9 {
		d.off = start
		return time.Time{}, d.errorf("timestamp nanoseconds %d out of range", nsec)
	}
	// Bound the seconds before converting, so that time.Unix cannot wrap.
	const lo, hi = -62167219200, 253402300799 // 0000-01-01, 9999-12-31T23:59:59 UTC
	if sec < lo || sec > hi {
		d.off = start
		return time.Time{}, d.errorf("timestamp outside years %d..%d", minYear, maxYear)
	}
	return time.Unix(sec, int64(nsec)).UTC(), nil
}

// topMap reads Vars or Data: nil or a map at nesting level 1.
func (d *decoder) topMap() (map[string]any, error) {
	c, err := d.code()
	if err != nil {
		return nil, err
	}
	n, err := d.mapLenOf(c)
	if err != nil || n < 0 {
		return nil, err
	}
	return d.strMap(n, 1)
}

// strMap reads the n entries of a map at nesting level depth.
func (d *decoder) strMap(n, depth int) (map[string]any, error) {
	if depth > state.MaxValueDepth {
		return nil, d.errorf("nested deeper than %d levels", state.MaxValueDepth)
	}
	m := make(map[string]any, min(n, prealloc))
	for i := range n {
		start := d.off
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		m[k] = v
		if len(m) != i+1 {
			d.off = start
			return nil, d.errorf("duplicate map key %q", short(k))
		}
	}
	return m, nil
}

// value reads an element of a container at level depth.
func (d *decoder) value(depth int) (any, error) {
	c, err := d.code()
	if err != nil {
		return nil, err
	}
	switch {
	case c <= codePosFixNumMax:
		return int64(c), nil
	case c >= codeNegFixNumMin:
		return int64(int8(c)), nil
	case c >= codeFixStrLow && c <= codeFixStrHigh:
		return d.strOf(c)
	case c >= codeFixMapLow && c <= codeFixMapHigh:
		n := int(c - codeFixMapLow)
		if err := d.fits(n, 2); err != nil {
			return nil, err
		}
		return d.strMap(n, depth+1)
	case c >= codeFixArrayLow && c <= codeFixArrayHigh:
		n := int(c - codeFixArrayLow)
		if err := d.fits(n, 1); err != nil {
			return nil, err
		}
		return d.list(n, depth+1)
	}
	switch c {
	case codeNil:
		return nil, nil
	case codeFalse:
		return false, nil
	case codeTrue:
		return true, nil
	case codeUint8, codeUint16, codeUint32, codeUint64, codeInt8, codeInt16, codeInt32, codeInt64:
		return d.intOf(c)
	case codeFloat, codeDouble:
		start := d.off - 1
		var f float64
		if c == codeFloat {
			u, err := d.u32()
			if err != nil {
				return nil, err
			}
			f = float64(math.Float32frombits(u))
		} else {
			u, err := d.u64()
			if err != nil {
				return nil, err
			}
			f = math.Float64frombits(u)
		}
		if msg := badFloat(f); msg != "" {
			d.off = start
			return nil, d.errorf("%s", msg)
		}
		return f, nil
	case codeStr8, codeStr16, codeStr32:
		return d.strOf(c)
	case codeArray16, codeArray32:
		n, err := d.arrayLenOf(c)
		if err != nil {
			return nil, err
		}
		return d.list(n, depth+1)
	case codeMap16, codeMap32:
		n, err := d.mapLenOf(c)
		if err != nil {
			return nil, err
		}
		return d.strMap(n, depth+1)
	}
	return nil, d.unexpected(c, "a JSON value")
}

// list reads the n elements of a list at nesting level depth.
func (d *decoder) list(n, depth int) ([]any, error) {
	if depth > state.MaxValueDepth {
		return nil, d.errorf("nested deeper than %d levels", state.MaxValueDepth)
	}
	s := make([]any, 0, min(n, prealloc))
	for range n {
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		s = append(s, v)
	}
	return s, nil
}

func (d *decoder) tags() (map[string]string, error) {
	c, err := d.code()
	if err != nil {
		return nil, err
	}
	n, err := d.mapLenOf(c)
	if err != nil || n < 0 {
		return nil, err
	}
	m := make(map[string]string, min(n, prealloc))
	for i := range n {
		start := d.off
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		v, err := d.str()
		if err != nil {
			return nil, err
		}
		m[k] = v
		if len(m) != i+1 {
			d.off = start
			return nil, d.errorf("duplicate tag %q", short(k))
		}
	}
	return m, nil
}

// header reads a record's array header and version.
func (d *decoder) header(kind string, fields int) error {
	_, err := d.headerOf(kind, fields, fields)
	return err
}

// headerOf reads the array header and version of a record that has from
// minFields to maxFields fields (the version included, the checksum not),
// and returns how many it has. A record of version 2 must end with the
// checksum of all its other bytes: it is verified first, before any field
// is read, and cut off.
func (d *decoder) headerOf(kind string, minFields, maxFields int) (int, error) {
	n, err := d.arrayLen()
	if err != nil {
		return 0, err
	}
	v, err := d.int()
	if err != nil {
		return 0, err
	}
	switch v {
	case versionNoChecksum:
	case Version:
		if err := d.checksum(); err != nil {
			return 0, err
		}
		n-- // the checksum element
	default:
		return 0, d.errorf("%s record format version %d, want %d or %d", kind, v, versionNoChecksum, Version)
	}
	if n < minFields || n > maxFields {
		want := fmt.Sprint(minFields)
		if maxFields > minFields {
			want = fmt.Sprintf("%d to %d", minFields, maxFields)
		}
		return 0, d.errorf("%s record has %d fields, want %s", kind, n, want)
	}
	return n, nil
}

// checksum verifies the checksum element that ends the record and cuts it
// off the input.
func (d *decoder) checksum() error {
	end := len(d.b) - checksumSize
	if end < d.off || d.b[end] != codeUint32 {
		return d.errorf("record without its checksum (truncated or damaged)")
	}
	want := binary.BigEndian.Uint32(d.b[end+1:])
	if got := crc32.Checksum(d.b[:end], castagnoli); got != want {
		return d.errorf("checksum mismatch (stored %08x, computed %08x): the record is damaged", want, got)
	}
	d.b = d.b[:end]
	return nil
}

func (d *decoder) end() error {
	if d.rest() != 0 {
		return d.errorf("%d bytes after the record", d.rest())
	}
	return nil
}

// DecodeHost decodes a host record. Errors match state.ErrCorrupt.
func DecodeHost(b []byte) (*state.HostState, error) {
	d := newDecoder(b)
	fields, err := d.headerOf("host", hostFields, hostFieldsGroups)
	if err != nil {
		return nil, err
	}
	h := &state.HostState{}
	if h.Name, err = d.str(); err != nil {
		return nil, err
	}
	if err := state.ValidateName(h.Name); err != nil {
		return nil, d.invalid("name", err)
	}
	if h.Address, err = d.str(); err != nil {
		return nil, err
	}
	port, err := d.int()
	if err != nil {
		return nil, err
	}
	if port < 0 || port > 65535 {
		return nil, d.invalid("", &state.FieldError{Path: "port", Msg: "must be 0..65535"})
	}
	h.Port = int(port)
	if h.User, err = d.str(); err != nil {
		return nil, err
	}
	if h.Group, err = d.str(); err != nil {
		return nil, err
	}
	if h.Vars, err = d.topMap(); err != nil {
		return nil, err
	}
	if h.CreatedAt, err = d.time(); err != nil {
		return nil, err
	}
	if h.UpdatedAt, err = d.time(); err != nil {
		return nil, err
	}
	if fields == hostFieldsGroups {
		if h.Groups, err = d.groups(); err != nil {
			return nil, err
		}
	}
	if err := state.ValidateGroups(h.Group, h.Groups); err != nil {
		return nil, d.invalid("", err)
	}
	return h, d.end()
}

// groups reads a host's Groups: a list of at least one string (a host
// without Groups has no such field).
func (d *decoder) groups() ([]string, error) {
	n, err := d.arrayLen()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		d.off--
		return nil, d.errorf("empty groups list (a host without groups has no groups field)")
	}
	groups := make([]string, 0, min(n, prealloc))
	for range n {
		g, err := d.str()
		if err != nil {
			return nil, err
		}
		groups = append(groups, g)
	}
	return groups, nil
}

// DecodeResource decodes a resource record. Errors match
// state.ErrCorrupt.
func DecodeResource(b []byte) (*state.ResourceState, error) {
	d := newDecoder(b)
	if err := d.header("resource", resourceFields); err != nil {
		return nil, err
	}
	r := &state.ResourceState{}
	var err error
	if r.Type, err = d.str(); err != nil {
		return nil, err
	}
	if err := state.ValidateName(r.Type); err != nil {
		return nil, d.invalid("type", err)
	}
	if r.ID, err = d.str(); err != nil {
		return nil, err
	}
	if r.Name, err = d.str(); err != nil {
		return nil, err
	}
	if r.Data, err = d.topMap(); err != nil {
		return nil, err
	}
	if r.Tags, err = d.tags(); err != nil {
		return nil, err
	}
	if r.CreatedAt, err = d.time(); err != nil {
		return nil, err
	}
	if r.UpdatedAt, err = d.time(); err != nil {
		return nil, err
	}
	return r, d.end()
}

// ResourceType decodes only the Type of a resource record, which is
// enough to maintain a by-type index. It does not check the rest of the
// record.
func ResourceType(b []byte) (string, error) {
	d := newDecoder(b)
	if err := d.header("resource", resourceFields); err != nil {
		return "", err
	}
	typ, err := d.str()
	if err != nil {
		return "", err
	}
	if err := state.ValidateName(typ); err != nil {
		return "", d.invalid("type", err)
	}
	return typ, nil
}

// DecodeMetadata decodes a metadata record. Errors match
// state.ErrCorrupt.
func DecodeMetadata(b []byte) (state.Metadata, error) {
	d := newDecoder(b)
	var m state.Metadata
	if err := d.header("metadata", metaFields); err != nil {
		return m, err
	}
	var err error
	if m.Version, err = d.str(); err != nil {
		return state.Metadata{}, err
	}
	if m.CreatedAt, err = d.time(); err != nil {
		return state.Metadata{}, err
	}
	if m.UpdatedAt, err = d.time(); err != nil {
		return state.Metadata{}, err
	}
	if m.Serial, err = d.uint(); err != nil {
		return state.Metadata{}, err
	}
	if m.Lineage, err = d.str(); err != nil {
		return state.Metadata{}, err
	}
	if err := d.end(); err != nil {
		return state.Metadata{}, err
	}
	return m, nil
}
