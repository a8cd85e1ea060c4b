package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/ansible"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

// Format names a state file format that ReadAny reads.
type Format string

// The formats ReadAny reads. The empty Format means "recognise it by its
// content".
const (
	// FormatState is the documented state.json (package statefile).
	FormatState Format = "state"
	// FormatFTL2 is the .ftl2-state.json of the Python ftl2, including the
	// hybrid it writes after reading a documented state.json.
	FormatFTL2 Format = "ftl2"
)

// Formats lists the formats by name, for flags.
var Formats = []Format{FormatFTL2, FormatState}

// ParseFormat returns the Format named s ("" for recognition by content).
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case "", FormatState, FormatFTL2:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want %s or %s): %w", s, FormatFTL2, FormatState, state.ErrInvalid)
}

// ReadReport says what ReadAny found in a document.
type ReadReport struct {
	// Format is the reading that was used.
	Format Format
	// Hybrid is set for a document that holds both documented state.json
	// parts (metadata, entries) and ftl2 ones: what the Python ftl2 writes
	// when it changes a state.json it has read.
	Hybrid bool
	// Hosts and Resources count the entries of each shape.
	Hosts, Resources Shapes
}

// Shapes counts the entries of a document by the shape they were read in.
type Shapes struct {
	// Documented entries have the documented state.json shape.
	Documented int
	// FTL2 entries have the Python ftl2 shape.
	FTL2 int
	// Updated counts the documented resources that the Python ftl2's
	// update_resource extended with keys of its own (last_seen and data
	// keys at the top of the entry); they are also counted in Documented.
	Updated int
}

// String describes the report in one line, for an operator:
// "an ftl2 state file: 3 hosts, 4 resources", or for a hybrid "a hybrid
// file (a state.json rewritten by the Python ftl2): hosts 2 documented +
// 1 ftl2; resources 1 documented (1 updated by ftl2) + 0 ftl2".
func (r *ReadReport) String() string {
	switch {
	case r.Hybrid:
		shapes := func(s Shapes) string {
			upd := ""
			if s.Updated > 0 {
				upd = fmt.Sprintf(" (%d updated by ftl2)", s.Updated)
			}
			return fmt.Sprintf("%d documented%s + %d ftl2", s.Documented, upd, s.FTL2)
		}
		return fmt.Sprintf("a hybrid file (a state.json rewritten by the Python ftl2): hosts %s; resources %s", shapes(r.Hosts), shapes(r.Resources))
	case r.Format == FormatFTL2 && r.Hosts.Documented+r.Resources.Documented == 0:
		return fmt.Sprintf("an ftl2 state file: %d hosts, %d resources", r.Hosts.FTL2, r.Resources.FTL2)
	}
	return fmt.Sprintf("a state.json: %d hosts, %d resources", r.Hosts.Documented+r.Hosts.FTL2, r.Resources.Documented+r.Resources.FTL2)
}

// ExecutionRecordError is ReadAny's refusal of an ftl2 execution record:
// the file "ftl2 run --state-file" writes to resume a run (module,
// completed, successful, failed, per-host results), which has no hosts to
// connect to and no resources. It matches state.ErrCorrupt.
type ExecutionRecordError struct {
	// Module is the record's module, when it names one.
	Module string
}

func (e *ExecutionRecordError) Error() string {
	mod := ""
	if e.Module != "" {
		mod = fmt.Sprintf(" of module %q", e.Module)
	}
	return "this is an ftl2 execution record" + mod + " (written by 'ftl2 run --state-file' to resume a run: per-host results), not a state file: it holds no hosts to connect to and no resources; import the .ftl2-state.json instead"
}

// Unwrap returns state.ErrCorrupt.
func (e *ExecutionRecordError) Unwrap() error { return state.ErrCorrupt }

// ReadFTL2 reads a state file of the Python ftl2 (benthomasson/ftl2): its
// .ftl2-state.json, or the hybrid it writes after reading a documented
// state.json, whose entries are read one by one by their shape (see the
// package documentation for the mapping). The result is validated like
// Read's. Errors match state.ErrCorrupt and, for a problem at a place in
// the document, are *statefile.Error values naming its line, column and
// JSON path. Limits are ImportOptions' defaults; ReadAny takes options and
// also reports what it found.
func ReadFTL2(r io.Reader) (*state.Contents, error) {
	c, _, err := ReadAny(r, &ImportOptions{Format: FormatFTL2})
	return c, err
}

