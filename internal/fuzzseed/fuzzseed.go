// Package fuzzseed reads and writes seed corpora in the file format of
// go test -fuzz ("go test fuzz v1", then one value). The repository keeps
// every fuzz target's seeds in one place, testdata/fuzz/<Target>, with the
// documented example and every bad input the tests know; go test only reads
// a package's own testdata/fuzz, so each target adds these itself with
// Read (new failures the fuzzer finds still land in the package's own
// testdata/fuzz, as usual).
package fuzzseed

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Marshal renders one []byte value as a corpus file.
func Marshal(b []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
}

// MarshalString renders one string value as a corpus file.
func MarshalString(s string) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\nstring(%q)\n", s)
}

// Read returns the value of every corpus file in dir by file name. Each
// file must hold one []byte(...) or string(...) value.
func Read(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, len(data)+1)
		if !sc.Scan() || sc.Text() != "go test fuzz v1" {
			return nil, fmt.Errorf("%s: not a go test fuzz v1 file", e.Name())
		}
		if !sc.Scan() {
			return nil, fmt.Errorf("%s: no value", e.Name())
		}
		line := sc.Text()
		var quoted string
		switch {
		case strings.HasPrefix(line, "[]byte(") && strings.HasSuffix(line, ")"):
			quoted = line[len("[]byte(") : len(line)-1]
		case strings.HasPrefix(line, "string(") && strings.HasSuffix(line, ")"):
			quoted = line[len("string(") : len(line)-1]
		default:
			return nil, fmt.Errorf("%s: want one []byte or string value, got %.40s", e.Name(), line)
		}
		s, err := strconv.Unquote(quoted)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", e.Name(), err)
		}
		if sc.Scan() {
			return nil, fmt.Errorf("%s: more than one value", e.Name())
		}
		out[e.Name()] = []byte(s)
	}
	return out, nil
}
