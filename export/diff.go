package export

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ftl2/ftlstate/state"
)

// Kind tells what part of a state a Change addresses.
type Kind string

// The kinds of Change.
const (
	KindMetadata  Kind = "metadata"
	KindHost      Kind = "host"
	KindResource  Kind = "resource"
	KindOperation Kind = "operation"
)

// Op tells what a Change does.
type Op string

// The operations of a Change, as the JSON form spells them. The text form
// writes them as "+", "-" and "~".
const (
	// OpAdd: the record or value exists only in the second state (New).
	OpAdd Op = "add"
	// OpRemove: the record or value exists only in the first state (Old).
	OpRemove Op = "remove"
	// OpChange: the value differs (Old in the first state, New in the
	// second).
	OpChange Op = "change"
)

// Change is one difference between two states.
type Change struct {
	Op Op
	// Kind is KindHost, KindResource, KindOperation or KindMetadata.
	Kind Kind
	// Key is the host name, resource key or operation ID; empty for
	// metadata.
	Key string
	// Field is the JSON path of the value inside the record, in the
	// state.json field names ("address", "vars.tls.cert",
	// "data.ipv4.0", "tags.env"); empty when the whole record is added or
	// removed.
	Field string
	// Path is the full JSON path: "hosts.web01.address",
	// "resources.linode:123.data.ipv4.0", "operations.3f9a.holder",
	// "metadata.serial", or "hosts.web03" for a whole record. Map keys that are not plain words
	// (letters, digits, '_', '-', ':') are quoted as Go string literals:
	// hosts."web01.example.com".vars."ansible ssh args". List elements are
	// numbered from 0.
	Path string
	// Old is the value in the first state; for a whole record removed, the
	// record (*state.HostState, *state.ResourceState or *state.Operation).
	// Unset (nil) for OpAdd.
	Old any
	// New is the value in the second state; for a whole record added, the
	// record. Unset (nil) for OpRemove.
	New any
}

// String renders c as one line of the text form: "+ hosts.web03",
// "- resources.linode:1", "+ hosts.web01.vars.env: \"prod\"",
// "- hosts.web01.vars.debug: true",
// "~ hosts.web01.address: \"192.168.1.10\" -> \"192.168.1.11\"". Values
// are compact JSON (without HTML escaping), so a line never contains a
// newline.
func (c Change) String() string {
	var b strings.Builder
	switch c.Op {
	case OpAdd:
		b.WriteString("+ ")
	case OpRemove:
		b.WriteString("- ")
	default:
		b.WriteString("~ ")
	}
	b.WriteString(c.Path)
	if c.Field == "" { // a whole record
		return b.String()
	}
	b.WriteString(": ")
	switch c.Op {
	case OpAdd:
		b.WriteString(jsonText(c.New))
	case OpRemove:
		b.WriteString(jsonText(c.Old))
	default:
		b.WriteString(jsonText(c.Old))
		b.WriteString(" -> ")
		b.WriteString(jsonText(c.New))
	}
	return b.String()
}

// changeJSON is the JSON form of a Change; see Result.WriteJSON.
type changeJSON struct {
	Op    Op     `json:"op"`
	Path  string `json:"path"`
	Kind  Kind   `json:"kind"`
	Key   string `json:"key"`
	Field string `json:"field"`
	Old   *any   `json:"old,omitempty"`
	New   *any   `json:"new,omitempty"`
}

// MarshalJSON renders c as one element of the "changes" list described at
// Result.WriteJSON.
func (c Change) MarshalJSON() ([]byte, error) {
	j := changeJSON{Op: c.Op, Path: c.Path, Kind: c.Kind, Key: c.Key, Field: c.Field}
	if c.Op != OpAdd {
		j.Old = &c.Old
	}
	if c.Op != OpRemove {
		j.New = &c.New
	}
	return marshal(j, "", "")
}