// ReadAny reads a state file of either format: the documented state.json
// (as Read) or the Python ftl2's (as ReadFTL2), recognised by its content
// unless opts.Format says which. A document with "metadata" and no ftl2
// entries is a state.json; one with ftl2's top-level keys (a numeric
// "version", "created_at", "updated_at") or entries in ftl2's shape
// (hosts with ansible_host, resources with provider) is read as ftl2, and
// as a hybrid when it also holds documented parts. An ftl2 execution
// record is refused with an *ExecutionRecordError. opts may be nil.
func ReadAny(r io.Reader, opts *ImportOptions) (*state.Contents, *ReadReport, error) {
	var format Format
	limit := int64(statefile.DefaultMaxSize)
	if opts != nil {
		format = opts.Format
		if opts.MaxSize != 0 {
			limit = opts.MaxSize
		}
	}
	if _, err := ParseFormat(string(format)); err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	data, err := readLimited(r, limit)
	if err != nil {
		return nil, nil, err
	}
	if format == FormatState {
		c, rep, err := readDocumented(data)
		if err != nil {
			// Say what an ftl2 execution record is, rather than which of
			// its fields state.json lacks.
			if doc, terr := readTree(data); terr == nil && doc.kind == kindObject {
				if xerr := executionRecord(doc); xerr != nil {
					return nil, nil, xerr
				}
			}
		}
		return c, rep, err
	}
	doc, err := readTree(data)
	if err != nil {
		if format == "" && !isPythonToken(err) {
			// Not JSON: say it as the state.json decoder does.
			if _, _, derr := readDocumented(data); derr != nil {
				return nil, nil, derr
			}
		}
		return nil, nil, err
	}
	if doc.kind == kindObject {
		if err := executionRecord(doc); err != nil {
			return nil, nil, err
		}
	}
	if format == "" {
		if doc.kind != kindObject || !looksFTL2(doc) {
			return readDocumented(data)
		}
	}
	if doc.kind != kindObject {
		return nil, nil, docError(data, doc.off, "", "the document must be an object, not %s", kindNames[doc.kind])
	}
	f := &ftl2Reader{data: data, report: ReadReport{Format: FormatFTL2}}
	c, err := f.document(doc)
	if err != nil {
		return nil, nil, err
	}
	return c, &f.report, nil
}

func isPythonToken(err error) bool {
	var e *pythonTokenError
	return errors.As(err, &e)
}

// readDocumented decodes data as the documented state.json.
func readDocumented(data []byte) (*state.Contents, *ReadReport, error) {
	c, err := statefile.Decode(bytes.NewReader(data), &statefile.DecodeOptions{MaxSize: -1})
	if err != nil {
		return nil, nil, err
	}
	return c, &ReadReport{Format: FormatState, Hosts: Shapes{Documented: len(c.Hosts)}, Resources: Shapes{Documented: len(c.Resources)}}, nil
}

// sizeError is a document larger than the size limit.
type sizeError struct{ limit int64 }

func (e *sizeError) Error() string {
	return fmt.Sprintf("document larger than %d bytes (the size limit)", e.limit)
}

func (e *sizeError) Unwrap() []error { return []error{state.ErrCorrupt, statefile.ErrTooLarge} }

// readLimited reads r whole, refusing more than limit bytes (when
// positive).
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	if st, ok := r.(interface{ Stat() (fs.FileInfo, error) }); ok && limit > 0 {
		if fi, err := st.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > limit {
			return nil, &sizeError{limit}
		}
	}
	if limit > 0 {
		r = io.LimitReader(r, limit+1)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("export: read: %w", err)
	}
	if limit > 0 && int64(len(data)) > limit {
		return nil, &sizeError{limit}
	}
	return data, nil
}

// executionRecord refuses an ftl2 execution record.
func executionRecord(doc *node) error {
	if !doc.has("module") || doc.has("metadata") {
		return nil
	}
	n := 0
	for _, k := range []string{"completed", "successful", "failed", "total_hosts", "inventory_file", "args"} {
		if doc.has(k) {
			n++
		}
	}
	if n < 2 {
		return nil
	}
	e := &ExecutionRecordError{}
	if m := doc.get("module"); m.kind == kindString {
		e.Module = m.s
	}
	return e
}

// The shapes of entries.
type shape int

