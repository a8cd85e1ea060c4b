package bench_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/cmd/ftlstate/internal/bench"
	"github.com/go-ftl2/ftlstate/internal/benchkit"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

func TestBuildBolt_Load(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.db")
	require.NoError(t, bench.BuildBolt(p, 30, 25))
	st, err := bench.OpenBolt(p)
	require.NoError(t, err)
	defer st.Close()
	hosts, resources := st.Len()
	assert.Equal(t, 30, hosts)
	assert.Equal(t, 25, resources)
	assert.Len(t, st.GetResourcesByType(benchkit.RareType), benchkit.RareMatches(25))
	c, err := benchkit.Load(st)
	require.NoError(t, err)
	assert.Len(t, c.Hosts, 30)
	assert.Len(t, c.Resources, 25)

	j := filepath.Join(t.TempDir(), "s.json")
	require.NoError(t, bench.BuildFile(j, c))
	fst, err := bench.OpenFile(j)
	require.NoError(t, err)
	defer fst.Close()
	hosts, resources = fst.Len()
	assert.Equal(t, 30, hosts)
	assert.Equal(t, 25, resources)
}

func TestDesign_WritesTheWholeDocument(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	d, err := bench.NewDesign(p, benchkit.Contents(3, 2))
	require.NoError(t, err)
	require.NoError(t, d.AddHost(benchkit.Host(3)))
	require.NoError(t, d.AddHost(benchkit.Host(0)), "an update")
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	c, err := statefile.Decode(f, nil)
	require.NoError(t, err, "the document's file is a state.json")
	assert.Len(t, c.Hosts, 4)
	assert.Len(t, c.Resources, 2)
	assert.NoFileExists(t, p+".tmp", "renamed over the file")
}

func TestTargets_MissingRowsMiss(t *testing.T) {
	ts := bench.Targets(&bench.Report{Records: 1000, Writers: 32})
	require.Len(t, ts, 10)
	for _, tg := range ts {
		assert.False(t, tg.Pass, tg.ID)
	}
}

func TestTargets_Check(t *testing.T) {
	rep := &bench.Report{Records: 1000, Writers: 32, Rows: []*bench.Row{
		{ID: "floor", MedianNS: 100},
		{ID: "bbolt.add_host.1k", MedianNS: 290, OpsPerSec: 1000},
		{ID: "bbolt.add_host.10k", MedianNS: 300},
		{ID: "bbolt.add_host.large", MedianNS: 310},
		{ID: "bbolt.writers", OpsPerSec: 9999},
		{ID: "design.add_host.10k", MedianNS: 30000},
		{ID: "bbolt.open", MedianNS: 50},
		{ID: "file.open", MedianNS: 100},
		{ID: "bbolt.export.small", PeakHeapBytes: 1 << 20},
		{ID: "bbolt.export.large", MBPerSec: 50, PeakHeapBytes: 64 << 20},
		{ID: "json.marshal.large", MBPerSec: 100},
		{ID: "bbolt.add_resource.1k", MedianNS: 300},
		{ID: "bbolt.operation.1k", MedianNS: 660, OpsPerSec: 100},
		{ID: "bbolt.add_resource.writers", OpsPerSec: 2000},
		{ID: "bbolt.operation.writers", OpsPerSec: 799},
	}}
	got := map[string]bool{}
	for _, tg := range bench.Targets(rep) {
		got[tg.ID] = tg.Pass
	}
	assert.Equal(t, map[string]bool{
		"single_writer_floor_1k":    true,
		"single_writer_floor_large": false, // 3.1x
		"single_writer_flat":        true,
		"writers_throughput":        false, // 9.999x
		"design_10k":                true,  // exactly 100x
		"open":                      true,  // exactly 0.5x
		"export_throughput":         true,  // exactly 0.5x
		"export_memory":             true,  // 63 MiB
		"operation_cost":            true,  // exactly 2.2x
		"operation_writers":         false, // 1598 writes/s vs 2000: 0.799
	}, got)
}

func TestRun_CancelledCleansUp(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := bench.Run(ctx, bench.Config{Dir: dir, Records: 200, Duration: time.Millisecond})
	require.ErrorIs(t, err, context.Canceled)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "the run's directory is removed")
}

func TestRun_RefusesBadSizes(t *testing.T) {
	_, err := bench.Run(context.Background(), bench.Config{Dir: t.TempDir(), Records: 10})
	require.ErrorIs(t, err, state.ErrInvalid)
}

// BenchmarkDesign_AddHost is the design document's AddHost (whole-file
// JSON rewrite, fixed temp name, rename, no fsync) in a store of 1k and
// 10k hosts: the baseline the backends' write benchmarks are compared
// with (boltbackend BenchmarkAddHost, filebackend BenchmarkCommit).
func BenchmarkDesign_AddHost(b *testing.B) {
	for _, n := range []int{benchkit.Small, benchkit.Medium} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			d, err := bench.NewDesign(filepath.Join(b.TempDir(), "state.json"), benchkit.Contents(n, 0))
			if err != nil {
				b.Fatal(err)
			}
			var lat benchkit.Latencies
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				h := benchkit.Host(n + i)
				b.StartTimer()
				start := time.Now()
				if err := d.AddHost(h); err != nil {
					b.Fatal(err)
				}
				lat.Add(start)
			}
			b.ReportMetric(float64(lat.Median()), "median-ns")
			b.ReportMetric(float64(lat.P99()), "p99-ns")
		})
	}
}
