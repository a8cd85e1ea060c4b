package record_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

var ts = time.Date(2024, 1, 15, 10, 30, 0, 123456789, time.UTC)

// everyKind holds a value of every kind of the value model, nested, with
// lengths that reach every MessagePack size class.
func everyKind() map[string]any {
	return map[string]any{
		"string":   "hello, 世界",
		"empty":    "",
		"str31":    strings.Repeat("a", 31),
		"str32":    strings.Repeat("b", 32),
		"str256":   strings.Repeat("c", 256),
		"str64k":   strings.Repeat("d", 1<<16),
		"int":      int64(80),
		"zero":     int64(0),
		"negative": int64(-7),
		"neg33":    int64(-33),
		"u8":       int64(200),
		"u16":      int64(60000),
		"u32":      int64(math.MaxUint32),
		"i16":      int64(-30000),
		"i32":      int64(math.MinInt32),
		"big":      int64(math.MaxInt64),
		"small":    int64(math.MinInt64),
		"float":    1.5,
		"negfloat": -0.25,
		"tiny":     1e-300,
		"huge":     1e300,
		"bigfloat": float64(math.MaxUint64),
		"true":     true,
		"false":    false,
		"null":     nil,
		"list":     []any{"a", int64(1), 2.5, true, nil, []any{}, map[string]any{}},
		"list16":   make16(),
		"empty[]":  []any{},
		"empty{}":  map[string]any{},
		"map16":    map16(),
		"nested": map[string]any{
			"deeper": map[string]any{"list": []any{map[string]any{"k": "v"}}},
			"ports":  []any{int64(80), int64(443)},
		},
		"quote\"and.dot": "x",
		"":               "empty key",
	}
}

func make16() []any {
	s := make([]any, 70000)
	for i := range s {
		s[i] = int64(i)
	}
	return s
}

func map16() map[string]any {
	m := map[string]any{}
	for i := range 20 {
		m[strings.Repeat("k", i+1)] = int64(i)
	}
	return m
}

func sampleHost() *state.HostState {
	return &state.HostState{
		Name: "web01", Address: "192.0.2.10", Port: 22, User: "admin", Group: "webservers",
		Vars: everyKind(), CreatedAt: ts, UpdatedAt: ts.Add(time.Second),
	}
}

func sampleResource() *state.ResourceState {
	return &state.ResourceState{
		Type: "linode", ID: "12345678", Name: "web-1", Data: everyKind(),
		Tags:      map[string]string{"environment": "production", "role": "webserver", "": ""},
		CreatedAt: ts, UpdatedAt: ts,
	}
}

func TestHost_RoundTripEveryKind(t *testing.T) {
	h := sampleHost()
	b, err := record.EncodeHost(h)
	require.NoError(t, err)
	got, err := record.DecodeHost(b)
	require.NoError(t, err)
	assert.True(t, reflect.DeepEqual(h, got), "host differs after round trip")
	for k, want := range h.Vars {
		assert.Equal(t, reflect.TypeOf(want), reflect.TypeOf(got.Vars[k]), "vars[%q] type", k)
	}
	assert.True(t, got.CreatedAt == h.CreatedAt, "== on timestamps")
	assert.Equal(t, time.UTC, got.CreatedAt.Location())

	again, err := record.EncodeHost(got)
	require.NoError(t, err)
	assert.Equal(t, b, again, "encoding is deterministic")
}

func TestHost_NilAndEmptyVars(t *testing.T) {
	for _, vars := range []map[string]any{nil, {}} {
		h := &state.HostState{Name: "bare"}
		h.Vars = vars
		b, err := record.EncodeHost(h)
		require.NoError(t, err)
		got, err := record.DecodeHost(b)
		require.NoError(t, err)
		assert.True(t, reflect.DeepEqual(h, got), "vars %#v came back as %#v", vars, got.Vars)
		assert.Equal(t, vars == nil, got.Vars == nil)
	}
}

