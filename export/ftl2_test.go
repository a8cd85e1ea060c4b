package export_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

// TestFTL2_FixturesRoundTrip: every ftl2 fixture imports, and export
// --format ftl2 of it gives the same JSON values, every difference one of
// the documented normalisations (ftl2Normalized); reading the export again
// gives the same store, and writing that again the same bytes.
func TestFTL2_FixturesRoundTrip(t *testing.T) {
	for _, path := range ftl2Fixtures(t) {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			st, rep := importFTL2(t, path)
			assert.Equal(t, export.FormatFTL2, rep.Format)
			assert.Equal(t, strings.HasPrefix(name, "d_hybrid"), rep.Hybrid, "only d_hybrid is a hybrid")
			orig, err := os.ReadFile(path)
			require.NoError(t, err)
			out := writeFTL2(t, st)

			if !rep.Hybrid {
				assert.Equal(t, ftl2Normalized(rawJSON(t, orig)), ftl2Normalized(rawJSON(t, out)), "the same JSON values, but for the documented normalisations:\n%s", out)
			}

			c, rep2, err := export.ReadAny(bytes.NewReader(out), nil)
			require.NoError(t, err)
			assert.Equal(t, export.FormatFTL2, rep2.Format)
			assert.False(t, rep2.Hybrid, "an export is a pure ftl2 file")
			before := contentsOf(t, st)
			if rep.Hybrid {
				// ftl2 keeps one time per host: documented hosts come back
				// with created_at = updated_at.
				for _, h := range before.Hosts {
					h.CreatedAt = h.UpdatedAt
				}
			}
			assert.Equal(t, before.Hosts, c.Hosts)
			assert.Equal(t, before.Resources, c.Resources)
			st2 := openMem(t)
			require.NoError(t, st2.Replace(c, false))
			assert.Equal(t, string(out), string(writeFTL2(t, st2)), "export is stable")
		})
	}
}

// TestFTL2_InventoryMatchesPythonMerge: inventory --list of an imported
// ftl2 file is, read the way the Python tool reads an inventory script, the
// Python tool's own inventory merge of the file (upstream's code, mirrored
// in Go by pyMerge and pyLoadList; the Python tests run the real code),
// but for the documented differences (expectedOurs).
func TestFTL2_InventoryMatchesPythonMerge(t *testing.T) {
	for _, path := range ftl2Fixtures(t) {
		if strings.HasPrefix(filepath.Base(path), "d_hybrid") {
			continue // upstream reads the documented half of a hybrid wrongly: see TestFTL2_Hybrid
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			orig, err := os.ReadFile(path)
			require.NoError(t, err)
			st, _ := importFTL2(t, path)
			list := inventoryOf(t, st)
			doc := rawJSON(t, orig)
			want := expectedOurs(t, doc, pyMerge(doc))
			assert.Equal(t, canonInventory(want), canonInventory(pyLoadList(rawJSON(t, list))), "inventory --list:\n%s", list)
		})
	}
}

