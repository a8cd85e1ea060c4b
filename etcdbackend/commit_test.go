package etcdbackend_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/state"
)

func TestCommit_OversizedValueNamesTheKey(t *testing.T) {
	cfg := config(newPrefix(t))
	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	require.NoError(t, st.AddHost(&state.HostState{Name: "small"}))
	before := st.Metadata()

	big := &state.HostState{Name: "huge", Vars: map[string]any{"blob": strings.Repeat("x", 2<<20)}}
	err = st.AddHost(big)
	require.ErrorIs(t, err, state.ErrInvalid)
	assert.Contains(t, err.Error(), `host "huge"`)
	assert.Contains(t, err.Error(), "--max-request-bytes")
	t.Logf("error: %v", err)

	// In an Update with other changes: the whole batch is refused.
	err = st.Update(func(tx *state.Tx) error {
		if err := tx.AddHost(&state.HostState{Name: "ok"}); err != nil {
			return err
		}
		return tx.AddResource("res:1", &state.ResourceState{Type: "t", Data: map[string]any{"blob": strings.Repeat("y", 2<<20)}})
	})
	require.ErrorIs(t, err, state.ErrInvalid)
	assert.Contains(t, err.Error(), `resource "res:1"`)

	// Records that fit one by one but not together.
	err = st.Update(func(tx *state.Tx) error {
		for i := range 3 {
			if err := tx.AddHost(&state.HostState{Name: fmt.Sprintf("h%d", i), Vars: map[string]any{"blob": strings.Repeat("z", 700<<10)}}); err != nil {
				return err
			}
		}
		return nil
	})
	require.ErrorIs(t, err, state.ErrInvalid)
	assert.Contains(t, err.Error(), "a batch of 3 changes takes")

	assert.Equal(t, before, st.Metadata())
	require.NoError(t, st.Close())
	assert.Equal(t, []string{"small"}, hostNames(t, cfg), "nothing written")
}

// TestCommit_LargestRecordThatFits: every record size the size check lets
// through, etcd accepts (a binary search for the limit).
func TestCommit_LargestRecordThatFits(t *testing.T) {
	cfg := config(newPrefix(t))
	b := openTB(t, cfg)
	commit := func(n int) error {
		h := &state.HostState{Name: "big", Vars: map[string]any{"blob": strings.Repeat("x", n)}}
		_, err := b.Commit(&state.Batch{Time: time.Now(), Changes: []state.Change{{Kind: state.KindHost, Key: h.Name, Host: h}}})
		return err
	}
	lo, hi := 1<<20, 2<<20 // fits, does not fit
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		err := commit(mid)
		if errors.Is(err, state.ErrInvalid) {
			hi = mid
			continue
		}
		require.NoError(t, err, "a record of %d bytes passed the size check, etcd refused it", mid)
		lo = mid
	}
	t.Logf("largest blob: %d bytes (etcd's limit: %d)", lo, etcdbackend.DefaultMaxRequestBytes)
	assert.Greater(t, lo, etcdbackend.DefaultMaxRequestBytes-16<<10, "the margin is small")
}

