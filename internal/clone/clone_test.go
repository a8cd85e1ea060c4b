package clone_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/go-ftl2/ftlstate/internal/clone"
)

func TestMap_CopiesNestedMapsAndLists(t *testing.T) {
	assert.Nil(t, clone.Map(nil))
	in := map[string]any{
		"n": int64(1), "s": "x", "nil": nil, "nilList": []any(nil), "nilMap": map[string]any(nil),
		"list": []any{map[string]any{"k": "v"}, []any{int64(2)}},
		"map":  map[string]any{"deep": []any{"a"}},
	}
	out := clone.Map(in)
	assert.Equal(t, in, out)
	out["map"].(map[string]any)["deep"].([]any)[0] = "changed"
	out["list"].([]any)[0].(map[string]any)["k"] = "changed"
	out["list"].([]any)[1].([]any)[0] = int64(3)
	out["new"] = true
	assert.Equal(t, "a", in["map"].(map[string]any)["deep"].([]any)[0], "nested lists are copies")
	assert.Equal(t, "v", in["list"].([]any)[0].(map[string]any)["k"], "maps in lists are copies")
	assert.Equal(t, int64(2), in["list"].([]any)[1].([]any)[0])
	assert.NotContains(t, in, "new")
	assert.Nil(t, out["nilList"].([]any), "a nil list stays nil")
	assert.Nil(t, out["nilMap"].(map[string]any), "a nil map stays nil")
}
