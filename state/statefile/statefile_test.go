package statefile_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/internal/fuzzseed"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

var update = flag.Bool("update", false, "rewrite golden files and the FuzzDecode seed corpus")

// testdata is the repository's shared testdata directory.
const testdata = "../../testdata"

func decodeFile(t testing.TB, name string) *state.Contents {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata, name))
	require.NoError(t, err)
	defer f.Close()
	c, err := statefile.Decode(f, nil)
	require.NoError(t, err, name)
	return c
}

func encode(t testing.TB, c *state.Contents) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, statefile.EncodeContents(&buf, c, nil))
	return buf.Bytes()
}

func decodeBytes(t testing.TB, b []byte) *state.Contents {
	t.Helper()
	c, err := statefile.Decode(bytes.NewReader(b), nil)
	require.NoError(t, err, "%s", b)
	return c
}

func TestDecode_DocumentedExample(t *testing.T) {
	c := decodeFile(t, "state.json")
	ts := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return state.Timestamp(tm)
	}
	assert.Equal(t, state.Metadata{Version: "1.0", CreatedAt: ts("2024-01-15T10:30:00Z"), UpdatedAt: ts("2024-01-15T14:45:00Z")}, c.Metadata)
	want := &state.Contents{
		Metadata: c.Metadata,
		Hosts: map[string]*state.HostState{
			"web01": {Name: "web01", Address: "192.168.1.10", Port: 22, User: "admin", Group: "webservers",
				Vars:      map[string]any{"http_port": int64(80)},
				CreatedAt: ts("2024-01-15T10:30:00Z"), UpdatedAt: ts("2024-01-15T10:30:00Z")},
			"db01": {Name: "db01", Address: "192.168.1.20", Port: 22, User: "admin", Group: "databases",
				Vars:      map[string]any{"postgres_version": "15"},
				CreatedAt: ts("2024-01-15T10:35:00Z"), UpdatedAt: ts("2024-01-15T14:45:00Z")},
		},
		Resources: map[string]*state.ResourceState{
			"linode:12345678": {Type: "linode", ID: "12345678", Name: "web01",
				Data:      map[string]any{"label": "web01", "region": "us-east", "type": "g6-standard-2", "ipv4": []any{"192.168.1.10"}},
				Tags:      map[string]string{"environment": "production", "role": "webserver"},
				CreatedAt: ts("2024-01-15T10:30:00Z"), UpdatedAt: ts("2024-01-15T10:30:00Z")},
		},
	}
	assert.True(t, reflect.DeepEqual(want, c), "decoded:\n%#v\nwant:\n%#v", c, want)
	assert.Equal(t, int64(80), c.Hosts["web01"].Vars["http_port"])
	assert.Equal(t, []any{"192.168.1.10"}, c.Resources["linode:12345678"].Data["ipv4"])
}

// TestGolden: what the encoder writes for the documented example, byte for
// byte. go test -update rewrites testdata/state.golden.json.
func TestGolden(t *testing.T) {
	got := encode(t, decodeFile(t, "state.json"))
	golden := filepath.Join(testdata, "state.golden.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test -update to create the golden file")
	assert.Equal(t, string(want), string(got))

	// The golden file says what the example says.
	assert.Equal(t, decodeFile(t, "state.json"), decodeFile(t, "state.golden.json"))
	// And it is its own fixed point: decode, encode, same bytes.
	assert.Equal(t, string(want), string(encode(t, decodeBytes(t, want))), "byte-identical round trip")
}

func TestEncode_EmptyStore(t *testing.T) {
	ts := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	c := &state.Contents{Metadata: state.Metadata{Version: "1.0", CreatedAt: ts, UpdatedAt: ts}}
	assert.Equal(t, `{
  "metadata": {
    "version": "1.0",
    "created_at": "2024-01-15T10:30:00Z",
    "updated_at": "2024-01-15T10:30:00Z"
  },
  "hosts": {},
  "resources": {}
}
`, string(encode(t, c)))
}

