package record_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

func sampleOperation() *state.Operation {
	return &state.Operation{ID: "0123456789abcdef", Action: state.ActionCreate, Resource: "linode:web01", Host: "web01",
		Data: everyKind(), StartedAt: time.Date(2024, 1, 15, 10, 30, 0, 123, time.UTC), Holder: "pid 42 on host ci-7 (ftl2 apply)"}
}

func TestOperation_RoundTrip(t *testing.T) {
	cases := map[string]*state.Operation{
		"full":       sampleOperation(),
		"bare":       {ID: "a", Action: state.ActionDelete, Resource: "r"},
		"empty data": {ID: "a", Action: state.ActionUpdate, Resource: "r", Data: map[string]any{}},
	}
	for name, op := range cases {
		b, err := record.EncodeOperation(op)
		require.NoError(t, err, name)
		got, err := record.DecodeOperation(b)
		require.NoError(t, err, name)
		assert.True(t, reflect.DeepEqual(op, got), "%s: operation differs:\n%#v\n%#v", name, op, got)
	}
}

func TestOperation_EveryPrefixFails(t *testing.T) {
	op := &state.Operation{ID: "0123456789abcdef", Action: state.ActionCreate, Resource: "linode:web01", Host: "web01",
		Data: map[string]any{"token": "t", "n": []any{int64(1000), 1.5, nil}}, StartedAt: ts, Holder: "pid 1"}
	b, err := record.EncodeOperation(op)
	require.NoError(t, err)
	for n := range len(b) {
		_, err := record.DecodeOperation(b[:n])
		assert.ErrorIs(t, err, state.ErrCorrupt, "prefix %d", n)
	}
	_, err = record.DecodeOperation(append(b, 0xc0))
	assert.ErrorIs(t, err, state.ErrCorrupt, "trailing byte")
}

func TestOperation_EncodeValidates(t *testing.T) {
	for name, op := range map[string]*state.Operation{
		"nil":            nil,
		"empty ID":       {Action: "create", Resource: "r"},
		"unknown action": {ID: "a", Action: "destroy", Resource: "r"},
		"empty resource": {ID: "a", Action: "create"},
		"bad host":       {ID: "a", Action: "create", Resource: "r", Host: "a\x00b"},
		"bad holder":     {ID: "a", Action: "create", Resource: "r", Holder: "\xff"},
		"bad data":       {ID: "a", Action: "create", Resource: "r", Data: map[string]any{"x": int(1)}},
		"year 10000":     {ID: "a", Action: "create", Resource: "r", StartedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		b, err := record.AppendOperation([]byte("keep"), op)
		assert.ErrorIs(t, err, state.ErrInvalid, name)
		assert.Equal(t, "keep", string(b), "%s: dst unchanged", name)
	}
}

func TestOperation_DecodeRefusesInvalid(t *testing.T) {
	// Records written field by field, as a damaged or foreign store might
	// hold them: each breaks one rule that the encoder enforces.
	for name, b := range map[string][]byte{
		"unknown action": {0x98, 0x01, 0xa1, 'a', 0xa1, 'x', 0xa1, 'r', 0xa0, 0xc0, 0xd6, 0xff, 0, 0, 0, 0, 0xa0},
		"empty ID":       {0x98, 0x01, 0xa0, 0xa6, 'c', 'r', 'e', 'a', 't', 'e', 0xa1, 'r', 0xa0, 0xc0, 0xd6, 0xff, 0, 0, 0, 0, 0xa0},
		"resource kind":  mustEncodeResource(t),
	} {
		_, err := record.DecodeOperation(b)
		assert.ErrorIs(t, err, state.ErrCorrupt, name)
	}
	// The same bytes with a valid action decode.
	ok := []byte{0x98, 0x01, 0xa1, 'a', 0xa6, 'c', 'r', 'e', 'a', 't', 'e', 0xa1, 'r', 0xa0, 0xc0, 0xd6, 0xff, 0, 0, 0, 0, 0xa0}
	op, err := record.DecodeOperation(ok)
	require.NoError(t, err)
	assert.Equal(t, &state.Operation{ID: "a", Action: "create", Resource: "r", StartedAt: time.Unix(0, 0).UTC()}, op)
}

func mustEncodeResource(t *testing.T) []byte {
	b, err := record.EncodeResource(sampleResource())
	require.NoError(t, err)
	return b
}
