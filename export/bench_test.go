package export_test

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/internal/benchkit"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

// The benchmarks below are the export rows of "ftlstate bench", for
// benchstat: export from a bbolt store (what "ftlstate export" does), and
// its baseline, encoding/json marshalling the same records in memory.
// Compare their MB/s; peak-heap-MiB is the heap growth while one export
// runs (benchkit.PeakHeap), which must stay flat from 20k to 200k records.
//
//	go test -run '^$' -bench 'WriteBolt|MarshalIndent' -benchtime 3x ./export

// BenchmarkWriteBolt exports a bbolt store of 20k and 200k records (half
// hosts, half resources) from a read-only Backend.
func BenchmarkWriteBolt(b *testing.B) {
	for _, n := range []int{20_000, 200_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			p := filepath.Join(b.TempDir(), "state.db")
			w, err := boltbackend.Open(p, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := benchkit.Build(w, n/2, n/2); err != nil {
				b.Fatal(err)
			}
			be, err := boltbackend.Open(p, &boltbackend.Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			var cw countingWriter
			b.ReportAllocs()
			for b.Loop() {
				cw = 0
				if err := export.Write(&cw, be, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(cw))
			peak, err := benchkit.PeakHeap(func() error { return export.Write(&cw, be, nil) })
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

// BenchmarkMarshalIndent is export's baseline: json.MarshalIndent of the
// same records, held in memory, as one state.json document.
func BenchmarkMarshalIndent(b *testing.B) {
	for _, n := range []int{20_000, 200_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			c := benchkit.Contents(n/2, n/2)
			var size int
			b.ReportAllocs()
			for b.Loop() {
				out, err := benchkit.MarshalIndent(c)
				if err != nil {
					b.Fatal(err)
				}
				size = len(out)
			}
			b.SetBytes(int64(size))
			peak, err := benchkit.PeakHeap(func() error { _, err := benchkit.MarshalIndent(c); return err })
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

// BenchmarkFTL2 writes a store of 2k and 20k records as an ftl2 file
// (export --format ftl2) and reads it back (import), to show that both
// grow in proportion to the store:
//
//	go test -run '^$' -bench FTL2 -benchtime 3x ./export
func BenchmarkFTL2(b *testing.B) {
	for _, n := range []int{2_000, 20_000} {
		c := benchkit.Contents(n/2, n/2)
		st, err := state.Open(statetest.NewMemory())
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Replace(c, true); err != nil {
			b.Fatal(err)
		}
		var file bytes.Buffer
		if err := export.WriteFTL2(&file, st, nil); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("write/records=%d", n), func(b *testing.B) {
			b.SetBytes(int64(file.Len()))
			b.ReportAllocs()
			for b.Loop() {
				if err := export.WriteFTL2(io.Discard, st, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("read/records=%d", n), func(b *testing.B) {
			b.SetBytes(int64(file.Len()))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := export.ReadFTL2(bytes.NewReader(file.Bytes())); err != nil {
					b.Fatal(err)
				}
			}
		})
		st.Close()
	}
}
