package etcdbackend_test

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/internal/benchkit"
	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// contents returns hosts hosts and resources resources named after tag.
func contents(tag string, hosts, resources int) *state.Contents {
	c := &state.Contents{Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}}
	for i := range hosts {
		name := fmt.Sprintf("%s-h%05d", tag, i)
		c.Hosts[name] = &state.HostState{Name: name, Vars: map[string]any{"tag": tag}}
	}
	for i := range resources {
		c.Resources[fmt.Sprintf("%s:r%05d", tag, i)] = &state.ResourceState{Type: tag, ID: strconv.Itoa(i)}
	}
	return c
}

// keysUnder returns how many keys the etcd server holds under prefix.
func keysUnder(t testing.TB, prefix string) int64 {
	t.Helper()
	resp, err := rawClient(t).Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	return resp.Count
}

// TestReplace_AnySizeWithDefaultLimits: an import of 3000 hosts and 3000
// resources (far beyond one transaction's 128 operations) over a store of
// 200 records, with etcd's default limits: the store then holds exactly
// the document, and the replaced records are deleted.
func TestReplace_AnySizeWithDefaultLimits(t *testing.T) {
	cfg := config(newPrefix(t))
	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	for i := 0; i < 100; i += 50 {
		require.NoError(t, st.Update(func(tx *state.Tx) error {
			for j := i; j < i+50; j++ {
				if err := tx.AddHost(&state.HostState{Name: fmt.Sprintf("old-h%05d", j)}); err != nil {
					return err
				}
				if err := tx.AddResource(fmt.Sprintf("old:r%05d", j), &state.ResourceState{Type: "old"}); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	oldBase := genBase(t, cfg)
	doc := contents("new", 3000, 3000)
	doc.Metadata = st.Metadata()
	start := time.Now()
	require.NoError(t, st.Replace(doc, false))
	t.Logf("import of 3000+3000 records: %s", time.Since(start).Round(time.Millisecond))
	hosts, resources := st.Len()
	assert.Equal(t, 3000, hosts)
	assert.Equal(t, 3000, resources)
	require.NoError(t, st.Close())

	ro := openTB(t, etcdbackendRO(cfg))
	require.NoError(t, ro.View(func(s state.Snapshot) error {
		h, r := s.Len()
		assert.Equal(t, 3000, h)
		assert.Equal(t, 3000, r)
		n := 0
		require.NoError(t, s.Hosts(func(h *state.HostState) error {
			assert.True(t, strings.HasPrefix(h.Name, "new-"), h.Name)
			n++
			return nil
		}))
		assert.Equal(t, 3000, n)
		return nil
	}))
	require.NoError(t, ro.Check())
	assert.NotEqual(t, oldBase, genBase(t, cfg), "a new generation")
	assert.Zero(t, keysUnder(t, oldBase+"/"), "the replaced records are deleted")
	assert.Zero(t, keysUnder(t, cfg.Prefix+"/stale/"), "nothing left to delete")
}

// TestReplace_ReadersSeeOldOrNew: while imports replace 1000+1000 records
// by another 1000+1000, again and again, readers' Views each see one
// document whole: every record they read, and the counts, are of the
// same import.
func TestReplace_ReadersSeeOldOrNew(t *testing.T) {
	cfg := config(newPrefix(t))
	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	require.NoError(t, st.Replace(contents("a", 1000, 1000), true))

	ro := openTB(t, etcdbackendRO(cfg))
	stop := make(chan struct{})
	var views, mixed atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := ro.View(func(s state.Snapshot) error {
					h, r := s.Len()
					tags := map[string]int{}
					if err := s.Hosts(func(h *state.HostState) error { tags[h.Vars["tag"].(string)]++; return nil }); err != nil {
						return err
					}
					if err := s.Resources(func(_ string, r *state.ResourceState) error { tags[r.Type]++; return nil }); err != nil {
						return err
					}
					if len(tags) != 1 || h != 1000 || r != 1000 {
						mixed.Add(1)
						t.Errorf("a view saw a mix: %v (Len %d, %d)", tags, h, r)
					}
					return nil
				})
				if !assert.NoError(t, err) {
					return
				}
				views.Add(1)
			}
		})
	}
	for i := range 3 {
		require.NoError(t, st.Replace(contents([]string{"b", "a"}[i%2], 1000, 1000), true))
	}
	close(stop)
	wg.Wait()
	t.Logf("%d views during 3 imports, %d mixed", views.Load(), mixed.Load())
	assert.Greater(t, views.Load(), int64(1))
}

// failAfter returns a gRPC interceptor that calls fail once, before the
// n-th Txn request sent through it.
func failAfter(n int64, fail func()) grpc.DialOption {
	var count atomic.Int64
	var once sync.Once
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/Txn") && count.Add(1) == n {
			once.Do(fail)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
}

// revokeLock revokes the lease of the lock of the store at prefix.
func revokeLock(t testing.TB, prefix string) {
	raw := rawClient(t)
	resp, err := raw.Get(context.Background(), prefix+"/lock")
	if err != nil || len(resp.Kvs) == 0 {
		t.Errorf("no lock to revoke: %v", err)
		return
	}
	if _, err := raw.Revoke(context.Background(), clientv3LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Error(err)
	}
}

// TestReplace_FailureMidwayChangesNothing: the lock is lost halfway
// through an import's record transactions: the import fails with
// ErrLocked, readers see the store as it was, and the next writer deletes
// the records written so far.
func TestReplace_FailureMidwayChangesNothing(t *testing.T) {
	cfg := config(newPrefix(t))
	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	require.NoError(t, st.Replace(contents("old", 50, 50), true))
	require.NoError(t, st.Close())

	// The lease goes before the 10th transaction of the import's open.
	wcfg := etcdbackend.WithDialOptions(cfg, failAfter(10, func() { revokeLock(t, cfg.Prefix) }))
	st, err = state.Open(openTB(t, wcfg))
	require.NoError(t, err)
	err = st.Replace(contents("new", 2000, 2000), true)
	require.ErrorIs(t, err, state.ErrLocked)
	t.Logf("error: %v", err)
	assert.Contains(t, err.Error(), "nothing visible was written")
	st.Close()
	assert.NotZero(t, keysUnder(t, cfg.Prefix+"/stale/"), "the new generation is marked for deletion")

	ro := openTB(t, etcdbackendRO(cfg))
	require.NoError(t, ro.View(func(s state.Snapshot) error {
		h, r := s.Len()
		assert.Equal(t, 50, h)
		assert.Equal(t, 50, r)
		return s.Hosts(func(h *state.HostState) error {
			assert.Equal(t, "old", h.Vars["tag"])
			return nil
		})
	}))
	require.NoError(t, ro.Check(), "records of the failed import are not problems")

	// The next writer deletes them.
	w := openTB(t, cfg)
	require.NoError(t, w.Close())
	assert.Zero(t, keysUnder(t, cfg.Prefix+"/stale/"))
	assert.Equal(t, int64(100), keysUnder(t, cfg.Prefix+"/gen/"), "only the store's 100 records are left")
}

// TestReplace_FailedImportIntoNothingLeavesNoStore: an import into a
// prefix that holds no store, failing midway, leaves no store behind.
func TestReplace_FailedImportIntoNothingLeavesNoStore(t *testing.T) {
	cfg := config(newPrefix(t))
	wcfg := etcdbackend.WithDialOptions(cfg, failAfter(5, func() { revokeLock(t, cfg.Prefix) }))
	st, err := state.Open(openTB(t, wcfg))
	require.NoError(t, err)
	require.ErrorIs(t, st.Replace(contents("new", 1000, 1000), true), state.ErrLocked)
	st.Close()
	_, err = openROErr(etcdbackendRO(cfg))
	assert.ErrorIs(t, err, fs.ErrNotExist, "no store")
	w := openTB(t, cfg)
	require.NoError(t, w.Close())
	assert.Zero(t, keysUnder(t, cfg.Prefix+"/"), "and no keys once a writer has been by: %d", keysUnder(t, cfg.Prefix+"/"))
}

// importEnv, when set to ENDPOINT|PREFIX|N, makes the test binary import
// N hosts and N resources into the store, saying "importing" first (the
// crash test kills it midway).
const importEnv = "ETCDBACKEND_TEST_IMPORT"

func importer(p string) {
	parts := strings.Split(p, "|")
	n, _ := strconv.Atoi(parts[2])
	b, err := etcdbackend.Open(context.Background(), etcdbackend.Config{Endpoints: []string{parts[0]}, Prefix: parts[1], SessionTTL: 2 * time.Second})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	st, err := state.Open(b)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("importing")
	if err := st.Replace(contents("new", n, n), true); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("imported")
	st.Close()
}

// TestReplace_KilledMidway: an importer killed with SIGKILL while its
// records go in leaves the store as it was (a reader sees the old
// contents whole, and Check finds nothing wrong), and the next writer
// deletes what it wrote.
func TestReplace_KilledMidway(t *testing.T) {
	cfg := config(newPrefix(t))
	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	require.NoError(t, st.Replace(contents("old", 300, 300), true))
	require.NoError(t, st.Close())

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), importEnv+"="+server.Endpoint(0)+"|"+cfg.Prefix+"|20000")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "importing\n", line)
	// Kill it once some of its records are in.
	deadline := time.Now().Add(30 * time.Second)
	for keysUnder(t, cfg.Prefix+"/gen/") < 600+2000 {
		require.True(t, time.Now().Before(deadline), "the importer wrote nothing")
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()
	written := keysUnder(t, cfg.Prefix+"/gen/") - 600
	t.Logf("killed after %d of 40000 records", written)
	require.Less(t, written, int64(40000), "killed midway")

	ro := openTB(t, etcdbackendRO(cfg))
	require.NoError(t, ro.View(func(s state.Snapshot) error {
		h, r := s.Len()
		assert.Equal(t, 300, h)
		assert.Equal(t, 300, r)
		return s.Hosts(func(h *state.HostState) error {
			assert.Equal(t, "old", h.Vars["tag"])
			return nil
		})
	}))
	require.NoError(t, ro.Check())

	wcfg := cfg
	wcfg.LockTimeout = 10 * time.Second // the dead importer's lease (2s)
	w := openTB(t, wcfg)
	require.NoError(t, w.Close())
	assert.Zero(t, keysUnder(t, cfg.Prefix+"/stale/"))
	assert.Equal(t, int64(600), keysUnder(t, cfg.Prefix+"/gen/"), "only the store's records are left")
}

