package live_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/internal/live"
	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/ansible"
	"github.com/go-ftl2/ftlstate/state/statefile"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

func TestMain(m *testing.M) {
	// Re-executed as a client of another user: connect, print what the
	// server answers.
	if sock := os.Getenv("FTLSTATE_LIVE_TEST_DIAL"); sock != "" {
		dialAndPrint(sock)
		return
	}
	os.Exit(m.Run())
}

func dialAndPrint(sock string) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(3)
	}
	fmt.Fprintf(c, "GET /v1/state HTTP/1.1\r\nHost: x\r\n\r\n")
	b, _ := io.ReadAll(c)
	os.Stdout.Write(b)
}

// holder is a State served as a backend would serve it: the server, and
// the lock info that names it.
type holder struct {
	st    *state.State
	srv   *live.Server
	store string
}

func serve(t *testing.T, dir string) *holder {
	t.Helper()
	st, err := state.Open(statetest.NewMemory())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	store := filepath.Join(dir, "state.db")
	info := lockinfo.Self()
	srv, err := live.Serve(st, live.Config{Store: store, Backend: "memory", Holder: info})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	info.Socket = srv.Socket()
	f, err := lockinfo.Create(lockinfo.Path(store), info)
	require.NoError(t, err)
	f.Close()
	return &holder{st: st, srv: srv, store: store}
}

func fill(t testing.TB, st *state.State, n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, st.Update(func(tx *state.Tx) error {
			if err := tx.AddHost(&state.HostState{Name: fmt.Sprintf("web%02d", i), Address: "192.0.2.1", Port: 22, Group: "web", Vars: map[string]any{"n": i, "pi": 3.5, "token": "s3cret"}}); err != nil {
				return err
			}
			return tx.AddResource(fmt.Sprintf("vm:%d", i), &state.ResourceState{Type: []string{"vm", "ip"}[i%2], ID: fmt.Sprint(i), Data: map[string]any{"list": []any{int64(1), "a"}}, Tags: map[string]string{"env": "prod"}})
		}))
	}
}

// raw is a plain HTTP client on a socket, as curl --unix-socket is.
func raw(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}

