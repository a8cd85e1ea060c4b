package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"
)

// format is the value of -o/--output: how a command renders what it
// prints on stdout.
type format string

// The output formats. Each command accepts the ones that make sense for
// it (see addFormatFlag).
const (
	// formatTable is aligned columns for people (the default).
	formatTable format = "table"
	// formatWide is the table with more columns.
	formatWide format = "wide"
	// formatJSON is indented JSON with stable field names, for scripts.
	formatJSON format = "json"
	// formatYAML is the JSON form written as YAML (same fields, same order).
	formatYAML format = "yaml"
	// formatName is one name (or key) per line, for listings.
	formatName format = "name"
)

// allFormats are every format name, in the order help lists them.
var allFormats = []format{formatTable, formatWide, formatJSON, formatYAML, formatName}

// isFormatName reports whether s names a format (of any command).
func isFormatName(s string) bool { return slices.Contains(allFormats, format(s)) }

// formatValue is a pflag.Value accepting a fixed set of formats.
type formatValue struct {
	f       *format
	allowed []format
}

func (v *formatValue) String() string { return string(*v.f) }
func (v *formatValue) Type() string   { return "format" }
func (v *formatValue) Set(s string) error {
	if slices.Contains(v.allowed, format(s)) {
		*v.f = format(s)
		return nil
	}
	return fmt.Errorf("must be %s, not %q", formatList(v.allowed, " or "), s)
}

func formatList(fs []format, last string) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = string(f)
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + last + names[len(names)-1]
}

// addFormatFlag adds -o/--output to cmd, accepting allowed (the first is
// the default), and --no-headers when tables are among them.
func (a *app) addFormatFlag(cmd *cobra.Command, f *format, allowed ...format) {
	*f = allowed[0]
	cmd.Flags().VarP(&formatValue{f, allowed}, "output", "o", "output format: "+formatList(allowed, " or "))
	names := make([]string, len(allowed))
	for i, x := range allowed {
		names[i] = string(x)
	}
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(names, cobra.ShellCompDirectiveNoFileComp))
	if slices.Contains(allowed, formatTable) {
		cmd.Flags().BoolVar(&a.noHeaders, "no-headers", false, "tables without their header line")
	}
}

// addSecretsFlag adds --show-secrets: human displays and listings redact
// values under secret-looking keys unless it is given.
func (a *app) addSecretsFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&a.showSecrets, "show-secrets", false, "show values under secret-looking keys (password, token, ...) instead of \"<redacted>\"")
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeYAML writes v as YAML: its JSON form (the same field names, in the
// same order, numbers as written), so that -o yaml and -o json always
// agree.
func writeYAML(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return jsonToYAML(w, buf.Bytes())
}

// jsonToYAML writes the JSON document b as YAML.
func jsonToYAML(w io.Writer, b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	n, err := yamlNode(d)
	if err != nil {
		return err
	}
	ye := yaml.NewEncoder(w)
	ye.SetIndent(2)
	if err := ye.Encode(n); err != nil {
		return err
	}
	return ye.Close()
}

// yamlNode reads one JSON value from d and returns it as a YAML node,
// keeping the order of object keys.
func yamlNode(d *json.Decoder) (*yaml.Node, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		if t == '[' {
			n = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		}
		for d.More() {
			if n.Kind == yaml.MappingNode {
				k, err := d.Token()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.(string)})
			}
			c, err := yamlNode(d)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		if _, err := d.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		if len(n.Content) == 0 {
			n.Style = yaml.FlowStyle
		}
		return n, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}, nil
	case json.Number:
		tag := "!!float"
		if !strings.ContainsAny(string(t), ".eE") {
			tag = "!!int"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: string(t)}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// writeData writes v in a data format (json or yaml).
func writeData(w io.Writer, f format, v any) error {
	if f == formatYAML {
		return writeYAML(w, v)
	}
	return writeJSON(w, v)
}

// table collects rows and writes them in aligned columns, two spaces
// apart, measuring cells by their display width on a terminal (a CJK
// character takes two columns, a combining mark none). Cells are escaped
// (see cell), so a stored value cannot move the cursor, set the window
// title or spoof the columns.
type table struct {
	w    io.Writer
	rows [][]string
}

// newTable starts a table on w with header, which is left out when
// noHeaders is set.
func newTable(w io.Writer, noHeaders bool, header ...string) *table {
	t := &table{w: w}
	if !noHeaders {
		t.row(header...)
	}
	return t
}

// row adds a row; cells are escaped.
func (t *table) row(cells ...string) {
	r := make([]string, len(cells))
	for i, c := range cells {
		r[i] = cell(c)
	}
	t.rows = append(t.rows, r)
}

// flush writes the table.
func (t *table) flush() error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], displayWidth(c))
		}
	}
	var line []byte
	for _, r := range t.rows {
		line = line[:0]
		for i, c := range r {
			line = append(line, c...)
			if i < len(r)-1 {
				line = append(line, spaces(widths[i]-displayWidth(c)+2)...)
			}
		}
		line = append(line, '\n')
		if _, err := t.w.Write(line); err != nil {
			return err
		}
	}
	t.rows = nil
	return nil
}

var manySpaces = strings.Repeat(" ", 256)

func spaces(n int) string {
	if n <= len(manySpaces) {
		return manySpaces[:n]
	}
	return strings.Repeat(" ", n)
}

// displayWidth is the number of terminal columns s takes.
func displayWidth(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return uniseg.StringWidth(s)
		}
	}
	return len(s)
}

// cell escapes s for a table: control characters (C0, DEL, C1: what
// starts a terminal escape sequence), bidirectional-text controls (which
// reorder what follows them) and invalid UTF-8 are written as Go escapes
// (\x1b, \n, \u202e, \xff). JSON and YAML output need no such care: their
// encoders escape them.
func cell(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, n := utf8.DecodeRuneInString(s[i:])
		w = n
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case 0x80 <= r && r < 0xa0 || isBidiControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isBidiControl reports the invisible characters that reorder text
// (the "Trojan Source" ones).
func isBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || 0x202a <= r && r <= 0x202e || 0x2066 <= r && r <= 0x2069
}

// timeCell renders a timestamp for tables: RFC 3339 in UTC, seconds.
func timeCell(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// compactJSON renders a value on one line for a table cell.
func compactJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ANSI colours of diff lines.
const (
	colorRed    = "\x1b[31m"
	colorGreen  = "\x1b[32m"
	colorYellow = "\x1b[33m"
	colorReset  = "\x1b[0m"
)

// color reports whether stdout gets colours: on a terminal only, and not
// with --no-color, NO_COLOR (https://no-color.org) or TERM=dumb.
func (a *app) color() bool {
	return a.stdoutTerminal && !a.noColor && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}
