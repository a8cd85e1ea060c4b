package inventory_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/inventory"
)

func TestInventory_AddHost(t *testing.T) {
	inv := inventory.New()
	require.NoError(t, inv.AddHost("web", &inventory.Host{Name: "web02", Address: "b"}))
	require.NoError(t, inv.AddHost("web", &inventory.Host{Name: "web01", Address: "a"}))
	require.NoError(t, inv.AddHost("db", &inventory.Host{Name: "db01"}))
	require.NoError(t, inv.AddHost("prod", &inventory.Host{Name: "web01", Address: "a2", Vars: map[string]any{"k": "v"}}))

	assert.Equal(t, []string{"db", "prod", "web"}, inv.Groups())
	assert.Equal(t, 3, inv.Len())
	hosts := inv.Hosts("web")
	require.Len(t, hosts, 2)
	assert.Equal(t, "web01", hosts[0].Name, "sorted by name")
	assert.Equal(t, "a2", hosts[0].Address, "adding again updates the host")
	assert.Nil(t, inv.Hosts("nope"))

	h, groups, ok := inv.Host("web01")
	require.True(t, ok)
	assert.Equal(t, []string{"prod", "web"}, groups)
	assert.Equal(t, map[string]any{"k": "v"}, h.Vars)
	_, _, ok = inv.Host("nope")
	assert.False(t, ok)

	// Re-adding to the same group does not duplicate.
	require.NoError(t, inv.AddHost("web", &inventory.Host{Name: "web01", Address: "a3"}))
	assert.Len(t, inv.Hosts("web"), 2)
}

func TestInventory_Copies(t *testing.T) {
	inv := inventory.New()
	in := &inventory.Host{Name: "h", Vars: map[string]any{"list": []any{"a"}, "m": map[string]any{"x": 1}}}
	require.NoError(t, inv.AddHost("g", in))
	in.Vars["list"].([]any)[0] = "changed"
	in.Address = "changed"
	out, _, _ := inv.Host("h")
	assert.Equal(t, "a", out.Vars["list"].([]any)[0])
	assert.Empty(t, out.Address)
	out.Vars["m"].(map[string]any)["x"] = 2
	again := inv.Hosts("g")[0]
	assert.Equal(t, 1, again.Vars["m"].(map[string]any)["x"])
}

func TestInventory_Invalid(t *testing.T) {
	inv := inventory.New()
	assert.ErrorIs(t, inv.AddHost("g", nil), inventory.ErrInvalid)
	assert.ErrorIs(t, inv.AddHost("g", &inventory.Host{}), inventory.ErrInvalid)
	assert.ErrorIs(t, inv.AddHost("", &inventory.Host{Name: "h"}), inventory.ErrInvalid)
	assert.Empty(t, inv.Groups())
}

func TestInventory_Concurrent(t *testing.T) {
	inv := inventory.New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				inv.AddHost("g", &inventory.Host{Name: string(rune('a'+i)) + string(rune('a'+j%26))})
				inv.Hosts("g")
				inv.Groups()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 8*26, inv.Len())
}
