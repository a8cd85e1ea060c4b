package etcdbackend

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	"github.com/go-ftl2/ftlstate/internal/inflight"
	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// Defaults of the Config fields left zero.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	DefaultSessionTTL     = 60 * time.Second
	// DefaultMaxTxnOps is etcd's default --max-txn-ops.
	DefaultMaxTxnOps = 128
	// DefaultMaxRequestBytes is etcd's default --max-request-bytes.
	DefaultMaxRequestBytes = 3 << 19 // 1.5 MiB
)

// LayoutVersion is the version of the key layout this package reads and
// writes, stored under PREFIX/layout. A store with a higher version is
// refused (an error matching errors.ErrUnsupported), not misread. Version
// 2 added the pending operations (PREFIX/operations/ID): a store created
// at version 1 is read as one without pending operations and becomes
// version 2 in the transaction of its first operation, so that a program
// that knows only version 1 refuses it instead of ignoring them.
const LayoutVersion = 2

// layoutOperations is the first layout version with operations.
const layoutOperations = 2

// ErrOutcomeUnknown means a commit was sent but neither its success nor its
// failure could be confirmed before the request timed out (the cluster lost
// its quorum, or this controller lost its connection): the batch may or may
// not be stored. The next Commit settles it; when it turns out stored, the
// Backend refuses further writes and must be reopened. It is
// state.ErrOutcomeUnknown, the sentinel every backend uses.
var ErrOutcomeUnknown = state.ErrOutcomeUnknown

// Config configures Open. Endpoints and Prefix are required; every other
// zero field takes the default named beside it.
type Config struct {
	// Endpoints are the client addresses of the etcd cluster's members
	// ("host:port" or "https://host:port").
	Endpoints []string

	// Prefix is the key prefix of the store ("/ftl/prod"): one store per
	// prefix. A trailing slash is dropped. Keys are PREFIX/hosts/NAME,
	// PREFIX/resources/KEY, PREFIX/operations/ID, PREFIX/metadata,
	// PREFIX/layout and PREFIX/lock.
	Prefix string

	// DialTimeout is the etcd client's (default DefaultDialTimeout): it
	// bounds authenticating with Username and Password. Connecting is
	// bounded by RequestTimeout, like every request.
	DialTimeout time.Duration

	// RequestTimeout bounds each request to etcd (default
	// DefaultRequestTimeout). The committer spends at most twice
	// RequestTimeout on one transaction: its attempts (each waiting at most
	// half a RequestTimeout), then settling whether an unanswered attempt
	// was stored; when that stays unknown, the Commit fails with
	// ErrOutcomeUnknown. A Commit also waits for the transactions queued
	// before its own, so it may take longer (see the package
	// documentation).
	RequestTimeout time.Duration

	// LockTimeout is how long Open waits for another controller to
	// release the store. Zero means no wait: Open fails at once with a
	// *state.LockError (matching state.ErrLocked) naming the holder.
	LockTimeout time.Duration

	// SessionTTL is the time to live of the lease that holds the lock
	// (default DefaultSessionTTL; etcd counts it in whole seconds). A
	// holder that dies, or cannot reach the cluster, loses the lock this
	// long after its last keep-alive; until then the store stays locked.
	SessionTTL time.Duration

	// ReadOnly opens the store for reading only: no lock is taken, so it
	// works while a writer holds the store; Commit returns an error
	// matching state.ErrReadOnly, and a store that does not exist is not
	// created (Open fails with an error matching fs.ErrNotExist).
	ReadOnly bool

	// TLS, when not nil, is the client's TLS configuration.
	TLS *tls.Config
	// Username and Password authenticate to etcd when Username is set.
	Username, Password string

	// MaxTxnOps and MaxRequestBytes are the cluster's limits on one
	// transaction (etcd's --max-txn-ops and --max-request-bytes; defaults
	// DefaultMaxTxnOps and DefaultMaxRequestBytes). A batch that cannot
	// fit is refused before anything is sent. Raise them only with the
	// server's own limits.
	MaxTxnOps       int
	MaxRequestBytes int

	// Logger receives the etcd client's log; nil means none.
	Logger *zap.Logger
}

