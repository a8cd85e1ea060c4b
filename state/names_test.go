package state_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

// TestHostNames_Fallback: on a Snapshot without a KeyScanner, HostNames
// and ResourceKeys filter the full walks.
func TestHostNames_Fallback(t *testing.T) {
	m := statetest.NewMemory()
	st, err := state.Open(m)
	require.NoError(t, err)
	defer st.Close()
	for _, n := range []string{"web02", "db01", "web01", "webx"} {
		require.NoError(t, st.AddHost(&state.HostState{Name: n}))
	}
	for _, k := range []string{"linode:2", "aws:1", "linode:1"} {
		require.NoError(t, st.AddResource(k, &state.ResourceState{Type: "t"}))
	}
	var got []string
	require.NoError(t, st.View(func(s state.Snapshot) error {
		if err := state.HostNames(s, "web0", func(n string) error { got = append(got, n); return nil }); err != nil {
			return err
		}
		return state.ResourceKeys(s, "linode:", func(k string) error { got = append(got, k); return nil })
	}))
	assert.Equal(t, []string{"web01", "web02", "linode:1", "linode:2"}, got)
}
