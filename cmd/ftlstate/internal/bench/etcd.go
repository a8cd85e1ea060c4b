package bench

import (
	"fmt"
	"os"
	"time"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/internal/benchkit"
	"github.com/go-ftl2/ftlstate/state"
)

// Etcd is an etcd cluster to measure beside bbolt (issue 19's rows): the
// bench works under prefixes of its own, each opened by Open and deleted
// by Remove at the end.
type Etcd struct {
	// Name names the cluster in the report (its URL).
	Name string
	// Open opens the store at the bench's prefix sub ("import-1", ...).
	Open func(sub string, readOnly bool) (state.Backend, error)
	// Remove deletes the store at sub, every key of it.
	Remove func(sub string) error
}

// etcdSteps are the steps of the etcd rows, run after the large store is
// in memory (marshalLarge) and before fileOpen consumes it.
func (r *runner) etcdSteps() []step {
	if r.cfg.Etcd == nil {
		return nil
	}
	return []step{
		{"import into bbolt and etcd, large store", r.importBoltEtcd},
		{"hosts and export, etcd", r.etcdReads},
		{"etcd single writes", r.etcdWrites},
		{"etcd: remove the stores", r.etcdRemove},
	}
}

// importBoltEtcd times an import (state.Replace) of the large store's
// records into a new bbolt store and into a new etcd store, each from
// open to close, alternating so that the machine's load affects both.
func (r *runner) importBoltEtcd() error {
	n := r.cfg.Records
	c := r.contents
	if c == nil {
		return fmt.Errorf("the large store is not in memory")
	}
	var bolt, etcd benchkit.Timed
	begin := time.Now()
	for i := 0; i < MinRuns || time.Since(begin) < r.cfg.Duration; i++ {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		p := r.path(fmt.Sprintf("import-%d.db", i))
		d, err := timedImport(func() (state.Backend, error) { return boltbackend.Open(p, nil) }, c)
		os.Remove(p)
		if err != nil {
			return fmt.Errorf("bbolt: %w", err)
		}
		bolt.Lat, bolt.Wall = append(bolt.Lat, d), bolt.Wall+d
		sub := fmt.Sprintf("import-%d", i)
		r.etcdStores = append(r.etcdStores, sub)
		d, err = timedImport(func() (state.Backend, error) { return r.cfg.Etcd.Open(sub, false) }, c)
		if err != nil {
			return fmt.Errorf("etcd: %w", err)
		}
		etcd.Lat, etcd.Wall = append(etcd.Lat, d), etcd.Wall+d
		r.etcdLarge = sub
	}
	r.add(latencyRow(&Row{ID: "bbolt.import.large", Backend: "bbolt", Op: "import (open, Replace, close)", Hosts: n, Resources: n}, bolt))
	row := r.add(latencyRow(&Row{ID: "etcd.import.large", Backend: "etcd", Op: "import (open, Replace, close)", Hosts: n, Resources: n}, etcd))
	row.Note = r.cfg.Etcd.Name
	return nil
}

// timedImport opens a new store, imports c into it and closes it.
func timedImport(open func() (state.Backend, error), c *state.Contents) (time.Duration, error) {
	start := time.Now()
	b, err := open()
	if err != nil {
		return 0, err
	}
	st, err := state.Open(b)
	if err != nil {
		return 0, err
	}
	err = st.Replace(c, true)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return time.Since(start), err
}

// listHosts reads every host of b as 'ftlstate hosts' does: one View,
// every record decoded.
func listHosts(b state.Backend, want int) error {
	n := 0
	err := b.View(func(s state.Snapshot) error {
		return s.Hosts(func(*state.HostState) error { n++; return nil })
	})
	if err == nil && n != want {
		err = fmt.Errorf("listed %d hosts, want %d", n, want)
	}
	return err
}

// etcdReads times listing the hosts of the large store, from bbolt and
// from etcd (a read-only open, one View, every host decoded), and the
// export of the etcd store (beside bbolt.export.large).
func (r *runner) etcdReads() error {
	n := r.cfg.Records
	bb, err := boltbackend.Open(r.large, &boltbackend.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer bb.Close()
	eb, err := r.cfg.Etcd.Open(r.etcdLarge, true)
	if err != nil {
		return err
	}
	defer eb.Close()
	for _, side := range []struct {
		id, backend string
		b           state.Backend
	}{{"bbolt.hosts.large", "bbolt", bb}, {"etcd.hosts.large", "etcd", eb}} {
		t, err := r.repeat(func() (time.Duration, error) {
			start := time.Now()
			err := listHosts(side.b, n)
			return time.Since(start), err
		})
		if err != nil {
			return err
		}
		r.add(latencyRow(&Row{ID: side.id, Backend: side.backend, Op: "hosts (View, decode every host)", Hosts: n, Resources: n}, t))
	}
	var size int64
	t, err := r.repeat(func() (time.Duration, error) {
		var w countWriter
		start := time.Now()
		err := export.Write(&w, eb, nil)
		size = w.n
		return time.Since(start), err
	})
	if err != nil {
		return err
	}
	row := r.add(latencyRow(&Row{ID: "etcd.export.large", Backend: "etcd", Op: "export (state.json)", Hosts: n, Resources: n, Bytes: size}, t))
	row.MBPerSec = mbps(size, row.MedianNS)
	return nil
}

// etcdWrites times a single write as one CLI command makes it on the
// large etcd store and on one of 1k hosts: open (the lock), one View
// reading the host, one commit, close.
func (r *runner) etcdWrites() error {
	small := "small"
	r.etcdStores = append(r.etcdStores, small)
	if _, err := timedImport(func() (state.Backend, error) { return r.cfg.Etcd.Open(small, false) }, benchkit.Contents(benchkit.Small, 0)); err != nil {
		return err
	}
	for _, side := range []struct {
		id, sub      string
		hosts, resrc int
	}{{"etcd.write.1k", small, benchkit.Small, 0}, {"etcd.write.large", r.etcdLarge, r.cfg.Records, r.cfg.Records}} {
		var h *state.HostState
		t, err := benchkit.Loop(r.ctx, r.cfg.Duration, MinSamples,
			func(i int) { h = benchkit.Host(2*r.cfg.Records + i) },
			func(int) error { return r.singleWrite(side.sub, h) })
		if err != nil {
			return err
		}
		row := r.add(latencyRow(&Row{ID: side.id, Backend: "etcd", Op: "one write (open, View, Commit, close)", Hosts: side.hosts, Resources: side.resrc}, t))
		row.Note = "as one 'ftlstate host add'"
	}
	return nil
}

// singleWrite adds h to the etcd store sub as a CLI write does.
func (r *runner) singleWrite(sub string, h *state.HostState) error {
	b, err := r.cfg.Etcd.Open(sub, false)
	if err != nil {
		return err
	}
	now := state.Timestamp(time.Now())
	err = b.View(func(s state.Snapshot) error {
		_, _, err := s.Host(h.Name)
		return err
	})
	if err == nil {
		hh := h.Clone()
		hh.CreatedAt, hh.UpdatedAt = now, now
		_, err = b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: hh.Name, Host: hh}}})
	}
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	return err
}

// etcdRemove deletes the etcd stores the bench made.
func (r *runner) etcdRemove() error {
	for _, sub := range r.etcdStores {
		if err := r.cfg.Etcd.Remove(sub); err != nil {
			return err
		}
	}
	r.etcdStores = nil
	return nil
}