// Backend is a state.Backend on an etcd key prefix. Its methods may be
// called concurrently; see the package documentation.
type Backend struct {
	cfg    Config
	prefix string
	keys   keys
	client *clientv3.Client

	// session keeps the lock's lease alive (nil when read-only); lockRev
	// is the create revision of our lock key, the fencing token every
	// write compares.
	session *concurrency.Session
	lockRev int64

	// ops tracks the operations in flight (View, Commit); Close waits for
	// them.
	ops inflight.Ops

	// queue feeds the committer goroutine; done is closed when it exits.
	queue chan *request
	done  chan struct{}

	// Owned by the committer goroutine after Open: meta is the stored
	// metadata, metaBytes its encoding, metaRev the mod revision of
	// PREFIX/metadata as of our last write; unsettled is the metadata a
	// commit of unknown outcome would have stored (nil when none); layout
	// is the store's layout version.
	meta      state.Metadata
	metaBytes []byte
	metaRev   int64
	unsettled []byte
	layout    uint64

	// broken, once set, is returned by every later Commit: the lock was
	// lost, or the store changed in a way this Backend did not expect.
	broken atomic.Pointer[error]
	// writeTxns counts committed write transactions.
	writeTxns atomic.Uint64
}

var _ state.Backend = (*Backend)(nil)

// keys are the etcd keys of a store.
type keys struct {
	hosts, resources, operations string // prefixes, ending in "/"
	meta, layout                 string
	lock                         string
}

func newKeys(prefix string) keys {
	return keys{
		hosts:      prefix + "/hosts/",
		resources:  prefix + "/resources/",
		operations: prefix + "/operations/",
		meta:       prefix + "/metadata",
		layout:     prefix + "/layout",
		lock:       prefix + "/lock",
	}
}

func (k keys) of(kind state.Kind, key string) string {
	switch kind {
	case state.KindHost:
		return k.hosts + key
	case state.KindOperation:
		return k.operations + key
	}
	return k.resources + key
}

// records are the prefixes of the records a Replace empties.
func (k keys) records() []string { return []string{k.hosts, k.resources, k.operations} }

// Open connects to the cluster, takes the store's lock (read-write opens)
// and reads its metadata, creating the store when the prefix holds none.
// ctx bounds the whole of Open, lock wait included.
//
// Errors: a store locked by another controller gives a *state.LockError
// (matching state.ErrLocked) naming the prefix and the holder, after
// LockTimeout; a read-only open of a prefix without a store gives an
// error matching fs.ErrNotExist; an undecodable metadata record gives an
// error matching state.ErrCorrupt naming its key; a store of a newer
// layout gives an error matching errors.ErrUnsupported.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	start := time.Now()
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		TLS:         cfg.TLS,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      lg,
		// A little above the request limit, so that an oversized request
		// reaches the server's clearer error.
		MaxCallSendMsgSize: cfg.MaxRequestBytes + 64<<10,
	})
	if err != nil {
		return nil, fmt.Errorf("etcdbackend: %s: connect to %s: %w", cfg.Prefix, strings.Join(cfg.Endpoints, ","), err)
	}
	b := &Backend{cfg: cfg, prefix: cfg.Prefix, keys: newKeys(cfg.Prefix), client: client}
	if err := b.open(ctx, start); err != nil {
		b.release()
		return nil, err
	}
	if !cfg.ReadOnly {
		b.queue = make(chan *request, 256)
		b.done = make(chan struct{})
		go b.run()
	}
	return b, nil
}

func (cfg Config) normalize() (Config, error) {
	cfg.Prefix = strings.TrimRight(cfg.Prefix, "/")
	if cfg.Prefix == "" {
		return cfg, fmt.Errorf("etcdbackend: a key prefix is required (Config.Prefix): %w", state.ErrInvalid)
	}
	if len(cfg.Endpoints) == 0 {
		return cfg, fmt.Errorf("etcdbackend: %s: no endpoints (Config.Endpoints): %w", cfg.Prefix, state.ErrInvalid)
	}
	cfg.Endpoints = append([]string(nil), cfg.Endpoints...)
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.DialTimeout, DefaultDialTimeout)
	def(&cfg.RequestTimeout, DefaultRequestTimeout)
	def(&cfg.SessionTTL, DefaultSessionTTL)
	cfg.LockTimeout = max(cfg.LockTimeout, 0)
	if cfg.MaxTxnOps <= 0 {
		cfg.MaxTxnOps = DefaultMaxTxnOps
	}
	if cfg.MaxTxnOps < 2 {
		return cfg, fmt.Errorf("etcdbackend: %s: MaxTxnOps %d leaves no room for a record: %w", cfg.Prefix, cfg.MaxTxnOps, state.ErrInvalid)
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	return cfg, nil
}

// Prefix returns the store's key prefix, without a trailing slash.
func (b *Backend) Prefix() string { return b.prefix }

// errorf formats an error about the store, naming its prefix.
func (b *Backend) errorf(format string, args ...any) error {
	return fmt.Errorf("etcdbackend: "+b.prefix+": "+format, args...)
}

// request returns a context for one request to etcd.
func (b *Backend) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.cfg.RequestTimeout)
}

