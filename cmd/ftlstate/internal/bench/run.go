package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/internal/benchkit"
	"github.com/go-ftl2/ftlstate/state"
)

// Config sizes a Run. Zero fields take the defaults.
type Config struct {
	// Dir is where Run makes its temporary directory (and so the
	// filesystem measured); default os.TempDir().
	Dir string
	// Records is the number of hosts, and of resources, in the large
	// store (default 100000: 200k records). The export's small store has
	// a tenth of them.
	Records int
	// Writers is the number of concurrent writers (default 32).
	Writers int
	// Duration bounds each timed loop (default 1s). A loop runs at least
	// MinSamples operations, and open, export and marshal at least
	// MinRuns times, however long that takes.
	Duration time.Duration
	// Progress, when set, is called before each step with the number of
	// steps done, their total and the step's name.
	Progress func(done, total int, step string)
	// Etcd, when set, adds the etcd rows (import, hosts, export and single
	// writes of the large store, beside bbolt's) and issue 19's targets.
	Etcd *Etcd
}

// Defaults and minimums of Config.
const (
	DefaultRecords  = 100000
	DefaultWriters  = 32
	DefaultDuration = time.Second
	MinRecords      = 100
	MinSamples      = 5
	MinRuns         = 2
)

// Row is one measurement.
type Row struct {
	// ID names the row, the same in every run: "floor",
	// "bbolt.add_host.1k", "file.writers.10k", ... (see Run).
	ID string `json:"id"`
	// Backend is "disk", "bbolt", "file", "design" or "encoding/json".
	Backend string `json:"backend"`
	// Op is what was measured, such as "AddHost" or "export".
	Op string `json:"op"`
	// Hosts and Resources is the store's size when the row started.
	Hosts     int `json:"hosts"`
	Resources int `json:"resources"`
	// Samples is the number of operations (or runs) timed.
	Samples int `json:"samples"`
	// MedianNS and P99NS are the median and 99th percentile time of one
	// operation; P99NS is 0 when there were fewer than 100 samples.
	MedianNS int64 `json:"median_ns"`
	P99NS    int64 `json:"p99_ns"`
	// OpsPerSec is operations per second of wall time (all writers
	// together for the writers rows).
	OpsPerSec float64 `json:"ops_per_sec"`
	// Bytes is the size of one output (export, marshal) or of the file
	// read (open); MBPerSec is Bytes over the median time, in 10^6 B/s.
	Bytes    int64   `json:"bytes,omitempty"`
	MBPerSec float64 `json:"mb_per_sec,omitempty"`
	// PeakHeapBytes is the peak heap growth while the operation ran (see
	// PeakHeap); 0 when not measured.
	PeakHeapBytes int64 `json:"peak_heap_bytes,omitempty"`
	// XFloor is the median (for the writers rows: wall time per write)
	// over the floor's median.
	XFloor float64 `json:"x_floor"`
	// Note says what else to know about the row.
	Note string `json:"note,omitempty"`

	// throughput marks rows whose XFloor is wall time per operation.
	throughput bool
}

// Time returns the time per operation that XFloor compares: the median,
// or for throughput rows the wall time per operation.
func (r *Row) Time() time.Duration {
	if r.throughput {
		if r.OpsPerSec == 0 {
			return 0
		}
		return time.Duration(float64(time.Second) / r.OpsPerSec)
	}
	return time.Duration(r.MedianNS)
}

// Target is one of issue 8's targets, checked on the rows.
type Target struct {
	ID string `json:"id"`
	// Goal is the target in words.
	Goal string `json:"goal"`
	// Measured compares with Limit by Cmp ("<=", ">=" or "<").
	Measured float64 `json:"measured"`
	Cmp      string  `json:"cmp"`
	Limit    float64 `json:"limit"`
	// Unit is "x" (a ratio) or "MiB".
	Unit string `json:"unit"`
	Pass bool   `json:"pass"`
	// From names the rows it is computed from.
	From string `json:"from"`
}

