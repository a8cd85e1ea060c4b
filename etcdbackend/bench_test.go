package etcdbackend_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/internal/benchkit"
	"github.com/go-ftl2/ftlstate/state"
)

// Benchmarks against the one-member server of TestMain (fsync on, on
// loopback), shaped like boltbackend's so that the figures compare:
//
//	go test -run '^$' -bench . -benchtime 2000x ./etcdbackend
//	go test -run '^$' -bench 'Floor|AddHost|Update10' -benchtime 2000x ./boltbackend
//
// Each commit is one etcd transaction: a gRPC round trip, a raft proposal
// and a WAL fsync (on a one-member cluster; a real cluster adds the
// network round trip to a quorum).

// populated returns the config of a new prefix holding hosts hosts and
// resources resources.
func populated(b *testing.B, hosts, resources int) etcdbackend.Config {
	b.Helper()
	cfg := config(newPrefix(b))
	be, err := etcdbackend.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	const chunk = 60 // two changes each: within etcd's 128 operations
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
	return cfg
}

func openState(b *testing.B, cfg etcdbackend.Config) (*state.State, *etcdbackend.Backend) {
	b.Helper()
	be, err := etcdbackend.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	st, err := state.Open(be)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st, be
}

// BenchmarkAddHost: one writer, each AddHost a new host, with 1k hosts
// already stored.
func BenchmarkAddHost(b *testing.B) {
	st, _ := openState(b, populated(b, 1000, 0))
	i := 1000
	var lat benchkit.Latencies
	b.ReportAllocs()
	for b.Loop() {
		h := benchkit.Host(i)
		i++
		start := time.Now()
		if err := st.AddHost(h); err != nil {
			b.Fatal(err)
		}
		lat.Add(start)
	}
	lat.Report(b)
}

// BenchmarkAddHostParallel: 32 goroutines adding hosts to a store of 1k;
// group commit puts concurrent batches in one transaction.
func BenchmarkAddHostParallel(b *testing.B) {
	const writers = 32
	st, be := openState(b, populated(b, 1000, 0))
	var mu sync.Mutex
	next := 1000
	b.ReportAllocs()
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((writers + procs - 1) / procs) // goroutines: this times GOMAXPROCS
	txns := etcdbackend.WriteTxns(be)
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
	b.ReportMetric(float64(b.N)/float64(etcdbackend.WriteTxns(be)-txns), "batches/txn")
}

// BenchmarkUpdate10: one Update of 10 changes (5 hosts, 5 resources) on a
// store of 1k hosts and 1k resources.
func BenchmarkUpdate10(b *testing.B) {
	st, _ := openState(b, populated(b, 1000, 1000))
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

// BenchmarkOpen: a State loading a store of 1k hosts and 1k resources
// (lock, one revision, paginated reads, decoding, unlock).
func BenchmarkOpen(b *testing.B) {
	cfg := populated(b, 1000, 1000)
	b.ReportAllocs()
	for b.Loop() {
		be, err := etcdbackend.Open(context.Background(), cfg)
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
}

// BenchmarkGetHostSnapshot reads one host of 1k through a backend View
// (what a read-only CLI command pays per lookup).
func BenchmarkGetHostSnapshot(b *testing.B) {
	cfg := populated(b, 1000, 0)
	cfg.ReadOnly = true
	be, err := etcdbackend.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	name := benchkit.Host(543).Name
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
}