func TestResource_RoundTrip(t *testing.T) {
	cases := map[string]*state.ResourceState{
		"full":       sampleResource(),
		"bare":       {Type: "ip"},
		"empty maps": {Type: "ip", Data: map[string]any{}, Tags: map[string]string{}},
	}
	for name, r := range cases {
		b, err := record.EncodeResource(r)
		require.NoError(t, err, name)
		got, err := record.DecodeResource(b)
		require.NoError(t, err, name)
		assert.True(t, reflect.DeepEqual(r, got), "%s: resource differs:\n%#v\n%#v", name, r, got)
		typ, err := record.ResourceType(b)
		require.NoError(t, err)
		assert.Equal(t, r.Type, typ)
	}
}

func TestMetadata_RoundTrip(t *testing.T) {
	cases := []state.Metadata{
		{},
		state.NewMetadata(time.Now()),
		{Version: "1.0", CreatedAt: ts, UpdatedAt: ts, Serial: math.MaxUint64, Lineage: "x"},
		{Serial: 200},
	}
	for _, m := range cases {
		b, err := record.EncodeMetadata(&m)
		require.NoError(t, err)
		got, err := record.DecodeMetadata(b)
		require.NoError(t, err)
		assert.True(t, m == got, "metadata == after round trip: %#v vs %#v", m, got)
	}
}

func TestTimestamps_RoundTrip(t *testing.T) {
	times := []time.Time{
		{},
		time.Unix(0, 0).UTC(),
		time.Unix(1, 0).UTC(),                  // 32-bit form
		time.Unix(1700000000, 999999999).UTC(), // 64-bit form
		time.Unix(1<<34, 1).UTC(),              // 96-bit form
		time.Date(1969, 12, 31, 23, 59, 59, 5, time.UTC), // negative seconds
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		state.Timestamp(time.Now()),
	}
	for _, tm := range times {
		h := &state.HostState{Name: "h", CreatedAt: tm, UpdatedAt: tm}
		b, err := record.EncodeHost(h)
		require.NoError(t, err, tm)
		got, err := record.DecodeHost(b)
		require.NoError(t, err, tm)
		assert.True(t, got.CreatedAt == tm, "%v came back as %v", tm, got.CreatedAt)
		assert.True(t, got.UpdatedAt == tm)
	}
	// A time in another zone, with a monotonic reading, comes back as the
	// same instant in UTC.
	local := time.Now().In(time.FixedZone("X", 3600))
	b, err := record.EncodeHost(&state.HostState{Name: "h", CreatedAt: local})
	require.NoError(t, err)
	got, err := record.DecodeHost(b)
	require.NoError(t, err)
	assert.True(t, got.CreatedAt == state.Timestamp(local))
}

// TestDecode_EveryIntegerEncoding decodes integers, floats and strings
// written in every encoding MessagePack has (the library's default
// encoding of each Go type), and gets the value model's types.
func TestDecode_EveryIntegerEncoding(t *testing.T) {
	vals := []struct {
		in   any
		want any
	}{
		{uint8(200), int64(200)},
		{uint16(60000), int64(60000)},
		{uint32(4000000000), int64(4000000000)},
		{uint64(math.MaxInt64), int64(math.MaxInt64)},
		{int8(-100), int64(-100)},
		{int16(-30000), int64(-30000)},
		{int32(-2000000000), int64(-2000000000)},
		{int64(5), int64(5)},
		{float32(0.5), 0.5},
		{1.25, 1.25},
		{"s", "s"},
		{true, true},
		{nil, nil},
	}
	for _, v := range vals {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		// A host record written field by field, with v as its only var.
		require.NoError(t, enc.EncodeArrayLen(9))
		require.NoError(t, enc.EncodeUint8(1)) // format version 1: no checksum
		require.NoError(t, enc.EncodeString("h"))
		require.NoError(t, enc.EncodeString(""))
		require.NoError(t, enc.EncodeUint16(22))
		require.NoError(t, enc.EncodeString(""))
		require.NoError(t, enc.EncodeString(""))
		require.NoError(t, enc.EncodeMapLen(1))
		require.NoError(t, enc.EncodeString("v"))
		require.NoError(t, enc.Encode(v.in))
		require.NoError(t, enc.EncodeTime(ts))
		require.NoError(t, enc.EncodeTime(ts))
		h, err := record.DecodeHost(buf.Bytes())
		require.NoError(t, err, "%T", v.in)
		assert.Equal(t, 22, h.Port)
		got := h.Vars["v"]
		assert.True(t, reflect.DeepEqual(v.want, got), "%T %v decoded as %T %v", v.in, v.in, got, got)
	}
}

