package export_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
)

func withOps(v *fixed, ops ...*state.Operation) *fixed {
	v.c.Operations = map[string]*state.Operation{}
	for _, op := range ops {
		v.c.Operations[op.ID] = op
	}
	return v
}

func TestDiff_Operations(t *testing.T) {
	op := func(id, holder string) *state.Operation {
		return &state.Operation{ID: id, Action: "create", Resource: "linode:" + id, Host: "web-" + id,
			Data: map[string]any{"token": "t-" + id, "request": map[string]any{"size": int64(2)}}, StartedAt: t0, Holder: holder}
	}
	changed := op("b", "pid 2")
	changed.Data = map[string]any{"token": "t-b", "request": map[string]any{"size": int64(4)}}
	changed.StartedAt = t1
	a := withOps(store(nil, nil), op("a", "pid 1"), op("b", "pid 1"))
	b := withOps(store(nil, nil), changed, op("c", "pid 1"))
	assert.Equal(t, lines(
		"- operations.a",
		`~ operations.b.data.request.size: 2 -> 4`,
		`~ operations.b.holder: "pid 1" -> "pid 2"`,
		"+ operations.c",
	), diffText(t, a, b, nil), "started_at is a timestamp: ignored by default")
	assert.Contains(t, diffText(t, a, b, &export.DiffOptions{Timestamps: true}), "~ operations.b.started_at: ")

	res, err := export.Diff(a, b, nil)
	require.NoError(t, err)
	assert.Equal(t, export.Summary{Operations: export.Counts{Add: 1, Change: 1, Remove: 1}}, res.Summary())
	assert.Equal(t, export.KindOperation, res.Changes[0].Kind)
	assert.Equal(t, "a", res.Changes[0].Key)
	var buf bytes.Buffer
	require.NoError(t, res.WriteJSON(&buf))
	assert.Contains(t, buf.String(), `"kind": "operation"`)
	assert.Contains(t, buf.String(), `"operations": {
      "add": 1,
      "change": 1,
      "remove": 1
    }`)

	// Redacted: the token is a secret-looking key, in whole records too.
	red := diffText(t, a, b, &export.DiffOptions{Redact: true})
	assert.NotContains(t, red, "t-a")
	res, err = export.Diff(a, b, &export.DiffOptions{Redact: true})
	require.NoError(t, err)
	removed := res.Changes[0].Old.(*state.Operation)
	assert.Equal(t, export.Redacted, removed.Data["token"])

	// A finish shows as the operation removed and its outcome added.
	done := store(nil, map[string]*state.ResourceState{"linode:a": {Type: "linode", ID: "1"}})
	assert.Equal(t, lines("+ resources.linode:a", "- operations.a"), diffText(t, withOps(store(nil, nil), op("a", "pid 1")), done, nil))
}

func TestExport_OperationsRoundTrip(t *testing.T) {
	data, err := os.ReadFile(testdata("state-operations.json"))
	require.NoError(t, err)
	st := openMem(t)
	require.NoError(t, export.Import(st, bytes.NewReader(data), nil))
	ops := st.PendingOperations()
	require.Len(t, ops, 1, "import keeps pending operations")
	assert.Equal(t, "linode:web02", ops[0].Resource)
	assert.Equal(t, time.Date(2024, 1, 15, 14, 50, 0, 0, time.UTC), ops[0].StartedAt)

	var out bytes.Buffer
	require.NoError(t, export.Write(&out, st, nil))
	assert.Contains(t, out.String(), `"operations": {`)
	back := openMem(t)
	require.NoError(t, export.Import(back, bytes.NewReader(out.Bytes()), nil))
	assert.Equal(t, ops, back.PendingOperations())
	res, err := export.Diff(st, back, nil)
	require.NoError(t, err)
	assert.True(t, res.Empty(), "%v", res.Changes)

	var red bytes.Buffer
	require.NoError(t, export.Write(&red, st, &export.Options{Redact: true}))
	assert.NotContains(t, red.String(), "ftl2-run-42-web02", "the client token is redacted")
	assert.Contains(t, red.String(), `"client_token": "<redacted>"`)

	// The inventory ignores them: web02 is not a host yet.
	var inv bytes.Buffer
	require.NoError(t, export.WriteInventoryList(&inv, st, nil))
	assert.NotContains(t, inv.String(), "web02")
	assert.False(t, strings.Contains(inv.String(), "operation"))
}
