package inflight_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/internal/inflight"
)

func TestOps_CloseWaitsForOperationsInFlight(t *testing.T) {
	var o inflight.Ops
	require.True(t, o.Enter())
	closed := make(chan bool)
	go func() { closed <- o.Close() }()
	// Close has begun once new operations are refused.
	for !o.Closed() {
		time.Sleep(time.Millisecond)
	}
	assert.False(t, o.Enter(), "no operation enters once Close began")
	select {
	case <-closed:
		t.Fatal("Close returned while an operation was in flight")
	case <-time.After(20 * time.Millisecond):
	}
	o.Leave()
	assert.True(t, <-closed, "the first Close reports it closed")
	assert.False(t, o.Close(), "a second Close reports false, at once")
}
