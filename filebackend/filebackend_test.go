package filebackend_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

// testdata is the repository's shared testdata directory.
const testdata = "../testdata"

func open(t testing.TB, path string, opts *filebackend.Options) *filebackend.Backend {
	t.Helper()
	b, err := filebackend.Open(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBackend(t *testing.T) {
	statetest.TestBackend(t, func(t testing.TB, dir string, opts statetest.OpenOptions) state.Backend {
		b, err := filebackend.Open(filepath.Join(dir, "state.json"), &filebackend.Options{ReadOnly: opts.ReadOnly})
		require.NoError(t, err)
		return b
	})
}

// files lists the names in dir, sorted.
func files(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func addHost(t testing.TB, b state.Backend, name string, vars map[string]any) state.Metadata {
	t.Helper()
	now := state.Timestamp(time.Now())
	m, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: name,
		Host: &state.HostState{Name: name, Vars: vars, CreatedAt: now, UpdatedAt: now}}}})
	require.NoError(t, err)
	return m
}

func snapshot(t testing.TB, b state.Backend) *state.Contents {
	t.Helper()
	c := &state.Contents{Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}}
	require.NoError(t, b.View(func(s state.Snapshot) error {
		c.Metadata = s.Metadata()
		if err := s.Hosts(func(h *state.HostState) error { c.Hosts[h.Name] = h; return nil }); err != nil {
			return err
		}
		return s.Resources(func(k string, r *state.ResourceState) error { c.Resources[k] = r; return nil })
	}))
	return c
}

func TestOpen_MissingFileIsEmptyStoreCreatedOnFirstWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	b := open(t, p, nil)
	c := snapshot(t, b)
	assert.Empty(t, c.Hosts)
	assert.Equal(t, state.FormatVersion, c.Metadata.Version)
	assert.NotEmpty(t, c.Metadata.Lineage)
	assert.Equal(t, []string{"state.json.lock"}, files(t, dir), "nothing written before the first commit")

	addHost(t, b, "web01", nil)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "a new state file is private")
	assert.Equal(t, []string{"state.json", "state.json.lock"}, files(t, dir), "no temp file left")
	require.NoError(t, b.Check())
}

func TestCommit_KeepsModeOfExistingFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	require.NoError(t, os.WriteFile(p, []byte("{}\n"), 0o600))
	require.NoError(t, os.Chmod(p, 0o640))
	b := open(t, p, nil)
	addHost(t, b, "web01", nil)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}

// TestFile_IsTheDocumentedFormat: the file is what statefile encodes for
// the store (what export writes), byte for byte.
func TestFile_IsTheDocumentedFormat(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	b := open(t, p, nil)
	addHost(t, b, "web01", map[string]any{"http_port": int64(80), "tags": []any{"a", "b"}})
	now := state.Timestamp(time.Now())
	_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindResource, Key: "linode:1",
		Resource: &state.ResourceState{Type: "linode", ID: "1", Data: map[string]any{"ipv4": []any{"192.0.2.1"}}, CreatedAt: now, UpdatedAt: now}}}})
	require.NoError(t, err)

	var want bytes.Buffer
	require.NoError(t, b.View(func(s state.Snapshot) error { return statefile.Encode(&want, s, nil) }))
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, want.String(), string(got))
	assert.Contains(t, string(got), "\n  \"hosts\": {\n    \"web01\": {\n      \"name\": \"web01\",")
	assert.Contains(t, string(got), "\"serial\": 2,")
}

