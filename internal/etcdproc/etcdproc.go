// Package etcdproc runs real etcd server processes (the etcd binary, such
// as Debian's etcd-server package) on loopback, for tests that need the
// server users run rather than the embedded one of etcdtest: members that
// can be killed with SIGKILL, paused with SIGSTOP, restarted on their
// data, and served over TLS with client certificates and authentication.
//
// Tests call Need first: it returns the binary, or skips the test with a
// message when there is none, unless FTLSTATE_REQUIRE_ETCD=1 (CI sets it),
// which makes a missing binary a failure. The binary is
// $FTLSTATE_ETCD_BINARY, else etcd on PATH.
//
// Every member listens on 127.0.0.1 only, on ports that were free when the
// cluster started, with its data and log in a temporary directory. Start
// registers a cleanup that kills every process it started (also when the
// test fails or a member is paused) and prints the tail of each member's
// log when the test failed. A member also dies with the test process
// (PR_SET_PDEATHSIG), so that an aborted test run leaves no server behind.
package etcdproc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// RequireEnv names the environment variable that, set to 1, makes a
// missing etcd binary fail the tests that need it instead of skipping them.
const RequireEnv = "FTLSTATE_REQUIRE_ETCD"

// BinaryEnv names the environment variable that points at the etcd binary.
const BinaryEnv = "FTLSTATE_ETCD_BINARY"

// Binary returns the path of the etcd binary: $FTLSTATE_ETCD_BINARY, else
// etcd on PATH.
func Binary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("etcdproc: $%s: %w", BinaryEnv, err)
		}
		return p, nil
	}
	p, err := exec.LookPath("etcd")
	if err != nil {
		return "", fmt.Errorf("etcdproc: no etcd binary on PATH (apt-get install etcd-server, or set $%s): %w", BinaryEnv, err)
	}
	return p, nil
}

// Need returns the etcd binary, or skips t saying why; with
// FTLSTATE_REQUIRE_ETCD=1 a missing binary fails t instead.
func Need(t testing.TB) string {
	t.Helper()
	p, err := Binary()
	if err == nil {
		return p
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%v (%s=1: the real-server tests must run)", err, RequireEnv)
	}
	t.Skipf("skipped: %v", err)
	return ""
}

// Options configure Start.
type Options struct {
	// Members is the number of members; 0 means 1.
	Members int
	// TLS, when not nil, serves clients over TLS with its server
	// certificate (peers still talk plain HTTP on loopback).
	TLS *TLS
	// ClientCertAuth makes members require a client certificate signed by
	// TLS's CA (etcd's --client-cert-auth). It needs TLS.
	ClientCertAuth bool
	// Args are extra flags for every member (e.g. "--max-txn-ops=1024").
	Args []string
	// ReadyTimeout bounds how long Start waits for every member to serve;
	// 0 means 60s.
	ReadyTimeout time.Duration
}

// Cluster is a set of etcd member processes.
type Cluster struct {
	t       testing.TB
	bin     string
	dir     string
	opts    Options
	members []*Member

	mu sync.Mutex // guards the fields below
	// user and password authenticate Client once EnableAuth has run.
	user, password string
}

// Member is one etcd process of a Cluster.
type Member struct {
	Name string
	// Client is the member's client address (host:port); ClientURL the
	// same with its scheme.
	Client, ClientURL string
	args              []string
	log               string

	mu sync.Mutex // guards the fields below
	// cmd is the running process; nil while the member is down.
	cmd *exec.Cmd
	// exited is closed when cmd has been waited for.
	exited chan struct{}
}

// Start starts a cluster as opts describes, registers its cleanup on t,
// and returns once every member serves clients. It skips (or fails) t
// when there is no etcd binary (see Need).
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	bin := Need(t)
	n := max(opts.Members, 1)
	if opts.ClientCertAuth && opts.TLS == nil {
		t.Fatal("etcdproc: ClientCertAuth needs TLS")
	}
	dir := t.TempDir()
	c := &Cluster{t: t, bin: bin, dir: dir, opts: opts}
	t.Cleanup(c.close)
	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatalf("etcdproc: %v", err)
	}
	scheme := "http"
	if opts.TLS != nil {
		scheme = "https"
	}
	var initial []string
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		client := fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])
		m := &Member{Name: name, Client: client, ClientURL: scheme + "://" + client, log: filepath.Join(dir, name+".log")}
		m.args = []string{
			"--name", name,
			"--data-dir", filepath.Join(dir, name),
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--initial-cluster-token", filepath.Base(dir),
			"--initial-cluster-state", "new",
			"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
		}
		if opts.TLS != nil {
			m.args = append(m.args, "--cert-file", opts.TLS.ServerCert, "--key-file", opts.TLS.ServerKey)
			if opts.ClientCertAuth {
				m.args = append(m.args, "--client-cert-auth", "--trusted-ca-file", opts.TLS.CA)
			}
		}
		m.args = append(m.args, opts.Args...)
		c.members = append(c.members, m)
		initial = append(initial, name+"="+peer)
	}
	for _, m := range c.members {
		m.args = append(m.args, "--initial-cluster", strings.Join(initial, ","))
		if err := c.start(m); err != nil {
			t.Fatalf("etcdproc: %v", err)
		}
	}
	timeout := opts.ReadyTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	for i := range c.members {
		if err := c.WaitReady(i, timeout); err != nil {
			t.Fatalf("etcdproc: %v", err)
		}
	}
	return c
}