func TestEncode_SerialAndLineage(t *testing.T) {
	ts := time.Date(2024, 1, 15, 10, 30, 0, 123456789, time.UTC)
	c := &state.Contents{Metadata: state.Metadata{Version: "1.0", CreatedAt: ts, UpdatedAt: ts, Serial: 7, Lineage: "abc"}}
	out := string(encode(t, c))
	assert.Contains(t, out, `    "updated_at": "2024-01-15T10:30:00.123456789Z",
    "serial": 7,
    "lineage": "abc"
  },`)
	assert.Equal(t, c.Metadata, decodeBytes(t, []byte(out)).Metadata)
}

// everyKind holds a value of every JSON kind, nested, in the normalized
// model, and strings that need escaping.
func everyKind() map[string]any {
	return map[string]any{
		"string":   "hello, 世界",
		"html":     "<a href=\"x?a=1&b=2\">&amp;</a>",
		"escapes":  "tab\tnewline\nquote\"backslash\\ctrl\x01 del\x7f \u2028\u2029",
		"emoji":    "😀",
		"empty":    "",
		"int":      int64(80),
		"negative": int64(-7),
		"big":      int64(math.MaxInt64),
		"small":    int64(math.MinInt64),
		"float":    1.5,
		"tiny":     1e-300,
		"huge":     1e300,
		"beyond":   float64(1 << 63),
		"true":     true,
		"false":    false,
		"null":     nil,
		"list":     []any{"a", int64(1), 2.5, true, nil, []any{}, map[string]any{}},
		"empty[]":  []any{},
		"empty{}":  map[string]any{},
		"nested": map[string]any{
			"deeper": map[string]any{"list": []any{map[string]any{"k": "v"}}},
			"ports":  []any{int64(80), int64(443)},
		},
		"quote\"and.dot": "x",
		"<key>&":         "x",
	}
}

// richContents exercises every field of the format.
func richContents() *state.Contents {
	ts := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	nano := time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC)
	return &state.Contents{
		Metadata: state.Metadata{Version: "1.0", CreatedAt: ts, UpdatedAt: nano, Serial: math.MaxUint64, Lineage: state.NewLineage()},
		Hosts: map[string]*state.HostState{
			"web01":      {Name: "web01", Address: "192.0.2.10", Port: 22, User: "admin", Group: "web", Groups: []string{"production", "eu"}, Vars: everyKind(), CreatedAt: ts, UpdatedAt: nano},
			"bare":       {Name: "bare"},
			"empty-vars": {Name: "empty-vars", Vars: map[string]any{}, Port: 65535},
			"a.b-c_d":    {Name: "a.b-c_d", Address: "<&>", User: "ü"},
			"ω":          {Name: "ω", Vars: map[string]any{"x": nil}},
		},
		Resources: map[string]*state.ResourceState{
			"linode:1":   {Type: "linode", ID: "1", Name: "web01", Data: everyKind(), Tags: map[string]string{"role": "web", "<": "&"}, CreatedAt: ts, UpdatedAt: ts},
			"ip:1":       {Type: "ip"},
			"empty:maps": {Type: "empty", Data: map[string]any{}, Tags: map[string]string{}},
			"dns:a.b":    {Type: "dns", Data: map[string]any{"ttl": int64(300)}},
		},
	}
}

// TestEncode_MatchesEncodingJSON: the streaming encoder writes exactly
// what encoding/json writes for the whole document (indent "  ", no HTML
// escaping).
func TestEncode_MatchesEncodingJSON(t *testing.T) {
	for name, c := range map[string]*state.Contents{
		"rich":              richContents(),
		"example":           decodeFile(t, "state.json"),
		"empty":             {},
		"one host only":     {Hosts: map[string]*state.HostState{"h": {Name: "h"}}},
		"one resource only": {Resources: map[string]*state.ResourceState{"r": {Type: "t"}}},
	} {
		want, err := statefile.MarshalWhole(c)
		require.NoError(t, err)
		got := encode(t, c)
		assert.Equal(t, string(want), string(got), name)

		var viaSnap bytes.Buffer
		require.NoError(t, statefile.Encode(&viaSnap, state.NewSnapshot(c), nil))
		assert.Equal(t, string(want), viaSnap.String(), "%s: Encode and EncodeContents agree", name)
	}
}

