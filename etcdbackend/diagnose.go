package etcdbackend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Problem names what kept a request from the cluster; see ConnectError.
type Problem int

// The problems a ConnectError reports.
const (
	// NoAnswer: no member answered in time (down, unreachable, paused).
	NoAnswer Problem = iota + 1
	// NoLeader: members answer, but the cluster has no leader (it lost
	// its quorum, or is electing one) and cannot serve the request.
	NoLeader
	// TLSUnknownCA: the server's certificate is not signed by a CA the
	// client trusts (Config.TLS's RootCAs).
	TLSUnknownCA
	// TLSBadServerCert: the server's certificate is not valid for its
	// address, or has expired.
	TLSBadServerCert
	// TLSClientCertRequired: the server requires a client certificate
	// and was given none.
	TLSClientCertRequired
	// TLSClientCertRejected: the server refused the client certificate
	// (not signed by a CA it trusts, or expired).
	TLSClientCertRejected
	// TLSNotSpoken: TLS was asked for, but the server speaks plain HTTP.
	TLSNotSpoken
	// TLSRequired: the server speaks TLS, and the client did not.
	TLSRequired
	// AuthFailed: wrong user name or password.
	AuthFailed
	// AuthRequired: the cluster has authentication enabled, and no user
	// was given.
	AuthRequired
	// PermissionDenied: the user may not read or write the prefix.
	PermissionDenied
)

// ConnectError reports why the cluster could not be used: the Problem,
// one line saying it (Error), and the client's own error (Unwrap).
type ConnectError struct {
	Problem Problem
	// Endpoint is the member the problem was seen at, when it is one.
	Endpoint string
	msg      string
	// detail is msg without the endpoint (probes).
	detail string
	err    error
}

func (e *ConnectError) Error() string { return e.msg }

// Unwrap returns the etcd client's error.
func (e *ConnectError) Unwrap() error { return e.err }

// reserve is the part of a time bound kept for finding out, after a
// request failed, why it did.
func (b *Backend) reserve() time.Duration { return min(time.Second, b.cfg.RequestTimeout/5) }

// attempt runs one request with ctx bounded by RequestTimeout and, when
// not zero, deadline; requests need a leader, so that a member without
// one answers at once instead of waiting.
func (b *Backend) attempt(ctx context.Context, deadline time.Time, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	if !deadline.IsZero() {
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, deadline)
		defer c2()
	}
	return fn(clientv3.WithRequireLeader(ctx))
}

// retry runs fn, a request safe to repeat, until it succeeds, fails for a
// reason repeating cannot mend, or its time is up: deadline when not
// zero, else ctx's deadline, else RequestTimeout from now, less the time
// kept to find out what went wrong. The error then says what that was.
func (b *Backend) retry(ctx context.Context, deadline time.Time, what string, fn func(ctx context.Context) error) error {
	end := deadline
	if end.IsZero() {
		var ok bool
		if end, ok = ctx.Deadline(); !ok {
			end = time.Now().Add(b.cfg.RequestTimeout)
		}
	}
	limit := end.Add(-min(b.reserve(), time.Until(end)/5))
	var last error
	for {
		attemptErr := b.attempt(ctx, limit, fn)
		if attemptErr == nil {
			return nil
		}
		last = informative(last, attemptErr)
		err := last
		if !transient(attemptErr) || time.Until(limit) < 10*time.Millisecond || ctx.Err() != nil {
			if !transient(attemptErr) {
				err = attemptErr
			}
			if ce := cause(ctx); ce != nil {
				return b.errorf("%s: %w", what, ce)
			}
			dctx, cancel := context.WithDeadline(context.Background(), end)
			err = b.connectError(dctx, err)
			cancel()
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w (%w)", err, ctx.Err())
			}
			return b.errorf("%s: %w", what, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(100*time.Millisecond, time.Until(limit))):
		}
	}
}

// informative returns the error of the latest attempt, err, unless it is
// only a deadline cut short (the last attempt before a time bound) and an
// earlier attempt, last, said more (no leader, say).
func informative(last, err error) error {
	if last != nil && errors.Is(err, context.DeadlineExceeded) && !errors.Is(last, context.DeadlineExceeded) && transient(last) {
		return last
	}
	return err
}

// watchdog probes the endpoints once after delay, unless the returned
// function (stop) was called first: a problem that waiting will not mend
// (TLS, authentication) is passed to fail, which ends the wait at once
// instead of at its deadline. fail is never called once stop returned;
// the probe itself ends with ctx.
func (b *Backend) watchdog(ctx context.Context, delay time.Duration, fail func(error)) (stop func()) {
	var mu sync.Mutex
	stopped := false
	timer := time.AfterFunc(delay, func() {
		if p := b.probe(ctx); p != nil && p.Problem != NoAnswer && p.Problem != NoLeader {
			mu.Lock()
			defer mu.Unlock()
			if !stopped {
				fail(p)
			}
		}
	})
	return func() {
		timer.Stop()
		mu.Lock()
		stopped = true
		mu.Unlock()
	}
}

