package fuzzseed_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/internal/fuzzseed"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	values := map[string][]byte{"a": []byte("{\"x\": 1}\n\x00\xff"), "b": nil, "c": []byte(`quote " and \ backslash`)}
	for name, v := range values {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), fuzzseed.Marshal(v), 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "s"), fuzzseed.MarshalString("k:=v\n"), 0o600))
	got, err := fuzzseed.Read(dir)
	require.NoError(t, err)
	for name, v := range values {
		assert.Equal(t, string(v), string(got[name]), name)
	}
	assert.Equal(t, "k:=v\n", string(got["s"]))
}

func TestRead_RefusesOtherFiles(t *testing.T) {
	for name, content := range map[string]string{
		"not corpus": "hello\n",
		"no value":   "go test fuzz v1\n",
		"two values": "go test fuzz v1\n[]byte(\"a\")\n[]byte(\"b\")\n",
		"int":        "go test fuzz v1\nint(3)\n",
		"bad quote":  "go test fuzz v1\n[]byte(\"a)\n",
	} {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte(content), 0o600))
		_, err := fuzzseed.Read(dir)
		assert.Error(t, err, name)
	}
}
