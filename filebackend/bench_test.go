package filebackend_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/internal/benchkit"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

func writeStateFile(b testing.TB, p string, c *state.Contents) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	if err := statefile.EncodeContents(f, c, nil); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCommit: the cost of one committed change (one host updated) in
// a store of N hosts, from one writer and from 32 concurrent writers
// (which share rewrites: see the rewrites/op metric).
func BenchmarkCommit(b *testing.B) {
	for _, hosts := range []int{100, 1000, 10000} {
		for _, writers := range []int{1, 32} {
			b.Run(fmt.Sprintf("hosts=%d/writers=%d", hosts, writers), func(b *testing.B) {
				p := filepath.Join(b.TempDir(), "state.json")
				writeStateFile(b, p, benchkit.Contents(hosts, 0))
				be, err := filebackend.Open(p, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer be.Close()
				var seq atomic.Int64
				commit := func() {
					i := int(seq.Add(1))
					now := state.Timestamp(time.Now())
					h := benchkit.Host(i % hosts)
					if _, err := be.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: h.Name, Host: h}}}); err != nil {
						b.Error(err)
					}
				}
				before := filebackend.Rewrites(be)
				b.ReportAllocs()
				b.ResetTimer()
				if writers == 1 {
					for range b.N {
						commit()
					}
				} else {
					b.SetParallelism((writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							commit()
						}
					})
				}
				b.StopTimer()
				b.ReportMetric(float64(filebackend.Rewrites(be)-before)/float64(b.N), "rewrites/op")
			})
		}
	}
}

// BenchmarkOpen: opening (reading, decoding and validating) a store of
// 100k hosts and 100k resources.
func BenchmarkOpen(b *testing.B) {
	p := filepath.Join(b.TempDir(), "state.json")
	writeStateFile(b, p, benchkit.Contents(100_000, 100_000))
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for range b.N {
		be, err := filebackend.Open(p, nil)
		if err != nil {
			b.Fatal(err)
		}
		be.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
}
