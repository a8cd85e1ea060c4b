package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/internal/etcdproc"
)

// These tests run the CLI against real etcd server processes (Debian's
// etcd-server); they skip without one, unless FTLSTATE_REQUIRE_ETCD=1.

// clearEtcdEnv empties the etcd settings of the environment for the test.
func clearEtcdEnv(t *testing.T) {
	for _, v := range []string{"CACERT", "CERT", "KEY", "USER", "PASSWORD"} {
		t.Setenv("FTLSTATE_ETCD_"+v, "")
		t.Setenv("ETCDCTL_"+v, "")
	}
}

// TestEtcdReal_TLSAndAuth: a member that requires client certificates
// signed by its CA, with authentication enabled (user ftl may use
// /ftl/), reached from the CLI by flags, by $FTLSTATE_ETCD_* and by
// etcdctl's $ETCDCTL_*, in that order of precedence; and every way of
// getting it wrong fails in one line saying which, within the timeout.
func TestEtcdReal_TLSAndAuth(t *testing.T) {
	clearEtcdEnv(t)
	x := etcdproc.NewTLS(t, "nobody") // the certificate's name is no etcd user
	c := etcdproc.Start(t, etcdproc.Options{TLS: x, ClientCertAuth: true})
	require.NoError(t, c.EnableAuth("rootpw", "ftl", "ftlpw", "/ftl/"))
	ep := c.Endpoints()[0]
	store := "etcds://" + ep + "/ftl/tls"
	tlsFlags := []string{"--etcd-cacert", x.CA, "--etcd-cert", x.ClientCert, "--etcd-key", x.ClientKey}
	with := func(args ...string) []string {
		return append(append([]string{"--state", store}, tlsFlags...), args...)
	}

	r := ok(t, with("--etcd-user", "ftl:ftlpw", "host", "add", "web01", "--address", "192.0.2.1")...)
	assert.Contains(t, r.stderr, "web01")
	r = ok(t, with("--etcd-user", "ftl", "--etcd-password", "ftlpw", "hosts", "-o", "json")...)
	assert.Contains(t, r.stdout, `"web01"`)
	r = ok(t, with("--etcd-user", "ftl:ftlpw", "check")...)
	assert.Contains(t, r.stdout, "lock: "+store+": free")
	assert.Contains(t, r.stdout, "ok: "+store+": 1 hosts")
	// etcd:// with TLS files is TLS too.
	ok(t, "--state", "etcd://"+ep+"/ftl/tls", "--etcd-cacert", x.CA, "--etcd-cert", x.ClientCert, "--etcd-key", x.ClientKey, "--etcd-user", "ftl:ftlpw", "hosts")

	// The environment: etcdctl's variables, then ours over them, then
	// flags over both.
	t.Setenv("ETCDCTL_CACERT", x.CA)
	t.Setenv("ETCDCTL_CERT", x.ClientCert)
	t.Setenv("ETCDCTL_KEY", x.ClientKey)
	t.Setenv("ETCDCTL_USER", "ftl:ftlpw")
	ok(t, "--state", store, "host", "add", "web02", "--address", "192.0.2.9")
	t.Setenv("ETCDCTL_USER", "ftl:wrong")
	t.Setenv("FTLSTATE_ETCD_USER", "ftl")
	t.Setenv("FTLSTATE_ETCD_PASSWORD", "ftlpw")
	ok(t, "--state", store, "host", "add", "web03", "--address", "192.0.2.9")
	t.Setenv("FTLSTATE_ETCD_PASSWORD", "wrong")
	ok(t, "--state", store, "--etcd-password", "ftlpw", "host", "add", "web04", "--address", "192.0.2.9")
	t.Setenv("FTLSTATE_ETCD_CACERT", x.OtherCA)
	r = ftl(t, "--state", store, "--etcd-password", "ftlpw", "hosts")
	assert.Equal(t, 1, r.code, "$FTLSTATE_ETCD_CACERT is used over $ETCDCTL_CACERT")
	ok(t, "--state", store, "--etcd-password", "ftlpw", "--etcd-cacert", x.CA, "hosts")
	clearEtcdEnv(t)

	// Each mistake: one line on stderr, exit 1 (2 for a malformed
	// command), well within the request timeout (5s).
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"an unknown CA", []string{"--state", store, "--etcd-cacert", x.OtherCA, "--etcd-cert", x.ClientCert, "--etcd-key", x.ClientKey, "--etcd-user", "ftl:ftlpw", "hosts"}, 1,
			[]string{"not signed by a CA the client trusts", "check --etcd-cacert"}},
		{"no client certificate", []string{"--state", store, "--etcd-cacert", x.CA, "--etcd-user", "ftl:ftlpw", "hosts"}, 1,
			[]string{"requires a client certificate", "give --etcd-cert and --etcd-key"}},
		{"a client certificate of another CA", []string{"--state", store, "--etcd-cacert", x.CA, "--etcd-cert", x.OtherClientCert, "--etcd-key", x.OtherClientKey, "--etcd-user", "ftl:ftlpw", "hosts"}, 1,
			[]string{"rejected the client certificate", "check --etcd-cert and --etcd-key"}},
		{"a wrong password", with("--etcd-user", "ftl:nope", "hosts"), 1,
			[]string{`refused user "ftl": wrong user name or password`, "check --etcd-user"}},
		{"no user", with("hosts"), 1,
			[]string{"no user name was given", "give --etcd-user"}},
		{"another user's prefix", []string{"--state", "etcds://" + ep + "/other", "--etcd-cacert", x.CA, "--etcd-cert", x.ClientCert, "--etcd-key", x.ClientKey, "--etcd-user", "ftl:ftlpw", "host", "add", "x", "--address", "192.0.2.9"}, 1,
			[]string{`denied user "ftl" access to the keys under /other`}},
		{"no TLS", []string{"--state", "etcd://" + ep + "/ftl/tls", "--etcd-user", "ftl:ftlpw", "hosts"}, 1,
			[]string{"requires TLS", "use etcds://"}},
		{"https inside etcd://", []string{"--state", "etcd://https://" + ep + "/ftl/tls", "hosts"}, 2,
			[]string{"a scheme inside the URL", "etcds://"}},
		{"a user without a password", with("--etcd-user", "ftl", "hosts"), 2,
			[]string{`etcd user "ftl" (--etcd-user) has no password`}},
		{"a key without its certificate", []string{"--state", store, "--etcd-key", x.ClientKey, "hosts"}, 2,
			[]string{"without its certificate"}},
	} {
		start := time.Now()
		r := ftl(t, tc.args...)
		took := time.Since(start)
		t.Logf("%s (%s): %s", tc.name, took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
		assert.Equal(t, tc.code, r.code, tc.name)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if tc.code == 2 {
			lines = lines[:1] // and the usage hint
		}
		assert.Len(t, lines, 1, "%s: one line", tc.name)
		for _, w := range tc.want {
			assert.Contains(t, r.stderr, w, tc.name)
		}
		assert.NotContains(t, r.stderr, "ftlpw", "%s: no password in messages", tc.name)
		assert.Less(t, took, etcdbackend.DefaultRequestTimeout, "%s: within the timeout", tc.name)
	}
}

