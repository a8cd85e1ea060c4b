package statefile_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

// snapshotContents reads every record of s.
func snapshotContents(t *testing.T, s state.Snapshot) *state.Contents {
	t.Helper()
	c := &state.Contents{Metadata: s.Metadata(), Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}, Operations: map[string]*state.Operation{}}
	require.NoError(t, s.Hosts(func(h *state.HostState) error { c.Hosts[h.Name] = h; return nil }))
	require.NoError(t, s.Resources(func(k string, r *state.ResourceState) error { c.Resources[k] = r; return nil }))
	require.NoError(t, s.Operations(func(op *state.Operation) error { c.Operations[op.ID] = op; return nil }))
	return c
}

// TestRaw_SameAsDecodeAndEncode: a Raw decoded from a document holds the
// same records as Decode gives (through its Snapshot), and EncodeRaw
// writes a document this package wrote byte for byte as EncodeContents
// writes its records, also after records are added from HostValue and
// the like.
func TestRaw_SameAsDecodeAndEncode(t *testing.T) {
	for name, c := range map[string]*state.Contents{"rich": richContents(), "example": decodeFile(t, "state.json"), "operations": decodeFile(t, "state-operations.json"), "empty": {Metadata: state.Metadata{Version: state.FormatVersion}}} {
		doc := encode(t, c)
		want, err := statefile.Decode(bytes.NewReader(doc), nil)
		require.NoError(t, err, name)
		raw, err := statefile.DecodeRaw(bytes.NewReader(doc), nil)
		require.NoError(t, err, name)
		got := snapshotContents(t, raw.Snapshot())
		assert.Equal(t, want.Metadata, got.Metadata, name)
		assert.True(t, reflect.DeepEqual(want.Hosts, got.Hosts), "%s: hosts", name)
		assert.True(t, reflect.DeepEqual(want.Resources, got.Resources), "%s: resources", name)
		assert.Equal(t, len(want.Operations), len(got.Operations), name)
		var out bytes.Buffer
		require.NoError(t, statefile.EncodeRaw(&out, raw))
		assert.Equal(t, string(doc), out.String(), "%s: written as it was read", name)

		h := &state.HostState{Name: "added", Address: "192.0.2.99", Vars: map[string]any{"k": []any{int64(1), "x"}}}
		hv, err := statefile.HostValue(h)
		require.NoError(t, err)
		raw.Hosts["added"] = hv
		want.Hosts["added"] = h
		out.Reset()
		require.NoError(t, statefile.EncodeRaw(&out, raw))
		assert.Equal(t, string(encode(t, want)), out.String(), "%s: a new record is written as EncodeContents writes it", name)
	}
}

// TestRaw_BadInputs: DecodeRaw refuses every bad input with the error
// Decode gives.
func TestRaw_BadInputs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata, "bad", "*"))
	require.NoError(t, err)
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		_, derr := statefile.Decode(bytes.NewReader(data), nil)
		_, rerr := statefile.DecodeRaw(bytes.NewReader(data), nil)
		require.Error(t, rerr, f)
		assert.Equal(t, derr.Error(), rerr.Error(), f)
	}
}

// TestRaw_DecodeRecord: the decoders of one record's text check it as
// Decode does.
func TestRaw_DecodeRecord(t *testing.T) {
	_, err := statefile.DecodeHost("h", []byte(`{"name": "h", "port": 70000}`))
	assert.ErrorIs(t, err, state.ErrCorrupt)
	assert.ErrorContains(t, err, "hosts.h.port: must be 0..65535")
	_, err = statefile.DecodeHost("h", []byte(`{"name": "other"}`))
	assert.ErrorContains(t, err, "does not match its key")
	_, err = statefile.DecodeResource("r", []byte(`{"type": "t"} x`))
	assert.ErrorContains(t, err, "unexpected data after the record")
	r, err := statefile.DecodeResource("r", []byte(" {\"type\": \"t\", \"data\": {\"n\": 1.0}}"))
	require.NoError(t, err)
	assert.Equal(t, int64(1), r.Data["n"])
}
