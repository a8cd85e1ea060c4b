package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

// This file holds the JSON layer of the ftl2 reader and writer: a reader
// that turns a whole document into a tree whose every value knows where
// it starts and ends (for line:column errors and for handing documented
// entries of a hybrid file to statefile), and a writer that formats values
// the way Python's json.dumps(indent=2) does.

// nodeKind is the JSON type of a node.
type nodeKind byte

const (
	kindObject nodeKind = iota + 1
	kindArray
	kindString
	kindNumber
	kindBool
	kindNull
)

var kindNames = map[nodeKind]string{
	kindObject: "an object", kindArray: "an array", kindString: "a string",
	kindNumber: "a number", kindBool: "a boolean", kindNull: "null",
}

// node is one JSON value of a document: where it starts and ends (byte
// offsets), and what it holds.
type node struct {
	off, end int
	kind     nodeKind
	s        string // a string's value, a number's literal
	b        bool
	members  []member // an object's members, in document order
	elems    []*node  // an array's elements
}

// member is one key: value member of an object.
type member struct {
	key    string
	keyOff int
	val    *node
}

// get returns the value of the member named key, or nil.
func (n *node) get(key string) *node {
	for i := range n.members {
		if n.members[i].key == key {
			return n.members[i].val
		}
	}
	return nil
}

func (n *node) has(key string) bool { return n.get(key) != nil }

// isInteger reports whether n is a number written as an integer (no
// fraction, no exponent).
func (n *node) isInteger() bool {
	return n.kind == kindNumber && !strings.ContainsAny(n.s, ".eE")
}

// docError returns the error of a document: a *statefile.Error at byte
// offset off of data, about the value at path. It matches
// state.ErrCorrupt, like every error of the state.json decoder.
func docError(data []byte, off int, path, format string, args ...any) *statefile.Error {
	off = min(max(off, 0), len(data))
	e := &statefile.Error{Offset: int64(off), Path: path, Msg: fmt.Sprintf(format, args...)}
	e.Line = 1 + bytes.Count(data[:off], []byte{'\n'})
	e.Column = 1 + utf8.RuneCount(data[bytes.LastIndexByte(data[:off], '\n')+1:off])
	return e
}

// joinPath appends key to a JSON path as state.FieldError paths write it.
func joinPath(path, key string) string {
	if path == "" {
		return state.PathKey(key)
	}
	return path + "." + state.PathKey(key)
}

func indexPath(path string, i int) string {
	if path == "" {
		return strconv.Itoa(i)
	}
	return path + "." + strconv.Itoa(i)
}

// treeReader reads a whole document into nodes with encoding/json's
// tokenizer, adding what it lacks: positions and paths in errors, refusal
// of duplicate keys, of invalid UTF-8 and lone surrogates (which it would
// replace by U+FFFD), and a clear word on Python's NaN and Infinity.
type treeReader struct {
	data []byte
	dec  *json.Decoder
}

