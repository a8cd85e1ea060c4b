package simcloud_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/internal/simcloud"
)

func open(t *testing.T, path string) *simcloud.Cloud {
	t.Helper()
	c, err := simcloud.Open(path, nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCreate_IdempotentByToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloud.json")
	c := open(t, path)
	a, err := c.Create("tok-1", simcloud.Spec{Name: "web01", Region: "us-east", Type: "small"})
	require.NoError(t, err)
	assert.Regexp(t, `^i-[0-9a-f]{12}$`, a.ID)
	again, err := c.Create("tok-1", simcloud.Spec{Name: "other"})
	require.NoError(t, err)
	assert.Equal(t, a, again, "the same token returns the instance it made")
	b, err := c.Create("tok-2", simcloud.Spec{Name: "web02"})
	require.NoError(t, err)
	assert.NotEqual(t, a.ID, b.ID)

	got, ok, err := c.FindByToken("tok-1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, a, got)
	_, ok, err = c.FindByToken("tok-3")
	require.NoError(t, err)
	assert.False(t, ok)

	// Another client of the same provider (another open file: the flock
	// conflicts as between processes) sees them and cannot duplicate.
	d := open(t, path)
	got, ok, err = d.FindByToken("tok-2")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, b, got)
	all, err := d.Instances()
	require.NoError(t, err)
	assert.Len(t, all, 2)
}

func TestCreate_ConcurrentClientsOneInstancePerToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloud.json")
	clients := []*simcloud.Cloud{open(t, path), open(t, path), open(t, path)}
	var wg sync.WaitGroup
	ids := make([][]string, len(clients))
	for i, c := range clients {
		wg.Go(func() {
			for n := range 50 {
				inst, err := c.Create(fmt.Sprintf("tok-%d", n), simcloud.Spec{Name: fmt.Sprint(n)})
				if assert.NoError(t, err) {
					ids[i] = append(ids[i], inst.ID)
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, ids[0], ids[1])
	assert.Equal(t, ids[0], ids[2])
	all, err := open(t, path).Instances()
	require.NoError(t, err)
	assert.Len(t, all, 50)
}

func TestOpen_DropsATornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloud.json")
	c := open(t, path)
	_, err := c.Create("tok-1", simcloud.Spec{Name: "a"})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	f.WriteString(`{"id":"i-torn","client_token":"tok-2"`)
	f.Close()

	c = open(t, path)
	_, ok, err := c.FindByToken("tok-2")
	require.NoError(t, err)
	assert.False(t, ok, "a create never answered did not happen")
	_, err = c.Create("tok-3", simcloud.Spec{Name: "c"})
	require.NoError(t, err)
	all, err := open(t, path).Instances()
	require.NoError(t, err)
	assert.Len(t, all, 2, "the torn line is gone and the next record follows a newline")

	require.NoError(t, os.WriteFile(path, []byte("garbage\n"), 0o600))
	_, err = simcloud.Open(path, nil)
	assert.ErrorContains(t, err, "damaged record at byte 0")
}