// cause returns the *ConnectError that ended ctx (see watchdog), or nil.
func cause(ctx context.Context) *ConnectError {
	var ce *ConnectError
	if errors.As(context.Cause(ctx), &ce) {
		return ce
	}
	return nil
}

// transient reports whether a request that failed with err may succeed
// if sent again soon: no leader yet, no connection, no answer in time.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch {
	case errors.Is(err, rpctypes.ErrNoLeader), errors.Is(err, rpctypes.ErrLeaderChanged),
		errors.Is(err, rpctypes.ErrTimeout), errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail),
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost), errors.Is(err, rpctypes.ErrTimeoutWaitAppliedIndex),
		errors.Is(err, rpctypes.ErrStopped), errors.Is(err, rpctypes.ErrNotCapable), errors.Is(err, rpctypes.ErrTooManyRequests):
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable || ee.Code() == codes.DeadlineExceeded
	}
	if s, ok := status.FromError(err); ok {
		return s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded
	}
	return false
}

// refusedUnapplied reports whether err, returned by a write request, says that
// the request was refused and never applied (as opposed to a timeout or
// a lost connection, after which it may have been applied). A member
// without a leader refuses a request that needs one before proposing it.
func refusedUnapplied(err error) bool {
	if errors.Is(err, rpctypes.ErrNoLeader) {
		return true
	}
	var code codes.Code
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	} else if s, ok := status.FromError(err); ok {
		code = s.Code() // refused by gRPC itself: a message too large
	} else {
		return false
	}
	switch code {
	case codes.InvalidArgument, codes.PermissionDenied, codes.FailedPrecondition,
		codes.ResourceExhausted, codes.OutOfRange, codes.Unauthenticated:
		return true
	}
	return false
}

// connectError explains err, the failure of a request: authentication
// and permission errors as they are; a leaderless cluster as such; and
// for a request that got no answer, what a probe of the endpoints finds
// within ctx (no member answers, a TLS problem). Other errors are
// returned unchanged.
func (b *Backend) connectError(ctx context.Context, err error) error {
	var ce *ConnectError
	if errors.As(err, &ce) {
		return err
	}
	eps := strings.Join(b.cfg.Endpoints, ",")
	user := b.cfg.Username
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed):
		return &ConnectError{Problem: AuthFailed, err: err, msg: fmt.Sprintf("etcd at %s refused user %q: wrong user name or password (authentication failed)", eps, user)}
	case errors.Is(err, rpctypes.ErrUserEmpty), errors.Is(err, rpctypes.ErrInvalidAuthToken) && user == "":
		return &ConnectError{Problem: AuthRequired, err: err, msg: fmt.Sprintf("etcd at %s has authentication enabled, and no user name was given", eps)}
	case errors.Is(err, rpctypes.ErrPermissionDenied) && user == "":
		return &ConnectError{Problem: AuthRequired, err: err, msg: fmt.Sprintf("etcd at %s denied access to the keys under %s, and no user name was given (with authentication enabled, a client certificate's common name is the user): permission denied", eps, b.prefix)}
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		return &ConnectError{Problem: PermissionDenied, err: err, msg: fmt.Sprintf("etcd at %s denied user %q access to the keys under %s: permission denied", eps, user, b.prefix)}
	case errors.Is(err, rpctypes.ErrNoLeader):
		return &ConnectError{Problem: NoLeader, err: err, msg: fmt.Sprintf("the etcd cluster at %s has no leader: fewer than a quorum of its members are up and connected to each other (or it is electing one)", eps)}
	}
	if !transient(err) {
		return err
	}
	if p := b.probe(ctx); p != nil {
		p.err = err
		return p
	}
	var timeout string
	switch {
	case errors.Is(err, rpctypes.ErrTimeout), errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail),
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost), errors.Is(err, rpctypes.ErrLeaderChanged):
		timeout = fmt.Sprintf("etcd at %s could not commit the request in time (%v): the cluster may have lost its quorum or its leader", eps, err)
	default:
		timeout = fmt.Sprintf("etcd at %s did not answer in time: its members accept connections, but the cluster may have lost its quorum or be overloaded", eps)
	}
	return &ConnectError{Problem: NoAnswer, err: err, msg: timeout}
}

// probe connects to every endpoint as the client does (TCP, then TLS
// when configured) and reports what stands in the way: nil when some
// endpoint speaks gRPC's HTTP/2, else the problem seen (the same at
// every endpoint is reported once).
func (b *Backend) probe(ctx context.Context) *ConnectError {
	results := make([]*ConnectError, len(b.cfg.Endpoints))
	var wg sync.WaitGroup
	for i, ep := range b.cfg.Endpoints {
		wg.Go(func() { results[i] = b.probeOne(ctx, ep) })
	}
	wg.Wait()
	for _, r := range results {
		if r == nil {
			return nil
		}
	}
	// Prefer a TLS diagnosis to "no answer": it is what to fix.
	best := results[0]
	for _, r := range results {
		if best.Problem == NoAnswer && r.Problem != NoAnswer {
			best = r
		}
	}
	same := true
	for _, r := range results {
		same = same && r.Problem == best.Problem
	}
	if len(results) == 1 || !same {
		return best
	}
	if best.Problem != NoAnswer {
		return best
	}
	var details []string
	for _, r := range results {
		details = append(details, r.Endpoint+": "+r.detail)
	}
	return &ConnectError{Problem: NoAnswer, msg: "no etcd member answered (" + strings.Join(details, "; ") + ")"}
}