func get(t *testing.T, c *http.Client, path string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := c.Get("http://ftlstate" + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

func encode(t *testing.T, v state.Viewer) []byte {
	var buf bytes.Buffer
	require.NoError(t, v.View(func(s state.Snapshot) error { return statefile.Encode(&buf, s, nil) }))
	return buf.Bytes()
}

func TestServer_Endpoints(t *testing.T) {
	h := serve(t, t.TempDir())
	fill(t, h.st, 5)
	c := raw(h.srv.Socket())
	serial := fmt.Sprint(h.st.Metadata().Serial)

	code, hdr, body := get(t, c, "/v1/state")
	assert.Equal(t, 200, code)
	assert.Equal(t, "application/json", hdr.Get("Content-Type"))
	assert.Equal(t, serial, hdr.Get(live.HeaderSerial))
	assert.Equal(t, string(encode(t, h.st)), string(body), "the documented state.json, byte for byte")

	var list bytes.Buffer
	require.NoError(t, ansible.WriteList(&list, h.st, nil))
	code, _, body = get(t, c, "/v1/ansible/list")
	assert.Equal(t, 200, code)
	assert.Equal(t, list.String(), string(body))
	var one bytes.Buffer
	require.NoError(t, ansible.WriteHost(&one, h.st, "web03", nil))
	_, _, body = get(t, c, "/v1/ansible/host/web03")
	assert.Equal(t, one.String(), string(body))
	assert.Contains(t, string(body), `"token": "s3cret"`, "the owner reads what the file holds")

	for path, want := range map[string]struct {
		hosts, resources []string
	}{
		"/v1/hosts":              {[]string{"web00", "web01", "web02", "web03", "web04"}, nil},
		"/v1/hosts/web02":        {[]string{"web02"}, nil},
		"/v1/resources":          {nil, []string{"vm:0", "vm:1", "vm:2", "vm:3", "vm:4"}},
		"/v1/resources?type=ip":  {nil, []string{"vm:1", "vm:3"}},
		"/v1/resources?type=no":  {nil, nil},
		"/v1/resources/vm:4":     {nil, []string{"vm:4"}},
		"/v1/resources/vm%3A4":   {nil, []string{"vm:4"}},
		"/v1/hosts/web02?x=1":    {[]string{"web02"}, nil},
		"/v1/resources/vm:3?a=b": {nil, []string{"vm:3"}},
		"/v1/hosts?name=web01":   {[]string{"web01"}, nil},
		"/v1/resources?key=vm:1": {nil, []string{"vm:1"}},
	} {
		code, hdr, body := get(t, c, path)
		require.Equal(t, 200, code, "%s: %s", path, body)
		assert.Equal(t, serial, hdr.Get(live.HeaderSerial), path)
		doc, err := statefile.Decode(bytes.NewReader(body), nil)
		require.NoError(t, err, path)
		assert.Equal(t, h.st.Metadata(), doc.Metadata, path)
		assert.ElementsMatch(t, want.hosts, keys(doc.Hosts), path)
		assert.ElementsMatch(t, want.resources, keys(doc.Resources), path)
	}

	code, hdr, body = get(t, c, "/v1/info")
	assert.Equal(t, 200, code)
	assert.Contains(t, string(body), `"hosts": 5`)
	assert.Contains(t, string(body), fmt.Sprintf(`"pid": %d`, os.Getpid()))
	assert.Equal(t, serial, hdr.Get(live.HeaderSerial))

	for path, want := range map[string]int{
		"/v1/hosts/nope":         404,
		"/v1/hosts?name=nope":    404,
		"/v1/resources?key=":     404,
		"/v1/ansible/host?name=": 404,
		"/v1/resources/nope":     404,
		"/v1/ansible/host/nope":  404,
		"/v1/hosts/":             404,
		"/nothing":               404,
		"/v1/commits?from=x":     400,
		"/v1/commits?from=0":     400,
		"/v1/commits?from=99999": 400,
	} {
		code, _, body := get(t, c, path)
		assert.Equal(t, want, code, "%s: %s", path, body)
	}
}

// Commits made before the holder opened the store are not held.
func TestServer_CommitsGone(t *testing.T) {
	var stores statetest.MemoryStores
	b, err := stores.Open("s")
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)
	fill(t, st, 2)
	require.NoError(t, st.Close())
	b, err = stores.Open("s")
	require.NoError(t, err)
	st, err = state.Open(b)
	require.NoError(t, err)
	defer st.Close()
	srv, err := live.Serve(st, live.Config{Store: filepath.Join(t.TempDir(), "s.db")})
	require.NoError(t, err)
	defer srv.Close()
	code, _, body := get(t, raw(srv.Socket()), "/v1/commits?from=1")
	assert.Equal(t, http.StatusGone, code)
	assert.Contains(t, string(body), "commits from serial 1 are no longer held by the holder (the oldest it holds is serial 3)")
}

func TestServer_PendingOperations(t *testing.T) {
	h := serve(t, t.TempDir())
	fill(t, h.st, 1)
	b, err := live.Open(h.store, nil)
	require.NoError(t, err)
	defer b.Close()
	s, err := b.Follow(context.Background(), 0)
	require.NoError(t, err)
	defer s.Close()
	op, err := h.st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: "vm:9", Host: "web09", Data: map[string]any{"token": "t-1", "n": 3}})
	require.NoError(t, err)

	code, _, body := get(t, raw(h.srv.Socket()), "/v1/operations")
	require.Equal(t, 200, code)
	doc, err := statefile.Decode(bytes.NewReader(body), nil)
	require.NoError(t, err)
	assert.Empty(t, doc.Hosts)
	assert.Equal(t, []string{op.ID}, keys(doc.Operations))
	code, _, _ = get(t, raw(h.srv.Socket()), "/v1/operations/"+op.ID)
	assert.Equal(t, 200, code)
	code, _, _ = get(t, raw(h.srv.Socket()), "/v1/operations?id=nope")
	assert.Equal(t, 404, code)
	_, _, body = get(t, raw(h.srv.Socket()), "/v1/hosts")
	doc, err = statefile.Decode(bytes.NewReader(body), nil)
	require.NoError(t, err)
	assert.Empty(t, doc.Operations, "the hosts only")

	require.NoError(t, b.View(func(snap state.Snapshot) error {
		got, ok, err := snap.Operation(op.ID)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, op, got)
		return nil
	}))
	var ids []string
	require.NoError(t, b.View(func(snap state.Snapshot) error {
		return snap.Operations(func(o *state.Operation) error { ids = append(ids, o.ID); return nil })
	}))
	assert.Equal(t, []string{op.ID}, ids)

	c, err := s.Next()
	require.NoError(t, err)
	require.Len(t, c.Changes, 1)
	assert.Equal(t, state.KindOperation, c.Changes[0].Kind)
	assert.Equal(t, op, c.Changes[0].Operation)
	require.NoError(t, h.st.FinishOperation(op.ID, func(tx *state.Tx) error {
		return tx.AddResource("vm:9", &state.ResourceState{Type: "vm", ID: "9"})
	}))
	c, err = s.Next()
	require.NoError(t, err)
	require.Len(t, c.Changes, 2, "the resource and the operation's removal, in one commit")
	assert.Equal(t, state.KindResource, c.Changes[0].Kind)
	assert.True(t, c.Changes[1].Delete())
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestServer_OnlyReads(t *testing.T) {
	h := serve(t, t.TempDir())
	c := raw(h.srv.Socket())
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		req, _ := http.NewRequest(m, "http://ftlstate/v1/hosts/web01", strings.NewReader(`{"name":"web01"}`))
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, m)
	}
	req, _ := http.NewRequest("GET", "http://ftlstate/v1/state", strings.NewReader("x"))
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.False(t, h.st.HasHost("web01"))

	// A request header past the bound is refused.
	req, _ = http.NewRequest("GET", "http://ftlstate/v1/state", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err = c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}

