package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/internal/fuzzseed"
	"github.com/go-ftl2/ftlstate/state"
)

func TestParseVar(t *testing.T) {
	tests := []struct {
		arg  string
		key  string
		want any
	}{
		{"port=8080", "port", int64(8080)},
		{"ratio=0.5", "ratio", 0.5},
		{"on=true", "on", true},
		{"none=null", "none", nil},
		{`tags=["a","b"]`, "tags", []any{"a", "b"}},
		{`obj={"a":1,"b":[true]}`, "obj", map[string]any{"a": int64(1), "b": []any{true}}},
		{`quoted="15"`, "quoted", "15"},
		{"host=web01", "host", "web01"},
		{"ip=10.0.0.1", "ip", "10.0.0.1"},
		{"empty=", "empty", ""},
		{"eq=a=b", "eq", "a=b"},
		{"version:=15", "version", "15"},
		{"flag:=true", "flag", "true"},
		{"list:=[1]", "list", "[1]"},
		{"sp= 42 ", "sp", int64(42)},
		{"text=hello world", "text", "hello world"},
	}
	for _, tt := range tests {
		k, v, err := parseVar(tt.arg)
		require.NoError(t, err, tt.arg)
		assert.Equal(t, tt.key, k, tt.arg)
		assert.True(t, reflect.DeepEqual(tt.want, v), "%s: got %#v (%T), want %#v", tt.arg, v, v, tt.want)
	}
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, bad := range []string{"novalue", "=x", ":=x", "", "k=\xff", "big=1e400", "n=9223372036854775809", "n=-9223372036854775809", "tiny=1E-400",
		"d=" + deep(state.MaxValueDepth+1), "d=" + deep(10001), "d=" + deep(100000)} {
		_, _, err := parseVar(bad)
		require.Error(t, err, "%.40q", bad)
		assert.Less(t, len(err.Error()), 300, "one readable line: %.300s", err)
		assert.NotContains(t, err.Error(), ": :", "no empty path in the message")
	}
	_, _, err := parseVar("n=1e400")
	assert.EqualError(t, err, `"n=1e400": number 1e400 is outside the float64 range`)
	_, _, err = parseVar("d=" + deep(20000))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nested deeper than 512 levels", "one depth rule, however deep")
	k, v, err := parseVar("n=9223372036854776000")
	require.NoError(t, err, "an integer beyond int64 that a float64 holds as written")
	assert.Equal(t, "n", k)
	assert.Equal(t, float64(1<<63), v)
}

func TestParseVars_DuplicateIsUsageError(t *testing.T) {
	_, err := parseVars("var", []string{"a=1", "a=2"})
	var ue usageError
	require.ErrorAs(t, err, &ue)
	m, err := parseVars("var", []string{"a=1", "b:=2"})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"a": int64(1), "b": "2"}, m)
}

func TestParseTags(t *testing.T) {
	m, err := parseTags("tag", []string{"env=prod", "n=1"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"env": "prod", "n": "1"}, m)
	_, err = parseTags("tag", []string{"x"})
	assert.Error(t, err)
}

// FuzzParseVar: no panic; a parsed value is in the store's value model and
// survives the round trip through its own JSON form (key=<json>).
// The seeds are the repository's testdata/fuzz/FuzzParseVar.
func FuzzParseVar(f *testing.F) {
	seeds, err := fuzzseed.Read(filepath.Join("..", "..", "testdata", "fuzz", "FuzzParseVar"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("seed corpus: %v (%d seeds)", err, len(seeds))
	}
	for _, s := range seeds {
		f.Add(string(s))
	}
	f.Fuzz(func(t *testing.T, arg string) {
		k, v, err := parseVar(arg)
		if err != nil {
			return
		}
		if k == "" || !strings.Contains(arg, "=") {
			t.Fatalf("accepted %q with key %q", arg, k)
		}
		if nv, err := state.NormalizeValue(v); err != nil || !reflect.DeepEqual(nv, v) {
			t.Fatalf("%q: value %#v not normalized", arg, v)
		}
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			t.Fatalf("%q: non-JSON float", arg)
		}
		if !utf8.ValidString(k) || strings.HasSuffix(k, ":") {
			return // invalid keys are refused by the store; "a:" (from "a::=x") cannot be written back as "a:=..."
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%q: value %#v does not marshal: %v", arg, v, err)
		}
		k2, v2, err := parseVar(k + "=" + string(b))
		if err != nil || k2 != k || !reflect.DeepEqual(v, v2) {
			t.Fatalf("%q: round trip through %s gave %q %#v, %v", arg, b, k2, v2, err)
		}
	})
}
