package crashtest_test

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/internal/crashtest"
	"github.com/go-ftl2/ftlstate/state"
)

func init() {
	gob.Register([]any{})
	gob.Register(map[string]any{})
}

// gobBackend is the simplest correct backend: every commit rewrites one gob
// file through a temp file and a rename. With lazy set it acknowledges
// commits before writing them (in the background, a little later), the
// bug the harness exists to catch.
type gobBackend struct {
	path string
	lazy bool
	mu   sync.Mutex
	c    state.Contents
}

func openGob(dir string, lazy bool) (state.Backend, error) {
	b := &gobBackend{path: filepath.Join(dir, "state.gob"), lazy: lazy}
	data, err := os.ReadFile(b.path)
	switch {
	case os.IsNotExist(err):
		b.c = state.Contents{Metadata: state.NewMetadata(time.Now()), Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}}
	case err != nil:
		return nil, err
	default:
		if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&b.c); err != nil {
			return nil, fmt.Errorf("%s: %w", b.path, state.ErrCorrupt)
		}
		if b.c.Hosts == nil {
			b.c.Hosts = map[string]*state.HostState{}
		}
		if b.c.Resources == nil {
			b.c.Resources = map[string]*state.ResourceState{}
		}
	}
	return b, nil
}

func (b *gobBackend) View(fn func(state.Snapshot) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fn(state.NewSnapshot(&b.c))
}

func (b *gobBackend) Commit(batch *state.Batch) (state.Metadata, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.c.Metadata = state.NextMetadata(b.c.Metadata, batch)
	for _, ch := range batch.Changes {
		switch {
		case ch.Kind == state.KindHost && ch.Host == nil:
			delete(b.c.Hosts, ch.Key)
		case ch.Kind == state.KindHost:
			b.c.Hosts[ch.Key] = ch.Host
		case ch.Resource == nil:
			delete(b.c.Resources, ch.Key)
		default:
			b.c.Resources[ch.Key] = ch.Resource
		}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&b.c); err != nil {
		return state.Metadata{}, err
	}
	write := func() error {
		tmp := b.path + fmt.Sprintf(".%d.tmp", time.Now().UnixNano())
		if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
			return err
		}
		return os.Rename(tmp, b.path)
	}
	if b.lazy {
		time.AfterFunc(20*time.Millisecond, func() { b.mu.Lock(); write(); b.mu.Unlock() })
		return b.c.Metadata, nil
	}
	return b.c.Metadata, write()
}

func (b *gobBackend) Close() error { return nil }

func TestRun_CorrectBackendPasses(t *testing.T) {
	st := crashtest.Run(t, func(dir string) (state.Backend, error) { return openGob(dir, false) })
	if st.Rounds == 0 || st.Acked == 0 {
		t.Fatalf("harness checked nothing: %+v", st)
	}
}

// TestRun_LazyBackendIsCaught runs the harness, in a separate process,
// against a backend that acknowledges writes before making them, and
// expects it to fail: the harness can fail.
func TestRun_LazyBackendIsCaught(t *testing.T) {
	if os.Getenv("CRASHTEST_SELFTEST_LAZY") == "1" {
		crashtest.Run(t, func(dir string) (state.Backend, error) { return openGob(dir, true) })
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRun_LazyBackendIsCaught$", "-test.count=1", "-crash.rounds=10", "-crash.maxkill=300ms")
	cmd.Env = append(os.Environ(), "CRASHTEST_SELFTEST_LAZY=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the harness passed a backend that loses acknowledged writes:\n%s", out)
	}
	if !bytes.Contains(out, []byte("store does not hold that state")) {
		t.Fatalf("the harness failed for another reason than lost writes:\n%s", out)
	}
}
