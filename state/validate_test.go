package state_test

import (
	"encoding/json"
	"math"
	"reflect"
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
		{uint64(math.MaxInt64) + 1, float64(1 << 63)},
		{80.0, int64(80)},
		{-0.0, int64(0)},
		{1.5, 1.5},
		{1e20, 1e20},
		{float64(1 << 63), float64(1 << 63)},
		{float64(-(1 << 63)), int64(math.MinInt64)},
		{json.Number("9223372036854775807"), int64(math.MaxInt64)},
		{json.Number("9223372036854775808"), float64(1 << 63)},
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
