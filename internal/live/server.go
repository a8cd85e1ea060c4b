package live

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/ansible"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

// Bounds of what a client may ask of a server.
const (
	// MaxConns is the number of connections served at once; more wait
	// in the kernel's backlog.
	MaxConns = 32
	// MaxSnapshots is the number of whole-store responses (the state,
	// listings, the Ansible list) rendered at once; more wait for one.
	MaxSnapshots = 4
	// WriteIdle is how long a client may leave the server's writes
	// unread before it is cut off.
	WriteIdle = 10 * time.Second
	// MaxResponseTime bounds a response other than a commit stream.
	MaxResponseTime = 10 * time.Minute
	// headerTimeout bounds the reading of a request, maxHeader its size.
	headerTimeout = 5 * time.Second
	maxHeader     = 16 << 10
	// batch is the number of commits a stream takes at once.
	batch = 512
)

// writeIdle is WriteIdle; tests shorten it.
var writeIdle = WriteIdle

// Response headers.
const (
	// HeaderSerial carries the serial of the snapshot a response shows.
	HeaderSerial = "Ftlstate-Serial"
	// HeaderFrom carries the serial a commit stream starts at.
	HeaderFrom = "Ftlstate-From"
	// HeaderHosts and HeaderResources carry the numbers of hosts and
	// resources of the whole store in the snapshot a document shows.
	HeaderHosts     = "Ftlstate-Hosts"
	HeaderResources = "Ftlstate-Resources"
)

// Config says what Serve serves.
type Config struct {
	// Store is the store's path, as its backend opened it.
	Store string
	// Backend names the kind of store ("bbolt", "json"), for /v1/info.
	Backend string
	// Holder is the lock info its backend wrote for this process.
	Holder state.LockInfo
}

// Server serves the read-only API of one State on the store's socket.
type Server struct {
	st     *state.State
	cfg    Config
	store  string // absolute
	socket string
	id     fileID // the socket file's identity, to remove only ours
	srv    *http.Server
	// served is closed when the http.Server's loop ends.
	served chan struct{}
	// stopping is closed by Close: streams end with a closed line.
	stopping chan struct{}
	// snapshots is the semaphore of whole-store responses.
	snapshots chan struct{}
	closeOnce sync.Once
	closeErr  error
	// refused counts connections refused by their credentials.
	refused atomic.Int64
}

// Serve starts serving st, the State of the store at cfg.Store, on the
// store's socket (see SocketPath), replacing a socket a dead holder left
// there. The caller holds the store's lock, and calls Close before it
// releases it.
func Serve(st *state.State, cfg Config) (*Server, error) {
	store, err := filepath.Abs(cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	socket := SocketPath(store)
	ln, id, err := listen(socket)
	if err != nil {
		return nil, fmt.Errorf("live: serve %s: %w", store, err)
	}
	s := &Server{
		st: st, cfg: cfg, store: store, socket: socket, id: id,
		served:    make(chan struct{}),
		stopping:  make(chan struct{}),
		snapshots: make(chan struct{}, MaxSnapshots),
	}
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       2 * headerTimeout,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    maxHeader,
		ErrorLog:          log.New(io.Discard, "", 0), // a library does not write to stderr
	}
	go func() {
		defer close(s.served)
		s.srv.Serve(&credListener{Listener: ln, s: s, slots: make(chan struct{}, MaxConns)})
	}()
	return s, nil
}

// Socket returns the path of the socket.
func (s *Server) Socket() string { return s.socket }

// Refused returns the number of connections refused so far because of
// their peer's credentials.
func (s *Server) Refused() int64 { return s.refused.Load() }

// Close stops serving: it removes the socket (if it is still ours), ends
// every commit stream with a closed line, waits up to two seconds for
// responses in flight and cuts the rest. It is safe to call more than
// once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.stopping)
		if id, _, err := idOf(s.socket); err == nil && id == s.id {
			if err := os.Remove(s.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.closeErr = err
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.srv.Close()
		}
		<-s.served
	})
	return s.closeErr
}

// credListener accepts at most cap(slots) connections at once, and only
// from the store file's owner and root (SO_PEERCRED): others get a 403
// and are closed, without a byte of theirs read.
type credListener struct {
	net.Listener
	s     *Server
	slots chan struct{}
}

func (l *credListener) Accept() (net.Conn, error) {
	for {
		l.slots <- struct{}{}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			return nil, err
		}
		cr, err := peer(c)
		owner := ownerOf(l.s.store)
		if err == nil && (cr.uid == 0 || cr.uid == owner) {
			return &slotConn{Conn: c, release: func() { <-l.slots }}, nil
		}
		l.s.refused.Add(1)
		msg := fmt.Sprintf("ftlstate: %s: uid %d may not read this store (only its owner, uid %d, and root)\n", l.s.store, cr.uid, owner)
		if err != nil {
			msg = fmt.Sprintf("ftlstate: %s: peer credentials: %v\n", l.s.store, err)
		}
		go func() {
			defer func() { <-l.slots }()
			refuse(c, msg)
		}()
	}
}