// open takes the lock (read-write) and reads or creates the metadata.
func (b *Backend) open(ctx context.Context, start time.Time) error {
	if !b.cfg.ReadOnly {
		if err := b.lock(ctx, start); err != nil {
			return err
		}
	}
	rctx, cancel := b.request(ctx)
	resp, err := b.client.Txn(rctx).Then(clientv3.OpGet(b.keys.meta), clientv3.OpGet(b.keys.layout)).Commit()
	cancel()
	if err != nil {
		return b.errorf("read metadata from etcd at %s: %w", strings.Join(b.cfg.Endpoints, ","), err)
	}
	metaKV := first(resp.Responses[0].GetResponseRange().Kvs)
	if b.layout, err = b.checkLayout(first(resp.Responses[1].GetResponseRange().Kvs)); err != nil {
		return err
	}
	if metaKV == nil {
		if b.cfg.ReadOnly {
			return b.errorf("no store under this prefix (no %s key): %w", b.keys.meta, fs.ErrNotExist)
		}
		return b.create(ctx)
	}
	m, err := record.DecodeMetadata(metaKV.Value)
	if err != nil {
		return b.errorf("key %q: %w", b.keys.meta, err)
	}
	b.meta, b.metaBytes, b.metaRev = m, metaKV.Value, metaKV.ModRevision
	return nil
}

func first(kvs []*mvccpb.KeyValue) *mvccpb.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	return kvs[0]
}

// checkLayout returns the layout version of a store, refusing one newer
// than LayoutVersion; kv is the PREFIX/layout key (nil when absent: a
// store written before the key existed, or by hand, is version 1).
func (b *Backend) checkLayout(kv *mvccpb.KeyValue) (uint64, error) {
	if kv == nil {
		return 1, nil
	}
	v, err := strconv.ParseUint(string(kv.Value), 10, 64)
	if err != nil || v == 0 {
		return 0, b.errorf("key %q: layout version %q is not a positive number: %w", kv.Key, kv.Value, state.ErrCorrupt)
	}
	if v > LayoutVersion {
		return 0, b.errorf("store layout version %d is newer than this program supports (%d); use a newer version of the program: %w", v, LayoutVersion, errors.ErrUnsupported)
	}
	return v, nil
}

// create writes the metadata of a new store, under our lock; when another
// writer created it first (one without our lock), its metadata is used.
func (b *Backend) create(ctx context.Context) error {
	m := state.NewMetadata(time.Now())
	mb, err := record.EncodeMetadata(&m)
	if err != nil {
		return b.errorf("create: %w", err)
	}
	rctx, cancel := b.request(ctx)
	defer cancel()
	resp, err := b.client.Txn(rctx).
		If(b.fence(), clientv3.Compare(clientv3.CreateRevision(b.keys.meta), "=", 0)).
		Then(clientv3.OpPut(b.keys.meta, string(mb)), clientv3.OpPut(b.keys.layout, strconv.Itoa(LayoutVersion))).
		Commit()
	if err != nil {
		return b.errorf("create: %w", err)
	}
	if !resp.Succeeded {
		return b.errorf("create: the lock was lost or the store created by someone else meanwhile; retry: %w", state.ErrConflict)
	}
	b.meta, b.metaBytes, b.metaRev, b.layout = m, mb, resp.Header.Revision, LayoutVersion
	return nil
}

