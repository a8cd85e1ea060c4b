package benchkit

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Latencies are the times of single operations.
type Latencies []time.Duration

// Add records the time since start.
func (l *Latencies) Add(start time.Time) { *l = append(*l, time.Since(start)) }

// Quantile returns the q-quantile (0 < q < 1), nearest rank; zero when l
// is empty. It sorts l.
func (l Latencies) Quantile(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	i := int(q*float64(len(l))+0.5) - 1
	return l[min(max(i, 0), len(l)-1)]
}

// Median returns the median.
func (l Latencies) Median() time.Duration { return l.Quantile(0.5) }

// P99 returns the 99th percentile.
func (l Latencies) P99() time.Duration { return l.Quantile(0.99) }

// MetricReporter is what Report writes to: a *testing.B.
type MetricReporter interface {
	ReportMetric(n float64, unit string)
}

// Report adds the median and the p99 to a benchmark's results, as
// median-ns and p99-ns (for benchstat); nothing when l is empty.
func (l Latencies) Report(b MetricReporter) {
	if len(l) == 0 {
		return
	}
	b.ReportMetric(float64(l.Median().Nanoseconds()), "median-ns")
	b.ReportMetric(float64(l.P99().Nanoseconds()), "p99-ns")
}

// Timed is the result of a timed loop: the time of each operation and the
// wall time of the whole loop.
type Timed struct {
	Lat  Latencies
	Wall time.Duration
}

// PerSecond returns operations per second of wall time.
func (t Timed) PerSecond() float64 {
	if t.Wall <= 0 {
		return 0
	}
	return float64(len(t.Lat)) / t.Wall.Seconds()
}

// Loop calls op(0), op(1), ... one at a time, timing each, until d has
// passed and at least minOps have run, or ctx is done, or op fails.
// prepare, when not nil, runs before each op outside the clock.
func Loop(ctx context.Context, d time.Duration, minOps int, prepare func(i int), op func(i int) error) (Timed, error) {
	var t Timed
	begin := time.Now()
	var outside time.Duration
	for i := 0; ; i++ {
		if i >= minOps && time.Since(begin) >= d {
			break
		}
		if err := ctx.Err(); err != nil {
			return t, err
		}
		if prepare != nil {
			p := time.Now()
			prepare(i)
			outside += time.Since(p)
		}
		start := time.Now()
		if err := op(i); err != nil {
			return t, err
		}
		t.Lat.Add(start)
	}
	t.Wall = time.Since(begin) - outside
	return t, nil
}

// Concurrent runs op from writers goroutines until d has passed (each
// goroutine runs at least one op, however late it starts on a loaded
// machine), or ctx is done, or an op fails; i counts operations across all
// goroutines from 0. Each operation is timed.
func Concurrent(parent context.Context, d time.Duration, writers int, op func(i int) error) (Timed, error) {
	var (
		next     atomic.Int64
		mu       sync.Mutex
		all      Latencies
		firstErr error
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(parent, d)
	defer cancel()
	begin := time.Now()
	for range writers {
		wg.Go(func() {
			var lat Latencies
			for n := 0; parent.Err() == nil && firstErrNil(&mu, &firstErr) && (n == 0 || ctx.Err() == nil); n++ {
				i := int(next.Add(1) - 1)
				start := time.Now()
				if err := op(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					break
				}
				lat.Add(start)
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	t := Timed{Lat: all, Wall: time.Since(begin)}
	if firstErr == nil {
		firstErr = parent.Err()
	}
	return t, firstErr
}

// firstErrNil reports whether no operation has failed yet.
func firstErrNil(mu *sync.Mutex, err *error) bool {
	mu.Lock()
	defer mu.Unlock()
	return *err == nil
}

// Floor is the disk's fsync floor in dir: one file of 4 KiB, rewritten at
// offset 0 and fsync'ed per operation. Close removes the file.
type Floor struct {
	f   *os.File
	buf []byte
}

// NewFloor creates the floor's file in dir.
func NewFloor(dir string) (*Floor, error) {
	f, err := os.CreateTemp(dir, "floor-")
	if err != nil {
		return nil, fmt.Errorf("bench: floor: %w", err)
	}
	fl := &Floor{f: f, buf: make([]byte, 4096)}
	for i := range fl.buf {
		fl.buf[i] = byte(i)
	}
	if err := fl.Op(); err != nil { // allocate the block
		fl.Close()
		return nil, err
	}
	return fl, nil
}

// Op writes 4 KiB and fsyncs.
func (fl *Floor) Op() error {
	if _, err := fl.f.WriteAt(fl.buf, 0); err != nil {
		return fmt.Errorf("bench: floor: %w", err)
	}
	if err := fl.f.Sync(); err != nil {
		return fmt.Errorf("bench: floor: %w", err)
	}
	return nil
}

// Close closes and removes the file.
func (fl *Floor) Close() error {
	err := fl.f.Close()
	if rerr := os.Remove(fl.f.Name()); err == nil {
		err = rerr
	}
	return err
}

const heapObjects = "/memory/classes/heap/objects:bytes"

func readHeap() uint64 {
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// PeakHeap runs fn and returns by how much the heap grew at its peak while
// fn ran: the maximum of runtime/metrics heap object bytes, sampled every
// millisecond (and once after fn), minus its value after a runtime.GC
// just before fn. Garbage not yet collected counts (see the package
// documentation).
func PeakHeap(fn func() error) (int64, error) {
	runtime.GC()
	base := readHeap()
	stop := make(chan struct{})
	result := make(chan uint64)
	go func() {
		peak := base
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				result <- peak
				return
			case <-tick.C:
				peak = max(peak, readHeap())
			}
		}
	}()
	err := fn()
	end := readHeap()
	close(stop)
	peak := max(<-result, end)
	return int64(peak) - int64(base), err
}