// TestEncode_IsStandardMessagePack checks what the library's generic
// decoder makes of an encoded host: the fields in order, the timestamps as
// time.Time.
func TestEncode_IsStandardMessagePack(t *testing.T) {
	b, err := record.EncodeHost(sampleHost())
	require.NoError(t, err)
	var generic []any
	require.NoError(t, msgpack.Unmarshal(b, &generic))
	require.Len(t, generic, 10)
	assert.EqualValues(t, record.Version, generic[0])
	assert.IsType(t, uint32(0), generic[9], "the checksum ends the record")
	assert.Equal(t, "web01", generic[1])
	assert.Equal(t, "192.0.2.10", generic[2])
	assert.EqualValues(t, 22, generic[3])
	assert.Equal(t, "webservers", generic[5])
	assert.IsType(t, map[string]any{}, generic[6])
	assert.True(t, ts.Equal(generic[7].(time.Time)))
}

func TestEncode_RejectsWhatIsNotNormalized(t *testing.T) {
	deep := func(levels int) map[string]any {
		top := map[string]any{}
		cur := top
		for range levels - 1 {
			next := map[string]any{}
			cur["d"] = next
			cur = next
		}
		return top
	}
	hosts := []struct {
		name string
		h    *state.HostState
		path string
	}{
		{"nil", nil, ""},
		{"empty name", &state.HostState{}, "name"},
		{"control char", &state.HostState{Name: "a\nb"}, "name"},
		{"long name", &state.HostState{Name: strings.Repeat("x", state.MaxNameLen+1)}, "name"},
		{"port", &state.HostState{Name: "a", Port: 65536}, "port"},
		{"negative port", &state.HostState{Name: "a", Port: -1}, "port"},
		{"bad address", &state.HostState{Name: "a", Address: "\xff"}, "address"},
		{"bad user", &state.HostState{Name: "a", User: "\xff"}, "user"},
		{"bad group", &state.HostState{Name: "a", Group: "\xff"}, "group"},
		{"int", &state.HostState{Name: "a", Vars: map[string]any{"x": 1}}, "vars.x"},
		{"uint64", &state.HostState{Name: "a", Vars: map[string]any{"x": uint64(1)}}, "vars.x"},
		{"float32", &state.HostState{Name: "a", Vars: map[string]any{"x": float32(0.5)}}, "vars.x"},
		{"NaN", &state.HostState{Name: "a", Vars: map[string]any{"x": math.NaN()}}, "vars.x"},
		{"Inf in list", &state.HostState{Name: "a", Vars: map[string]any{"x": []any{1.5, math.Inf(-1)}}}, "vars.x.1"},
		{"integral float", &state.HostState{Name: "a", Vars: map[string]any{"x": 80.0}}, "vars.x"},
		{"negative zero", &state.HostState{Name: "a", Vars: map[string]any{"x": math.Copysign(0, -1)}}, "vars.x"},
		{"bad string", &state.HostState{Name: "a", Vars: map[string]any{"x": "\xfe"}}, "vars.x"},
		{"bad key", &state.HostState{Name: "a", Vars: map[string]any{"\xfe": 1}}, "vars"},
		{"map[string]string", &state.HostState{Name: "a", Vars: map[string]any{"m": map[string]string{}}}, "vars.m"},
		{"time value", &state.HostState{Name: "a", Vars: map[string]any{"t": ts}}, "vars.t"},
		{"too deep", &state.HostState{Name: "a", Vars: deep(state.MaxValueDepth + 1)}, "vars.d"},
		{"too deep list", &state.HostState{Name: "a", Vars: map[string]any{"l": deepList(state.MaxValueDepth)}}, "vars.l"},
		{"year 10000", &state.HostState{Name: "a", CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "created_at"},
		{"year -1", &state.HostState{Name: "a", UpdatedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}, "updated_at"},
	}
	for _, tc := range hosts {
		out, err := record.AppendHost([]byte("keep"), tc.h)
		require.Error(t, err, tc.name)
		assert.ErrorIs(t, err, state.ErrInvalid, tc.name)
		assert.Equal(t, "keep", string(out), "%s: dst unchanged on error", tc.name)
		var fe *state.FieldError
		require.ErrorAs(t, err, &fe, tc.name)
		assert.True(t, strings.HasPrefix(fe.Path, tc.path), "%s: path %q, want prefix %q", tc.name, fe.Path, tc.path)
	}
	// The deepest accepted nesting encodes and decodes.
	ok := &state.HostState{Name: "a", Vars: deep(state.MaxValueDepth)}
	b, err := record.EncodeHost(ok)
	require.NoError(t, err)
	got, err := record.DecodeHost(b)
	require.NoError(t, err)
	assert.True(t, reflect.DeepEqual(ok, got))
	// ... as state.Normalize agrees.
	_, err = ok.Normalize()
	require.NoError(t, err)
	_, err = (&state.HostState{Name: "a", Vars: deep(state.MaxValueDepth + 1)}).Normalize()
	require.Error(t, err)

	resources := []struct {
		name string
		r    *state.ResourceState
		path string
	}{
		{"nil", nil, ""},
		{"no type", &state.ResourceState{}, "type"},
		{"bad id", &state.ResourceState{Type: "t", ID: "\xff"}, "id"},
		{"bad name", &state.ResourceState{Type: "t", Name: "\xff"}, "name"},
		{"bad tag", &state.ResourceState{Type: "t", Tags: map[string]string{"k": "\xff"}}, "tags.k"},
		{"bad tag key", &state.ResourceState{Type: "t", Tags: map[string]string{"\xff": ""}}, "tags"},
		{"bad data", &state.ResourceState{Type: "t", Data: map[string]any{"x": math.Inf(1)}}, "data.x"},
	}
	for _, tc := range resources {
		_, err := record.EncodeResource(tc.r)
		require.Error(t, err, tc.name)
		var fe *state.FieldError
		require.ErrorAs(t, err, &fe, tc.name)
		assert.True(t, strings.HasPrefix(fe.Path, tc.path), "%s: path %q, want prefix %q", tc.name, fe.Path, tc.path)
	}
	_, err = record.EncodeMetadata(&state.Metadata{Lineage: "\xff"})
	assert.ErrorIs(t, err, state.ErrInvalid)
}

func deepList(levels int) []any {
	l := []any{}
	for range levels - 1 {
		l = []any{l}
	}
	return l
}

// TestEncode_AgreesWithNormalize: whatever state.NormalizeValue makes of
// random input encodes, and decodes to the same value.
func TestEncode_AgreesWithNormalize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		raw := map[string]any{}
		for j := range rng.IntN(6) {
			raw[randString(rng)+string(rune('a'+j))] = randValue(rng, 0)
		}
		h, err := (&state.HostState{Name: "h", Vars: raw, CreatedAt: ts}).Normalize()
		require.NoError(t, err, "case %d", i)
		b, err := record.EncodeHost(h)
		require.NoError(t, err, "case %d: %#v", i, h.Vars)
		got, err := record.DecodeHost(b)
		require.NoError(t, err, "case %d", i)
		require.True(t, reflect.DeepEqual(h, got), "case %d:\n%#v\n%#v", i, h.Vars, got.Vars)
	}
}