// TestEtcdReal_LeaseAndLock: a holder of the lock is named with its
// command, by check too with its lease; killed with SIGKILL, its lease
// holds the lock until it expires, which the error and check say, and a
// writer with --lock-timeout gets the store once it has.
func TestEtcdReal_LeaseAndLock(t *testing.T) {
	clearEtcdEnv(t)
	c := etcdproc.Start(t, etcdproc.Options{})
	store := "etcd://" + c.Endpoints()[0] + "/ftl/lease"
	ok(t, "--state", store, "host", "add", "web01", "--address", "192.0.2.1")

	holder := startHolder(t, store) // a lease of 3s
	pid := strconv.Itoa(holder.Process.Pid)
	r := ftl(t, "--state", store, "host", "add", "web02", "--address", "192.0.2.9")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "/ftl/lease: locked by pid "+pid+" (")
	assert.Contains(t, r.stderr, "retry with --lock-timeout 30s")
	r = ok(t, "--state", store, "check", "-o", "json")
	var rep checkReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.NotNil(t, rep.Lock)
	assert.True(t, rep.Lock.Held)
	require.NotNil(t, rep.Lock.Holder)
	assert.Equal(t, holder.Process.Pid, rep.Lock.Holder.PID)
	assert.False(t, rep.Lock.HolderGone)
	assert.Equal(t, int64(3), rep.Lock.LeaseTTL)
	assert.LessOrEqual(t, rep.Lock.LeaseExpiresWithin, int64(4))
	r = ok(t, "--state", store, "check")
	assert.Regexp(t, `lock: .*: held by pid `+pid+` \(.*\) on host .* since .*; its lease \(TTL 3s\) expires within [1-4]s unless renewed`, r.stdout)

	require.NoError(t, holder.Process.Signal(syscall.SIGKILL))
	holder.Wait()
	r = ftl(t, "--state", store, "host", "add", "web02", "--address", "192.0.2.9")
	assert.Equal(t, 1, r.code)
	t.Logf("after kill -9: %s", strings.TrimSpace(r.stderr))
	assert.Regexp(t, `/ftl/lease: locked: held by pid `+pid+`'s lease, which expires within [1-4]s; retry with --lock-timeout [3-6]s`, r.stderr)
	r = ok(t, "--state", store, "check")
	assert.Regexp(t, `lock: .*: held by pid `+pid+`'s lease, which expires within [1-4]s \(pid `+pid+` on host .* is gone\)`, r.stdout)
	start := time.Now()
	ok(t, "--state", store, "--lock-timeout", "10s", "host", "add", "web02", "--address", "192.0.2.9")
	assert.Less(t, time.Since(start), 6*time.Second, "once the lease expires")
	r = ok(t, "--state", store, "check")
	assert.Contains(t, r.stdout, "lock: "+store+": free")
}

