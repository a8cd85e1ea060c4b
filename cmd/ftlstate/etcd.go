package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/state"
)

// The forms of --state that name a store on an etcd cluster: etcd:// (TLS
// when a CA, certificate or key is given) and etcds:// (always TLS).
const (
	etcdScheme    = "etcd://"
	etcdTLSScheme = "etcds://"
)

// isEtcd reports whether path names an etcd store.
func isEtcd(path string) bool {
	return strings.HasPrefix(path, etcdScheme) || strings.HasPrefix(path, etcdTLSScheme)
}

// etcdOptions are the global flags of etcd stores. Each setting comes from
// its flag, else from $FTLSTATE_ETCD_*, else from etcdctl's $ETCDCTL_*.
type etcdOptions struct {
	flags *pflag.FlagSet
	// cacert, cert, key, user and password are the flags' values.
	cacert, cert, key, user, password string
	// leaseTTL is --etcd-lease-ttl.
	leaseTTL time.Duration
}

// addEtcdFlags defines the etcd flags on pf.
func (o *etcdOptions) addFlags(pf *pflag.FlagSet) {
	o.flags = pf
	pf.StringVar(&o.cacert, "etcd-cacert", "", "etcd: the CA certificate (PEM) that signed the members' certificates; implies TLS ($FTLSTATE_ETCD_CACERT, $ETCDCTL_CACERT)")
	pf.StringVar(&o.cert, "etcd-cert", "", "etcd: the client certificate (PEM), with --etcd-key; implies TLS ($FTLSTATE_ETCD_CERT, $ETCDCTL_CERT)")
	pf.StringVar(&o.key, "etcd-key", "", "etcd: the client certificate's private key (PEM); implies TLS ($FTLSTATE_ETCD_KEY, $ETCDCTL_KEY)")
	pf.StringVar(&o.user, "etcd-user", "", "etcd: the user, as NAME or NAME:PASSWORD ($FTLSTATE_ETCD_USER, $ETCDCTL_USER)")
	pf.StringVar(&o.password, "etcd-password", "", "etcd: the user's password; prefer $FTLSTATE_ETCD_PASSWORD (or $ETCDCTL_PASSWORD), which other users cannot see in the process list")
	pf.DurationVar(&o.leaseTTL, "etcd-lease-ttl", etcdbackend.DefaultSessionTTL, "etcd: the lock's lease: a writer that dies holding the store blocks the next for up to this long, and one paused or cut off for longer loses the lock (whole seconds)")
}

// setting returns the value of flag name, else of $FTLSTATE_ETCD_<env>,
// else of $ETCDCTL_<env>, and where it came from.
func (o *etcdOptions) setting(name, env, value string) (string, string) {
	if f := o.flags.Lookup(name); f != nil && f.Changed {
		return value, "--" + name
	}
	for _, v := range []string{"FTLSTATE_ETCD_" + env, "ETCDCTL_" + env} {
		if s := os.Getenv(v); s != "" {
			return s, "$" + v
		}
	}
	return "", ""
}

// config returns the etcdbackend configuration of the store named by
// path (etcd://... or etcds://...), without the lock timeout and mode.
func (o *etcdOptions) config(path string) (etcdbackend.Config, error) {
	var cfg etcdbackend.Config
	endpoints, prefix, useTLS, err := parseEtcd(path)
	if err != nil {
		return cfg, err
	}
	cfg.Endpoints, cfg.Prefix = endpoints, prefix
	if o.leaseTTL < time.Second {
		return cfg, usageErrorf("--etcd-lease-ttl %s: must be at least 1s (etcd counts leases in whole seconds, and raises short ones to its minimum)", o.leaseTTL)
	}
	cfg.SessionTTL = o.leaseTTL
	cacert, cacertFrom := o.setting("etcd-cacert", "CACERT", o.cacert)
	cert, certFrom := o.setting("etcd-cert", "CERT", o.cert)
	key, keyFrom := o.setting("etcd-key", "KEY", o.key)
	if useTLS || cacert != "" || cert != "" || key != "" {
		if cfg.TLS, err = tlsConfig(cacert, cacertFrom, cert, certFrom, key, keyFrom); err != nil {
			return cfg, err
		}
	}
	user, userFrom := o.setting("etcd-user", "USER", o.user)
	password, passwordFrom := o.setting("etcd-password", "PASSWORD", o.password)
	if name, pw, ok := strings.Cut(user, ":"); ok {
		// The password of NAME:PASSWORD competes with the password's own
		// setting: the higher precedence wins, the password setting on a
		// tie, except that two flags are an error.
		switch r, pr := rank(userFrom), rank(passwordFrom); {
		case r == 0 && pr == 0:
			return cfg, usageErrorf("the etcd password is given twice: --etcd-user NAME:PASSWORD and --etcd-password; give one")
		case r < pr:
			password, passwordFrom = pw, userFrom
		}
		user = name
	}
	switch {
	case user == "" && password != "":
		return cfg, usageErrorf("an etcd password (%s) without a user: give --etcd-user NAME (or $FTLSTATE_ETCD_USER)", passwordFrom)
	case user != "" && password == "":
		return cfg, usageErrorf("etcd user %q (%s) has no password: give --etcd-user NAME:PASSWORD, --etcd-password, or $FTLSTATE_ETCD_PASSWORD", user, userFrom)
	}
	cfg.Username, cfg.Password = user, password
	return cfg, nil
}