func randString(rng *rand.Rand) string {
	const alphabet = "ab\"\\ é世\x00\n"
	r := []rune(alphabet)
	var sb strings.Builder
	for range rng.IntN(5) {
		sb.WriteRune(r[rng.IntN(len(r))])
	}
	return sb.String()
}

func randValue(rng *rand.Rand, depth int) any {
	n := 12
	if depth > 4 {
		n = 9
	}
	switch rng.IntN(n) {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2:
		return rng.Int64() >> rng.IntN(64)
	case 3:
		return -rng.Int64() >> rng.IntN(64)
	case 4:
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
	case 5:
		return float64(rng.IntN(1000)) // integral: normalized to int64
	case 6:
		return randString(rng)
	case 7:
		return uint64(rng.Uint64() >> 1) // within int64: larger ones are refused unless a float64 holds them exactly
	case 8:
		return float32(rng.NormFloat64())
	case 9:
		s := make([]any, rng.IntN(4))
		for i := range s {
			s[i] = randValue(rng, depth+1)
		}
		return s
	default:
		m := map[string]any{}
		for range rng.IntN(4) {
			m[randString(rng)] = randValue(rng, depth+1)
		}
		return m
	}
}

// TestDecode_EveryPrefixFails truncates valid records at every length.
func TestDecode_EveryPrefixFails(t *testing.T) {
	h := &state.HostState{Name: "web01", Port: 22, Vars: map[string]any{"a": []any{1.5, "x", int64(1000), map[string]any{"k": nil}}}, CreatedAt: ts}
	hb, err := record.EncodeHost(h)
	require.NoError(t, err)
	rb, err := record.EncodeResource(sampleResourceSmall())
	require.NoError(t, err)
	mb, err := record.EncodeMetadata(&state.Metadata{Version: "1.0", Lineage: "l", Serial: 70000, CreatedAt: ts})
	require.NoError(t, err)
	for n := range len(hb) {
		_, err := record.DecodeHost(hb[:n])
		assert.ErrorIs(t, err, state.ErrCorrupt, "host prefix %d", n)
	}
	for n := range len(rb) {
		_, err := record.DecodeResource(rb[:n])
		assert.ErrorIs(t, err, state.ErrCorrupt, "resource prefix %d", n)
	}
	for n := range len(mb) {
		_, err := record.DecodeMetadata(mb[:n])
		assert.ErrorIs(t, err, state.ErrCorrupt, "metadata prefix %d", n)
	}
	_, err = record.DecodeHost(append(hb, 0xc0))
	assert.ErrorIs(t, err, state.ErrCorrupt, "trailing byte")
	// A record of one kind is not a record of another.
	_, err = record.DecodeHost(rb)
	assert.ErrorIs(t, err, state.ErrCorrupt)
	_, err = record.DecodeResource(hb)
	assert.ErrorIs(t, err, state.ErrCorrupt)
	_, err = record.DecodeMetadata(hb)
	assert.ErrorIs(t, err, state.ErrCorrupt)
}

