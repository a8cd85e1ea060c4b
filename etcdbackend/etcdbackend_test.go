package etcdbackend_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/internal/etcdtest"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

// server is the one-member etcd cluster most tests share; each test works
// under a prefix of its own.
var server *etcdtest.Cluster

func TestMain(m *testing.M) {
	if p := os.Getenv(holdEnv); p != "" {
		hold(p) // re-executed as a lock holder (lock_test.go)
		return
	}
	if p := os.Getenv(writerEnv); p != "" {
		writer(p) // re-executed as a writer (realserver_test.go)
		return
	}
	if p := os.Getenv(importEnv); p != "" {
		importer(p) // re-executed as an importer (replace_test.go)
		return
	}
	c, err := etcdtest.Start(etcdtest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server = c
	code := m.Run()
	c.Close()
	os.Exit(code)
}

// config returns a Config for prefix on the shared server.
func config(prefix string) etcdbackend.Config {
	return etcdbackend.Config{Endpoints: server.Endpoints(), Prefix: prefix}
}

var prefixes atomic.Int64

// newPrefix returns a prefix no other test uses.
func newPrefix(t testing.TB) string {
	return fmt.Sprintf("/test/%s/%d", strings.ReplaceAll(t.Name(), "/", "-"), prefixes.Add(1))
}

// openTB opens the store cfg names and closes it when the test ends.
func openTB(t testing.TB, cfg etcdbackend.Config) *etcdbackend.Backend {
	t.Helper()
	b, err := etcdbackend.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBackend(t *testing.T) {
	statetest.TestBackend(t, func(t testing.TB, dir string, opts statetest.OpenOptions) state.Backend {
		// dir is unique to the subtest and the same on reopen.
		cfg := config("/statetest" + dir)
		cfg.ReadOnly = opts.ReadOnly
		b, err := etcdbackend.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// genBase returns the key prefix of the records of the store at cfg's
// prefix: PREFIX/gen/ID, ID being its generation (PREFIX for a layout 1
// store).
func genBase(t testing.TB, cfg etcdbackend.Config) string {
	t.Helper()
	resp, err := rawClient(t).Get(context.Background(), cfg.Prefix+"/generation")
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return cfg.Prefix
	}
	return cfg.Prefix + "/gen/" + string(resp.Kvs[0].Value)
}

func clientv3LeaseID(id int64) clientv3.LeaseID { return clientv3.LeaseID(id) }

// openROErr opens cfg and closes the backend at once, returning Open's
// error.
func openROErr(cfg etcdbackend.Config) (*etcdbackend.Backend, error) {
	b, err := etcdbackend.Open(context.Background(), cfg)
	if err == nil {
		b.Close()
	}
	return b, err
}

// etcdbackendRO returns cfg, read-only.
func etcdbackendRO(cfg etcdbackend.Config) etcdbackend.Config {
	cfg.ReadOnly = true
	return cfg
}
