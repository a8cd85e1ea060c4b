package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-ftl2/ftlstate/state"
)

// parseVar parses one --var or --data argument:
//
//	k=v    v is parsed as JSON when it is valid JSON (8080 is a number,
//	       true a bool, '["a"]' a list, '{"a":1}' an object, '"x"' a
//	       string), else taken as a plain string (web01, 10.0.0.1);
//	k:=v   v is always a string (k:=15 is "15", not 15).
//
// The key must not be empty. Values follow the store's value model
// (integers become int64, see state.ParseJSON): JSON the model refuses (a
// number that would change, such as 1e400 or an integer beyond int64;
// nesting deeper than state.MaxValueDepth, however deep) is an error, not
// silently a string.
func parseVar(arg string) (key string, value any, err error) {
	k, v, ok := strings.Cut(arg, "=")
	if !ok {
		return "", nil, fmt.Errorf("%q: expected key=value (or key:=string)", shortArg(arg))
	}
	if force, isString := strings.CutSuffix(k, ":"); isString {
		if force == "" {
			return "", nil, fmt.Errorf("%q: empty key", shortArg(arg))
		}
		value, err = state.NormalizeValue(v)
		if err != nil {
			return "", nil, fmt.Errorf("%q: %v", shortArg(arg), err)
		}
		return force, value, nil
	}
	if k == "" {
		return "", nil, fmt.Errorf("%q: empty key", shortArg(arg))
	}
	value = v
	if trimmed := strings.TrimSpace(v); trimmed != "" {
		// JSON the value model refuses (nested too deep, a number that
		// would change) is an error, not silently a string.
		j, err := state.ParseJSON([]byte(trimmed))
		var fe *state.FieldError
		switch {
		case err == nil:
			value = j
		case errors.As(err, &fe):
			return "", nil, fmt.Errorf("%q: %v", shortArg(arg), err)
		}
	}
	value, err = state.NormalizeValue(value)
	if err != nil {
		return "", nil, fmt.Errorf("%q: %v", shortArg(arg), err)
	}
	return k, value, nil
}

// shortArg shortens an argument for an error message (a value may be
// megabytes long).
func shortArg(arg string) string {
	if len(arg) > 60 {
		return arg[:57] + "..."
	}
	return arg
}

// parseVars parses repeated --var arguments into a map; a key given twice
// is an error.
func parseVars(flag string, args []string) (map[string]any, error) {
	if len(args) == 0 {
		return nil, nil
	}
	m := make(map[string]any, len(args))
	for _, a := range args {
		k, v, err := parseVar(a)
		if err != nil {
			return nil, usageErrorf("--%s %v", flag, err)
		}
		if _, dup := m[k]; dup {
			return nil, usageErrorf("--%s %s given twice", flag, k)
		}
		m[k] = v
	}
	return m, nil
}

// parseTags parses repeated --tag k=v arguments: values are plain strings.
func parseTags(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usageErrorf("--tag %q: expected key=value", a)
		}
		if _, dup := m[k]; dup {
			return nil, usageErrorf("--tag %s given twice", k)
		}
		m[k] = v
	}
	return m, nil
}
