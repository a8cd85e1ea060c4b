package state_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
)

func TestNormalizeValue(t *testing.T) {
	tests := []struct {
		in, want any
	}{
		{nil, nil},
		{"s", "s"},
		{true, true},
		{7, int64(7)},
		{uint64(math.MaxInt64), int64(math.MaxInt64)},
		{uint64(1e19), float64(1e19)}, // beyond int64, but exactly a float64, digit for digit
		{80.0, int64(80)},
		{-0.0, int64(0)},
		{1.5, 1.5},
		{1e20, 1e20},
		{float64(1 << 63), float64(1 << 63)},
		{float64(-(1 << 63)), int64(math.MinInt64)},
		{json.Number("9223372036854775807"), int64(math.MaxInt64)},
		{json.Number("9223372036854776000"), float64(1 << 63)}, // what JSON writes for float64(1 << 63)
		{json.Number("1e-300"), 1e-300},
		{json.Number("0e-400"), int64(0)},
		{json.Number("5e-324"), 5e-324}, // the smallest float64
		{json.Number("80.0"), int64(80)},
		{json.Number("1e2"), int64(100)},
		{json.Number("0.1"), 0.1},
		{[]any(nil), nil},
		{map[string]any(nil), nil},
		{[]int{}, []any{}},
		{map[string]int{"a": 1}, map[string]any{"a": int64(1)}},
		{[]map[string]any{{"x": 1}}, []any{map[string]any{"x": int64(1)}}},
		{new(int), int64(0)},
	}
	for _, tt := range tests {
		got, err := state.NormalizeValue(tt.in)
		require.NoError(t, err, "%#v", tt.in)
		assert.True(t, reflect.DeepEqual(tt.want, got), "NormalizeValue(%#v) = %#v (%T), want %#v (%T)", tt.in, got, got, tt.want, tt.want)
	}
}

func TestNormalizeValue_Rejects(t *testing.T) {
	shared := []any{1}
	dag := map[string]any{"a": shared, "b": shared} // shared, not cyclic: fine
	_, err := state.NormalizeValue(dag)
	require.NoError(t, err)

	bad := map[string]any{
		"NaN":          math.NaN(),
		"-Inf":         math.Inf(-1),
		"number 1e999": json.Number("1e999"),
		"bad number":   json.Number("12abc"),
		"int > int64":  json.Number("9223372036854775809"),
		"2^63":         json.Number("9223372036854775808"),
		"int < int64":  json.Number("-9223372036854775809"),
		"huge int":     json.Number("1" + strings.Repeat("0", 400)),
		"underflow":    json.Number("1E-400"),
		"uint64 > max": uint64(math.MaxInt64) + 1,
		"uint max":     uint64(math.MaxUint64),
		"chan":         make(chan int),
		"unsafe key":   map[[2]int]int{{1, 2}: 3},
	}
	for name, v := range bad {
		_, err := state.NormalizeValue(v)
		assert.ErrorIs(t, err, state.ErrInvalid, name)
	}
	type node struct{ Next *node }
	n := &node{}
	n.Next = n
	_, err = state.NormalizeValue(n)
	assert.ErrorIs(t, err, state.ErrInvalid, "cyclic pointers")
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"web01", "a/b", "linode:123", "日本", "with space", string(make([]byte, 0)) + "x"} {
		assert.NoError(t, state.ValidateName(ok), ok)
	}
	for _, bad := range []string{"", "a\x00", "\x7f", "a\u0085b", "\xc3\x28", string(make([]byte, state.MaxNameLen+1))} {
		assert.ErrorIs(t, state.ValidateName(bad), state.ErrInvalid, "%q", bad)
	}
}

func TestFieldError(t *testing.T) {
	h := &state.HostState{Name: "web01", Port: 70000}
	_, err := h.Normalize()
	var fe *state.FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "port: must be 0..65535", fe.Error())
	assert.Equal(t, "hosts.web01.port: must be 0..65535", fe.Under("hosts.web01").Error())
	c := &state.Contents{Hosts: map[string]*state.HostState{"web01": h}}
	assert.EqualError(t, c.Validate(), "hosts.web01.port: must be 0..65535")
	c = &state.Contents{Resources: map[string]*state.ResourceState{"a.b": {Type: "t", Data: map[string]any{"x y": math.NaN()}}}}
	assert.EqualError(t, c.Validate(), `resources."a.b".data."x y": NaN is not representable in JSON`)
}