// Report is the result of a Run.
type Report struct {
	Dir        string    `json:"dir"`
	Records    int       `json:"records"`
	Writers    int       `json:"writers"`
	DurationNS int64     `json:"duration_ns"`
	GoVersion  string    `json:"go_version"`
	OS         string    `json:"os"`
	Arch       string    `json:"arch"`
	CPUs       int       `json:"cpus"`
	Started    time.Time `json:"started"`
	ElapsedNS  int64     `json:"elapsed_ns"`
	// Etcd names the etcd cluster measured, when there was one.
	Etcd    string   `json:"etcd,omitempty"`
	Rows    []*Row   `json:"rows"`
	Targets []Target `json:"targets"`
}

// Row returns the row with id, or nil.
func (r *Report) Row(id string) *Row {
	for _, row := range r.Rows {
		if row.ID == id {
			return row
		}
	}
	return nil
}

// Run measures every row in one run, in a temporary directory inside
// cfg.Dir that it removes, and checks the targets. It takes about 26
// times cfg.Duration, plus the time to build, open, export and marshal
// the large store (about 15 seconds for 200k records on two cores). A
// cancelled ctx stops it between operations.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Dir == "" {
		cfg.Dir = os.TempDir()
	}
	if cfg.Records == 0 {
		cfg.Records = DefaultRecords
	}
	if cfg.Writers == 0 {
		cfg.Writers = DefaultWriters
	}
	if cfg.Duration == 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.Records < MinRecords || cfg.Writers < 1 || cfg.Duration < 0 {
		return nil, fmt.Errorf("bench: records must be at least %d, writers at least 1, duration positive: %w", MinRecords, state.ErrInvalid)
	}
	dir, err := os.MkdirTemp(cfg.Dir, "ftlstate-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)
	r := &runner{ctx: ctx, cfg: cfg, dir: dir, rep: &Report{
		Dir: dir, Records: cfg.Records, Writers: cfg.Writers, DurationNS: int64(cfg.Duration),
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(),
		Started: time.Now().UTC(),
	}}
	if cfg.Etcd != nil {
		r.rep.Etcd = cfg.Etcd.Name
		defer r.etcdRemove() // also when a step failed
	}
	steps := r.steps()
	round := floorRound(cfg.Duration, len(steps))
	for i, s := range steps {
		if cfg.Progress != nil {
			cfg.Progress(i, len(steps), s.name)
		}
		if err := r.measureFloor(round); err != nil {
			return nil, fmt.Errorf("bench: floor: %w", err)
		}
		if err := s.fn(); err != nil {
			return nil, fmt.Errorf("bench: %s: %w", s.name, err)
		}
	}
	if err := r.measureFloor(round); err != nil {
		return nil, fmt.Errorf("bench: floor: %w", err)
	}
	if cfg.Progress != nil {
		cfg.Progress(len(steps), len(steps), "done")
	}
	r.finish()
	r.rep.ElapsedNS = int64(time.Since(r.rep.Started))
	return r.rep, nil
}

type step struct {
	name string
	fn   func() error
}

type runner struct {
	ctx context.Context
	cfg Config
	dir string
	rep *Report
	// floor pools the floor's rounds (floorRounds of them).
	floor       benchkit.Latencies
	floorRounds int
	// large is the path of the large bbolt store; buildTime is how long
	// building it took.
	large     string
	buildTime time.Duration
	// contents is the large store in memory, from marshalLarge to
	// fileOpen.
	contents *state.Contents
	// etcdStores are the etcd stores made so far (Etcd's subs), etcdLarge
	// the one holding the large store.
	etcdStores []string
	etcdLarge  string
}

func (r *runner) add(row *Row) *Row {
	r.rep.Rows = append(r.rep.Rows, row)
	return row
}

func (r *runner) path(name string) string { return filepath.Join(r.dir, name) }

