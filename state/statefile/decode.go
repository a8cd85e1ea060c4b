package statefile

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-ftl2/ftlstate/state"
)

// DefaultMaxSize is the largest document Decode reads unless
// DecodeOptions.MaxSize says otherwise: 1 GiB, far above any real state.
const DefaultMaxSize = 1 << 30

// DecodeOptions adjust Decode. The zero value (or nil) uses the defaults.
type DecodeOptions struct {
	// MaxSize is the largest document accepted, in bytes. Zero means
	// DefaultMaxSize; a negative value means no limit.
	MaxSize int64
}

// Decode reads one state.json document from r and returns what it holds,
// validated and in the value model of state.NormalizeValue (numbers are
// int64 or float64). Every record passes state.Contents.Validate; the
// metadata's version, when missing, is state.FormatVersion, and missing
// "metadata", "hosts" or "resources" are empty.
//
// A document that cannot be decoded gives an *Error (matching
// state.ErrCorrupt) naming the line, the column and the JSON path of the
// problem: invalid JSON, empty input, a document that is not an object,
// data after the document, invalid UTF-8, a value of the wrong type
// ("port": "22"), a record that fails validation, a duplicate key at any
// level, an unknown field, a format version other than
// state.FormatVersion, a document larger than opts.MaxSize. Errors reading
// r are returned wrapped, without ErrCorrupt.
func Decode(r io.Reader, opts *DecodeOptions) (*state.Contents, error) {
	c, _, err := decode(r, opts, false)
	return c, err
}

// decode reads and decodes a document; with raw, every record is checked
// as Decode checks it but kept as its text (in the returned Raw), not
// decoded.
func decode(r io.Reader, opts *DecodeOptions, raw bool) (*state.Contents, *Raw, error) {
	limit := int64(DefaultMaxSize)
	if opts != nil && opts.MaxSize != 0 {
		limit = opts.MaxSize
	}
	data, err := readAll(r, limit)
	if err != nil {
		return nil, nil, err
	}
	d := &decoder{data: data}
	if raw {
		d.raw = &Raw{Hosts: map[string][]byte{}, Resources: map[string][]byte{}, Operations: map[string][]byte{}}
	}
	c, err := d.document()
	if err != nil {
		e := err.(*Error)
		e.position(data)
		return nil, nil, e
	}
	if d.raw != nil {
		d.raw.Metadata = c.Metadata
	}
	return c, d.raw, nil
}

// readAll reads r whole, failing past limit (when positive).
func readAll(r io.Reader, limit int64) ([]byte, error) {
	tooLarge := func() error {
		return &Error{Msg: fmt.Sprintf("document larger than %d bytes (the size limit)", limit), err: ErrTooLarge}
	}
	size := 512
	if st, ok := r.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil && fi.Mode().IsRegular() {
			if limit > 0 && fi.Size() > limit {
				return nil, tooLarge()
			}
			size = int(fi.Size()) + 1 // +1 to see EOF without growing
		}
	}
	if limit > 0 {
		r = io.LimitReader(r, limit+1)
	}
	data := make([]byte, 0, size)
	for {
		n, err := r.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("statefile: read: %w", err)
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
	if limit > 0 && int64(len(data)) > limit {
		return nil, tooLarge()
	}
	return data, nil
}

// decoder parses a document held in memory, checking the schema as it
// goes, so that every error has a position and a path.
type decoder struct {
	data []byte
	off  int
	// path is the path of the value being read.
	path []seg
	// raw, when set, receives the text of each record (checked, not
	// kept decoded): DecodeRaw.
	raw *Raw
}

// seg is one step of a path: a key, or a list index when idx >= 0.
type seg struct {
	key string
	idx int
}

func (d *decoder) push(k string)   { d.path = append(d.path, seg{key: k, idx: -1}) }
func (d *decoder) pushIndex(i int) { d.path = append(d.path, seg{idx: i}) }
func (d *decoder) pop()            { d.path = d.path[:len(d.path)-1] }