func TestNormalize_TimestampsJSONCanWrite(t *testing.T) {
	ok := &state.HostState{Name: "h", CreatedAt: time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC)}
	_, err := ok.Normalize()
	require.NoError(t, err)
	for _, year := range []int{-1, 10000} {
		h := &state.HostState{Name: "h", UpdatedAt: time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)}
		_, err := h.Normalize()
		var fe *state.FieldError
		require.ErrorAs(t, err, &fe, "year %d", year)
		assert.Equal(t, "updated_at", fe.Path)
		r := &state.ResourceState{Type: "t", CreatedAt: time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)}
		_, err = r.Normalize()
		assert.ErrorIs(t, err, state.ErrInvalid)
	}
	// A zero time (year 1) is fine: imported records may lack timestamps.
	_, err = (&state.HostState{Name: "h"}).Normalize()
	assert.NoError(t, err)
}

func TestNormalizeValue_PathsOfNestedErrors(t *testing.T) {
	_, err := state.NormalizeValue(map[string]any{"a": []any{1, map[string]any{"b c": math.Inf(1)}}})
	assert.EqualError(t, err, `a.1."b c": +Inf is not representable in JSON`)
	h := &state.HostState{Name: "h", Vars: map[string]any{"x": []any{[]any{"ok", "\xff"}}}}
	_, err = h.Normalize()
	assert.EqualError(t, err, "vars.x.0.1: string is not valid UTF-8")
}

// TestValueDepth_OneRule: nesting deeper than MaxValueDepth is refused
// with the same error whatever path the value comes in by (Go values,
// values with their own JSON form, JSON text) and however deep it goes
// (encoding/json gives up at 10000 levels with an error of its own).
func TestValueDepth_OneRule(t *testing.T) {
	deepText := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	deepList := func(n int) any {
		var v any = []any{}
		for range n - 1 {
			v = []any{v}
		}
		return v
	}
	ok := func(v any, err error) {
		t.Helper()
		require.NoError(t, err)
		require.NotNil(t, v)
	}
	ok(state.NormalizeValue(deepList(state.MaxValueDepth)))
	ok(state.NormalizeValue(json.RawMessage(deepText(state.MaxValueDepth))))
	ok(state.ParseJSON([]byte(deepText(state.MaxValueDepth))))
	for name, f := range map[string]func(n int) (any, error){
		"Go value":    func(n int) (any, error) { return state.NormalizeValue(deepList(n)) },
		"marshaler":   func(n int) (any, error) { return state.NormalizeValue(json.RawMessage(deepText(n))) },
		"JSON text":   func(n int) (any, error) { return state.ParseJSON([]byte(deepText(n))) },
		"unbalanced":  func(n int) (any, error) { return state.ParseJSON([]byte(strings.Repeat("[", n))) },
		"in a map":    func(n int) (any, error) { return state.NormalizeValue(map[string]any{"k": deepList(n - 1)}) },
		"map in text": func(n int) (any, error) { return state.ParseJSON([]byte(`{"k":` + deepText(n-1) + `}`)) },
	} {
		for _, n := range []int{state.MaxValueDepth + 1, 10001, 50000} {
			_, err := f(n)
			var fe *state.FieldError
			require.ErrorAs(t, err, &fe, "%s, %d levels", name, n)
			assert.Equal(t, "nested deeper than 512 levels", fe.Msg, "%s, %d levels", name, n)
			assert.Less(t, len(fe.Path), 100, "%s: the path is shortened: %s", name, fe.Path)
		}
	}
}

// TestParseJSON: JSON text in the value model, the model's errors as
// *FieldError, text that is not JSON as another error.
func TestParseJSON(t *testing.T) {
	v, err := state.ParseJSON([]byte(`{"a": [1, 2.5, "x", true, null], "b": 80.0}`))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"a": []any{int64(1), 2.5, "x", true, nil}, "b": int64(80)}, v)
	for _, notJSON := range []string{"web01", "10.0.0.1", "80 90", "[1,]", `{"a"}`, "", "[", `"x`} {
		_, err := state.ParseJSON([]byte(notJSON))
		require.Error(t, err, "%q", notJSON)
		var fe *state.FieldError
		assert.False(t, errors.As(err, &fe), "%q is not JSON, not a model error: %v", notJSON, err)
	}
	for text, msg := range map[string]string{
		`{"n": 1e400}`:                       "n: number 1e400 is outside the float64 range",
		"[9223372036854775809]":              "0: integer 9223372036854775809 is outside the int64 range; as a float64 it would change to 9223372036854776000",
		"1E-400":                             "number 1E-400 is too small for a float64 (it would be stored as 0)",
		"\"\xff\"":                           "not valid UTF-8",
		`{"a": {"b": -9223372036854775809}}`: "a.b: integer -9223372036854775809 is outside the int64 range; as a float64 it would change to -9223372036854776000",
	} {
		_, err := state.ParseJSON([]byte(text))
		var fe *state.FieldError
		require.ErrorAs(t, err, &fe, "%q", text)
		assert.Equal(t, msg, fe.Error())
	}
}