func sizeName(n int) string {
	if n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func (r *runner) steps() []step {
	n := r.cfg.Records
	steps := []step{
		{"bbolt AddHost, 1k hosts: one writer and " + fmt.Sprint(r.cfg.Writers), r.boltSingleAndWriters},
		{"bbolt AddHost, 10k hosts", func() error { return r.boltAddHost("bbolt.add_host.10k", benchkit.Medium) }},
		{"bbolt raw Put", r.boltRaw},
		{"bbolt Update of 10", r.boltUpdate10},
		{"bbolt operations: AddResource vs begin + finish, one writer and " + fmt.Sprint(r.cfg.Writers), r.boltOperations},
		{"bbolt build " + sizeName(n) + "+" + sizeName(n), r.buildLarge},
		{"bbolt open and reads, large store", r.boltLarge},
		{"export, small store", func() error { return r.export("bbolt.export.small", max(n/10, 1)) }},
		{"export, large store", func() error { return r.export("bbolt.export.large", n) }},
		{"encoding/json", r.marshalLarge},
		{"file open", r.fileOpen},
		{"bbolt AddHost, large store", r.boltAddHostLarge},
		{"bbolt raw Put, large store", r.boltRawLarge},
		{"file AddHost, 1k hosts", func() error { return r.fileAddHost("file.add_host.1k", benchkit.Small) }},
		{"file AddHost, 10k hosts", func() error { return r.fileAddHost("file.add_host.10k", benchkit.Medium) }},
		{"file writers, 1k hosts", func() error { return r.fileWriters("file.writers.1k", benchkit.Small) }},
		{"file writers, 10k hosts", func() error { return r.fileWriters("file.writers.10k", benchkit.Medium) }},
		{"file Update of 10, 1k hosts", func() error { return r.fileUpdate10("file.update10.1k", benchkit.Small) }},
		{"file Update of 10, 10k hosts", func() error { return r.fileUpdate10("file.update10.10k", benchkit.Medium) }},
		{"design AddHost, 1k hosts", func() error { return r.design("design.add_host.1k", benchkit.Small) }},
		{"design AddHost, 10k hosts", func() error { return r.design("design.add_host.10k", benchkit.Medium) }},
	}
	// The etcd rows need the large store in memory: after encoding/json,
	// before the file backend takes it.
	for i, s := range steps {
		if s.name == "file open" {
			return slices.Insert(steps, i, r.etcdSteps()...)
		}
	}
	return steps
}

// floorRound returns the length of one round of the floor: twice the
// duration, split into one round before each step and one at the end, so
// that the floor pools the conditions of the whole run.
func floorRound(d time.Duration, steps int) time.Duration { return d * 2 / time.Duration(steps+1) }

// measureFloor runs one round of the floor; the rounds are pooled in
// finish.
func (r *runner) measureFloor(d time.Duration) error {
	fl, err := benchkit.NewFloor(r.dir)
	if err != nil {
		return err
	}
	defer fl.Close()
	t, err := benchkit.Loop(r.ctx, d, MinSamples, nil, func(int) error { return fl.Op() })
	r.floor = append(r.floor, t.Lat...)
	r.floorRounds++
	return err
}

// latencyRow fills a row from a timed loop.
func latencyRow(row *Row, t benchkit.Timed) *Row {
	row.Samples = len(t.Lat)
	row.OpsPerSec = t.PerSecond()
	row.MedianNS = int64(t.Lat.Median())
	if len(t.Lat) >= 100 {
		row.P99NS = int64(t.Lat.P99())
	}
	return row
}

// addHostLoop times AddHost of new hosts from..., one at a time, for d.
func (r *runner) addHostLoop(st *state.State, from int, d time.Duration) (benchkit.Timed, error) {
	var h *state.HostState
	return benchkit.Loop(r.ctx, d, MinSamples,
		func(i int) { h = benchkit.Host(from + i) },
		func(int) error { return st.AddHost(h) })
}

// update10Loop times Updates of 5 new hosts and 5 new resources.
func (r *runner) update10Loop(st *state.State, from int) (benchkit.Timed, error) {
	var hosts [5]*state.HostState
	var res [5]*state.ResourceState
	return benchkit.Loop(r.ctx, r.cfg.Duration, MinSamples,
		func(i int) {
			for j := range 5 {
				hosts[j], res[j] = benchkit.Host(from+5*i+j), benchkit.Resource(from+5*i+j)
			}
		},
		func(i int) error {
			return st.Update(func(tx *state.Tx) error {
				for j := range 5 {
					if err := tx.AddHost(hosts[j]); err != nil {
						return err
					}
					if err := tx.AddResource(benchkit.ResourceKey(from+5*i+j), res[j]); err != nil {
						return err
					}
				}
				return nil
			})
		})
}

// writersLoop runs cfg.Writers goroutines adding new hosts from..., for
// d.
func (r *runner) writersLoop(st *state.State, from int, d time.Duration) (benchkit.Timed, error) {
	return benchkit.Concurrent(r.ctx, d, r.cfg.Writers, func(i int) error { return st.AddHost(benchkit.Host(from + i)) })
}

// alternations is the number of rounds in which the one-writer and the
// many-writers loops alternate, so that a change in the machine's load
// affects both sides of their ratio alike.
const alternations = 4

// boltSingleAndWriters times AddHost from one writer and from cfg.Writers
// writers, each on a store of 1k hosts of its own, in alternating rounds
// whose results are pooled.
func (r *runner) boltSingleAndWriters() error {
	return r.withBolt("single.db", benchkit.Small, func(single *state.State) error {
		return r.withBolt("writers.db", benchkit.Small, func(many *state.State) error {
			var one, all benchkit.Timed
			d := r.cfg.Duration / alternations
			for range alternations {
				t, err := r.addHostLoop(single, benchkit.Small+len(one.Lat), d)
				one.Lat, one.Wall = append(one.Lat, t.Lat...), one.Wall+t.Wall
				if err != nil {
					return err
				}
				t, err = r.writersLoop(many, benchkit.Small+len(all.Lat), d)
				all.Lat, all.Wall = append(all.Lat, t.Lat...), all.Wall+t.Wall
				if err != nil {
					return err
				}
			}
			r.add(latencyRow(&Row{ID: "bbolt.add_host.1k", Backend: "bbolt", Op: "AddHost", Hosts: benchkit.Small}, one))
			row := r.add(latencyRow(&Row{ID: "bbolt.writers", Backend: "bbolt", Op: fmt.Sprintf("AddHost, %d writers", r.cfg.Writers), Hosts: benchkit.Small, throughput: true}, all))
			row.Note = fmt.Sprintf("x floor: wall time per write; %d rounds alternating with the row above", alternations)
			return nil
		})
	})
}

// withBolt builds a bbolt store of hosts hosts and opens it.
func (r *runner) withBolt(name string, hosts int, fn func(st *state.State) error) error {
	p := r.path(name)
	if err := BuildBolt(p, hosts, 0); err != nil {
		return err
	}
	st, err := OpenBolt(p)
	if err != nil {
		return err
	}
	err = fn(st)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return errors.Join(err, os.Remove(p))
}

func (r *runner) boltAddHost(id string, hosts int) error {
	return r.withBolt(id+".db", hosts, func(st *state.State) error {
		t, err := r.addHostLoop(st, hosts, r.cfg.Duration)
		r.add(latencyRow(&Row{ID: id, Backend: "bbolt", Op: "AddHost", Hosts: hosts}, t))
		return err
	})
}

// rawValue is the size of the values of the raw bbolt rows, about that
// of an encoded host.
const rawValue = 250

// rawPuts times bbolt alone: one db.Update per operation, putting one new
// key into the bucket "hosts". Its two fdatasyncs (pages, then meta page)
// are what every bbolt commit pays.
func (r *runner) rawPuts(db *bolt.DB, from int) (benchkit.Timed, error) {
	val := make([]byte, rawValue)
	var key []byte
	return benchkit.Loop(r.ctx, r.cfg.Duration, MinSamples,
		func(i int) { key = []byte(benchkit.HostName(from + i)) },
		func(int) error {
			return db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("hosts"))
				if b == nil {
					return errors.New("no bucket hosts")
				}
				return b.Put(key, val)
			})
		})
}

