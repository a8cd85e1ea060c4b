package state

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits enforced by validation.
const (
	// MaxNameLen is the longest host name, resource key or resource type,
	// in bytes.
	MaxNameLen = 1024
	// MaxValueDepth is the deepest nesting of maps and lists accepted in
	// Vars and Data.
	MaxValueDepth = 512
)

// ValidateName checks a host name, resource key or resource type: not empty,
// valid UTF-8, at most MaxNameLen bytes, no control characters. Path
// separators and other punctuation are allowed. The error is a *FieldError
// with an empty path.
func ValidateName(s string) error {
	switch {
	case s == "":
		return &FieldError{Msg: "must not be empty"}
	case len(s) > MaxNameLen:
		return &FieldError{Msg: fmt.Sprintf("longer than %d bytes", MaxNameLen)}
	case !utf8.ValidString(s):
		return &FieldError{Msg: "not valid UTF-8"}
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return &FieldError{Msg: fmt.Sprintf("control character %U not allowed", r)}
		}
	}
	return nil
}

// ValidateGroups checks a host's Group and Groups (the groups beyond
// Group), as Normalize does and every codec does on encode and decode:
// each name is valid UTF-8 ("group", "groups.N"); a name in Groups is not
// empty and appears once, Group included; Groups is empty when Group is.
// The error is a *FieldError with a path relative to the host.
func ValidateGroups(group string, groups []string) error {
	if err := validGroup("group", group); err != nil {
		return err
	}
	if group == "" && len(groups) > 0 {
		return &FieldError{Path: "groups", Msg: "set without group (groups holds the groups beyond group: put the first one in group)"}
	}
	for i, g := range groups {
		p := "groups." + strconv.Itoa(i)
		if g == "" {
			return &FieldError{Path: p, Msg: "must not be empty"}
		}
		if err := validGroup(p, g); err != nil {
			return err
		}
		if g == group || slices.Contains(groups[:i], g) {
			return &FieldError{Path: p, Msg: fmt.Sprintf("group %q listed twice", g)}
		}
	}
	return nil
}

// validGroup checks one group name: every group of a host, Group and each
// of Groups, passes the same rule.
func validGroup(path, g string) error {
	return validText(path, g)
}

func validText(path, s string) error {
	if !utf8.ValidString(s) {
		return &FieldError{Path: path, Msg: "not valid UTF-8"}
	}
	return nil
}

func nameErr(path string, err error) error {
	if err == nil {
		return nil
	}
	return err.(*FieldError).Under(path)
}

// Normalize returns a validated deep copy of h in the package's value model:
// Vars values become int64, float64, string, bool, nil, []any or
// map[string]any, and timestamps are normalized with Timestamp. The name
// and the groups must be usable by Ansible: no whitespace, ',', ':' (but
// in an IPv6 address), brackets or '/' in a name, which must not start
// with '!', '&' or '~' nor be "all" or "ungrouped"; no control characters
// in a group, nor a group whose Ansible name (AnsibleGroupName) is
// "_meta". The error
// is a *FieldError (matching ErrInvalid) naming the field, such as "port".
func (h *HostState) Normalize() (*HostState, error) {
	if h == nil {
		return nil, &FieldError{Msg: "nil host"}
	}
	if err := ValidateName(h.Name); err != nil {
		return nil, nameErr("name", err)
	}
	if err := validHostName(h.Name); err != nil {
		return nil, nameErr("name", err)
	}
	if h.Port < 0 || h.Port > 65535 {
		return nil, &FieldError{Path: "port", Msg: "must be 0..65535"}
	}
	for _, f := range [...]struct{ path, s string }{{"address", h.Address}, {"user", h.User}} {
		if err := validText(f.path, f.s); err != nil {
			return nil, err
		}
	}
	if err := ValidateGroups(h.Group, h.Groups); err != nil {
		return nil, err
	}
	for i, g := range h.AllGroups() {
		path := "group"
		if i > 0 {
			path = "groups." + strconv.Itoa(i-1)
		}
		if err := validAnsibleGroup(path, g); err != nil {
			return nil, err
		}
	}
	vars, err := normalizeMap(h.Vars, "vars")
	if err != nil {
		return nil, err
	}
	c := *h
	c.Vars = vars
	c.Groups = nil
	if len(h.Groups) > 0 {
		c.Groups = slices.Clone(h.Groups)
	}
	if c.CreatedAt, c.UpdatedAt, err = timestamps(h.CreatedAt, h.UpdatedAt); err != nil {
		return nil, err
	}
	return &c, nil
}

