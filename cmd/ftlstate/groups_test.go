package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
)

// A host in several groups: --group repeated, in order; every listing
// shows all of them, and --group finds a host by any of them.
func TestHosts_SeveralGroups(t *testing.T) {
	for _, name := range []string{"state.db", "state.json"} {
		t.Run(name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), name)
			ok(t, "--state", db, "host", "add", "web01", "--address", "192.0.2.10", "--group", "webservers", "--group", "production", "--group", "eu")
			ok(t, "--state", db, "host", "add", "db01", "--address", "192.0.2.20", "--group", "databases", "--group", "production")
			ok(t, "--state", db, "host", "add", "bastion", "--address", "192.0.2.1")

			r := ok(t, "--state", db, "hosts")
			assert.Regexp(t, `(?m)^web01\s+192\.0\.2\.10\s+22\s+-\s+webservers,production,eu\s+0\s`, r.stdout)
			assert.Regexp(t, `(?m)^bastion\s+192\.0\.2\.1\s+22\s+-\s+-\s+0\s`, r.stdout)

			names := func(args ...string) []string {
				r := ok(t, append([]string{"--state", db, "hosts", "-o", "json"}, args...)...)
				var hosts []state.HostState
				require.NoError(t, json.Unmarshal([]byte(r.stdout), &hosts))
				var out []string
				for _, h := range hosts {
					out = append(out, h.Name)
				}
				return out
			}
			assert.Equal(t, []string{"db01", "web01"}, names("--group", "production"))
			assert.Equal(t, []string{"web01"}, names("--group", "eu"))
			assert.Equal(t, []string{"web01"}, names("--group", "webservers"))
			assert.Equal(t, []string{"bastion"}, names("--group", ""))

			r = ok(t, "--state", db, "host", "show", "web01")
			assert.Regexp(t, `(?m)^group\s+webservers$`, r.stdout)
			assert.Regexp(t, `(?m)^groups\s+production,eu$`, r.stdout)
			r = ok(t, "--state", db, "host", "show", "web01", "-o", "json")
			var h state.HostState
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &h))
			assert.Equal(t, []string{"webservers", "production", "eu"}, h.AllGroups())
			assert.Contains(t, r.stdout, `"groups": [`)
			r = ok(t, "--state", db, "host", "show", "bastion")
			assert.Regexp(t, `(?m)^group\s+-$`, r.stdout)
			assert.NotRegexp(t, `(?m)^groups`, r.stdout)

			r = ok(t, "--state", db, "inventory", "--list")
			var inv map[string]any
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &inv))
			hostsOf := func(g string) any { return inv[g].(map[string]any)["hosts"] }
			assert.Equal(t, []any{"db01", "web01"}, hostsOf("production"))
			assert.Equal(t, []any{"web01"}, hostsOf("eu"))
			assert.Equal(t, []any{"web01"}, hostsOf("webservers"))
			assert.Equal(t, []any{"bastion"}, hostsOf("ungrouped"))

			// One group again replaces them all.
			ok(t, "--state", db, "host", "add", "web01", "--address", "192.0.2.10", "--group", "webservers")
			r = ok(t, "--state", db, "host", "show", "web01", "-o", "json")
			assert.NotContains(t, r.stdout, `"groups"`)
		})
	}
}

func TestHosts_RepeatedGroupIsAUsageError(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	r := ftl(t, "--state", db, "host", "add", "web01", "--address", "192.0.2.10", "--group", "web", "--group", "prod", "--group", "web")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, `groups.1: group "web" listed twice`)
	assert.NoFileExists(t, db, "nothing written")
}