// DiffOptions controls Diff. The nil *DiffOptions and the zero value mean
// the defaults: content only, no metadata, no timestamps, no redaction.
type DiffOptions struct {
	// Timestamps also compares created_at and updated_at (of records, and
	// of the metadata when Metadata is set). By default they are ignored:
	// they say when a record was written, not what it holds, so a store
	// and a copy of it re-created later (or an export imported elsewhere)
	// compare equal when their contents do.
	Timestamps bool
	// Metadata also compares the stores' metadata: version, serial and
	// lineage (and created_at and updated_at with Timestamps). These
	// changes come first and count like any other. By default they are
	// ignored: two copies of the same content differ in serial as soon as
	// one was written to.
	Metadata bool
	// Redact replaces values under secret-looking keys (see IsSecretKey)
	// with Redacted in the changes reported, in whole records too. Values
	// are still compared as they are, so a changed password shows as
	// `~ hosts.db01.vars.password: "<redacted>" -> "<redacted>"`.
	Redact bool
}

// Result is the outcome of Diff: the changes that turn the first state
// into the second, in the order described in the package documentation.
type Result struct {
	Changes []Change
}

// Empty reports whether the two states compared equal (under the
// DiffOptions used), so that a command can exit 0 when they do and 1 when
// they do not, like diff(1).
func (r *Result) Empty() bool { return len(r.Changes) == 0 }

// Counts counts records by what happened to them.
type Counts struct {
	Add    int `json:"add"`
	Change int `json:"change"`
	Remove int `json:"remove"`
}

// Summary counts the records a Result adds, removes or changes. A record
// with several field changes counts once; the metadata counts as one
// record that may change.
type Summary struct {
	Hosts      Counts `json:"hosts"`
	Resources  Counts `json:"resources"`
	Operations Counts `json:"operations"`
	Metadata   Counts `json:"metadata"`
}

// Summary counts the records in r.
func (r *Result) Summary() Summary {
	var s Summary
	for i, c := range r.Changes {
		if i > 0 && r.Changes[i-1].Kind == c.Kind && r.Changes[i-1].Key == c.Key {
			continue // the same record as the previous change
		}
		var n *Counts
		switch c.Kind {
		case KindHost:
			n = &s.Hosts
		case KindResource:
			n = &s.Resources
		case KindOperation:
			n = &s.Operations
		default:
			n = &s.Metadata
		}
		switch {
		case c.Field == "" && c.Op == OpAdd:
			n.Add++
		case c.Field == "" && c.Op == OpRemove:
			n.Remove++
		default:
			n.Change++
		}
	}
	return s
}

