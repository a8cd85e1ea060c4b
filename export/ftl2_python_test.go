package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
)

// These tests run the real Python ftl2 state code (upstream's modules,
// vendored unmodified in testdata/ftl2/upstream) through
// testdata/ftl2/ftl2py.py. They need python3 (3.11 or later, for
// datetime.UTC); they skip without it unless FTLSTATE_REQUIRE_PYTHON=1,
// which CI sets.

// python returns the python3 to run, or skips.
func python(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("python3")
	if err == nil {
		out, verr := exec.Command(bin, "-c", "import sys; print(sys.version_info >= (3, 11))").Output()
		if verr != nil || strings.TrimSpace(string(out)) != "True" {
			err = fmt.Errorf("%s is older than 3.11 (upstream's state code needs datetime.UTC): %v", bin, verr)
		}
	}
	if err != nil {
		if os.Getenv("FTLSTATE_REQUIRE_PYTHON") == "1" {
			t.Fatalf("FTLSTATE_REQUIRE_PYTHON=1 but no usable python3: %v", err)
		}
		t.Skipf("no usable python3 (Debian: apt-get install python3); set FTLSTATE_REQUIRE_PYTHON=1 to make this a failure: %v", err)
	}
	return bin
}

// ftl2py runs the driver with args and returns its stdout.
func ftl2py(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	script, err := filepath.Abs(testdata("ftl2", "ftl2py.py"))
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, bin, append([]string{"-B", script}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1", "PYTHONHASHSEED=0"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "ftl2py.py %v: %s", args, stderr.String())
	return stdout.Bytes()
}

func decodeInventory(t *testing.T, b []byte) pyInventory {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var inv pyInventory
	require.NoError(t, d.Decode(&inv), "%s", b)
	for g, hosts := range inv.Groups {
		slices.Sort(hosts)
		inv.Groups[g] = hosts
	}
	return inv
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

// The Go mirrors of upstream's inventory merge and inventory-script
// reader, which the tests without Python rely on, agree with the real
// code on every fixture and on our inventory of it.
func TestFTL2Python_GoMirrorsAgree(t *testing.T) {
	py := python(t)
	for _, path := range ftl2Fixtures(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			orig, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, canonInventory(decodeInventory(t, ftl2py(t, py, "merge", path))), canonInventory(pyMerge(rawJSON(t, orig))), "merge_state_into_inventory")
			st, _ := importFTL2(t, path)
			list := inventoryOf(t, st)
			assert.Equal(t, canonInventory(decodeInventory(t, ftl2py(t, py, "load-list", writeTemp(t, "list.json", list)))), canonInventory(pyLoadList(rawJSON(t, list))), "load_inventory_json")
		})
	}
}

// TestFTL2Python_InventoryMatchesMerge: the requirement itself, with the
// real code on both sides: upstream's inventory merge of each fixture
// equals upstream's reading of our inventory --list of the imported
// fixture, but for the documented differences (expectedOurs).
func TestFTL2Python_InventoryMatchesMerge(t *testing.T) {
	py := python(t)
	for _, path := range ftl2Fixtures(t) {
		if strings.HasPrefix(filepath.Base(path), "d_hybrid") {
			continue // upstream reads a hybrid's documented half wrongly
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			orig, err := os.ReadFile(path)
			require.NoError(t, err)
			merged := decodeInventory(t, ftl2py(t, py, "merge", path))
			st, _ := importFTL2(t, path)
			ours := decodeInventory(t, ftl2py(t, py, "load-list", writeTemp(t, "list.json", inventoryOf(t, st))))
			assert.Equal(t, canonInventory(expectedOurs(t, rawJSON(t, orig), merged)), canonInventory(ours))
		})
	}
}

// pythonTestStores are stores whose ftl2 export the Python tool must read
// correctly.
func pythonTestStores(t *testing.T) map[string]*state.State {
	ex := openMem(t)
	require.NoError(t, importFile(t, ex, testdata("state.json"), nil))
	rich := openMem(t)
	for _, h := range inventoryHosts() {
		require.NoError(t, rich.AddHost(h))
	}
	require.NoError(t, rich.AddHost(&state.HostState{Name: "gone", Address: "10.1.1.1"}))
	require.NoError(t, rich.AddHost(&state.HostState{Name: "ünï", Address: "10.1.1.2", User: "rémi", Group: "équipe", Groups: []string{"eu", "ungrouped"}}))
	require.NoError(t, rich.AddResource("linode:12345678", &state.ResourceState{Type: "linode", ID: "12345678", Name: "web01", Data: map[string]any{"region": "us-east"}, Tags: map[string]string{"env": "prod"}}))
	require.NoError(t, rich.AddResource("web01", &state.ResourceState{Type: "linode", ID: "12345679", Name: "web01", Tags: map[string]string{"ftl2.id": "integer"}}))
	require.NoError(t, rich.AddResource("aws:i-1", &state.ResourceState{Type: "aws", ID: "i-1", Data: map[string]any{"provider": "x", "id": int64(3)}}))
	return map[string]*state.State{"documented example": ex, "rich": rich}
}