func sampleResourceSmall() *state.ResourceState {
	return &state.ResourceState{Type: "linode", ID: "1", Data: map[string]any{"ip": []any{"192.0.2.1"}}, Tags: map[string]string{"a": "b"}, CreatedAt: ts, UpdatedAt: ts}
}

// hostWith returns a host record, built by hand, whose vars value is the
// raw MessagePack v.
func hostWith(v ...byte) []byte {
	b := []byte{0x99, 0x01, 0xa1, 'h', 0xa0, 0x16, 0xa0, 0xa0, 0x81, 0xa1, 'v'}
	b = append(b, v...)
	t := []byte{0xd6, 0xff, 0, 0, 0, 1}
	b = append(b, t...)
	return append(b, t...)
}

func TestDecode_HostileInput(t *testing.T) {
	good := hostWith(0x01)
	h, err := record.DecodeHost(good)
	require.NoError(t, err, "the hand-built record is valid")
	assert.Equal(t, int64(1), h.Vars["v"])

	deepArrays := bytes.Repeat([]byte{0x91}, 100000) // 100k nested one-element lists
	cases := map[string][]byte{
		"empty":              {},
		"nil":                {0xc0},
		"not an array":       {0x81, 0xa1, 'a', 0x01},
		"wrong field count":  {0x92, 0x01, 0xa1, 'h'},
		"unknown version":    {0x99, 0x03, 0xa1, 'h'},
		"huge str32":         hostWith(0xdb, 0xff, 0xff, 0xff, 0xff, 'x'),
		"huge array32":       hostWith(0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0),
		"huge map32":         hostWith(0xdf, 0xff, 0xff, 0xff, 0xff, 0xa0, 0xc0),
		"huge bin32":         hostWith(0xc6, 0xff, 0xff, 0xff, 0xff),
		"deep lists":         hostWith(deepArrays...),
		"bad utf8":           hostWith(0xa2, 0xff, 0xfe),
		"duplicate key":      hostWith(0x82, 0xa1, 'k', 0x01, 0xa1, 'k', 0x02),
		"integral float":     hostWith(0xcb, 0x40, 0x54, 0, 0, 0, 0, 0, 0), // 80.0
		"NaN":                hostWith(0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1),
		"Inf float32":        hostWith(0xca, 0x7f, 0x80, 0, 0),
		"uint64 overflow":    hostWith(0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0),
		"bin":                hostWith(0xc4, 0x01, 'x'),
		"ext":                hostWith(0xd4, 0x01, 0x00),
		"timestamp in vars":  hostWith(0xd6, 0xff, 0, 0, 0, 1),
		"reserved code":      hostWith(0xc1),
		"non-string key":     hostWith(0x81, 0x01, 0x01),
		"truncated float":    hostWith(0xcb, 0x40),
		"empty name":         {0x99, 0x01, 0xa0, 0xa0, 0x16, 0xa0, 0xa0, 0xc0, 0xd6, 0xff, 0, 0, 0, 1, 0xd6, 0xff, 0, 0, 0, 1},
		"port out of range":  {0x99, 0x01, 0xa1, 'h', 0xa0, 0xce, 0, 1, 0, 0, 0xa0, 0xa0, 0xc0, 0xd6, 0xff, 0, 0, 0, 1, 0xd6, 0xff, 0, 0, 0, 1},
		"negative port":      {0x99, 0x01, 0xa1, 'h', 0xa0, 0xff, 0xa0, 0xa0, 0xc0, 0xd6, 0xff, 0, 0, 0, 1, 0xd6, 0xff, 0, 0, 0, 1},
		"name with newline":  {0x99, 0x01, 0xa3, 'a', '\n', 'b', 0xa0, 0x16, 0xa0, 0xa0, 0xc0, 0xd6, 0xff, 0, 0, 0, 1, 0xd6, 0xff, 0, 0, 0, 1},
		"nanoseconds >= 1e9": {0x99, 0x01, 0xa1, 'h', 0xa0, 0x16, 0xa0, 0xa0, 0xc0, 0xc7, 12, 0xff, 0x3b, 0x9a, 0xca, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0xd6, 0xff, 0, 0, 0, 1},
		"year 10000":         {0x99, 0x01, 0xa1, 'h', 0xa0, 0x16, 0xa0, 0xa0, 0xc0, 0xc7, 12, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x3a, 0xff, 0xf4, 0x41, 0x80, 0xd6, 0xff, 0, 0, 0, 1},
		"wrong ext type":     {0x99, 0x01, 0xa1, 'h', 0xa0, 0x16, 0xa0, 0xa0, 0xc0, 0xd6, 0x05, 0, 0, 0, 1, 0xd6, 0xff, 0, 0, 0, 1},
		"ext8 bad length":    {0x99, 0x01, 0xa1, 'h', 0xa0, 0x16, 0xa0, 0xa0, 0xc0, 0xc7, 0x05, 0xff, 0, 0, 0, 0, 1, 0xd6, 0xff, 0, 0, 0, 1},
	}
	for name, b := range cases {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		_, err := record.DecodeHost(b)
		runtime.ReadMemStats(&ms1)
		require.Error(t, err, name)
		assert.ErrorIs(t, err, state.ErrCorrupt, name)
		assert.NotErrorIs(t, err, state.ErrInvalid, "%s: stored data is corrupt, not invalid input", name)
		// Allocation follows the input: no length field is trusted.
		assert.Less(t, ms1.TotalAlloc-ms0.TotalAlloc, uint64(64*len(b)+64<<10), "%s: allocated too much", name)
	}
	// Resources and metadata get the same treatment.
	_, err = record.DecodeResource([]byte{0x98, 0x01, 0xa1, 't', 0xa0, 0xa0, 0xc0, 0x81, 0xa1, 'k', 0x01, 0xd6, 0xff, 0, 0, 0, 1, 0xd6, 0xff, 0, 0, 0, 1})
	assert.ErrorIs(t, err, state.ErrCorrupt, "tag value that is not a string")
	_, err = record.DecodeResource([]byte{0x98, 0x01, 0xa1, 't', 0xa0, 0xa0, 0xc0, 0x82, 0xa1, 'k', 0xa0, 0xa1, 'k', 0xa0, 0xd6, 0xff, 0, 0, 0, 1, 0xd6, 0xff, 0, 0, 0, 1})
	assert.ErrorIs(t, err, state.ErrCorrupt, "duplicate tag")
	_, err = record.ResourceType([]byte{0x98, 0x01, 0xa0})
	assert.ErrorIs(t, err, state.ErrCorrupt, "empty type")
	_, err = record.DecodeMetadata([]byte{0x96, 0x01, 0xa0, 0xd6, 0xff, 0, 0, 0, 1, 0xd6, 0xff, 0, 0, 0, 1, 0xff, 0xa0})
	assert.ErrorIs(t, err, state.ErrCorrupt, "negative serial")
}

