package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/internal/etcdtest"
	"github.com/go-ftl2/ftlstate/state"
)

// TestEtcd_CommandsOnACluster drives the CLI against a real etcd server
// (embedded, on loopback) through --state etcd://HOST:PORT/PREFIX.
func TestEtcd_CommandsOnACluster(t *testing.T) {
	c := etcdtest.New(t, etcdtest.Options{NoFsync: true})
	store := "etcd://" + c.Endpoint(0) + "/ftl/cli"

	r := ok(t, "--state", store, "host", "add", "web01", "--address", "192.168.1.10", "--group", "webservers", "--var", "http_port=80")
	assert.Contains(t, r.stderr, "added host web01 in "+store)
	ok(t, "--state", store, "resource", "add", "linode:1", "--type", "linode", "--id", "1")

	r = ok(t, "--state", store, "hosts", "-o", "json")
	var hosts []state.HostState
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &hosts))
	require.Len(t, hosts, 1)
	assert.Equal(t, "web01", hosts[0].Name)
	assert.Equal(t, "192.168.1.10", hosts[0].Address)
	assert.Equal(t, map[string]any{"http_port": 80.0}, hosts[0].Vars)

	r = ok(t, "--state", store, "check")
	assert.Contains(t, r.stdout, "ok: "+store+": 1 hosts, 1 resources")

	// Export, then import into another prefix: the same document.
	file := filepath.Join(t.TempDir(), "state.json")
	ok(t, "--state", store, "export", "-o", file)
	other := "etcd://" + c.Endpoint(0) + "/ftl/copy"
	r = ok(t, "--state", other, "import", file)
	assert.Contains(t, r.stderr, "no backup of an etcd store")
	a, b := ok(t, "--state", store, "export").stdout, ok(t, "--state", other, "export").stdout
	var da, db map[string]any
	require.NoError(t, json.Unmarshal([]byte(a), &da))
	require.NoError(t, json.Unmarshal([]byte(b), &db))
	assert.Equal(t, da["hosts"], db["hosts"])
	assert.Equal(t, da["resources"], db["resources"])

	// While another controller holds the store: reads work, writes fail
	// naming the holder.
	holder, err := etcdbackend.Open(context.Background(), etcdbackend.Config{Endpoints: []string{c.Endpoint(0)}, Prefix: "/ftl/cli"})
	require.NoError(t, err)
	defer holder.Close()
	r = ok(t, "--state", store, "hosts", "-o", "json")
	assert.Contains(t, r.stdout, "web01")
	r = ftl(t, "--state", store, "host", "add", "web02", "--address", "192.168.1.11")
	t.Logf("locked: %s", r.stderr)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "/ftl/cli: locked by pid "+strconv.Itoa(os.Getpid()))
	assert.Contains(t, r.stderr, "retry with --lock-timeout")
	require.NoError(t, holder.Close())
	ok(t, "--state", store, "host", "rm", "web01")
	r = ok(t, "--state", store, "hosts", "-o", "json")
	assert.Equal(t, "[]", strings.TrimSpace(r.stdout))

	// A prefix with no store, and malformed URLs.
	r = ftl(t, "--state", "etcd://"+c.Endpoint(0)+"/nothing/here", "hosts")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "no such store")
	for _, bad := range []string{"etcd://" + c.Endpoint(0), "etcd://" + c.Endpoint(0) + "/", "etcd://,/x", "etcd://user:pw@h:1/x"} {
		r = ftl(t, "--state", bad, "hosts")
		assert.Equal(t, 2, r.code, bad)
		assert.Contains(t, r.stderr, "etcd://", bad)
	}
}

func TestParseEtcd(t *testing.T) {
	eps, prefix, useTLS, err := parseEtcd("etcd://10.0.0.1:2379,10.0.0.2:2379/ftl/prod/")
	require.NoError(t, err)
	assert.Equal(t, []string{"10.0.0.1:2379", "10.0.0.2:2379"}, eps)
	assert.Equal(t, "/ftl/prod", prefix)
	assert.False(t, useTLS)
	eps, prefix, useTLS, err = parseEtcd("etcds://etcd-1:2379/ftl")
	require.NoError(t, err)
	assert.Equal(t, []string{"etcd-1:2379"}, eps)
	assert.Equal(t, "/ftl", prefix)
	assert.True(t, useTLS)
	for _, bad := range []string{"etcd://https://h:1/x", "etcd://http://h:1/x", "etcds://https://h:1/x"} {
		_, _, _, err = parseEtcd(bad)
		assert.ErrorContains(t, err, "a scheme inside the URL", bad)
		assert.ErrorContains(t, err, "etcds://", bad)
	}
	assert.Equal(t, kindEtcd, kindOf("etcds://h:1/p"))
	assert.Equal(t, kindEtcd, kindOf("etcd://h:1/p"))
	assert.Equal(t, kindBolt, kindOf("etcd.db"))
}

// TestEtcd_Watch: watch follows an etcd store through etcd's own watch,
// from a serial, and ends when the writer releases the store.
func TestEtcd_Watch(t *testing.T) {
	c := etcdtest.New(t, etcdtest.Options{NoFsync: true})
	store := "etcd://" + c.Endpoint(0) + "/ftl/watch"
	b, err := etcdbackend.Open(context.Background(), etcdbackend.Config{Endpoints: []string{c.Endpoint(0)}, Prefix: "/ftl/watch"})
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)
	var from uint64
	for i := range 5 {
		require.NoError(t, st.AddHost(&state.HostState{Name: "web0" + strconv.Itoa(i), Address: "10.0.0.1", Vars: map[string]any{"token": "t"}}))
		if i == 1 {
			from = st.Metadata().Serial
		}
	}
	done := make(chan result, 1)
	go func() {
		done <- ftl(t, "--state", store, "watch", "--from", strconv.FormatUint(from, 10), "-o", "json")
	}()
	// The watch shows the commits from serial from on, as they come;
	// the writer's Close ends it.
	var r result
	for deadline := time.Now().Add(time.Minute); ; {
		require.True(t, time.Now().Before(deadline), "watch does not end")
		if st != nil {
			time.Sleep(500 * time.Millisecond)
			require.NoError(t, st.Close())
			st = nil
		}
		select {
		case r = <-done:
		case <-time.After(100 * time.Millisecond):
			continue
		}
		break
	}
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "watching "+store+" through etcd's watch, from serial "+strconv.FormatUint(from, 10))
	assert.Contains(t, r.stderr, "released the store")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 4, r.stdout)
	for i, l := range lines {
		assert.Contains(t, l, `"serial":`+strconv.FormatUint(from+uint64(i), 10))
		assert.Contains(t, l, `"web0`+strconv.Itoa(i+1)+`"`)
		assert.Contains(t, l, `"token":"<redacted>"`)
	}
}