const (
	shapeDocumented shape = iota
	shapeFTL2
	shapeUpdated // a documented resource that ftl2's update_resource extended
)

// Fields of the documented records, as state.json has them.
var (
	documentedHostFields     = []string{"name", "address", "port", "user", "group", "groups", "vars", "created_at", "updated_at"}
	documentedResourceFields = []string{"type", "id", "name", "data", "tags", "created_at", "updated_at"}
)

// hostShape tells a documented host (it has "name", which an ftl2 host
// never has: the name is the add_host parameter, so no extra variable can
// be called so) from an ftl2 one (ansible_host, which a documented host
// never has).
func hostShape(n *node) shape {
	if n.kind == kindObject && n.has("name") && !n.has("ansible_host") {
		return shapeDocumented
	}
	return shapeFTL2
}

// resourceShape tells a documented resource (type, id, name and
// updated_at, as state.json always writes them, and no provider) from an
// ftl2 one, whose data may hold a "type" or an "id" of its own but not
// all four. A documented resource with other keys is one that ftl2's
// update_resource extended.
func resourceShape(n *node) shape {
	if n.kind != kindObject || n.has("provider") {
		return shapeFTL2
	}
	for _, k := range []string{"type", "id", "name", "updated_at"} {
		if !n.has(k) {
			return shapeFTL2
		}
	}
	for _, m := range n.members {
		if !slices.Contains(documentedResourceFields, m.key) {
			return shapeUpdated
		}
	}
	return shapeDocumented
}

// looksFTL2 reports whether a document that is an object has anything of
// ftl2's: its top-level keys, or an entry in its shape.
func looksFTL2(doc *node) bool {
	for _, k := range []string{"version", "created_at", "updated_at"} {
		if doc.has(k) {
			return true
		}
	}
	if h := doc.get("hosts"); h != nil && h.kind == kindObject {
		for _, m := range h.members {
			if hostShape(m.val) != shapeDocumented {
				return true
			}
		}
	}
	if r := doc.get("resources"); r != nil && r.kind == kindObject {
		for _, m := range r.members {
			if resourceShape(m.val) != shapeDocumented {
				return true
			}
		}
	}
	return false
}

// ftl2Reader converts a parsed ftl2 (or hybrid) document.
type ftl2Reader struct {
	data   []byte
	report ReadReport
}

func (f *ftl2Reader) errAt(off int, path, format string, args ...any) error {
	return docError(f.data, off, path, format, args...)
}

func (f *ftl2Reader) wrongType(n *node, path, want string) error {
	return f.errAt(n.off, path, "must be %s, not %s", want, kindNames[n.kind])
}