// TestRoundTrip: decode(encode(c)) == c, and encoding is stable.
func TestRoundTrip(t *testing.T) {
	c := richContents()
	require.NoError(t, c.Validate())
	b := encode(t, c)
	back := decodeBytes(t, b)
	assert.True(t, reflect.DeepEqual(c, back), "round trip changed the contents:\n%#v\n%#v", c, back)
	assert.Nil(t, back.Hosts["bare"].Vars, "nil vars stay nil")
	assert.Equal(t, map[string]any{}, back.Hosts["empty-vars"].Vars, "empty vars stay empty")
	assert.Nil(t, back.Resources["ip:1"].Data)
	assert.NotNil(t, back.Resources["empty:maps"].Tags)
	assert.Equal(t, string(b), string(encode(t, back)), "encoding is stable")
}

func TestEncode_Options(t *testing.T) {
	c := richContents()
	before := encode(t, c)
	var progress []int
	opts := &statefile.EncodeOptions{
		Host: func(h *state.HostState) *state.HostState {
			if h.Name == "bare" {
				return nil // left out
			}
			h = h.Clone()
			if h.Vars != nil {
				h.Vars["string"] = "<redacted>"
			}
			return h
		},
		Resource: func(key string, r *state.ResourceState) *state.ResourceState {
			if key == "ip:1" {
				return nil
			}
			r = r.Clone()
			r.Name = "renamed " + key
			return r
		},
		Progress: func(done int) { progress = append(progress, done) },
	}
	var buf bytes.Buffer
	require.NoError(t, statefile.EncodeContents(&buf, c, opts))
	got := decodeBytes(t, buf.Bytes())
	assert.NotContains(t, got.Hosts, "bare")
	assert.NotContains(t, got.Resources, "ip:1")
	assert.Equal(t, "<redacted>", got.Hosts["web01"].Vars["string"])
	assert.Contains(t, buf.String(), `"string": "<redacted>"`, "no HTML escaping")
	assert.Equal(t, "renamed linode:1", got.Resources["linode:1"].Name)
	assert.Equal(t, []int{1, 2, 3, 4, 5, 6, 7}, progress, "one call per record written")
	assert.Equal(t, string(before), string(encode(t, c)), "the transforms did not change the contents")

	// Encode over a Snapshot honours the same options.
	var viaSnap bytes.Buffer
	progress = nil
	require.NoError(t, statefile.Encode(&viaSnap, state.NewSnapshot(c), opts))
	assert.Equal(t, buf.String(), viaSnap.String())
}

// failWriter accepts n bytes, then fails.
type failWriter struct {
	n   int
	err error
}

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) <= w.n {
		w.n -= len(p)
		return len(p), nil
	}
	n := w.n
	w.n = 0
	return n, w.err
}

func TestEncode_WriterError(t *testing.T) {
	c := richContents()
	full := encode(t, c)
	errFull := errors.New("no space left on device")
	for _, n := range []int{0, 10, len(full) / 2, len(full) - 1} {
		err := statefile.EncodeContents(&failWriter{n: n, err: errFull}, c, nil)
		assert.ErrorIs(t, err, errFull, "failing after %d bytes", n)
		assert.Contains(t, err.Error(), "statefile: write:")
	}
}

// errSnapshot fails while iterating.
type errSnapshot struct {
	state.Snapshot
	err error
}

func (s errSnapshot) Resources(fn func(string, *state.ResourceState) error) error { return s.err }

func TestEncode_SnapshotErrorReturnedUnchanged(t *testing.T) {
	bad := fmt.Errorf("record linode:1: %w", state.ErrCorrupt)
	err := statefile.Encode(io.Discard, errSnapshot{state.NewSnapshot(richContents()), bad}, nil)
	assert.Equal(t, bad, err)
}