// A client that sends half a request is cut off by the server.
func TestServer_SlowRequestIsCutOff(t *testing.T) {
	h := serve(t, t.TempDir())
	conn, err := net.Dial("unix", h.srv.Socket())
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/state HTTP/1.1\r\n") // and never the rest
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	b, _ := io.ReadAll(conn)
	assert.Less(t, time.Since(start), 20*time.Second, "cut off after the header timeout")
	assert.NotContains(t, string(b), "200 OK")
}

func TestServer_Curl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	h := serve(t, t.TempDir())
	fill(t, h.st, 2)
	out, err := exec.Command(curl, "-sS", "--fail", "--unix-socket", h.srv.Socket(), "http://localhost/v1/state").Output()
	require.NoError(t, err)
	assert.Equal(t, string(encode(t, h.st)), string(out))
}

func TestBackend_ReadsLikeTheFile(t *testing.T) {
	h := serve(t, t.TempDir())
	fill(t, h.st, 6)
	b, err := live.Open(h.store, nil)
	require.NoError(t, err)
	defer b.Close()
	assert.Equal(t, os.Getpid(), b.Holder().PID)
	assert.Equal(t, string(encode(t, h.st)), string(encode(t, b)), "a View of the whole store")

	require.NoError(t, b.View(func(s state.Snapshot) error {
		hh, ok, err := s.Host("web04")
		require.NoError(t, err)
		require.True(t, ok)
		want, _ := h.st.GetHost("web04")
		assert.Equal(t, want, hh, "values in the value model: int64, float64")
		_, ok, err = s.Host("nope")
		assert.NoError(t, err)
		assert.False(t, ok)
		assert.Equal(t, h.st.Metadata(), s.Metadata())
		n, r := s.Len()
		assert.Equal(t, [2]int{6, 6}, [2]int{n, r})
		return nil
	}))
	require.NoError(t, b.View(func(s state.Snapshot) error {
		r, ok, err := s.Resource("vm:5")
		require.NoError(t, err)
		require.True(t, ok)
		want, _ := h.st.GetResource("vm:5")
		assert.Equal(t, want, r)
		var got []string
		require.NoError(t, state.ResourcesOfType(s, "ip", func(k string, _ *state.ResourceState) error { got = append(got, k); return nil }))
		assert.Equal(t, []string{"vm:1", "vm:3", "vm:5"}, got)
		return nil
	}))
	_, err = b.Commit(&state.Batch{})
	assert.ErrorIs(t, err, state.ErrReadOnly)
}