func (f *ftl2Reader) document(doc *node) (*state.Contents, error) {
	c := &state.Contents{Metadata: state.Metadata{Version: state.FormatVersion}, Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}}
	var hosts, resources *node
	var splice splicer
	hasMeta, hasOps := false, false
	ftl2Top := false
	var created, updated *node
	for _, m := range doc.members {
		switch m.key {
		case "version":
			ftl2Top = true
			if m.val.kind != kindNumber {
				return nil, f.wrongType(m.val, "version", "a number (ftl2 writes 1)")
			}
		case "created_at", "updated_at":
			ftl2Top = true
			if m.val.kind != kindString {
				return nil, f.wrongType(m.val, m.key, "a string")
			}
			if _, ok := parseTime(m.val.s); !ok {
				return nil, f.errAt(m.val.off, m.key, "not an RFC 3339 time in years 0..9999: %q", m.val.s)
			}
			if m.key == "created_at" {
				created = m.val
			} else {
				updated = m.val
			}
		case "hosts", "resources":
			switch m.val.kind {
			case kindObject:
			case kindNull:
				continue
			default:
				return nil, f.wrongType(m.val, m.key, "an object")
			}
			if m.key == "hosts" {
				hosts = m.val
			} else {
				resources = m.val
			}
		case "metadata", "operations":
			// A hybrid's documented parts: a state.json's pending
			// operations are kept by ftl2 as it keeps the metadata.
			hasMeta = hasMeta || m.key == "metadata"
			hasOps = true
			splice.part(f.data, m.key, m.val)
		default:
			return nil, f.errAt(m.keyOff, state.PathKey(m.key), "unknown field (an ftl2 state file has version, created_at, updated_at, hosts and resources)")
		}
	}

	// Entries are read by their shape only beside a documented metadata:
	// the hybrid ftl2 writes keeps the metadata of the state.json it read
	// (which always has one). In a file without, every entry has ftl2's
	// shape, whatever its keys (a var may be called "name").
	byShape := hasMeta
	var docHosts, docResources []member
	var updatedRes []member
	if hosts != nil {
		for _, m := range hosts.members {
			if byShape && hostShape(m.val) == shapeDocumented {
				docHosts = append(docHosts, m)
				f.report.Hosts.Documented++
				continue
			}
			h, err := f.ftl2Host(m)
			if err != nil {
				return nil, err
			}
			c.Hosts[m.key] = h
			f.report.Hosts.FTL2++
		}
	}
	if resources != nil {
		for _, m := range resources.members {
			sh := shapeFTL2
			if byShape {
				sh = resourceShape(m.val)
			}
			switch sh {
			case shapeDocumented:
				docResources = append(docResources, m)
				f.report.Resources.Documented++
				continue
			case shapeUpdated:
				docResources = append(docResources, m)
				updatedRes = append(updatedRes, m)
				f.report.Resources.Documented++
				f.report.Resources.Updated++
				continue
			}
			r, err := f.ftl2Resource(m)
			if err != nil {
				return nil, err
			}
			c.Resources[m.key] = r
			f.report.Resources.FTL2++
		}
	}
	f.report.Hybrid = (hasMeta || len(docHosts)+len(docResources) > 0) && (ftl2Top || f.report.Hosts.FTL2+f.report.Resources.FTL2+f.report.Resources.Updated > 0)

	// The documented parts are read by the state.json decoder itself, from
	// a document spliced from their bytes, so that they follow its rules
	// exactly.
	if hasMeta || hasOps || len(docHosts)+len(docResources) > 0 {
		splice.entries(f.data, "hosts", docHosts, nil)
		splice.entries(f.data, "resources", docResources, documentedResourceFields)
		dc, err := splice.decode(f.data)
		if err != nil {
			return nil, err
		}
		if hasMeta {
			c.Metadata = dc.Metadata
		}
		maps.Copy(c.Hosts, dc.Hosts)
		maps.Copy(c.Resources, dc.Resources)
		c.Operations = dc.Operations
		for _, m := range updatedRes {
			if err := f.ftl2Update(c.Resources[m.key], m); err != nil {
				return nil, err
			}
		}
	}
	// ftl2's top-level times: created_at when the metadata has none;
	// updated_at always (ftl2 sets it on every save, later than the
	// metadata's own).
	if created != nil && c.Metadata.CreatedAt.IsZero() {
		c.Metadata.CreatedAt, _ = parseTime(created.s)
	}
	if updated != nil {
		c.Metadata.UpdatedAt, _ = parseTime(updated.s)
	}
	if err := c.Validate(); err != nil {
		var fe *state.FieldError
		if errors.As(err, &fe) {
			return nil, f.errAt(doc.off, fe.Path, "%s", fe.Msg)
		}
		return nil, err
	}
	return c, nil
}

// The keys of an ftl2 resource entry that map to ResourceState fields,
// and the entry's key for what ftl2 has no place for (ftl2Side).
const (
	// ftl2NoProvider is the Type of a resource without a provider.
	ftl2NoProvider = "-"
	// ftl2IDTag marks, with the value ftl2IDInteger, a resource whose ftl2
	// id is an integer (ID holds its digits).
	ftl2IDTag     = "ftl2.id"
	ftl2IDInteger = "integer"
	// ftl2Side is the key of an ftl2 resource entry holding what ftl2 has
	// no field for: name (when not the entry's key), tags, and data keys
	// named like the entry's own fields.
	ftl2Side = "ftlstate"
)

// reservedResourceKeys are the keys of an ftl2 resource entry with a
// meaning of their own; data keys so named cannot be written as they are.
var reservedResourceKeys = []string{"created_at", "provider", "id", "last_seen", ftl2Side}

// The fit rules: which values of an ftl2 entry's keys become fields. A
// value that does not fit stays a var (hosts) or a data key (resources)
// under its own name, so that it is written back as it was, and the
// writer uses the same rules to decide what it can write as it is.

func fitsAddress(v any) bool { s, ok := v.(string); return ok && s != "" }

func fitsPort(v any) bool { p, ok := v.(int64); return ok && p >= 1 && p <= 65535 }

