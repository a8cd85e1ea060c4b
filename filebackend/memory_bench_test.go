package filebackend_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/internal/benchkit"
	"github.com/go-ftl2/ftlstate/state"
)

// BenchmarkMemory measures the peak heap growth of the JSON backend's
// load and write paths against the size of the file: opening the store
// and committing one host (what `ftlstate host add` does), through the
// Backend alone and through a State, for a store of many records and for
// one holding a single large var. The figure is peak-heap/file (the goal:
// at most 3x, plus a constant). Run it with
//
//	go test -run '^$' -bench Memory -benchtime 1x ./filebackend
func BenchmarkMemory(b *testing.B) {
	shapes := map[string]func() *state.Contents{
		"records=100k+100k": func() *state.Contents { return benchkit.Contents(100_000, 100_000) },
		"var=64MiB": func() *state.Contents {
			c := benchkit.Contents(10, 10)
			c.Hosts[benchkit.HostName(0)].Vars["blob"] = strings.Repeat("x", 64<<20)
			return c
		},
	}
	for name, shape := range shapes {
		p := filepath.Join(b.TempDir(), "state.json")
		writeStateFile(b, p, shape())
		fi, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		add := func(be state.Backend) error {
			now := state.Timestamp(time.Now())
			_, err := be.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: "new",
				Host: &state.HostState{Name: "new", CreatedAt: now, UpdatedAt: now}}}})
			return err
		}
		for _, via := range []string{"backend", "state"} {
			b.Run(name+"/"+via, func(b *testing.B) {
				var peak int64
				for range b.N {
					got, err := benchkit.PeakHeap(func() error {
						be, err := filebackend.Open(p, nil)
						if err != nil {
							return err
						}
						if via == "backend" {
							if err := add(be); err != nil {
								return err
							}
							return be.Close()
						}
						st, err := state.Open(be)
						if err != nil {
							return err
						}
						if err := st.AddHost(&state.HostState{Name: "new"}); err != nil {
							return err
						}
						return st.Close()
					})
					if err != nil {
						b.Fatal(err)
					}
					peak = max(peak, got)
				}
				b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(peak)/float64(fi.Size()), "peak-heap/file")
			})
		}
	}
}

// TestMemory_BackendHoldsAboutTheFile: an open Backend keeps its store in
// about the file's size (the records' text), not the decoded records
// (which took twice the file, and the encoding cache once more, so that a
// host add on a 1 GiB store used about 7 GB). Measured as the live heap
// after a collection, which does not depend on the GC's timing.
func TestMemory_BackendHoldsAboutTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	writeStateFile(t, p, benchkit.Contents(20_000, 20_000))
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	live := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := live()
	be := open(t, p, nil)
	addHost(t, be, "new", nil)
	grown := float64(live()-before) / float64(fi.Size())
	t.Logf("file %.1f MiB, live heap grew %.2fx", float64(fi.Size())/(1<<20), grown)
	if grown > 1.5 {
		t.Errorf("an open Backend holds %.2fx its file's size; want at most 1.5x", grown)
	}
	runtime.KeepAlive(be)
}