// WriteText writes r in the text form: one line per change (see
// Change.String), nothing when r is empty.
func (r *Result) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, c := range r.Changes {
		bw.WriteString(c.String())
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// WriteJSON writes r in the machine-readable form, indented by two spaces
// and followed by a newline, in this shape (shown here with short objects
// on one line):
//
//	{
//	  "changes": [
//	    {
//	      "op": "change",
//	      "path": "hosts.web01.address",
//	      "kind": "host",
//	      "key": "web01",
//	      "field": "address",
//	      "old": "192.168.1.10",
//	      "new": "192.168.1.11"
//	    }
//	  ],
//	  "summary": {
//	    "hosts": {"add": 0, "change": 1, "remove": 0},
//	    "resources": {"add": 0, "change": 0, "remove": 0},
//	    "operations": {"add": 0, "change": 0, "remove": 0},
//	    "metadata": {"add": 0, "change": 0, "remove": 0}
//	  }
//	}
//
// Each change has the fields of Change: "op" ("add", "remove" or
// "change"), "path", "kind" ("host", "resource", "operation" or
// "metadata"), "key" ("" for metadata), "field" ("" for a whole record),
// and "old" (absent
// for "add") and "new" (absent for "remove"), which may be null. A whole
// record added or removed is given in its state.json form. "changes" is
// [] when the states compare equal. The field names are stable.
func (r *Result) WriteJSON(w io.Writer) error {
	changes := r.Changes
	if changes == nil {
		changes = []Change{}
	}
	b, err := marshal(struct {
		Changes []Change `json:"changes"`
		Summary Summary  `json:"summary"`
	}{changes, r.Summary()}, "", "  ")
	if err != nil {
		return fmt.Errorf("export: diff: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Diff compares the states a and b and returns the changes that turn a
// into b. It reads each from one consistent snapshot, holding a's view
// while it takes b's. Memory beyond the Result is what one record of
// each side takes: both snapshots are walked together in key order. opts
// may be nil.
func Diff(a, b state.Viewer, opts *DiffOptions) (*Result, error) {
	r := &Result{}
	err := DiffFunc(a, b, opts, func(c Change) error {
		r.Changes = append(r.Changes, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// DiffFunc is Diff without the Result: it calls fn with each change, in
// order, as the walk finds it, so that memory does not grow with the
// number of changes. An error from fn stops the walk and is returned
// unchanged.
func DiffFunc(a, b state.Viewer, opts *DiffOptions, fn func(Change) error) error {
	d := &differ{fn: fn}
	if opts != nil {
		d.opts = *opts
	}
	err := a.View(func(sa state.Snapshot) error {
		return b.View(func(sb state.Snapshot) error {
			if d.opts.Metadata {
				d.metadata(sa.Metadata(), sb.Metadata())
				if d.err != nil {
					return d.err
				}
			}
			err := merge(sa.Hosts, sb.Hosts, func(h *state.HostState) string { return h.Name },
				func(x, y *state.HostState) error { d.host(x, y); return d.err })
			if err != nil {
				return err
			}
			rs := func(s state.Snapshot) func(func(keyed) error) error {
				return func(fn func(keyed) error) error {
					return s.Resources(func(k string, r *state.ResourceState) error { return fn(keyed{k, r}) })
				}
			}
			err = merge(rs(sa), rs(sb), func(k keyed) string { return k.key },
				func(x, y keyed) error { d.resource(x, y); return d.err })
			if err != nil {
				return err
			}
			return merge(sa.Operations, sb.Operations, func(op *state.Operation) string { return op.ID },
				func(x, y *state.Operation) error { d.operation(x, y); return d.err })
		})
	})
	switch {
	case err == nil:
		return nil
	case d.err != nil && errors.Is(err, d.err):
		return d.err
	}
	return fmt.Errorf("export: diff: %w", err)
}

type keyed struct {
	key string
	r   *state.ResourceState
}

// differ compares records and reports their changes to fn.
type differ struct {
	opts DiffOptions
	fn   func(Change) error
	// err is the first error fn returned; nothing is reported after it.
	err error
	// kind, key and prefix describe the record being compared; prefix is
	// its path ("hosts.web01").
	kind   Kind
	key    string
	prefix string
}

func (d *differ) record(kind Kind, section, key string) {
	d.kind, d.key = kind, key
	d.prefix = section + "." + state.PathKey(key)
}

// emit reports a change of field (a path inside the current record; ""
// for the whole record). secret tells that the path passes through a
// secret-looking key.
func (d *differ) emit(op Op, field string, old, new any, secret bool) {
	if d.err != nil {
		return
	}
	c := Change{Op: op, Kind: d.kind, Key: d.key, Field: field, Path: d.prefix}
	if field != "" {
		c.Path += "." + field
	}
	if op != OpAdd {
		c.Old = d.redact(old, secret)
	}
	if op != OpRemove {
		c.New = d.redact(new, secret)
	}
	d.err = d.fn(c)
}

func (d *differ) redact(v any, secret bool) any {
	if !d.opts.Redact {
		return v
	}
	if secret {
		return Redacted
	}
	switch v := v.(type) {
	case *state.HostState:
		return RedactHost(v)
	case *state.ResourceState:
		return RedactResource(v)
	case *state.Operation:
		return RedactOperation(v)
	}
	return RedactValue(v)
}

func (d *differ) metadata(a, b state.Metadata) {
	d.kind, d.key, d.prefix = KindMetadata, "", "metadata"
	d.scalar("version", a.Version, b.Version)
	d.times("created_at", a.CreatedAt, b.CreatedAt)
	d.times("updated_at", a.UpdatedAt, b.UpdatedAt)
	d.scalar("serial", a.Serial, b.Serial)
	d.scalar("lineage", a.Lineage, b.Lineage)
}

// host compares two versions of a host; one of them may be nil.
func (d *differ) host(a, b *state.HostState) {
	switch {
	case b == nil:
		d.record(KindHost, "hosts", a.Name)
		d.emit(OpRemove, "", a, nil, false)
	case a == nil:
		d.record(KindHost, "hosts", b.Name)
		d.emit(OpAdd, "", nil, b, false)
	default:
		d.record(KindHost, "hosts", a.Name)
		d.scalar("name", a.Name, b.Name)
		d.scalar("address", a.Address, b.Address)
		d.scalar("port", a.Port, b.Port)
		d.scalar("user", a.User, b.User)
		d.maps("vars", a.Vars, b.Vars, false)
		d.scalar("group", a.Group, b.Group)
		d.list("groups", a.Groups, b.Groups)
		d.times("created_at", a.CreatedAt, b.CreatedAt)
		d.times("updated_at", a.UpdatedAt, b.UpdatedAt)
	}
}

// resource compares two versions of a resource; one of them may be
// missing (nil r).
func (d *differ) resource(x, y keyed) {
	a, b := x.r, y.r
	switch {
	case b == nil:
		d.record(KindResource, "resources", x.key)
		d.emit(OpRemove, "", a, nil, false)
	case a == nil:
		d.record(KindResource, "resources", y.key)
		d.emit(OpAdd, "", nil, b, false)
	default:
		d.record(KindResource, "resources", x.key)
		d.scalar("type", a.Type, b.Type)
		d.scalar("id", a.ID, b.ID)
		d.scalar("name", a.Name, b.Name)
		d.maps("data", a.Data, b.Data, false)
		d.tags(a.Tags, b.Tags)
		d.times("created_at", a.CreatedAt, b.CreatedAt)
		d.times("updated_at", a.UpdatedAt, b.UpdatedAt)
	}
}

// operation compares two versions of a pending operation; one of them
// may be nil. started_at is a timestamp: compared only with Timestamps.
func (d *differ) operation(a, b *state.Operation) {
	switch {
	case b == nil:
		d.record(KindOperation, "operations", a.ID)
		d.emit(OpRemove, "", a, nil, false)
	case a == nil:
		d.record(KindOperation, "operations", b.ID)
		d.emit(OpAdd, "", nil, b, false)
	default:
		d.record(KindOperation, "operations", a.ID)
		d.scalar("id", a.ID, b.ID)
		d.scalar("action", a.Action, b.Action)
		d.scalar("resource", a.Resource, b.Resource)
		d.scalar("host", a.Host, b.Host)
		d.maps("data", a.Data, b.Data, false)
		d.times("started_at", a.StartedAt, b.StartedAt)
		d.scalar("holder", a.Holder, b.Holder)
	}
}

func (d *differ) scalar(field string, a, b any) {
	if a != b {
		d.emit(OpChange, field, a, b, false)
	}
}

// list compares two lists of strings (a host's groups) as a whole: their
// order matters (the first group is the main one). None is null.
func (d *differ) list(field string, a, b []string) {
	if !slices.Equal(a, b) {
		var av, bv any
		if len(a) > 0 {
			av = a
		}
		if len(b) > 0 {
			bv = b
		}
		d.emit(OpChange, field, av, bv, false)
	}
}

func (d *differ) times(field string, a, b time.Time) {
	if d.opts.Timestamps && !a.Equal(b) {
		d.emit(OpChange, field, a, b, false)
	}
}

func (d *differ) tags(a, b map[string]string) {
	for _, k := range unionKeys(a, b) {
		av, inA := a[k]
		bv, inB := b[k]
		field := "tags." + state.PathKey(k)
		secret := IsSecretKey(k)
		switch {
		case !inB:
			d.emit(OpRemove, field, av, nil, secret)
		case !inA:
			d.emit(OpAdd, field, nil, bv, secret)
		case av != bv:
			d.emit(OpChange, field, av, bv, secret)
		}
	}
}

// maps compares two maps entry by entry; a nil map is an empty one.
func (d *differ) maps(field string, a, b map[string]any, secret bool) {
	for _, k := range unionKeys(a, b) {
		av, inA := a[k]
		bv, inB := b[k]
		kf := field + "." + state.PathKey(k)
		ks := secret || IsSecretKey(k)
		switch {
		case !inB:
			d.emit(OpRemove, kf, av, nil, ks)
		case !inA:
			d.emit(OpAdd, kf, nil, bv, ks)
		default:
			d.value(kf, av, bv, ks)
		}
		if d.err != nil {
			return
		}
	}
}

// value compares two values of the value model: maps key by key, lists
// element by element, anything else as a whole.
func (d *differ) value(field string, a, b any, secret bool) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok && av != nil && bv != nil {
			d.maps(field, av, bv, secret)
			return
		}
	case []any:
		if bv, ok := b.([]any); ok && av != nil && bv != nil {
			d.lists(field, av, bv, secret)
			return
		}
	}
	if !equalValue(a, b) {
		d.emit(OpChange, field, a, b, secret)
	}
}

// lists compares two lists element by element, by index: an element
// inserted in front shows as changes of the elements after it and an add
// at the end.
func (d *differ) lists(field string, a, b []any, secret bool) {
	for i := range max(len(a), len(b)) {
		f := field + "." + strconv.Itoa(i)
		switch {
		case i >= len(b):
			d.emit(OpRemove, f, a[i], nil, secret)
		case i >= len(a):
			d.emit(OpAdd, f, nil, b[i], secret)
		default:
			d.value(f, a[i], b[i], secret)
		}
		if d.err != nil {
			return
		}
	}
}

// equalValue compares two values that are not both non-nil maps or both
// non-nil lists.
func equalValue(a, b any) bool {
	switch a.(type) {
	case nil, string, bool, int64, float64, int, int32, uint64:
		return a == b // comparable dynamic type: cannot panic
	}
	return reflect.DeepEqual(a, b)
}

// unionKeys returns the keys of a and b, sorted, each once.
func unionKeys[V any](a, b map[string]V) []string {
	keys := slices.AppendSeq(make([]string, 0, max(len(a), len(b))), maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// errStopped ends a snapshot iteration whose consumer stopped pulling.
var errStopped = errors.New("export: iteration stopped")

// pull turns a snapshot iteration (Hosts, Resources) into a pull
// iterator. stop must be called before the snapshot's View returns.
func pull[T any](each func(func(T) error) error) (next func() (T, bool, error), stop func()) {
	seq := func(yield func(T, error) bool) {
		err := each(func(v T) error {
			if !yield(v, nil) {
				return errStopped
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopped) {
			var zero T
			yield(zero, err)
		}
	}
	n, stop := iter.Pull2(iter.Seq2[T, error](seq))
	return func() (T, bool, error) {
		v, err, ok := n()
		return v, ok && err == nil, err
	}, stop
}

// merge walks two iterations in key order together and calls visit with
// each key's records: both, or one and the zero T.
func merge[T any](a, b func(func(T) error) error, key func(T) string, visit func(x, y T) error) error {
	nextA, stopA := pull(a)
	defer stopA()
	nextB, stopB := pull(b)
	defer stopB()
	var zero T
	var x, y T
	var okA, okB bool
	var lastA, lastB *string
	advance := func(next func() (T, bool, error), v *T, ok *bool, last **string, side string) error {
		var err error
		*v, *ok, err = next()
		if err != nil {
			return fmt.Errorf("%s state: %w", side, err)
		}
		if *ok {
			k := key(*v)
			if *last != nil && k <= **last {
				return fmt.Errorf("%s state: %q listed after %q, out of key order: %w", side, k, **last, state.ErrCorrupt)
			}
			*last = &k
		}
		return nil
	}
	if err := advance(nextA, &x, &okA, &lastA, "first"); err != nil {
		return err
	}
	if err := advance(nextB, &y, &okB, &lastB, "second"); err != nil {
		return err
	}
	for okA || okB {
		var err error
		takeA, takeB := okA, okB
		if okA && okB {
			ka, kb := key(x), key(y)
			takeA, takeB = ka <= kb, kb <= ka
		}
		switch {
		case takeA && takeB:
			err = visit(x, y)
		case takeA:
			err = visit(x, zero)
		default:
			err = visit(zero, y)
		}
		if err != nil {
			return err
		}
		if takeA {
			if err := advance(nextA, &x, &okA, &lastA, "first"); err != nil {
				return err
			}
		}
		if takeB {
			if err := advance(nextB, &y, &okB, &lastB, "second"); err != nil {
				return err
			}
		}
	}
	return nil
}

// marshal encodes v as JSON without HTML escaping ("<redacted>" stays
// readable), indented when indent is not empty, without a final newline.
func marshal(v any, prefix, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent(prefix, indent)
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// jsonText renders a value for the text form.
func jsonText(v any) string {
	b, err := marshal(v, "", "")
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}