func (d *decoder) pathString() string {
	var b strings.Builder
	for i, s := range d.path {
		if i > 0 {
			b.WriteByte('.')
		}
		if s.idx >= 0 {
			b.WriteString(strconv.Itoa(s.idx))
		} else {
			b.WriteString(state.PathKey(s.key))
		}
	}
	return b.String()
}

// errAt returns an error at byte offset off about the current path.
func (d *decoder) errAt(off int, format string, args ...any) *Error {
	return &Error{Offset: int64(off), Path: d.pathString(), Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) ws() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

// peek returns the byte at the offset, or 0 at the end.
func (d *decoder) peek() byte {
	if d.off < len(d.data) {
		return d.data[d.off]
	}
	return 0
}

// syntax reports an unexpected byte (or the end of input) at off.
func (d *decoder) syntax(off int, expected string) *Error {
	if off >= len(d.data) {
		return d.errAt(len(d.data), "unexpected end of input (truncated document?), expected %s", expected)
	}
	c := d.data[off]
	switch {
	case c >= 0x80:
		r, size := utf8.DecodeRune(d.data[off:])
		if r == utf8.RuneError && size == 1 {
			return d.errAt(off, "invalid UTF-8 byte 0x%02x, expected %s", c, expected)
		}
		return d.errAt(off, "invalid character %q, expected %s", r, expected)
	case c < 0x20:
		return d.errAt(off, "invalid control character %U, expected %s", rune(c), expected)
	}
	return d.errAt(off, "invalid character %q, expected %s", rune(c), expected)
}

// kind names the JSON value starting at the offset, "" when none does.
func (d *decoder) kind() string {
	switch c := d.peek(); {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	}
	return ""
}

// wrongType reports that the value at the offset is not what is wanted.
func (d *decoder) wrongType(want string) *Error {
	k := d.kind()
	if k == "" {
		return d.syntax(d.off, "a value")
	}
	return d.errAt(d.off, "must be %s, not %s", want, k)
}

// object reads an object at the offset, calling fn for each member with
// the offset at its value and the member's key pushed on the path; fn must
// consume the value. With track set, a key that appears twice is an error;
// without, fn checks that itself (with dup).
func (d *decoder) object(track bool, fn func(key string, keyOff int) error) error {
	d.off++ // '{'
	d.ws()
	if d.peek() == '}' {
		d.off++
		return nil
	}
	var seen map[string]struct{}
	if track {
		seen = make(map[string]struct{}, 8)
	}
	for {
		d.ws()
		if d.peek() != '"' {
			return d.syntax(d.off, "a string (an object key)")
		}
		keyOff := d.off
		k, err := d.str()
		if err != nil {
			return err
		}
		d.ws()
		if d.peek() != ':' {
			return d.syntax(d.off, "':' after an object key")
		}
		d.off++
		d.ws()
		d.push(k)
		if track {
			if _, dup := seen[k]; dup {
				return d.dup(keyOff)
			}
			seen[k] = struct{}{}
		}
		if err := fn(k, keyOff); err != nil {
			return err
		}
		d.pop()
		d.ws()
		switch d.peek() {
		case ',':
			d.off++
		case '}':
			d.off++
			return nil
		default:
			return d.syntax(d.off, "',' or '}' after an object member")
		}
	}
}

// dup reports a duplicate of the key at keyOff (pushed on the path).
func (d *decoder) dup(keyOff int) *Error {
	return d.errAt(keyOff, "duplicate key (each key may appear once)")
}

// str reads a string at the offset.
func (d *decoder) str() (string, error) {
	start := d.off + 1
	escaped := false
	for i := start; ; {
		if i >= len(d.data) {
			return "", d.syntax(i, "'\"' (the end of a string)")
		}
		switch c := d.data[i]; {
		case c == '"':
			d.off = i + 1
			if !escaped {
				return string(d.data[start:i]), nil
			}
			var s string
			if err := json.Unmarshal(d.data[start-1:i+1], &s); err != nil {
				return "", d.errAt(start-1, "invalid string: %v", err) // not expected: escapes are checked as they are read
			}
			return s, nil
		case c == '\\':
			escaped = true
			n, err := d.escape(i)
			if err != nil {
				return "", err
			}
			i += n
		case c < 0x20:
			return "", d.errAt(i, "control character %U in a string (must be escaped)", rune(c))
		case c < 0x80:
			i++
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			if r == utf8.RuneError && size == 1 {
				return "", d.errAt(i, "invalid UTF-8 byte 0x%02x in a string", c)
			}
			i += size
		}
	}
}

// escape checks the escape sequence at i and returns its length. A \u
// escape of half a surrogate pair must be followed by the other half:
// lone surrogates are not text.
func (d *decoder) escape(i int) (int, error) {
	if i+1 >= len(d.data) {
		return 0, d.syntax(i+1, "an escape sequence")
	}
	switch d.data[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
	default:
		if c := d.data[i+1]; c > 0x20 && c < 0x7f {
			return 0, d.errAt(i, "invalid escape sequence \\%c", rune(c))
		}
		return 0, d.errAt(i, "invalid escape sequence: backslash before byte 0x%02x", d.data[i+1])
	}
	u, err := d.hex4(i + 2)
	if err != nil {
		return 0, err
	}
	switch {
	case u >= 0xDC00 && u <= 0xDFFF:
		return 0, d.errAt(i, "lone surrogate \\u%04x in a string", u)
	case u >= 0xD800 && u <= 0xDBFF:
		if i+7 < len(d.data) && d.data[i+6] == '\\' && d.data[i+7] == 'u' {
			if v, err := d.hex4(i + 8); err == nil && v >= 0xDC00 && v <= 0xDFFF {
				return 12, nil
			}
		}
		return 0, d.errAt(i, "lone surrogate \\u%04x in a string", u)
	}
	return 6, nil
}

func (d *decoder) hex4(i int) (rune, error) {
	if i+4 > len(d.data) {
		return 0, d.syntax(len(d.data), "four hex digits after \\u")
	}
	var v rune
	for j := i; j < i+4; j++ {
		c := rune(d.data[j])
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, d.syntax(j, "a hex digit in a \\u escape")
		}
		v = v<<4 | c
	}
	return v, nil
}

