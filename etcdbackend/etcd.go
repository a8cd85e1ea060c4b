package etcdbackend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/go-ftl2/ftlstate/internal/inflight"
	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// Defaults of the Config fields left zero.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	// DefaultSessionTTL is the lock's lease TTL: a controller that dies
	// holding the store blocks the next one for at most this long, and
	// one that cannot reach the cluster (or is paused) for longer loses
	// the lock. See "Locking and fencing" in the package documentation.
	DefaultSessionTTL = 15 * time.Second
	// DefaultMaxTxnOps is etcd's default --max-txn-ops.
	DefaultMaxTxnOps = 128
	// DefaultMaxRequestBytes is etcd's default --max-request-bytes.
	DefaultMaxRequestBytes = 3 << 19 // 1.5 MiB
)

// LayoutVersion is the newest version of the key layout this package reads
// and writes, stored under PREFIX/layout. Version 1 keeps the records
// under PREFIX/hosts/ and PREFIX/resources/; version 2 adds the pending
// operations, PREFIX/operations/ID (a version 1 store becomes version 2
// in the transaction of its first operation, so that a program that
// knows only version 1 refuses it instead of ignoring them); version 3
// keeps the records under a generation, PREFIX/gen/ID/hosts/,
// PREFIX/gen/ID/resources/ and PREFIX/gen/ID/operations/, ID being the
// value of PREFIX/generation. All three are read and written; new stores
// are created at version 3, and a Replace (import) turns an older store
// into version 3. A store with a higher version is refused (an error
// matching errors.ErrUnsupported), not misread.
const LayoutVersion = 3

// layoutOperations is the first layout version with operations, and
// layoutGenerations the first with generations.
const (
	layoutOperations  = 2
	layoutGenerations = 3
)

// ErrOutcomeUnknown means a commit was sent but neither its success nor its
// failure could be confirmed within its time bound (the cluster lost its
// quorum, or this controller lost its connection): the batch may or may
// not be stored. It is state.ErrOutcomeUnknown, the sentinel every backend
// uses. The Backend then settles the outcome before it sends anything
// else: when the batch turns out not stored, writing goes on; when it
// turns out stored, every later Commit fails with an error matching
// ErrOutcomeUnknown, since the caller's copy of the state misses the
// batch: reopen the store.
var ErrOutcomeUnknown = state.ErrOutcomeUnknown