// Normalize returns a validated deep copy of r in the package's value model
// (see HostState.Normalize). Type must be a valid name (see ValidateName).
func (r *ResourceState) Normalize() (*ResourceState, error) {
	if r == nil {
		return nil, &FieldError{Msg: "nil resource"}
	}
	if err := ValidateName(r.Type); err != nil {
		return nil, nameErr("type", err)
	}
	for _, f := range [...]struct{ path, s string }{{"id", r.ID}, {"name", r.Name}} {
		if err := validText(f.path, f.s); err != nil {
			return nil, err
		}
	}
	data, err := normalizeMap(r.Data, "data")
	if err != nil {
		return nil, err
	}
	var tags map[string]string
	if r.Tags != nil {
		tags = make(map[string]string, len(r.Tags))
		for k, v := range r.Tags {
			p := "tags." + PathKey(k)
			if err := validText(p, k); err != nil {
				return nil, err
			}
			if err := validText(p, v); err != nil {
				return nil, err
			}
			tags[k] = v
		}
	}
	c := *r
	c.Data = data
	c.Tags = tags
	if c.CreatedAt, c.UpdatedAt, err = timestamps(r.CreatedAt, r.UpdatedAt); err != nil {
		return nil, err
	}
	return &c, nil
}

// timestamps normalizes a record's two times and checks that RFC 3339 can
// write them (years 0 to 9999).
func timestamps(created, updated time.Time) (time.Time, time.Time, error) {
	created, updated = Timestamp(created), Timestamp(updated)
	if err := checkTimes(created, updated); err != nil {
		return created, updated, err
	}
	return created, updated, nil
}

// NormalizeValue returns v converted to the package's value model, the one
// every backend stores and returns:
//
//   - integers (of any Go integer type) whose value fits in int64, and
//     floating-point numbers with an integral value in int64's range, become
//     int64 (JSON cannot tell 80 from 80.0, so neither may a backend);
//   - other numbers become float64; NaN and ±Inf are rejected;
//   - strings (valid UTF-8 only), bools and nil are kept;
//   - slices and arrays become []any, maps with string (or integer) keys
//     become map[string]any, pointers are followed;
//   - json.Number is parsed; values that marshal themselves to JSON
//     (json.Marshaler, encoding.TextMarshaler, structs) are converted
//     through their JSON form;
//   - channels, functions, complex numbers, cycles and nesting deeper than
//     MaxValueDepth are rejected.
//
// The error is a *FieldError naming the path below v.
func NormalizeValue(v any) (any, error) {
	var n normalizer
	return n.value(v, 0)
}

func normalizeMap(m map[string]any, root string) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	n := normalizer{root: root}
	return n.strMap(m, 1)
}

// pathElem is one step of the path from the root to the value being
// normalized: a map key or a list index.
type pathElem struct {
	key    string
	index  int
	isElem bool // a list element: index, not key
}

// normalizer converts values. It keeps the path to the current value as a
// stack (rendered only for an error) and, for cycle detection, the maps and
// slices (by address) between the root and the current value.
type normalizer struct {
	root   string
	path   []pathElem
	onPath []uintptr
}

// maxPathElems bounds the elements a path shows: a deep path (one too
// deep for the model has MaxValueDepth of them) shows its first and last
// few, so that the error stays readable on one line.
const maxPathElems = 12

func (n *normalizer) pathString() string {
	parts := make([]string, 0, len(n.path)+1)
	if n.root != "" {
		parts = append(parts, n.root)
	}
	for _, e := range n.path {
		if e.isElem {
			parts = append(parts, strconv.Itoa(e.index))
		} else {
			parts = append(parts, PathKey(e.key))
		}
	}
	if len(parts) > maxPathElems {
		const tail = 2
		head := parts[:maxPathElems-tail-1]
		more := fmt.Sprintf("...(%d more)...", len(parts)-len(head)-tail)
		parts = append(append(head, more), parts[len(parts)-tail:]...)
	}
	return strings.Join(parts, ".")
}

