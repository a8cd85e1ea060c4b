package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/internal/benchkit"
)

// The CLI at any size (issue 17, item 17): a single-record write or read
// costs about one transaction whatever the store's size (goal: under 50 ms
// at 100k hosts + 100k resources), and listing 100k hosts takes under
// 0.3 s. Each command runs in-process, as the binary does after it
// starts, with its output discarded (but written: buffered, as to a
// file). Compare the small and large rows of one run:
//
//	go test -run '^$' -bench CLI -benchtime 20x ./cmd/ftlstate

const cliLarge = 100000

var (
	cliStoresOnce sync.Once
	cliStores     map[int]string
	cliStoresErr  error
	// cliStoresDir holds them; TestMain removes it.
	cliStoresDir string
)

// cliStore returns a bbolt store of n hosts + n resources, built once per
// test binary (the large one takes a few seconds).
func cliStore(b *testing.B, n int) string {
	cliStoresOnce.Do(func() {
		dir, err := makeTempDir()
		if err != nil {
			cliStoresErr = err
			return
		}
		cliStoresDir = dir
		cliStores = map[int]string{}
		for _, size := range []int{benchkit.Small, cliLarge} {
			p := filepath.Join(dir, fmt.Sprintf("s%d.db", size))
			bb, err := boltbackend.Open(p, nil)
			if err == nil {
				err = benchkit.Store(bb, benchkit.Contents(size, size))
			}
			if err != nil {
				cliStoresErr = err
				return
			}
			cliStores[size] = p
		}
	})
	if cliStoresErr != nil {
		b.Fatal(cliStoresErr)
	}
	return cliStores[n]
}

func runCLI(b *testing.B, args ...string) {
	if code := run(args, io.Discard, io.Discard); code != 0 {
		b.Fatalf("ftlstate %v: exit %d", args, code)
	}
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs op b.N times and reports, besides the wall time, the CPU time
// per operation: on a shared machine the wall time includes waiting for
// a core, the CPU time does not.
func loop(b *testing.B, op func(i int)) {
	start := cpuTime()
	n := 0
	for i := 0; b.Loop(); i++ {
		op(i)
		n++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(n), "cpu-ms/op")
}

func BenchmarkCLI(b *testing.B) {
	for _, n := range []int{benchkit.Small, cliLarge} {
		label := fmt.Sprintf("%dk+%dk", n/1000, n/1000)
		b.Run("host_add/"+label, func(b *testing.B) {
			p := cliStore(b, n)
			loop(b, func(i int) {
				runCLI(b, "--state", p, "host", "add", fmt.Sprintf("bench-%d-%d", n, i), "--address", "10.0.0.1", "--group", "group01")
			})
		})
		b.Run("host_set/"+label, func(b *testing.B) {
			p := cliStore(b, n)
			loop(b, func(i int) {
				runCLI(b, "--state", p, "host", "set", benchkit.HostName(7), "--var", fmt.Sprintf("n=%d", i))
			})
		})
		b.Run("resource_add/"+label, func(b *testing.B) {
			p := cliStore(b, n)
			loop(b, func(i int) {
				runCLI(b, "--state", p, "resource", "add", fmt.Sprintf("bench:%d", i), "--type", "linode_instance", "--id", "1")
			})
		})
		b.Run("host_show/"+label, func(b *testing.B) {
			p := cliStore(b, n)
			loop(b, func(int) { runCLI(b, "--state", p, "host", "show", benchkit.HostName(n/2)) })
		})
		b.Run("hosts/"+label, func(b *testing.B) {
			p := cliStore(b, n)
			loop(b, func(int) { runCLI(b, "--state", p, "hosts") })
		})
		b.Run("hosts_json/"+label, func(b *testing.B) {
			p := cliStore(b, n)
			loop(b, func(int) { runCLI(b, "--state", p, "hosts", "-o", "json") })
		})
		b.Run("complete/"+label, func(b *testing.B) {
			p := cliStore(b, n)
			loop(b, func(int) { runCLI(b, "--state", p, "__complete", "host", "show", "host-00012") })
		})
	}
}

func makeTempDir() (string, error) { return os.MkdirTemp("", "ftlstate-clibench-") }
