package boltbackend_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
)

// Environment of the helper process: the test binary re-executed, which
// opens a store and holds it until its stdin closes.
const (
	envHelper = "BOLTBACKEND_TEST_HELPER" // "hold", "hold-ro" or "add HOST"
	envPath   = "BOLTBACKEND_TEST_PATH"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envHelper); mode != "" {
		os.Exit(helper(mode, os.Getenv(envPath)))
	}
	code := m.Run()
	removeTemplates()
	os.Exit(code)
}

func helper(mode, path string) int {
	if host, ok := strings.CutPrefix(mode, "add "); ok {
		// Open (waiting up to 30 s), add a host, close.
		fmt.Println("opening")
		b, err := boltbackend.Open(path, &boltbackend.Options{Timeout: 30 * time.Second})
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		if _, err := b.Commit(hostBatch(host)); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		if err := b.Close(); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("added", host)
		return 0
	}
	b, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: mode == "hold-ro", Timeout: 30 * time.Second})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	if err := b.Close(); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	return 0
}

// holder is a helper process holding a store.
type holder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func (h *holder) pid() int { return h.cmd.Process.Pid }

// release makes the holder close the store and exit.
func (h *holder) release(t testing.TB) {
	t.Helper()
	require.NoError(t, h.stdin.Close())
	require.NoError(t, h.cmd.Wait())
}

// kill kills the holder with SIGKILL.
func (h *holder) kill(t testing.TB) {
	t.Helper()
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGKILL))
	err := h.cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, syscall.SIGKILL, ee.Sys().(syscall.WaitStatus).Signal())
}

// startHolder starts a process that opens the store at path (read-only
// for mode "hold-ro") and holds it.
func startHolder(t testing.TB, path, mode string) *holder {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// Under -race, a process sleeps a second at exit unless told not to.
	cmd.Env = append(os.Environ(), envHelper+"="+mode, envPath+"="+path, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	h := &holder{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "helper output")
	require.Equal(t, "ready\n", line, "helper failed")
	return h
}

// newStore creates a store with one host at dir/state.db and closes it.
func newStore(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := state.Open(openRaw(t, path))
	require.NoError(t, err)
	require.NoError(t, st.AddHost(&state.HostState{Name: "web01", Address: "192.0.2.1"}))
	require.NoError(t, st.Close())
	return path
}

func openRaw(t testing.TB, path string) *boltbackend.Backend {
	t.Helper()
	b, err := boltbackend.Open(path, nil)
	require.NoError(t, err)
	return b
}

func TestLock_SecondProcessGetsErrLockedNamingHolder(t *testing.T) {
	path := newStore(t)
	h := startHolder(t, path, "hold")

	_, err := boltbackend.Open(path, nil)
	require.ErrorIs(t, err, state.ErrLocked, "zero Timeout fails at once")
	var le *state.LockError
	require.ErrorAs(t, err, &le)
	require.NotNil(t, le.Holder, "the holder wrote lock info")
	assert.Equal(t, h.pid(), le.Holder.PID)
	assert.False(t, le.Stale)
	assert.Zero(t, le.Waited)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), fmt.Sprintf("locked by pid %d (", h.pid()))
	host, _ := os.Hostname()
	assert.Contains(t, err.Error(), "on host "+host)

	_, err = boltbackend.Open(path, &boltbackend.Options{Timeout: 300 * time.Millisecond})
	require.ErrorAs(t, err, &le, "a timeout that expires gives ErrLocked too")
	assert.Equal(t, h.pid(), le.Holder.PID)
	assert.Positive(t, le.Waited, "the error says how long Open waited")
	assert.Contains(t, err.Error(), "waited")

	// Killed, the holder leaves its lock info behind but not the lock.
	h.kill(t)
	_, err = os.Stat(lockinfo.Path(path))
	require.NoError(t, err, "a killed holder cannot remove its lock info")
	b, err := boltbackend.Open(path, nil)
	require.NoError(t, err, "the lock is free at once after SIGKILL")
	defer b.Close()
	stale := b.StaleLock()
	require.NotNil(t, stale, "the dead holder's record is reported")
	assert.Equal(t, h.pid(), stale.PID)
	info, err := lockinfo.Read(lockinfo.Path(path))
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), info.PID, "the new holder's record replaced it")
}

func TestLock_OpenWaitsForHolderToClose(t *testing.T) {
	path := newStore(t)
	h := startHolder(t, path, "hold")
	type result struct {
		b   *boltbackend.Backend
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := boltbackend.Open(path, &boltbackend.Options{Timeout: time.Minute})
		done <- result{b, err}
	}()
	h.release(t)
	r := <-done
	require.NoError(t, r.err)
	defer r.b.Close()
	assert.Nil(t, r.b.StaleLock(), "a holder that closed leaves no stale record")
	_, err := os.Stat(lockinfo.Path(path))
	assert.NoError(t, err, "the new holder wrote its record")
	require.NoError(t, r.b.Close())
	_, err = os.Stat(lockinfo.Path(path))
	assert.ErrorIs(t, err, os.ErrNotExist, "Close removes the record")
}