func (n *normalizer) fieldErr(format string, args ...any) *FieldError {
	return &FieldError{Path: n.pathString(), Msg: fmt.Sprintf(format, args...)}
}

// PathKey renders a map key as one element of a JSON path (as in
// FieldError paths): plain words (letters, digits, '_', '-', ':') as they
// are, anything else quoted: "a.b" becomes "\"a.b\"".
func PathKey(k string) string {
	if k != "" && strings.IndexFunc(k, func(r rune) bool {
		return !(r == '_' || r == '-' || r == ':' || unicode.IsLetter(r) || unicode.IsDigit(r))
	}) < 0 {
		return k
	}
	return strconv.Quote(k)
}

func (n *normalizer) enter(ptr uintptr) error {
	if ptr == 0 {
		return nil
	}
	if slices.Contains(n.onPath, ptr) {
		return n.fieldErr("cyclic value")
	}
	n.onPath = append(n.onPath, ptr)
	return nil
}

func (n *normalizer) leave(ptr uintptr) {
	if ptr != 0 {
		n.onPath = n.onPath[:len(n.onPath)-1]
	}
}

func (n *normalizer) tooDeep() error {
	return n.fieldErr("nested deeper than %d levels", MaxValueDepth)
}

func (n *normalizer) strMap(m map[string]any, depth int) (map[string]any, error) {
	if depth > MaxValueDepth {
		return nil, n.tooDeep()
	}
	ptr := reflect.ValueOf(m).Pointer()
	if err := n.enter(ptr); err != nil {
		return nil, err
	}
	defer n.leave(ptr)
	out := make(map[string]any, len(m))
	for k, v := range m {
		n.path = append(n.path, pathElem{key: k})
		if !utf8.ValidString(k) {
			return nil, n.fieldErr("key is not valid UTF-8")
		}
		nv, err := n.value(v, depth)
		if err != nil {
			return nil, err
		}
		n.path = n.path[:len(n.path)-1]
		out[k] = nv
	}
	return out, nil
}

func (n *normalizer) list(s []any, depth int) ([]any, error) {
	if depth > MaxValueDepth {
		return nil, n.tooDeep()
	}
	var ptr uintptr
	if len(s) > 0 {
		ptr = reflect.ValueOf(s).Pointer()
	}
	if err := n.enter(ptr); err != nil {
		return nil, err
	}
	defer n.leave(ptr)
	out := make([]any, len(s))
	for i, v := range s {
		n.path = append(n.path, pathElem{index: i, isElem: true})
		nv, err := n.value(v, depth)
		if err != nil {
			return nil, err
		}
		n.path = n.path[:len(n.path)-1]
		out[i] = nv
	}
	return out, nil
}

func (n *normalizer) float(f float64) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, n.fieldErr("%v is not representable in JSON", f)
	}
	// Integral values in int64 range are integers: JSON cannot tell 80 from 80.0.
	if f == math.Trunc(f) && f >= -(1<<63) && f < (1<<63) {
		return int64(f), nil
	}
	return f, nil
}

// uinteger returns u as int64 when it fits. Above math.MaxInt64 it
// becomes a float64 only when that keeps it exactly, digit for digit in
// its JSON form (10000000000000000000); otherwise it is refused: a float64
// would silently change it.
func (n *normalizer) uinteger(u uint64) (any, error) {
	if u <= math.MaxInt64 {
		return int64(u), nil
	}
	return n.bigInteger(strconv.FormatUint(u, 10), float64(u))
}

// bigInteger checks an integer outside int64's range, written as the
// decimal digits s, whose nearest float64 is f: f is kept when its JSON
// form is s again, so that nothing changes; otherwise the integer is
// refused.
func (n *normalizer) bigInteger(s string, f float64) (any, error) {
	if math.IsInf(f, 0) {
		return nil, n.fieldErr("integer %s is outside the int64 range (and the float64 range)", truncate(s))
	}
	if got := strconv.FormatFloat(f, 'f', -1, 64); got != s {
		return nil, n.fieldErr("integer %s is outside the int64 range; as a float64 it would change to %s", truncate(s), truncate(got))
	}
	return f, nil
}

