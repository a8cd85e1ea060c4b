package live

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
)

// marshalIndent is json.MarshalIndent(v, "", "  ") without HTML escaping,
// with a final newline.
func marshalIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	err := enc.Encode(v)
	return buf.Bytes(), err
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
