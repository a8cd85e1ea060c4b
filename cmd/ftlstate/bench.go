package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/cmd/ftlstate/internal/bench"
	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/state"
)

func (a *app) benchCommand() *cobra.Command {
	var (
		cfg     bench.Config
		out     format
		etcdURL string
	)
	cmd := &cobra.Command{
		Use:   "bench [--dir D] [--records N] [--writers W] [--duration D] [--etcd URL] [-o table|json]",
		Short: "Measure the backends beside the disk's fsync floor and the design document's store",
		Long: `bench measures what the stores cost, every row in one run so that ratios hold
on a noisy machine, and prints one table: each row's median and 99th
percentile, throughput, peak heap growth, and its ratio to the floor.

  floor    a 4 KiB write + fsync in the same directory (pooled from short
           rounds before every step)
  bbolt    AddHost at 1k and 10k hosts and in the large store (--records hosts
           + --records resources); --writers concurrent writers (alternating
           with one writer); bbolt's own db.Update of one Put, at 1k keys and
           on the large store's file; an Update of 10 changes; GetHost;
           GetResourcesByType (10 matches in 100k); Open of the large store
           (state.Open: loads every record); export of it and of a store a
           tenth its size (MB/s, peak heap growth)
  json     encoding/json MarshalIndent of the large store's records in memory,
           the baseline of export
  file     Open of the same records, and the write rows at 1k and 10k hosts
  design   the design document's store: json.MarshalIndent of everything,
           WriteFile to PATH.tmp, rename, per change (no fsync), 1k and 10k hosts
  ops      bbolt AddResource against BeginOperation + FinishOperation of the
           same resource (one writer, alternating), and begin + finish from
           --writers workers

With --etcd URL (etcd://host:port[,...]/prefix, or etcds:// with the --etcd-*
flags) it also measures that cluster beside bbolt, in stores under the prefix
that it deletes at the end:

  etcd     import (open, Replace, close) of the large store's records, beside
           the same import into a new bbolt store; listing its hosts (one
           View, every host decoded), beside bbolt's; export of it; and one
           write as one CLI command makes it (open, View, Commit, close) on
           it and on a store of 1k hosts

Then it checks issue 8's targets and issue 15's (begin + finish at most 2.2x
an AddResource; workers' begin + finish sharing commits as AddResource
writers do) on the table (and issue 19's, with --etcd) and prints PASS or MISS
for each. Stores live in a temporary directory inside --dir (default: the
system's temp directory), removed at the end. With the defaults it takes
about 40 seconds; --duration bounds each timed loop.`,
		Example: `  ftlstate bench
  ftlstate bench --dir /var/lib/ftl --records 20000 --duration 300ms -o json
  ftlstate bench --etcd etcd://127.0.0.1:2379/ftl/bench`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Records < bench.MinRecords || cfg.Writers < 1 || cfg.Duration <= 0 {
				return usageErrorf("bench: --records must be at least %d, --writers at least 1 and --duration positive", bench.MinRecords)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			if etcdURL != "" {
				if !isEtcd(etcdURL) {
					return usageErrorf("bench: --etcd %s: not an etcd:// or etcds:// store", etcdURL)
				}
				base, err := a.etcd.config(etcdURL)
				if err != nil {
					return err
				}
				sub := func(name string) etcdbackend.Config {
					c := base
					c.Prefix = strings.TrimRight(c.Prefix, "/") + "/" + name
					c.LockTimeout = 30 * time.Second
					return c
				}
				cfg.Etcd = &bench.Etcd{
					Name: etcdURL,
					Open: func(name string, readOnly bool) (state.Backend, error) {
						c := sub(name)
						c.ReadOnly = readOnly
						return etcdbackend.Open(ctx, c)
					},
					Remove: func(name string) error { return etcdbackend.Delete(context.Background(), sub(name)) },
				}
			}
			var bar *progressbar.ProgressBar
			cfg.Progress = func(done, total int, step string) {
				if bar == nil {
					bar = a.progress(int64(total), "bench", "steps")
				}
				bar.Describe("bench: " + step)
				bar.Set(done)
			}
			rep, err := bench.Run(ctx, cfg)
			if bar != nil {
				bar.Finish()
			}
			if err != nil {
				return err
			}
			if out != formatTable {
				return writeData(a.stdout, out, rep)
			}
			return writeBenchTable(a.stdout, rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", "", "directory to measure in (a temporary directory is made inside it); default the system's temp directory")
	f.IntVar(&cfg.Records, "records", bench.DefaultRecords, "hosts, and resources, in the large store")
	f.StringVar(&etcdURL, "etcd", "", "also measure this etcd cluster (etcd://host:port[,...]/prefix; the bench's stores go under the prefix and are deleted at the end)")
	f.IntVar(&cfg.Writers, "writers", bench.DefaultWriters, "concurrent writers")
	f.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "time bound of each timed loop")
	a.addFormatFlag(cmd, &out, formatTable, formatJSON, formatYAML)
	return cmd
}

// writeBenchTable writes rep as a summary line, the table of rows and the
// table of targets.
func writeBenchTable(w io.Writer, rep *bench.Report) error {
	fmt.Fprintf(w, "ftlstate bench: %s hosts + %s resources, %d writers, %s per loop; %s, %d CPUs, %s/%s; %s, in %s (removed)\n\n",
		count(rep.Records), count(rep.Records), rep.Writers, time.Duration(rep.DurationNS), rep.GoVersion, rep.CPUs, rep.OS, rep.Arch,
		bench.FormatDuration(time.Duration(rep.ElapsedNS).Round(100*time.Millisecond)), rep.Dir)
	t := newTable(w, false, "ROW", "OPERATION", "STORE", "SAMPLES", "MEDIAN", "P99", "THROUGHPUT", "PEAK HEAP", "x FLOOR", "NOTE")
	for _, r := range rep.Rows {
		p99 := "-"
		if r.P99NS > 0 {
			p99 = bench.FormatDuration(time.Duration(r.P99NS))
		}
		tput := rate(r.OpsPerSec) + " ops/s"
		if r.MBPerSec > 0 {
			tput = fmt.Sprintf("%.1f MB/s", r.MBPerSec)
		}
		heap := "-"
		if r.PeakHeapBytes != 0 {
			heap = fmt.Sprintf("%.1f MiB", float64(r.PeakHeapBytes)/(1<<20))
		}
		t.row(r.ID, r.Op, storeCell(r.Hosts, r.Resources), fmt.Sprint(r.Samples),
			bench.FormatDuration(time.Duration(r.MedianNS)), p99, tput, heap, times(r.XFloor), orDash(r.Note))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	t = newTable(w, false, "TARGET (issues 8, 15)", "MEASURED", "GOAL", "RESULT", "FROM")
	for _, tg := range rep.Targets {
		result := "PASS"
		if !tg.Pass {
			result = "MISS"
		}
		t.row(tg.Goal, measured(tg.Measured, tg.Unit), fmt.Sprintf("%s %g%s", tg.Cmp, tg.Limit, unitSuffix(tg.Unit)), result, tg.From)
	}
	return t.flush()
}

// count renders a record count: 100k, 2500.
func count(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func storeCell(hosts, resources int) string {
	switch {
	case hosts == 0 && resources == 0:
		return "-"
	case resources == 0:
		return count(hosts) + " hosts"
	}
	return count(hosts) + "+" + count(resources)
}

// rate renders operations per second with three significant digits.
func rate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.2fk", v/1e3)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// times renders a ratio: 0.0027x, 0.31x, 2.94x, 77.3x, 7301x.
func times(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0fx", v)
	case v >= 10:
		return fmt.Sprintf("%.1fx", v)
	case v >= 0.1 || v == 0:
		return fmt.Sprintf("%.2fx", v)
	}
	return fmt.Sprintf("%.2gx", v)
}

func measured(v float64, unit string) string {
	if unit == "x" {
		return times(v)
	}
	return fmt.Sprintf("%.1f%s", v, unitSuffix(unit))
}

func unitSuffix(unit string) string {
	if unit == "x" {
		return unit
	}
	return " " + unit
}
