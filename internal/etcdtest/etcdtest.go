// Package etcdtest runs real etcd servers (go.etcd.io/etcd/server/v3/embed)
// inside a test process, on loopback, for the tests of etcdbackend and of
// the CLI. It is not a mock: each member is a complete etcd server with its
// own data directory, write-ahead log and fsyncs. Only _test.go files
// import it (internal/layers checks), so that no program built on the
// library compiles the etcd server.
//
// Ports are picked at random among the free ones and data lives in a
// temporary directory removed by Close. Clients reach each member through
// a loopback TCP proxy, so that Stop cuts their connections at once, as
// the crash of a machine would. Servers log nothing unless
// ETCDTEST_LOG is set in the environment (to "debug", "info", "warn" or
// "error").
package etcdtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Options configure Start. The zero value starts one member with etcd's
// defaults.
type Options struct {
	// Members is the number of members of the cluster; 0 means 1.
	Members int
	// NoFsync runs the members without fsync (etcd's --unsafe-no-fsync):
	// faster, and fine for tests that do not stop members.
	NoFsync bool
	// MaxTxnOps and MaxRequestBytes override etcd's limits (128
	// operations and 1.5 MiB per request) when not zero.
	MaxTxnOps       uint
	MaxRequestBytes uint
	// ReadyTimeout bounds how long Start waits for the cluster to elect a
	// leader; 0 means 30s.
	ReadyTimeout time.Duration
}

// Cluster is a running set of embedded etcd members.
type Cluster struct {
	dir     string
	members []*member
}

type member struct {
	cfg   *embed.Config
	proxy *proxy

	mu sync.Mutex // guards the fields below
	// etcd is the running server; nil while the member is stopped.
	etcd *embed.Etcd
	// closed is closed once the last stopped server has released its
	// ports and data; nil before the first Stop.
	closed chan struct{}
}

// Start starts a cluster as opts describes and waits until it has a
// leader and every member serves clients.
func Start(opts Options) (*Cluster, error) {
	n := max(opts.Members, 1)
	dir, err := os.MkdirTemp("", "etcdtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	ports, err := freePorts(3 * n)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var initial []string
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[3*i])}
		client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[3*i+1])}
		cfg := embed.NewConfig()
		cfg.Name = name
		cfg.Dir = filepath.Join(dir, name)
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
		cfg.InitialClusterToken = filepath.Base(dir)
		cfg.UnsafeNoFsync = opts.NoFsync
		if opts.MaxTxnOps > 0 {
			cfg.MaxTxnOps = opts.MaxTxnOps
		}
		if opts.MaxRequestBytes > 0 {
			cfg.MaxRequestBytes = opts.MaxRequestBytes
		}
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(logger())
		px, err := newProxy(fmt.Sprintf("127.0.0.1:%d", ports[3*i+2]), client.Host)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.members = append(c.members, &member{cfg: cfg, proxy: px})
		initial = append(initial, name+"="+peer.String())
	}
	for _, m := range c.members {
		m.cfg.InitialCluster = strings.Join(initial, ",")
	}
	// Members of a new cluster wait for each other: start them together.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range c.members {
		wg.Go(func() { errs[i] = c.start(i, opts.ReadyTimeout) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// New starts a cluster for the test t and closes it when the test ends.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c, err := Start(opts)
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func logger() *zap.Logger {
	level := os.Getenv("ETCDTEST_LOG")
	if level == "" {
		return zap.NewNop()
	}
	cfg := zap.NewDevelopmentConfig()
	cfg.DisableStacktrace = true
	if l, err := zap.ParseAtomicLevel(level); err == nil {
		cfg.Level = l
	}
	lg, err := cfg.Build()
	if err != nil {
		return zap.NewNop()
	}
	return lg
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

// start starts member i and waits until it is ready.
func (c *Cluster) start(i int, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd != nil {
		return nil
	}
	if m.closed != nil {
		<-m.closed
	}
	e, err := embed.StartEtcd(m.cfg)
	if err != nil {
		return fmt.Errorf("start member %s: %w", m.cfg.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("member %s: %w", m.cfg.Name, err)
	case <-time.After(timeout):
		e.Server.HardStop()
		e.Close()
		return fmt.Errorf("member %s not ready after %s", m.cfg.Name, timeout)
	}
	m.etcd = e
	m.proxy.setUp(true)
	return nil
}

// Endpoints returns the client addresses (host:port) of every member,
// running or not.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i := range c.members {
		eps[i] = c.Endpoint(i)
	}
	return eps
}

// Endpoint returns the client address (host:port) of member i: its
// proxy's.
func (c *Cluster) Endpoint(i int) string { return c.members[i].proxy.addr }

// Stop stops member i at once, as a crash of its machine would (its data
// stays); Restart brings it back. It returns as soon as the member has
// left raft; closing its client connections goes on in the background
// (etcd waits up to its request timeout, about 7s, for open streams to
// end), and Restart and Close wait for that.
func (c *Cluster) Stop(i int) {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd == nil {
		return
	}
	e := m.etcd
	m.etcd = nil
	m.proxy.setUp(false)
	e.Server.HardStop()
	closed := make(chan struct{})
	m.closed = closed
	go func() {
		defer close(closed)
		e.Close()
	}()
}

// Restart starts member i again, on its data, after Stop. It returns once
// the member serves clients, which needs a quorum of members running.
func (c *Cluster) Restart(i int) error { return c.start(i, 0) }

// RestartAsync starts member i again without waiting for a quorum; the
// returned channel gets the outcome.
func (c *Cluster) RestartAsync(i int) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- c.Restart(i) }()
	return ch
}

