package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/go-ftl2/ftlstate/state"
)

// TestOutput_Formats: -o is the format everywhere: table, wide, json, yaml
// and name for listings; json and yaml agree; --no-headers drops the
// header line.
func TestOutput_Formats(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	seed(t, p)
	r := ok(t, "--state", p, "hosts", "-o", "name")
	assert.Equal(t, "db01\nweb01\n", r.stdout)
	r = ok(t, "--state", p, "resources", "-o", "name")
	assert.Equal(t, "linode:12345678\n", r.stdout)

	r = ok(t, "--state", p, "hosts", "-o", "wide")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	assert.Regexp(t, `^NAME\s+ADDRESS\s+PORT\s+USER\s+GROUP\s+VARS\s+CREATED\s+UPDATED$`, lines[0])
	assert.Regexp(t, `^web01\s+192\.168\.1\.10\s+22\s+admin\s+webservers\s+db_password,http_port\s+\d{4}-`, lines[2])
	r = ok(t, "--state", p, "resources", "-o", "wide")
	assert.Regexp(t, `(?m)^linode:12345678\s+linode\s+12345678\s+web01\s+ipv4,region\s+environment\s+\d{4}-`, r.stdout)

	r = ok(t, "--state", p, "hosts", "--no-headers")
	assert.Regexp(t, `^db01\s+192\.168\.1\.20`, r.stdout)
	r = ok(t, "--state", p, "host", "show", "web01", "--no-headers")
	assert.Regexp(t, `^name\s+web01\n`, r.stdout)

	for _, args := range [][]string{
		{"hosts"}, {"resources"}, {"host", "show", "web01"}, {"resource", "show", "linode:12345678"},
		{"check"}, {"backups"}, {"version"}, {"diff", p, p},
	} {
		base := append([]string{"--state", p}, args...)
		j := ok(t, append(base, "-o", "json")...).stdout
		y := ok(t, append(base, "-o", "yaml")...).stdout
		var fromJSON, fromYAML any
		require.NoError(t, json.Unmarshal([]byte(j), &fromJSON), "%v", args)
		require.NoError(t, yaml.Unmarshal([]byte(y), &fromYAML), "%v: %s", args, y)
		assert.Equal(t, normalizeYAMLNumbers(fromJSON), normalizeYAMLNumbers(fromYAML), "%v: json and yaml agree", args)
	}
	r = ok(t, "--state", p, "host", "show", "db01", "-o", "yaml", "--show-secrets")
	assert.Contains(t, r.stdout, "name: db01\naddress: 192.168.1.20\nport: 2222\n", "the JSON field order")
	assert.Contains(t, r.stdout, `postgres_version: "15"`, "a string that looks like a number stays a string")

	r = ftl(t, "--state", p, "host", "show", "web01", "-o", "name")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "must be table, json or yaml")
}

// normalizeYAMLNumbers makes the numbers of a decoded JSON or YAML value
// comparable (float64 from JSON, int from YAML).
func normalizeYAMLNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = normalizeYAMLNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = normalizeYAMLNumbers(e)
		}
	case int:
		return float64(v)
	case uint64:
		return float64(v)
	}
	return v
}

func TestVersion(t *testing.T) {
	r := ok(t, "version")
	assert.Regexp(t, `^ftlstate \S+.*, go1\.\d+.*, \w+/\w+\n$`, r.stdout)
	assert.Equal(t, r.stdout, ok(t, "--version").stdout)
	r = ok(t, "version", "-o", "json")
	var v versionInfo
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
	assert.NotEmpty(t, v.Version)
	assert.Regexp(t, `^go1\.`, v.Go)
	b := bin(t, nil, "--version")
	require.Equal(t, 0, b.code, b.stderr)
	assert.Regexp(t, `^ftlstate `, b.stdout)

	// What a release build embeds.
	v = versionFrom(&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abc"}, {Key: "vcs.time", Value: "2026-11-26T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}})
	assert.Equal(t, "v1.2.3", v.Version)
	assert.Equal(t, "0123abc-dirty", v.Commit)
	assert.Equal(t, "2026-11-26T10:00:00Z", v.CommitTime)
	assert.Equal(t, "(devel)", versionFrom(&debug.BuildInfo{}).Version)
}

