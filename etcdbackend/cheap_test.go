package etcdbackend_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/internal/benchkit"
	"github.com/go-ftl2/ftlstate/state"
)

// calls counts the unary requests a backend sends, by method, and the
// bytes of their answers.
type calls struct {
	mu      sync.Mutex
	methods map[string]int
	bytes   int
}

func (c *calls) option() grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.methods == nil {
			c.methods = map[string]int{}
		}
		c.methods[method[strings.LastIndex(method, "/")+1:]]++
		if m, ok := reply.(proto.Message); ok {
			c.bytes += proto.Size(m)
		}
		return err
	})
}

// TestOpen_CostDoesNotGrowWithTheStore: on a store of 4000 records, a
// writer's Open, one Commit and Close are a lease grant, two transactions
// (the lock with the store's keys, the commit) and a revoke, answered
// with a few hundred bytes; a reader's lookup of one host is two
// requests, and counting the records one more, only when asked. Nothing
// reads the records.
func TestOpen_CostDoesNotGrowWithTheStore(t *testing.T) {
	cfg := config(newPrefix(t))
	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	require.NoError(t, st.Replace(benchkit.Contents(2000, 2000), true))
	require.NoError(t, st.Close())

	var c calls
	b, err := etcdbackend.Open(context.Background(), etcdbackend.WithDialOptions(cfg, c.option()))
	require.NoError(t, err)
	h := benchkit.Host(5000)
	_, err = b.Commit(&state.Batch{Time: time.Now(), Changes: []state.Change{{Kind: state.KindHost, Key: h.Name, Host: h}}})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	t.Logf("a write: %v, %d bytes answered", c.methods, c.bytes)
	assert.Equal(t, map[string]int{"LeaseGrant": 1, "Txn": 2, "LeaseRevoke": 1}, c.methods)
	assert.Less(t, c.bytes, 2048)

	var r calls
	ro, err := etcdbackend.Open(context.Background(), etcdbackend.WithDialOptions(etcdbackendRO(cfg), r.option()))
	require.NoError(t, err)
	defer ro.Close()
	require.NoError(t, ro.View(func(s state.Snapshot) error {
		got, ok, err := s.Host(h.Name)
		require.True(t, ok)
		assert.Equal(t, h.Name, got.Name)
		return err
	}))
	t.Logf("open and look up one host: %v, %d bytes answered", r.methods, r.bytes)
	assert.Equal(t, map[string]int{"Txn": 3}, r.methods, "open, view, lookup")
	assert.Less(t, r.bytes, 4096)
	// Counting the records is one more request, made only when asked.
	require.NoError(t, ro.View(func(s state.Snapshot) error {
		n, _ := s.Len()
		assert.Equal(t, 2001, n)
		return nil
	}))
	assert.Equal(t, map[string]int{"Txn": 5}, r.methods, "a view, and its count")
}