func TestOpen_DocumentedExample(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	example, err := os.ReadFile(filepath.Join(testdata, "state.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, example, 0o600))

	b := open(t, p, nil)
	st, err := state.Open(b)
	require.NoError(t, err)
	h, ok := st.GetHost("web01")
	require.True(t, ok)
	assert.Equal(t, &state.HostState{Name: "web01", Address: "192.168.1.10", Port: 22, User: "admin", Group: "webservers",
		Vars:      map[string]any{"http_port": int64(80)},
		CreatedAt: time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC), UpdatedAt: time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)}, h)
	_, ok = st.GetHost("db01")
	assert.True(t, ok)
	r, ok := st.GetResource("linode:12345678")
	require.True(t, ok)
	assert.Equal(t, []any{"192.168.1.10"}, r.Data["ipv4"])
	assert.Equal(t, map[string]string{"environment": "production", "role": "webserver"}, r.Tags)
	m := st.Metadata()
	assert.Equal(t, time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC), m.CreatedAt)
	assert.NotEmpty(t, m.Lineage, "a document without lineage gets one")
	unchanged, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, example, unchanged, "opening writes nothing")

	// Writing it back gives the golden document plus the new host and the
	// metadata the store added.
	require.NoError(t, st.AddHost(&state.HostState{Name: "web02"}))
	lineage := st.Metadata().Lineage
	require.NoError(t, st.Close())
	b = open(t, p, nil)
	assert.Equal(t, lineage, snapshot(t, b).Metadata.Lineage, "the lineage given at open is the one written")
	c := snapshot(t, b)
	assert.Equal(t, uint64(1), c.Metadata.Serial)
	assert.Len(t, c.Hosts, 3)
}

func TestOpen_FileWithoutMetadataGetsOne(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"hosts": {"web01": {"name": "web01"}}}`), 0o600))
	b := open(t, p, nil)
	m := snapshot(t, b).Metadata
	assert.Equal(t, state.FormatVersion, m.Version)
	assert.NotEmpty(t, m.Lineage)
	assert.False(t, m.CreatedAt.IsZero())
	assert.False(t, m.UpdatedAt.IsZero())
	addHost(t, b, "web02", nil)
	require.NoError(t, b.Close())

	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	c, err := statefile.Decode(f, nil)
	require.NoError(t, err)
	assert.Equal(t, m.Lineage, c.Metadata.Lineage)
	assert.True(t, m.CreatedAt.Equal(c.Metadata.CreatedAt))
	assert.Equal(t, uint64(1), c.Metadata.Serial)
	assert.Len(t, c.Hosts, 2)
}

// TestOpen_BadInputs: every bad input of testdata/bad, as a state file,
// fails Open with ErrCorrupt naming the path and the position, and is left
// exactly as it was.
func TestOpen_BadInputs(t *testing.T) {
	bad, err := filepath.Glob(filepath.Join(testdata, "bad", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, bad)
	for _, src := range bad {
		t.Run(filepath.Base(src), func(t *testing.T) {
			data, err := os.ReadFile(src)
			require.NoError(t, err)
			dir := t.TempDir()
			p := filepath.Join(dir, "state.json")
			require.NoError(t, os.WriteFile(p, data, 0o644))
			for range 2 { // the failed Open released the lock
				_, err = filebackend.Open(p, nil)
				require.Error(t, err)
				assert.ErrorIs(t, err, state.ErrCorrupt)
				assert.NotErrorIs(t, err, state.ErrLocked)
				assert.Contains(t, err.Error(), p)
				var e *statefile.Error
				require.ErrorAs(t, err, &e)
				assert.Contains(t, err.Error(), fmt.Sprintf("line %d, column %d", e.Line, e.Column))
			}
			after, err := os.ReadFile(p)
			require.NoError(t, err)
			assert.Equal(t, data, after, "the file is never overwritten")
			fi, err := os.Stat(p)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
			assert.Equal(t, []string{"state.json", "state.json.lock"}, files(t, dir))
			info, err := lockinfo.Read(lockinfo.Path(p))
			require.NoError(t, err)
			assert.Nil(t, info, "the lock info is cleared")
		})
	}
}

func TestOpen_EmptyFileIsCorruptNotEmpty(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(p, nil, 0o600))
	_, err := filebackend.Open(p, nil)
	assert.ErrorIs(t, err, state.ErrCorrupt)
	assert.EqualError(t, err, "filebackend: "+p+": line 1, column 1: empty document")
}

func TestOpen_MaxSize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"hosts": {}}`), 0o600))
	_, err := filebackend.Open(p, &filebackend.Options{MaxSize: 5})
	assert.ErrorIs(t, err, statefile.ErrTooLarge)
	assert.ErrorIs(t, err, state.ErrCorrupt)
}

