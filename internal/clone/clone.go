// Package clone deep-copies the JSON-like values that hosts' vars and
// resources' data hold: nested map[string]any and []any are copied, every
// other value is kept as it is (the value model of state.NormalizeValue
// holds only immutable scalars besides those two). It is the one copy
// shared by state (State.CloneMap and the records' Clone methods) and
// inventory (Host.Clone), which state imports.
package clone

// Map returns a deep copy of m; nil gives nil.
func Map(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = Value(v)
	}
	return c
}

// Value returns a deep copy of v: maps and lists are copied, other values
// returned as they are. A nil map or list stays nil.
func Value(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return Map(v)
	case []any:
		if v == nil {
			return v
		}
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = Value(e)
		}
		return c
	default:
		return v
	}
}
