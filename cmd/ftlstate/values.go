package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

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
func parseTags(flag string, args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usageErrorf("--%s %q: expected key=value", flag, a)
		}
		if _, dup := m[k]; dup {
			return nil, usageErrorf("--%s %s given twice", flag, k)
		}
		m[k] = v
	}
	return m, nil
}

// maxValueFile bounds what --var-file and --data-file read.
const maxValueFile = 64 << 20

// readValueFile reads a --var-file or --data-file: a JSON or YAML object
// (JSON is YAML), whose values become vars (or data) in the store's value
// model. Numbers follow the rules of --var (state.NormalizeValue); YAML
// anchors and aliases are expanded (within a budget, against alias
// bombs); merge keys, duplicate keys, custom tags and a top level that is
// not an object are errors.
func readValueFile(flag, name string) (map[string]any, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, usageErrorf("--%s: %v", flag, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		if err == nil {
			err = fmt.Errorf("%s, not a regular file", describeMode(fi.Mode()))
		}
		return nil, usageErrorf("--%s %s: %v", flag, name, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxValueFile+1))
	if err != nil {
		return nil, usageErrorf("--%s %s: %v", flag, name, err)
	}
	if len(b) > maxValueFile {
		return nil, usageErrorf("--%s %s: larger than %d MiB", flag, name, maxValueFile>>20)
	}
	m, err := parseValueDoc(b)
	if err != nil {
		return nil, usageErrorf("--%s %s: %v", flag, name, err)
	}
	return m, nil
}

// parseValueDoc parses a JSON or YAML object (see readValueFile).
func parseValueDoc(b []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 {
		return nil, errors.New("empty: expected an object (key: value lines, or JSON {...})")
	}
	budget := 1 << 20
	v, err := nodeValue(&doc, 0, &budget)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected an object (key: value lines, or JSON {...}), not %s", kindName(v))
	}
	n, err := state.NormalizeValue(m)
	if err != nil {
		return nil, err
	}
	return n.(map[string]any), nil
}

func kindName(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case nil:
		return "null"
	}
	return "a " + fmt.Sprintf("%T", v)
}

// jsonNumber matches a number written as JSON writes it.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

// nodeValue converts a YAML node to a value (maps, lists, strings,
// json.Number, bools, nil); budget bounds the nodes visited, aliases
// counted each time they are expanded.
func nodeValue(n *yaml.Node, depth int, budget *int) (any, error) {
	if *budget--; *budget < 0 {
		return nil, errors.New("too many values (aliases expanding without bound?)")
	}
	if depth > state.MaxValueDepth {
		return nil, fmt.Errorf("line %d: nested deeper than %d levels", n.Line, state.MaxValueDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return nil, errors.New("expected one document")
		}
		return nodeValue(n.Content[0], depth, budget)
	case yaml.AliasNode:
		return nodeValue(n.Alias, depth, budget)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.AliasNode {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a key must be a string", k.Line)
			}
			if k.ShortTag() == "!!merge" {
				return nil, fmt.Errorf("line %d: merge keys (<<) are not supported", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: key %q given twice", k.Line, k.Value)
			}
			val, err := nodeValue(v, depth+1, budget)
			if err != nil {
				return nil, err
			}
			m[k.Value] = val
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := nodeValue(c, depth+1, budget)
			if err != nil {
				return nil, err
			}
			l = append(l, val)
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str", "!!timestamp", "!!binary":
			return n.Value, nil
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, fmt.Errorf("line %d: %v", n.Line, err)
			}
			return b, nil
		case "!!int", "!!float":
			if jsonNumber.MatchString(n.Value) {
				return json.Number(n.Value), nil
			}
			var f float64
			if n.ShortTag() == "!!int" {
				var i int64
				if err := n.Decode(&i); err != nil {
					return nil, fmt.Errorf("line %d: integer %s out of range", n.Line, n.Value)
				}
				return i, nil
			}
			if err := n.Decode(&f); err != nil {
				return nil, fmt.Errorf("line %d: %v", n.Line, err)
			}
			return f, nil
		}
		return nil, fmt.Errorf("line %d: tag %s is not supported", n.Line, n.Tag)
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// mergeVars returns the values of a --var-file (or --data-file) with the
// --var (or --data) arguments over them.
func mergeVars(file map[string]any, args map[string]any) map[string]any {
	if file == nil {
		return args
	}
	maps.Copy(file, args)
	return file
}