func fitsTime(v any) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	_, ok = parseTime(s)
	return ok
}

func fitsProvider(v any) bool {
	s, ok := v.(string)
	return ok && s != ftl2NoProvider && state.ValidateName(s) == nil
}

func fitsID(v any) bool {
	switch v := v.(type) {
	case string:
		return v != ""
	case int64:
		return true
	}
	return false
}

// ftl2Host converts an ftl2 host entry (see the package documentation).
func (f *ftl2Reader) ftl2Host(m member) (*state.HostState, error) {
	path := "hosts." + state.PathKey(m.key)
	if err := state.ValidateName(m.key); err != nil {
		return nil, f.errAt(m.keyOff, path, "%s", err.(*state.FieldError).Msg)
	}
	if m.val.kind != kindObject {
		return nil, f.wrongType(m.val, path, "an object")
	}
	h := &state.HostState{Name: m.key}
	vars := map[string]any{}
	for _, mem := range m.val.members {
		p := joinPath(path, mem.key)
		if mem.key == "groups" {
			groups, err := f.groups(mem.val, p)
			if err != nil {
				return nil, err
			}
			h.SetGroups(groups...)
			continue
		}
		v, err := valueOf(f.data, mem.val, p, 1)
		if err != nil {
			return nil, err
		}
		switch {
		case mem.key == "ansible_host" && fitsAddress(v):
			h.Address = v.(string)
		case mem.key == "ansible_user" && fitsAddress(v):
			h.User = v.(string)
		case mem.key == "ansible_port" && fitsPort(v):
			h.Port = int(v.(int64))
		case mem.key == "added_at" && fitsTime(v):
			h.CreatedAt, _ = parseTime(v.(string))
			h.UpdatedAt = h.CreatedAt
		default:
			vars[mem.key] = v
		}
	}
	if len(vars) > 0 {
		h.Vars = vars
	}
	n, err := h.Normalize()
	if err != nil {
		return nil, f.fieldErr(err, m, path)
	}
	return n, nil
}

// groups reads a host's groups: a list of group names, each said once (a
// repeat is dropped: Python's inventory merge puts a host in a group once).
func (f *ftl2Reader) groups(n *node, path string) ([]string, error) {
	if n.kind != kindArray {
		return nil, f.wrongType(n, path, "a list of group names")
	}
	var groups []string
	for i, e := range n.elems {
		if e.kind != kindString || e.s == "" {
			return nil, f.errAt(e.off, indexPath(path, i), "must be a group name (a non-empty string)")
		}
		if !slices.Contains(groups, e.s) {
			groups = append(groups, e.s)
		}
	}
	return groups, nil
}

// fieldErr places a record's validation error at the entry member it
// names (its path's first element), else at the entry.
func (f *ftl2Reader) fieldErr(err error, m member, path string) error {
	var fe *state.FieldError
	if !errors.As(err, &fe) {
		return f.errAt(m.val.off, path, "%v", err)
	}
	off := m.val.off
	first, _, _ := strings.Cut(fe.Path, ".")
	if v := m.val.get(first); v != nil {
		off = v.off
	}
	p := path
	if fe.Path != "" {
		p += "." + fe.Path
	}
	return f.errAt(off, p, "%s", fe.Msg)
}