// TestFTL2Python_ReadsOurExport: export --format ftl2 writes a file the
// Python tool reads correctly: every host connects to its address (its
// name when it has none, as ftl2 and Ansible do), on its port, as its
// user, in each of its groups; every resource is found by its provider,
// with its id; and the Python inventory of it equals our own inventory.
func TestFTL2Python_ReadsOurExport(t *testing.T) {
	py := python(t)
	for name, st := range pythonTestStores(t) {
		t.Run(name, func(t *testing.T) {
			out := writeFTL2(t, st)
			file := writeTemp(t, ".ftl2-state.json", out)
			merged := decodeInventory(t, ftl2py(t, py, "merge", file))
			for _, h := range st.AllHosts() {
				ph, ok := merged.Hosts[h.Name]
				require.True(t, ok, h.Name)
				addr := h.Address
				if addr == "" {
					if v, ok := h.Vars["ansible_host"]; ok {
						addr = v.(string)
					} else {
						addr = h.Name
					}
				}
				assert.Equal(t, addr, ph.AnsibleHost, "%s: address", h.Name)
				port := json.Number(strconv.Itoa(h.Port))
				if h.Port == 0 {
					port = "22"
					if v, ok := h.Vars["ansible_port"]; ok {
						port = json.Number(fmt.Sprint(v))
					}
				}
				assert.Equal(t, port, ph.AnsiblePort, "%s: port", h.Name)
				user := h.User
				if v, ok := h.Vars["ansible_user"]; ok && user == "" {
					user = v.(string)
				}
				assert.Equal(t, user, ph.AnsibleUser, "%s: user", h.Name)
				groups := h.AllGroups()
				if len(groups) == 0 {
					groups = []string{"ungrouped"}
				}
				for _, g := range groups {
					assert.Contains(t, merged.Groups[g], h.Name, "%s: group %s", h.Name, g)
				}
				var in []string
				for g, hosts := range merged.Groups {
					if slices.Contains(hosts, h.Name) {
						in = append(in, g)
					}
				}
				assert.ElementsMatch(t, groups, in, "%s: in its groups and no others", h.Name)
			}

			var view struct {
				Resources  map[string]map[string]any `json:"resources"`
				ByProvider map[string][]string       `json:"by_provider"`
			}
			d := json.NewDecoder(bytes.NewReader(ftl2py(t, py, "state", file)))
			d.UseNumber()
			require.NoError(t, d.Decode(&view))
			for key, r := range st.AllResources() {
				assert.Contains(t, view.ByProvider[r.Type], key, "resources(provider=%q)", r.Type)
				id := view.Resources[key]["id"]
				if r.Tags["ftl2.id"] == "integer" {
					assert.Equal(t, json.Number(r.ID), id, "%s: integer id", key)
				} else {
					assert.Equal(t, r.ID, id, "%s: id", key)
				}
			}

			// Python's inventory of our export is our inventory.
			ours := decodeInventory(t, ftl2py(t, py, "load-list", writeTemp(t, "list.json", inventoryOf(t, st))))
			assert.Equal(t, canonInventory(expectedOurs(t, rawJSON(t, out), merged)), canonInventory(ours))
		})
	}
}

