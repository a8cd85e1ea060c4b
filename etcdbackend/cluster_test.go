package etcdbackend_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/internal/etcdtest"
	"github.com/go-ftl2/ftlstate/state"
)

// TestCluster_LosingMembers runs a writer against a three-member cluster
// (fsync on) while members stop: with one member gone (the leader) writes
// go on; with two gone they fail, with a clear error, within their
// timeouts; once the members are back, everything acknowledged is there,
// and a write that failed as "nothing written" is not.
func TestCluster_LosingMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops a three-member cluster")
	}
	c := etcdtest.New(t, etcdtest.Options{Members: 3})
	const timeout = 3 * time.Second
	cfg := etcdbackend.Config{Endpoints: c.Endpoints(), Prefix: "/cluster", RequestTimeout: timeout, DialTimeout: timeout}
	b, err := etcdbackend.Open(context.Background(), cfg)
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)
	defer st.Close()

	var acked, refused []string
	write := func(name string) error {
		err := st.AddHost(&state.HostState{Name: name})
		switch {
		case err == nil:
			acked = append(acked, name)
		case errors.Is(err, errNothingWritten(err)):
			refused = append(refused, name)
		}
		return err
	}
	for i := range 10 {
		require.NoError(t, write(fmt.Sprintf("all-%02d", i)))
	}

	leader := c.Leader()
	require.GreaterOrEqual(t, leader, 0)
	c.Stop(leader)
	start := time.Now()
	for i := range 10 {
		require.NoError(t, write(fmt.Sprintf("two-%02d", i)), "one member down: writes go on")
	}
	t.Logf("leader stopped: 10 writes in %s", time.Since(start).Round(time.Millisecond))

	second := (leader + 1) % 3
	c.Stop(second)
	start = time.Now()
	err = write("one-00")
	elapsed := time.Since(start)
	require.Error(t, err, "no quorum: the write fails")
	t.Logf("no quorum: failed after %s: %v", elapsed.Round(time.Millisecond), err)
	assert.Less(t, elapsed, 2*timeout+3*time.Second, "within its timeouts")
	assert.Contains(t, err.Error(), "etcdbackend: /cluster: ")
	unknown := errors.Is(err, etcdbackend.ErrOutcomeUnknown)
	assert.True(t, unknown || len(refused) > 0, "the error says whether anything was written: %v", err)

	r1, r2 := c.RestartAsync(leader), c.RestartAsync(second)
	require.NoError(t, <-r1)
	require.NoError(t, <-r2)

	// After an unknown outcome the State refuses writes until the store
	// is reopened (state.ErrOutcomeUnknown); a reopened store goes on.
	err = write("back-00")
	if unknown {
		require.ErrorIs(t, err, etcdbackend.ErrOutcomeUnknown, "writes after an unknown outcome are refused")
		require.NoError(t, st.Close())
		b, err = etcdbackend.Open(context.Background(), cfg)
		require.NoError(t, err)
		st, err = state.Open(b)
		require.NoError(t, err)
		require.NoError(t, write("back-00"), "writes resume once reopened")
	} else {
		require.NoError(t, err, "writes resume once a quorum is back")
	}
	require.NoError(t, st.Close())

	names := hostNames(t, cfg)
	for _, name := range acked {
		assert.Contains(t, names, name, "acknowledged, so stored")
	}
	for _, name := range refused {
		assert.NotContains(t, names, name, "reported as not written, so absent")
	}
	if !unknown {
		assert.NotContains(t, names, "one-00", "reported as not stored, so absent")
	}
}

// errNothingWritten returns err when it says that nothing was written
// (a definite failure), else a sentinel that matches nothing.
func errNothingWritten(err error) error {
	if err != nil && !errors.Is(err, etcdbackend.ErrOutcomeUnknown) {
		return err
	}
	return errors.New("no match")
}
