package statefile_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

// corpusFile renders data as a Go fuzzing corpus file.
func corpusFile(data []byte) []byte {
	return []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n")
}

// readCorpus reads the []byte inputs of the corpus files in dir.
func readCorpus(t testing.TB, dir string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(strings.TrimSuffix(string(b), "\n"), "\n", 2)
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
			t.Fatalf("%s: not a corpus file of one []byte", f)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		seeds = append(seeds, []byte(s))
	}
	return seeds
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
