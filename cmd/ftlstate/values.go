package main

import (
	"bytes"
	"encoding/json"
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
// (integers become int64); a JSON number too large for float64 (1e400) is
// an error, not silently a string.
func parseVar(arg string) (key string, value any, err error) {
	k, v, ok := strings.Cut(arg, "=")
	if !ok {
		return "", nil, fmt.Errorf("%q: expected key=value (or key:=string)", arg)
	}
	if force, isString := strings.CutSuffix(k, ":"); isString {
		if force == "" {
			return "", nil, fmt.Errorf("%q: empty key", arg)
		}
		value, err = state.NormalizeValue(v)
		if err != nil {
			return "", nil, fmt.Errorf("%q: %v", arg, err)
		}
		return force, value, nil
	}
	if k == "" {
		return "", nil, fmt.Errorf("%q: empty key", arg)
	}
	value = v
	if trimmed := strings.TrimSpace(v); trimmed != "" && json.Valid([]byte(trimmed)) {
		d := json.NewDecoder(bytes.NewReader([]byte(trimmed)))
		d.UseNumber()
		var j any
		if err := d.Decode(&j); err == nil {
			value = j
		}
	}
	value, err = state.NormalizeValue(value)
	if err != nil {
		return "", nil, fmt.Errorf("%q: %v", arg, err)
	}
	return k, value, nil
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