// The fixtures' facts, checked one by one (the round trip tests compare
// wholes).
func TestFTL2_FixtureContents(t *testing.T) {
	st, _ := importFTL2(t, testdata("ftl2", "b_hosts.ftl2-state.json"))
	web, ok := st.GetHost("web01")
	require.True(t, ok)
	assert.Equal(t, "192.0.2.10", web.Address)
	assert.Equal(t, 22, web.Port)
	assert.Equal(t, "admin", web.User)
	assert.Equal(t, []string{"webservers", "production"}, web.AllGroups())
	assert.Equal(t, time.Date(2026, 12, 1, 18, 34, 25, 977046000, time.UTC), web.CreatedAt)
	assert.Equal(t, web.CreatedAt, web.UpdatedAt)
	assert.Equal(t, map[string]any{"http_port": int64(80), "ssl_enabled": true, "weight": 0.75,
		"nginx": map[string]any{"worker_processes": int64(4), "gzip": false, "upstreams": []any{map[string]any{"name": "app", "port": int64(8080)}}}}, web.Vars)
	bastion, _ := st.GetHost("bastion")
	assert.Nil(t, bastion.AllGroups(), "[] is no group")
	assert.Equal(t, 60022, bastion.Port)
	assert.Equal(t, "Grüße aus München – 東京 🚀 \"quoted\" back\\slash\ttab", bastion.Vars["motd"])
	db, _ := st.GetHost("db01")
	assert.Equal(t, []any{0.5, 1e-07, 1.5e+300, int64(-2)}, db.Vars["pg"].(map[string]any)["ratios"], "-2.0 is the integer -2")
	m := st.Metadata()
	assert.Equal(t, time.Date(2026, 12, 1, 18, 34, 25, 973407000, time.UTC), m.CreatedAt)
	assert.Equal(t, time.Date(2026, 12, 1, 18, 34, 25, 986551000, time.UTC), m.UpdatedAt)

	st, _ = importFTL2(t, testdata("ftl2", "c_resources.ftl2-state.json"))
	r, ok := st.GetResource("web01")
	require.True(t, ok)
	assert.Equal(t, &state.ResourceState{Type: "linode", ID: "12345678", Name: "web01",
		Data: map[string]any{"label": "web01", "region": "us-east", "type": "g6-standard-2", "ipv4": []any{"192.0.2.10", "192.0.2.11"}, "status": "running"},
		Tags: map[string]string{"ftl2.id": "integer"}, CreatedAt: time.Date(2026, 12, 1, 18, 34, 26, 30015000, time.UTC), UpdatedAt: time.Date(2026, 12, 1, 18, 34, 26, 50623000, time.UTC)}, r)
	r, _ = st.GetResource("api-eu-1")
	assert.Equal(t, "i-0abc123def4567890", r.ID)
	assert.Nil(t, r.Tags, "a string id needs no mark")
	assert.Equal(t, map[string]any{"env": "prod", "team": "api"}, r.Data["tags"], "ftl2's tags are data")
	assert.Equal(t, r.CreatedAt, r.UpdatedAt, "no last_seen: never updated")
	r, _ = st.GetResource("hetzner-web")
	assert.Equal(t, "", r.ID, "no id")
	assert.Len(t, st.GetResourcesByType("linode"), 1)
	plain, _ := st.GetHost("plainhost")
	assert.Equal(t, "plainhost", plain.Address)
	assert.Equal(t, "", plain.User)

	st, _ = importFTL2(t, testdata("ftl2", "e_quirks.ftl2-state.json"))
	twice, _ := st.GetHost("twice")
	assert.Equal(t, []string{"web", "db"}, twice.AllGroups(), "a repeated group once")
	stamped, _ := st.GetHost("stamped")
	assert.Equal(t, map[string]any{"added_at": "yesterday", "ansible_connection": "local", "ansible_password": "s3cret"}, stamped.Vars)
	assert.True(t, stamped.CreatedAt.IsZero(), "no time")
	odd, _ := st.GetHost("odd-port")
	assert.Equal(t, 0, odd.Port)
	assert.Equal(t, "2222", odd.Vars["ansible_port"], "a port that is not a port number stays as it was")
	cafe, _ := st.GetHost("café-01")
	assert.Equal(t, "rémi", cafe.User)
	assert.Equal(t, "🚀", cafe.Vars["note"])
	exact, _ := st.GetHost("exact-second")
	assert.Equal(t, []any{int64(0), int64(2), int64(1e16), 1e-05, 0.1, 123456789.125}, exact.Vars["floats"])
	big, _ := st.GetResource("big-id")
	assert.Equal(t, "18446744073709551616", big.ID, "an integer id of any size, exactly")
	assert.Equal(t, "integer", big.Tags["ftl2.id"])
	zero, _ := st.GetResource("numeric-zero-id")
	assert.Equal(t, "0", zero.ID)
	fl, _ := st.GetResource("float-id")
	assert.Equal(t, "", fl.ID)
	assert.Equal(t, 1.5, fl.Data["id"], "an id that is neither text nor an integer stays data")
	np, _ := st.GetResource("no-provider")
	assert.Equal(t, "-", np.Type)
	hy, _ := st.GetResource("hyphen")
	assert.Equal(t, "-", hy.Type)
	assert.Equal(t, "-", hy.Data["provider"], `a provider "-" stays data, so that it is written back`)
	ov, _ := st.GetResource("data-overrides")
	assert.Equal(t, "by hand", ov.Data["created_at"])
	assert.True(t, ov.CreatedAt.IsZero())
	upd, _ := st.GetResource("updated-twice")
	assert.Equal(t, map[string]any{"state": "running", "public_ip": "198.51.100.9"}, upd.Data)
	assert.True(t, upd.UpdatedAt.After(upd.CreatedAt))
}