// number parses a JSON number literal into int64 or float64. What would
// change is refused, never stored silently changed: an integer literal
// (no fraction, no exponent) outside int64's range that a float64 does not
// hold exactly (see bigInteger), a literal beyond float64's range (1e400),
// and a non-zero literal that underflows to zero (1e-400).
func (n *normalizer) number(s string) (any, error) {
	i, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		return i, nil
	}
	f, ferr := strconv.ParseFloat(s, 64)
	if errors.Is(err, strconv.ErrRange) && !strings.ContainsAny(s, ".eE") {
		return n.bigInteger(s, f)
	}
	switch {
	case errors.Is(ferr, strconv.ErrRange) && f != 0:
		return nil, n.fieldErr("number %s is outside the float64 range", truncate(s))
	case ferr != nil:
		return nil, n.fieldErr("not a number: %s", truncate(s))
	case f == 0 && nonZeroMantissa(s):
		return nil, n.fieldErr("number %s is too small for a float64 (it would be stored as 0)", truncate(s))
	}
	return n.float(f)
}

// nonZeroMantissa reports whether the number literal s has a non-zero
// digit before its exponent.
func nonZeroMantissa(s string) bool {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	return strings.ContainsAny(s, "123456789")
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

func (n *normalizer) value(v any, depth int) (any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		if !utf8.ValidString(v) {
			return nil, n.fieldErr("string is not valid UTF-8")
		}
		return v, nil
	case bool:
		return v, nil
	case int64:
		return v, nil
	case int:
		return int64(v), nil
	case int8:
		return int64(v), nil
	case int16:
		return int64(v), nil
	case int32:
		return int64(v), nil
	case uint:
		return n.uinteger(uint64(v))
	case uint8:
		return int64(v), nil
	case uint16:
		return int64(v), nil
	case uint32:
		return int64(v), nil
	case uint64:
		return n.uinteger(v)
	case float64:
		return n.float(v)
	case float32:
		return n.float(float64(v))
	case json.Number:
		return n.number(string(v))
	case map[string]any:
		if v == nil {
			return nil, nil
		}
		return n.strMap(v, depth+1)
	case []any:
		if v == nil {
			return nil, nil
		}
		return n.list(v, depth+1)
	case map[string]string:
		if v == nil {
			return nil, nil
		}
		m := make(map[string]any, len(v))
		for k, s := range v {
			m[k] = s
		}
		return n.strMap(m, depth+1)
	case []string:
		if v == nil {
			return nil, nil
		}
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = e
		}
		return n.list(s, depth+1)
	}
	return n.reflectValue(reflect.ValueOf(v), depth)
}

func (n *normalizer) reflectValue(rv reflect.Value, depth int) (any, error) {
	t := rv.Type()
	if t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) {
		return n.viaJSON(rv.Interface(), depth)
	}
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		if depth+1 > MaxValueDepth {
			return nil, n.tooDeep()
		}
		if rv.Kind() == reflect.Pointer {
			ptr := rv.Pointer()
			if err := n.enter(ptr); err != nil {
				return nil, err
			}
			defer n.leave(ptr)
		}
		return n.value(rv.Elem().Interface(), depth+1)
	case reflect.String:
		return n.value(rv.String(), depth)
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return n.uinteger(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return n.float(rv.Float())
	case reflect.Slice:
		if rv.IsNil() {
			return nil, nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return n.viaJSON(rv.Interface(), depth) // []byte: base64, as JSON writes it
		}
		fallthrough
	case reflect.Array:
		s := make([]any, rv.Len())
		for i := range s {
			s[i] = rv.Index(i).Interface()
		}
		if rv.Kind() == reflect.Slice && rv.Len() > 0 {
			ptr := rv.Pointer()
			if err := n.enter(ptr); err != nil {
				return nil, err
			}
			defer n.leave(ptr)
		}
		return n.list(s, depth+1)
	case reflect.Map:
		if rv.IsNil() {
			return nil, nil
		}
		ptr := rv.Pointer()
		if err := n.enter(ptr); err != nil {
			return nil, err
		}
		defer n.leave(ptr)
		m := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			k := iter.Key()
			var ks string
			switch k.Kind() {
			case reflect.String:
				ks = k.String()
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				ks = strconv.FormatInt(k.Int(), 10)
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
				ks = strconv.FormatUint(k.Uint(), 10)
			default:
				return nil, n.fieldErr("map key type %s is not representable in JSON", k.Type())
			}
			m[ks] = iter.Value().Interface()
		}
		return n.strMap(m, depth+1)
	case reflect.Struct:
		return n.viaJSON(rv.Interface(), depth)
	default:
		return nil, n.fieldErr("%s value is not representable in JSON", t)
	}
}