func TestEncode_UnencodableValue(t *testing.T) {
	c := &state.Contents{Hosts: map[string]*state.HostState{"web01": {Name: "web01", Vars: map[string]any{"x": math.NaN()}}}}
	err := statefile.EncodeContents(io.Discard, c, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "hosts.web01")
	c = &state.Contents{Resources: map[string]*state.ResourceState{"r": {Type: "t", CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}
	err = statefile.EncodeContents(io.Discard, c, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "resources.r")
}

// badInputs maps each file in testdata/bad to what its error must say:
// every string listed must appear in the message.
var badInputs = map[string][]string{
	"empty.json":                      {"line 1, column 1: empty document"},
	"whitespace.json":                 {"line 3, column 1: empty document"},
	"truncated.json":                  {"line 27, column 5: hosts.db01.vars: unexpected end of input"},
	"truncated-string.json":           {"line 1, column 34: hosts.web01.name: unexpected end of input"},
	"missing-comma.json":              {"line 3, column 3: invalid character '\"', expected ',' or '}'"},
	"single-quotes.json":              {"line 1, column 2: invalid character '\\'', expected a string (an object key)"},
	"trailing-comma.json":             {"line 3, column 1: invalid character '}', expected a string"},
	"comment.json":                    {"line 2, column 3: invalid character '/'"},
	"array.json":                      {"line 1, column 1: the document must be an object, not an array"},
	"string.json":                     {"line 1, column 1: the document must be an object, not a string"},
	"null.json":                       {"line 1, column 1: the document must be an object, not null"},
	"number.json":                     {"line 1, column 1: the document must be an object, not a number"},
	"trailing-garbage.json":           {"line 2, column 1: unexpected data after the document"},
	"bom.json":                        {"line 1, column 1: byte order mark"},
	"port-string.json":                {"line 7, column 15: hosts.web01.port: must be an integer, not a string"},
	"port-range.json":                 {"line 7, column 15: hosts.web01.port: must be 0..65535"},
	"port-negative.json":              {"line 7, column 15: hosts.web01.port: must be 0..65535"},
	"port-fraction.json":              {"line 7, column 15: hosts.web01.port: must be an integer, not 22.5"},
	"port-huge.json":                  {"line 7, column 15: hosts.web01.port: must be an integer, not 1e400"},
	"port-leading-zero.json":          {"line 7, column 16: hosts.web01: invalid character '2'"},
	"name-mismatch.json":              {"line 5, column 15: hosts.web01.name: \"web02\" does not match its key"},
	"name-missing.json":               {"line 1, column 21: hosts.web01.name: must not be empty"},
	"host-null.json":                  {"line 1, column 21: hosts.web01: must be an object, not null"},
	"host-array.json":                 {"line 1, column 21: hosts.web01: must be an object, not an array"},
	"hosts-array.json":                {"line 1, column 11: hosts: must be an object, not an array"},
	"duplicate-host.json":             {"line 4, column 5: hosts.web01: duplicate key"},
	"duplicate-host-escaped.json":     {"line 4, column 5: hosts.web01: duplicate key"},
	"duplicate-field.json":            {"line 10, column 7: hosts.web01.port: duplicate key"},
	"duplicate-var.json":              {"line 9, column 33: hosts.web01.vars.http_port: duplicate key"},
	"duplicate-tag.json":              {"line 4, column 60: resources.linode:1.tags.role: duplicate key"},
	"duplicate-top.json":              {"line 3, column 3: hosts: duplicate key"},
	"duplicate-metadata-field.json":   {"line 1, column 46: metadata.serial: duplicate key"},
	"unknown-top.json":                {"line 3, column 3: outputs: unknown field (a document has metadata, hosts, resources and operations)"},
	"unknown-host-field.json":         {"line 10, column 7: hosts.web01.ansible_host: unknown field"},
	"unknown-resource-field.json":     {"line 4, column 36: resources.linode:1.region: unknown field"},
	"unknown-metadata-field.json":     {"line 1, column 33: metadata.terraform_version: unknown field"},
	"deep-nesting.json":               {"line 9, column 535: hosts.web01.vars.deep.0.0.0", "nested deeper than 512 levels"},
	"deep-nesting-huge.json":          {"line 9, column 3090: hosts.web01.vars.deep.a.a.a", "nested deeper than 512 levels"},
	"invalid-utf8-name.json":          {"line 1, column 16: hosts: invalid UTF-8 byte 0xff"},
	"invalid-utf8-value.json":         {"line 9, column 28: hosts.web01.vars.motd: invalid UTF-8 byte 0xe9"},
	"invalid-utf8-key.json":           {"line 9, column 20: hosts.web01.vars: invalid UTF-8 byte 0xe9"},
	"lone-surrogate.json":             {"line 9, column 22: hosts.web01.vars.s: lone surrogate \\udc00"},
	"control-char-name.json":          {`line 1, column 36: hosts."web\x0101".name: control character U+0001 not allowed`},
	"raw-control-char.json":           {"line 1, column 50: hosts.web01.user: control character U+0009 in a string"},
	"bad-escape.json":                 {"line 1, column 50: hosts.web01.user: invalid escape sequence \\m"},
	"number-too-big.json":             {"line 9, column 15: hosts.web01.vars.big: number 1e400 is outside the float64 range"},
	"number-int-too-big.json":         {"line 9, column 15: hosts.web01.vars.id: integer 9223372036854775809 is outside the int64 range; as a float64 it would change to 9223372036854776000"},
	"number-underflow.json":           {"line 9, column 15: hosts.web01.vars.tiny: number 1E-400 is too small for a float64 (it would be stored as 0)"},
	"number-malformed.json":           {"line 9, column 23: hosts.web01.vars.n: invalid character '}', expected a digit"},
	"nan.json":                        {"line 9, column 21: hosts.web01.vars.n: invalid character 'N'"},
	"literal-typo.json":               {"line 9, column 27: hosts.web01.vars.flag: invalid character '}', expected 'e' (the literal true)"},
	"bad-timestamp.json":              {"line 10, column 21: hosts.web01.created_at: not an RFC 3339 time: \"yesterday\""},
	"timestamp-not-string.json":       {"line 10, column 21: hosts.web01.created_at: must be a string, not a number"},
	"timestamp-year.json":             {"line 10, column 21: hosts.web01.created_at:", "outside years 0..9999"},
	"version-2.json":                  {"line 1, column 26: metadata.version: unsupported format version \"2.0\""},
	"serial-negative.json":            {"line 1, column 43: metadata.serial: must be an integer from 0 to 18446744073709551615, not -1"},
	"serial-fraction.json":            {"line 1, column 43: metadata.serial: must be an integer from 0 to 18446744073709551615, not 1.5"},
	"metadata-array.json":             {"line 1, column 14: metadata: must be an object, not an array"},
	"vars-array.json":                 {"line 9, column 15: hosts.web01.vars: must be an object, not an array"},
	"tags-non-string.json":            {"line 4, column 53: resources.linode:1.tags.port: must be a string, not a number"},
	"resource-empty-key.json":         {`line 4, column 5: resources."": must not be empty`},
	"resource-missing-type.json":      {"line 4, column 17: resources.linode:1.type: must not be empty"},
	"resource-string.json":            {"line 4, column 17: resources.linode:1: must be an object, not a string"},
	"empty-host-name.json":            {`line 1, column 25: hosts."".name: must not be empty`},
	"long-host-name.json":             {"line 1, column 1050: hosts.hhhh", "hhhh...hhhh", "hhhh.name: longer than 1024 bytes"},
	"operation-unknown-field.json":    {"line 3, column 68: operations.a1.token: unknown field (an operation has id, action, resource, host, data, started_at and holder)"},
	"operation-id-mismatch.json":      {"line 3, column 18: operations.a1.id: \"b2\" does not match its key"},
	"operation-action.json":           {"line 3, column 34: operations.a1.action: \"destroy\" is not one of"},
	"operation-missing-resource.json": {"line 3, column 11: operations.a1.resource: must not be empty"},
	"operations-array.json":           {"line 2, column 17: operations: must be an object, not an array"},
	"duplicate-operation.json":        {"line 4, column 5: operations.a1: duplicate key"},
}

// TestDecode_BadInputs: every bad input gives an *Error matching
// ErrCorrupt (and not ErrInvalid) that says where and what.
func TestDecode_BadInputs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata, "bad", "*"))
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for name := range badInputs {
		assert.Contains(t, names, name, "table entry without a file")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			want, ok := badInputs[name]
			require.True(t, ok, "testdata/bad/%s has no entry in badInputs", name)
			data, err := os.ReadFile(filepath.Join(testdata, "bad", name))
			require.NoError(t, err)
			c, err := statefile.Decode(bytes.NewReader(data), nil)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.ErrorIs(t, err, state.ErrCorrupt)
			assert.NotErrorIs(t, err, state.ErrInvalid)
			var e *statefile.Error
			require.ErrorAs(t, err, &e)
			assert.Positive(t, e.Line)
			assert.Positive(t, e.Column)
			for _, w := range want {
				assert.Contains(t, err.Error(), w)
			}
			assert.True(t, strings.HasPrefix(err.Error(), fmt.Sprintf("line %d, column %d: ", e.Line, e.Column)))
			if e.Path != "" {
				assert.Contains(t, e.Error(), e.Path[:min(len(e.Path), 40)])
			}
		})
	}
}