func TestOpen_Errors(t *testing.T) {
	_, err := filebackend.Open("", nil)
	assert.ErrorIs(t, err, state.ErrInvalid)

	missingDir := filepath.Join(t.TempDir(), "nope", "state.json")
	_, err = filebackend.Open(missingDir, nil)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), missingDir+".lock")

	dirAsFile := t.TempDir()
	_, err = filebackend.Open(dirAsFile, nil)
	require.Error(t, err, "a directory is not a state file")
	assert.Contains(t, err.Error(), dirAsFile)
}

func TestOpen_FollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	link := filepath.Join(dir, "state.json")
	require.NoError(t, os.WriteFile(real, []byte("{}"), 0o600))
	require.NoError(t, os.Symlink("real.json", link))
	b := open(t, link, nil)
	assert.Equal(t, real, b.Path())
	addHost(t, b, "web01", nil)
	fi, err := os.Lstat(link)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSymlink, fi.Mode().Type(), "the link stays a link")
	c, err := statefile.Decode(bytes.NewReader(mustRead(t, real)), nil)
	require.NoError(t, err)
	assert.Contains(t, c.Hosts, "web01")
	_, err = filebackend.Open(real, nil)
	assert.ErrorIs(t, err, state.ErrLocked, "the link and its target share one lock")
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

// deadTemp returns the name of a temp file for base made by a process
// that is gone.
func deadTemp(base string) string {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%s.tmp-%d-99", base, cmd.Process.Pid)
}

func TestLeftoverTempFiles_IgnoredThenRemoved(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	b := open(t, p, nil)
	addHost(t, b, "web01", nil)
	require.NoError(t, b.Close())
	good := mustRead(t, p)

	// What a process killed in mid-rewrite leaves, and files that only
	// look alike.
	leftovers := map[string]string{
		"state.json.tmp-123456789": `{"hosts": {"ghost": {"name": "ghost"}}}`,
		"state.json.tmp-42":        `{"hosts": {"tru`,
		deadTemp("state.json"):     `{}`, // a pid-tagged name, of a dead process
		"state.json.backup.tmp-7":  `{}`, // a backup being written
	}
	others := map[string]string{
		"state.json.tmp-backup": "mine",
		"state.json.bak":        "mine",
		"other.json.tmp-1":      "mine",
	}
	for name, s := range leftovers {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600))
	}
	for name, s := range others {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600))
	}
	for name := range leftovers {
		assert.True(t, atomicfile.IsTemp("state.json", name) || atomicfile.IsTemp("state.json.backup", name), name)
	}
	for name := range others {
		assert.False(t, atomicfile.IsTemp("state.json", name), name)
	}

	ro := open(t, p, &filebackend.Options{ReadOnly: true})
	assert.NotContains(t, snapshot(t, ro).Hosts, "ghost", "temp files are never read as state")
	require.NoError(t, ro.Close())
	assert.Len(t, files(t, dir), len(leftovers)+len(others)+2, "a reader (no lock) removes nothing")

	b = open(t, p, nil)
	c := snapshot(t, b)
	assert.NotContains(t, c.Hosts, "ghost", "temp files are never read as state")
	assert.Equal(t, good, mustRead(t, p))
	want := []string{"other.json.tmp-1", "state.json", "state.json.bak", "state.json.lock", "state.json.tmp-backup"}
	assert.Equal(t, want, files(t, dir), "the next lock holder removed the leftovers at Open, nothing else")
	addHost(t, b, "web02", nil)
	assert.Equal(t, want, files(t, dir))
}

