package main

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/go-ftl2/ftlstate/internal/etcdtest"
)

// benchRows are the rows issues 8 and 15 ask for, in the order bench
// prints them.
var benchRows = []string{
	"floor",
	"bbolt.add_host.1k", "bbolt.writers", "bbolt.add_host.10k", "bbolt.raw_put.1k", "bbolt.update10",
	"bbolt.add_resource.1k", "bbolt.operation.1k", "bbolt.add_resource.writers", "bbolt.operation.writers",
	"bbolt.open", "bbolt.get_host", "bbolt.get_resources_by_type",
	"bbolt.export.small", "bbolt.export.large", "json.marshal.large",
	"file.open", "file.open_backend", "bbolt.add_host.large", "bbolt.raw_put.large",
	"file.add_host.1k", "file.add_host.10k", "file.writers.1k", "file.writers.10k",
	"file.update10.1k", "file.update10.10k",
	"design.add_host.1k", "design.add_host.10k",
}

var benchTargets = []string{
	"single_writer_floor_1k", "single_writer_floor_large", "single_writer_flat", "writers_throughput",
	"design_10k", "open", "export_throughput", "export_memory",
	"operation_cost", "operation_writers",
}

// benchArgs keep the run small: the sizes are tiny and no timing is
// asserted, only the shape of the output.
func benchArgs(t *testing.T, extra ...string) []string {
	return append([]string{"bench", "--dir", t.TempDir(), "--records", "200", "--writers", "4", "--duration", "20ms"}, extra...)
}

func TestBench_Table(t *testing.T) {
	if testing.Short() {
		t.Skip("builds stores of 10k hosts")
	}
	r := ok(t, benchArgs(t)...)
	assert.Empty(t, r.stderr, "no progress when stderr is not a terminal")
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	require.Greater(t, len(lines), 3+len(benchRows)+1+len(benchTargets))
	assert.Regexp(t, `^ftlstate bench: 200 hosts \+ 200 resources, 4 writers, 20ms per loop; `, lines[0])
	assert.Empty(t, lines[1])

	header := lines[2]
	assert.Regexp(t, `^ROW\s+OPERATION\s+STORE\s+SAMPLES\s+MEDIAN\s+P99\s+THROUGHPUT\s+PEAK HEAP\s+x FLOOR\s+NOTE$`, header)
	rows := lines[3 : 3+len(benchRows)]
	for i, id := range benchRows {
		assert.Regexp(t, `^`+regexp.QuoteMeta(id)+`\s`, rows[i], "row %d", i)
		m := strings.Index(header, "MEDIAN")
		assert.True(t, rows[i][m-1] == ' ' && rows[i][m] != ' ', "MEDIAN column aligned: %q", rows[i])
	}
	assert.Regexp(t, `^floor\s+4 KiB write \+ fsync\s+-\s+\d+\s+\S+s\s+\S+\s+\S+ ops/s\s+-\s+1\.00x`, rows[0])
	assert.Regexp(t, `\d+\.\d MB/s\s+\d+\.\d MiB`, rows[slices.Index(benchRows, "bbolt.export.large")])

	rest := lines[3+len(benchRows):]
	assert.Empty(t, rest[0])
	assert.Regexp(t, `^TARGET \(issues 8, 15\)\s+MEASURED\s+GOAL\s+RESULT\s+FROM$`, rest[1])
	targets := rest[2:]
	require.Len(t, targets, len(benchTargets))
	for _, l := range targets {
		assert.Regexp(t, `\s(PASS|MISS)\s`, l)
	}
	assert.Contains(t, targets[3], "4 writers' throughput vs one writer's")
	assert.Contains(t, targets[7], "< 64 MiB")
	assert.Contains(t, targets[8], "begin + finish of an operation vs one AddResource")
	assert.Contains(t, targets[8], "<= 2.2x")
}

