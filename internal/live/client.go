package live

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

var (
	// ErrNotServed means no running holder serves the store: there is no
	// lock info, the process it names is gone or on another host, or
	// nothing listens on its socket. A reader then opens the store's
	// file.
	ErrNotServed = errors.New("not served by a running holder")
	// ErrUntrusted means something answers on the store's socket that
	// is not the store's lock holder (another process, or a socket or
	// process of another user); nothing is read from it.
	ErrUntrusted = errors.New("not the store's lock holder")
	// ErrHolderClosed ends a commit stream: the holder closed the store.
	ErrHolderClosed = errors.New("the holder closed the store")
	// ErrHolderGone ends a commit stream that broke off without a word:
	// the holder was killed, or the connection was lost.
	ErrHolderGone = errors.New("the holder went away")
)

// Options adjust Open. The nil *Options means the defaults.
type Options struct {
	// Timeout bounds connecting and each wait for the holder: for the
	// first byte of a response, and between reads of its body (default
	// DefaultTimeout). A commit stream waits for commits without bound.
	Timeout time.Duration
}

// DefaultTimeout is Options.Timeout's default.
const DefaultTimeout = 10 * time.Second

// Backend is a read-only state.Backend over the socket of a store's
// running holder: Views read the holder's memory (see View), Commit
// fails with state.ErrReadOnly.
type Backend struct {
	store   string
	holder  state.LockInfo
	socket  string
	owner   uint32
	timeout time.Duration
	// client reads with idle deadlines; stream follows commits.
	client, stream *http.Client
}

var _ state.Backend = (*Backend)(nil)

// Open finds the running holder of the store at store through its lock
// info (lockinfo.Path(store)) and returns a Backend reading from it. It
// trusts the socket only when the kernel says that the process listening
// on it is the lock holder (its pid, SO_PEERCRED) and runs as the store
// file's owner or root, that the socket file is a socket of that user,
// and when the server names the lock info's holder instance. Errors match
// ErrNotServed when there is nothing to read from (open the file
// instead), ErrUntrusted when something else answers.
func Open(store string, opts *Options) (*Backend, error) {
	timeout := DefaultTimeout
	if opts != nil && opts.Timeout > 0 {
		timeout = opts.Timeout
	}
	info, err := lockinfo.Read(lockinfo.Path(store))
	if errors.Is(err, fs.ErrNotExist) {
		// The file backend keeps its lock beside the file a link names.
		if real, rerr := filepath.EvalSymlinks(store); rerr == nil && real != store {
			info, err = lockinfo.Read(lockinfo.Path(real))
			store = real
		}
	}
	if err != nil || info == nil {
		return nil, fmt.Errorf("live: %s: no lock info: %w", store, ErrNotServed)
	}
	if host, _ := os.Hostname(); info.Host != host {
		return nil, fmt.Errorf("live: %s: held on host %s: %w", store, info.Host, ErrNotServed)
	}
	if !lockinfo.Alive(info) {
		return nil, fmt.Errorf("live: %s: holder pid %d is gone: %w", store, info.PID, ErrNotServed)
	}
	socket := info.Socket
	if socket == "" {
		abs, err := filepath.Abs(store)
		if err != nil {
			return nil, fmt.Errorf("live: %w", err)
		}
		socket = SocketPath(abs)
	}
	b := &Backend{store: store, holder: *info, socket: socket, owner: ownerOf(store), timeout: timeout}
	b.client = &http.Client{Transport: b.transport(timeout)}
	b.stream = &http.Client{Transport: b.transport(0)}
	var in Info
	if err := b.getJSON(context.Background(), "/v1/info", &in); err != nil {
		return nil, err
	}
	if info.Instance != "" && in.Holder.Instance != info.Instance {
		return nil, fmt.Errorf("live: %s: the server on %s is holder instance %s, the lock info names %s: %w", store, socket, in.Holder.Instance, info.Instance, ErrUntrusted)
	}
	return b, nil
}

// Holder returns the lock info of the holder read from.
func (b *Backend) Holder() state.LockInfo { return b.holder }

// Path returns the store's path, as given to Open (symbolic links
// resolved when its lock info is beside the file they name).
func (b *Backend) Path() string { return b.store }

// Socket returns the path of the socket read from.
func (b *Backend) Socket() string { return b.socket }

func (b *Backend) transport(idle time.Duration) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := b.dial(ctx)
			if err != nil || idle == 0 {
				return c, err
			}
			return &idleConn{Conn: c, idle: idle}, nil
		},
		MaxIdleConns:          2,
		IdleConnTimeout:       10 * time.Second,
		ResponseHeaderTimeout: b.timeout,
		DisableCompression:    true,
	}
}