// ftl2Resource converts an ftl2 resource entry (see the package
// documentation).
func (f *ftl2Reader) ftl2Resource(m member) (*state.ResourceState, error) {
	path := "resources." + state.PathKey(m.key)
	if err := state.ValidateName(m.key); err != nil {
		return nil, f.errAt(m.keyOff, path, "%s", err.(*state.FieldError).Msg)
	}
	if m.val.kind != kindObject {
		return nil, f.wrongType(m.val, path, "an object")
	}
	r := &state.ResourceState{Name: m.key}
	data := map[string]any{}
	lastSeen := false
	var side *node
	for _, mem := range m.val.members {
		p := joinPath(path, mem.key)
		switch {
		case mem.key == ftl2Side:
			side = mem.val
			continue
		case mem.key == "id" && mem.val.isInteger():
			// Any size: the digits are kept exactly, as text.
			r.ID = mem.val.s
			r.Tags = map[string]string{ftl2IDTag: ftl2IDInteger}
			continue
		}
		v, err := valueOf(f.data, mem.val, p, 1)
		if err != nil {
			return nil, err
		}
		switch {
		case mem.key == "created_at" && fitsTime(v):
			r.CreatedAt, _ = parseTime(v.(string))
		case mem.key == "last_seen" && fitsTime(v):
			r.UpdatedAt, _ = parseTime(v.(string))
			lastSeen = true
		case mem.key == "provider" && fitsProvider(v):
			r.Type = v.(string)
		case mem.key == "id" && fitsID(v):
			if i, ok := v.(int64); ok { // an integral float: 1e3
				r.ID = fmt.Sprint(i)
				r.Tags = map[string]string{ftl2IDTag: ftl2IDInteger}
			} else {
				r.ID = v.(string)
			}
		default:
			data[mem.key] = v
		}
	}
	if r.Type == "" {
		r.Type = ftl2NoProvider
	}
	if !lastSeen {
		r.UpdatedAt = r.CreatedAt
	}
	if side != nil {
		if err := f.side(r, data, side, joinPath(path, ftl2Side)); err != nil {
			return nil, err
		}
	}
	if len(data) > 0 {
		r.Data = data
	}
	n, err := r.Normalize()
	if err != nil {
		return nil, f.fieldErr(err, m, path)
	}
	return n, nil
}

// side reads the ftlstate object of an ftl2 resource entry.
func (f *ftl2Reader) side(r *state.ResourceState, data map[string]any, n *node, path string) error {
	const want = `an object of name, tags and data (the key "ftlstate" holds what ftlstate writes beside ftl2's fields)`
	if n.kind != kindObject {
		return f.wrongType(n, path, want)
	}
	for _, mem := range n.members {
		p := joinPath(path, mem.key)
		switch mem.key {
		case "name":
			if mem.val.kind != kindString {
				return f.wrongType(mem.val, p, "a string")
			}
			r.Name = mem.val.s
		case "tags":
			if mem.val.kind != kindObject {
				return f.wrongType(mem.val, p, "an object of strings")
			}
			if r.Tags == nil {
				r.Tags = map[string]string{}
			}
			for _, t := range mem.val.members {
				if t.val.kind != kindString {
					return f.wrongType(t.val, joinPath(p, t.key), "a string")
				}
				r.Tags[t.key] = t.val.s
			}
		case "data":
			if mem.val.kind != kindObject {
				return f.wrongType(mem.val, p, "an object")
			}
			for _, d := range mem.val.members {
				v, err := valueOf(f.data, d.val, joinPath(p, d.key), 1)
				if err != nil {
					return err
				}
				data[d.key] = v
			}
		default:
			return f.errAt(mem.keyOff, p, "unknown field (%s)", want)
		}
	}
	return nil
}

// ftl2Update applies to a documented resource the keys that ftl2's
// update_resource added at the top of its entry: last_seen is the time of
// the update, the others are data.
func (f *ftl2Reader) ftl2Update(r *state.ResourceState, m member) error {
	path := "resources." + state.PathKey(m.key)
	if r.Data == nil {
		r.Data = map[string]any{}
	}
	for _, mem := range m.val.members {
		if slices.Contains(documentedResourceFields, mem.key) {
			continue
		}
		v, err := valueOf(f.data, mem.val, joinPath(path, mem.key), 1)
		if err != nil {
			return err
		}
		if mem.key == "last_seen" && fitsTime(v) {
			r.UpdatedAt, _ = parseTime(v.(string))
			continue
		}
		r.Data[mem.key] = v
	}
	return nil
}

// splicer builds a documented state.json from the documented parts of a
// hybrid document, keeping where each byte came from, so that the
// state.json decoder reads them by its own rules and its errors point into
// the original document.
type splicer struct {
	b    bytes.Buffer
	segs []segment
	meta bool
	n    int // maps written ("hosts", "resources")
}

// segment maps b[at:at+n] to the original document from orig (exact), or
// every byte of it to orig (exact false).
type segment struct {
	at, orig, n int
	exact       bool
}

func (s *splicer) add(p []byte, orig int, exact bool) {
	s.segs = append(s.segs, segment{at: s.b.Len(), orig: orig, n: len(p), exact: exact})
	s.b.Write(p)
}

func (s *splicer) open(orig int) {
	if s.b.Len() == 0 {
		s.add([]byte("{"), orig, false)
	} else {
		s.add([]byte(","), orig, false)
	}
}