func TestBench_JSON(t *testing.T) {
	if testing.Short() {
		t.Skip("builds stores of 10k hosts")
	}
	r := ok(t, benchArgs(t, "-o", "json")...)
	var rep struct {
		Records    int    `json:"records"`
		Writers    int    `json:"writers"`
		DurationNS int64  `json:"duration_ns"`
		Dir        string `json:"dir"`
		Rows       []struct {
			ID        string  `json:"id"`
			Backend   string  `json:"backend"`
			Op        string  `json:"op"`
			Hosts     int     `json:"hosts"`
			Resources int     `json:"resources"`
			Samples   int     `json:"samples"`
			MedianNS  int64   `json:"median_ns"`
			P99NS     *int64  `json:"p99_ns"`
			OpsPerSec float64 `json:"ops_per_sec"`
			MBPerSec  float64 `json:"mb_per_sec"`
			PeakHeap  *int64  `json:"peak_heap_bytes"`
			XFloor    float64 `json:"x_floor"`
		} `json:"rows"`
		Targets []struct {
			ID       string   `json:"id"`
			Goal     string   `json:"goal"`
			Measured *float64 `json:"measured"`
			Cmp      string   `json:"cmp"`
			Limit    float64  `json:"limit"`
			Unit     string   `json:"unit"`
			Pass     *bool    `json:"pass"`
		} `json:"targets"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	assert.Equal(t, 200, rep.Records)
	assert.Equal(t, 4, rep.Writers)
	assert.EqualValues(t, 20e6, rep.DurationNS)
	assert.NoDirExists(t, rep.Dir, "the run's directory is removed")

	var ids []string
	for _, row := range rep.Rows {
		ids = append(ids, row.ID)
		assert.Positive(t, row.Samples, row.ID)
		assert.Positive(t, row.MedianNS, row.ID)
		assert.NotNil(t, row.P99NS, row.ID)
		assert.Positive(t, row.XFloor, row.ID)
		assert.NotEmpty(t, row.Backend, row.ID)
		assert.NotEmpty(t, row.Op, row.ID)
	}
	assert.Equal(t, benchRows, ids)
	byID := func(id string) int { return slices.Index(ids, id) }
	assert.Equal(t, 1.0, rep.Rows[byID("floor")].XFloor)
	for _, id := range []string{"bbolt.export.small", "bbolt.export.large"} {
		row := rep.Rows[byID(id)]
		assert.Positive(t, row.MBPerSec, id)
		require.NotNil(t, row.PeakHeap, id)
	}
	assert.Equal(t, 20, rep.Rows[byID("bbolt.export.small")].Hosts, "a tenth of --records")
	assert.Equal(t, 200, rep.Rows[byID("bbolt.open")].Resources)
	assert.Equal(t, 10000, rep.Rows[byID("design.add_host.10k")].Hosts)

	var tids []string
	for _, tg := range rep.Targets {
		tids = append(tids, tg.ID)
		assert.NotEmpty(t, tg.Goal)
		assert.NotNil(t, tg.Measured)
		assert.NotNil(t, tg.Pass)
		assert.Contains(t, []string{"<=", ">=", "<"}, tg.Cmp)
		assert.Contains(t, []string{"x", "MiB"}, tg.Unit)
	}
	assert.Equal(t, benchTargets, tids)
}

func TestBench_Usage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--records", "10"},
		{"bench", "--writers", "0"},
		{"bench", "--duration", "0s"},
		{"bench", "-o", "xml"},
		{"bench", "extra"},
	} {
		r := ftl(t, args...)
		assert.Equal(t, exitUsage, r.code, "%v: %s", args, r.stderr)
		assert.Empty(t, r.stdout)
	}
}

func TestBench_Visible(t *testing.T) {
	r := ok(t, "--help")
	assert.Regexp(t, `(?m)^\s+bench\s+Measure the backends`, r.stdout)
}

// TestBench_Etcd: with --etcd, bench adds the etcd rows and issue 19's
// targets, and deletes the stores it made under the prefix.
func TestBench_Etcd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds stores of 10k hosts")
	}
	c := etcdtest.New(t, etcdtest.Options{NoFsync: true})
	r := ok(t, benchArgs(t, "--etcd", "etcd://"+c.Endpoint(0)+"/ftl/bench", "-o", "json")...)
	var rep struct {
		Etcd string `json:"etcd"`
		Rows []struct {
			ID       string `json:"id"`
			Samples  int    `json:"samples"`
			MedianNS int64  `json:"median_ns"`
		} `json:"rows"`
		Targets []struct {
			ID string `json:"id"`
		} `json:"targets"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	assert.Equal(t, "etcd://"+c.Endpoint(0)+"/ftl/bench", rep.Etcd)
	got := map[string]bool{}
	for _, row := range rep.Rows {
		got[row.ID] = true
		assert.Positive(t, row.MedianNS, row.ID)
	}
	for _, id := range []string{"bbolt.import.large", "etcd.import.large", "bbolt.hosts.large", "etcd.hosts.large", "etcd.export.large", "etcd.write.1k", "etcd.write.large"} {
		assert.True(t, got[id], "row %s", id)
	}
	var targets []string
	for _, tg := range rep.Targets {
		targets = append(targets, tg.ID)
	}
	assert.Subset(t, targets, []string{"etcd_import", "etcd_hosts", "etcd_export", "etcd_write_flat"})

	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	resp, err := cli.Get(context.Background(), "/ftl/bench/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	assert.Zero(t, resp.Count, "the bench's etcd stores are deleted")
}