// freePorts returns n loopback TCP ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

func (c *Cluster) start(m *Member) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return nil
	}
	log, err := os.OpenFile(m.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(c.bin, m.args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start member %s: %w", m.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	m.cmd, m.exited = cmd, exited
	return nil
}

// Len returns the number of members.
func (c *Cluster) Len() int { return len(c.members) }

// Member returns member i.
func (c *Cluster) Member(i int) *Member { return c.members[i] }

// Endpoints returns every member's client address (host:port).
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.Client
	}
	return eps
}

// Dir is the cluster's temporary directory (removed when the test ends).
func (c *Cluster) Dir() string { return c.dir }

// PID returns the process id of member i, 0 while it is down.
func (c *Cluster) PID(i int) int {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Kill kills member i with SIGKILL, as a crash of its machine would, and
// waits for it to exit. Its data stays; Restart brings it back.
func (c *Cluster) Kill(i int) {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
}

// Pause stops member i with SIGSTOP: its connections stay open and
// unanswered, as with a machine cut off from the network. Resume undoes it.
func (c *Cluster) Pause(i int) { c.signal(i, syscall.SIGSTOP) }

// Resume continues member i after Pause.
func (c *Cluster) Resume(i int) { c.signal(i, syscall.SIGCONT) }

func (c *Cluster) signal(i int, sig syscall.Signal) {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		m.cmd.Process.Signal(sig)
	}
}

// Restart starts member i again on its data after Kill; it does not wait
// for it to serve (a member alone cannot, without a quorum): see
// WaitReady.
func (c *Cluster) Restart(i int) error { return c.start(c.members[i]) }

// WaitReady waits until member i answers a linearizable read.
func (c *Cluster) WaitReady(i int, timeout time.Duration) error {
	m := c.members[i]
	cli, err := c.client([]string{m.Client})
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = cli.Get(ctx, "/etcdproc/ready")
		cancel()
		if err == nil {
			return nil
		}
		m.mu.Lock()
		up := m.cmd != nil
		exited := m.exited
		m.mu.Unlock()
		if up {
			select {
			case <-exited:
				return fmt.Errorf("member %s exited: %s", m.Name, c.tail(m))
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("member %s not ready after %s: %v; log: %s", m.Name, timeout, err, c.tail(m))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Leader returns the index of the member the running members see as their
// leader, or -1 when none answers or none sees one.
func (c *Cluster) Leader() int {
	cli, err := c.client(c.Endpoints())
	if err != nil {
		return -1
	}
	defer cli.Close()
	for _, m := range c.members {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cli.Status(ctx, m.Client)
		cancel()
		if err != nil || st.Leader == 0 {
			continue
		}
		for j, o := range c.members {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			ost, err := cli.Status(ctx, o.Client)
			cancel()
			if err == nil && ost.Header.MemberId == st.Leader {
				return j
			}
		}
	}
	return -1
}

// Client returns a client of the whole cluster (with the client
// certificate when the cluster has TLS, and the root user once EnableAuth
// ran), closed when the test ends.
func (c *Cluster) Client() *clientv3.Client {
	c.t.Helper()
	cli, err := c.client(c.Endpoints())
	if err != nil {
		c.t.Fatalf("etcdproc: %v", err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

func (c *Cluster) client(endpoints []string) (*clientv3.Client, error) {
	cfg := clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if c.opts.TLS != nil {
		tc, err := c.opts.TLS.ClientConfig(c.opts.TLS.ClientCert, c.opts.TLS.ClientKey)
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	c.mu.Lock()
	cfg.Username, cfg.Password = c.user, c.password
	c.mu.Unlock()
	return clientv3.New(cfg)
}

// EnableAuth creates the root user (password rootPassword) and the user
// name with password, whose role may read and write the keys under
// prefix, and enables authentication. Client authenticates as root from
// then on.
func (c *Cluster) EnableAuth(rootPassword, name, password, prefix string) error {
	cli, err := c.client(c.Endpoints())
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	steps := []func() error{
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, "root", rootPassword); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, name); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, name, prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, name, password); return err },
		func() error { _, err := cli.UserGrantRole(ctx, name, name); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("etcdproc: enable auth (step %d): %w", i+1, err)
		}
	}
	c.mu.Lock()
	c.user, c.password = "root", rootPassword
	c.mu.Unlock()
	return nil
}

// tail returns the end of m's log.
func (c *Cluster) tail(m *Member) string {
	b, _ := os.ReadFile(m.log)
	if len(b) > 4<<10 {
		b = b[len(b)-4<<10:]
	}
	return string(bytes.TrimSpace(b))
}

// close kills every member (paused ones too) and, when the test failed,
// logs the end of each member's log.
func (c *Cluster) close() {
	for i := range c.members {
		c.Kill(i)
	}
	if c.t.Failed() {
		for _, m := range c.members {
			c.t.Logf("etcd member %s log (end):\n%s", m.Name, c.tail(m))
		}
	}
}