// readTree parses data as one JSON document.
func readTree(data []byte) (*node, error) {
	t := &treeReader{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	t.dec.UseNumber()
	start := t.skip(0)
	switch {
	case start == len(data):
		return nil, docError(data, start, "", "empty document")
	case bytes.HasPrefix(data[start:], []byte("\uFEFF")):
		return nil, docError(data, start, "", "byte order mark (BOM) before the document; JSON is written without one")
	}
	n, err := t.value("")
	if err != nil {
		return nil, err
	}
	if off := t.skip(int(t.dec.InputOffset())); off < len(data) {
		return nil, docError(data, off, "", "unexpected data after the document")
	}
	return n, nil
}

// skip returns the offset of the next token at or after off, past
// whitespace and the separators the tokenizer does not return.
func (t *treeReader) skip(off int) int {
	for off < len(t.data) {
		switch t.data[off] {
		case ' ', '\t', '\n', '\r', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}

// token reads the next token and the offset where it starts.
func (t *treeReader) token(path string) (json.Token, int, error) {
	off := t.skip(int(t.dec.InputOffset()))
	tok, err := t.dec.Token()
	if err != nil {
		return nil, off, t.syntax(err, off, path)
	}
	return tok, off, nil
}

// pythonTokens are the words Python's json module writes for float NaN and
// infinities, which JSON does not have.
var pythonTokens = []struct{ word, float string }{
	{"NaN", "float('nan')"}, {"Infinity", "float('inf')"}, {"-Infinity", "float('-inf')"},
}

func (t *treeReader) syntax(err error, off int, path string) error {
	for _, w := range pythonTokens {
		if bytes.HasPrefix(t.data[off:], []byte(w.word)) {
			return &pythonTokenError{docError(t.data, off, path, "%s is not a JSON number (Python's json module writes it for %s); ftlstate stores finite numbers only: replace it with a number or null", w.word, w.float)}
		}
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		at := min(max(int(se.Offset)-1, off), len(t.data))
		if at < len(t.data) && t.data[at] >= 0x80 {
			if r, size := utf8.DecodeRune(t.data[at:]); r == utf8.RuneError && size == 1 {
				return docError(t.data, at, path, "invalid UTF-8 byte 0x%02x", t.data[at])
			}
		}
		return docError(t.data, at, path, "%s", strings.TrimPrefix(se.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return docError(t.data, len(t.data), path, "unexpected end of input (truncated document?)")
	}
	return docError(t.data, off, path, "%v", err)
}

// pythonTokenError is the error for a NaN or Infinity token: a
// *statefile.Error that says the file comes from Python.
type pythonTokenError struct{ err *statefile.Error }

func (e *pythonTokenError) Error() string { return e.err.Error() }

func (e *pythonTokenError) Unwrap() error { return e.err }

// value reads the value at path.
func (t *treeReader) value(path string) (*node, error) {
	tok, off, err := t.token(path)
	if err != nil {
		return nil, err
	}
	n := &node{off: off}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			n.kind = kindObject
			err = t.object(n, path)
		} else if v == '[' {
			n.kind = kindArray
			err = t.array(n, path)
		} else {
			err = docError(t.data, off, path, "unexpected %q", rune(v))
		}
		if err != nil {
			return nil, err
		}
	case string:
		n.kind, n.s = kindString, v
		if err := t.checkString(off, path); err != nil {
			return nil, err
		}
	case json.Number:
		n.kind, n.s = kindNumber, string(v)
	case bool:
		n.kind, n.b = kindBool, v
	case nil:
		n.kind = kindNull
	}
	n.end = int(t.dec.InputOffset())
	return n, nil
}

func (t *treeReader) object(n *node, path string) error {
	seen := map[string]struct{}{}
	for t.dec.More() {
		tok, keyOff, err := t.token(path)
		if err != nil {
			return err
		}
		key := tok.(string) // More and the tokenizer guarantee a key here
		p := joinPath(path, key)
		if err := t.checkString(keyOff, p); err != nil {
			return err
		}
		if _, dup := seen[key]; dup {
			return docError(t.data, keyOff, p, "duplicate key (each key may appear once; Python would keep only the last)")
		}
		seen[key] = struct{}{}
		v, err := t.value(p)
		if err != nil {
			return err
		}
		n.members = append(n.members, member{key: key, keyOff: keyOff, val: v})
	}
	_, _, err := t.token(path) // '}'
	return err
}

func (t *treeReader) array(n *node, path string) error {
	for t.dec.More() {
		v, err := t.value(indexPath(path, len(n.elems)))
		if err != nil {
			return err
		}
		n.elems = append(n.elems, v)
	}
	_, _, err := t.token(path) // ']'
	return err
}

// checkString refuses what encoding/json silently replaces by U+FFFD in
// the string token at off: invalid UTF-8 and lone surrogates.
func (t *treeReader) checkString(off int, path string) error {
	end := int(t.dec.InputOffset())
	raw := t.data[off:end]
	if !bytes.Contains(raw, []byte("\\u")) && utf8.Valid(raw) {
		return nil
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\' && i+1 < len(raw) && raw[i+1] == 'u' && i+6 <= len(raw):
			u, _ := strconv.ParseUint(string(raw[i+2:i+6]), 16, 32)
			switch {
			case u >= 0xD800 && u <= 0xDBFF:
				if i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
					if v, err := strconv.ParseUint(string(raw[i+8:i+12]), 16, 32); err == nil && v >= 0xDC00 && v <= 0xDFFF {
						i += 12
						continue
					}
				}
				return docError(t.data, off+i, path, "lone surrogate \\u%04x in a string", u)
			case u >= 0xDC00 && u <= 0xDFFF:
				return docError(t.data, off+i, path, "lone surrogate \\u%04x in a string", u)
			}
			i += 6
		case c == '\\':
			i += 2
		case c >= 0x80:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				return docError(t.data, off+i, path, "invalid UTF-8 byte 0x%02x in a string", c)
			}
			i += size
		default:
			i++
		}
	}
	return nil
}