// TestGroupCommit: commits that arrive while a rewrite runs go out
// together in the next one.
func TestGroupCommit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	b := open(t, p, nil)
	inRewrite := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	filebackend.SetFaults(b, nil, func(step string) error {
		if step == "rename" {
			once.Do(func() {
				close(inRewrite)
				<-release
			})
		}
		return nil
	})
	before := filebackend.Rewrites(b)

	const n = 32
	var wg sync.WaitGroup
	serials := make(chan uint64, n)
	commit := func(i int) {
		now := state.Timestamp(time.Now())
		name := fmt.Sprintf("h%02d", i)
		m, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: name,
			Host: &state.HostState{Name: name, CreatedAt: now, UpdatedAt: now}}}})
		assert.NoError(t, err)
		serials <- m.Serial
	}
	wg.Go(func() { commit(0) })
	<-inRewrite // the first rewrite is under way
	for i := 1; i < n; i++ {
		wg.Go(func() { commit(i) })
	}
	for filebackend.QueueLen(b) < n-1 {
		time.Sleep(time.Millisecond) // waiting, not measuring
	}
	close(release)
	wg.Wait()
	close(serials)

	assert.Equal(t, int64(2), filebackend.Rewrites(b)-before, "one rewrite for the first commit, one for the 31 queued behind it")
	var got []int
	for s := range serials {
		got = append(got, int(s))
	}
	sort.Ints(got)
	want := make([]int, n)
	for i := range want {
		want[i] = i + 1
	}
	assert.Equal(t, want, got, "each batch is its own change, with its own serial")
	require.NoError(t, b.Check())
	c := snapshot(t, b)
	assert.Len(t, c.Hosts, n)
	assert.Equal(t, uint64(n), c.Metadata.Serial)
}

// TestGroupCommit_InvalidBatchFailsAlone: a batch the backend refuses does
// not fail the batches written with it.
func TestGroupCommit_InvalidBatchFailsAlone(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	b := open(t, p, nil)
	now := state.Timestamp(time.Now())
	_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: "a", Host: &state.HostState{Name: "b"}}}})
	assert.ErrorIs(t, err, state.ErrInvalid)
	_, err = b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: "y", Host: &state.HostState{Name: "y", CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}})
	assert.ErrorIs(t, err, state.ErrInvalid, "a time the format cannot hold")
	_, err = b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: 9, Key: "z"}}})
	assert.ErrorIs(t, err, state.ErrInvalid)
	_, err = b.Commit(nil)
	assert.ErrorIs(t, err, state.ErrInvalid)
	m := addHost(t, b, "ok", nil)
	assert.Equal(t, uint64(1), m.Serial, "refused batches are no change")
	assert.Len(t, snapshot(t, b).Hosts, 1)
}

// TestRewriteFailure: a rewrite that fails at any step returns the error,
// leaves the previous file and memory as they were and no temp file, and
// the store works afterwards.
func TestRewriteFailure(t *testing.T) {
	enospc := &os.PathError{Op: "write", Path: "state.json.tmp-1", Err: syscall.ENOSPC}
	faults := map[string]struct {
		writer func(io.Writer) io.Writer
		step   func(string) error
	}{
		"disk full at once":       {writer: func(w io.Writer) io.Writer { return &failWriter{w: w, err: enospc} }},
		"disk full half way":      {writer: func(w io.Writer) io.Writer { return &failWriter{w: w, n: 300, err: enospc} }},
		"cannot create temp file": {step: failAt("create", syscall.EACCES)},
		"fsync fails":             {step: failAt("sync", syscall.EIO)},
		"close fails":             {step: failAt("close", syscall.EIO)},
		"rename fails":            {step: failAt("rename", syscall.EXDEV)},
	}
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "state.json")
			b := open(t, p, nil)
			addHost(t, b, "web01", map[string]any{"pad": string(bytes.Repeat([]byte("x"), 1000))})
			good := mustRead(t, p)
			memBefore := snapshot(t, b)

			filebackend.SetFaults(b, f.writer, f.step)
			now := state.Timestamp(time.Now())
			_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{
				{Kind: state.KindHost, Key: "web02", Host: &state.HostState{Name: "web02", CreatedAt: now, UpdatedAt: now}},
				{Kind: state.KindHost, Key: "web01"},
			}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), p)
			assert.Equal(t, good, mustRead(t, p), "the previous file is intact")
			assert.Equal(t, []string{"state.json", "state.json.lock"}, files(t, dir), "the temp file is removed")
			assert.Equal(t, memBefore, snapshot(t, b), "memory is as before")
			require.NoError(t, b.Check(), "memory and file agree")

			filebackend.SetFaults(b, nil, nil)
			m := addHost(t, b, "web03", nil)
			assert.Equal(t, uint64(2), m.Serial, "the failed batch took no serial")
			require.NoError(t, b.Close())
			b2 := open(t, p, nil)
			c := snapshot(t, b2)
			assert.Contains(t, c.Hosts, "web01")
			assert.Contains(t, c.Hosts, "web03")
			assert.NotContains(t, c.Hosts, "web02")
		})
	}
	t.Run("error matches the cause", func(t *testing.T) {
		b := open(t, filepath.Join(t.TempDir(), "state.json"), nil)
		filebackend.SetFaults(b, func(w io.Writer) io.Writer { return &failWriter{w: w, err: enospc} }, nil)
		_, err := b.Commit(&state.Batch{Time: time.Now()})
		assert.ErrorIs(t, err, syscall.ENOSPC)
	})
}