// refuse answers a connection that may not be served with a 403, without
// reading from it, and closes it.
func refuse(c net.Conn, msg string) {
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(msg), msg)
}

// slotConn gives its listener's slot back when closed.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", s.info)
	mux.HandleFunc("GET /v1/state", s.snapshot(func(*http.Request) *statefile.EncodeOptions { return nil }))
	mux.HandleFunc("GET /v1/hosts", s.hosts)
	mux.HandleFunc("GET /v1/hosts/{name...}", func(w http.ResponseWriter, r *http.Request) { s.host(w, r.PathValue("name")) })
	mux.HandleFunc("GET /v1/resources", s.resources)
	mux.HandleFunc("GET /v1/resources/{key...}", func(w http.ResponseWriter, r *http.Request) { s.resource(w, r.PathValue("key")) })
	mux.HandleFunc("GET /v1/operations", s.operations)
	mux.HandleFunc("GET /v1/operations/{id...}", func(w http.ResponseWriter, r *http.Request) { s.operation(w, r.PathValue("id")) })
	mux.HandleFunc("GET /v1/ansible/list", s.ansibleList)
	mux.HandleFunc("GET /v1/ansible/host", func(w http.ResponseWriter, r *http.Request) { s.ansibleHost(w, r.URL.Query().Get("name")) })
	mux.HandleFunc("GET /v1/ansible/host/{name...}", func(w http.ResponseWriter, r *http.Request) { s.ansibleHost(w, r.PathValue("name")) })
	mux.HandleFunc("GET /v1/commits", s.commits)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			httpError(w, http.StatusMethodNotAllowed, "this API only reads: GET and HEAD")
		case r.ContentLength != 0 || len(r.TransferEncoding) > 0:
			httpError(w, http.StatusRequestEntityTooLarge, "requests have no body")
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// Info is what /v1/info answers: the holder, and the store as of one
// snapshot.
type Info struct {
	Holder     state.LockInfo `json:"holder"`
	Store      string         `json:"store"`
	Backend    string         `json:"backend"`
	Metadata   state.Metadata `json:"metadata"`
	Hosts      int            `json:"hosts"`
	Resources  int            `json:"resources"`
	NextSerial uint64         `json:"next_serial"`
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	in := Info{Holder: s.cfg.Holder, Store: s.store, Backend: s.cfg.Backend}
	in.Holder.Socket = s.socket
	if err := s.st.View(func(snap state.Snapshot) error {
		in.Metadata = snap.Metadata()
		in.Hosts, in.Resources = snap.Len()
		return nil
	}); err != nil {
		s.viewError(w, err)
		return
	}
	in.NextSerial = s.st.NextSerial()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(HeaderSerial, strconv.FormatUint(in.Metadata.Serial, 10))
	b, _ := marshalIndent(in)
	w.Write(b)
}

// viewError answers a View that failed: the State is closed (the holder
// is closing the store) or broken.
func (s *Server) viewError(w http.ResponseWriter, err error) {
	if errors.Is(err, state.ErrClosed) {
		httpError(w, http.StatusServiceUnavailable, "the holder is closing the store")
		return
	}
	httpError(w, http.StatusInternalServerError, err.Error())
}

// acquire takes a snapshot slot, or fails when the client goes away or
// the server stops first.
func (s *Server) acquire(w http.ResponseWriter, r *http.Request) bool {
	select {
	case s.snapshots <- struct{}{}:
		return true
	case <-r.Context().Done():
	case <-s.stopping:
		httpError(w, http.StatusServiceUnavailable, "the holder is closing the store")
	}
	return false
}

func (s *Server) release() { <-s.snapshots }

// snapshot serves the whole store as state.json, with what opts leaves
// out left out.
func (s *Server) snapshot(opts func(*http.Request) *statefile.EncodeOptions) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.acquire(w, r) {
			return
		}
		defer s.release()
		err := s.st.View(func(snap state.Snapshot) error {
			dw := s.startJSON(w, snap)
			return abortOn(statefile.Encode(dw, snap, opts(r)))
		})
		if err != nil {
			s.viewError(w, err)
		}
	}
}

// startJSON writes the headers of a JSON response of snap and returns the
// writer of its body.
func (s *Server) startJSON(w http.ResponseWriter, snap state.Snapshot) io.Writer {
	w.Header().Set("Content-Type", "application/json")
	snapshotHeaders(w, snap)
	return newDeadlineWriter(w, time.Now().Add(MaxResponseTime))
}