// valueOf converts n (at path, nested depth levels below a record's Vars
// or Data, which is level 1) to the value model of state.NormalizeValue,
// refusing what the model cannot hold exactly: integers beyond int64 (they
// would be rounded), numbers beyond float64, and numbers so small that
// they would become 0.
func valueOf(data []byte, n *node, path string, depth int) (any, error) {
	switch n.kind {
	case kindObject:
		if depth+1 > state.MaxValueDepth {
			return nil, docError(data, n.off, path, "nested deeper than %d levels", state.MaxValueDepth)
		}
		m := make(map[string]any, len(n.members))
		for _, mem := range n.members {
			v, err := valueOf(data, mem.val, joinPath(path, mem.key), depth+1)
			if err != nil {
				return nil, err
			}
			m[mem.key] = v
		}
		return m, nil
	case kindArray:
		if depth+1 > state.MaxValueDepth {
			return nil, docError(data, n.off, path, "nested deeper than %d levels", state.MaxValueDepth)
		}
		l := make([]any, len(n.elems))
		for i, e := range n.elems {
			v, err := valueOf(data, e, indexPath(path, i), depth+1)
			if err != nil {
				return nil, err
			}
			l[i] = v
		}
		return l, nil
	case kindString:
		return n.s, nil
	case kindNumber:
		return numberOf(data, n, path)
	case kindBool:
		return n.b, nil
	}
	return nil, nil
}

// numberOf converts a number literal to int64 or float64 (integral values
// become int64, as state.NormalizeValue makes them).
func numberOf(data []byte, n *node, path string) (any, error) {
	if n.isInteger() {
		if i, err := strconv.ParseInt(n.s, 10, 64); err == nil {
			return i, nil
		}
		return nil, docError(data, n.off, path, "integer %s is beyond the 64-bit range ftlstate stores exactly (it would be rounded); store it as a string", shortLiteral(n.s))
	}
	f, err := strconv.ParseFloat(n.s, 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, docError(data, n.off, path, "number %s is beyond the range of a 64-bit float", shortLiteral(n.s))
	}
	if f == 0 && strings.ContainsAny(mantissa(n.s), "123456789") {
		return nil, docError(data, n.off, path, "number %s is too small for a 64-bit float (it would become 0)", shortLiteral(n.s))
	}
	v, err := state.NormalizeValue(f)
	if err != nil {
		return nil, docError(data, n.off, path, "%v", err)
	}
	return v, nil
}

func mantissa(lit string) string {
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		return lit[:i]
	}
	return lit
}