// dial connects to the socket and checks who listens on it.
func (b *Backend) dial(ctx context.Context) (net.Conn, error) {
	fail := func(sentinel error, format string, args ...any) error {
		return fmt.Errorf("live: %s: %s: %w", b.store, fmt.Sprintf(format, args...), sentinel)
	}
	fi, err := os.Lstat(b.socket)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fail(ErrNotServed, "no socket %s", b.socket)
	case err != nil:
		return nil, fail(ErrNotServed, "%v", err)
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, fail(ErrUntrusted, "%s is not a socket (%s)", b.socket, fi.Mode().Type())
	}
	if _, uid, err := idOf(b.socket); err != nil || (uid != 0 && uid != b.owner) {
		return nil, fail(ErrUntrusted, "socket %s belongs to uid %d, not to the store's owner (uid %d) or root", b.socket, uid, b.owner)
	}
	a, release, err := addr(b.socket)
	if err != nil {
		return nil, fail(ErrNotServed, "%v", err)
	}
	d := net.Dialer{Timeout: b.timeout}
	c, err := d.DialContext(ctx, "unix", a)
	release()
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, fail(ErrNotServed, "nothing listens on %s (a stale socket)", b.socket)
		}
		return nil, fail(ErrNotServed, "connect %s: %v", b.socket, err)
	}
	cr, err := peer(c)
	if err != nil {
		c.Close()
		return nil, fail(ErrNotServed, "%v", err)
	}
	if cr.pid != b.holder.PID || (cr.uid != 0 && cr.uid != b.owner) {
		c.Close()
		return nil, fail(ErrUntrusted, "%s is served by pid %d (uid %d), not by the lock holder, pid %d", b.socket, cr.pid, cr.uid, b.holder.PID)
	}
	return c, nil
}

// idleConn gives every read idle to be answered.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

