package export_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/state"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// lineageLine is the one line of an export that differs between stores:
// the documented example has no lineage, so the store keeps its own.
var lineageLine = regexp.MustCompile(`(?m)^    "lineage": "[0-9a-f-]{36}"$`)

const lineagePlaceholder = `    "lineage": "LINEAGE"`

// TestExport_GoldenThroughBolt imports the documented example into a
// bbolt store, exports it, and compares the bytes with
// testdata/export.golden.json (the store's random lineage aside); then
// does the same through the JSON file backend, which must give the same
// bytes as well.
func TestExport_GoldenThroughBolt(t *testing.T) {
	golden := testdata("export.golden.json")
	stores := map[string]func(dir string) (state.Backend, error){
		"bolt": func(dir string) (state.Backend, error) { return boltbackend.Open(filepath.Join(dir, "state.db"), nil) },
		"file": func(dir string) (state.Backend, error) {
			return filebackend.Open(filepath.Join(dir, "state.json"), nil)
		},
	}
	for _, name := range []string{"bolt", "file"} {
		t.Run(name, func(t *testing.T) {
			b, err := stores[name](t.TempDir())
			require.NoError(t, err)
			st, err := state.Open(b)
			require.NoError(t, err)
			defer st.Close()
			require.NoError(t, importFile(t, st, testdata("state.json"), nil))

			var out bytes.Buffer
			require.NoError(t, export.Write(&out, st, nil))
			var fromBackend bytes.Buffer
			require.NoError(t, export.Write(&fromBackend, b, nil))
			assert.Equal(t, out.String(), fromBackend.String(), "a State and its backend export the same bytes")

			got := out.Bytes()
			require.Len(t, lineageLine.FindAll(got, -1), 1, "one lineage line")
			got = lineageLine.ReplaceAll(got, []byte(lineagePlaceholder))
			if *update && name == "bolt" {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "go test ./export -run Golden -update writes it")
			assert.Equal(t, string(want), string(got))
		})
	}
}