// part writes the top-level member name (metadata, operations) as it is.
func (s *splicer) part(data []byte, name string, n *node) {
	s.open(n.off)
	s.add([]byte(`"`+name+`":`), n.off, false)
	s.add(data[n.off:n.end], n.off, true)
}

// entries writes the map name holding entries; with fields set, only
// those members of each entry are written.
func (s *splicer) entries(data []byte, name string, entries []member, fields []string) {
	if len(entries) == 0 {
		return
	}
	start := entries[0].keyOff
	s.open(start)
	s.add([]byte(`"`+name+`":{`), start, false)
	for i, m := range entries {
		if i > 0 {
			s.add([]byte(","), m.keyOff, false)
		}
		key, _ := json.Marshal(m.key)
		s.add(key, m.keyOff, false)
		s.add([]byte(":"), m.val.off, false)
		if fields == nil {
			s.add(data[m.val.off:m.val.end], m.val.off, true)
			continue
		}
		s.add([]byte("{"), m.val.off, false)
		first := true
		for _, mem := range m.val.members {
			if !slices.Contains(fields, mem.key) {
				continue
			}
			if !first {
				s.add([]byte(","), mem.keyOff, false)
			}
			first = false
			s.add(data[mem.keyOff:mem.val.end], mem.keyOff, true)
		}
		s.add([]byte("}"), m.val.end-1, false)
	}
	s.add([]byte("}"), entries[len(entries)-1].val.end, false)
}

// decode reads the spliced document; an error is moved to where its
// cause is in data.
func (s *splicer) decode(data []byte) (*state.Contents, error) {
	if s.b.Len() == 0 {
		s.b.WriteString("{")
	}
	s.b.WriteString("}")
	c, err := statefile.Decode(bytes.NewReader(s.b.Bytes()), &statefile.DecodeOptions{MaxSize: -1})
	if err == nil {
		return c, nil
	}
	var e *statefile.Error
	if !errors.As(err, &e) {
		return nil, err
	}
	orig := 0
	for _, sg := range s.segs {
		if int(e.Offset) >= sg.at && int(e.Offset) < sg.at+sg.n || int(e.Offset) == sg.at+sg.n && sg.exact {
			orig = sg.orig
			if sg.exact {
				orig += int(e.Offset) - sg.at
			}
			break
		}
	}
	return nil, docError(data, orig, e.Path, "%s", e.Msg)
}

// WriteFTL2 writes the store v holds as a state file of the Python ftl2,
// from one consistent snapshot: a file its State class and inventory
// merge read correctly (every host connects to its address, as its user,
// in its groups). The format is Python's own json.dumps(indent=2) with
// ensure_ascii, followed by a newline; keys are in a fixed order (see the
// package documentation for the mapping, and for what ftl2 cannot hold).
// A host var named "groups", which ftl2 would read as the host's group
// list, is an error matching state.ErrInvalid, and nothing is written.
// Pending operations (state.Operation) are not written: ftl2 has nothing
// like them (the CLI says so when a store has some). opts may be nil
// (Redact and Progress apply).
func WriteFTL2(w io.Writer, v state.Viewer, opts *Options) error {
	err := v.View(func(s state.Snapshot) error {
		m := s.Metadata()
		top := []pair{{"version", int64(1)}}
		if !m.CreatedAt.IsZero() {
			top = append(top, pair{"created_at", pyTime(m.CreatedAt)})
		}
		if !m.UpdatedAt.IsZero() {
			top = append(top, pair{"updated_at", pyTime(m.UpdatedAt)})
		}
		var hosts, resources []pair
		done := 0
		progress := func() {
			done++
			if opts != nil && opts.Progress != nil {
				opts.Progress(done)
			}
		}
		err := s.Hosts(func(h *state.HostState) error {
			e, err := ftl2HostEntry(h, opts)
			if err != nil {
				return fmt.Errorf("host %q: %w", h.Name, err)
			}
			hosts = append(hosts, pair{h.Name, e})
			progress()
			return nil
		})
		if err != nil {
			return err
		}
		err = s.Resources(func(key string, r *state.ResourceState) error {
			if opts.redact() {
				r = RedactResource(r)
			}
			resources = append(resources, pair{key, ftl2ResourceEntry(key, r)})
			progress()
			return nil
		})
		if err != nil {
			return err
		}
		top = append(top, pair{"hosts", hosts}, pair{"resources", resources})
		pw := &pyWriter{}
		if err := pw.value(top, 0); err != nil {
			return err
		}
		pw.b = append(pw.b, '\n')
		_, err = w.Write(pw.b)
		return err
	})
	if err != nil {
		return fmt.Errorf("export: ftl2: %w", err)
	}
	return nil
}