// viaJSON converts a value that has its own JSON form by marshalling it and
// decoding the result.
func (n *normalizer) viaJSON(v any, depth int) (any, error) {
	var b []byte
	var err error
	if m, ok := v.(json.Marshaler); ok && !nilPointer(v) {
		// Called directly: json.Marshal would check the result with its
		// own depth limit, which is not the model's.
		b, err = m.MarshalJSON()
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		msg := err.Error()
		var ute *json.UnsupportedTypeError
		var uve *json.UnsupportedValueError
		switch {
		case errors.As(err, &ute):
			msg = ute.Type.String() + " value is not representable in JSON"
		case errors.As(err, &uve):
			msg = "value not representable in JSON: " + uve.Str
		}
		return nil, &FieldError{Path: n.pathString(), Msg: msg}
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	out, err := n.jsonValue(d, depth)
	if err != nil {
		if fe, ok := err.(*FieldError); ok {
			return nil, fe
		}
		return nil, &FieldError{Path: n.pathString(), Msg: err.Error()}
	}
	return out, nil
}

func nilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// ParseJSON parses text, one JSON value, into the value model: the value
// NormalizeValue gives for what encoding/json decodes from text (with
// UseNumber), under the same rules and with the same errors, whatever the
// path a value comes in by. Nesting deeper than MaxValueDepth is refused
// as soon as it is reached, however deep the text goes (encoding/json's
// own limit, 10000 levels, is never met). Text that is not one JSON value
// gives an error that is not a *FieldError (*json.SyntaxError, or
// io.ErrUnexpectedEOF for truncated text); a JSON value the model refuses
// (too deep, a number out of range, invalid UTF-8) gives a *FieldError
// matching ErrInvalid, whose path is relative to the value.
func ParseJSON(text []byte) (any, error) {
	if !utf8.Valid(text) {
		return nil, &FieldError{Msg: "not valid UTF-8"}
	}
	d := json.NewDecoder(bytes.NewReader(text))
	d.UseNumber()
	var n normalizer
	v, err := n.jsonValue(d, 0)
	if err != nil {
		return nil, err
	}
	switch _, err := d.Token(); {
	case err == nil:
		return nil, fmt.Errorf("data after the JSON value, at byte %d", d.InputOffset())
	case err != io.EOF:
		return nil, err
	}
	return v, nil
}

// jsonValue reads one value from d (UseNumber) into the value model, at
// nesting level depth (that of the container holding it, as in value).
// Errors of d (syntax) are returned as they are; errors of the model are
// *FieldError values.
func (n *normalizer) jsonValue(d *json.Decoder, depth int) (any, error) {
	tok, err := d.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth+1 > MaxValueDepth {
			return nil, n.tooDeep()
		}
		if t == '[' {
			out := []any{}
			for i := 0; d.More(); i++ {
				n.path = append(n.path, pathElem{index: i, isElem: true})
				v, err := n.jsonValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				n.path = n.path[:len(n.path)-1]
				out = append(out, v)
			}
			_, err := d.Token() // ']'
			return out, err
		}
		out := map[string]any{}
		for d.More() {
			kt, err := d.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			n.path = append(n.path, pathElem{key: k})
			v, err := n.jsonValue(d, depth+1)
			if err != nil {
				return nil, err
			}
			n.path = n.path[:len(n.path)-1]
			out[k] = v
		}
		_, err := d.Token() // '}'
		return out, err
	case json.Number:
		return n.number(string(t))
	}
	return tok, nil // string, bool or nil
}
