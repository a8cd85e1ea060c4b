package statefile_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

// withOperations is richContents with pending operations of every shape.
func withOperations() *state.Contents {
	c := richContents()
	ts := time.Date(2024, 1, 15, 14, 50, 0, 123, time.UTC)
	c.Operations = map[string]*state.Operation{
		"3f9a1c2e4b5d6071": {ID: "3f9a1c2e4b5d6071", Action: "create", Resource: "linode:web02", Host: "web02",
			Data: everyKind(), StartedAt: ts, Holder: "pid 4242 on host ci-7 (ftl2 apply)"},
		"bare":       {ID: "bare", Action: "delete", Resource: "dns:a.b"},
		"empty-data": {ID: "empty-data", Action: "update", Resource: "ip:1", Data: map[string]any{}},
		"a/b <&>":    {ID: "a/b <&>", Action: "create", Resource: "r", Host: "ω"},
	}
	return c
}

// Without pending operations the document is the documented format: no
// "operations" member, whether the map is nil or empty.
func TestEncode_OperationsOmittedWhenNone(t *testing.T) {
	c := decodeFile(t, "state.json")
	assert.Nil(t, c.Operations, "a document without operations decodes to none")
	golden, err := os.ReadFile(filepath.Join(testdata, "state.golden.json"))
	require.NoError(t, err)
	c.Operations = map[string]*state.Operation{}
	assert.Equal(t, string(golden), string(encode(t, c)), "an empty map writes nothing")
	assert.NotContains(t, string(golden), "operations")
	assert.Nil(t, decodeBytes(t, []byte(`{"operations": {}}`)).Operations)
	assert.Nil(t, decodeBytes(t, []byte(`{"operations": null}`)).Operations)
}

func TestEncode_OperationsMatchEncodingJSON(t *testing.T) {
	for name, c := range map[string]*state.Contents{
		"rich with operations": withOperations(),
		"operations only": {Operations: map[string]*state.Operation{
			"a": {ID: "a", Action: "create", Resource: "r"},
		}},
		"example with operations": decodeFile(t, "state-operations.json"),
	} {
		want, err := statefile.MarshalWhole(c)
		require.NoError(t, err)
		got := encode(t, c)
		assert.Equal(t, string(want), string(got), name)
		var viaSnap bytes.Buffer
		require.NoError(t, statefile.Encode(&viaSnap, state.NewSnapshot(c), nil))
		assert.Equal(t, string(want), viaSnap.String(), "%s: Encode and EncodeContents agree", name)
		assert.True(t, strings.HasSuffix(string(got), "  }\n}\n"))
	}
}

func TestRoundTrip_Operations(t *testing.T) {
	c := withOperations()
	require.NoError(t, c.Validate())
	b := encode(t, c)
	back := decodeBytes(t, b)
	assert.True(t, reflect.DeepEqual(c, back), "round trip changed the contents:\n%#v\n%#v", c.Operations, back.Operations)
	assert.Nil(t, back.Operations["bare"].Data, "nil data stays nil")
	assert.Equal(t, map[string]any{}, back.Operations["empty-data"].Data, "empty data stays empty")
	assert.Equal(t, string(b), string(encode(t, back)), "encoding is stable")
	assert.Contains(t, string(b), `"a/b <&>": {`, "no HTML escaping of IDs")
}

func TestDecode_OperationsExample(t *testing.T) {
	c := decodeFile(t, "state-operations.json")
	plain := decodeFile(t, "state.json")
	assert.Equal(t, plain.Hosts, c.Hosts)
	assert.Equal(t, plain.Resources, c.Resources)
	require.Len(t, c.Operations, 1)
	op := c.Operations["3f9a1c2e4b5d6071"]
	assert.Equal(t, &state.Operation{
		ID: "3f9a1c2e4b5d6071", Action: "create", Resource: "linode:web02", Host: "web02",
		Data: map[string]any{"client_token": "ftl2-run-42-web02",
			"request": map[string]any{"label": "web02", "region": "us-east", "type": "g6-standard-2"}},
		StartedAt: time.Date(2024, 1, 15, 14, 50, 0, 0, time.UTC),
		Holder:    "pid 4242 on host ci-7 (ftl2 apply)",
	}, op)
	std, err := statefile.DecodeStd(mustRead(t, "state-operations.json"))
	require.NoError(t, err)
	assert.True(t, reflect.DeepEqual(std, c), "Decode and encoding/json agree")
}

func TestEncode_OperationOption(t *testing.T) {
	c := withOperations()
	var n int
	opts := &statefile.EncodeOptions{
		Operation: func(op *state.Operation) *state.Operation {
			if op.ID == "bare" {
				return nil
			}
			op = op.Clone()
			op.Holder = "hidden"
			return op
		},
		Progress: func(done int) { n = done },
	}
	var buf bytes.Buffer
	require.NoError(t, statefile.EncodeContents(&buf, c, opts))
	got := decodeBytes(t, buf.Bytes())
	assert.NotContains(t, got.Operations, "bare")
	assert.Equal(t, "hidden", got.Operations["empty-data"].Holder)
	assert.Equal(t, len(c.Hosts)+len(c.Resources)+len(c.Operations)-1, n, "operations count as records for Progress")
	assert.Equal(t, "pid 4242 on host ci-7 (ftl2 apply)", c.Operations["3f9a1c2e4b5d6071"].Holder, "the option did not change the contents")

	// Leaving every operation out leaves the member out.
	buf.Reset()
	require.NoError(t, statefile.EncodeContents(&buf, c, &statefile.EncodeOptions{Operation: func(*state.Operation) *state.Operation { return nil }}))
	assert.NotContains(t, buf.String(), `"operations"`)
	assert.True(t, strings.HasSuffix(buf.String(), "  }\n}\n"))
}

func TestEncode_NilOperation(t *testing.T) {
	c := &state.Contents{Operations: map[string]*state.Operation{"x": nil}}
	var buf bytes.Buffer
	err := statefile.EncodeContents(&buf, c, nil)
	assert.ErrorContains(t, err, "operations.x: nil record")
}
