package boltbackend_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/internal/benchkit"
	"github.com/go-ftl2/ftlstate/state"
)

// Benchmarks; ratios between them matter more than absolute numbers on a
// shared machine, so run them together:
//
//	go test -run '^$' -bench 'Floor|AddHost|Update10|Get' -benchtime 2000x ./boltbackend
//	go test -run '^$' -bench Open -benchtime 5x ./boltbackend
//
// BenchmarkFsyncFloor is the reference: one 4 KiB write and fsync in the
// directory the stores live in.

func BenchmarkFsyncFloor(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "floor"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	if _, err := f.Write(buf); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	var lat benchkit.Latencies
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if _, err := f.WriteAt(buf, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		lat.Add(start)
	}
	lat.Report(b)
}

// templates caches populated stores by size, built once per process and
// copied for each benchmark.
var templates = struct {
	sync.Mutex
	dir   string
	paths map[[2]int]string
}{paths: map[[2]int]string{}}

func removeTemplates() {
	if templates.dir != "" {
		os.RemoveAll(templates.dir)
	}
}

// populated returns a fresh store holding hosts hosts and resources
// resources, in dir.
func populated(b *testing.B, dir string, hosts, resources int) string {
	b.Helper()
	templates.Lock()
	defer templates.Unlock()
	key := [2]int{hosts, resources}
	tpl, ok := templates.paths[key]
	if !ok {
		if templates.dir == "" {
			d, err := os.MkdirTemp("", "boltbackend-bench-")
			if err != nil {
				b.Fatal(err)
			}
			templates.dir = d
		}
		tpl = filepath.Join(templates.dir, fmt.Sprintf("h%d-r%d.db", hosts, resources))
		be, err := boltbackend.Open(tpl, nil)
		if err != nil {
			b.Fatal(err)
		}
		const chunk = 10000
		for start := 0; start < max(hosts, resources); start += chunk {
			batch := &state.Batch{Time: time.Now()}
			for i := start; i < start+chunk; i++ {
				if i < hosts {
					h := benchkit.Host(i)
					batch.Changes = append(batch.Changes, state.Change{Kind: state.KindHost, Key: h.Name, Host: h})
				}
				if i < resources {
					batch.Changes = append(batch.Changes, state.Change{Kind: state.KindResource, Key: benchkit.ResourceKey(i), Resource: benchkit.Resource(i)})
				}
			}
			if _, err := be.Commit(batch); err != nil {
				b.Fatal(err)
			}
		}
		if err := be.Close(); err != nil {
			b.Fatal(err)
		}
		templates.paths[key] = tpl
	}
	path := filepath.Join(dir, "state.db")
	src, err := os.Open(tpl)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		b.Fatal(err)
	}
	if err := dst.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// backends remembers the backend under each State openState opened.
var backends sync.Map // *state.State -> *boltbackend.Backend

func openState(b *testing.B, path string) *state.State {
	b.Helper()
	be, err := boltbackend.Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	st, err := state.Open(be)
	if err != nil {
		b.Fatal(err)
	}
	backends.Store(st, be)
	b.Cleanup(func() { st.Close(); backends.Delete(st) })
	return st
}

func backendOf(b *testing.B, st *state.State) *boltbackend.Backend {
	be, ok := backends.Load(st)
	if !ok {
		b.Fatal("not opened by openState")
	}
	return be.(*boltbackend.Backend)
}

// BenchmarkAddHost: one writer, each AddHost a new host, with 1k and
// 100k records already stored.
func BenchmarkAddHost(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("stored=%d", n), func(b *testing.B) {
			st := openState(b, populated(b, b.TempDir(), n, 0))
			hosts := make([]*state.HostState, 0, 1024)
			i := n
			var lat benchkit.Latencies
			b.ReportAllocs()
			for b.Loop() {
				if len(hosts) == 0 {
					b.StopTimer()
					for range cap(hosts) {
						hosts = append(hosts, benchkit.Host(i))
						i++
					}
					b.StartTimer()
				}
				h := hosts[len(hosts)-1]
				hosts = hosts[:len(hosts)-1]
				start := time.Now()
				if err := st.AddHost(h); err != nil {
					b.Fatal(err)
				}
				lat.Add(start)
			}
			lat.Report(b)
		})
	}
}

