package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/state"
)

// binary is the ftlstate binary built once for the black-box tests.
var binary string

func TestMain(m *testing.M) {
	// Re-executed as a lock holder: open the store, say so, wait to die.
	if p := os.Getenv("FTLSTATE_TEST_HOLD"); p != "" {
		hold(p)
		return
	}
	// Re-executed as a holder that writes (live_test.go).
	if p := os.Getenv(liveWriterEnv); p != "" {
		liveWriter(p)
		return
	}
	dir, err := os.MkdirTemp("", "ftlstate-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "ftlstate")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if cliStoresDir != "" {
		os.RemoveAll(cliStoresDir) // the benchmarks' stores
	}
	os.Exit(code)
}

// hold opens the store at p for writing and keeps it until killed.
func hold(p string) {
	var b state.Backend
	var err error
	switch kindOf(p) {
	case kindJSON:
		b, err = filebackend.Open(p, nil)
	case kindEtcd:
		// A short lease, so that tests of a killed holder are quick.
		var eps []string
		var prefix string
		if eps, prefix, _, err = parseEtcd(p); err == nil {
			b, err = etcdbackend.Open(context.Background(), etcdbackend.Config{Endpoints: eps, Prefix: prefix, SessionTTL: 3 * time.Second})
		}
	default:
		b, err = boltbackend.Open(p, nil)
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	defer b.Close()
	if res := os.Getenv("FTLSTATE_TEST_HOLD_BEGIN"); res != "" {
		// Begin an operation and hold it in flight, as a run does while
		// it waits for the cloud.
		st, err := state.Open(b)
		if err == nil {
			_, err = st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: res})
		}
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	}
	fmt.Println("held")
	time.Sleep(time.Minute)
}

// startHolder starts a process (the test binary) holding the store's lock.
func startHolder(t *testing.T, p string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "FTLSTATE_TEST_HOLD="+p), env...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "held\n", line)
	return cmd
}

// bin runs the built binary.
func bin(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func TestBinary_EndToEnd(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	env := []string{"FTLSTATE_PATH=" + db}
	r := bin(t, env, "host", "add", "web01", "--address", "192.168.1.10", "--group", "webservers", "--var", "http_port=80")
	require.Equal(t, 0, r.code, r.stderr)
	r = bin(t, env, "hosts", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var hosts []state.HostState
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &hosts))
	require.Len(t, hosts, 1)
	assert.Equal(t, "192.168.1.10", hosts[0].Address)

	// Usage errors exit 2, failures 1, each one line on stderr.
	r = bin(t, env, "hosts", "--nope")
	assert.Equal(t, 2, r.code)
	assert.True(t, strings.HasPrefix(r.stderr, "ftlstate: unknown flag: --nope\n"), r.stderr)
	r = bin(t, []string{"FTLSTATE_PATH=" + filepath.Join(dir, "none.db")}, "hosts")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "ftlstate: "+filepath.Join(dir, "none.db")+": no such store (--state, $FTLSTATE_PATH)\n", r.stderr)
}