func shortLiteral(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// parseTime reads a timestamp as state.json does (RFC 3339, any offset,
// converted to UTC), and reports whether it is one this store can hold.
func parseTime(s string) (time.Time, bool) {
	var t time.Time
	if err := t.UnmarshalText([]byte(s)); err != nil {
		return time.Time{}, false
	}
	t = state.Timestamp(t)
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// pyWriter writes JSON as Python's json.dumps(value, indent=2) does, with
// its default ensure_ascii: two-space indent, "," at line ends, ": "
// between keys and values, {} and [] for empty containers, every
// character outside ASCII escaped (as a surrogate pair beyond the BMP),
// and floats in Python's repr form (0.75, 1e-07, 1.5e+300).
type pyWriter struct {
	b []byte
}

// raw is a JSON literal written as it is (an integer id of any size).
type raw string

// pair is one member of an object written in a fixed order.
type pair struct {
	key string
	val any
}

func (w *pyWriter) newline(depth int) {
	w.b = append(w.b, '\n')
	for range depth {
		w.b = append(w.b, ' ', ' ')
	}
}

// value writes v (the value model, []pair for an ordered object, or raw)
// nested depth levels deep.
func (w *pyWriter) value(v any, depth int) error {
	switch v := v.(type) {
	case nil:
		w.b = append(w.b, "null"...)
	case bool:
		w.b = strconv.AppendBool(w.b, v)
	case int64:
		w.b = strconv.AppendInt(w.b, v, 10)
	case int: // a port
		w.b = strconv.AppendInt(w.b, int64(v), 10)
	case float64:
		s, err := pyFloat(v)
		if err != nil {
			return err
		}
		w.b = append(w.b, s...)
	case string:
		w.str(v)
	case raw:
		w.b = append(w.b, v...)
	case []any:
		return w.container('[', ']', len(v), depth, func(i int) error { return w.value(v[i], depth+1) })
	case map[string]any:
		pairs := make([]pair, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			pairs = append(pairs, pair{k, v[k]})
		}
		return w.value(pairs, depth)
	case []pair:
		return w.container('{', '}', len(v), depth, func(i int) error {
			w.str(v[i].key)
			w.b = append(w.b, ": "...)
			if err := w.value(v[i].val, depth+1); err != nil {
				return fmt.Errorf("%s: %w", state.PathKey(v[i].key), err)
			}
			return nil
		})
	default:
		return fmt.Errorf("%T is not in the value model", v)
	}
	return nil
}

// container writes a list or an object of n items, each written by item
// on its own line; an empty one is written "[]" or "{}", as Python does.
func (w *pyWriter) container(open, close byte, n, depth int, item func(i int) error) error {
	w.b = append(w.b, open)
	for i := range n {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.newline(depth + 1)
		if err := item(i); err != nil {
			return err
		}
	}
	if n > 0 {
		w.newline(depth)
	}
	w.b = append(w.b, close)
	return nil
}

// str writes s as Python's json.dumps escapes it with ensure_ascii.
func (w *pyWriter) str(s string) {
	const hex = "0123456789abcdef"
	w.b = append(w.b, '"')
	for _, r := range s {
		switch {
		case r == '"':
			w.b = append(w.b, '\\', '"')
		case r == '\\':
			w.b = append(w.b, '\\', '\\')
		case r == '\n':
			w.b = append(w.b, '\\', 'n')
		case r == '\r':
			w.b = append(w.b, '\\', 'r')
		case r == '\t':
			w.b = append(w.b, '\\', 't')
		case r == '\b':
			w.b = append(w.b, '\\', 'b')
		case r == '\f':
			w.b = append(w.b, '\\', 'f')
		case r < 0x20 || r > 0x7e && r != 0x7f:
			if r > 0xFFFF {
				r1, r2 := utf16.EncodeRune(r)
				for _, u := range [...]rune{r1, r2} {
					w.b = append(w.b, '\\', 'u', hex[u>>12&15], hex[u>>8&15], hex[u>>4&15], hex[u&15])
				}
				continue
			}
			w.b = append(w.b, '\\', 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15])
		default:
			w.b = append(w.b, byte(r))
		}
	}
	w.b = append(w.b, '"')
}

// pyFloat formats f as Python's repr(float) does: the shortest digits that
// read back as f, in fixed notation for exponents from -4 to 15 and in
// scientific notation otherwise, with at least two exponent digits.
func pyFloat(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("%v is not representable in JSON", f)
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, exps, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(exps)
	if exp >= -4 && exp < 16 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.ContainsAny(s, ".") {
			s += ".0"
		}
		return s, nil
	}
	sign := "+"
	if exp < 0 {
		sign, exp = "-", -exp
	}
	return fmt.Sprintf("%se%s%02d", mant, sign, exp), nil
}

// pyTime writes t as Python's datetime.isoformat() writes an aware UTC
// time: "2026-12-01T18:34:25.977046+00:00", the fraction left out when it
// is zero; nanoseconds, which Python does not have, are kept (nine
// digits), so that every time this store holds is written exactly.
func pyTime(t time.Time) string {
	t = t.UTC()
	layout := "2006-01-02T15:04:05"
	switch ns := t.Nanosecond(); {
	case ns == 0:
	case ns%1000 == 0:
		layout += ".000000"
	default:
		layout += ".000000000"
	}
	return t.Format(layout) + "+00:00"
}