// snapshotHeaders says which snapshot a response shows: its serial and
// the store's counts.
func snapshotHeaders(w http.ResponseWriter, snap state.Snapshot) {
	h, r := snap.Len()
	w.Header().Set(HeaderSerial, strconv.FormatUint(snap.Metadata().Serial, 10))
	w.Header().Set(HeaderHosts, strconv.Itoa(h))
	w.Header().Set(HeaderResources, strconv.Itoa(r))
}

// abortOn turns an error met while writing a response body into an
// aborted connection, so that the client sees a broken response rather
// than a short one.
func abortOn(err error) error {
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	return nil
}

// one serves a state.json document holding the store's metadata and only
// the records pick returns; found false gives a 404 saying what.
func (s *Server) one(w http.ResponseWriter, what string, pick func(snap state.Snapshot, c *state.Contents) (found bool, err error)) {
	err := s.st.View(func(snap state.Snapshot) error {
		c := &state.Contents{Metadata: snap.Metadata(), Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}}
		found, err := pick(snap, c)
		if err != nil {
			return err
		}
		if !found {
			snapshotHeaders(w, snap)
			httpError(w, http.StatusNotFound, "no "+what)
			return nil
		}
		return abortOn(statefile.EncodeContents(s.startJSON(w, snap), c, nil))
	})
	if err != nil {
		s.viewError(w, err)
	}
}

// hosts serves every host, or with ?name=NAME that host (any name,
// where the path form /v1/hosts/NAME cannot carry "." or ".." segments).
func (s *Server) hosts(w http.ResponseWriter, r *http.Request) {
	if name, ok := r.URL.Query()["name"]; ok {
		s.host(w, name[0])
		return
	}
	s.snapshot(func(*http.Request) *statefile.EncodeOptions {
		return &statefile.EncodeOptions{Resource: noResource, Operation: noOperation}
	})(w, r)
}

// The EncodeOptions hooks that leave a kind of record out.
func noHost(*state.HostState) *state.HostState                     { return nil }
func noResource(string, *state.ResourceState) *state.ResourceState { return nil }
func noOperation(*state.Operation) *state.Operation                { return nil }

// operations serves the pending operations, or with ?id=ID that one.
func (s *Server) operations(w http.ResponseWriter, r *http.Request) {
	if id, ok := r.URL.Query()["id"]; ok {
		s.operation(w, id[0])
		return
	}
	s.snapshot(func(*http.Request) *statefile.EncodeOptions {
		return &statefile.EncodeOptions{Host: noHost, Resource: noResource}
	})(w, r)
}

func (s *Server) operation(w http.ResponseWriter, id string) {
	s.one(w, fmt.Sprintf("pending operation %q", id), func(snap state.Snapshot, c *state.Contents) (bool, error) {
		op, ok, err := snap.Operation(id)
		if ok {
			c.Operations = map[string]*state.Operation{id: op}
		}
		return ok, err
	})
}

func (s *Server) host(w http.ResponseWriter, name string) {
	s.one(w, fmt.Sprintf("host %q", name), func(snap state.Snapshot, c *state.Contents) (bool, error) {
		h, ok, err := snap.Host(name)
		if ok {
			c.Hosts[name] = h
		}
		return ok, err
	})
}

func (s *Server) resource(w http.ResponseWriter, key string) {
	s.one(w, fmt.Sprintf("resource %q", key), func(snap state.Snapshot, c *state.Contents) (bool, error) {
		res, ok, err := snap.Resource(key)
		if ok {
			c.Resources[key] = res
		}
		return ok, err
	})
}

// resources serves every resource, with ?type=T those of type T (from
// the type index), with ?key=KEY that resource.
func (s *Server) resources(w http.ResponseWriter, r *http.Request) {
	if key, ok := r.URL.Query()["key"]; ok {
		s.resource(w, key[0])
		return
	}
	typ, byType := r.URL.Query()["type"]
	if !byType {
		s.snapshot(func(*http.Request) *statefile.EncodeOptions {
			return &statefile.EncodeOptions{Host: noHost, Operation: noOperation}
		})(w, r)
		return
	}
	if !s.acquire(w, r) {
		return
	}
	defer s.release()
	s.one(w, "", func(snap state.Snapshot, c *state.Contents) (bool, error) {
		return true, state.ResourcesOfType(snap, typ[0], func(key string, res *state.ResourceState) error {
			c.Resources[key] = res
			return nil
		})
	})
}