// Odd names reach the server as they are: resource keys may hold any
// punctuation; host names what Ansible can address.
func TestBackend_OddNames(t *testing.T) {
	h := serve(t, t.TempDir())
	names := []string{"a/b", "../up", "a//b", "x?y#z", "50%", "sp ace", "ünï", "-", ".", "..", "web01/", "a&b=c"}
	var hosts []string
	for _, n := range names {
		if h.st.AddHost(&state.HostState{Name: n}) == nil {
			hosts = append(hosts, n)
		}
		require.NoError(t, h.st.AddResource(n, &state.ResourceState{Type: "t"}))
	}
	require.Contains(t, hosts, "50%")
	require.Contains(t, hosts, "..")
	b, err := live.Open(h.store, nil)
	require.NoError(t, err)
	defer b.Close()
	for _, n := range hosts {
		require.NoError(t, b.View(func(s state.Snapshot) error {
			hh, ok, err := s.Host(n)
			require.NoError(t, err, n)
			if assert.True(t, ok, "host %q", n) {
				assert.Equal(t, n, hh.Name)
			}
			return nil
		}))
	}
	for _, n := range names {
		require.NoError(t, b.View(func(s state.Snapshot) error {
			_, ok, err := s.Resource(n)
			require.NoError(t, err, n)
			assert.True(t, ok, "resource %q", n)
			return nil
		}))
	}
}

// Every fetch of one View comes from one serial, or the View fails.
func TestBackend_ViewNeverMixesSerials(t *testing.T) {
	h := serve(t, t.TempDir())
	fill(t, h.st, 2)
	b, err := live.Open(h.store, nil)
	require.NoError(t, err)
	defer b.Close()
	err = b.View(func(s state.Snapshot) error {
		_, _, err := s.Host("web01")
		require.NoError(t, err)
		require.NoError(t, h.st.AddHost(&state.HostState{Name: "later"}))
		return s.Hosts(func(*state.HostState) error { return nil })
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "changed while it was read")

	// Len then Metadata come from one fetch.
	require.NoError(t, b.View(func(s state.Snapshot) error {
		n, _ := s.Len()
		require.NoError(t, h.st.AddHost(&state.HostState{Name: "later2"}))
		assert.Equal(t, 3, n)
		assert.Equal(t, h.st.Metadata().Serial-1, s.Metadata().Serial)
		return s.Operations(func(*state.Operation) error { return nil })
	}), "Len, Metadata and the pending operations come from one fetch (check does that)")
}

func TestStream_EveryCommitOnceInOrder(t *testing.T) {
	h := serve(t, t.TempDir())
	fill(t, h.st, 1)
	b, err := live.Open(h.store, nil)
	require.NoError(t, err)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := b.Follow(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, h.st.NextSerial(), s.From)

	const writers, each = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				assert.NoError(t, h.st.AddHost(&state.HostState{Name: fmt.Sprintf("w%d-%d", w, i), Vars: map[string]any{"i": i}}))
			}
		})
	}
	require.NoError(t, h.st.RemoveHost("web00"))
	seen := map[string]int{}
	next := s.From
	removed := false
	for len(seen) < writers*each || !removed {
		c, err := s.Next()
		require.NoError(t, err)
		require.Equal(t, next, c.Serial)
		next++
		for _, ch := range c.Changes {
			if ch.Delete() {
				removed = ch.Key == "web00"
				continue
			}
			seen[ch.Key]++
			assert.IsType(t, int64(0), ch.Host.Vars["i"])
		}
	}
	wg.Wait()
	for k, n := range seen {
		assert.Equal(t, 1, n, k)
	}

	// From a serial still held: the same commits again.
	s2, err := b.Follow(ctx, s.From)
	require.NoError(t, err)
	c, err := s2.Next()
	require.NoError(t, err)
	assert.Equal(t, s.From, c.Serial)

	// The holder closes: the stream says so.
	require.NoError(t, h.st.Close())
	for {
		_, err = s.Next()
		if err != nil {
			break
		}
	}
	assert.ErrorIs(t, err, live.ErrHolderClosed)
	h.srv.Close()
	_, err = live.Open(h.store, nil)
	assert.ErrorIs(t, err, live.ErrNotServed, "the socket is gone with the server")
}