func TestBinary_LockedByAnotherProcess(t *testing.T) {
	for _, name := range []string{"state.db", "state.json"} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			ok(t, "--state", p, "host", "add", "web01", "--address", "a")
			holder := startHolder(t, p)
			pid := holder.Process.Pid

			r := bin(t, nil, "--state", p, "host", "add", "web02", "--address", "b")
			assert.Equal(t, 1, r.code)
			want := fmt.Sprintf("ftlstate: %s: locked by pid %d", p, pid)
			assert.True(t, strings.HasPrefix(r.stderr, want), "names the holder: %q", r.stderr)
			assert.Contains(t, r.stderr, "retry with --lock-timeout 30s")
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line")

			start := time.Now()
			r = bin(t, nil, "--state", p, "--lock-timeout", "300ms", "host", "add", "web02", "--address", "b")
			assert.Equal(t, 1, r.code)
			assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "waited its timeout")
			assert.Contains(t, r.stderr, "waited")
			assert.NotContains(t, r.stderr, "retry with")

			// SIGKILL frees the lock at once; the dead holder's info is
			// stale, and check says so, for both backends (a JSON store's
			// check used to say nothing).
			require.NoError(t, holder.Process.Signal(syscall.SIGKILL))
			holder.Wait()
			r = bin(t, nil, "--state", p, "check")
			assert.Equal(t, 0, r.code, r.stderr)
			assert.Contains(t, r.stdout, fmt.Sprintf("note: %s: lock info left by pid %d", p, pid))
			assert.Contains(t, r.stdout, "which is gone (a crash or kill); the lock is free")
			r = bin(t, nil, "--state", p, "check", "-o", "json")
			assert.Equal(t, 0, r.code, r.stderr)
			assert.Contains(t, r.stdout, fmt.Sprintf(`"pid": %d`, pid))
			r = bin(t, nil, "--state", p, "host", "add", "web02", "--address", "b")
			assert.Equal(t, 0, r.code, r.stderr)
			r = bin(t, nil, "--state", p, "hosts", "-o", "json")
			assert.Contains(t, r.stdout, "web02")
		})
	}
}

// TestBinary_Ansible drives real ansible-inventory through a two-line
// inventory script that calls the ftlstate binary.
func TestBinary_Ansible(t *testing.T) {
	ansible, err := exec.LookPath("ansible-inventory")
	if err != nil {
		if os.Getenv("FTLSTATE_REQUIRE_ANSIBLE") == "1" {
			t.Fatal("ansible-inventory not found and FTLSTATE_REQUIRE_ANSIBLE=1 (install ansible-core)")
		}
		t.Skip("ansible-inventory not installed (apt-get install ansible-core); set FTLSTATE_REQUIRE_ANSIBLE=1 to make this a failure")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	seed(t, db)
	ok(t, "--state", db, "host", "add", "lonely", "--address", "10.0.0.9", "--var", `tags=["a","b"]`)
	script := filepath.Join(dir, "ftlstate-inventory.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nexec "+binary+" --state "+db+" inventory \"$@\"\n"), 0o700))

	home := t.TempDir()
	env := append(os.Environ(),
		"HOME="+home, "ANSIBLE_LOCAL_TEMP="+filepath.Join(home, "tmp"), "ANSIBLE_REMOTE_TEMP="+filepath.Join(home, "rtmp"),
		"ANSIBLE_INVENTORY_ENABLED=script", "ANSIBLE_INVENTORY_UNPARSED_FAILED=1", "ANSIBLE_CONFIG="+filepath.Join(home, "none.cfg"),
		"ANSIBLE_NOCOLOR=1", "ANSIBLE_DEPRECATION_WARNINGS=0")
	runAnsible := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, ansible, append([]string{"-i", script}, args...)...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		require.NoError(t, cmd.Run(), "ansible-inventory %v: %s", args, errb.String())
		assert.NotContains(t, errb.String(), "WARNING", "ansible warned: %s", errb.String())
		return out.String()
	}
	var got struct {
		All  struct{ Children []string } `json:"all"`
		Meta struct {
			Hostvars map[string]map[string]any `json:"hostvars"`
		} `json:"_meta"`
		Web struct{ Hosts []string } `json:"webservers"`
		DB  struct{ Hosts []string } `json:"databases"`
		Ung struct{ Hosts []string } `json:"ungrouped"`
	}
	require.NoError(t, json.Unmarshal([]byte(runAnsible("--list")), &got))
	assert.ElementsMatch(t, []string{"webservers", "databases", "ungrouped"}, got.All.Children)
	assert.Equal(t, []string{"web01"}, got.Web.Hosts)
	assert.Equal(t, []string{"db01"}, got.DB.Hosts)
	assert.Equal(t, []string{"lonely"}, got.Ung.Hosts)
	web := got.Meta.Hostvars["web01"]
	assert.Equal(t, "192.168.1.10", web["ansible_host"])
	assert.Equal(t, "admin", web["ansible_user"])
	assert.Equal(t, 80.0, web["http_port"])
	assert.Equal(t, 2222.0, got.Meta.Hostvars["db01"]["ansible_port"])
	assert.Equal(t, "15", got.Meta.Hostvars["db01"]["postgres_version"])
	assert.Equal(t, []any{"a", "b"}, got.Meta.Hostvars["lonely"]["tags"])

	graph := runAnsible("--graph")
	for _, want := range []string{"@all:", "@webservers:", "--web01", "@databases:", "--db01", "@ungrouped:", "--lonely"} {
		assert.Contains(t, graph, want)
	}
	var hv map[string]any
	require.NoError(t, json.Unmarshal([]byte(runAnsible("--host", "db01")), &hv))
	assert.Equal(t, "192.168.1.20", hv["ansible_host"])
}

