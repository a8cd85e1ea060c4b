package filebackend_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/internal/benchkit"
	"github.com/go-ftl2/ftlstate/state"
)

// Benchmarks through state.State, with the records of "ftlstate bench"
// (internal/benchkit), beside BenchmarkCommit and BenchmarkOpen, which call
// the Backend directly:
//
//	go test -run '^$' -bench 'Update10|OpenState' -benchtime 20x ./filebackend

// BenchmarkUpdate10: one Update of 10 changes (5 new hosts, 5 new
// resources) in a store of 1k and 10k hosts.
func BenchmarkUpdate10(b *testing.B) {
	for _, n := range []int{benchkit.Small, benchkit.Medium} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			p := filepath.Join(b.TempDir(), "state.json")
			buildFile(b, p, benchkit.Contents(n, 0))
			st, err := openState(p)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			var lat benchkit.Latencies
			b.ReportAllocs()
			for i := n; b.Loop(); i += 5 {
				start := time.Now()
				err := st.Update(func(tx *state.Tx) error {
					for j := i; j < i+5; j++ {
						if err := tx.AddHost(benchkit.Host(j)); err != nil {
							return err
						}
						if err := tx.AddResource(benchkit.ResourceKey(j), benchkit.Resource(j)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				lat.Add(start)
			}
			b.ReportMetric(float64(lat.Median()), "median-ns")
			b.ReportMetric(float64(lat.P99()), "p99-ns")
		})
	}
}

// BenchmarkOpenState: filebackend.Open plus state.Open (what a caller
// pays to get a State) of a store of 100k hosts and 100k resources, to
// compare with boltbackend's BenchmarkOpen/State.
func BenchmarkOpenState(b *testing.B) {
	p := filepath.Join(b.TempDir(), "state.json")
	buildFile(b, p, benchkit.Contents(100_000, 100_000))
	b.ReportAllocs()
	for b.Loop() {
		st, err := openState(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// buildFile creates the store path holding c, in one rewrite.
func buildFile(b *testing.B, path string, c *state.Contents) {
	b.Helper()
	be, err := filebackend.Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := benchkit.Store(be, c); err != nil {
		b.Fatal(err)
	}
}

// openState opens the store path as a State.
func openState(path string) (*state.State, error) {
	be, err := filebackend.Open(path, nil)
	if err != nil {
		return nil, err
	}
	return state.Open(be)
}
