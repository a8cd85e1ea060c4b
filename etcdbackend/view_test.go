package etcdbackend_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
)

// TestView_OneRevision: a View sees the store as of its start, across
// pages, while the writer deletes and adds records.
func TestView_OneRevision(t *testing.T) {
	cfg := config(newPrefix(t))
	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	const n = 2600 // more than one page
	for i := 0; i < n; i += 50 {
		require.NoError(t, st.Update(func(tx *state.Tx) error {
			for j := i; j < min(i+50, n); j++ {
				if err := tx.AddHost(&state.HostState{Name: fmt.Sprintf("h%05d", j)}); err != nil {
					return err
				}
				if err := tx.AddResource(fmt.Sprintf("r%05d", j), &state.ResourceState{Type: []string{"a", "b"}[j%2]}); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	meta := st.Metadata()

	ro := cfg
	ro.ReadOnly = true
	r := openTB(t, ro)
	require.NoError(t, r.View(func(s state.Snapshot) error {
		// The writer changes everything meanwhile.
		require.NoError(t, st.RemoveHost("h00000"))
		require.NoError(t, st.RemoveHost(fmt.Sprintf("h%05d", n-1)))
		require.NoError(t, st.AddHost(&state.HostState{Name: "h00600x"}))
		require.NoError(t, st.AddResource("r00001", &state.ResourceState{Type: "a"}))

		assert.Equal(t, meta, s.Metadata())
		nh, nr := s.Len()
		assert.Equal(t, n, nh)
		assert.Equal(t, n, nr)
		var names []string
		require.NoError(t, s.Hosts(func(h *state.HostState) error { names = append(names, h.Name); return nil }))
		require.Len(t, names, n)
		for i, name := range names {
			require.Equal(t, fmt.Sprintf("h%05d", i), name, "in order, as of the View's start")
		}
		var bs int
		require.NoError(t, state.ResourcesOfType(s, "b", func(key string, r *state.ResourceState) error {
			assert.Equal(t, "b", r.Type, key)
			bs++
			return nil
		}))
		assert.Equal(t, n/2, bs, "r00001 is still of type b in this view")
		_, ok, err := s.Host("h00000")
		assert.NoError(t, err)
		assert.True(t, ok, "removed after the View started")
		_, ok, _ = s.Host("h00600x")
		assert.False(t, ok, "added after the View started")
		return nil
	}))
	require.NoError(t, r.View(func(s state.Snapshot) error {
		nh, _ := s.Len()
		assert.Equal(t, n-1, nh, "a new View sees the writes")
		return nil
	}))
	var saved state.Snapshot
	require.NoError(t, r.View(func(s state.Snapshot) error { saved = s; return nil }))
	_, _, err = saved.Host("h00001")
	assert.Error(t, err, "a snapshot is valid only during its View")
}

func TestView_CorruptRecordNamesTheKey(t *testing.T) {
	cfg := config(newPrefix(t))
	b := openTB(t, cfg)
	now := state.Timestamp(time.Now())
	good := &state.HostState{Name: "a", CreatedAt: now, UpdatedAt: now}
	_, err := b.Commit(&state.Batch{Time: now, Changes: []state.Change{{Kind: state.KindHost, Key: "a", Host: good}}})
	require.NoError(t, err)
	raw := rawClient(t)
	base := genBase(t, cfg)
	_, err = raw.Put(context.Background(), base+"/hosts/bad", "\xc1 not msgpack")
	require.NoError(t, err)
	_, err = raw.Put(context.Background(), base+"/resources/bad", "\x93")
	require.NoError(t, err)
	// A valid record under another name.
	resp, err := raw.Get(context.Background(), base+"/hosts/a")
	require.NoError(t, err)
	_, err = raw.Put(context.Background(), base+"/hosts/z", string(resp.Kvs[0].Value))
	require.NoError(t, err)

	require.NoError(t, b.View(func(s state.Snapshot) error {
		_, _, err := s.Host("bad")
		assert.ErrorIs(t, err, state.ErrCorrupt)
		assert.ErrorContains(t, err, `"`+base+`/hosts/bad"`)
		err = s.Hosts(func(*state.HostState) error { return nil })
		assert.ErrorIs(t, err, state.ErrCorrupt)
		assert.ErrorContains(t, err, base+"/hosts/bad")
		_, _, err = s.Host("z")
		assert.ErrorIs(t, err, state.ErrCorrupt)
		assert.ErrorContains(t, err, "stored under another key")
		_, _, err = s.Resource("bad")
		assert.ErrorIs(t, err, state.ErrCorrupt)
		assert.ErrorIs(t, state.ResourcesOfType(s, "x", func(string, *state.ResourceState) error { return nil }), state.ErrCorrupt)
		h, ok, err := s.Host("a")
		assert.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, "a", h.Name)
		return nil
	}))
	_, err = state.Open(b)
	assert.ErrorIs(t, err, state.ErrCorrupt, "a State does not open on a damaged store")

	_, err = raw.Put(context.Background(), cfg.Prefix+"/metadata", "junk")
	require.NoError(t, err)
	ro := cfg
	ro.ReadOnly = true
	_, err = openROErr(ro)
	assert.ErrorIs(t, err, state.ErrCorrupt)
	assert.ErrorContains(t, err, cfg.Prefix+"/metadata")
}

func TestCheck(t *testing.T) {
	cfg := config(newPrefix(t))
	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	require.NoError(t, st.AddHost(&state.HostState{Name: "a"}))
	require.NoError(t, st.AddResource("r", &state.ResourceState{Type: "t"}))
	b := openTB(t, etcdbackendRO(cfg))
	require.NoError(t, b.Check())

	raw := rawClient(t)
	base := genBase(t, cfg)
	_, err = raw.Put(context.Background(), base+"/hosts/bad", "junk")
	require.NoError(t, err)
	_, err = raw.Put(context.Background(), cfg.Prefix+"/stray", "x")
	require.NoError(t, err)
	// Records of a generation that is not the store's, and not marked for
	// deletion; and of one that is (an interrupted import): only the
	// first is a problem.
	_, err = raw.Put(context.Background(), cfg.Prefix+"/gen/7.1/hosts/x", "junk")
	require.NoError(t, err)
	_, err = raw.Put(context.Background(), cfg.Prefix+"/gen/7.2/hosts/y", "junk")
	require.NoError(t, err)
	_, err = raw.Put(context.Background(), cfg.Prefix+"/stale/7.2", "7.2")
	require.NoError(t, err)
	err = b.Check()
	require.ErrorIs(t, err, state.ErrCorrupt)
	var ce *state.CheckError
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Problems, 3, "%v", err)
	var hostMsg string
	for _, p := range ce.Problems {
		if p.Section == "hosts" {
			hostMsg = p.Msg
		}
	}
	assert.ElementsMatch(t, []state.Problem{
		{Section: "hosts", Key: "bad", Msg: hostMsg},
		{Key: cfg.Prefix + "/gen/7.1/hosts/x", Msg: `a record of generation "7.1", which is neither the store's nor marked for deletion`},
		{Key: cfg.Prefix + "/stray", Msg: "not a key of this store's layout"},
	}, ce.Problems)
	assert.ErrorContains(t, err, cfg.Prefix+": check found 3 problems")
	assert.NotContains(t, err.Error(), "7.2")
	t.Logf("check: %v", err)
}

// TestView_KeyScanner: names and keys by prefix, in order, without
// decoding records (a damaged one is listed too).
func TestView_KeyScanner(t *testing.T) {
	cfg := config(newPrefix(t))
	st, err := state.Open(openTB(t, cfg))
	require.NoError(t, err)
	require.NoError(t, st.Replace(contents("x", 30, 30), true))
	require.NoError(t, st.Close())
	_, err = rawClient(t).Put(context.Background(), genBase(t, cfg)+"/hosts/x-h00003b", "junk")
	require.NoError(t, err)
	b := openTB(t, etcdbackendRO(cfg))
	require.NoError(t, b.View(func(s state.Snapshot) error {
		var names, keys []string
		require.NoError(t, state.HostNames(s, "x-h0000", func(n string) error { names = append(names, n); return nil }))
		assert.Equal(t, []string{"x-h00000", "x-h00001", "x-h00002", "x-h00003", "x-h00003b", "x-h00004", "x-h00005", "x-h00006", "x-h00007", "x-h00008", "x-h00009"}, names)
		require.NoError(t, state.ResourceKeys(s, "x:r0002", func(k string) error { keys = append(keys, k); return nil }))
		assert.Len(t, keys, 10)
		stop := errors.New("stop")
		assert.Equal(t, stop, state.HostNames(s, "", func(string) error { return stop }))
		return nil
	}))
}
