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

	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/internal/crashtest"
	"github.com/go-ftl2/ftlstate/state"
)

func init() {
	gob.Register([]any{})
	gob.Register(map[string]any{})
}

// gobBackend is the simplest correct backend: every commit rewrites one gob
// file through a temp file, fsynced, renamed over it, and a directory
// fsync. With lazy set it acknowledges commits
// before writing them (in the background, a little later), the bug the
// kill -9 harness exists to catch; the other switches drop one fsync each,
// the bugs the power-loss harness exists to catch.
type gobBackend struct {
	path string
	gobOptions
	mu sync.Mutex
	c  state.Contents
}

type gobOptions struct {
	lazy       bool
	noFileSync bool // power loss: the temp file is renamed unsynced
	noDirSync  bool // power loss: the rename is never made durable
}

func openGob(dir string, o gobOptions) (state.Backend, error) {
	b := &gobBackend{path: filepath.Join(dir, "state.gob"), gobOptions: o}
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
	if batch.Replace != nil {
		b.c.Hosts, b.c.Resources, b.c.Operations = map[string]*state.HostState{}, map[string]*state.ResourceState{}, nil
	}
	for _, ch := range batch.Changes {
		switch {
		case ch.Kind == state.KindOperation && ch.Operation == nil:
			delete(b.c.Operations, ch.Key)
		case ch.Kind == state.KindOperation:
			if b.c.Operations == nil {
				b.c.Operations = map[string]*state.Operation{}
			}
			b.c.Operations[ch.Key] = ch.Operation
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
		f, err := os.CreateTemp(filepath.Dir(b.path), "state.gob.tmp-*")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name()) // fails once renamed
		if _, err := f.Write(buf.Bytes()); err != nil {
			f.Close()
			return err
		}
		if !b.noFileSync {
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(f.Name(), b.path); err != nil {
			return err
		}
		if b.noDirSync {
			return nil
		}
		return atomicfile.SyncDir(filepath.Dir(b.path))
	}
	if b.lazy {
		time.AfterFunc(20*time.Millisecond, func() { b.mu.Lock(); write(); b.mu.Unlock() })
		return b.c.Metadata, nil
	}
	return b.c.Metadata, write()
}

func (b *gobBackend) Close() error { return nil }

func TestRun_CorrectBackendPasses(t *testing.T) {
	st := crashtest.Run(t, func(dir string) (state.Backend, error) { return openGob(dir, gobOptions{}) })
	if st.Rounds == 0 || st.Acked == 0 || st.Maintenance == 0 {
		t.Fatalf("harness checked nothing: %+v", st)
	}
}

func TestPowerLoss_CorrectBackendPasses(t *testing.T) {
	st := crashtest.PowerLoss(t, func(dir string) (state.Backend, error) { return openGob(dir, gobOptions{}) })
	if st.Rounds == 0 || st.Acked == 0 || st.Maintenance == 0 || st.CrashesLosing == 0 {
		t.Fatalf("harness checked nothing: %+v", st)
	}
}

// The proofs that the power-loss harness can fail: a backend that skips
// one fsync, each, is caught.

func TestPowerLoss_NoDirSyncIsCaught(t *testing.T) {
	crashtest.MustCatch(t, func(dir string) (state.Backend, error) { return openGob(dir, gobOptions{noDirSync: true}) })
}

func TestPowerLoss_NoFileSyncIsCaught(t *testing.T) {
	crashtest.MustCatch(t, func(dir string) (state.Backend, error) { return openGob(dir, gobOptions{noFileSync: true}) })
}

// TestRun_LazyBackendIsCaught runs the harness, in a separate process,
// against a backend that acknowledges writes before making them, and
// expects it to fail: the harness can fail.
func TestRun_LazyBackendIsCaught(t *testing.T) {
	if os.Getenv("CRASHTEST_SELFTEST_LAZY") == "1" {
		crashtest.Run(t, func(dir string) (state.Backend, error) { return openGob(dir, gobOptions{lazy: true}) })
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

func TestOperations_CorrectBackendPasses(t *testing.T) {
	st := crashtest.Operations(t, func(dir string) (state.Backend, error) { return openGob(dir, gobOptions{}) })
	if st.Rounds == 0 || st.Begun == 0 || st.Finished == 0 || st.Pending == 0 || st.Instances == 0 {
		t.Fatalf("harness checked nothing: %+v", st)
	}
}

// TestOperations_LazyBackendIsCaught: the operations harness fails on a
// backend that acknowledges commits before making them.
func TestOperations_LazyBackendIsCaught(t *testing.T) {
	if os.Getenv("CRASHTEST_SELFTEST_LAZY") == "1" {
		crashtest.Operations(t, func(dir string) (state.Backend, error) { return openGob(dir, gobOptions{lazy: true}) })
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOperations_LazyBackendIsCaught$", "-test.count=1", "-crash.ops=10", "-crash.maxkill=300ms")
	cmd.Env = append(os.Environ(), "CRASHTEST_SELFTEST_LAZY=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the harness passed a backend that loses acknowledged operations:\n%s", out)
	}
	if !bytes.Contains(out, []byte("acknowledged state lost")) {
		t.Fatalf("the harness failed for another reason than lost operations:\n%s", out)
	}
	t.Logf("caught: %s", bytes.SplitN(out[bytes.Index(out, []byte("acknowledged state lost")):], []byte("\n"), 2)[0])
}

// stuckBackend never finishes a commit: in the harness's child, nothing is
// ever acknowledged.
type stuckBackend struct{ state.Backend }

func (stuckBackend) Commit(*state.Batch) (state.Metadata, error) { select {} }

// TestRun_NothingAcknowledgedFails: a run in which no change was
// acknowledged proved nothing, and fails; its seed is the one given with
// -crash.seed, and the failure says how to repeat it.
func TestRun_NothingAcknowledgedFails(t *testing.T) {
	if os.Getenv("CRASHTEST_SELFTEST_STUCK") == "1" {
		crashtest.Run(t, func(dir string) (state.Backend, error) {
			b, err := openGob(dir, gobOptions{})
			if os.Getenv("FTLSTATE_CRASHTEST_DIR") == "" {
				return b, err // the parent's checks write too
			}
			return stuckBackend{b}, err
		})
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRun_NothingAcknowledgedFails$", "-test.count=1", "-test.v",
		"-crash.rounds=2", "-crash.maxkill=100ms", "-crash.seed=424242")
	cmd.Env = append(os.Environ(), "CRASHTEST_SELFTEST_STUCK=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a run that acknowledged nothing passed:\n%s", out)
	}
	for _, want := range []string{"no change was acknowledged in 2 rounds", "seed 424242", "-crash.seed=424242"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}