// number reads a number literal at the offset.
func (d *decoder) number() (string, error) {
	start, i := d.off, d.off
	digits := func() error {
		if i >= len(d.data) || d.data[i] < '0' || d.data[i] > '9' {
			return d.syntax(i, "a digit")
		}
		for i < len(d.data) && d.data[i] >= '0' && d.data[i] <= '9' {
			i++
		}
		return nil
	}
	if d.peek() == '-' {
		i++
	}
	if i < len(d.data) && d.data[i] == '0' {
		i++
	} else if err := digits(); err != nil {
		return "", err
	}
	if i < len(d.data) && d.data[i] == '.' {
		i++
		if err := digits(); err != nil {
			return "", err
		}
	}
	if i < len(d.data) && (d.data[i] == 'e' || d.data[i] == 'E') {
		i++
		if i < len(d.data) && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		if err := digits(); err != nil {
			return "", err
		}
	}
	d.off = i
	return string(d.data[start:i]), nil
}

// literal reads true, false or null at the offset.
func (d *decoder) literal() (any, error) {
	for _, l := range [...]struct {
		word string
		v    any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if l.word[0] != d.peek() {
			continue
		}
		for j := 1; j < len(l.word); j++ {
			if d.off+j >= len(d.data) || d.data[d.off+j] != l.word[j] {
				return nil, d.syntax(d.off+j, fmt.Sprintf("%q (the literal %s)", l.word[j], l.word))
			}
		}
		d.off += len(l.word)
		return l.v, nil
	}
	return nil, d.syntax(d.off, "a value")
}