// TestSecrets_RedactedInHumanDisplays: values under secret-looking keys are
// "<redacted>" in listings, show, diff and their json/yaml unless
// --show-secrets; export and inventory stay faithful.
func TestSecrets_RedactedInHumanDisplays(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	seed(t, p)
	ok(t, "--state", p, "resource", "add", "db:1", "--type", "db", "--id", "1", "--data", `conn={"api_key":"k-123","host":"h"}`, "--tag", "token=t-456")
	old := filepath.Join(dir, "old.json")
	ok(t, "--state", p, "export", "--file", old)
	ok(t, "--state", p, "host", "set", "web01", "--var", "db_password=hunter3")
	secrets := []string{"hunter2", "hunter3", "k-123", "t-456"}
	for _, args := range [][]string{
		{"hosts", "-o", "json"}, {"hosts", "-o", "yaml"}, {"host", "show", "web01"}, {"host", "show", "web01", "-o", "json"},
		{"resources", "-o", "json"}, {"resource", "show", "db:1"}, {"resource", "show", "db:1", "-o", "yaml"},
		{"diff", old, p}, {"diff", old, p, "-o", "json"},
		{"host", "set", "web01", "--var", "db_password=hunter4", "--dry-run"},
	} {
		r := ok(t, append([]string{"--state", p}, args...)...)
		for _, s := range secrets {
			assert.NotContains(t, r.stdout, s, "%v", args)
		}
		assert.Contains(t, r.stdout, "<redacted>", "%v", args)
		r = ok(t, append(append([]string{"--state", p}, args...), "--show-secrets")...)
		assert.NotContains(t, r.stdout, "<redacted>", "%v --show-secrets", args)
	}
	assert.Contains(t, ok(t, "--state", p, "export").stdout, "hunter3", "export is faithful")
	assert.Contains(t, ok(t, "--state", p, "inventory", "--host", "web01").stdout, "hunter3", "Ansible gets the real values")

	// On a terminal, an unredacted export says it holds secrets.
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.stdoutTerminal = true
	require.Equal(t, 0, a.run([]string{"--state", p, "export"}), errb.String())
	assert.Contains(t, errb.String(), "this export holds every var, secrets included")
	errb.Reset()
	a = newApp(&out, &errb)
	a.stdoutTerminal = true
	require.Equal(t, 0, a.run([]string{"--state", p, "export", "--redact"}))
	assert.Empty(t, errb.String())
}