// TestFTL2_Hybrid: the file the Python tool writes after reading the
// documented example and changing it (testdata/ftl2/d_hybrid): each entry
// is read by its shape, the documented ones by the state.json decoder.
func TestFTL2_Hybrid(t *testing.T) {
	st, rep := importFTL2(t, testdata("ftl2", "d_hybrid.ftl2-state.json"))
	assert.True(t, rep.Hybrid)
	assert.Equal(t, export.Shapes{Documented: 2, FTL2: 1}, rep.Hosts)
	assert.Equal(t, export.Shapes{Documented: 1, FTL2: 1, Updated: 1}, rep.Resources)
	assert.Equal(t, "a hybrid file (a state.json rewritten by the Python ftl2): hosts 2 documented + 1 ftl2; resources 1 documented (1 updated by ftl2) + 1 ftl2", rep.String())

	example := openMem(t)
	require.NoError(t, importFile(t, example, testdata("state.json"), nil))
	for _, name := range []string{"web01", "db01"} {
		want, _ := example.GetHost(name)
		got, ok := st.GetHost(name)
		require.True(t, ok, name)
		assert.Equal(t, want, got, "documented host %s is read as state.json has it", name)
	}
	web02, _ := st.GetHost("web02")
	assert.Equal(t, "192.168.1.11", web02.Address)
	assert.Equal(t, "deploy", web02.User)
	assert.Equal(t, []string{"webservers", "canary"}, web02.AllGroups())
	assert.Equal(t, map[string]any{"http_port": int64(8080)}, web02.Vars)

	lin, _ := st.GetResource("linode:12345678")
	want, _ := example.GetResource("linode:12345678")
	assert.Equal(t, want.Type, lin.Type)
	assert.Equal(t, want.Tags, lin.Tags)
	assert.Equal(t, want.Name, lin.Name)
	assert.Equal(t, "running", lin.Data["status"], "update_resource's keys are data")
	assert.Equal(t, []any{"192.168.1.10", "192.168.1.12"}, lin.Data["ipv4"], "and replace data of the same name")
	assert.Equal(t, "us-east", lin.Data["region"])
	assert.Equal(t, want.CreatedAt, lin.CreatedAt)
	assert.True(t, lin.UpdatedAt.After(want.UpdatedAt), "last_seen is the update's time")
	r, _ := st.GetResource("web02")
	assert.Equal(t, "23456789", r.ID)

	m := st.Metadata()
	assert.Equal(t, time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC), m.CreatedAt, "the metadata's")
	assert.Equal(t, 2026, m.UpdatedAt.Year(), "ftl2's top-level updated_at: its last save")

	// Its inventory: the documented hosts as state.json has them, the ftl2
	// one as ftl2 has it.
	inv := pyLoadList(rawJSON(t, inventoryOf(t, st)))
	assert.Equal(t, map[string][]string{"webservers": {"web01", "web02"}, "canary": {"web02"}, "databases": {"db01"}}, inv.Groups)
	assert.Equal(t, "192.168.1.10", inv.Hosts["web01"].AnsibleHost)
	assert.Equal(t, "admin", inv.Hosts["web01"].AnsibleUser)
	assert.Equal(t, "deploy", inv.Hosts["web02"].AnsibleUser)
}

// A store -> export --format ftl2 -> import gives the same hosts,
// resources and groups, but for the documented normalisations
// (storeNormalized).
func TestFTL2_StoreRoundTrip(t *testing.T) {
	ts := time.Date(2024, 1, 15, 10, 30, 0, 123456789, time.UTC)
	later := ts.Add(time.Hour)
	c := &state.Contents{Metadata: state.Metadata{Version: "1.0", CreatedAt: ts, UpdatedAt: later},
		Hosts: map[string]*state.HostState{
			"web01":   {Name: "web01", Address: "192.0.2.10", Port: 22, User: "admin", Group: "webservers", Groups: []string{"production", "eu"}, Vars: map[string]any{"http_port": int64(80), "nested": map[string]any{"l": []any{1.5, nil, "x"}}}, CreatedAt: ts, UpdatedAt: later},
			"bare":    {Name: "bare"},
			"vars-in": {Name: "vars-in", Vars: map[string]any{"ansible_host": "10.0.0.1", "ansible_port": int64(2222), "ansible_user": "ops"}},
			"shadow":  {Name: "shadow", Address: "10.0.0.2", Port: 22, User: "root", Vars: map[string]any{"ansible_host": "stale", "ansible_user": "x", "ansible_port": "22"}},
			"odd":     {Name: "odd", Vars: map[string]any{"ansible_host": "", "ansible_port": int64(0), "added_at": int64(5)}},
			"ünï":     {Name: "ünï", Address: "192.0.2.7", User: "rémi", Group: "équipe", Vars: map[string]any{"emoji": "🚀\u2028<&>"}, CreatedAt: ts, UpdatedAt: ts},
			"empty":   {Name: "empty", Vars: map[string]any{}},
			"grp":     {Name: "grp", Group: "ungrouped"},
		},
		Resources: map[string]*state.ResourceState{
			"linode:12345678": {Type: "linode", ID: "12345678", Name: "web01", Data: map[string]any{"region": "us-east"}, Tags: map[string]string{"environment": "production"}, CreatedAt: ts, UpdatedAt: later},
			"web01":           {Type: "linode", ID: "12345678", Name: "web01", Tags: map[string]string{"ftl2.id": "integer"}, CreatedAt: ts, UpdatedAt: ts},
			"marker-not-int":  {Type: "x", ID: "i-1", Name: "marker-not-int", Tags: map[string]string{"ftl2.id": "integer"}},
			"no-type":         {Type: "-", Name: ""},
			"collide":         {Type: "dns", ID: "z", Name: "collide", Data: map[string]any{"provider": "other", "id": int64(7), "created_at": "2024-01-15T10:30:00Z", "last_seen": "x", "ftlstate": "mine", "name": "n", "tags": "t"}, CreatedAt: ts, UpdatedAt: later},
			"unset-fields":    {Type: "-", Data: map[string]any{"provider": "-", "id": 1.5, "created_at": "by hand"}},
			"unset-but-fits":  {Type: "-", Data: map[string]any{"provider": "aws", "id": "i-9", "created_at": "2024-01-15T10:30:00Z"}},
			"empty-maps":      {Type: "t", Name: "empty-maps", Data: map[string]any{}, Tags: map[string]string{}},
			"zero-updated":    {Type: "t", Name: "zero-updated", CreatedAt: ts},
		},
	}
	require.NoError(t, c.Validate())
	st := openMem(t)
	require.NoError(t, st.Replace(c, false))
	out := writeFTL2(t, st)
	back, err := export.ReadFTL2(bytes.NewReader(out))
	require.NoError(t, err, "%s", out)

	want := storeNormalized(contentsOf(t, st))
	assert.Equal(t, want.Hosts, back.Hosts, "%s", out)
	assert.Equal(t, want.Resources, back.Resources, "%s", out)
	assert.Equal(t, ts, back.Metadata.CreatedAt)
	assert.Equal(t, later, back.Metadata.UpdatedAt)

	// The documented example, through a real store of each kind.
	ex := openMem(t)
	require.NoError(t, importFile(t, ex, testdata("state.json"), nil))
	out = writeFTL2(t, ex)
	back, err = export.ReadFTL2(bytes.NewReader(out))
	require.NoError(t, err)
	want = storeNormalized(contentsOf(t, ex))
	assert.Equal(t, want.Hosts, back.Hosts)
	assert.Equal(t, want.Resources, back.Resources)
}