func TestBinary_Demo(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	for _, kills := range []int{1, 3} {
		t.Run(fmt.Sprintf("kills=%d", kills), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(binary, "demo", "--hosts", "200", "--workers", "8", "--kills", fmt.Sprint(kills))
			cmd.Dir = dir
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			require.NoError(t, cmd.Run(), errb.String())
			s := out.String()
			t.Log(s)
			assert.Regexp(t, `run 1: killed with SIGKILL at a random moment, after \d+ hosts were provisioned`, s)
			for run := 2; run <= kills; run++ {
				assert.Regexp(t, fmt.Sprintf(`run %d: found \d+ pending operations, settled \d+ \(\d+ adopted, \d+ re-created\), provisioned \d+ more hosts, then was killed with SIGKILL`, run), s)
			}
			last := regexp.MustCompile(fmt.Sprintf(`run %d: found (\d+) pending operations, settled all \((\d+) adopted, (\d+) re-created\), skipped (\d+) hosts already in the store, provisioned (\d+) in`, kills+1)).FindStringSubmatch(s)
			require.NotNil(t, last, s)
			n := func(i int) int { v, _ := strconv.Atoi(last[i]); return v }
			assert.Equal(t, n(1), n(2)+n(3), "every pending operation settled")
			assert.Equal(t, 200, n(1)+n(4)+n(5), "pending, skipped and provisioned cover every host once")
			assert.Contains(t, s, "cloud: 200 instances; store: 200 hosts, 200 resources, 0 pending; orphaned 0, duplicated 0")
			assert.Contains(t, s, "caches 66, databases 67, webservers 67")
			for _, f := range []string{demoStore, demoExport, demoCloud} {
				assert.FileExists(t, filepath.Join(dir, f))
			}

			// What the demo says, checked from outside: the cloud's file
			// against the store.
			r := bin(t, nil, "--state", filepath.Join(dir, demoStore), "resources", "-o", "json", "--show-secrets")
			require.Equal(t, 0, r.code, r.stderr)
			var res []keyedResource
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
			ids := map[string]bool{}
			for _, x := range res {
				ids[x.ID] = true
			}
			cloud, err := os.ReadFile(filepath.Join(dir, demoCloud))
			require.NoError(t, err)
			lines := strings.Split(strings.TrimSpace(string(cloud)), "\n")
			assert.Len(t, lines, 200, "one instance per host in the cloud")
			for _, l := range lines {
				var inst struct{ ID string }
				require.NoError(t, json.Unmarshal([]byte(l), &inst))
				assert.True(t, ids[inst.ID], "instance %s is recorded", inst.ID)
			}
			r = bin(t, nil, "--state", filepath.Join(dir, demoStore), "pending", "-o", "name")
			assert.Empty(t, r.stdout)
			r = bin(t, nil, "--state", filepath.Join(dir, demoExport), "hosts", "-o", "json")
			require.Equal(t, 0, r.code, r.stderr)
			var hosts []state.HostState
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &hosts))
			assert.Len(t, hosts, 200, "the export is a valid state.json with every host")
		})
	}
}