// TestFTL2Python_ItsWritesOfOurFiles: what the Python tool writes is read
// back: its changes to our export (our ftlstate objects survive them),
// and the hybrid it makes of a documented state.json, made here by the
// real code again.
func TestFTL2Python_ItsWritesOfOurFiles(t *testing.T) {
	py := python(t)
	st := pythonTestStores(t)["rich"]
	file := writeTemp(t, ".ftl2-state.json", writeFTL2(t, st))
	ftl2py(t, py, "mutate", file)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	c, rep, err := export.ReadAny(bytes.NewReader(b), nil)
	require.NoError(t, err, "%s", b)
	assert.Equal(t, export.FormatFTL2, rep.Format)
	assert.False(t, rep.Hybrid)
	assert.NotContains(t, c.Hosts, "gone")
	added := c.Hosts["added-by-python"]
	require.NotNil(t, added)
	assert.Equal(t, "198.51.100.7", added.Address)
	assert.Equal(t, "py", added.User)
	assert.Equal(t, []string{"python", "webservers"}, added.AllGroups())
	assert.Equal(t, map[string]any{"role": "new"}, added.Vars)
	before := contentsOf(t, st)
	for key, r := range before.Resources {
		got := c.Resources[key]
		require.NotNil(t, got, key)
		assert.Equal(t, r.Type, got.Type, key)
		assert.Equal(t, r.ID, got.ID, key)
		assert.Equal(t, r.Name, got.Name, "%s: the ftlstate object survives update_resource", key)
		assert.Equal(t, r.Tags, got.Tags, key)
		assert.Equal(t, true, got.Data["checked"], key)
		assert.True(t, got.UpdatedAt.After(r.UpdatedAt), "%s: last_seen", key)
	}
	assert.Equal(t, "987654321", c.Resources["added-by-python"].ID)
	for _, name := range []string{"web01", "multi", "ünï"} {
		assert.Equal(t, before.Hosts[name].AllGroups(), c.Hosts[name].AllGroups(), name)
	}

	// The hybrid, made now.
	dir := t.TempDir()
	ftl2py(t, py, "scenario", "d_hybrid", dir)
	now, rep, err := export.ReadAny(bytes.NewReader([]byte(readFile(t, filepath.Join(dir, "d_hybrid.ftl2-state.json")))), nil)
	require.NoError(t, err)
	assert.True(t, rep.Hybrid)
	fixture, err := export.ReadFTL2(bytes.NewReader([]byte(readFile(t, testdata("ftl2", "d_hybrid.ftl2-state.json")))))
	require.NoError(t, err)
	untimed := func(c *state.Contents) *state.Contents {
		for _, h := range c.Hosts {
			h.CreatedAt, h.UpdatedAt = time.Time{}, time.Time{}
		}
		for _, r := range c.Resources {
			r.CreatedAt, r.UpdatedAt = time.Time{}, time.Time{}
		}
		c.Metadata.UpdatedAt = time.Time{}
		return c
	}
	assert.Equal(t, untimed(fixture), untimed(now), "the committed hybrid is what the code writes")
}

// The writer's floats are Python's repr of them.
func TestFTL2Python_FloatRepr(t *testing.T) {
	py := python(t)
	floats := []any{0.75, 1e-07, 1.5e+300, 1e19, 0.0001, 1e-05, 123456789.125, -2.5e-05, 1.7976931348623157e308, 5e-324, 0.1, 1.0 / 3, 9.223372036854776e18, 1e16 + 0.5, 12345.678e10, -1e-300, 3.14159}
	var args []string
	for _, f := range floats {
		args = append(args, strconv.FormatFloat(f.(float64), 'g', -1, 64))
	}
	var want []string
	require.NoError(t, json.Unmarshal(ftl2py(t, py, append([]string{"repr"}, args...)...), &want))

	out := string(writeFTL2(t, store([]*state.HostState{{Name: "h", Vars: map[string]any{"f": floats}}}, nil)))
	m := regexp.MustCompile(`(?s)"f": \[\n(.*?)\n +\]`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	var got []string
	for _, l := range strings.Split(m[1], "\n") {
		got = append(got, strings.TrimSuffix(strings.TrimSpace(l), ","))
	}
	assert.Equal(t, want, got)
}

// TestFTL2_RealAnsible: Ansible itself sees, in inventory --list of an
// imported ftl2 file, the groups and hosts of the Python tool's merge of
// it (Go mirror; the Python tests prove it), with the same connection
// settings and vars (the ansible_test.go harness: real ansible-inventory).
func TestFTL2_RealAnsible(t *testing.T) {
	bin := ansibleInventory(t)
	for _, path := range ftl2Fixtures(t) {
		if strings.HasPrefix(filepath.Base(path), "d_hybrid") {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			orig, err := os.ReadFile(path)
			require.NoError(t, err)
			st, _ := importFTL2(t, path)
			dir := t.TempDir()
			listFile := filepath.Join(dir, "list.json")
			require.NoError(t, os.WriteFile(listFile, inventoryOf(t, st), 0o600))
			script := filepath.Join(dir, "inventory.sh")
			writeScript(t, script, listFile, nil)
			seen := pyLoadList(rawJSON(t, ansible(t, bin, dir, "-i", script, "--list")))
			doc := rawJSON(t, orig)
			want := expectedOurs(t, doc, pyMerge(doc))
			// Ansible lists every host in "all" and a host of another group
			// not in "ungrouped"; the rest is as Python merges it.
			delete(seen.Groups, "all")
			for g, hosts := range want.Groups {
				if g == "ungrouped" {
					hosts = slices.DeleteFunc(slices.Clone(hosts), func(h string) bool {
						for og, oh := range want.Groups {
							if og != "ungrouped" && slices.Contains(oh, h) {
								return true
							}
						}
						return false
					})
					if len(hosts) == 0 {
						delete(want.Groups, g)
						continue
					}
				}
				want.Groups[g] = hosts
			}
			assert.Equal(t, canonInventory(want), canonInventory(seen))
		})
	}
}