func TestDecode_DepthLimit(t *testing.T) {
	// MaxValueDepth levels: vars is level 1, then MaxValueDepth-1 lists.
	inner := append(bytes.Repeat([]byte{0x91}, state.MaxValueDepth-2), 0x90)
	_, err := record.DecodeHost(hostWith(inner...))
	require.NoError(t, err)
	inner = append(bytes.Repeat([]byte{0x91}, state.MaxValueDepth-1), 0x90)
	_, err = record.DecodeHost(hostWith(inner...))
	assert.ErrorIs(t, err, state.ErrCorrupt)
	assert.Contains(t, err.Error(), "nested deeper")
}

func TestDecode_ErrorNamesOffset(t *testing.T) {
	_, err := record.DecodeHost(hostWith(0xa2, 0xff, 0xfe))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "byte 11")
	assert.Contains(t, err.Error(), "UTF-8")
}

func BenchmarkEncodeHost(b *testing.B) {
	h := benchHost()
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		var err error
		buf, err = record.AppendHost(buf[:0], h)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeHost(b *testing.B) {
	buf, err := record.EncodeHost(benchHost())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := record.DecodeHost(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// benchHost is a typical host: a few vars of the common kinds.
func benchHost() *state.HostState {
	return &state.HostState{
		Name: "web-0042.example.com", Address: "192.0.2.42", Port: 22, User: "admin", Group: "webservers",
		Vars: map[string]any{
			"http_port": int64(80), "env": "production", "tls": true, "weight": 0.75,
			"dns": []any{"192.0.2.1", "192.0.2.2"},
		},
		CreatedAt: ts, UpdatedAt: ts,
	}
}

// Batch.Validate, which backends call before they encode, accepts the
// metadata of a Replace exactly when the codec can encode it.
func TestBatchValidate_AgreesWithEncodeMetadata(t *testing.T) {
	cases := []state.Metadata{
		{},
		{Version: "1.0", Lineage: "x", CreatedAt: ts, UpdatedAt: ts},
		{Version: "\xff"},
		{Lineage: "\xfe"},
		{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{UpdatedAt: time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC)},
	}
	for _, m := range cases {
		_, encErr := record.EncodeMetadata(&m)
		checkErr := (&state.Batch{Replace: &m}).Validate()
		assert.Equal(t, encErr == nil, checkErr == nil, "%#v: encode %v, check %v", m, encErr, checkErr)
		if checkErr != nil {
			assert.ErrorIs(t, checkErr, state.ErrInvalid)
		}
	}
}

// TestDecode_DoesNotAliasInput: decoded records stay intact when the
// input bytes change afterwards (bbolt pages are only valid during their
// transaction).
func TestDecode_DoesNotAliasInput(t *testing.T) {
	h := &state.HostState{Name: "web01", Address: "192.0.2.1", Vars: map[string]any{"key": "value", "l": []any{"item"}}, CreatedAt: ts}
	b, err := record.EncodeHost(h)
	require.NoError(t, err)
	got, err := record.DecodeHost(b)
	require.NoError(t, err)
	for i := range b {
		b[i] = 'X'
	}
	assert.True(t, reflect.DeepEqual(h, got), "%#v", got)
}

// version1 turns a record of format version 2 (as the encoder writes it,
// with a fixarray header) into the same record in format version 1: no
// checksum.
func version1(b []byte) []byte {
	if len(b) < 7 || b[0] < 0x91 || b[0] > 0x9f || b[1] != 0x02 {
		panic("not a version 2 record with a fixarray header")
	}
	out := slices.Clone(b[:len(b)-5]) // the checksum: 0xce and 4 bytes
	out[0]--
	out[1] = 0x01
	return out
}

func flipByte(b []byte, i int) []byte {
	out := slices.Clone(b)
	out[i] ^= 0x01
	return out
}

// TestChecksum_EveryDamagedByte: a record of format version 2 carries the
// CRC-32C of its bytes: a flipped bit anywhere in it, a byte an address,
// a user or a password, is refused as corrupt, never decoded as another
// value (it used to be served).
func TestChecksum_EveryDamagedByte(t *testing.T) {
	h := &state.HostState{Name: "web01", Address: "192.0.2.10", Port: 22, User: "admin", Vars: map[string]any{"password": "hunter2", "n": int64(7)}, CreatedAt: ts, UpdatedAt: ts}
	b, err := record.EncodeHost(h)
	require.NoError(t, err)
	for i := range b {
		for bit := range 8 {
			d := slices.Clone(b)
			d[i] ^= 1 << bit
			got, err := record.DecodeHost(d)
			require.Error(t, err, "byte %d bit %d: decoded %+v", i, bit, got)
			require.ErrorIs(t, err, state.ErrCorrupt)
		}
	}
	d := flipByte(b, bytes.Index(b, []byte("hunter2")))
	_, err = record.DecodeHost(d)
	assert.ErrorContains(t, err, "checksum mismatch")
	r, err := record.EncodeResource(&state.ResourceState{Type: "linode", ID: "1"})
	require.NoError(t, err)
	_, err = record.ResourceType(flipByte(r, len(r)-8))
	assert.ErrorIs(t, err, state.ErrCorrupt, "ResourceType verifies the checksum too")
}

// TestVersion1_StillRead: records written before checksums (format
// version 1) decode to the same values; what is written now is version 2.
func TestVersion1_StillRead(t *testing.T) {
	h := &state.HostState{Name: "web01", Address: "a", Port: 22, Group: "g", Groups: []string{"x"}, Vars: map[string]any{"k": []any{int64(1), "s"}}, CreatedAt: ts, UpdatedAt: ts}
	b, err := record.EncodeHost(h)
	require.NoError(t, err)
	assert.Equal(t, byte(record.Version), b[1])
	got, err := record.DecodeHost(version1(b))
	require.NoError(t, err)
	assert.Equal(t, h, got)
	m := &state.Metadata{Version: "1.0", Serial: 9, Lineage: "l", CreatedAt: ts, UpdatedAt: ts}
	mb, err := record.EncodeMetadata(m)
	require.NoError(t, err)
	gm, err := record.DecodeMetadata(version1(mb))
	require.NoError(t, err)
	assert.Equal(t, *m, gm)
	op := &state.Operation{ID: "a", Action: "create", Resource: "r", StartedAt: ts}
	ob, err := record.EncodeOperation(op)
	require.NoError(t, err)
	gop, err := record.DecodeOperation(version1(ob))
	require.NoError(t, err)
	assert.Equal(t, op, gop)
}