// TestDecode_Accepts lists edge cases that decode, and what they give.
func TestDecode_Accepts(t *testing.T) {
	tests := []struct {
		name  string
		input string
		check func(t *testing.T, c *state.Contents)
	}{
		{"empty object", `{}`, func(t *testing.T, c *state.Contents) {
			assert.Equal(t, state.Metadata{Version: "1.0"}, c.Metadata, "a document without metadata gets one")
			assert.NotNil(t, c.Hosts)
			assert.NotNil(t, c.Resources)
			assert.Empty(t, c.Hosts)
		}},
		{"null parts", `{"metadata": null, "hosts": null, "resources": null}`, func(t *testing.T, c *state.Contents) {
			assert.Equal(t, "1.0", c.Metadata.Version)
			assert.NotNil(t, c.Hosts)
		}},
		{"no version", `{"metadata": {"created_at": "2024-01-15T10:30:00Z"}}`, func(t *testing.T, c *state.Contents) {
			assert.Equal(t, "1.0", c.Metadata.Version)
			assert.Equal(t, time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC), c.Metadata.CreatedAt)
		}},
		{"integral port", `{"hosts": {"h": {"name": "h", "port": 2.2e1}}}`, func(t *testing.T, c *state.Contents) {
			assert.Equal(t, 22, c.Hosts["h"].Port)
		}},
		{"numbers", `{"hosts": {"h": {"name": "h", "vars": {"a": 80.0, "b": 9223372036854776000, "c": -0, "d": 1E2, "e": 0.5, "f": -9223372036854775808}}}}`,
			func(t *testing.T, c *state.Contents) {
				assert.Equal(t, map[string]any{"a": int64(80), "b": float64(1 << 63), "c": int64(0), "d": int64(100), "e": 0.5, "f": int64(math.MinInt64)}, c.Hosts["h"].Vars,
					"an integer beyond int64 that a float64 holds exactly, as JSON writes it, is that float64 (state.NormalizeValue)")
			}},
		{"escapes", `{"hosts": {"h\u00e9": {"name": "hé", "user": "\u003c\/\"\\\b\f\n\r\t\ud83d\ude00"}}}`, func(t *testing.T, c *state.Contents) {
			assert.Equal(t, "</\"\\\b\f\n\r\t😀", c.Hosts["hé"].User)
		}},
		{"null values and empty vars", `{"hosts": {"h": {"name": "h", "vars": {"n": null, "e": {}, "l": []}}, "g": {"name": "g", "vars": null}}}`,
			func(t *testing.T, c *state.Contents) {
				assert.Equal(t, map[string]any{"n": nil, "e": map[string]any{}, "l": []any{}}, c.Hosts["h"].Vars)
				assert.Nil(t, c.Hosts["g"].Vars)
			}},
		{"time zones become UTC", `{"hosts": {"h": {"name": "h", "created_at": "2024-01-15T12:30:00.5+02:00"}}}`, func(t *testing.T, c *state.Contents) {
			assert.Equal(t, time.Date(2024, 1, 15, 10, 30, 0, 5e8, time.UTC), c.Hosts["h"].CreatedAt)
		}},
		{"largest serial", `{"metadata": {"serial": 18446744073709551615, "lineage": "x"}}`, func(t *testing.T, c *state.Contents) {
			assert.Equal(t, uint64(math.MaxUint64), c.Metadata.Serial)
			assert.Equal(t, "x", c.Metadata.Lineage)
		}},
		{"names with punctuation", `{"hosts": {"a.b-c_d": {"name": "a.b-c_d"}, "2001:db8::1": {"name": "2001:db8::1"}}, "resources": {"../x y": {"type": "a:b"}}}`, func(t *testing.T, c *state.Contents) {
			assert.Contains(t, c.Hosts, "a.b-c_d")
			assert.Contains(t, c.Hosts, "2001:db8::1", "an IPv6 address is a host name Ansible can address")
			assert.Contains(t, c.Resources, "../x y", "path separators and spaces are allowed in resource keys (state.ValidateName)")
		}},
		{"CRLF and tabs", "{\r\n\t\"hosts\": {\r\n\t\t\"h\": {\"name\": \"h\"}\r\n\t}\r\n}\r\n", func(t *testing.T, c *state.Contents) {
			assert.Contains(t, c.Hosts, "h")
		}},
		{"nested 512 deep", `{"hosts": {"h": {"name": "h", "vars": ` + strings.Repeat(`{"a": `, 512) + `1` + strings.Repeat(`}`, 512) + `}}}`,
			func(t *testing.T, c *state.Contents) { assert.Contains(t, c.Hosts, "h") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := decodeBytes(t, []byte(tt.input))
			tt.check(t, c)
			again := decodeBytes(t, encode(t, c))
			assert.True(t, reflect.DeepEqual(c, again), "round trip:\n%#v\n%#v", c, again)
		})
	}
}