// storeNormalized applies to a store's contents the normalisations the
// package documentation lists for a store -> export --format ftl2 ->
// import round trip:
//
//   - a host's created_at becomes its updated_at (ftl2 keeps one time);
//   - a var ansible_host, ansible_port or ansible_user (or its older alias
//     ansible_ssh_host, ansible_ssh_port, ansible_ssh_user) is dropped
//     when the host's field is set (the field wins, as in inventory
//     --list), and ansible_host, ansible_port or ansible_user
//     becomes the field when the field is not set and the value is one
//     (a non-empty string; a port 1..65535);
//   - a var added_at is written as added_at in place of the host's time
//     (as ftl2's own extra variables are): when it is a timestamp it comes
//     back as the host's time, else as the var, and the host has no time;
//   - empty vars, data and tags are none.
func storeNormalized(c *state.Contents) *state.Contents {
	out := &state.Contents{Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}}
	for n, h := range c.Hosts {
		h = h.Clone()
		h.CreatedAt = h.UpdatedAt
		take := func(key string, set bool, fits func(any) bool, to func(any)) {
			v, ok := h.Vars[key]
			if !ok {
				return
			}
			switch {
			case set:
				delete(h.Vars, key)
			case fits(v):
				to(v)
				delete(h.Vars, key)
			}
		}
		str := func(v any) bool { s, ok := v.(string); return ok && s != "" }
		if h.Address != "" {
			delete(h.Vars, "ansible_ssh_host")
		}
		if h.Port != 0 {
			delete(h.Vars, "ansible_ssh_port")
		}
		if h.User != "" {
			delete(h.Vars, "ansible_ssh_user")
		}
		take("ansible_host", h.Address != "", str, func(v any) { h.Address = v.(string) })
		take("ansible_user", h.User != "", str, func(v any) { h.User = v.(string) })
		take("ansible_port", h.Port != 0, func(v any) bool { p, ok := v.(int64); return ok && p >= 1 && p <= 65535 }, func(v any) { h.Port = int(v.(int64)) })
		if v, ok := h.Vars["added_at"]; ok {
			// The var is written as added_at, in place of the time (as
			// ftl2's own extras are): a timestamp becomes the host's
			// time, anything else stays the var, and the host has none.
			h.CreatedAt, h.UpdatedAt = time.Time{}, time.Time{}
			var tm time.Time
			if s, ok := v.(string); ok && tm.UnmarshalText([]byte(s)) == nil {
				h.CreatedAt, h.UpdatedAt = state.Timestamp(tm), state.Timestamp(tm)
				delete(h.Vars, "added_at")
			}
		}
		if len(h.Vars) == 0 {
			h.Vars = nil
		}
		out.Hosts[n] = h
	}
	for k, r := range c.Resources {
		r = r.Clone()
		if len(r.Data) == 0 {
			r.Data = nil
		}
		if len(r.Tags) == 0 {
			r.Tags = nil
		}
		out.Resources[k] = r
	}
	return out
}

