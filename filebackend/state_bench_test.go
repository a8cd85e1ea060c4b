package filebackend_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/internal/bench"
	"github.com/go-ftl2/ftlstate/state"
)

// Benchmarks through state.State, with the records of "ftlstate bench"
// (internal/bench), beside BenchmarkCommit and BenchmarkOpen, which call
// the Backend directly:
//
//	go test -run '^$' -bench 'Update10|OpenState' -benchtime 20x ./filebackend

// BenchmarkUpdate10: one Update of 10 changes (5 new hosts, 5 new
// resources) in a store of 1k and 10k hosts.
func BenchmarkUpdate10(b *testing.B) {
	for _, n := range []int{bench.Small, bench.Medium} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			p := filepath.Join(b.TempDir(), "state.json")
			if err := bench.BuildFile(p, bench.Contents(n, 0)); err != nil {
				b.Fatal(err)
			}
			st, err := bench.OpenFile(p)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			var lat bench.Latencies
			b.ReportAllocs()
			for i := n; b.Loop(); i += 5 {
				start := time.Now()
				err := st.Update(func(tx *state.Tx) error {
					for j := i; j < i+5; j++ {
						if err := tx.AddHost(bench.Host(j)); err != nil {
							return err
						}
						if err := tx.AddResource(bench.ResourceKey(j), bench.Resource(j)); err != nil {
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
	if err := bench.BuildFile(p, bench.Contents(100_000, 100_000)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		st, err := bench.OpenFile(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
