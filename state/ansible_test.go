package state_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

func TestNormalize_AnsibleHostNames(t *testing.T) {
	for _, name := range []string{"web01", "web-01.example.com", "10.0.0.1", "2001:db8::1", "::1", "ünïcode", "web*", "db0?", "localhost", "a.b_c-d"} {
		_, err := (&state.HostState{Name: name}).Normalize()
		assert.NoError(t, err, name)
	}
	for name, why := range map[string]string{
		"bad name":   "whitespace",
		"tab\u00a0x": "whitespace",
		"web/02":     "host_vars",
		"a,b":        "','",
		"db:primary": "':'",
		"web:22":     "':'",
		"web[1]":     "brackets",
		"a]":         "brackets",
		"!web":       "exclusion",
		"&web":       "intersection",
		"~web.*":     "regular expression",
		"all":        "implicit groups",
		"ungrouped":  "implicit groups",
	} {
		_, err := (&state.HostState{Name: name}).Normalize()
		require.ErrorIs(t, err, state.ErrInvalid, name)
		var fe *state.FieldError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, "name", fe.Path, name)
		assert.Contains(t, fe.Msg, "Ansible cannot address this host", name)
		assert.Contains(t, fe.Msg, why, name)
	}
}

func TestNormalize_AnsibleGroups(t *testing.T) {
	for _, g := range []string{"webservers", "edge-nodes.eu", "all", "ungrouped", "café"} {
		_, err := (&state.HostState{Name: "h", Group: g}).Normalize()
		assert.NoError(t, err, g)
	}
	for _, tc := range []struct {
		h    state.HostState
		path string
	}{
		{state.HostState{Name: "h", Group: "_meta"}, "group"},
		{state.HostState{Name: "h", Group: ".meta"}, "group"},
		{state.HostState{Name: "h", Group: "web\tservers"}, "group"},
		{state.HostState{Name: "h", Group: "web", Groups: []string{"ok", "-meta"}}, "groups.1"},
	} {
		_, err := tc.h.Normalize()
		var fe *state.FieldError
		require.ErrorAs(t, err, &fe, "%+v", tc.h)
		assert.Equal(t, tc.path, fe.Path)
	}
	assert.Equal(t, "edge_nodes_eu", state.AnsibleGroupName("edge-nodes.eu"))
	assert.Equal(t, "_1st", state.AnsibleGroupName("1st"))
	assert.Equal(t, "ungrouped", state.AnsibleGroupName(""))
}

// TestState_RefusesGroupsAnsibleWouldMerge: a group whose Ansible name is
// another group's is refused by every write (it used to make inventory
// --list fail for the whole store), also when both arrive at once.
func TestState_RefusesGroupsAnsibleWouldMerge(t *testing.T) {
	st, err := state.Open(statetest.NewMemory())
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.AddHost(&state.HostState{Name: "a", Group: "edge-nodes"}))
	require.NoError(t, st.AddHost(&state.HostState{Name: "b", Group: "edge-nodes"}), "the same group again")
	err = st.AddHost(&state.HostState{Name: "c", Group: "edge_nodes"})
	var ge *state.GroupClashError
	require.ErrorAs(t, err, &ge)
	assert.ErrorIs(t, err, state.ErrInvalid)
	assert.Equal(t, state.GroupClashError{Group: "edge_nodes", Other: "edge-nodes", Ansible: "edge_nodes"}, *ge)
	err = st.AddHost(&state.HostState{Name: "c", Group: "web", Groups: []string{"edge.nodes"}})
	assert.ErrorAs(t, err, &ge, "among a host's groups too")
	err = st.Update(func(tx *state.Tx) error {
		if err := tx.AddHost(&state.HostState{Name: "x", Group: "db-1"}); err != nil {
			return err
		}
		return tx.AddHost(&state.HostState{Name: "y", Group: "db.1"})
	})
	assert.ErrorAs(t, err, &ge, "two new groups in one batch")
	assert.False(t, st.HasHost("x"), "nothing of the batch written")

	// Once the last host leaves a group, its Ansible name is free.
	require.NoError(t, st.RemoveHost("a"))
	require.NoError(t, st.AddHost(&state.HostState{Name: "b", Group: "other"}))
	require.NoError(t, st.AddHost(&state.HostState{Name: "c", Group: "edge_nodes"}))

	// Import: the document's own groups.
	doc := &state.Contents{Hosts: map[string]*state.HostState{
		"p": {Name: "p", Group: "eu-west"}, "q": {Name: "q", Group: "eu.west"},
	}}
	err = st.Replace(doc, true)
	require.ErrorIs(t, err, state.ErrInvalid)
	assert.Contains(t, err.Error(), `hosts.q.group: groups "eu.west" and "eu-west" are both "eu_west"`)
}

func TestState_GroupClashUnderConcurrency(t *testing.T) {
	for i := range 50 {
		st, err := state.Open(statetest.NewMemory())
		require.NoError(t, err)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for w, g := range []string{"team-a", "team_a"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[w] = st.AddHost(&state.HostState{Name: fmt.Sprintf("h%d", w), Group: g})
			}()
		}
		wg.Wait()
		var ge *state.GroupClashError
		failed := 0
		for _, err := range errs {
			if err != nil {
				require.True(t, errors.As(err, &ge), "round %d: %v", i, err)
				failed++
			}
		}
		assert.Equal(t, 1, failed, "round %d: exactly one of two clashing groups is written", i)
		require.NoError(t, st.Close())
	}
}

func TestState_FailedWriteReleasesItsGroups(t *testing.T) {
	m := statetest.NewMemory()
	st, err := state.Open(m)
	require.NoError(t, err)
	defer st.Close()
	m.FailCommits(func(*state.Batch) error { return errors.New("disk full") })
	require.Error(t, st.AddHost(&state.HostState{Name: "a", Group: "team-a"}))
	m.FailCommits(nil)
	require.NoError(t, st.AddHost(&state.HostState{Name: "b", Group: "team_a"}), "the failed write's group was never the store's")
}