// Config configures Open. Endpoints and Prefix are required; every other
// zero field takes the default named beside it.
type Config struct {
	// Endpoints are the client addresses of the etcd cluster's members
	// ("host:port", "http://host:port" or "https://host:port").
	Endpoints []string

	// Prefix is the key prefix of the store ("/ftl/prod"): one store per
	// prefix. A trailing slash is dropped. The keys are listed in the
	// package documentation (Layout).
	Prefix string

	// DialTimeout bounds authenticating with Username and Password
	// (default DefaultDialTimeout, and never more than Open's own bound).
	DialTimeout time.Duration

	// RequestTimeout bounds each request to etcd (default
	// DefaultRequestTimeout). A Commit returns within twice
	// RequestTimeout of its call, queueing included: its attempts (each
	// waiting at most half a RequestTimeout), settling whether an
	// unanswered attempt was stored, and sending it again while time
	// remains. When the outcome stays unknown it fails with
	// ErrOutcomeUnknown.
	RequestTimeout time.Duration

	// LockTimeout is how long Open waits for the store: for another
	// controller to release its lock, and for the cluster to answer (an
	// election, members coming back). Zero means no wait for a lock:
	// Open fails at once with a *state.LockError (matching
	// state.ErrLocked) naming the holder, and within RequestTimeout when
	// the cluster does not answer.
	LockTimeout time.Duration

	// SessionTTL is the time to live of the lease that holds the lock
	// (default DefaultSessionTTL; etcd counts it in whole seconds and
	// raises it to its minimum, about 1.5 × its election timeout). The
	// lease is renewed every third of it. A holder that dies, or cannot
	// reach the cluster, loses the lock this long after its last renewal;
	// until then the store stays locked.
	SessionTTL time.Duration

	// ReadOnly opens the store for reading only: no lock is taken, so it
	// works while a writer holds the store; Commit returns an error
	// matching state.ErrReadOnly, and a store that does not exist is not
	// created (Open fails with an error matching fs.ErrNotExist).
	ReadOnly bool

	// TLS, when not nil, is the client's TLS configuration (server CA,
	// client certificate); endpoints then speak TLS.
	TLS *tls.Config
	// Username and Password authenticate to etcd when Username is set.
	Username, Password string

	// MaxTxnOps and MaxRequestBytes are the cluster's limits on one
	// transaction (etcd's --max-txn-ops and --max-request-bytes; defaults
	// DefaultMaxTxnOps and DefaultMaxRequestBytes). A batch that cannot
	// fit is refused before anything is sent; a Replace is written in as
	// many transactions as it needs. Raise them only with the server's
	// own limits.
	MaxTxnOps       int
	MaxRequestBytes int

	// Logger receives the etcd client's log; nil means none.
	Logger *zap.Logger

	// dialOptions are added to the gRPC client's (tests count requests).
	dialOptions []grpc.DialOption
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
	// fresh is the metadata of a store that does not exist yet: what
	// View shows until the first Commit creates it with these lineage and
	// creation time.
	fresh state.Metadata

	// ops tracks the operations in flight (View, Commit, Lock); Close
	// waits for them.
	ops inflight.Ops
	// background counts the deletion of replaced or abandoned
	// generations, which runs beside commits; Close waits for it.
	background sync.WaitGroup

	// queue feeds the committer goroutine; done is closed when it exits.
	queue chan *request
	done  chan struct{}

	// created is set once the store exists in etcd (its metadata key).
	created atomic.Bool
	// viewGen is the generation whose records a View counts in its first
	// request: the last one seen.
	viewGen atomic.Pointer[string]

	// Owned by the committer goroutine after Open: meta is the stored
	// metadata, metaBytes its encoding, metaRev and txnRev the mod
	// revisions of PREFIX/metadata and PREFIX/txn as of our last write
	// (0 while they do not exist), layoutVer the layout version, gen the
	// generation of the records; seq numbers our write
	// transactions (the PREFIX/txn marker); pending is the transaction
	// whose outcome is unknown (nil when none); imports counts Replaces.
	meta      state.Metadata
	metaBytes []byte
	metaRev   int64
	txnRev    int64
	layoutVer uint64
	gen       string
	seq       uint64
	pending   *unsettled
	imports   int

	// broken, once set, is returned by every later Commit: the lock was
	// lost, or the store changed in a way this Backend did not expect.
	broken atomic.Pointer[error]
	// writeTxns counts committed write transactions.
	writeTxns atomic.Uint64
}

var _ state.Backend = (*Backend)(nil)

// keys are the etcd keys of a store.
type keys struct {
	prefix string
	// meta, layout, generation, lock and txn are single keys; stale is
	// the prefix of the markers of generations to delete; gens the
	// prefix of every generation's records.
	meta, layout, generation, lock, txn string
	stale, gens                         string
}

func newKeys(prefix string) keys {
	return keys{
		prefix:     prefix,
		meta:       prefix + "/metadata",
		layout:     prefix + "/layout",
		generation: prefix + "/generation",
		lock:       prefix + "/lock",
		txn:        prefix + "/txn",
		stale:      prefix + "/stale/",
		gens:       prefix + "/gen/",
	}
}

// records are the key prefixes of one generation's records.
type records struct {
	hosts, resources, operations string // ending in "/"
}

// of returns the record prefixes of generation gen ("" is that of
// layouts 1 and 2).
func (k keys) of(gen string) records {
	base := k.prefix + "/"
	if gen != "" {
		base = k.gens + gen + "/"
	}
	return records{hosts: base + "hosts/", resources: base + "resources/", operations: base + "operations/"}
}

// key returns the etcd key of a record.
func (r records) key(kind state.Kind, key string) string {
	switch kind {
	case state.KindHost:
		return r.hosts + key
	case state.KindOperation:
		return r.operations + key
	}
	return r.resources + key
}

// ranges returns the key ranges ([from, end)) that hold generation gen.
func (k keys) ranges(gen string) [][2]string {
	if gen == "" {
		r := k.of("")
		var rs [][2]string
		for _, p := range []string{r.hosts, r.resources, r.operations} {
			rs = append(rs, [2]string{p, clientv3.GetPrefixRangeEnd(p)})
		}
		return rs
	}
	base := k.gens + gen + "/"
	return [][2]string{{base, clientv3.GetPrefixRangeEnd(base)}}
}