// Random stores survive store -> ftl2 -> import as storeNormalized says.
func TestFTL2_StoreRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 2))
	keys := []string{"provider", "id", "created_at", "last_seen", "ftlstate", "name", "tags", "ansible_host", "ansible_port", "ansible_user", "ansible_ssh_host", "ansible_ssh_user", "added_at", "x", "-"}
	vals := []any{"", "-", "aws", "i-1", int64(0), int64(22), int64(70000), 1.5, nil, true, "2024-01-15T10:30:00Z", "yesterday", []any{}, map[string]any{"k": "v"}}
	pick := func() map[string]any {
		m := map[string]any{}
		for range rng.IntN(4) {
			m[keys[rng.IntN(len(keys))]] = vals[rng.IntN(len(vals))]
		}
		if len(m) == 0 && rng.IntN(2) == 0 {
			return nil
		}
		return m
	}
	times := []time.Time{{}, time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC), time.Date(2025, 6, 1, 0, 0, 0, 1000, time.UTC), time.Date(2025, 6, 1, 0, 0, 0, 7, time.UTC)}
	strs := []string{"", "-", "web01", "linode", "12345678", "007", "-5", "18446744073709551616", "é"}
	for i := range 300 {
		c := &state.Contents{Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}}
		for j := range 3 {
			h := &state.HostState{Name: fmt.Sprintf("h%d", j), Address: strs[rng.IntN(len(strs))], User: strs[rng.IntN(len(strs))], Port: []int{0, 22, 65535}[rng.IntN(3)], Vars: pick()}
			if _, bad := h.Vars["groups"]; bad {
				delete(h.Vars, "groups")
			}
			h.SetGroups([][]string{nil, {"a"}, {"a", "b"}, {"ungrouped"}}[rng.IntN(4)]...)
			h.UpdatedAt = times[rng.IntN(len(times))]
			c.Hosts[h.Name] = h
			r := &state.ResourceState{Type: []string{"-", "aws", "x"}[rng.IntN(3)], ID: strs[rng.IntN(len(strs))], Name: strs[rng.IntN(len(strs))], Data: pick(), CreatedAt: times[rng.IntN(len(times))], UpdatedAt: times[rng.IntN(len(times))]}
			if rng.IntN(2) == 0 {
				r.Tags = map[string]string{"ftl2.id": []string{"integer", "other"}[rng.IntN(2)]}
				if rng.IntN(2) == 0 {
					r.Tags["env"] = "prod"
				}
			}
			c.Resources[fmt.Sprintf("r%d", j)] = r
		}
		require.NoError(t, c.Validate(), "case %d", i)
		st := openMem(t)
		require.NoError(t, st.Replace(c, true))
		out := writeFTL2(t, st)
		back, err := export.ReadFTL2(bytes.NewReader(out))
		require.NoError(t, err, "case %d:\n%s", i, out)
		want := storeNormalized(contentsOf(t, st))
		require.Equal(t, want.Hosts, back.Hosts, "case %d:\n%s", i, out)
		require.Equal(t, want.Resources, back.Resources, "case %d:\n%s", i, out)
	}
}

// TestWriteFTL2_Layout: the file is written as Python's json.dumps(indent=2)
// writes it (ensure_ascii, Python's float repr, isoformat times), so that
// a round trip of an ftl2 file differs only where the documentation says.
func TestWriteFTL2_Layout(t *testing.T) {
	ts := time.Date(2026, 12, 1, 18, 34, 25, 977046000, time.UTC)
	st := openMem(t)
	require.NoError(t, st.Replace(&state.Contents{
		Metadata: state.Metadata{Version: "1.0", CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 1, 1, 0, 0, 0, 5, time.UTC)},
		Hosts: map[string]*state.HostState{"web01": {Name: "web01", Address: "192.0.2.10", Port: 22, User: "admin", Group: "webservers", Groups: []string{"production"},
			Vars:      map[string]any{"motd": "Grüße 🚀 \"q\" \\ \t\n\u007f\u2028<&>", "f": []any{0.75, 1e-07, 1.5e+300, 1e19, 0.0001, 123456789.125, -2.5e-05}, "empty": map[string]any{}, "none": []any{}},
			CreatedAt: ts, UpdatedAt: ts}},
		Resources: map[string]*state.ResourceState{"web01": {Type: "linode", ID: "12345678", Name: "web01", Tags: map[string]string{"ftl2.id": "integer"}, CreatedAt: ts, UpdatedAt: ts.Add(time.Second)}},
	}, false))
	want := `{
  "version": 1,
  "created_at": "2026-01-01T00:00:00+00:00",
  "updated_at": "2026-01-01T00:00:00.000000005+00:00",
  "hosts": {
    "web01": {
      "ansible_host": "192.0.2.10",
      "ansible_port": 22,
      "groups": [
        "webservers",
        "production"
      ],
      "added_at": "2026-12-01T18:34:25.977046+00:00",
      "ansible_user": "admin",
      "empty": {},
      "f": [
        0.75,
        1e-07,
        1.5e+300,
        1e+19,
        0.0001,
        123456789.125,
        -2.5e-05
      ],
      "motd": "Gr\u00fc\u00dfe \ud83d\ude80 \"q\" \\ \t\n` + "\x7f" + `\u2028<&>",
      "none": []
    }
  },
  "resources": {
    "web01": {
      "created_at": "2026-12-01T18:34:25.977046+00:00",
      "provider": "linode",
      "id": 12345678,
      "last_seen": "2026-12-01T18:34:26.977046+00:00"
    }
  }
}
`
	assert.Equal(t, want, string(writeFTL2(t, st)))

	// The file of an empty store.
	assert.Regexp(t, `^\{\n  "version": 1,\n  "created_at": "[^"]+\+00:00",\n  "updated_at": "[^"]+\+00:00",\n  "hosts": \{\},\n  "resources": \{\}\n\}\n$`, string(writeFTL2(t, openMem(t))))
}