// value reads any JSON value (inside vars or data) at the offset; numbers
// become json.Number, normalized later. depth is the nesting depth of the
// value's container, counted as state.NormalizeValue counts it.
func (d *decoder) value(depth int) (any, error) {
	switch c := d.peek(); {
	case c == '{':
		return d.freeObject(depth + 1)
	case c == '[':
		if depth+1 > state.MaxValueDepth {
			return nil, d.errAt(d.off, "nested deeper than %d levels", state.MaxValueDepth)
		}
		d.off++
		d.ws()
		list := []any{}
		if d.peek() == ']' {
			d.off++
			return list, nil
		}
		for i := 0; ; i++ {
			d.ws()
			d.pushIndex(i)
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			d.pop()
			list = append(list, v)
			d.ws()
			switch d.peek() {
			case ',':
				d.off++
			case ']':
				d.off++
				return list, nil
			default:
				return nil, d.syntax(d.off, "',' or ']' after an array element")
			}
		}
	case c == '"':
		return d.str()
	case c == '-' || c >= '0' && c <= '9':
		s, err := d.number()
		return json.Number(s), err
	default:
		return d.literal()
	}
}

// freeObject reads an object of any values at the offset (vars, data).
func (d *decoder) freeObject(depth int) (map[string]any, error) {
	if depth > state.MaxValueDepth {
		return nil, d.errAt(d.off, "nested deeper than %d levels", state.MaxValueDepth)
	}
	m := map[string]any{}
	err := d.object(false, func(k string, keyOff int) error {
		if _, ok := m[k]; ok {
			return d.dup(keyOff)
		}
		v, err := d.value(depth)
		m[k] = v
		return err
	})
	return m, err
}

// null reads null, for an object that may be null (none): vars, data,
// tags, and the document's parts. It reports whether it did, or, when the
// value is neither null nor an object, a type error.
func (d *decoder) null() (bool, error) {
	switch d.peek() {
	case 'n':
		_, err := d.literal()
		return err == nil, err
	case '{':
		return false, nil
	}
	return false, d.wrongType("an object")
}

// stringList reads a list of strings, or null for none.
func (d *decoder) stringList() ([]string, error) {
	switch d.peek() {
	case 'n':
		_, err := d.literal()
		return nil, err
	case '[':
	default:
		return nil, d.wrongType("a list of strings")
	}
	d.off++
	d.ws()
	list := []string{}
	if d.peek() == ']' {
		d.off++
		return list, nil
	}
	for i := 0; ; i++ {
		d.ws()
		d.pushIndex(i)
		s, err := d.stringField()
		if err != nil {
			return nil, err
		}
		d.pop()
		list = append(list, s)
		d.ws()
		switch d.peek() {
		case ',':
			d.off++
		case ']':
			d.off++
			return list, nil
		default:
			return nil, d.syntax(d.off, "',' or ']' after an array element")
		}
	}
}

func (d *decoder) stringField() (string, error) {
	if d.peek() != '"' {
		return "", d.wrongType("a string")
	}
	return d.str()
}

// intField reads an integer; integral numbers such as 22.0 are integers
// (see state.NormalizeValue).
func (d *decoder) intField(what string) (int64, error) {
	if d.kind() != "a number" {
		return 0, d.wrongType("an integer")
	}
	off := d.off
	s, err := d.number()
	if err != nil {
		return 0, err
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if v, err := state.NormalizeValue(json.Number(s)); err == nil {
		if i, ok := v.(int64); ok {
			return i, nil
		}
	}
	return 0, d.errAt(off, "must be %s, not %s", what, s)
}

func (d *decoder) timeField() (time.Time, error) {
	off := d.off
	s, err := d.stringField()
	if err != nil {
		return time.Time{}, err
	}
	var t time.Time
	if err := t.UnmarshalText([]byte(s)); err != nil {
		return time.Time{}, d.errAt(off, "not an RFC 3339 time: %q", s)
	}
	t = state.Timestamp(t)
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, d.errAt(off, "time %q is outside years 0..9999 (in UTC)", s)
	}
	return t, nil
}

