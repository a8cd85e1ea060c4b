package powerfs_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/internal/powerfs"
	"github.com/go-ftl2/ftlstate/internal/testfs"
)

// The process serving a mount must not fault on a map of its files (see
// the package documentation), so what uses mmap, and what is killed at
// the crash, runs in a helper process: this test binary, run again with
// POWERFS_HELPER set.
func TestMain(m *testing.M) {
	if h := os.Getenv("POWERFS_HELPER"); h != "" {
		if err := helper(h, os.Args[len(os.Args)-1]); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helper(name, path string) error {
	switch name {
	case "mmap", "mmap-sync":
		return mmapHelper(path, name == "mmap-sync")
	case "append":
		return appendHelper(path)
	}
	return fmt.Errorf("unknown helper %q", name)
}

// pattern returns n bytes that differ from page to page.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i/4096) + byte(i%251)
	}
	return b
}

// mmapHelper writes the file at path with pwrite while reading it through
// a shared read-only map, as bbolt does, and checks that the map shows
// every write at once, synced or not.
func mmapHelper(path string, sync bool) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	data := pattern(3*4096, 1)
	if _, err := f.WriteAt(data, 0); err != nil {
		return err
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, 8*4096, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return err
	}
	defer syscall.Munmap(m)
	if !bytes.Equal(m[:len(data)], data) {
		return fmt.Errorf("the map does not show the unsynced pages")
	}
	// Writes after the map exists, into a mapped page (partly) and past
	// the end after growing the file (bbolt's ftruncate, then pages).
	if _, err := f.WriteAt([]byte("changed"), 4096+100); err != nil {
		return err
	}
	if got := string(m[4096+100 : 4096+107]); got != "changed" {
		return fmt.Errorf("the map shows %q after a pwrite, want %q", got, "changed")
	}
	if err := f.Truncate(5 * 4096); err != nil {
		return err
	}
	tail := pattern(4096, 9)
	if _, err := f.WriteAt(tail, 4*4096); err != nil {
		return err
	}
	if !bytes.Equal(m[4*4096:5*4096], tail) {
		return fmt.Errorf("the map does not show a page written after growing the file")
	}
	if m[3*4096+7] != 0 {
		return fmt.Errorf("the grown, unwritten page is not zero")
	}
	if sync {
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return err
		}
	}
	fmt.Println("ok")
	return nil
}

// appendHelper appends numbered lines to path, each fdatasynced before it
// is acknowledged on stdout, until it is killed.
func appendHelper(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		if _, err := fmt.Fprintf(f, "%06d %s\n", i, strings.Repeat("x", i%3000)); err != nil {
			return err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return err
		}
		fmt.Println(i)
	}
}

func runHelper(t *testing.T, name, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", path)
	// Under -race a process sleeps a second at exit: not here.
	cmd.Env = append(os.Environ(), "POWERFS_HELPER="+name, "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	cmd.Stderr = os.Stderr
	return cmd
}

func TestMmap_SeesUnsyncedWrites(t *testing.T) {
	for _, name := range []string{"mmap", "mmap-sync"} {
		t.Run(name, func(t *testing.T) {
			initial := string(pattern(4096, 200))
			backing := backingWith(t, map[string]string{"db": initial})
			fs := testfs.PowerFS(t, backing, nil)
			out, err := runHelper(t, name, filepath.Join(fs.Dir(), "db")).Output()
			if err != nil || string(out) != "ok\n" {
				t.Fatalf("helper: %v, output %q", err, out)
			}
			crash(t, fs)
			got := tree(t, backing)["db"]
			if name == "mmap" {
				if got != initial {
					t.Fatalf("unsynced writes survived the crash (%d bytes)", len(got))
				}
				return
			}
			want := pattern(5*4096, 1)
			copy(want[4096+100:], "changed")
			clear(want[3*4096 : 4*4096])
			copy(want[4*4096:], pattern(4096, 9))
			if got != string(want) {
				t.Fatalf("after fdatasync and the crash the file holds %d bytes, not what was written", len(got))
			}
		})
	}
}

// TestCrash_WhileAProcessWrites cuts the power under a process that
// appends and fdatasyncs: every line it acknowledged is there, at most one
// more (perhaps torn), and Crash waits for the killed process to let go
// of the mount.
func TestCrash_WhileAProcessWrites(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			backing := backingWith(t, map[string]string{"log": ""})
			fs := testfs.PowerFS(t, backing, &powerfs.Options{Torn: true, Seed: seed})
			cmd := runHelper(t, "append", filepath.Join(fs.Dir(), "log"))
			stdout, err := cmd.StdoutPipe()
			must(t, err)
			must(t, cmd.Start())
			sc := bufio.NewScanner(stdout)
			acked := -1
			for acked < 100*int(seed) && sc.Scan() {
				acked, _ = strconv.Atoi(sc.Text())
			}
			must(t, cmd.Process.Signal(syscall.SIGKILL))
			start := time.Now()
			r := crash(t, fs)
			t.Logf("crash took %v", time.Since(start))
			for sc.Scan() {
				acked, _ = strconv.Atoi(sc.Text())
			}
			cmd.Wait()
			lines := strings.SplitAfter(tree(t, backing)["log"], "\n")
			last := lines[len(lines)-1] // "" or a torn line
			lines = lines[:len(lines)-1]
			for i, l := range lines {
				if want := fmt.Sprintf("%06d %s\n", i, strings.Repeat("x", i%3000)); l != want {
					t.Fatalf("line %d: %q, want %q", i, l, want)
				}
			}
			if len(lines) < acked+1 || len(lines) > acked+2 {
				t.Fatalf("the log holds %d lines, %d were acknowledged", len(lines), acked+1)
			}
			if want := fmt.Sprintf("%06d %s\n", len(lines), strings.Repeat("x", len(lines)%3000)); !strings.HasPrefix(want, last) {
				t.Fatalf("the last, unsynced line is not a prefix of the line being written: %q", last)
			}
			t.Logf("%d lines acknowledged, %d found; %v", acked+1, len(lines), r)
		})
	}
}