func TestWriteFTL2_Refuses(t *testing.T) {
	var buf bytes.Buffer
	err := export.WriteFTL2(&buf, store([]*state.HostState{{Name: "web01", Vars: map[string]any{"groups": []any{"a"}}}}, nil), nil)
	assert.ErrorIs(t, err, state.ErrInvalid)
	assert.EqualError(t, err, `export: ftl2: host "web01": var "groups" has no place in an ftl2 file (ftl2 reads that key as the host's group list); rename it: invalid`)
	assert.Empty(t, buf.String(), "nothing written")
}

func TestWriteFTL2_RedactAndProgress(t *testing.T) {
	v := store([]*state.HostState{{Name: "web01", Vars: map[string]any{"ansible_password": "hunter2"}}},
		map[string]*state.ResourceState{"r": {Type: "t", Data: map[string]any{"api_key": "k"}}})
	var buf bytes.Buffer
	var done []int
	require.NoError(t, export.WriteFTL2(&buf, v, &export.Options{Redact: true, Progress: func(n int) { done = append(done, n) }}))
	assert.NotContains(t, buf.String(), "hunter2")
	assert.Contains(t, buf.String(), `"ansible_password": "<redacted>"`)
	assert.Contains(t, buf.String(), `"api_key": "<redacted>"`)
	assert.Equal(t, []int{1, 2}, done)
}

// TestReadAny_Recognises: the format is told by content; --format forces
// a reading.
func TestReadAny_Recognises(t *testing.T) {
	read := func(b []byte, f export.Format) (*state.Contents, *export.ReadReport, error) {
		return export.ReadAny(bytes.NewReader(b), &export.ImportOptions{Format: f})
	}
	documented := []byte(readFile(t, testdata("state.json")))
	c, rep, err := read(documented, "")
	require.NoError(t, err)
	assert.Equal(t, &export.ReadReport{Format: export.FormatState, Hosts: export.Shapes{Documented: 2}, Resources: export.Shapes{Documented: 1}}, rep)
	assert.Equal(t, "a state.json: 2 hosts, 1 resources", rep.String())
	viaRead, err := export.Read(bytes.NewReader(documented), nil)
	require.NoError(t, err)
	assert.Equal(t, viaRead, c, "the documented format is read by Read's decoder")

	// Forced ftl2 on a documented file: its entries have the documented
	// shape, and are read so.
	c2, rep, err := read(documented, export.FormatFTL2)
	require.NoError(t, err)
	assert.Equal(t, export.FormatFTL2, rep.Format)
	assert.False(t, rep.Hybrid)
	assert.Equal(t, c.Hosts, c2.Hosts)
	assert.Equal(t, c.Resources, c2.Resources)

	ftl2 := []byte(readFile(t, testdata("ftl2", "c_resources.ftl2-state.json")))
	_, rep, err = read(ftl2, "")
	require.NoError(t, err)
	assert.Equal(t, "an ftl2 state file: 4 hosts, 4 resources", rep.String())
	_, _, err = read(ftl2, export.FormatState)
	assert.ErrorIs(t, err, state.ErrCorrupt)
	assert.ErrorContains(t, err, "line 2, column 3: version: unknown field", "forced: the state.json decoder's own words")

	for in, want := range map[string]export.Format{
		`{}`:                                     export.FormatState,
		`{"hosts": {}}`:                          export.FormatState,
		`{"version": 1}`:                         export.FormatFTL2,
		`{"updated_at": "2024-01-15T10:30:00Z"}`: export.FormatFTL2,
		`{"hosts": {"h": {"ansible_host": "x"}}}`:   export.FormatFTL2,
		`{"hosts": {"h": {}}}`:                      export.FormatFTL2, // no name: ftl2's shape
		`{"resources": {"r": {"provider": "aws"}}}`: export.FormatFTL2,
		`{"resources": {"r": {"type": "t", "id": "1", "name": "r", "updated_at": "2024-01-15T10:30:00Z"}}}`: export.FormatState,
	} {
		_, rep, err := read([]byte(in), "")
		require.NoError(t, err, in)
		assert.Equal(t, want, rep.Format, in)
	}

	// Not JSON at all: the state.json decoder's words.
	_, _, err = read([]byte(`{"hosts": {"h": }}`), "")
	assert.EqualError(t, err, `line 1, column 17: hosts.h: invalid character '}', expected a value`)
	_, _, err = read([]byte(`{"hosts": {"h": }}`), export.FormatFTL2)
	assert.ErrorIs(t, err, state.ErrCorrupt)
	assert.ErrorContains(t, err, "line 1, column 17: hosts.h: invalid character '}'")

	_, _, err = export.ReadAny(bytes.NewReader(nil), &export.ImportOptions{Format: "yaml"})
	assert.ErrorIs(t, err, state.ErrInvalid)
}

