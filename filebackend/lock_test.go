package filebackend_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
)

// The lock tests run a second process: this test binary, re-executed with
// envHelper set, which runs helper instead of the tests.
const envHelper = "FILEBACKEND_TEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(envHelper); h != "" {
		os.Exit(helper(h))
	}
	os.Exit(m.Run())
}

// helper runs a helper command: "hold PATH" opens the store, says
// "holding" and waits to be killed; "try PATH TIMEOUT [HOST]" opens it with
// that timeout, prints the outcome ("opened" or the error), adds HOST when
// given ("added HOST"), and exits 0, 3 (ErrLocked) or 4 (other error).
func helper(cmd string) int {
	f := strings.Fields(cmd)
	switch {
	case len(f) == 2 && f[0] == "hold":
		b, err := filebackend.Open(f[1], nil)
		if err != nil {
			fmt.Println(err)
			return 4
		}
		now := state.Timestamp(time.Now())
		if _, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: "held",
			Host: &state.HostState{Name: "held", CreatedAt: now, UpdatedAt: now}}}}); err != nil {
			fmt.Println(err)
			return 4
		}
		fmt.Println("holding")
		time.Sleep(time.Minute) // killed long before
		return 5
	case (len(f) == 3 || len(f) == 4) && f[0] == "try":
		timeout, err := time.ParseDuration(f[2])
		if err != nil {
			fmt.Println(err)
			return 4
		}
		b, err := filebackend.Open(f[1], &filebackend.Options{Timeout: timeout})
		if err != nil {
			fmt.Println(err)
			if errors.Is(err, state.ErrLocked) {
				return 3
			}
			return 4
		}
		fmt.Println("opened")
		if len(f) == 4 {
			now := state.Timestamp(time.Now())
			if _, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: f[3],
				Host: &state.HostState{Name: f[3], CreatedAt: now, UpdatedAt: now}}}}); err != nil {
				fmt.Println(err)
				return 4
			}
			fmt.Println("added", f[3])
		}
		if err := b.Close(); err != nil {
			fmt.Println(err)
			return 4
		}
		return 0
	}
	fmt.Println("bad helper command", cmd)
	return 4
}

func helperCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"="+strings.Join(args, " "))
	cmd.Stderr = os.Stderr
	return cmd
}

// startHolder starts a process that holds the store at p, and returns once
// it does.
func startHolder(t *testing.T, p string) *exec.Cmd {
	t.Helper()
	cmd := helperCmd("hold", p)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "holder output")
	require.Equal(t, "holding\n", line)
	return cmd
}

// TestLock_SecondProcessIsRefused: a store held by another process gives
// ErrLocked naming the holder, after the timeout; once the holder is
// killed with SIGKILL the lock is free at once, and the dead holder's info
// is reported as stale.
func TestLock_SecondProcessIsRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	holder := startHolder(t, p)
	pid := holder.Process.Pid

	_, err := filebackend.Open(p, nil)
	require.ErrorIs(t, err, state.ErrLocked)
	var le *state.LockError
	require.ErrorAs(t, err, &le)
	require.NotNil(t, le.Holder, "the holder is named")
	assert.Equal(t, pid, le.Holder.PID)
	assert.False(t, le.Stale)
	assert.Zero(t, le.Waited, "Timeout zero: no wait")
	host, _ := os.Hostname()
	assert.Equal(t, host, le.Holder.Host)
	assert.Contains(t, err.Error(), fmt.Sprintf("%s: locked by pid %d (%s) on host %s", p, pid, filepath.Base(os.Args[0]), host))

	const timeout = 300 * time.Millisecond
	_, err = filebackend.Open(p, &filebackend.Options{Timeout: timeout})
	require.ErrorAs(t, err, &le)
	assert.Equal(t, pid, le.Holder.PID)
	assert.GreaterOrEqual(t, le.Waited, timeout-time.Millisecond, "it waited its timeout before giving up")
	assert.Contains(t, err.Error(), "(waited ")

	// A read-only open needs no lock.
	ro, err := filebackend.Open(p, &filebackend.Options{ReadOnly: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"held"}, hostNames(snapshot(t, ro)))
	require.NoError(t, ro.Close())

	require.NoError(t, holder.Process.Signal(syscall.SIGKILL))
	_ = holder.Wait()

	b, err := filebackend.Open(p, nil) // Timeout zero: free at once
	require.NoError(t, err, "the kernel released the dead holder's lock")
	defer b.Close()
	stale := b.StaleLock()
	require.NotNil(t, stale, "the dead holder's info is reported")
	assert.Equal(t, pid, stale.PID)
	assert.Equal(t, []string{"held"}, hostNames(snapshot(t, b)), "its acknowledged commit is there")
	info, err := lockinfo.Read(lockinfo.Path(p))
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), info.PID, "the new holder wrote its own info")
}

// TestLock_OtherProcessWaitsThenFails: the other direction, with the
// second process's own timeout.
func TestLock_OtherProcessWaitsThenFails(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	b := open(t, p, nil)

	cmd := helperCmd("try", p, "200ms")
	out, err := cmd.Output()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "output: %s", out)
	assert.Equal(t, 3, exit.ExitCode(), "ErrLocked; output: %s", out)
	assert.Contains(t, string(out), fmt.Sprintf("filebackend: %s: locked by pid %d", p, os.Getpid()))
	assert.Contains(t, string(out), "(waited ")

	// A process that waits gets the lock as soon as it is released.
	cmd = helperCmd("try", p, "1m")
	var buf strings.Builder
	cmd.Stdout = &buf
	require.NoError(t, cmd.Start())
	require.NoError(t, b.Close())
	require.NoError(t, cmd.Wait(), "output: %s", buf.String())
	assert.Equal(t, "opened\n", buf.String())
}

// TestLock_StaleInfoWithoutHolder: lock info left by a dead process does
// not block anyone.
func TestLock_StaleInfoWithoutHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	dead := lockinfo.Self()
	dead.PID = cmd.Process.Pid
	f, err := lockinfo.Create(lockinfo.Path(p), dead)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	b := open(t, p, nil)
	require.NotNil(t, b.StaleLock())
	assert.Equal(t, dead.PID, b.StaleLock().PID)
}