// ftl2HostEntry returns h as an ftl2 host entry: ansible_host,
// ansible_port, groups, added_at, ansible_user, then the vars, in ftl2's
// order. The connection settings are the host's Ansible variables
// (ansible.HostVars: the fields win over vars of the same names, and drop the
// older ansible_ssh_* aliases, exactly as in inventory --list), so that
// the Python tool's inventory of the file is ours.
func ftl2HostEntry(h *state.HostState, opts *Options) ([]pair, error) {
	if _, ok := h.Vars["groups"]; ok {
		return nil, fmt.Errorf(`var "groups" has no place in an ftl2 file (ftl2 reads that key as the host's group list); rename it: %w`, state.ErrInvalid)
	}
	vars := ansible.HostVars(h, ansibleOptions(opts))
	var e []pair
	field := func(key string) {
		if v, ok := vars[key]; ok {
			e = append(e, pair{key, v})
		}
	}
	field("ansible_host")
	field("ansible_port")
	groups := []any{}
	for _, g := range h.AllGroups() {
		groups = append(groups, g)
	}
	e = append(e, pair{"groups", groups})
	if _, ok := vars["added_at"]; ok {
		field("added_at") // as ftl2's extras do, a var replaces the time
	} else if !h.UpdatedAt.IsZero() {
		e = append(e, pair{"added_at", pyTime(h.UpdatedAt)})
	}
	field("ansible_user")
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		switch k {
		case "ansible_host", "ansible_port", "ansible_user", "added_at":
			continue
		}
		e = append(e, pair{k, vars[k]})
	}
	return e, nil
}

// ftl2ResourceEntry returns r as an ftl2 resource entry: created_at,
// provider, id, the data, the ftlstate object when needed, last_seen.
func ftl2ResourceEntry(key string, r *state.ResourceState) []pair {
	var e []pair
	if !r.CreatedAt.IsZero() {
		e = append(e, pair{"created_at", pyTime(r.CreatedAt)})
	}
	if r.Type != ftl2NoProvider {
		e = append(e, pair{"provider", r.Type})
	}
	intID := r.Tags[ftl2IDTag] == ftl2IDInteger && isIntegerLiteral(r.ID)
	switch {
	case intID:
		e = append(e, pair{"id", raw(r.ID)})
	case r.ID != "":
		e = append(e, pair{"id", r.ID})
	}
	lastSeen := !r.UpdatedAt.Equal(r.CreatedAt)
	unset := map[string]bool{
		"created_at": r.CreatedAt.IsZero(),
		"provider":   r.Type == ftl2NoProvider,
		"id":         r.ID == "",
		"last_seen":  !lastSeen,
	}
	fits := map[string]func(any) bool{"created_at": fitsTime, "provider": fitsProvider, "id": fitsID, "last_seen": fitsTime}
	sideData := []pair{}
	for _, k := range slices.Sorted(maps.Keys(r.Data)) {
		v := r.Data[k]
		if slices.Contains(reservedResourceKeys, k) && (k == ftl2Side || !unset[k] || fits[k](v)) {
			sideData = append(sideData, pair{k, v})
			continue
		}
		e = append(e, pair{k, v})
	}
	var side []pair
	if r.Name != key {
		side = append(side, pair{"name", r.Name})
	}
	tags := map[string]any{}
	for k, v := range r.Tags {
		if !(intID && k == ftl2IDTag) {
			tags[k] = v
		}
	}
	if len(tags) > 0 {
		side = append(side, pair{"tags", tags})
	}
	if len(sideData) > 0 {
		side = append(side, pair{"data", sideData})
	}
	if len(side) > 0 {
		e = append(e, pair{ftl2Side, side})
	}
	if lastSeen {
		e = append(e, pair{"last_seen", pyTime(r.UpdatedAt)})
	}
	return e
}

// isIntegerLiteral reports whether s is a JSON integer: an optional minus
// and digits, without leading zeros.
func isIntegerLiteral(s string) bool {
	d := strings.TrimPrefix(s, "-")
	if d == "" || len(d) > 1 && d[0] == '0' {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}