// The upstream execution record is refused, saying what it is, whatever
// the format asked for.
func TestReadAny_ExecutionRecord(t *testing.T) {
	b := []byte(readFile(t, testdata("ftl2", "bad", "bad_execution.json")))
	for _, f := range []export.Format{"", export.FormatFTL2, export.FormatState} {
		_, _, err := export.ReadAny(bytes.NewReader(b), &export.ImportOptions{Format: f})
		var xe *export.ExecutionRecordError
		require.ErrorAs(t, err, &xe, "format %q", f)
		assert.Equal(t, "ping", xe.Module)
		assert.ErrorIs(t, err, state.ErrCorrupt)
		assert.Contains(t, err.Error(), "this is an ftl2 execution record of module \"ping\" (written by 'ftl2 run --state-file'")
	}
}

// TestReadFTL2_Refuses: what cannot be stored exactly is refused with
// line:column and the JSON path, never rounded or replaced.
func TestReadFTL2_Refuses(t *testing.T) {
	files := map[string]string{
		"bad_nan.ftl2-state.json":      "line 11, column 15: hosts.web01.load: NaN is not a JSON number (Python's json module writes it for float('nan')); ftlstate stores finite numbers only: replace it with a number or null",
		"bad_infinity.ftl2-state.json": "line 11, column 16: resources.r1.limits.max: Infinity is not a JSON number (Python's json module writes it for float('inf'))",
		"bad_bigint.ftl2-state.json":   "line 11, column 18: hosts.web01.counter: integer 18446744073709551616 is beyond the 64-bit range ftlstate stores exactly (it would be rounded); store it as a string",
	}
	for name, want := range files {
		b := []byte(readFile(t, testdata("ftl2", "bad", name)))
		for _, f := range []export.Format{"", export.FormatFTL2} {
			_, _, err := export.ReadAny(bytes.NewReader(b), &export.ImportOptions{Format: f})
			assert.ErrorIs(t, err, state.ErrCorrupt, name)
			assert.ErrorContains(t, err, want, name)
			var se *statefile.Error
			require.ErrorAs(t, err, &se, name)
			assert.NotZero(t, se.Line)
		}
	}
	h := func(entry string) string {
		return `{"version": 1, "hosts": {"h": ` + entry + `}}`
	}
	inline := map[string]string{
		h(`{"ansible_host": "a", "x": -Infinity}`):                             "line 1, column 58: hosts.h.x: -Infinity is not a JSON number (Python's json module writes it for float('-inf'))",
		h(`{"ansible_host": "a", "x": [1, NaN]}`):                              "line 1, column 62: hosts.h.x.1: NaN is not a JSON number",
		h(`{"ansible_host": "a", "x": -9223372036854775809}`):                  "hosts.h.x: integer -9223372036854775809 is beyond the 64-bit range",
		h(`{"ansible_host": "a", "x": 1e400}`):                                 "hosts.h.x: number 1e400 is beyond the range of a 64-bit float",
		h(`{"ansible_host": "a", "x": 1e-400}`):                                "hosts.h.x: number 1e-400 is too small for a 64-bit float (it would become 0)",
		h(`{"ansible_host": "a", "groups": "web"}`):                            "line 1, column 63: hosts.h.groups: must be a list of group names, not a string",
		h(`{"ansible_host": "a", "groups": ["web", 1]}`):                       "line 1, column 71: hosts.h.groups.1: must be a group name (a non-empty string)",
		h(`{"ansible_host": "a", "groups": [""]}`):                             "hosts.h.groups.0: must be a group name",
		h(`{"ansible_host": "a", "x": 1, "x": 2}`):                             "line 1, column 61: hosts.h.x: duplicate key (each key may appear once; Python would keep only the last)",
		h(`{"ansible_host": "\ud800"}`):                                        `line 1, column 49: hosts.h.ansible_host: lone surrogate \ud800 in a string`,
		h(`{"ansible_host": "a` + "\xff" + `"}`):                               "hosts.h.ansible_host: invalid UTF-8 byte 0xff in a string",
		h(`[]`):                                                                "line 1, column 31: hosts.h: must be an object, not an array",
		`{"version": 1, "hosts": {"": {}}}`:                                    `line 1, column 26: hosts."": must not be empty`,
		`{"version": 1, "hosts": {"a\u0001": {}}}`:                             `hosts."a\x01": control character U+0001 not allowed`,
		`{"version": 1, "hosts": []}`:                                          "line 1, column 25: hosts: must be an object, not an array",
		`{"version": "1"}`:                                                     "line 1, column 13: version: must be a number (ftl2 writes 1), not a string",
		`{"version": 1, "created_at": "yesterday"}`:                            `line 1, column 30: created_at: not an RFC 3339 time in years 0..9999: "yesterday"`,
		`{"version": 1, "outputs": {}}`:                                        "line 1, column 16: outputs: unknown field (an ftl2 state file has version, created_at, updated_at, hosts and resources)",
		`{"version": 1, "resources": {"r": {"ftlstate": 5}}}`:                  "resources.r.ftlstate: must be an object of name, tags and data",
		`{"version": 1, "resources": {"r": {"ftlstate": {"x": 1}}}}`:           `resources.r.ftlstate.x: unknown field`,
		`{"version": 1, "resources": {"r": {"ftlstate": {"tags": {"a": 1}}}}}`: "resources.r.ftlstate.tags.a: must be a string, not a number",
		`{"version": 1} x`:                                                     "line 1, column 16: unexpected data after the document",
		`{"version": 1`:                                                        "unexpected end of input",
		"\uFEFF" + `{"version": 1}`:                                            "line 1, column 1: byte order mark",
		`  `:                                                                   "empty document",
	}
	for in, want := range inline {
		_, err := export.ReadFTL2(strings.NewReader(in))
		assert.ErrorIs(t, err, state.ErrCorrupt, in)
		assert.ErrorContains(t, err, want, in)
	}

	// A hybrid's documented entries keep the state.json decoder's rules,
	// and its errors point into the file itself.
	hybrid := `{"metadata": {"version": "1.0"},
  "hosts": {
    "new": {"ansible_host": "10.0.0.1", "groups": []},
    "old": {"name": "old", "address": "10.0.0.2", "port": 70000}
  }
}`
	_, err := export.ReadFTL2(strings.NewReader(hybrid))
	assert.EqualError(t, err, "line 4, column 59: hosts.old.port: must be 0..65535")
	_, err = export.ReadFTL2(strings.NewReader(strings.Replace(hybrid, `"port": 70000`, `"adress": "x"`, 1)))
	assert.EqualError(t, err, "line 4, column 51: hosts.old.adress: unknown field (a host has name, address, port, user, group, groups, vars, created_at and updated_at)")
	_, err = export.ReadFTL2(strings.NewReader(strings.Replace(hybrid, `"version": "1.0"`, `"version": "2.0"`, 1)))
	assert.EqualError(t, err, `line 1, column 26: metadata.version: unsupported format version "2.0" (this program reads "1.0")`)

	_, err = export.ReadFTL2(errReader{})
	assert.Error(t, err)
	assert.NotErrorIs(t, err, state.ErrCorrupt, "a read error is not a bad document")

	_, _, err = export.ReadAny(strings.NewReader(`{"version": 1}`), &export.ImportOptions{MaxSize: 5})
	assert.ErrorIs(t, err, statefile.ErrTooLarge)
	assert.ErrorIs(t, err, state.ErrCorrupt)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// TestReadFTL2_Accepts: what upstream writes, or a person writes by hand,
// and how it is read.
func TestReadFTL2_Accepts(t *testing.T) {
	read := func(in string) *state.Contents {
		t.Helper()
		c, err := export.ReadFTL2(strings.NewReader(in))
		require.NoError(t, err, in)
		return c
	}
	c := read(`{"version": 1, "hosts": {"h": {"ansible_host": "", "ansible_user": "", "ansible_port": 0, "added_at": "2026-12-01T18:34:25Z"}}}`)
	h := c.Hosts["h"]
	assert.Equal(t, map[string]any{"ansible_host": "", "ansible_user": "", "ansible_port": int64(0)}, h.Vars, "values that are not connection settings stay as they were")
	assert.Equal(t, time.Date(2026, 12, 1, 18, 34, 25, 0, time.UTC), h.CreatedAt)

	c = read(`{"version": 1, "hosts": {"h": {"ansible_host": "a", "ansible_port": 22.0, "added_at": "2026-12-01T20:34:25.5+02:00"}}}`)
	assert.Equal(t, 22, c.Hosts["h"].Port, "22.0 is 22")
	assert.Equal(t, time.Date(2026, 12, 1, 18, 34, 25, 5e8, time.UTC), c.Hosts["h"].UpdatedAt, "any offset, in UTC")

	c = read(`{"hosts": null, "resources": {"r": {"id": 1e3, "provider": "p"}, "s": {"id": 99999999999999999999999999}}}`)
	assert.Equal(t, "1000", c.Resources["r"].ID)
	assert.Equal(t, map[string]string{"ftl2.id": "integer"}, c.Resources["r"].Tags)
	assert.Equal(t, "99999999999999999999999999", c.Resources["s"].ID, "integer ids of any size, exactly")
	assert.Equal(t, "-", c.Resources["s"].Type)

	c = read(`{"version": 1, "resources": {"k": {"provider": "aws", "ftlstate": {"name": "web01", "tags": {"env": "prod"}, "data": {"id": 7}}}}}`)
	assert.Equal(t, &state.ResourceState{Type: "aws", Name: "web01", Tags: map[string]string{"env": "prod"}, Data: map[string]any{"id": int64(7)}}, c.Resources["k"])

	// Nesting: Vars itself is level 1, as state.NormalizeValue counts.
	deep := func(n int) string { return strings.Repeat(`[`, n) + strings.Repeat(`]`, n) }
	read(`{"version": 1, "hosts": {"h": {"v": ` + deep(state.MaxValueDepth-1) + `}}}`)
	_, err := export.ReadFTL2(strings.NewReader(`{"version": 1, "hosts": {"h": {"v": ` + deep(state.MaxValueDepth) + `}}}`))
	assert.ErrorContains(t, err, "nested deeper than 512 levels")
}
