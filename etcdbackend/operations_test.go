package etcdbackend_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

func layoutOf(t testing.TB, raw *clientv3.Client, prefix string) string {
	t.Helper()
	resp, err := raw.Get(context.Background(), prefix+"/layout")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	return string(resp.Kvs[0].Value)
}

// A store of layout version 1 (written before operations existed) reads
// as one without pending operations and becomes version 2 in the
// transaction of its first operation.
func TestOperations_Layout1StoreUpgradesWithItsFirstOperation(t *testing.T) {
	cfg := config(newPrefix(t))
	raw := rawClient(t)
	// A store of layout 1, as written before operations existed.
	m := state.NewMetadata(time.Now())
	mb, err := record.EncodeMetadata(&m)
	require.NoError(t, err)
	_, err = raw.Txn(context.Background()).Then(clientv3.OpPut(cfg.Prefix+"/metadata", string(mb)), clientv3.OpPut(cfg.Prefix+"/layout", "1")).Commit()
	require.NoError(t, err)

	b := openTB(t, cfg)
	st, err := state.Open(b)
	require.NoError(t, err)
	assert.Empty(t, st.PendingOperations())
	require.NoError(t, st.AddHost(&state.HostState{Name: "web01"}))
	assert.Equal(t, "1", layoutOf(t, raw, cfg.Prefix), "other writes leave the layout as it is")
	op, err := st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: "linode:1", Host: "web01"})
	require.NoError(t, err)
	assert.Equal(t, "2", layoutOf(t, raw, cfg.Prefix))
	_, err = st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: "linode:2"})
	require.NoError(t, err)
	require.NoError(t, b.Check())
	require.NoError(t, st.Close())

	resp, err := raw.Get(context.Background(), cfg.Prefix+"/operations/"+op.ID)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "one key per operation, under PREFIX/operations/")
	got, err := record.DecodeOperation(resp.Kvs[0].Value)
	require.NoError(t, err)
	assert.Equal(t, op, got)
}

func TestOperations_CheckFindsDamagedOperations(t *testing.T) {
	cfg := config(newPrefix(t))
	raw := rawClient(t)
	b := openTB(t, cfg)
	_, err := b.Commit(&state.Batch{Time: time.Now()}) // creates the store
	require.NoError(t, err)
	base := genBase(t, cfg)
	other, err := record.EncodeOperation(&state.Operation{ID: "other", Action: "create", Resource: "r"})
	require.NoError(t, err)
	_, err = raw.Put(context.Background(), base+"/operations/garbage", "\x93\x01")
	require.NoError(t, err)
	_, err = raw.Put(context.Background(), base+"/operations/elsewhere", string(other))
	require.NoError(t, err)
	err = b.Check()
	assert.ErrorIs(t, err, state.ErrCorrupt)
	assert.ErrorContains(t, err, `operations/"garbage": record:`)
	assert.ErrorContains(t, err, `operation "other" stored under another key`)
	require.NoError(t, b.View(func(s state.Snapshot) error {
		_, _, err := s.Operation("garbage")
		assert.ErrorIs(t, err, state.ErrCorrupt)
		assert.ErrorIs(t, s.Operations(func(*state.Operation) error { return nil }), state.ErrCorrupt)
		return nil
	}))
}

func TestLockHolder(t *testing.T) {
	cfg := config(newPrefix(t))
	w := openTB(t, cfg)
	_, err := w.Commit(&state.Batch{}) // a write open creates the store with its first commit
	require.NoError(t, err)
	ro := cfg
	ro.ReadOnly = true
	r := openTB(t, ro)
	h, err := r.LockHolder()
	require.NoError(t, err)
	require.NotNil(t, h, "the writer holds the lock")
	assert.Equal(t, os.Getpid(), h.PID)
	assert.False(t, h.Since.IsZero())
	require.NoError(t, w.Close())
	h, err = r.LockHolder()
	require.NoError(t, err)
	assert.Nil(t, h, "nobody holds it once the writer closed")
	require.NoError(t, r.Close())
	_, err = r.LockHolder()
	assert.ErrorIs(t, err, state.ErrClosed)
}
