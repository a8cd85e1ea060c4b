package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-ftl2/ftlstate/internal/benchkit"
)

// finish adds the floor row (the pooled rounds) first, each row's ratio to
// it, and the targets.
func (r *runner) finish() {
	floor := latencyRow(&Row{ID: "floor", Backend: "disk", Op: "4 KiB write + fsync"}, benchkit.Timed{Lat: r.floor, Wall: sum(r.floor)})
	floor.Note = fmt.Sprintf("%d rounds through the run, pooled", r.floorRounds)
	r.rep.Rows = slices.Insert(r.rep.Rows, 0, floor)
	for _, row := range r.rep.Rows {
		row.XFloor = ratio(float64(row.Time()), float64(floor.MedianNS))
	}
	r.rep.Targets = Targets(r.rep)
}

func sum(l benchkit.Latencies) time.Duration {
	var s time.Duration
	for _, d := range l {
		s += d
	}
	return s
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Targets checks issue 8's targets, and issue 15's on pending
// operations, on the rows of rep. A target whose rows
// are missing is reported as missed, with Measured 0.
func Targets(rep *Report) []Target {
	missing := map[string]bool{}
	get := func(id string) *Row {
		if row := rep.Row(id); row != nil {
			return row
		}
		missing[id] = true
		return &Row{ID: id}
	}
	floor := get("floor")
	b1k, b10k, bLarge := get("bbolt.add_host.1k"), get("bbolt.add_host.10k"), get("bbolt.add_host.large")
	writers := get("bbolt.writers")
	design := get("design.add_host.10k")
	bOpen, fOpen := get("bbolt.open"), get("file.open")
	exSmall, exLarge, marshal := get("bbolt.export.small"), get("bbolt.export.large"), get("json.marshal.large")
	n := sizeName(rep.Records)
	ts := []Target{
		{ID: "single_writer_floor_1k", Goal: "bbolt AddHost median, 1k hosts stored, vs the fsync floor",
			Measured: ratio(float64(b1k.MedianNS), float64(floor.MedianNS)), Cmp: "<=", Limit: 3, Unit: "x", From: "bbolt.add_host.1k / floor"},
		{ID: "single_writer_floor_large", Goal: fmt.Sprintf("bbolt AddHost median, %s+%s stored, vs the fsync floor", n, n),
			Measured: ratio(float64(bLarge.MedianNS), float64(floor.MedianNS)), Cmp: "<=", Limit: 3, Unit: "x", From: "bbolt.add_host.large / floor"},
		{ID: "single_writer_flat", Goal: fmt.Sprintf("bbolt AddHost median flat in store size (%s+%s vs 1k)", n, n),
			Measured: ratio(float64(bLarge.MedianNS), float64(b1k.MedianNS)), Cmp: "<=", Limit: 1.3, Unit: "x", From: "bbolt.add_host.large / bbolt.add_host.1k"},
		{ID: "writers_throughput", Goal: fmt.Sprintf("%d writers' throughput vs one writer's (group commit)", rep.Writers),
			Measured: ratio(writers.OpsPerSec, b1k.OpsPerSec), Cmp: ">=", Limit: 10, Unit: "x", From: "bbolt.writers / bbolt.add_host.1k, ops/s"},
		{ID: "design_10k", Goal: "bbolt AddHost at 10k hosts, times faster than the design's",
			Measured: ratio(float64(design.MedianNS), float64(b10k.MedianNS)), Cmp: ">=", Limit: 100, Unit: "x", From: "design.add_host.10k / bbolt.add_host.10k, medians"},
		{ID: "open", Goal: fmt.Sprintf("bbolt Open of %s+%s vs the file backend's load of the same", n, n),
			Measured: ratio(float64(bOpen.MedianNS), float64(fOpen.MedianNS)), Cmp: "<=", Limit: 0.5, Unit: "x", From: "bbolt.open / file.open, medians"},
		{ID: "export_throughput", Goal: "export throughput vs encoding/json MarshalIndent in memory",
			Measured: ratio(exLarge.MBPerSec, marshal.MBPerSec), Cmp: ">=", Limit: 0.5, Unit: "x", From: "bbolt.export.large / json.marshal.large, MB/s"},
		{ID: "export_memory", Goal: fmt.Sprintf("export peak heap growth, %s vs %s records", sizeName(2*rep.Records), sizeName(2*max(rep.Records/10, 1))),
			Measured: float64(exLarge.PeakHeapBytes-exSmall.PeakHeapBytes) / (1 << 20), Cmp: "<", Limit: 64, Unit: "MiB", From: "bbolt.export.large - bbolt.export.small, peak heap"},
	}
	ts = append(ts, operationTargets(get, rep.Writers)...)
	if rep.Etcd != "" {
		eImp, bImp := get("etcd.import.large"), get("bbolt.import.large")
		eHosts, bHosts := get("etcd.hosts.large"), get("bbolt.hosts.large")
		eExp := get("etcd.export.large")
		eW1k, eWLarge := get("etcd.write.1k"), get("etcd.write.large")
		ts = append(ts,
			Target{ID: "etcd_import", Goal: fmt.Sprintf("etcd import of %s+%s vs bbolt's (issue 19)", n, n),
				Measured: ratio(float64(eImp.MedianNS), float64(bImp.MedianNS)), Cmp: "<=", Limit: 5, Unit: "x", From: "etcd.import.large / bbolt.import.large, medians"},
			Target{ID: "etcd_hosts", Goal: fmt.Sprintf("etcd hosts listing of %s+%s vs bbolt's (issue 19)", n, n),
				Measured: ratio(float64(eHosts.MedianNS), float64(bHosts.MedianNS)), Cmp: "<=", Limit: 5, Unit: "x", From: "etcd.hosts.large / bbolt.hosts.large, medians"},
			Target{ID: "etcd_export", Goal: fmt.Sprintf("etcd export of %s+%s vs bbolt's (issue 19)", n, n),
				Measured: ratio(float64(eExp.MedianNS), float64(exLarge.MedianNS)), Cmp: "<=", Limit: 5, Unit: "x", From: "etcd.export.large / bbolt.export.large, medians"},
			Target{ID: "etcd_write_flat", Goal: fmt.Sprintf("etcd single CLI write, %s+%s stored vs 1k (issue 19: no read of the store)", n, n),
				Measured: ratio(float64(eWLarge.MedianNS), float64(eW1k.MedianNS)), Cmp: "<=", Limit: 1.5, Unit: "x", From: "etcd.write.large / etcd.write.1k, medians"},
		)
	}
	for i := range ts {
		t := &ts[i]
		switch t.Cmp {
		case "<=":
			t.Pass = t.Measured <= t.Limit
		case ">=":
			t.Pass = t.Measured >= t.Limit
		case "<":
			t.Pass = t.Measured < t.Limit
		}
		for id := range missing {
			if strings.Contains(t.From, id) {
				t.Pass = false
			}
		}
	}
	return ts
}

// FormatDuration renders d with three significant digits: 850ns, 12.3µs,
// 1.23ms, 1.23s.
func FormatDuration(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return sig3(float64(d)/1e3) + "µs"
	case d < time.Second:
		return sig3(float64(d)/1e6) + "ms"
	}
	return sig3(d.Seconds()) + "s"
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