// A follower that reads too slowly is cut off with a message, and the
// writer never waits for it.
func TestStream_LaggingFollowerIsCutOff(t *testing.T) {
	defer live.SetWriteIdle(2 * time.Minute)()
	h := serve(t, t.TempDir())
	b, err := live.Open(h.store, nil)
	require.NoError(t, err)
	defer b.Close()
	s, err := b.Follow(context.Background(), 0)
	require.NoError(t, err)
	// The follower reads nothing while the writer makes more commits
	// than the holder keeps.
	for i := range state.HeldCommits + 2000 {
		require.NoError(t, h.st.AddHost(&state.HostState{Name: "h", Port: i % 60000}))
	}
	var err2 error
	n := 0
	for err2 == nil {
		_, err2 = s.Next()
		n++
	}
	assert.Contains(t, err2.Error(), "cut off: this follower fell behind")
	assert.Less(t, n, state.HeldCommits, "cut off once it lost its place")
}

// A client that reads nothing is cut off after WriteIdle; commits go on
// meanwhile.
func TestStream_StuckClientNeverBlocksCommits(t *testing.T) {
	defer live.SetWriteIdle(300 * time.Millisecond)()
	h := serve(t, t.TempDir())
	conn, err := net.Dial("unix", h.srv.Socket())
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/commits HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20000 {
			assert.NoError(t, h.st.AddHost(&state.HostState{Name: fmt.Sprint("h", i%50), Vars: map[string]any{"pad": strings.Repeat("x", 200)}}))
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the writer waited for a client that reads nothing")
	}
	// The server gave up on the client: reading it all ends.
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	time.Sleep(time.Second)
	_, err = io.Copy(io.Discard, conn)
	assert.NoError(t, err, "the server closed the connection")
}

func TestServer_StaleSocketReplaced(t *testing.T) {
	dir := t.TempDir()
	sock := live.SocketPath(filepath.Join(dir, "state.db"))
	// A socket a dead holder left: bound, nobody listening.
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	_, err = os.Lstat(sock)
	require.NoError(t, err)

	h := serve(t, dir)
	fi, err := os.Lstat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket|0o600, fi.Mode(), "mode 0600")
	code, _, _ := get(t, raw(sock), "/v1/info")
	assert.Equal(t, 200, code)

	// Closing removes it.
	require.NoError(t, h.srv.Close())
	_, err = os.Lstat(sock)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestServer_LeavesOtherFilesAlone(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "state.db")
	sock := live.SocketPath(store)
	require.NoError(t, os.WriteFile(sock, []byte("mine"), 0o600))
	st, err := state.Open(statetest.NewMemory())
	require.NoError(t, err)
	defer st.Close()
	_, err = live.Serve(st, live.Config{Store: store})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not a socket")
	b, _ := os.ReadFile(sock)
	assert.Equal(t, "mine", string(b))

	// A symbolic link there is replaced, its target untouched.
	target := filepath.Join(dir, "target")
	require.NoError(t, os.WriteFile(target, []byte("t"), 0o600))
	require.NoError(t, os.Remove(sock))
	require.NoError(t, os.Symlink(target, sock))
	srv, err := live.Serve(st, live.Config{Store: store})
	require.NoError(t, err)
	defer srv.Close()
	fi, err := os.Lstat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket, fi.Mode().Type())
	b, _ = os.ReadFile(target)
	assert.Equal(t, "t", string(b))
}

// The socket path rule: beside the store, a short name for a long one,
// and reached through the directory when the path is too long for a
// socket address.
func TestSocketPath_LongPaths(t *testing.T) {
	assert.Equal(t, "/srv/ftl/state.db.sock", live.SocketPath("/srv/ftl/state.db"))
	assert.Equal(t, "state.db.sock", live.SocketPath("state.db"))
	long := live.SocketPath("/d/" + strings.Repeat("n", 90))
	assert.Regexp(t, `^/d/\.ftlstate-[0-9a-f]{16}\.sock$`, long)

	dir := t.TempDir()
	for len(dir) < 150 {
		dir = filepath.Join(dir, strings.Repeat("d", 40))
	}
	require.NoError(t, os.MkdirAll(dir, 0o700))
	h := serve(t, dir)
	require.Greater(t, len(h.srv.Socket()), 108)
	assert.Equal(t, filepath.Join(dir, "state.db.sock"), h.srv.Socket())
	fill(t, h.st, 1)
	b, err := live.Open(h.store, nil)
	require.NoError(t, err)
	defer b.Close()
	assert.Equal(t, string(encode(t, h.st)), string(encode(t, b)))
}

