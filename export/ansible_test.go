package export_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
)

// ansible runs ansible-inventory with args in dir, with HOME, temp dirs
// and configuration confined to dir, and returns its stdout. It fails the
// test on a non-zero exit, or on warnings that would mean Ansible did not
// take the inventory as it is.
func ansible(t *testing.T, bin, dir string, args ...string) []byte {
	t.Helper()
	home := filepath.Join(dir, "home")
	tmp := filepath.Join(dir, "ansible-tmp")
	cfg := filepath.Join(dir, "ansible.cfg")
	for _, d := range []string{home, tmp} {
		require.NoError(t, os.MkdirAll(d, 0o700))
	}
	require.NoError(t, os.WriteFile(cfg, nil, 0o600))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"TMPDIR=" + tmp,
		"LANG=C.UTF-8", "LC_ALL=C.UTF-8", // ansible-core refuses a non-UTF-8 locale
		"PYTHONDONTWRITEBYTECODE=1",
		"ANSIBLE_CONFIG=" + cfg,
		"ANSIBLE_LOCAL_TEMP=" + tmp,
		"ANSIBLE_REMOTE_TEMP=" + tmp,
		"ANSIBLE_COLLECTIONS_PATH=" + filepath.Join(home, "collections"),
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_INVENTORY_ENABLED=script",            // the dynamic inventory script protocol, nothing else
		"ANSIBLE_INVENTORY_UNPARSED_FAILED=1",         // a script Ansible cannot read is an error, not a warning
		"ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS=never", // the default: keep names, warn about bad ones
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "ansible-inventory %v timed out; stderr:\n%s", args, stderr.String())
	require.NoError(t, err, "ansible-inventory %v; stderr:\n%s", args, stderr.String())
	for _, bad := range []string{"Invalid characters", "Unable to parse", "Found both group and host", "ERROR"} {
		assert.NotContains(t, stderr.String(), bad, "ansible-inventory %v", args)
	}
	if stderr.Len() > 0 {
		t.Logf("ansible-inventory %v stderr:\n%s", args, stderr.String())
	}
	return stdout.Bytes()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// writeScript writes an executable inventory script in dir that prints
// listFile for --list and, for --host NAME, the file hostFiles[NAME].
func writeScript(t *testing.T, path, listFile string, hostFiles map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Ansible dynamic inventory script over pre-rendered ftlstate output.\n")
	fmt.Fprintf(&b, "case \"$1\" in\n--list) exec cat %s ;;\n--host)\n  case \"$2\" in\n", shellQuote(listFile))
	for _, name := range slices.Sorted(maps.Keys(hostFiles)) {
		fmt.Fprintf(&b, "  %s) exec cat %s ;;\n", shellQuote(name), shellQuote(hostFiles[name]))
	}
	b.WriteString("  esac\n  echo \"unknown host: $2\" >&2\n  exit 1 ;;\nesac\n")
	b.WriteString("echo \"usage: $0 --list | --host NAME\" >&2\nexit 2\n")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o755))
}

// parseGraph reads ansible-inventory --graph output into the hosts of
// each group (below @all).
func parseGraph(t *testing.T, out []byte) map[string][]string {
	t.Helper()
	groups := map[string][]string{}
	var current string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, "|--")
		switch {
		case line == "@all:":
		case i >= 0 && strings.HasPrefix(line[i+3:], "@"):
			current = strings.TrimSuffix(line[i+4:], ":")
			groups[current] = []string{}
		case i >= 0 && current != "":
			groups[current] = append(groups[current], line[i+3:])
		case strings.TrimSpace(line) != "":
			t.Errorf("unexpected --graph line %q", line)
		}
	}
	for g := range groups {
		slices.Sort(groups[g])
	}
	return groups
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	return m
}