func (b *Backend) probeOne(ctx context.Context, ep string) *ConnectError {
	host, useTLS := ep, b.cfg.TLS != nil
	if u, err := url.Parse(ep); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		host = u.Host
		useTLS = useTLS || u.Scheme == "https"
	}
	fail := func(p Problem, format string, args ...any) *ConnectError {
		e := &ConnectError{Problem: p, Endpoint: host, detail: fmt.Sprintf(format, args...)}
		if p == NoAnswer {
			e.msg = "no etcd member answered (" + host + ": " + e.detail + ")"
		} else {
			e.msg = host + ": " + e.detail
		}
		return e
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil && ctx.Err() == nil {
			return fail(NoAnswer, "%v", oe.Err)
		}
		return fail(NoAnswer, "%v", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if !useTLS {
		if ok, err := plainHTTP2(conn); ok {
			return nil
		} else if err == nil {
			return fail(NoAnswer, "the server does not speak etcd's protocol (gRPC over HTTP/2)")
		} else if isTimeout(err) {
			return fail(NoAnswer, "connected, but no answer")
		}
		if b.speaksTLS(ctx, host) {
			return fail(TLSRequired, "the server requires TLS, and the client does not use it")
		}
		return fail(NoAnswer, "the server closed the connection")
	}
	cfg := b.cfg.TLS.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(host)
	}
	cfg.NextProtos = []string{"h2"}
	tc := tls.Client(conn, cfg)
	err = tc.HandshakeContext(ctx)
	if err == nil {
		// TLS 1.3 servers refuse a client certificate after the
		// handshake: read what the server sends first.
		tc.SetReadDeadline(time.Now().Add(min(300*time.Millisecond, timeLeft(ctx))))
		var one [1]byte
		_, err = tc.Read(one[:])
		if err == nil || isTimeout(err) {
			return nil
		}
	}
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	msg := err.Error()
	switch {
	case errors.As(err, &ua):
		return fail(TLSUnknownCA, "TLS handshake failed: the server's certificate is not signed by a CA the client trusts (%v)", err)
	case errors.As(err, &he), errors.As(err, &ci):
		return fail(TLSBadServerCert, "TLS handshake failed: the server's certificate is not valid (%v)", err)
	case errors.As(err, &rh):
		return fail(TLSNotSpoken, "TLS handshake failed: the server does not speak TLS")
	case strings.Contains(msg, "certificate required"),
		(errors.As(err, &ae) || strings.Contains(msg, "bad certificate")) && len(cfg.Certificates) == 0 && cfg.GetClientCertificate == nil:
		return fail(TLSClientCertRequired, "TLS handshake failed: the server requires a client certificate, and none was given (%v)", err)
	case strings.Contains(msg, "bad certificate"), strings.Contains(msg, "unknown certificate authority"),
		strings.Contains(msg, "certificate expired"), strings.Contains(msg, "unknown certificate"):
		return fail(TLSClientCertRejected, "TLS handshake failed: the server rejected the client certificate (not signed by a CA it trusts, or expired: %v)", err)
	case isTimeout(err):
		return fail(NoAnswer, "connected, but the TLS handshake got no answer")
	}
	if b.speaksPlain(ctx, host) {
		return fail(TLSNotSpoken, "TLS handshake failed: the server does not speak TLS")
	}
	return fail(NoAnswer, "TLS handshake failed: %v", err)
}

// speaksTLS reports whether the server at host completes (or starts) a
// TLS handshake.
func (b *Backend) speaksTLS(ctx context.Context, host string) bool {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return false
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
	err = tc.HandshakeContext(ctx)
	var ae tls.AlertError
	return err == nil || errors.As(err, &ae) || strings.Contains(err.Error(), "remote error")
}

// plainHTTP2 sends the HTTP/2 preface and an empty SETTINGS frame on
// conn, and reports whether the server answers with its SETTINGS frame
// (a gRPC server does); err is why nothing came back.
func plainHTTP2(conn net.Conn) (bool, error) {
	if _, err := io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		return false, err
	}
	var hdr [9]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return false, err
	}
	return hdr[3] == 0x4, nil
}

// speaksPlain reports whether the server at host speaks HTTP/2 without
// TLS.
func (b *Backend) speaksPlain(ctx context.Context, host string) bool {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return false
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	ok, _ := plainHTTP2(conn)
	return ok
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func timeLeft(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return time.Second
}