// boltOptions are the bbolt options boltbackend uses.
var boltOptions = &bolt.Options{FreelistType: bolt.FreelistMapType}

// boltRaw times rawPuts in a bucket of 1k keys.
func (r *runner) boltRaw() error {
	p := r.path("raw.db")
	defer os.Remove(p)
	db, err := bolt.Open(p, 0o600, boltOptions)
	if err != nil {
		return err
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucket([]byte("hosts"))
		if err != nil {
			return err
		}
		val := make([]byte, rawValue)
		for i := range benchkit.Small {
			if err := bk.Put([]byte(benchkit.HostName(i)), val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	t, err := r.rawPuts(db, benchkit.Small)
	row := r.add(latencyRow(&Row{ID: "bbolt.raw_put.1k", Backend: "bbolt", Op: "raw bbolt db.Update, one Put", Hosts: benchkit.Small}, t))
	row.Note = "bbolt alone: 2 fdatasyncs"
	return err
}

// boltRawLarge times rawPuts on the large store's own file, opened with
// bbolt directly (the same tree depth as boltbackend's AddHost there).
// It runs last on the large store: the raw values are not records.
func (r *runner) boltRawLarge() error {
	n := r.cfg.Records
	db, err := bolt.Open(r.large, 0o600, boltOptions)
	if err != nil {
		return err
	}
	defer db.Close()
	t, err := r.rawPuts(db, 10*n)
	row := r.add(latencyRow(&Row{ID: "bbolt.raw_put.large", Backend: "bbolt", Op: "raw bbolt db.Update, one Put", Hosts: n, Resources: n}, t))
	row.Note = "bbolt alone, same file"
	return err
}

func (r *runner) boltUpdate10() error {
	return r.withBolt("update10.db", benchkit.Small, func(st *state.State) error {
		t, err := r.update10Loop(st, benchkit.Small)
		r.add(latencyRow(&Row{ID: "bbolt.update10", Backend: "bbolt", Op: "Update of 10 changes", Hosts: benchkit.Small}, t))
		return err
	})
}

func (r *runner) buildLarge() error {
	r.large = r.path("large.db")
	start := time.Now()
	if err := BuildBolt(r.large, r.cfg.Records, r.cfg.Records); err != nil {
		return err
	}
	r.buildTime = time.Since(start)
	return nil
}

// repeat times fn, which returns the time of the part that counts, at
// least MinRuns times and until the duration has passed. It collects
// garbage before each run, outside the clock.
func (r *runner) repeat(fn func() (time.Duration, error)) (benchkit.Timed, error) {
	var t benchkit.Timed
	begin := time.Now()
	for len(t.Lat) < MinRuns || time.Since(begin) < r.cfg.Duration {
		if err := r.ctx.Err(); err != nil {
			return t, err
		}
		runtime.GC()
		d, err := fn()
		if err != nil {
			return t, err
		}
		t.Lat = append(t.Lat, d)
		t.Wall += d
	}
	return t, nil
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (r *runner) boltLarge() error {
	n := r.cfg.Records
	var st *state.State
	t, err := r.repeat(func() (time.Duration, error) {
		if st != nil {
			st.Close()
			st = nil
		}
		start := time.Now()
		s, err := OpenBolt(r.large)
		d := time.Since(start)
		st = s
		return d, err
	})
	row := r.add(latencyRow(&Row{ID: "bbolt.open", Backend: "bbolt", Op: "Open (state.Open: load all)", Hosts: n, Resources: n, Bytes: fileSize(r.large)}, t))
	row.Note = fmt.Sprintf("built in %s (Updates of %d)", FormatDuration(r.buildTime), benchkit.FillChunk)
	if err != nil {
		if st != nil {
			st.Close()
		}
		return err
	}
	defer st.Close()

	var name string
	t, err = benchkit.Loop(r.ctx, r.cfg.Duration, MinSamples,
		func(i int) { name = benchkit.HostName(i * 7919 % n) },
		func(int) error {
			if _, ok := st.GetHost(name); !ok {
				return fmt.Errorf("GetHost(%q): missing", name)
			}
			return nil
		})
	r.add(latencyRow(&Row{ID: "bbolt.get_host", Backend: "bbolt", Op: "GetHost", Hosts: n, Resources: n}, t))
	if err != nil {
		return err
	}

	want := benchkit.RareMatches(n)
	t, err = benchkit.Loop(r.ctx, r.cfg.Duration, MinSamples, nil, func(int) error {
		if got := len(st.GetResourcesByType(benchkit.RareType)); got != want {
			return fmt.Errorf("GetResourcesByType: %d matches, want %d", got, want)
		}
		return nil
	})
	row = r.add(latencyRow(&Row{ID: "bbolt.get_resources_by_type", Backend: "bbolt", Op: "GetResourcesByType", Hosts: n, Resources: n}, t))
	row.Note = fmt.Sprintf("%d matches", want)
	if want == 1 {
		row.Note = "1 match"
	}
	return err
}

// boltAddHostLarge times AddHost on the large store, last, since it
// changes the store the other rows read.
func (r *runner) boltAddHostLarge() error {
	n := r.cfg.Records
	st, err := OpenBolt(r.large)
	if err != nil {
		return err
	}
	t, err := r.addHostLoop(st, n, r.cfg.Duration)
	r.add(latencyRow(&Row{ID: "bbolt.add_host.large", Backend: "bbolt", Op: "AddHost", Hosts: n, Resources: n}, t))
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}

// export times export.Write of a bbolt store of n hosts and n resources
// (the large store, or one it builds) to a writer that counts the bytes,
// then measures its peak heap in a run of its own.
func (r *runner) export(id string, n int) error {
	p := r.large
	if n != r.cfg.Records {
		p = r.path(id + ".db")
		if err := BuildBolt(p, n, n); err != nil {
			return err
		}
		defer os.Remove(p)
	}
	b, err := boltbackend.Open(p, &boltbackend.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer b.Close()
	var size int64
	t, err := r.repeat(func() (time.Duration, error) {
		var w countWriter
		start := time.Now()
		err := export.Write(&w, b, nil)
		size = w.n
		return time.Since(start), err
	})
	if err != nil {
		return err
	}
	peak, err := benchkit.PeakHeap(func() error { return export.Write(io.Discard, b, nil) })
	row := r.add(latencyRow(&Row{ID: id, Backend: "bbolt", Op: "export (state.json)", Hosts: n, Resources: n, Bytes: size, PeakHeapBytes: peak}, t))
	row.MBPerSec = mbps(size, row.MedianNS)
	return err
}

func mbps(size, ns int64) float64 {
	if ns <= 0 {
		return 0
	}
	return float64(size) / 1e6 / (float64(ns) / 1e9)
}

// marshal times json.MarshalIndent of c, the baseline of export.
func (r *runner) marshal(id string, c *state.Contents) error {
	var size int64
	t, err := r.repeat(func() (time.Duration, error) {
		start := time.Now()
		b, err := benchkit.MarshalIndent(c)
		size = int64(len(b))
		return time.Since(start), err
	})
	if err != nil {
		return err
	}
	peak, err := benchkit.PeakHeap(func() error { _, err := benchkit.MarshalIndent(c); return err })
	row := r.add(latencyRow(&Row{ID: id, Backend: "encoding/json", Op: "MarshalIndent, in memory", Hosts: len(c.Hosts), Resources: len(c.Resources), Bytes: size, PeakHeapBytes: peak}, t))
	row.MBPerSec = mbps(size, row.MedianNS)
	row.Note = "export's baseline"
	return err
}

// marshalLarge loads the large store into memory and times
// encoding/json on it.
func (r *runner) marshalLarge() error {
	b, err := boltbackend.Open(r.large, &boltbackend.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	c, err := benchkit.Load(b)
	b.Close()
	if err != nil {
		return err
	}
	r.contents = c
	return r.marshal("json.marshal.large", c)
}

// fileOpen writes the large store's records (loaded by marshalLarge) as a
// state.json and times the file backend's open of it.
func (r *runner) fileOpen() error {
	n := r.cfg.Records
	p := r.path("large.json")
	c := r.contents
	r.contents = nil
	if c == nil {
		return errors.New("no records loaded")
	}
	if err := BuildFile(p, c); err != nil {
		return err
	}
	c = nil
	defer os.Remove(p)
	defer os.Remove(p + ".lock")

	t, err := r.repeat(func() (time.Duration, error) {
		start := time.Now()
		s, err := OpenFile(p)
		d := time.Since(start)
		if err == nil {
			err = s.Close()
		}
		return d, err
	})
	r.add(latencyRow(&Row{ID: "file.open", Backend: "file", Op: "Open (state.Open: load all)", Hosts: n, Resources: n, Bytes: fileSize(p)}, t))
	if err != nil {
		return err
	}
	t, err = r.repeat(func() (time.Duration, error) {
		start := time.Now()
		fb, err := filebackend.Open(p, nil)
		d := time.Since(start)
		if err == nil {
			err = fb.Close()
		}
		return d, err
	})
	row := r.add(latencyRow(&Row{ID: "file.open_backend", Backend: "file", Op: "filebackend.Open only", Hosts: n, Resources: n, Bytes: fileSize(p)}, t))
	row.Note = "read, decode, validate; no State"
	return err
}

// withFile builds a state.json store of hosts hosts and opens it.
func (r *runner) withFile(name string, hosts int, fn func(st *state.State) error) error {
	p := r.path(name)
	if err := BuildFile(p, benchkit.Contents(hosts, 0)); err != nil {
		return err
	}
	st, err := OpenFile(p)
	if err != nil {
		return err
	}
	err = fn(st)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return errors.Join(err, os.Remove(p), os.Remove(p+".lock"))
}

func (r *runner) fileAddHost(id string, hosts int) error {
	return r.withFile(id+".json", hosts, func(st *state.State) error {
		t, err := r.addHostLoop(st, hosts, r.cfg.Duration)
		r.add(latencyRow(&Row{ID: id, Backend: "file", Op: "AddHost", Hosts: hosts}, t))
		return err
	})
}

func (r *runner) fileWriters(id string, hosts int) error {
	return r.withFile(id+".json", hosts, func(st *state.State) error {
		t, err := r.writersLoop(st, hosts, r.cfg.Duration)
		row := latencyRow(&Row{ID: id, Backend: "file", Op: fmt.Sprintf("AddHost, %d writers", r.cfg.Writers), Hosts: hosts, throughput: true}, t)
		row.Note = "x floor: wall time per write"
		r.add(row)
		return err
	})
}

func (r *runner) fileUpdate10(id string, hosts int) error {
	return r.withFile(id+".json", hosts, func(st *state.State) error {
		t, err := r.update10Loop(st, hosts)
		r.add(latencyRow(&Row{ID: id, Backend: "file", Op: "Update of 10 changes", Hosts: hosts}, t))
		return err
	})
}

func (r *runner) design(id string, hosts int) error {
	p := r.path(id + ".json")
	d, err := NewDesign(p, benchkit.Contents(hosts, 0))
	if err != nil {
		return err
	}
	defer os.Remove(p)
	var h *state.HostState
	t, err := benchkit.Loop(r.ctx, r.cfg.Duration, MinSamples,
		func(i int) { h = benchkit.Host(hosts + i) },
		func(int) error { return d.AddHost(h) })
	row := r.add(latencyRow(&Row{ID: id, Backend: "design", Op: "AddHost (whole-file rewrite)", Hosts: hosts}, t))
	row.Note = "no fsync"
	return err
}

// countWriter counts the bytes written to it and discards them.
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