func (d *decoder) document() (*state.Contents, error) {
	c := &state.Contents{
		Hosts:     map[string]*state.HostState{},
		Resources: map[string]*state.ResourceState{},
	}
	d.ws()
	switch {
	case d.off == len(d.data):
		return nil, d.errAt(d.off, "empty document")
	case strings.HasPrefix(string(d.data[d.off:min(d.off+3, len(d.data))]), "\uFEFF"):
		return nil, d.errAt(d.off, "byte order mark (BOM) before the document; JSON is written without one")
	case d.peek() != '{':
		if k := d.kind(); k != "" {
			return nil, d.errAt(d.off, "the document must be an object, not %s", k)
		}
		return nil, d.syntax(d.off, "'{' (the document must be an object)")
	}
	err := d.object(true, func(key string, keyOff int) error {
		switch key {
		case "metadata":
			return d.metadata(&c.Metadata)
		case "hosts":
			if null, err := d.null(); null || err != nil {
				return err
			}
			return d.object(false, func(name string, nameOff int) error {
				if _, ok := c.Hosts[name]; ok || d.raw != nil && d.raw.Hosts[name] != nil {
					return d.dup(nameOff)
				}
				return d.host(c, name)
			})
		case "resources":
			if null, err := d.null(); null || err != nil {
				return err
			}
			return d.object(false, func(rkey string, keyOff int) error {
				if _, ok := c.Resources[rkey]; ok || d.raw != nil && d.raw.Resources[rkey] != nil {
					return d.dup(keyOff)
				}
				return d.resource(c, rkey, keyOff)
			})
		case "operations":
			if null, err := d.null(); null || err != nil {
				return err
			}
			return d.object(false, func(id string, idOff int) error {
				if _, ok := c.Operations[id]; ok || d.raw != nil && d.raw.Operations[id] != nil {
					return d.dup(idOff)
				}
				return d.operation(c, id, idOff)
			})
		}
		return d.errAt(keyOff, "unknown field (a document has metadata, hosts, resources and operations)")
	})
	if err != nil {
		return nil, err
	}
	d.ws()
	if d.off < len(d.data) {
		return nil, d.errAt(d.off, "unexpected data after the document")
	}
	if c.Metadata.Version == "" {
		c.Metadata.Version = state.FormatVersion
	}
	return c, nil
}

func (d *decoder) metadata(m *state.Metadata) error {
	if null, err := d.null(); null || err != nil {
		return err
	}
	return d.object(true, func(key string, keyOff int) error {
		var err error
		switch key {
		case "version":
			off := d.off
			if m.Version, err = d.stringField(); err == nil && m.Version != state.FormatVersion {
				err = d.errAt(off, "unsupported format version %q (this program reads %q)", m.Version, state.FormatVersion)
			}
		case "created_at":
			m.CreatedAt, err = d.timeField()
		case "updated_at":
			m.UpdatedAt, err = d.timeField()
		case "serial":
			off := d.off
			if d.kind() == "a number" {
				s, _ := d.number()
				if m.Serial, err = strconv.ParseUint(s, 10, 64); err == nil {
					return nil
				}
				d.off = off
			}
			var i int64
			i, err = d.intField("an integer from 0 to 18446744073709551615")
			if err == nil && i < 0 {
				err = d.errAt(off, "must be an integer from 0 to 18446744073709551615, not %d", i)
			}
			m.Serial = uint64(i)
		case "lineage":
			m.Lineage, err = d.stringField()
		default:
			err = d.errAt(keyOff, "unknown field (metadata has version, created_at, updated_at, serial and lineage)")
		}
		return err
	})
}