func TestDecode_DepthLimitMatchesCore(t *testing.T) {
	// doc nests n objects, vars being the first: state.NormalizeValue
	// counts vars as level 1.
	doc := func(n int) string {
		return `{"hosts": {"h": {"name": "h", "vars": ` + strings.Repeat(`{"a": `, n) + `1` + strings.Repeat(`}`, n) + `}}}`
	}
	levels := func(n int) map[string]any {
		m := map[string]any{"a": int64(1)}
		for range n - 1 {
			m = map[string]any{"a": m}
		}
		return m
	}
	decodeBytes(t, []byte(doc(state.MaxValueDepth)))
	_, err := (&state.HostState{Name: "h", Vars: levels(state.MaxValueDepth)}).Normalize()
	assert.NoError(t, err, "the core accepts as deep")

	_, err = statefile.Decode(strings.NewReader(doc(state.MaxValueDepth+1)), nil)
	assert.ErrorContains(t, err, "nested deeper than 512 levels")
	_, err = (&state.HostState{Name: "h", Vars: levels(state.MaxValueDepth + 1)}).Normalize()
	assert.ErrorContains(t, err, "nested deeper than 512 levels", "the core refuses as deep")
}

func TestDecode_MaxSize(t *testing.T) {
	doc := []byte(`{"hosts": {"h": {"name": "h"}}}`)
	n := int64(len(doc))
	_, err := statefile.Decode(bytes.NewReader(doc), &statefile.DecodeOptions{MaxSize: n})
	assert.NoError(t, err, "a document of exactly MaxSize bytes")
	_, err = statefile.Decode(bytes.NewReader(doc), &statefile.DecodeOptions{MaxSize: n - 1})
	assert.ErrorIs(t, err, statefile.ErrTooLarge)
	assert.ErrorIs(t, err, state.ErrCorrupt)
	assert.ErrorContains(t, err, fmt.Sprintf("document larger than %d bytes", n-1))
	_, err = statefile.Decode(bytes.NewReader(doc), &statefile.DecodeOptions{MaxSize: -1})
	assert.NoError(t, err, "negative: no limit")

	// A file is refused by its size before it is read.
	p := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(p, doc, 0o600))
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	_, err = statefile.Decode(f, &statefile.DecodeOptions{MaxSize: 10})
	assert.ErrorIs(t, err, statefile.ErrTooLarge)
	off, _ := f.Seek(0, io.SeekCurrent)
	assert.Zero(t, off, "nothing read")

	// A giant string within the limit is a giant string.
	giant := strings.Repeat("x", 8<<20)
	c := decodeBytes(t, []byte(`{"hosts": {"h": {"name": "h", "vars": {"g": "`+giant+`"}}}}`))
	assert.Len(t, c.Hosts["h"].Vars["g"], 8<<20)
	_, err = statefile.Decode(strings.NewReader(`{"hosts": {"h": {"name": "h", "vars": {"g": "`+giant+`"}}}}`), &statefile.DecodeOptions{MaxSize: 1 << 20})
	assert.ErrorIs(t, err, statefile.ErrTooLarge)
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestDecode_ReadErrorIsNotCorruption(t *testing.T) {
	eio := errors.New("input/output error")
	_, err := statefile.Decode(io.MultiReader(strings.NewReader(`{"hosts"`), errReader{eio}), nil)
	assert.ErrorIs(t, err, eio)
	assert.NotErrorIs(t, err, state.ErrCorrupt)
}