// lock creates a lease kept alive by a concurrency.Session and puts our
// lock-info record under PREFIX/lock with it, if that key is absent;
// otherwise it waits for the key's deletion, up to LockTimeout.
func (b *Backend) lock(ctx context.Context, start time.Time) error {
	ttl := int64((b.cfg.SessionTTL + time.Second - 1) / time.Second)
	rctx, cancel := b.request(ctx)
	lease, err := b.client.Grant(rctx, ttl)
	cancel()
	if err != nil {
		return b.errorf("create the lock's lease on etcd at %s: %w", strings.Join(b.cfg.Endpoints, ","), err)
	}
	// The session's keep-alive lives as long as the client, not ctx.
	s, err := concurrency.NewSession(b.client, concurrency.WithLease(lease.ID), concurrency.WithTTL(int(ttl)))
	if err != nil {
		rctx, cancel := b.request(context.Background())
		b.client.Revoke(rctx, lease.ID)
		cancel()
		return b.errorf("keep the lock's lease alive: %w", err)
	}
	b.session = s
	info, err := json.Marshal(lockinfo.Self())
	if err != nil {
		return b.errorf("lock: %w", err)
	}
	deadline := start.Add(b.cfg.LockTimeout)
	for {
		rctx, cancel := b.request(ctx)
		resp, err := b.client.Txn(rctx).
			If(clientv3.Compare(clientv3.CreateRevision(b.keys.lock), "=", 0)).
			Then(clientv3.OpPut(b.keys.lock, string(info), clientv3.WithLease(s.Lease()))).
			Else(clientv3.OpGet(b.keys.lock)).
			Commit()
		cancel()
		if err != nil {
			return b.errorf("lock: %w", err)
		}
		if resp.Succeeded {
			b.lockRev = resp.Header.Revision
			return nil
		}
		holder := first(resp.Responses[0].GetResponseRange().Kvs)
		wait := time.Until(deadline)
		if wait <= 0 {
			return b.lockError(holder, start)
		}
		// Wait for the holder's key to go (Close, or its lease expiring),
		// then try again.
		wctx, cancel := context.WithTimeout(ctx, wait)
		if err := b.waitDelete(wctx, resp.Header.Revision+1); err != nil && wctx.Err() == nil {
			// The watch failed (no leader, say): pause before retrying.
			select {
			case <-wctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		cancel()
		if ctx.Err() != nil {
			return b.errorf("lock: %w", ctx.Err())
		}
	}
}

// waitDelete waits until the lock key is deleted at or after revision
// rev, or ctx ends.
func (b *Backend) waitDelete(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range b.client.Watch(wctx, b.keys.lock, clientv3.WithRev(rev), clientv3.WithFilterPut()) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	return ctx.Err()
}

// lockError describes the holder of the lock key kv.
func (b *Backend) lockError(kv *mvccpb.KeyValue, start time.Time) error {
	e := &state.LockError{Path: b.prefix}
	if b.cfg.LockTimeout > 0 {
		e.Waited = time.Since(start).Round(time.Millisecond)
	}
	e.Holder = parseLockInfo(kv)
	if e.Holder != nil && !lockinfo.Alive(e.Holder) {
		e.Stale = true
		return fmt.Errorf("etcdbackend: the holder is gone, and its lease releases the lock within its TTL: %w", e)
	}
	return fmt.Errorf("etcdbackend: %w", e)
}

func parseLockInfo(kv *mvccpb.KeyValue) *state.LockInfo {
	if kv == nil {
		return nil
	}
	var info state.LockInfo
	if json.Unmarshal(kv.Value, &info) != nil || info.PID <= 0 {
		return nil
	}
	return &info
}

// fence is the comparison every write makes: our lock key still exists,
// created by our lock (a key re-created by another controller has
// another create revision).
func (b *Backend) fence() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(b.keys.lock), "=", b.lockRev)
}

// lostLock is the error of a write refused because this Backend no longer
// holds the lock; holder is the lock key now (nil when absent).
func (b *Backend) lostLock(holder *mvccpb.KeyValue) error {
	e := &state.LockError{Path: b.prefix, Holder: parseLockInfo(holder)}
	return fmt.Errorf("etcdbackend: %s: this controller lost the lock (its lease expired or was revoked); nothing was written, and writes stay refused until the store is reopened: %w", b.prefix, e)
}

// errClosed is the error of an operation on a closed Backend.
func (b *Backend) errClosed() error { return b.errorf("%w", state.ErrClosed) }

// Close waits for operations in flight, stops the committer, releases the
// lock (revoking its lease deletes the lock key) and closes the
// connection. It is safe to call more than once; calls after the first
// return nil.
func (b *Backend) Close() error {
	if !b.ops.Close() {
		return nil
	}
	if b.queue != nil {
		close(b.queue)
		<-b.done
	}
	if err := b.release(); err != nil {
		return b.errorf("close: %w", err)
	}
	return nil
}

// release revokes the lease (if any) and closes the client. A lease that
// cannot be revoked (the cluster is unreachable) expires after its TTL.
func (b *Backend) release() error {
	var errs []error
	if b.session != nil {
		b.session.Orphan()
		ctx, cancel := b.request(context.Background())
		_, err := b.client.Revoke(ctx, b.session.Lease())
		cancel()
		if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			errs = append(errs, fmt.Errorf("release the lock: %w", err))
		}
	}
	if err := b.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// refusedUnapplied reports whether err, returned by a write request, says
// that the request was refused and never applied (as opposed to a timeout
// or a lost connection, after which it may have been applied).
func refusedUnapplied(err error) bool {
	var ee rpctypes.EtcdError
	if !errors.As(err, &ee) {
		return false
	}
	switch ee.Code() {
	case codes.InvalidArgument, codes.PermissionDenied, codes.FailedPrecondition,
		codes.ResourceExhausted, codes.OutOfRange, codes.Unauthenticated:
		return true
	}
	return false
}
