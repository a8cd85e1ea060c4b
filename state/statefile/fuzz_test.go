package statefile_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/go-ftl2/ftlstate/internal/fuzzseed"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

// readCorpus reads the []byte inputs of the corpus files in dir.
func readCorpus(t testing.TB, dir string) [][]byte {
	t.Helper()
	seeds, err := fuzzseed.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(seeds))
	for name := range seeds {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([][]byte, len(names))
	for i, name := range names {
		out[i] = seeds[name]
	}
	return out
}

// FuzzDecode: Decode never panics or hangs; what it accepts is valid JSON,
// reads the same with encoding/json, and survives encode → decode
// unchanged, with a stable encoding identical to encoding/json's for the
// whole document. What it refuses is an *Error matching state.ErrCorrupt.
// The seed corpus is the repository's testdata/fuzz/FuzzDecode (plus, as
// usual, this package's testdata/fuzz/FuzzDecode, where new failures are
// written).
func FuzzDecode(f *testing.F) {
	for _, seed := range readCorpus(f, filepath.Join(testdata, "fuzz", "FuzzDecode")) {
		f.Add(seed)
	}
	opts := &statefile.DecodeOptions{MaxSize: 1 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := statefile.Decode(bytes.NewReader(data), opts)
		if err != nil {
			var e *statefile.Error
			if !errors.As(err, &e) || !errors.Is(err, state.ErrCorrupt) {
				t.Fatalf("error %v (%T) is not a *statefile.Error matching ErrCorrupt", err, err)
			}
			if e.Line < 1 && !errors.Is(err, statefile.ErrTooLarge) {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON")
		}
		std, err := statefile.DecodeStd(data)
		if err != nil {
			t.Fatalf("encoding/json cannot read what Decode accepted: %v", err)
		}
		if !reflect.DeepEqual(std, c) {
			t.Fatalf("Decode and encoding/json disagree:\n%#v\n%#v", c, std)
		}
		var b1 bytes.Buffer
		if err := statefile.EncodeContents(&b1, c, nil); err != nil {
			t.Fatalf("encode: %v", err)
		}
		whole, err := statefile.MarshalWhole(c)
		if err != nil || !bytes.Equal(whole, b1.Bytes()) {
			t.Fatalf("stream differs from encoding/json of the whole document (%v):\n%s\n%s", err, b1.Bytes(), whole)
		}
		c2, err := statefile.Decode(bytes.NewReader(b1.Bytes()), nil)
		if err != nil {
			t.Fatalf("decode of encoded: %v\n%s", err, b1.Bytes())
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the contents:\n%#v\n%#v", c, c2)
		}
		var b2 bytes.Buffer
		if err := statefile.EncodeContents(&b2, c2, nil); err != nil {
			t.Fatalf("encode 2: %v", err)
		}
		if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
			t.Fatalf("encoding not stable:\n%s\n%s", b1.Bytes(), b2.Bytes())
		}
	})
}