// TestEtcdFlags: where each etcd setting comes from, and the errors of
// bad ones (no server needed).
func TestEtcdFlags(t *testing.T) {
	clearEtcdEnv(t)
	x := etcdproc.NewTLS(t, "client")
	config := func(args ...string) (etcdbackend.Config, error) {
		a := newApp(nil, nil)
		root := a.rootCommand()
		require.NoError(t, root.ParseFlags(args))
		return a.etcd.config("etcd://127.0.0.1:2379/ftl")
	}
	cfg, err := config()
	require.NoError(t, err)
	assert.Nil(t, cfg.TLS, "plain etcd://")
	assert.Equal(t, etcdbackend.DefaultSessionTTL, cfg.SessionTTL)
	assert.Equal(t, 15*time.Second, cfg.SessionTTL, "the default lease")
	cfg, err = config("--etcd-lease-ttl", "7s")
	require.NoError(t, err)
	assert.Equal(t, 7*time.Second, cfg.SessionTTL)
	_, err = config("--etcd-lease-ttl", "500ms")
	assert.ErrorContains(t, err, "at least 1s")

	cfg, err = config("--etcd-cacert", x.CA)
	require.NoError(t, err)
	require.NotNil(t, cfg.TLS, "a CA implies TLS")
	assert.NotNil(t, cfg.TLS.RootCAs)

	t.Setenv("ETCDCTL_USER", "bob:b")
	cfg, err = config()
	require.NoError(t, err)
	assert.Equal(t, [2]string{"bob", "b"}, [2]string{cfg.Username, cfg.Password})
	t.Setenv("FTLSTATE_ETCD_PASSWORD", "f")
	cfg, err = config()
	require.NoError(t, err)
	assert.Equal(t, "f", cfg.Password, "$FTLSTATE_ over $ETCDCTL_")
	t.Setenv("FTLSTATE_ETCD_USER", "carol:c")
	cfg, err = config()
	require.NoError(t, err)
	assert.Equal(t, [2]string{"carol", "f"}, [2]string{cfg.Username, cfg.Password}, "the password variable wins a tie")
	cfg, err = config("--etcd-user", "dave:d")
	require.NoError(t, err)
	assert.Equal(t, [2]string{"dave", "d"}, [2]string{cfg.Username, cfg.Password}, "flags over everything")
	_, err = config("--etcd-user", "dave:d", "--etcd-password", "e")
	assert.ErrorContains(t, err, "given twice")
	clearEtcdEnv(t)
	_, err = config("--etcd-password", "p")
	assert.ErrorContains(t, err, "without a user")
	_, err = config("--etcd-cacert", "/nonexistent/ca.pem")
	assert.ErrorContains(t, err, "--etcd-cacert")
	assert.ErrorContains(t, err, "/nonexistent/ca.pem")
	_, err = config("--etcd-cacert", x.ClientKey)
	assert.ErrorContains(t, err, "no PEM certificate")
	_, err = config("--etcd-cert", x.ClientCert)
	assert.ErrorContains(t, err, "without its key")
	_, err = config("--etcd-cert", x.ClientCert, "--etcd-key", x.OtherClientKey)
	assert.ErrorContains(t, err, "etcd client certificate (--etcd-cert, --etcd-key)")
	assert.Contains(t, fmt.Sprint(err), "private key does not match")
}