// TestValueFiles: --var-file and --data-file take a JSON or YAML object,
// so that secrets need not go through shell history.
func TestValueFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	yml := filepath.Join(dir, "vars.yaml")
	require.NoError(t, os.WriteFile(yml, []byte("db_password: s3cret\nport: 5432\nratio: 0.5\non: yes\nlist: [a, 1, true, null]\nnested:\n  key: &a v\n  again: *a\nversion: \"15\"\nhex: 0x1F\n"), 0o600))
	jsn := filepath.Join(dir, "data.json")
	require.NoError(t, os.WriteFile(jsn, []byte(`{"region": "us-east", "size": 2048, "ipv4": ["10.0.0.1"]}`), 0o600))
	ok(t, "--state", p, "host", "add", "db01", "--address", "a", "--var-file", yml, "--var", "port=6432")
	h := showHost(t, p, "db01")
	assert.Equal(t, map[string]any{
		"db_password": "s3cret", "port": 6432.0, "ratio": 0.5, "on": "yes", "list": []any{"a", 1.0, true, nil},
		"nested": map[string]any{"key": "v", "again": "v"}, "version": "15", "hex": 31.0,
	}, h.Vars, "--var wins over the file; YAML 1.2: yes is a string")
	ok(t, "--state", p, "resource", "add", "r", "--type", "t", "--id", "1", "--data-file", jsn)
	r := ok(t, "--state", p, "resource", "show", "r", "-o", "json")
	var got keyedResource
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	assert.Equal(t, map[string]any{"region": "us-east", "size": 2048.0, "ipv4": []any{"10.0.0.1"}}, got.Data)
	ok(t, "--state", p, "host", "set", "db01", "--var-file", jsn)
	assert.Equal(t, "us-east", showHost(t, p, "db01").Vars["region"])

	for content, want := range map[string]string{
		"- a\n- b\n":                      "expected an object",
		"a: 1\na: 2\n":                    `key "a" given twice`,
		"a: !!custom x\n":                 "tag !!custom is not supported",
		"base: &b {x: 1}\nc:\n  <<: *b\n": "merge keys",
		"a: [1, 2":                        "did not find expected",
		"":                                "empty",
		"a: .inf\n":                       "not representable",
	} {
		f := filepath.Join(dir, "bad.yaml")
		require.NoError(t, os.WriteFile(f, []byte(content), 0o600))
		r := ftl(t, "--state", p, "host", "set", "db01", "--var-file", f)
		assert.Equal(t, 2, r.code, "%q", content)
		assert.Contains(t, r.stderr, want, "%q", content)
	}
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 0, "a"; i < 8; i++ {
		name := string(rune('b' + i))
		bomb += name + ": &" + name + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = name
	}
	f := filepath.Join(dir, "bomb.yaml")
	require.NoError(t, os.WriteFile(f, []byte(bomb), 0o600))
	r = ftl(t, "--state", p, "host", "set", "db01", "--var-file", f)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "too many values")
	r = ftl(t, "--state", p, "host", "set", "db01", "--var-file", filepath.Join(dir, "none.yaml"))
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "none.yaml")
}

// TestDiff_Colour: diff is coloured on a terminal, not with NO_COLOR,
// --no-color or a pipe.
func TestDiff_Colour(t *testing.T) {
	dir := t.TempDir()
	a1, b1 := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	seed(t, a1)
	seed(t, b1)
	ok(t, "--state", b1, "host", "set", "web01", "--address", "x")
	ok(t, "--state", b1, "host", "add", "new", "--address", "y")
	ok(t, "--state", b1, "host", "rm", "db01")
	diff := func(terminal bool, args ...string) string {
		var out, errb bytes.Buffer
		a := newApp(&out, &errb)
		a.stdoutTerminal = terminal
		require.Equal(t, 0, a.run(append([]string{"diff", a1, b1}, args...)), errb.String())
		return out.String()
	}
	got := diff(true)
	assert.Contains(t, got, colorRed+"- hosts.db01"+colorReset+"\n")
	assert.Contains(t, got, colorGreen+"+ hosts.new"+colorReset+"\n")
	assert.Contains(t, got, colorYellow+`~ hosts.web01.address: "192.168.1.10" -> "x"`+colorReset+"\n")
	assert.NotContains(t, diff(true, "--no-color"), "\x1b[")
	assert.NotContains(t, diff(false), "\x1b[", "not on a pipe")
	t.Setenv("NO_COLOR", "1")
	assert.NotContains(t, diff(true), "\x1b[")
}