// BenchmarkAddHostParallel: 32 goroutines adding hosts to a store of 1k;
// ns/op is wall time divided by all operations, so 1/ns/op is total
// throughput, to compare with BenchmarkAddHost/stored=1000.
func BenchmarkAddHostParallel(b *testing.B) {
	const writers = 32
	st := openState(b, populated(b, b.TempDir(), 1000, 0))
	var mu sync.Mutex
	next := 1000
	b.ReportAllocs()
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((writers + procs - 1) / procs) // goroutines: this times GOMAXPROCS
	be := backendOf(b, st)
	txns := boltbackend.WriteTxns(be)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			i := next
			next++
			mu.Unlock()
			if err := st.AddHost(benchkit.Host(i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	b.ReportMetric(float64(b.N)/float64(boltbackend.WriteTxns(be)-txns), "batches/txn")
}

// BenchmarkUpdate10: one Update of 10 changes (5 hosts, 5 resources) on a
// store of 1k hosts and 1k resources.
func BenchmarkUpdate10(b *testing.B) {
	st := openState(b, populated(b, b.TempDir(), 1000, 1000))
	i := 1000
	var lat benchkit.Latencies
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		err := st.Update(func(tx *state.Tx) error {
			for j := range 5 {
				if err := tx.AddHost(benchkit.Host(i + j)); err != nil {
					return err
				}
				if err := tx.AddResource(benchkit.ResourceKey(i+j), benchkit.Resource(i+j)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		lat.Add(start)
		i += 5
	}
	lat.Report(b)
}

// BenchmarkGetHost reads one host of 100k: from the State's memory (what
// callers use) and from a backend snapshot (what a reader of the file
// pays).
func BenchmarkGetHost(b *testing.B) {
	path := populated(b, b.TempDir(), 100000, 0)
	be, err := boltbackend.Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	st, err := state.Open(be)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	name := benchkit.Host(54321).Name
	b.Run("State", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := st.GetHost(name); !ok {
				b.Fatal("missing")
			}
		}
	})
	b.Run("Snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			err := be.View(func(s state.Snapshot) error {
				_, ok, err := s.Host(name)
				if !ok {
					b.Fatal("missing")
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGetResourcesByType lists the 10 resources of one type among
// 100k (benchkit.RareType): the index makes it cost the same whatever the
// store's size.
func BenchmarkGetResourcesByType(b *testing.B) {
	path := populated(b, b.TempDir(), 0, 100000)
	be, err := boltbackend.Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	st, err := state.Open(be)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	typ, want := benchkit.RareType, benchkit.RareMatches(100000)
	b.Run("State", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if n := len(st.GetResourcesByType(typ)); n != want {
				b.Fatalf("%d matches", n)
			}
		}
	})
	b.Run("Snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			err := be.View(func(s state.Snapshot) error {
				return state.ResourcesOfType(s, typ, func(string, *state.ResourceState) error { n++; return nil })
			})
			if err != nil || n != want {
				b.Fatal(n, err)
			}
		}
	})
}

// BenchmarkOpen opens a store of 100k hosts and 100k resources: the
// backend alone, for writing and for reading (what a single-record CLI
// command pays before its one transaction: the walk of every page that
// refuses a damaged store is most of it), and the backend plus
// state.Open, which loads every record into memory.
func BenchmarkOpen(b *testing.B) {
	path := populated(b, b.TempDir(), 100000, 100000)
	for _, ro := range []bool{false, true} {
		name := "Backend"
		if ro {
			name = "BackendReadOnly"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				be, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: ro, NoSocket: true})
				if err != nil {
					b.Fatal(err)
				}
				if err := be.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("State", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			be, err := boltbackend.Open(path, nil)
			if err != nil {
				b.Fatal(err)
			}
			st, err := state.Open(be)
			if err != nil {
				b.Fatal(err)
			}
			if err := st.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBoltUpdateFloor is bbolt's own cost for the smallest durable
// change: one db.Update putting one 200-byte value into a bucket of 1k
// keys (two fdatasyncs: pages, then meta). It separates bbolt's cost
// from this package's in BenchmarkAddHost.
func BenchmarkBoltUpdateFloor(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 200)
	name := []byte("b")
	err = db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucket(name)
		if err != nil {
			return err
		}
		for i := range 1000 {
			if err := bk.Put(fmt.Appendf(nil, "key-%07d", i), val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	i := 1000
	var lat benchkit.Latencies
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(name).Put(fmt.Appendf(nil, "key-%07d", i), val) })
		if err != nil {
			b.Fatal(err)
		}
		lat.Add(start)
		i++
	}
	lat.Report(b)
}