// Close stops every member and removes their data.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for i := range c.members {
		wg.Go(func() { c.Stop(i) })
	}
	wg.Wait()
	for _, m := range c.members {
		m.mu.Lock()
		if m.closed != nil {
			<-m.closed
		}
		m.mu.Unlock()
		m.proxy.close()
	}
	os.RemoveAll(c.dir)
}

// Leader returns the index of the member that running members see as
// leader, or -1 when they see none.
func (c *Cluster) Leader() int {
	for _, m := range c.members {
		m.mu.Lock()
		e := m.etcd
		m.mu.Unlock()
		if e == nil {
			continue
		}
		lead := e.Server.Leader()
		for j, o := range c.members {
			o.mu.Lock()
			oe := o.etcd
			o.mu.Unlock()
			if oe != nil && oe.Server.MemberID() == lead {
				return j
			}
		}
	}
	return -1
}

// proxy forwards TCP connections from addr to a member's client port
// while the member is up; setUp(false) cuts every connection and refuses
// new ones.
type proxy struct {
	addr, target string
	l            net.Listener

	mu sync.Mutex // guards the fields below
	up bool
	// conns are the open connections, both ends.
	conns map[net.Conn]struct{}
}

func newProxy(addr, target string) (*proxy, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &proxy{addr: addr, target: target, l: l, conns: make(map[net.Conn]struct{})}
	go p.serve()
	return p, nil
}

func (p *proxy) serve() {
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		go p.forward(in)
	}
}

func (p *proxy) forward(in net.Conn) {
	p.mu.Lock()
	up := p.up
	p.mu.Unlock()
	var out net.Conn
	var err error
	if up {
		out, err = net.DialTimeout("tcp", p.target, 5*time.Second)
	}
	if !up || err != nil {
		abort(in)
		return
	}
	p.mu.Lock()
	if !p.up {
		p.mu.Unlock()
		abort(in)
		out.Close()
		return
	}
	p.conns[in], p.conns[out] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	in.Close()
	out.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, in)
	delete(p.conns, out)
	p.mu.Unlock()
}

// abort closes c with a reset, as a machine that is gone would.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (p *proxy) setUp(up bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = up
	if !up {
		for c := range p.conns {
			abort(c)
		}
	}
}

func (p *proxy) close() {
	p.l.Close()
	p.setUp(false)
}