// TestListings_Filter: name globs, --selector, and --group by the name
// Ansible gives a group.
func TestListings_Filter(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	for _, h := range [][]string{
		{"web01", "--group", "edge-nodes.eu", "--var", "role=web", "--var", "http_port=80"},
		{"web02", "--group", "edge-nodes.eu", "--var", "role=web", "--user", "admin"},
		{"db01", "--group", "databases", "--var", "role=db"},
		{"lonely"},
	} {
		ok(t, append([]string{"--state", p, "host", "add", h[0], "--address", "a"}, h[1:]...)...)
	}
	ok(t, "--state", p, "resource", "add", "linode:1", "--type", "linode", "--id", "1", "--tag", "env=prod")
	ok(t, "--state", p, "resource", "add", "aws:1", "--type", "ec2", "--id", "1", "--tag", "env=dev", "--data", "size=2")
	names := func(args ...string) string {
		return ok(t, append([]string{"--state", p}, append(args, "-o", "name")...)...).stdout
	}
	assert.Equal(t, "web01\nweb02\n", names("hosts", "web*"))
	assert.Equal(t, "db01\nlonely\n", names("hosts", "db0?", "lon*"))
	assert.Equal(t, "web01\nweb02\n", names("hosts", "--group", "edge_nodes_eu"), "the Ansible name")
	assert.Equal(t, "web01\nweb02\n", names("hosts", "--group", "edge-nodes.eu"))
	assert.Equal(t, "lonely\n", names("hosts", "--group", "ungrouped"))
	assert.Equal(t, "lonely\n", names("hosts", "--group", ""))
	assert.Equal(t, "web01\nweb02\n", names("hosts", "--selector", "var.role=web"))
	assert.Equal(t, "web01\n", names("hosts", "--selector", "var.role=web,var.http_port=80"))
	assert.Equal(t, "web01\n", names("hosts", "--selector", "var.role=web", "--selector", "!user"))
	assert.Equal(t, "db01\nlonely\n", names("hosts", "--selector", "var.role!=web"))
	assert.Equal(t, "web02\n", names("hosts", "--selector", "user==admin"))
	assert.Equal(t, "db01\n", names("hosts", "d*", "--selector", "group=databases"))
	assert.Equal(t, "linode:1\n", names("resources", "--selector", "tag.env=prod"))
	assert.Equal(t, "aws:1\n", names("resources", "*:1", "--selector", "data.size=2,type=ec2"))
	assert.Equal(t, "", names("resources", "--type", "linode", "--selector", "tag.env=dev"))
	r := ftl(t, "--state", p, "hosts", "--selector", "colour=red")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `unknown field "colour"`)
	r = ftl(t, "--state", p, "hosts", "[")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `pattern "["`)
}

// TestTable_DisplayWidth: columns line up by the width characters take on
// a terminal (a CJK character two columns), not by bytes or runes.
func TestTable_DisplayWidth(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	ok(t, "--state", p, "host", "add", "东京-web01", "--address", "10.0.0.1", "--group", "アジア")
	ok(t, "--state", p, "host", "add", "paris", "--address", "10.0.0.2", "--group", "europe")
	ok(t, "--state", p, "host", "add", "cafe\u0301", "--address", "10.0.0.3", "--group", "e")
	r := ok(t, "--state", p, "hosts")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 4)
	col := func(line, text string) int { return displayWidth(line[:strings.Index(line, text)]) }
	want := col(lines[0], "ADDRESS")
	for i, addr := range []string{"10.0.0.3", "10.0.0.2", "10.0.0.1"} {
		assert.Equal(t, want, col(lines[i+1], addr), "line %q", lines[i+1])
	}
	assert.Equal(t, 2, displayWidth("东"))
	assert.Equal(t, 4, displayWidth("cafe\u0301"))
	assert.Equal(t, 3, displayWidth("abc"))
	_ = state.HostState{}
}

// TestExport_OutputIsTheFormat: -o is the format; for one release an -o
// that is not a format name still names the file, with a warning.
func TestExport_OutputIsTheFormat(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	seed(t, p)
	t.Chdir(dir)
	r := ok(t, "--state", p, "export", "-o", "json")
	assert.Contains(t, r.stdout, `"hosts"`, "-o json is the format, to stdout")
	assert.NoFileExists(t, filepath.Join(dir, "json"), "no file named json")
	r = ok(t, "--state", p, "export", "-o", "old.json")
	assert.Contains(t, r.stderr, "warning: 'export -o FILE' is deprecated")
	assert.FileExists(t, filepath.Join(dir, "old.json"))
	r = ok(t, "--state", p, "export", "-f", "new.json")
	assert.NotContains(t, r.stderr, "deprecated")
	assert.FileExists(t, filepath.Join(dir, "new.json"))
	assert.Equal(t, 2, ftl(t, "--state", p, "export", "-o", "yaml").code)
	assert.Equal(t, 2, ftl(t, "--state", p, "export", "-o", "x.json", "-f", "y.json").code)
}
