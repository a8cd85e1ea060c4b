package state_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/inventory"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

func TestHostState_Groups(t *testing.T) {
	h := &state.HostState{Name: "web01"}
	assert.Nil(t, h.AllGroups())
	assert.True(t, h.InGroup(""))
	h.SetGroups("webservers", "production", "eu")
	assert.Equal(t, "webservers", h.Group)
	assert.Equal(t, []string{"production", "eu"}, h.Groups)
	assert.Equal(t, []string{"webservers", "production", "eu"}, h.AllGroups())
	for _, g := range []string{"webservers", "production", "eu"} {
		assert.True(t, h.InGroup(g), g)
	}
	assert.False(t, h.InGroup(""))
	assert.False(t, h.InGroup("databases"))

	c := h.Clone()
	c.Groups[0] = "changed"
	assert.Equal(t, "production", h.Groups[0], "Clone copies Groups")

	h.SetGroups("only")
	assert.Equal(t, "only", h.Group)
	assert.Nil(t, h.Groups)
	h.SetGroups()
	assert.Equal(t, "", h.Group)
	assert.Nil(t, h.AllGroups())
}

func TestNormalize_Groups(t *testing.T) {
	groups := []string{"production", "eu"}
	h := &state.HostState{Name: "web01", Group: "webservers", Groups: groups}
	n, err := h.Normalize()
	require.NoError(t, err)
	assert.Equal(t, []string{"production", "eu"}, n.Groups, "order kept")
	groups[0] = "changed"
	assert.Equal(t, "production", n.Groups[0], "Normalize copies Groups")

	n, err = (&state.HostState{Name: "web01", Group: "webservers", Groups: []string{}}).Normalize()
	require.NoError(t, err)
	assert.Nil(t, n.Groups, "an empty Groups is normalized to nil, as every codec returns it")

	bad := []struct {
		group  string
		groups []string
		msg    string
	}{
		{"", []string{"a"}, "groups: set without group (groups holds the groups beyond group: put the first one in group)"},
		{"web", []string{""}, "groups.0: must not be empty"},
		{"web", []string{"a", "web"}, `groups.1: group "web" listed twice`},
		{"web", []string{"a", "b", "a"}, `groups.2: group "a" listed twice`},
		{"web", []string{"a", "\xff"}, "groups.1: not valid UTF-8"},
		{"\xff", nil, "group: not valid UTF-8"},
	}
	for _, tt := range bad {
		_, err := (&state.HostState{Name: "h", Group: tt.group, Groups: tt.groups}).Normalize()
		assert.ErrorIs(t, err, state.ErrInvalid, "%q %q", tt.group, tt.groups)
		assert.EqualError(t, err, tt.msg)
		assert.Equal(t, err, state.ValidateGroups(tt.group, tt.groups))
	}
	c := &state.Contents{Hosts: map[string]*state.HostState{"h": {Name: "h", Group: "a", Groups: []string{"a"}}}}
	assert.EqualError(t, c.Validate(), `hosts.h.groups.0: group "a" listed twice`)
}

func TestMergeToInventory_EveryGroup(t *testing.T) {
	st, err := state.Open(statetest.NewMemory())
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.AddHost(&state.HostState{Name: "web01", Address: "192.0.2.10", Group: "webservers", Groups: []string{"production", "eu"}}))
	require.NoError(t, st.AddHost(&state.HostState{Name: "db01", Address: "192.0.2.20", Group: "databases", Groups: []string{"production"}}))
	require.NoError(t, st.AddHost(&state.HostState{Name: "bastion", Address: "192.0.2.1"}))

	inv := inventory.New()
	require.NoError(t, st.MergeToInventory(inv))
	assert.Equal(t, []string{"all", "databases", "eu", "production", "webservers"}, inv.Groups())
	names := func(g string) (out []string) {
		for _, h := range inv.Hosts(g) {
			out = append(out, h.Name)
		}
		return out
	}
	assert.Equal(t, []string{"db01", "web01"}, names("production"))
	assert.Equal(t, []string{"web01"}, names("eu"))
	assert.Equal(t, []string{"bastion"}, names("all"))
	_, groups, ok := inv.Host("web01")
	require.True(t, ok)
	assert.Equal(t, []string{"eu", "production", "webservers"}, groups)
	assert.Equal(t, 3, inv.Len())

	// Groups are validated on the way in, like Group.
	err = st.AddHost(&state.HostState{Name: "x", Group: "a", Groups: []string{"b", "b"}})
	assert.ErrorIs(t, err, state.ErrInvalid)
}