func TestCommit_TooManyChangesForOneTransaction(t *testing.T) {
	cfg := config(newPrefix(t))
	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	add := func(n int) error {
		return st.Update(func(tx *state.Tx) error {
			for i := range n {
				if err := tx.AddHost(&state.HostState{Name: fmt.Sprintf("h%03d", i)}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	require.NoError(t, add(etcdbackend.DefaultMaxTxnOps-2), "126 changes, the metadata and the marker: 128 operations")
	err = add(etcdbackend.DefaultMaxTxnOps - 1)
	require.ErrorIs(t, err, state.ErrInvalid)
	assert.Contains(t, err.Error(), "--max-txn-ops")
	t.Logf("error: %v", err)

	// Replace has no such limit: it writes in as many transactions as it
	// needs.
	err = st.Replace(&state.Contents{Metadata: st.Metadata(), Hosts: map[string]*state.HostState{"new": {Name: "new"}}}, false)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	assert.Equal(t, []string{"new"}, hostNames(t, cfg))
}

// TestCommit_GroupCommit: concurrent batches share transactions, each
// with its own serial; a batch that etcd refuses fails alone.
func TestCommit_GroupCommit(t *testing.T) {
	cfg := config(newPrefix(t))
	b := openTB(t, cfg)
	txns := etcdbackend.WriteTxns(b)
	const writers, each = 32, 20
	now := state.Timestamp(time.Now())
	var wg sync.WaitGroup
	var mu sync.Mutex
	serials := map[uint64]bool{}
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				h := &state.HostState{Name: fmt.Sprintf("w%02d-%02d", w, i), CreatedAt: now, UpdatedAt: now}
				m, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: h.Name, Host: h}}})
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				assert.False(t, serials[m.Serial], "serial %d twice", m.Serial)
				serials[m.Serial] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	n := etcdbackend.WriteTxns(b) - txns
	t.Logf("%d batches in %d transactions", writers*each, n)
	assert.Less(t, n, uint64(writers*each), "some batches shared a transaction")
	require.NoError(t, b.View(func(s state.Snapshot) error {
		h, _ := s.Len()
		assert.Equal(t, writers*each, h)
		assert.Equal(t, uint64(writers*each), s.Metadata().Serial)
		return nil
	}))

	// A batch with a key twice is refused (state.Batch.Validate) before it
	// can join a group: only it fails.
	var good, bad sync.WaitGroup
	for i := range 20 {
		good.Go(func() {
			h := &state.HostState{Name: fmt.Sprintf("g%02d", i), CreatedAt: now, UpdatedAt: now}
			_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: h.Name, Host: h}}})
			assert.NoError(t, err)
		})
		bad.Go(func() {
			h := &state.HostState{Name: fmt.Sprintf("dup%02d", i), CreatedAt: now, UpdatedAt: now}
			c := state.Change{Kind: state.KindHost, Key: h.Name, Host: h}
			_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{c, c}})
			assert.ErrorIs(t, err, state.ErrInvalid)
			assert.ErrorContains(t, err, "changed twice in one batch")
		})
	}
	good.Wait()
	bad.Wait()
	require.NoError(t, b.View(func(s state.Snapshot) error {
		h, _ := s.Len()
		assert.Equal(t, writers*each+20, h)
		assert.Equal(t, uint64(writers*each+20), s.Metadata().Serial)
		return nil
	}))
}

func TestCommit_ReadOnlyAndClosed(t *testing.T) {
	cfg := config(newPrefix(t))
	b, err := etcdbackend.Open(context.Background(), cfg)
	require.NoError(t, err)
	require.NoError(t, b.Close())
	_, err = b.Commit(&state.Batch{Time: time.Now()})
	assert.ErrorIs(t, err, state.ErrClosed)
	assert.NoError(t, b.Close())
}

// TestCommit_RefusedBatchFailsAlone: a batch that etcd refuses (a record
// above the server's --max-request-bytes, Config.MaxRequestBytes being
// set higher) fails alone, whatever it was grouped with; the group is
// retried batch by batch and the others commit once.
func TestCommit_RefusedBatchFailsAlone(t *testing.T) {
	cfg := config(newPrefix(t))
	cfg.MaxRequestBytes = 8 << 20 // the server allows 1.5 MiB
	b := openTB(t, cfg)
	now := state.Timestamp(time.Now())
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			h := &state.HostState{Name: fmt.Sprintf("h%02d", i), CreatedAt: now, UpdatedAt: now}
			if i%5 == 0 {
				h.Vars = map[string]any{"blob": strings.Repeat("x", 2<<20)}
			}
			_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: h.Name, Host: h}}})
			if i%5 == 0 {
				assert.ErrorContains(t, err, "nothing of this batch was written")
				assert.ErrorContains(t, err, "--max-request-bytes")
			} else {
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	require.NoError(t, b.View(func(s state.Snapshot) error {
		h, _ := s.Len()
		assert.Equal(t, 16, h)
		assert.Equal(t, uint64(16), s.Metadata().Serial, "each stored batch once")
		return nil
	}))
}