// TestDecode_AgreesWithEncodingJSON: on documents Decode accepts, a
// reading with encoding/json gives the same contents.
func TestDecode_AgreesWithEncodingJSON(t *testing.T) {
	for _, b := range [][]byte{mustRead(t, "state.json"), encode(t, richContents())} {
		want, err := statefile.DecodeStd(b)
		require.NoError(t, err)
		assert.Equal(t, want, decodeBytes(t, b))
	}
}

func TestDecode_ResultPassesCoreValidation(t *testing.T) {
	c := decodeBytes(t, encode(t, richContents()))
	again := *c
	again.Hosts = maps(c.Hosts)
	again.Resources = maps(c.Resources)
	require.NoError(t, again.Validate())
	assert.True(t, reflect.DeepEqual(c, &again), "Contents.Validate changes nothing of a decoded document")
}

func maps[V any](m map[string]V) map[string]V {
	c := make(map[string]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// TestPathKey: the paths of decode errors are written as the core writes
// state.FieldError paths, for every kind of key.
func TestPathKey(t *testing.T) {
	for _, k := range []string{"web01", "linode:1", "a-b_c", "a b", "a.b", "", "ω", `q"`, "a/b", "x\x01"} {
		c := &state.Contents{Hosts: map[string]*state.HostState{k: {Name: k + "-other"}}}
		var fe *state.FieldError
		require.ErrorAs(t, c.Validate(), &fe, k)
		assert.Equal(t, "hosts."+state.PathKey(k)+".name", fe.Path, "key %q", k)

		key, err := json.Marshal(k)
		require.NoError(t, err)
		name, err := json.Marshal(k + "-other")
		require.NoError(t, err)
		doc := `{"hosts": {` + string(key) + `: {"name": ` + string(name) + `, "address": "", "port": 0, "user": "", "created_at": "2024-01-15T10:30:00Z", "updated_at": "2024-01-15T10:30:00Z"}}}`
		_, err = statefile.Decode(strings.NewReader(doc), nil)
		var se *statefile.Error
		require.ErrorAs(t, err, &se, k)
		assert.Equal(t, fe.Path, se.Path, "decode and the core name key %q alike", k)
	}
}

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	require.NoError(t, err)
	return b
}

// TestFuzzCorpus keeps the FuzzDecode seed corpus in step with the test
// inputs: the documented example, the golden file and every bad input each
// have a corpus file. go test -update writes them.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join(testdata, "fuzz", "FuzzDecode")
	inputs := map[string][]byte{
		"state.json":            mustRead(t, "state.json"),
		"state.golden.json":     mustRead(t, "state.golden.json"),
		"state-operations.json": mustRead(t, "state-operations.json"),
	}
	bad, err := filepath.Glob(filepath.Join(testdata, "bad", "*"))
	require.NoError(t, err)
	for _, f := range bad {
		inputs["bad-"+filepath.Base(f)] = mustRead(t, filepath.Join("bad", filepath.Base(f)))
	}
	for name, data := range inputs {
		p := filepath.Join(dir, strings.TrimSuffix(name, ".json"))
		if *update {
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, os.WriteFile(p, fuzzseed.Marshal(data), 0o644))
		}
		got, err := os.ReadFile(p)
		if assert.NoError(t, err, "corpus file for %s (go test -update writes it)", name) {
			assert.Equal(t, string(fuzzseed.Marshal(data)), string(got), name)
		}
	}
	seeds := readCorpus(t, dir)
	assert.GreaterOrEqual(t, len(seeds), len(inputs))
	assert.True(t, slices.ContainsFunc(seeds, func(b []byte) bool { return bytes.Equal(b, inputs["state.json"]) }))
}

func TestEncodeContents_NilRecord(t *testing.T) {
	err := statefile.EncodeContents(io.Discard, &state.Contents{Hosts: map[string]*state.HostState{"web01": nil}}, nil)
	assert.ErrorContains(t, err, "hosts.web01: nil record")
	err = statefile.EncodeContents(io.Discard, &state.Contents{Resources: map[string]*state.ResourceState{"r 1": nil}}, nil)
	assert.ErrorContains(t, err, `resources."r 1": nil record`)
}