func (s *Server) ansibleList(w http.ResponseWriter, r *http.Request) {
	if !s.acquire(w, r) {
		return
	}
	defer s.release()
	err := s.st.View(func(snap state.Snapshot) error {
		lw := &lazyWriter{start: func() io.Writer { return s.startJSON(w, snap) }}
		err := ansible.WriteList(lw, snapViewer{snap}, nil)
		if err != nil && lw.w == nil {
			httpError(w, http.StatusConflict, err.Error()) // a group Ansible cannot take
			return nil
		}
		return abortOn(err)
	})
	if err != nil {
		s.viewError(w, err)
	}
}

func (s *Server) ansibleHost(w http.ResponseWriter, name string) {
	err := s.st.View(func(snap state.Snapshot) error {
		if _, ok, err := snap.Host(name); err != nil || !ok {
			if err == nil {
				httpError(w, http.StatusNotFound, fmt.Sprintf("no host %q", name))
			}
			return err
		}
		return abortOn(ansible.WriteHost(s.startJSON(w, snap), snapViewer{snap}, name, nil))
	})
	if err != nil {
		s.viewError(w, err)
	}
}

// commits streams commits as newline-delimited JSON (see Line), from
// ?from=SERIAL or, without it, from the next commit.
func (s *Server) commits(w http.ResponseWriter, r *http.Request) {
	next := s.st.NextSerial()
	if next == 0 {
		httpError(w, http.StatusServiceUnavailable, "the holder is closing the store")
		return
	}
	if v := r.URL.Query().Get("from"); v != "" {
		from, err := strconv.ParseUint(v, 10, 64)
		if err != nil || from == 0 {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("from=%q: a serial is a positive integer", v))
			return
		}
		if from > next {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("serial %d is ahead of the store: the next commit will be serial %d", from, next))
			return
		}
		next = from
	}
	if _, _, err := s.st.Commits(next, 1); err != nil {
		var he *state.HistoryError
		if errors.As(err, &he) {
			httpError(w, http.StatusGone, fmt.Sprintf("commits from serial %d are no longer held by the holder (the oldest it holds is serial %d)", he.From, he.Oldest))
			return
		}
		s.viewError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set(HeaderFrom, strconv.FormatUint(next, 10))
	w.WriteHeader(http.StatusOK)
	dw := newDeadlineWriter(w, time.Time{})
	bw := bufio.NewWriterSize(dw, 32<<10)
	flush := func() {
		if bw.Flush() != nil || dw.flush() != nil {
			panic(http.ErrAbortHandler) // a client that does not read is cut off
		}
	}
	end := func(l *Line) {
		l.Encode(bw)
		bw.Flush()
		dw.flush()
	}
	flush()
	for {
		cs, wait, err := s.st.Commits(next, batch)
		var he *state.HistoryError
		switch {
		case errors.As(err, &he):
			end(&Line{Type: LineError, Serial: next - 1, Message: fmt.Sprintf(
				"cut off: this follower fell behind the writer; commits from serial %d are no longer held (the holder keeps the newest %d)", he.From, state.HeldCommits)})
			return
		case errors.Is(err, state.ErrClosed):
			end(&Line{Type: LineClosed, Serial: next - 1, Message: "the holder closed the store"})
			return
		case err != nil:
			end(&Line{Type: LineError, Serial: next - 1, Message: err.Error()})
			return
		}
		for _, c := range cs {
			if LineOf(c).Encode(bw) != nil {
				panic(http.ErrAbortHandler)
			}
			next = c.Serial + 1
		}
		if len(cs) == batch {
			continue
		}
		flush()
		select {
		case <-wait:
		case <-r.Context().Done():
			return
		case <-s.stopping:
			end(&Line{Type: LineClosed, Serial: next - 1, Message: "the holder closed the store"})
			return
		}
	}
}

// deadlineWriter writes to a response, giving each write WriteIdle to be
// taken by the client, within a hard deadline (zero: none).
type deadlineWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	hard time.Time
}

func newDeadlineWriter(w http.ResponseWriter, hard time.Time) *deadlineWriter {
	return &deadlineWriter{w: w, rc: http.NewResponseController(w), hard: hard}
}

func (d *deadlineWriter) deadline() {
	t := time.Now().Add(writeIdle)
	if !d.hard.IsZero() && d.hard.Before(t) {
		t = d.hard
	}
	d.rc.SetWriteDeadline(t)
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.deadline()
	return d.w.Write(p)
}

func (d *deadlineWriter) flush() error {
	d.deadline()
	return d.rc.Flush()
}

// lazyWriter calls start on the first write, for the writer to use: a
// handler can still answer with an error status until then.
type lazyWriter struct {
	start func() io.Writer
	w     io.Writer
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if l.w == nil {
		l.w = l.start()
	}
	return l.w.Write(p)
}

// snapViewer offers an open snapshot as a Viewer.
type snapViewer struct{ s state.Snapshot }

func (v snapViewer) View(fn func(state.Snapshot) error) error { return fn(v.s) }