// staleKey is the marker of generation gen awaiting deletion.
func (k keys) staleKey(gen string) string {
	if gen == "" {
		return k.stale + "v1"
	}
	return k.stale + gen
}

// Open connects to the cluster, takes the store's lock (read-write opens)
// and reads its metadata: one lease grant and one transaction for a
// writer, one read for a reader; the records are read only when asked
// for. A store that does not exist is created by the first Commit, not by
// Open, so an open that writes nothing leaves nothing behind. ctx bounds
// the whole of Open, lock wait included, and so does LockTimeout (or
// RequestTimeout when it is zero).
//
// Errors: a store locked by another controller gives a *state.LockError
// (matching state.ErrLocked) naming the prefix and the holder, after
// LockTimeout; a cluster that cannot be reached or refuses the client
// gives a *ConnectError saying why (no member answered, no leader, TLS,
// authentication); a read-only open of a prefix without a store gives an
// error matching fs.ErrNotExist; an undecodable metadata record gives an
// error matching state.ErrCorrupt naming its key; a store of a newer
// layout gives an error matching errors.ErrUnsupported.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	b := &Backend{cfg: cfg, prefix: cfg.Prefix, keys: newKeys(cfg.Prefix)}
	budget := cfg.LockTimeout
	if budget <= 0 {
		budget = cfg.RequestTimeout
	}
	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(budget))
	defer cancel()
	// A problem that waiting will not mend (TLS, authentication) ends
	// Open early: see watchdog.
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	clientCtx, stopClient := context.WithCancel(context.Background())
	defer b.watchdog(ctx, min(500*time.Millisecond, budget/4), func(err error) { fail(err); stopClient() })()
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	dial := cfg.DialTimeout
	if d, ok := ctx.Deadline(); ok {
		left := time.Until(d)
		dial = min(dial, max(left-min(b.reserve(), left/5), time.Millisecond))
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: dial,
		TLS:         cfg.TLS,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      lg,
		// A little above the request limit, so that an oversized request
		// reaches the server's clearer error.
		MaxCallSendMsgSize: cfg.MaxRequestBytes + 64<<10,
		DialOptions:        cfg.dialOptions,
		Context:            clientCtx,
	})
	if err != nil {
		stopClient()
		if ce := cause(ctx); ce != nil {
			err = ce
		}
		return nil, b.errorf("connect: %w", b.connectError(ctx, err))
	}
	b.client = client
	if err := b.open(ctx, start); err != nil {
		b.release()
		stopClient()
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
	if cfg.MaxTxnOps < 3 {
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

// open takes the lock (read-write) or reads the store's keys (read-only).
func (b *Backend) open(ctx context.Context, start time.Time) error {
	var resps []*etcdserverpb.ResponseOp // metadata, layout, generation[, stale markers]
	if b.cfg.ReadOnly {
		err := b.retry(ctx, time.Time{}, "read the store's metadata", func(ctx context.Context) error {
			resp, err := b.client.Txn(ctx).Then(b.storeOps()...).Commit()
			if err == nil {
				resps = resp.Responses
			}
			return err
		})
		if err != nil {
			return err
		}
	} else {
		var err error
		if resps, err = b.lock(ctx, start); err != nil {
			return err
		}
	}
	exists, err := b.load(resps)
	if err != nil {
		return err
	}
	if !exists {
		if b.cfg.ReadOnly {
			return b.errorf("no store under this prefix (no %s key): %w", b.keys.meta, fs.ErrNotExist)
		}
		b.fresh = state.NewMetadata(time.Now())
		b.meta = b.fresh
	}
	if !b.cfg.ReadOnly {
		var stale []string
		for _, kv := range resps[len(b.storeOps())].GetResponseRange().Kvs {
			if gen := string(kv.Value); gen == "" || validGeneration(gen) {
				stale = append(stale, gen)
			}
		}
		b.collect(stale)
	}
	return nil
}

// storeOps read the keys that describe the store: its metadata, layout,
// generation and write marker.
func (b *Backend) storeOps() []clientv3.Op {
	return []clientv3.Op{clientv3.OpGet(b.keys.meta), clientv3.OpGet(b.keys.layout), clientv3.OpGet(b.keys.generation), clientv3.OpGet(b.keys.txn)}
}

// load takes in the responses of storeOps (and what follows them): it
// sets the metadata, the generation and the marker's revision, or
// reports that there is no store.
func (b *Backend) load(resps []*etcdserverpb.ResponseOp) (exists bool, err error) {
	metaKV := first(resps[0].GetResponseRange().Kvs)
	version, gen, err := b.layout(first(resps[1].GetResponseRange().Kvs), first(resps[2].GetResponseRange().Kvs))
	if err != nil {
		return false, err
	}
	b.layoutVer = version
	if kv := first(resps[3].GetResponseRange().Kvs); kv != nil {
		b.txnRev = kv.ModRevision
	}
	if metaKV == nil {
		return false, nil
	}
	m, err := record.DecodeMetadata(metaKV.Value)
	if err != nil {
		return false, b.errorf("key %q: %w", b.keys.meta, err)
	}
	b.meta, b.metaBytes, b.metaRev, b.gen = m, metaKV.Value, metaKV.ModRevision, gen
	b.created.Store(true)
	b.viewGen.Store(&gen)
	return true, nil
}

func first(kvs []*mvccpb.KeyValue) *mvccpb.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	return kvs[0]
}

// layout returns the layout version and the generation of a store whose
// PREFIX/layout and PREFIX/generation keys are layoutKV and genKV (either
// may be nil): generation "" for layouts 1 and 2 (a store written before
// the layout key existed, or by hand, is version 1). A layout newer than
// LayoutVersion is refused.
func (b *Backend) layout(layoutKV, genKV *mvccpb.KeyValue) (uint64, string, error) {
	if layoutKV == nil {
		return 1, "", nil
	}
	v, err := strconv.ParseUint(string(layoutKV.Value), 10, 64)
	if err != nil || v == 0 {
		return 0, "", b.errorf("key %q: layout version %q is not a positive number: %w", layoutKV.Key, layoutKV.Value, state.ErrCorrupt)
	}
	if v > LayoutVersion {
		return 0, "", b.errorf("store layout version %d is newer than this program supports (%d); use a newer version of the program: %w", v, LayoutVersion, errors.ErrUnsupported)
	}
	if v < layoutGenerations {
		return v, "", nil
	}
	if genKV == nil {
		return 0, "", b.errorf("key %q is missing (layout version %d names its records' generation there): %w", b.keys.generation, v, state.ErrCorrupt)
	}
	gen := string(genKV.Value)
	if !validGeneration(gen) {
		return 0, "", b.errorf("key %q: %q is not a generation id: %w", genKV.Key, gen, state.ErrCorrupt)
	}
	return v, gen, nil
}

// validGeneration reports whether s has the form of a generation id:
// digits and dots, not empty.
func validGeneration(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

// errClosed is the error of an operation on a closed Backend.
func (b *Backend) errClosed() error { return b.errorf("%w", state.ErrClosed) }

// Close waits for operations in flight, stops the committer, waits for
// the deletion of replaced generations (each request bounded by
// RequestTimeout; what is left is deleted by the next writer), releases
// the lock (revoking its lease deletes the lock key) and closes the
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
	b.background.Wait()
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
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
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

// Delete removes the store at cfg.Prefix from the cluster: it takes the
// store's lock as Open does (waiting up to LockTimeout); one transaction
// removes the store's metadata, so that readers see the store whole, then
// none, and marks its records stale; they are then deleted a page at a
// time (an interrupted Delete leaves them to the next writer, as an
// import does), and every other key under PREFIX/ after them. Keys of
// other prefixes that merely begin the same ("/ftl/prod2" beside
// "/ftl/prod") are left alone.
func Delete(ctx context.Context, cfg Config) error {
	cfg.ReadOnly = false
	b, err := Open(ctx, cfg)
	if err != nil {
		return err
	}
	err = b.delete(ctx)
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	return err
}

func (b *Backend) delete(ctx context.Context) error {
	b.background.Wait() // generations the open began to delete
	if b.created.Load() {
		gen := b.gen
		err := b.fenced(ctx, "delete the store",
			clientv3.OpDelete(b.keys.meta), clientv3.OpDelete(b.keys.layout), clientv3.OpDelete(b.keys.generation),
			clientv3.OpDelete(b.keys.txn), clientv3.OpPut(b.keys.staleKey(gen), gen))
		if err != nil {
			return err
		}
		b.created.Store(false)
		if err := b.deleteGeneration(gen); err != nil {
			return err
		}
	}
	all := b.prefix + "/"
	return b.deletePaged(all, clientv3.GetPrefixRangeEnd(all))
}