// TestReplace_Layout1Store: a store of layout 1 (records under
// PREFIX/hosts/, as written before generations) is read and written in
// place, and an import turns it into layout 2, deleting the old records.
func TestReplace_Layout1Store(t *testing.T) {
	cfg := config(newPrefix(t))
	raw := rawClient(t)
	ctx := context.Background()
	m := state.NewMetadata(time.Now())
	m.Serial = 1
	mb, err := record.EncodeMetadata(&m)
	require.NoError(t, err)
	h, err := record.EncodeHost(&state.HostState{Name: "v1host", Address: "192.0.2.1"})
	require.NoError(t, err)
	_, err = raw.Txn(ctx).Then(
		clientv3.OpPut(cfg.Prefix+"/metadata", string(mb)),
		clientv3.OpPut(cfg.Prefix+"/layout", "1"),
		clientv3.OpPut(cfg.Prefix+"/hosts/v1host", string(h)),
	).Commit()
	require.NoError(t, err)

	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	got, ok := st.GetHost("v1host")
	require.True(t, ok)
	assert.Equal(t, "192.0.2.1", got.Address)
	require.NoError(t, st.AddHost(&state.HostState{Name: "added"}))
	assert.Equal(t, int64(2), keysUnder(t, cfg.Prefix+"/hosts/"), "written in place")

	doc := contents("new", 200, 0)
	doc.Metadata = st.Metadata()
	require.NoError(t, st.Replace(doc, false))
	require.NoError(t, st.Close())
	resp, err := raw.Get(ctx, cfg.Prefix+"/layout")
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint(etcdbackend.LayoutVersion), string(resp.Kvs[0].Value))
	assert.Zero(t, keysUnder(t, cfg.Prefix+"/hosts/"), "the layout 1 records are deleted")
	assert.Equal(t, 200, len(hostNames(t, cfg)))
	require.NoError(t, openTB(t, etcdbackendRO(cfg)).Check())
}

// BenchmarkReplace: an import of 10k hosts and 10k resources into a new
// prefix of the one-member server (bench's records).
func BenchmarkReplace(b *testing.B) {
	doc := benchkit.Contents(10000, 10000)
	for b.Loop() {
		cfg := config(newPrefix(b))
		be, err := etcdbackend.Open(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		st, err := state.Open(be)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Replace(doc, true); err != nil {
			b.Fatal(err)
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDelete: Delete removes every key of the store, and nothing of a
// store whose prefix begins the same.
func TestDelete(t *testing.T) {
	cfg := config(newPrefix(t))
	other := cfg
	other.Prefix += "2"
	for _, c := range []etcdbackend.Config{cfg, other} {
		st, err := state.Open(openTB(t, c))
		require.NoError(t, err)
		require.NoError(t, st.Replace(contents("x", 300, 300), true))
		require.NoError(t, st.Close())
	}
	require.NoError(t, etcdbackend.Delete(context.Background(), cfg))
	assert.Zero(t, keysUnder(t, cfg.Prefix+"/"))
	assert.Len(t, hostNames(t, other), 300)
	_, err := openROErr(etcdbackendRO(cfg))
	assert.ErrorIs(t, err, fs.ErrNotExist)
}