func TestLock_StaleInfoOfDeadProcess(t *testing.T) {
	path := newStore(t)
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	info := lockinfo.Self()
	info.PID = dead.Process.Pid
	info.Command = "ftl2 apply"
	f, err := lockinfo.Create(lockinfo.Path(path), info)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	// A reader holds the lock and writes no record: the dead process's
	// record is reported as stale, not as the holder.
	h := startHolder(t, path, "hold-ro")
	_, err = boltbackend.Open(path, nil)
	var le *state.LockError
	require.ErrorAs(t, err, &le)
	assert.True(t, le.Stale)
	assert.Contains(t, err.Error(), fmt.Sprintf("stale lock info from pid %d", info.PID))
	h.release(t)

	// Unlocked, the stale record blocks nobody and is reported, by
	// read-only opens too.
	ro, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: true})
	require.NoError(t, err)
	require.NotNil(t, ro.StaleLock())
	assert.Equal(t, info.PID, ro.StaleLock().PID)
	require.NoError(t, ro.Close())
	b, err := boltbackend.Open(path, nil)
	require.NoError(t, err)
	defer b.Close()
	require.NotNil(t, b.StaleLock())
	assert.Equal(t, info.PID, b.StaleLock().PID)
	assert.Equal(t, "ftl2 apply", b.StaleLock().Command)
}

func TestLock_ReadOnlyWhileWriterHolds(t *testing.T) {
	path := newStore(t)
	h := startHolder(t, path, "hold")
	_, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: true})
	require.ErrorIs(t, err, state.ErrLocked, "a read-only open fails at once, never hangs")
	var le *state.LockError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, h.pid(), le.Holder.PID)
	assert.Contains(t, err.Error(), "read-only open waits until the writer closes the store")
	assert.Contains(t, err.Error(), fmt.Sprintf("pid %d", h.pid()))

	_, err = boltbackend.Open(path, &boltbackend.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	require.ErrorAs(t, err, &le)
	assert.Positive(t, le.Waited)
	h.release(t)

	b, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: true})
	require.NoError(t, err, "read-only open once the writer is gone")
	defer b.Close()
	_, err = os.Stat(lockinfo.Path(path))
	assert.ErrorIs(t, err, os.ErrNotExist, "readers write no lock info")
}

func TestLock_ReadersShare(t *testing.T) {
	path := newStore(t)
	h := startHolder(t, path, "hold-ro")
	defer h.release(t)
	b, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: true})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.View(func(s state.Snapshot) error {
		_, ok, err := s.Host("web01")
		assert.True(t, ok)
		return err
	}))
	_, err = b.Commit(&state.Batch{Time: time.Now()})
	assert.ErrorIs(t, err, state.ErrReadOnly)
	_, err = boltbackend.Open(path, nil)
	assert.ErrorIs(t, err, state.ErrLocked, "a writer cannot open while readers hold the store")
}

func TestLock_SameProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := openTB(t, path, nil)
	_, err := boltbackend.Open(path, nil)
	var le *state.LockError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, os.Getpid(), le.Holder.PID)
	require.NoError(t, b.Close())
	b2, err := boltbackend.Open(path, nil)
	require.NoError(t, err, "free after Close")
	require.NoError(t, b2.Close())
}

func TestOpen_CreatesPrivateFileAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	_, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: true})
	require.ErrorIs(t, err, os.ErrNotExist, "read-only opens do not create")
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist)

	b := openTB(t, path, nil)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	fi, err = os.Stat(lockinfo.Path(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"state.db", "state.db.lock"}, names, "no temporary files left")
	require.NoError(t, b.View(func(s state.Snapshot) error {
		m := s.Metadata()
		assert.Equal(t, state.FormatVersion, m.Version)
		assert.NotEmpty(t, m.Lineage)
		assert.False(t, m.CreatedAt.IsZero())
		return nil
	}))
}

// TestOpen_ConcurrentCreate: processes creating the same store at once end
// up sharing one store.
func TestOpen_ConcurrentCreate(t *testing.T) {
	for range 5 {
		path := filepath.Join(t.TempDir(), "state.db")
		const n = 8
		errs := make(chan error, n)
		lineages := make(chan string, n)
		for range n {
			go func() {
				b, err := boltbackend.Open(path, &boltbackend.Options{Timeout: 30 * time.Second})
				if err != nil {
					errs <- err
					return
				}
				b.View(func(s state.Snapshot) error { lineages <- s.Metadata().Lineage; return nil })
				errs <- b.Close()
			}()
		}
		for range n {
			require.NoError(t, <-errs)
		}
		close(lineages)
		first := <-lineages
		for l := range lineages {
			assert.Equal(t, first, l, "every opener sees the same store")
		}
	}
}

func TestLockError_MessageForCLI(t *testing.T) {
	// The message the CLI prints is the error's: it must name the store
	// and say what to do.
	path := newStore(t)
	h := startHolder(t, path, "hold")
	defer h.release(t)
	_, err := boltbackend.Open(path, nil)
	require.Error(t, err)
	msg := err.Error()
	assert.True(t, strings.HasPrefix(msg, "boltbackend: "+path+": locked by pid "), msg)
	assert.False(t, errors.Is(err, state.ErrCorrupt))
}