// Field numbers of records, for the offsets of their values.
const (
	fName = iota
	fAddress
	fPort
	fUser
	fGroup
	fGroups
	fVars
	fType
	fID
	fData
	fTags
	fCreated
	fUpdated
	nFields
)

var fieldNums = map[string]int{
	"name": fName, "address": fAddress, "port": fPort, "user": fUser, "group": fGroup, "groups": fGroups, "vars": fVars,
	"type": fType, "id": fID, "data": fData, "tags": fTags, "created_at": fCreated, "updated_at": fUpdated,
}

// fieldOffsets holds where each field's value starts (0: absent).
type fieldOffsets [nFields]int

// invalid turns a validation error of a record (whose path is relative to
// the record at recOff) into an *Error at the bad field's value.
func (d *decoder) invalid(err error, offs *fieldOffsets, recOff int) *Error {
	return d.invalidIn(err, fieldNums, offs[:], recOff)
}

// invalidIn is invalid for a record whose fields are numbered by nums,
// their values starting at offs.
func (d *decoder) invalidIn(err error, nums map[string]int, offs []int, recOff int) *Error {
	fe, ok := err.(*state.FieldError)
	if !ok {
		return d.errAt(recOff, "%v", err)
	}
	off := recOff
	first, _, _ := strings.Cut(fe.Path, ".")
	if n, ok := nums[first]; ok && offs[n] > 0 {
		off = offs[n]
	}
	e := d.errAt(off, "%s", fe.Msg)
	if fe.Path != "" {
		e.Path += "." + fe.Path
	}
	return e
}

// notItsKey reports a record whose name (or ID) got, the value of field at
// off (0: absent), differs from its key.
func (d *decoder) notItsKey(got, field string, off, recOff int) *Error {
	if off == 0 {
		off = recOff
	}
	e := d.errAt(off, "%q does not match its key", got)
	e.Path += "." + field
	return e
}

func (d *decoder) host(c *state.Contents, name string) error {
	recOff := d.off
	if d.peek() != '{' {
		return d.wrongType("an object")
	}
	var h state.HostState
	var offs fieldOffsets
	err := d.object(false, func(key string, keyOff int) error {
		n, ok := fieldNums[key]
		switch {
		case !ok, n > fVars && n < fCreated:
			return d.errAt(keyOff, "unknown field (a host has name, address, port, user, group, groups, vars, created_at and updated_at)")
		case offs[n] != 0:
			return d.dup(keyOff)
		}
		offs[n] = d.off
		var err error
		switch n {
		case fName:
			h.Name, err = d.stringField()
		case fAddress:
			h.Address, err = d.stringField()
		case fPort:
			var p int64
			if p, err = d.intField("an integer"); err == nil {
				if p < 0 || p > 65535 {
					err = d.errAt(offs[n], "must be 0..65535")
				}
				h.Port = int(p)
			}
		case fUser:
			h.User, err = d.stringField()
		case fGroup:
			h.Group, err = d.stringField()
		case fGroups:
			h.Groups, err = d.stringList()
		case fVars:
			var null bool
			if null, err = d.null(); !null && err == nil {
				h.Vars, err = d.freeObject(1)
			}
		case fCreated:
			h.CreatedAt, err = d.timeField()
		case fUpdated:
			h.UpdatedAt, err = d.timeField()
		}
		return err
	})
	if err != nil {
		return err
	}
	n, err := h.Normalize()
	if err != nil {
		return d.invalid(err, &offs, recOff)
	}
	if n.Name != name {
		return d.notItsKey(n.Name, "name", offs[fName], recOff)
	}
	if d.raw != nil {
		d.raw.Hosts[name] = d.data[recOff:d.off:d.off]
		return nil
	}
	c.Hosts[name] = n
	return nil
}