// rank orders where a setting came from: a flag (0), $FTLSTATE_ETCD_*
// (1), $ETCDCTL_* (2), nowhere (3).
func rank(from string) int {
	switch {
	case strings.HasPrefix(from, "--"):
		return 0
	case strings.HasPrefix(from, "$FTLSTATE_"):
		return 1
	case strings.HasPrefix(from, "$ETCDCTL_"):
		return 2
	}
	return 3
}

// tlsConfig builds the client's TLS configuration from PEM files (any
// may be empty: no CA means the system's roots); from say where each
// name came from, for the errors.
func tlsConfig(cacert, cacertFrom, cert, certFrom, key, keyFrom string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cacert != "" {
		pem, err := os.ReadFile(cacert)
		if err != nil {
			return nil, fmt.Errorf("etcd CA certificate (%s): %w", cacertFrom, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA certificate (%s): %s: no PEM certificate in it", cacertFrom, cacert)
		}
		cfg.RootCAs = pool
	}
	switch {
	case cert == "" && key == "":
	case cert == "":
		return nil, usageErrorf("an etcd client key (%s) without its certificate: give --etcd-cert FILE too", keyFrom)
	case key == "":
		return nil, usageErrorf("an etcd client certificate (%s) without its key: give --etcd-key FILE too", certFrom)
	default:
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate (%s, %s): %w", certFrom, keyFrom, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// parseEtcd splits etcd://host:port[,host:port...]/prefix (or etcds://)
// into the endpoints and the key prefix ("/prefix", the URL's path);
// useTLS is set for etcds://.
func parseEtcd(s string) (endpoints []string, prefix string, useTLS bool, err error) {
	const form = "etcd://host:port[,host:port...]/prefix, or etcds:// for TLS"
	rest, ok := strings.CutPrefix(s, etcdScheme)
	if !ok {
		if rest, ok = strings.CutPrefix(s, etcdTLSScheme); !ok {
			return nil, "", false, usageErrorf("%s: not an etcd:// or etcds:// store", s)
		}
		useTLS = true
	}
	for _, scheme := range []string{"https://", "http://", "etcd://", "etcds://"} {
		if strings.HasPrefix(rest, scheme) {
			return nil, "", false, usageErrorf("%s: a scheme inside the URL; the form is %s (for https, write etcds://host:port/prefix)", s, form)
		}
	}
	hosts, path, _ := strings.Cut(rest, "/")
	prefix = strings.TrimRight("/"+path, "/")
	if strings.ContainsAny(hosts, "@?#") || strings.ContainsAny(path, "?#") {
		return nil, "", false, usageErrorf("%s: the form is %s (no user, query or fragment: give the user with --etcd-user)", s, form)
	}
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			return nil, "", false, usageErrorf("%s: an empty endpoint; the form is %s", s, form)
		}
		endpoints = append(endpoints, h)
	}
	if prefix == "" {
		return nil, "", false, usageErrorf("%s: a key prefix is needed, as in %s%s/ftl/prod", s, s[:strings.Index(s, "//")+2], hosts)
	}
	return endpoints, prefix, useTLS, nil
}

// etcdAdvice is what the operator can do about an error reaching etcd:
// the flag to check.
func etcdAdvice(err error) string {
	var ce *etcdbackend.ConnectError
	if !errors.As(err, &ce) {
		return ""
	}
	switch ce.Problem {
	case etcdbackend.TLSUnknownCA:
		return "check --etcd-cacert"
	case etcdbackend.TLSBadServerCert:
		return "check the address (--state) and the members' certificates"
	case etcdbackend.TLSClientCertRequired:
		return "give --etcd-cert and --etcd-key"
	case etcdbackend.TLSClientCertRejected:
		return "check --etcd-cert and --etcd-key"
	case etcdbackend.TLSNotSpoken:
		return "use etcd:// without TLS options"
	case etcdbackend.TLSRequired:
		return "use etcds:// (and --etcd-cacert)"
	case etcdbackend.AuthFailed:
		return "check --etcd-user and the password"
	case etcdbackend.AuthRequired:
		return "give --etcd-user NAME (and the password)"
	case etcdbackend.PermissionDenied:
		return "grant the user a role on the prefix (etcdctl role grant-permission)"
	case etcdbackend.NoAnswer, etcdbackend.NoLeader:
		return "wait longer with --lock-timeout, or check the cluster (etcdctl endpoint status)"
	}
	return ""
}

// lockAdvice is what to do about a store locked by another controller.
func lockAdvice(le *state.LockError) string {
	if le.Stale && le.Expires > 0 {
		return fmt.Sprintf("retry with --lock-timeout %s, or once the lease has expired", (le.Expires + 2*time.Second).Round(time.Second))
	}
	return "retry with --lock-timeout 30s"
}