func failAt(step string, errno syscall.Errno) func(string) error {
	return func(s string) error {
		if s == step {
			return &os.PathError{Op: step, Path: "state.json.tmp-1", Err: errno}
		}
		return nil
	}
}

// failWriter passes n bytes to w, then fails.
type failWriter struct {
	w   io.Writer
	n   int
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) <= f.n {
		f.n -= len(p)
		return f.w.Write(p)
	}
	n, _ := f.w.Write(p[:f.n])
	f.n = 0
	return n, f.err
}

// TestRewriteFailure_FailsTheWholeGroup: every batch written in a failed
// rewrite fails; the ones before and after succeed.
func TestRewriteFailure_FailsTheWholeGroup(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	b := open(t, p, nil)
	inRewrite := make(chan struct{})
	release := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	filebackend.SetFaults(b, nil, func(step string) error {
		if step != "rename" {
			return nil
		}
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		switch n {
		case 1:
			close(inRewrite)
			<-release
			return nil
		case 2:
			return &os.PathError{Op: "rename", Path: p, Err: syscall.EIO}
		}
		return nil
	})
	var wg sync.WaitGroup
	wg.Go(func() { addHost(t, b, "first", nil) })
	<-inRewrite
	const n = 5
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			now := state.Timestamp(time.Now())
			name := fmt.Sprintf("g%d", i)
			_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: name, Host: &state.HostState{Name: name}}}})
			errs <- err
		})
	}
	for filebackend.QueueLen(b) < n {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.ErrorIs(t, err, syscall.EIO)
	}
	c := snapshot(t, b)
	assert.Equal(t, []string{"first"}, hostNames(c))
	assert.Equal(t, uint64(1), c.Metadata.Serial)
	m := addHost(t, b, "after", nil)
	assert.Equal(t, uint64(2), m.Serial)
	require.NoError(t, b.Check())
}

func hostNames(c *state.Contents) []string {
	var names []string
	for n := range c.Hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")

	// A missing file: an empty store, and nothing created.
	ro := open(t, p, &filebackend.Options{ReadOnly: true})
	assert.Empty(t, snapshot(t, ro).Hosts)
	assert.Empty(t, files(t, dir))
	_, err := ro.Commit(&state.Batch{Time: time.Now()})
	assert.ErrorIs(t, err, state.ErrReadOnly)
	require.NoError(t, ro.Close())

	// While a writer holds the store, a reader opens at once and sees the
	// last commit.
	w := open(t, p, nil)
	addHost(t, w, "web01", nil)
	ro = open(t, p, &filebackend.Options{ReadOnly: true})
	assert.Equal(t, []string{"web01"}, hostNames(snapshot(t, ro)))
	addHost(t, w, "web02", nil) // the reader does not block the writer
	assert.Equal(t, []string{"web01"}, hostNames(snapshot(t, ro)), "a reader sees the store as of its Open")
	require.NoError(t, ro.Close())
	assert.ErrorIs(t, ro.View(func(state.Snapshot) error { return nil }), state.ErrClosed)
	_, err = ro.Commit(&state.Batch{Time: time.Now()})
	assert.ErrorIs(t, err, state.ErrClosed)

	// state.State over a read-only backend reads; its writes fail.
	st, err := state.Open(open(t, p, &filebackend.Options{ReadOnly: true}))
	require.NoError(t, err)
	defer st.Close()
	assert.True(t, st.HasHost("web02"))
	assert.ErrorIs(t, st.AddHost(&state.HostState{Name: "x"}), state.ErrReadOnly)

	// A corrupt file is reported the same way.
	require.NoError(t, w.Close())
	require.NoError(t, os.WriteFile(p, []byte(`{"hosts": `), 0o600))
	_, err = filebackend.Open(p, &filebackend.Options{ReadOnly: true})
	assert.ErrorIs(t, err, state.ErrCorrupt)
}