func (d *decoder) resource(c *state.Contents, key string, keyOff int) error {
	recOff := d.off
	if err := state.ValidateName(key); err != nil {
		return d.errAt(keyOff, "%s", err.(*state.FieldError).Msg)
	}
	if d.peek() != '{' {
		return d.wrongType("an object")
	}
	var r state.ResourceState
	var offs fieldOffsets
	err := d.object(false, func(key string, keyOff int) error {
		n, ok := fieldNums[key]
		switch {
		case !ok, n != fName && n < fType:
			return d.errAt(keyOff, "unknown field (a resource has type, id, name, data, tags, created_at and updated_at)")
		case offs[n] != 0:
			return d.dup(keyOff)
		}
		offs[n] = d.off
		var err error
		switch n {
		case fType:
			r.Type, err = d.stringField()
		case fID:
			r.ID, err = d.stringField()
		case fName:
			r.Name, err = d.stringField()
		case fData:
			var null bool
			if null, err = d.null(); !null && err == nil {
				r.Data, err = d.freeObject(1)
			}
		case fTags:
			var null bool
			if null, err = d.null(); !null && err == nil {
				r.Tags = map[string]string{}
				err = d.object(false, func(k string, keyOff int) error {
					if _, ok := r.Tags[k]; ok {
						return d.dup(keyOff)
					}
					v, err := d.stringField()
					r.Tags[k] = v
					return err
				})
			}
		case fCreated:
			r.CreatedAt, err = d.timeField()
		case fUpdated:
			r.UpdatedAt, err = d.timeField()
		}
		return err
	})
	if err != nil {
		return err
	}
	n, err := r.Normalize()
	if err != nil {
		return d.invalid(err, &offs, recOff)
	}
	if d.raw != nil {
		d.raw.Resources[key] = d.data[recOff:d.off:d.off]
		return nil
	}
	c.Resources[key] = n
	return nil
}

// Field numbers of operation records.
const (
	oID = iota
	oAction
	oResource
	oHost
	oData
	oStarted
	oHolder
	nOpFields
)

var opFieldNums = map[string]int{
	"id": oID, "action": oAction, "resource": oResource, "host": oHost, "data": oData, "started_at": oStarted, "holder": oHolder,
}

func (d *decoder) operation(c *state.Contents, id string, idOff int) error {
	recOff := d.off
	if err := state.ValidateName(id); err != nil {
		return d.errAt(idOff, "%s", err.(*state.FieldError).Msg)
	}
	if d.peek() != '{' {
		return d.wrongType("an object")
	}
	var op state.Operation
	var offs [nOpFields]int
	err := d.object(false, func(key string, keyOff int) error {
		n, ok := opFieldNums[key]
		switch {
		case !ok:
			return d.errAt(keyOff, "unknown field (an operation has id, action, resource, host, data, started_at and holder)")
		case offs[n] != 0:
			return d.dup(keyOff)
		}
		offs[n] = d.off
		var err error
		switch n {
		case oID:
			op.ID, err = d.stringField()
		case oAction:
			op.Action, err = d.stringField()
		case oResource:
			op.Resource, err = d.stringField()
		case oHost:
			op.Host, err = d.stringField()
		case oData:
			var null bool
			if null, err = d.null(); !null && err == nil {
				op.Data, err = d.freeObject(1)
			}
		case oStarted:
			op.StartedAt, err = d.timeField()
		case oHolder:
			op.Holder, err = d.stringField()
		}
		return err
	})
	if err != nil {
		return err
	}
	n, err := op.Normalize()
	if err != nil {
		return d.invalidIn(err, opFieldNums, offs[:], recOff)
	}
	if n.ID != id {
		return d.notItsKey(n.ID, "id", offs[oID], recOff)
	}
	if d.raw != nil {
		d.raw.Operations[id] = d.data[recOff:d.off:d.off]
		return nil
	}
	if c.Operations == nil {
		c.Operations = map[string]*state.Operation{}
	}
	c.Operations[id] = n
	return nil
}
