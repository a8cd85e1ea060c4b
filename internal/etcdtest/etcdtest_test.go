package etcdtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/go-ftl2/ftlstate/internal/etcdtest"
)

func TestCluster_StopRestart(t *testing.T) {
	start := time.Now()
	c := etcdtest.New(t, etcdtest.Options{Members: 3})
	t.Logf("started in %s", time.Since(start))
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	// put retries: a request that reached a follower just as the leader
	// died gets no answer.
	put := func(k string, timeout time.Duration) error {
		var err error
		for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = cli.Put(ctx, k, "v")
			cancel()
			if err == nil {
				return nil
			}
		}
		return err
	}
	require.NoError(t, put("a", 5*time.Second))
	lease, err := cli.Grant(context.Background(), 30)
	require.NoError(t, err)
	_, err = cli.KeepAlive(context.Background(), lease.ID)
	require.NoError(t, err)

	leader := c.Leader()
	require.GreaterOrEqual(t, leader, 0)
	other := (leader + 1) % 3
	s := time.Now()
	c.Stop(leader)
	t.Logf("stop leader %d in %s", leader, time.Since(s))
	require.NoError(t, put("b", 5*time.Second), "a quorum remains")
	t.Logf("put after %s", time.Since(s))
	s = time.Now()
	c.Stop(other)
	t.Logf("stop %d in %s", other, time.Since(s))
	require.Error(t, put("c", time.Second), "no quorum")
	s = time.Now()
	ch1, ch2 := c.RestartAsync(leader), c.RestartAsync(other)
	require.NoError(t, <-ch1)
	require.NoError(t, <-ch2)
	t.Logf("restart in %s", time.Since(s))
	require.NoError(t, put("d", 5*time.Second))
	resp, err := cli.Get(context.Background(), "b")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
}