// get requests path and returns the response when its status is 200 or
// one of also; other statuses become errors carrying the server's
// message.
func (b *Backend) get(ctx context.Context, client *http.Client, path string, also ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://ftlstate"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, ErrNotServed) || errors.Is(err, ErrUntrusted) {
			return nil, err
		}
		return nil, fmt.Errorf("live: %s: holder pid %d: %w", b.store, b.holder.PID, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	for _, code := range also {
		if resp.StatusCode == code {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	err = &StatusError{Code: resp.StatusCode, Msg: string(trimNL(msg))}
	if resp.StatusCode == http.StatusServiceUnavailable {
		return nil, fmt.Errorf("live: %s: holder pid %d: %w: %w", b.store, b.holder.PID, err, ErrNotServed)
	}
	return nil, fmt.Errorf("live: %s: holder pid %d: %w", b.store, b.holder.PID, err)
}

// StatusError is a response of the server other than 200: its status
// and its message.
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return e.Msg }

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func (b *Backend) getJSON(ctx context.Context, path string, v any) error {
	resp, err := b.get(ctx, b.client, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("live: %s: holder pid %d: %s: %w", b.store, b.holder.PID, path, err)
	}
	return nil
}

// doc is a fetched state.json document (nil on a 404), with the serial and
// the store's counts of the snapshot it comes from.
type doc struct {
	c              *state.Contents
	serial         uint64
	hosts, records int
}

// doc fetches the state.json document at path.
func (b *Backend) doc(path string) (*doc, error) {
	resp, err := b.get(context.Background(), b.client, path, http.StatusNotFound)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	d := &doc{}
	d.serial, _ = strconv.ParseUint(resp.Header.Get(HeaderSerial), 10, 64)
	d.hosts, _ = strconv.Atoi(resp.Header.Get(HeaderHosts))
	d.records, _ = strconv.Atoi(resp.Header.Get(HeaderResources))
	if resp.StatusCode == http.StatusNotFound {
		return d, nil
	}
	if d.c, err = statefile.Decode(resp.Body, nil); err != nil {
		return nil, fmt.Errorf("live: %s: holder pid %d: %s: %w", b.store, b.holder.PID, path, err)
	}
	return d, nil
}

// View calls fn with a Snapshot of the holder's memory. The snapshot
// fetches what fn asks for when it first asks, as little as answers it: a
// Host, Resource or Operation alone fetches that record; Len, the
// pending operations and one of them fetch the operations (few), which
// come with the metadata and the counts; anything else fetches the whole
// store (one state.json). Every fetch of one View must come from the same
// serial; if the store moved on between two of them, View fails with an
// error saying so (it never mixes two states). Errors of fetches made by
// Metadata and Len, which cannot return one, are returned by View.
func (b *Backend) View(fn func(state.Snapshot) error) error {
	s := &snapshot{b: b}
	err := fn(s)
	if s.err != nil {
		return s.err
	}
	return err
}

// Commit fails: nothing is written through the socket.
func (b *Backend) Commit(*state.Batch) (state.Metadata, error) {
	return state.Metadata{}, fmt.Errorf("live: %s: reading from the running holder, pid %d: %w", b.store, b.holder.PID, state.ErrReadOnly)
}

// Close releases the connections.
func (b *Backend) Close() error {
	b.client.CloseIdleConnections()
	b.stream.CloseIdleConnections()
	return nil
}

var _ state.TypeIndex = (*snapshot)(nil)

// snapshot is a View's Snapshot: what it fetched, all at one serial.
type snapshot struct {
	b *Backend
	// serial is that of the first fetch; fetched is set once there was
	// one.
	serial  uint64
	fetched bool
	// full is the whole store once fetched; meta and the counts are
	// known from any fetch.
	full         state.Snapshot
	meta         *state.Metadata
	nHosts, nRes int
	// hosts, resources and ops hold records fetched one by one (a nil
	// value: absent); allOps is set once every pending operation is in ops.
	hosts     map[string]*state.HostState
	resources map[string]*state.ResourceState
	ops       map[string]*state.Operation
	allOps    bool
	err       error // the first error, returned by View
}

// fetch fetches the document at path unless an earlier fetch failed, and
// takes in its metadata and counts; it fails when an earlier fetch of
// this snapshot saw another serial.
func (s *snapshot) fetch(path string) (*doc, error) {
	if s.err != nil {
		return nil, s.err
	}
	d, err := s.b.doc(path)
	if err == nil && s.fetched && d.serial != s.serial {
		err = fmt.Errorf("live: %s: the store changed while it was read from the running holder (serial %d, then %d); run the command again", s.b.store, s.serial, d.serial)
	}
	if err != nil {
		s.err = err
		return nil, err
	}
	s.serial, s.fetched = d.serial, true
	s.nHosts, s.nRes = d.hosts, d.records
	if d.c != nil {
		m := d.c.Metadata
		s.meta = &m
	}
	return d, nil
}

func (s *snapshot) fetchFull() error {
	if s.full != nil {
		return nil
	}
	d, err := s.fetch("/v1/state")
	if err != nil {
		return err
	}
	s.full = state.NewSnapshot(d.c)
	return nil
}

// fetchOps fetches every pending operation, with the metadata and the
// counts.
func (s *snapshot) fetchOps() error {
	if s.allOps || s.full != nil {
		return nil
	}
	d, err := s.fetch("/v1/operations")
	if err != nil {
		return err
	}
	s.ops, s.allOps = map[string]*state.Operation{}, true
	for id, op := range d.c.Operations {
		s.ops[id] = op
	}
	return nil
}

func (s *snapshot) Metadata() state.Metadata {
	if s.meta == nil {
		s.fetchFull()
	}
	if s.meta == nil {
		return state.Metadata{}
	}
	return *s.meta
}

func (s *snapshot) Len() (int, int) {
	if !s.fetched {
		s.fetchOps()
	}
	return s.nHosts, s.nRes
}

// one returns the record of kind under key from the whole store, from
// what was fetched, or by fetching it alone (path), storing it in cache.
func one[T any](s *snapshot, cache *map[string]*T, key, path string, fromFull func() (*T, bool, error), fromDoc func(*state.Contents) *T, clone func(*T) *T) (*T, bool, error) {
	if s.full != nil {
		return fromFull()
	}
	if r, ok := (*cache)[key]; ok {
		return clone(r), r != nil, nil
	}
	d, err := s.fetch(path)
	if err != nil {
		return nil, false, err
	}
	if *cache == nil {
		*cache = map[string]*T{}
	}
	var r *T
	if d.c != nil {
		r = fromDoc(d.c)
	}
	(*cache)[key] = r
	return clone(r), r != nil, nil
}

func (s *snapshot) Host(name string) (*state.HostState, bool, error) {
	return one(s, &s.hosts, name, "/v1/hosts?name="+url.QueryEscape(name),
		func() (*state.HostState, bool, error) { return s.full.Host(name) },
		func(c *state.Contents) *state.HostState { return c.Hosts[name] },
		(*state.HostState).Clone)
}

func (s *snapshot) Resource(key string) (*state.ResourceState, bool, error) {
	return one(s, &s.resources, key, "/v1/resources?key="+url.QueryEscape(key),
		func() (*state.ResourceState, bool, error) { return s.full.Resource(key) },
		func(c *state.Contents) *state.ResourceState { return c.Resources[key] },
		(*state.ResourceState).Clone)
}

func (s *snapshot) Operation(id string) (*state.Operation, bool, error) {
	if s.allOps {
		op := s.ops[id]
		return op.Clone(), op != nil, nil
	}
	return one(s, &s.ops, id, "/v1/operations?id="+url.QueryEscape(id),
		func() (*state.Operation, bool, error) { return s.full.Operation(id) },
		func(c *state.Contents) *state.Operation { return c.Operations[id] },
		(*state.Operation).Clone)
}

func (s *snapshot) Operations(fn func(*state.Operation) error) error {
	if err := s.fetchOps(); err != nil {
		return err
	}
	if s.full != nil {
		return s.full.Operations(fn)
	}
	for _, id := range sortedKeys(s.ops) {
		if err := fn(s.ops[id].Clone()); err != nil {
			return err
		}
	}
	return nil
}

func (s *snapshot) Hosts(fn func(*state.HostState) error) error {
	if err := s.fetchFull(); err != nil {
		return err
	}
	return s.full.Hosts(fn)
}

func (s *snapshot) Resources(fn func(string, *state.ResourceState) error) error {
	if err := s.fetchFull(); err != nil {
		return err
	}
	return s.full.Resources(fn)
}

func (s *snapshot) ResourcesOfType(typ string, fn func(string, *state.ResourceState) error) error {
	if err := s.fetchFull(); err != nil {
		return err
	}
	return state.ResourcesOfType(s.full, typ, fn)
}

// Stream is a commit stream from a holder (see Backend.Follow).
type Stream struct {
	// From is the serial of the first commit the stream can show.
	From uint64
	body io.ReadCloser
	sc   *bufio.Scanner
	// last is the serial of the last line read.
	last uint64
	done error
}

// MaxLine bounds one line of a commit stream (a commit of many records).
const MaxLine = 1 << 30

// Follow starts a stream of the holder's commits from serial from (0:
// from the next commit). A from older than the commits the holder keeps
// is an error saying so (a *StatusError, code 410); a from ahead of the
// store too (400).
func (b *Backend) Follow(ctx context.Context, from uint64) (*Stream, error) {
	path := "/v1/commits"
	if from > 0 {
		path += "?from=" + strconv.FormatUint(from, 10)
	}
	resp, err := b.get(ctx, b.stream, path)
	if err != nil {
		return nil, err
	}
	s := &Stream{body: resp.Body, sc: bufio.NewScanner(resp.Body)}
	s.From, _ = strconv.ParseUint(resp.Header.Get(HeaderFrom), 10, 64)
	s.last = s.From - 1
	s.sc.Buffer(make([]byte, 64<<10), MaxLine)
	return s, nil
}

// Next returns the next commit, waiting for it. The stream ends with an
// error: one matching ErrHolderClosed when the holder closed the store,
// ErrHolderGone when the connection broke off (the holder was killed),
// the holder's message when it cut this follower off (it fell behind),
// or the context's error once Follow's context is done.
func (s *Stream) Next() (state.Commit, error) {
	if s.done != nil {
		return state.Commit{}, s.done
	}
	for s.sc.Scan() {
		l, err := decodeLine(s.sc.Bytes())
		if err != nil {
			return state.Commit{}, s.end(err)
		}
		switch l.Type {
		case LineCommit, LineReplaced:
			s.last = l.Serial
			return l.Commit(), nil
		case LineClosed:
			return state.Commit{}, s.end(fmt.Errorf("%w (at serial %d)", ErrHolderClosed, l.Serial))
		case LineError:
			return state.Commit{}, s.end(errors.New(l.Message))
		default:
			return state.Commit{}, s.end(fmt.Errorf("commit stream: unknown line type %q", l.Type))
		}
	}
	err := s.sc.Err()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return state.Commit{}, s.end(err)
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return state.Commit{}, s.end(fmt.Errorf("%w after serial %d: %v", ErrHolderGone, s.last, err))
}

func (s *Stream) end(err error) error {
	s.done = err
	s.body.Close()
	return err
}

// Close ends the stream.
func (s *Stream) Close() error {
	if s.done == nil {
		s.done = errors.New("live: stream closed")
	}
	return s.body.Close()
}
