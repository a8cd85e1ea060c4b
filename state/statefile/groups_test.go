package statefile_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

func TestGroups_EncodeDecode(t *testing.T) {
	c := &state.Contents{Metadata: state.Metadata{Version: state.FormatVersion}, Hosts: map[string]*state.HostState{
		"web01": {Name: "web01", Group: "webservers", Groups: []string{"production", "eu"}},
		"db01":  {Name: "db01", Group: "databases"},
	}}
	require.NoError(t, c.Validate())
	out := string(encode(t, c))
	assert.Contains(t, out, `
      "group": "webservers",
      "groups": [
        "production",
        "eu"
      ],
      "created_at"`, "groups follows group, in order")
	db := out[strings.Index(out, `"db01"`):strings.Index(out, `"web01"`)]
	assert.NotContains(t, db, `"groups"`, "a host with one group has no groups field")

	back := decodeBytes(t, []byte(out))
	assert.Equal(t, []string{"production", "eu"}, back.Hosts["web01"].Groups)
	assert.Nil(t, back.Hosts["db01"].Groups)
}

func TestGroups_DecodeAccepts(t *testing.T) {
	for in, want := range map[string][]string{
		`{"hosts": {"h": {"name": "h", "group": "a", "groups": ["b", "c"]}}}`: {"b", "c"},
		`{"hosts": {"h": {"name": "h", "group": "a", "groups": []}}}`:         nil,
		`{"hosts": {"h": {"name": "h", "group": "a", "groups": null}}}`:       nil,
		`{"hosts": {"h": {"name": "h", "groups": []}}}`:                       nil,
	} {
		c := decodeBytes(t, []byte(in))
		assert.Equal(t, want, c.Hosts["h"].Groups, in)
	}
}

func TestGroups_DecodeRefuses(t *testing.T) {
	for in, want := range map[string]string{
		`{"hosts": {"h": {"name": "h", "group": "a", "groups": ["b", "a"]}}}`:          `line 1, column 55: hosts.h.groups.1: group "a" listed twice`,
		`{"hosts": {"h": {"name": "h", "group": "a", "groups": [""]}}}`:                `line 1, column 55: hosts.h.groups.0: must not be empty`,
		`{"hosts": {"h": {"name": "h", "groups": ["b"]}}}`:                             `line 1, column 41: hosts.h.groups: set without group`,
		`{"hosts": {"h": {"name": "h", "group": "a", "groups": "b"}}}`:                 `line 1, column 55: hosts.h.groups: must be a list of strings, not a string`,
		`{"hosts": {"h": {"name": "h", "group": "a", "groups": ["b", 1]}}}`:            `line 1, column 61: hosts.h.groups.1: must be a string, not a number`,
		`{"hosts": {"h": {"name": "h", "group": "a", "groups": ["b" "c"]}}}`:           `line 1, column 60: hosts.h.groups: invalid character '"', expected ',' or ']'`,
		`{"hosts": {"h": {"name": "h", "group": "a", "groups": ["b",]}}}`:              `line 1, column 60: hosts.h.groups.1: invalid character ']'`,
		`{"hosts": {"h": {"name": "h", "group": "a", "groups": ["b"], "groups": []}}}`: `line 1, column 62: hosts.h.groups: duplicate key`,
		`{"resources": {"r": {"type": "t", "groups": ["b"]}}}`:                         `line 1, column 35: resources.r.groups: unknown field`,
	} {
		_, err := statefile.Decode(bytes.NewReader([]byte(in)), nil)
		assert.ErrorIs(t, err, state.ErrCorrupt, in)
		assert.ErrorContains(t, err, want, in)
	}
}
