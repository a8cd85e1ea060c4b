package benchkit_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/internal/benchkit"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

func TestLatencies_Quantile(t *testing.T) {
	var l benchkit.Latencies
	assert.Zero(t, l.Median())
	for i := 100; i >= 1; i-- {
		l = append(l, time.Duration(i))
	}
	assert.Equal(t, time.Duration(50), l.Median())
	assert.Equal(t, time.Duration(99), l.P99())
	assert.Equal(t, time.Duration(1), l.Quantile(0.001))
	assert.Equal(t, time.Duration(7), benchkit.Latencies{7}.P99())
}

func TestRecords_AreValidAndStable(t *testing.T) {
	h, err := benchkit.Host(42).Normalize()
	require.NoError(t, err)
	assert.Equal(t, benchkit.Host(42).Vars, h.Vars, "already normalized")
	assert.Equal(t, benchkit.HostName(42), h.Name)
	require.NoError(t, state.ValidateName(benchkit.ResourceKey(42)))
	_, err = benchkit.Resource(42).Normalize()
	require.NoError(t, err)
	assert.Equal(t, benchkit.RareType, benchkit.Resource(0).Type)
	assert.Equal(t, benchkit.RareType, benchkit.Resource(benchkit.RareEvery).Type)
	assert.NotEqual(t, benchkit.RareType, benchkit.Resource(1).Type)
	assert.Equal(t, 10, benchkit.RareMatches(100000))
	assert.Equal(t, 1, benchkit.RareMatches(200))
}

func TestBuildAndStore_Load(t *testing.T) {
	var stores statetest.MemoryStores
	b, err := stores.Open("built")
	require.NoError(t, err)
	require.NoError(t, benchkit.Build(b, 30, 25))
	b, err = stores.Open("built")
	require.NoError(t, err, "Build closed the backend")
	c, err := benchkit.Load(b)
	require.NoError(t, err)
	assert.Len(t, c.Hosts, 30)
	assert.Len(t, c.Resources, 25)
	n := 0
	require.NoError(t, b.View(func(s state.Snapshot) error {
		return state.ResourcesOfType(s, benchkit.RareType, func(string, *state.ResourceState) error { n++; return nil })
	}))
	assert.Equal(t, benchkit.RareMatches(25), n)
	require.NoError(t, b.Close())

	s, err := stores.Open("stored")
	require.NoError(t, err)
	require.NoError(t, benchkit.Store(s, c))
	s, err = stores.Open("stored")
	require.NoError(t, err, "Store closed the backend")
	defer s.Close()
	again, err := benchkit.Load(s)
	require.NoError(t, err)
	assert.Equal(t, c.Hosts, again.Hosts)
	assert.Equal(t, c.Resources, again.Resources)
}

func TestMarshalIndent_SameSizeAsExport(t *testing.T) {
	c := benchkit.Contents(50, 50)
	b, err := benchkit.MarshalIndent(c)
	require.NoError(t, err)
	var n countWriter
	require.NoError(t, statefile.EncodeContents(&n, c, nil))
	assert.Equal(t, int64(len(b)), int64(n)-1, "the same document but export's final newline")
}

type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) { *w += countWriter(len(p)); return len(p), nil }

var sink []byte

func TestPeakHeap_SeesRetainedMemory(t *testing.T) {
	grew, err := benchkit.PeakHeap(func() error {
		sink = make([]byte, 32<<20)
		return nil
	})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, grew, int64(32<<20))
	sink = nil
}

// Every writer runs at least one operation, however late it starts: a
// loaded machine must not make a throughput row empty.
func TestConcurrent_EveryWriterRunsOnce(t *testing.T) {
	tm, err := benchkit.Concurrent(context.Background(), 0, 4, func(int) error { return nil })
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(tm.Lat), 4)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = benchkit.Concurrent(ctx, time.Second, 4, func(int) error { return nil })
	assert.ErrorIs(t, err, context.Canceled, "a cancelled run says so")
}