func TestCheck_FindsAFileChangedBehindTheBacksOfTheStore(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	b := open(t, p, nil)
	addHost(t, b, "web01", nil)
	require.NoError(t, b.Check())
	require.NoError(t, os.WriteFile(p, []byte(`{"metadata": {"serial": 3}, "hosts": {"web02": {"name": "web02"}}}`), 0o600))
	err := b.Check()
	var ce *state.CheckError
	require.ErrorAs(t, err, &ce)
	assert.ErrorIs(t, err, state.ErrCorrupt)
	assert.Equal(t, []state.Problem{
		{Section: "hosts", Key: "web01", Msg: "in memory, missing from the file"},
		{Section: "hosts", Key: "web02", Msg: "in the file, not in memory"},
		{Section: "metadata", Key: "serial", Msg: "3 in the file, 1 in memory"},
	}, ce.Problems, "every difference is listed")
	assert.ErrorContains(t, err, p+": check found 3 problems")
	require.NoError(t, os.WriteFile(p, []byte(`{`), 0o600))
	assert.ErrorIs(t, b.Check(), state.ErrCorrupt)
	require.NoError(t, os.Remove(p))
	assert.ErrorContains(t, b.Check(), "missing")
}

// TestConcurrentCommitsAndViews: snapshots stay consistent while commits
// replace the store under them.
func TestConcurrentCommitsAndViews(t *testing.T) {
	b := open(t, filepath.Join(t.TempDir(), "state.json"), nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			assert.NoError(t, b.View(func(s state.Snapshot) error {
				n, _ := s.Len()
				seen := 0
				err := s.Hosts(func(*state.HostState) error { seen++; return nil })
				assert.Equal(t, n, seen, "a snapshot does not change under its reader")
				assert.Equal(t, uint64(n), s.Metadata().Serial, "metadata and records from one moment")
				return err
			}))
		}
	})
	var writers sync.WaitGroup
	for w := range 8 {
		writers.Go(func() {
			for i := range 10 {
				addHost(t, b, fmt.Sprintf("w%d-%d", w, i), nil)
			}
		})
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	assert.Len(t, snapshot(t, b).Hosts, 80)
	require.NoError(t, b.Check())
}

func TestClose_WaitsForQueuedCommitsAndClearsLockInfo(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	b, err := filebackend.Open(p, nil)
	require.NoError(t, err)
	info, err := lockinfo.Read(lockinfo.Path(p))
	require.NoError(t, err)
	require.NotNil(t, info)
	assert.Equal(t, os.Getpid(), info.PID)
	assert.Nil(t, b.StaleLock())

	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			now := time.Now()
			name := fmt.Sprintf("h%d", i)
			_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: name, Host: &state.HostState{Name: name}}}})
			if err != nil {
				assert.ErrorIs(t, err, state.ErrClosed, "a commit after Close fails; none is lost half way")
			}
		})
	}
	require.NoError(t, b.Close())
	wg.Wait()
	require.NoError(t, b.Close(), "Close twice is fine")

	info, err = lockinfo.Read(lockinfo.Path(p))
	require.NoError(t, err)
	assert.Nil(t, info, "the lock info is cleared")
	fi, err := os.Stat(lockinfo.Path(p))
	require.NoError(t, err, "the lock file itself stays: it is never removed")
	assert.Zero(t, fi.Size())

	b = open(t, p, nil)
	assert.Nil(t, b.StaleLock(), "a clean Close leaves no stale info")
	require.NoError(t, b.Check())
}

func TestOpen_SecondOpenInProcessIsLocked(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	open(t, p, nil)
	_, err := filebackend.Open(p, nil)
	require.ErrorIs(t, err, state.ErrLocked)
	var le *state.LockError
	require.ErrorAs(t, err, &le)
	require.NotNil(t, le.Holder)
	assert.Equal(t, os.Getpid(), le.Holder.PID)
	assert.Equal(t, p, le.Path)
	assert.Contains(t, err.Error(), fmt.Sprintf("%s: locked by pid %d", p, os.Getpid()))
}
