package record_test

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// hostWithGroups returns a host record, built by hand, with group and a
// 10th field listing groups (possibly none, which is not valid).
func hostWithGroups(group string, groups ...string) []byte {
	b := []byte{0x9a, 0x01, 0xa1, 'h', 0xa0, 0x16, 0xa0}
	b = append(b, 0xa0+byte(len(group)))
	b = append(b, group...)
	b = append(b, 0xc0)
	t := []byte{0xd6, 0xff, 0, 0, 0, 1}
	b = append(b, t...)
	b = append(b, t...)
	b = append(b, 0x90+byte(len(groups)))
	for _, g := range groups {
		b = append(b, 0xa0+byte(len(g)))
		b = append(b, g...)
	}
	return b
}

func TestHost_GroupsRoundTrip(t *testing.T) {
	h := sampleHost()
	h.Groups = []string{"production", "eu", "ünï"}
	b, err := record.EncodeHost(h)
	require.NoError(t, err)
	got, err := record.DecodeHost(b)
	require.NoError(t, err)
	assert.True(t, reflect.DeepEqual(h, got), "host differs after round trip")
	assert.Equal(t, []string{"production", "eu", "ünï"}, got.Groups)

	// The groups are a 10th field: standard MessagePack, a list of
	// strings; the checksum follows (format version 2).
	var generic []any
	require.NoError(t, msgpack.Unmarshal(b, &generic))
	require.Len(t, generic, 11)
	assert.Equal(t, []any{"production", "eu", "ünï"}, generic[9])
	assert.IsType(t, uint32(0), generic[10], "the checksum")

	h2, err := record.DecodeHost(hostWithGroups("web", "prod", "eu"))
	require.NoError(t, err, "the hand-built record is valid")
	assert.Equal(t, "web", h2.Group)
	assert.Equal(t, []string{"prod", "eu"}, h2.Groups)
}

// A host without Groups has the nine fields it had before the field
// existed (and, since format version 2, the checksum after them), so stores
// written earlier (testdata/bolt/v1-small.db) read unchanged.
func TestHost_WithoutGroupsIsTheNineFieldRecord(t *testing.T) {
	for _, groups := range [][]string{nil, {}} {
		h := sampleHost()
		h.Groups = groups
		b, err := record.EncodeHost(h)
		require.NoError(t, err)
		assert.Equal(t, byte(0x9a), b[0], "9 fields and the checksum")
		var generic []any
		require.NoError(t, msgpack.Unmarshal(b, &generic))
		assert.Len(t, generic, 10)
		assert.IsType(t, uint32(0), generic[9], "the checksum")
		got, err := record.DecodeHost(b)
		require.NoError(t, err)
		assert.Nil(t, got.Groups)
	}
	// The hand-built 9-field record of the hostile-input tests, as bbolt
	// stores hold it.
	h, err := record.DecodeHost(hostWith(0x01))
	require.NoError(t, err)
	assert.Nil(t, h.Groups)
}

func TestHost_GroupsRules(t *testing.T) {
	// Encoding refuses what Normalize refuses, with the same error.
	for _, h := range []*state.HostState{
		{Name: "h", Groups: []string{"a"}},
		{Name: "h", Group: "a", Groups: []string{"b", "a"}},
		{Name: "h", Group: "a", Groups: []string{""}},
		{Name: "h", Group: "a", Groups: []string{"\xff"}},
	} {
		_, nerr := h.Normalize()
		require.Error(t, nerr)
		b, err := record.EncodeHost(h)
		assert.ErrorIs(t, err, state.ErrInvalid, "%q %q", h.Group, h.Groups)
		assert.Equal(t, nerr.Error(), err.Error())
		assert.Nil(t, b)
	}
	// Decoding refuses records that break them.
	for name, b := range map[string][]byte{
		"repeated":         hostWithGroups("web", "prod", "web"),
		"empty name":       hostWithGroups("web", ""),
		"without group":    hostWithGroups("", "prod"),
		"empty list":       hostWithGroups("web"),
		"not strings":      append(hostWithGroups("web")[:len(hostWithGroups("web"))-1], 0x91, 0x01),
		"not a list":       append(hostWithGroups("web")[:len(hostWithGroups("web"))-1], 0xa1, 'x'),
		"eleven fields":    append(append([]byte{0x9b}, hostWithGroups("web", "a")[1:]...), 0xc0),
		"truncated groups": hostWithGroups("web", "prod")[:len(hostWithGroups("web", "prod"))-2],
	} {
		_, err := record.DecodeHost(b)
		assert.ErrorIs(t, err, state.ErrCorrupt, name)
	}
	_, err := record.DecodeHost(hostWithGroups("web", "prod", "web"))
	assert.ErrorContains(t, err, `invalid groups.1: group "web" listed twice`)
	_, err = record.DecodeHost(hostWithGroups("web"))
	assert.ErrorContains(t, err, "empty groups list")
}