// A socket answered by another process than the lock holder is not
// trusted; a socket nobody listens on is not served.
func TestBackend_TrustsOnlyTheHolder(t *testing.T) {
	h := serve(t, t.TempDir())
	other := exec.Command("sleep", "60")
	require.NoError(t, other.Start())
	defer func() { other.Process.Kill(); other.Wait() }()
	info, err := lockinfo.Read(lockinfo.Path(h.store))
	require.NoError(t, err)
	info.PID = other.Process.Pid // the lock info names another live process
	f, err := lockinfo.Create(lockinfo.Path(h.store), *info)
	require.NoError(t, err)
	f.Close()
	_, err = live.Open(h.store, nil)
	assert.ErrorIs(t, err, live.ErrUntrusted)
	assert.Contains(t, err.Error(), "not by the lock holder")

	// The lock info names us again, but nothing listens.
	info.PID = os.Getpid()
	f, _ = lockinfo.Create(lockinfo.Path(h.store), *info)
	f.Close()
	require.NoError(t, h.srv.Close())
	l, err := net.Listen("unix", h.srv.Socket())
	require.NoError(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	start := time.Now()
	_, err = live.Open(h.store, nil)
	assert.ErrorIs(t, err, live.ErrNotServed)
	assert.Less(t, time.Since(start), 5*time.Second, "no hang")

	// Dead holder: not served, the socket is not even tried.
	require.NoError(t, other.Process.Kill())
	other.Wait()
	info.PID = other.Process.Pid
	f, _ = lockinfo.Create(lockinfo.Path(h.store), *info)
	f.Close()
	_, err = live.Open(h.store, nil)
	assert.ErrorIs(t, err, live.ErrNotServed)
	assert.Contains(t, err.Error(), "is gone")
}

// A process of another user is refused: by the socket's mode, and, where
// the mode would let it in, by its credentials (SO_PEERCRED).
func TestServer_RefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	dir := t.TempDir()
	// Let uid 65534 reach the directory: TempDir's parents are 0700, and so
	// may be $TMPDIR itself (CI makes it with mktemp -d). Only search
	// permission is added, and every mode is put back afterwards.
	for d := dir; d != "/"; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		require.NoError(t, err)
		if perm := fi.Mode() & (os.ModePerm | os.ModeSticky | os.ModeSetgid); perm&0o001 == 0 {
			require.NoError(t, os.Chmod(d, perm|0o011))
			t.Cleanup(func() { os.Chmod(d, perm) })
		}
	}
	h := serve(t, dir)
	fill(t, h.st, 1)
	// A copy of the test binary that uid 65534 may run.
	self, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	exe := filepath.Join(dir, "client.test")
	require.NoError(t, os.WriteFile(exe, self, 0o755))
	client := func() string {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "FTLSTATE_LIVE_TEST_DIAL="+h.srv.Socket())
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatal(err)
		}
		return string(out)
	}
	out := client()
	assert.Contains(t, out, "permission denied", "mode 0600 keeps other users out")

	require.NoError(t, os.Chmod(h.srv.Socket(), 0o666)) // as if the mode were wrong
	out = client()
	assert.Contains(t, out, "403 Forbidden")
	assert.Contains(t, out, "uid 65534 may not read this store")
	assert.NotContains(t, out, "web00")
	assert.Equal(t, int64(1), h.srv.Refused())

	// The owner still reads.
	code, _, _ := get(t, raw(h.srv.Socket()), "/v1/info")
	assert.Equal(t, 200, code)
}

func TestServer_CloseEndsStreamsAndRefusesNewReads(t *testing.T) {
	h := serve(t, t.TempDir())
	resp, err := raw(h.srv.Socket()).Get("http://ftlstate/v1/commits")
	require.NoError(t, err)
	defer resp.Body.Close()
	done := make(chan error, 1)
	go func() { done <- h.srv.Close() }()
	sc := bufio.NewScanner(resp.Body)
	require.True(t, sc.Scan())
	assert.Contains(t, sc.Text(), `"type":"closed"`)
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs")
	}
	_, err = raw(h.srv.Socket()).Get("http://ftlstate/v1/info")
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED), "%v", err)
}