// TestAnsibleInventory_RealAnsible serves the inventory of a state to the
// real ansible-inventory through an executable inventory script and checks
// that Ansible sees every host, group and variable as mapped.
// ansibleInventory returns the ansible-inventory to run, or skips (or
// fails, with FTLSTATE_REQUIRE_ANSIBLE=1).
func ansibleInventory(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("ansible-inventory")
	if err != nil {
		if os.Getenv("FTLSTATE_REQUIRE_ANSIBLE") == "1" {
			t.Fatalf("FTLSTATE_REQUIRE_ANSIBLE=1 but ansible-inventory is not on PATH: %v", err)
		}
		t.Skip("ansible-inventory not on PATH (Debian: apt-get install ansible-core); set FTLSTATE_REQUIRE_ANSIBLE=1 to make this a failure")
	}
	if runtime.GOOS == "windows" {
		t.Skip("inventory scripts need a POSIX shell")
	}
	return bin
}

func TestAnsibleInventory_RealAnsible(t *testing.T) {
	bin := ansibleInventory(t)

	st := open()
	defer st.Close()
	for _, h := range inventoryHosts() {
		require.NoError(t, st.AddHost(h))
	}
	// Resources are not part of the inventory.
	require.NoError(t, st.AddResource("linode:1", &state.ResourceState{Type: "linode", ID: "1"}))

	dir := t.TempDir()
	var list bytes.Buffer
	require.NoError(t, export.WriteInventoryList(&list, st, nil))
	listFile := filepath.Join(dir, "list.json")
	require.NoError(t, os.WriteFile(listFile, list.Bytes(), 0o600))
	hostFiles := map[string]string{}
	for i, h := range st.AllHosts() {
		var b bytes.Buffer
		require.NoError(t, export.WriteInventoryHost(&b, st, h.Name, nil))
		f := filepath.Join(dir, fmt.Sprintf("host-%d.json", i))
		require.NoError(t, os.WriteFile(f, b.Bytes(), 0o600))
		hostFiles[h.Name] = f
	}
	script := filepath.Join(dir, "inventory.sh")
	writeScript(t, script, listFile, hostFiles)

	wantVars := wantHostvars(false)
	checkList := func(t *testing.T, out []byte) {
		doc := decodeJSON(t, out)
		meta, _ := doc["_meta"].(map[string]any)
		require.NotNil(t, meta, "ansible --list has _meta: %s", out)
		assert.Equal(t, wantVars, meta["hostvars"], "Ansible sees every host with exactly its variables")
		for g, hosts := range wantGroups {
			entry, _ := doc[g].(map[string]any)
			require.NotNil(t, entry, "Ansible sees group %s", g)
			var got []string
			for _, h := range entry["hosts"].([]any) {
				got = append(got, h.(string))
			}
			slices.Sort(got)
			assert.Equal(t, hosts, got, "hosts of group %s", g)
		}
		children := []string{}
		for _, c := range doc["all"].(map[string]any)["children"].([]any) {
			children = append(children, c.(string))
		}
		slices.Sort(children)
		assert.Equal(t, slices.Sorted(maps.Keys(wantGroups)), children, "all.children")
	}

	t.Run("list", func(t *testing.T) {
		checkList(t, ansible(t, bin, dir, "-i", script, "--list"))
	})

	t.Run("graph", func(t *testing.T) {
		out := ansible(t, bin, dir, "-i", script, "--graph")
		t.Logf("ansible-inventory --graph:\n%s", out)
		got := parseGraph(t, out)
		assert.Equal(t, wantGroups, got)
	})

	t.Run("host", func(t *testing.T) {
		for _, name := range []string{"web01", "override", "from-vars", "app.example.com"} {
			got := decodeJSON(t, ansible(t, bin, dir, "-i", script, "--host", name))
			assert.Equal(t, wantVars[name], got, "ansible-inventory --host %s", name)
		}
	})

	// Without _meta Ansible calls the script with --host for every host:
	// the WriteInventoryHost output must give it the same variables.
	t.Run("list through --host", func(t *testing.T) {
		doc := decodeJSON(t, list.Bytes())
		delete(doc, "_meta")
		noMeta, err := json.Marshal(doc)
		require.NoError(t, err)
		noMetaFile := filepath.Join(dir, "list-no-meta.json")
		require.NoError(t, os.WriteFile(noMetaFile, noMeta, 0o600))
		script2 := filepath.Join(dir, "inventory-no-meta.sh")
		writeScript(t, script2, noMetaFile, hostFiles)
		checkList(t, ansible(t, bin, dir, "-i", script2, "--list"))
	})
}
