package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/internal/boltdamage"
	"github.com/go-ftl2/ftlstate/state"
)

// damagedStore writes a bbolt store of 300 hosts (one holding a password)
// through the binary and damages it with damage.
func damagedStore(t *testing.T, damage func(path string) error) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "s.db")
	r := bin(t, nil, "--state", db, "host", "add", "db01", "--address", "192.0.2.77", "--user", "postgres", "--var", "password=s3cr3t-Pa55")
	require.Equal(t, 0, r.code, r.stderr)
	b, err := boltbackend.Open(db, nil)
	require.NoError(t, err)
	st, err := state.Open(b)
	require.NoError(t, err)
	require.NoError(t, st.Update(func(tx *state.Tx) error {
		for i := range 300 {
			h := &state.HostState{Name: fmt.Sprintf("web%03d", i), Address: "192.0.2.1", Vars: map[string]any{"pad": strings.Repeat("x", 50)}}
			if err := tx.AddHost(h); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, st.Close())
	require.NoError(t, damage(db))
	return db
}

// TestBinary_DamagedBoltStore: the damaged stores, through the
// binary. Every command that reads or writes fails with exit 1 and one
// line (a zeroed freelist page made every write panic with a Go stack
// trace; a branch key offset out of range killed check with SIGSEGV; a
// write through a freelist listing a live page exited 0 and destroyed the
// hosts; a flipped byte in a record was printed by hosts and export, and
// check said ok), and check lists the damage with exit 1.
func TestBinary_DamagedBoltStore(t *testing.T) {
	for _, tc := range []struct {
		name       string
		damage     func(path string) error
		msg        string
		recordOnly bool
	}{
		{"freelist lists a live page", func(p string) error { return boltdamage.FreelistListsLivePage(p, "hosts") }, "which is in use", false},
		{"zeroed freelist page", boltdamage.ZeroFreelist, "freelist", false},
		{"branch key offset out of range", func(p string) error { return boltdamage.BranchKeyOffset(p, "hosts") }, "outside the page", false},
		{"leaf count lowered", func(p string) error { return boltdamage.LowerLeafCount(p, "hosts") }, "counter says 301", false},
		{"branch points at another leaf", func(p string) error { return boltdamage.BranchToOtherLeaf(p, "hosts") }, "reached twice", false},
		{"flipped byte in a record", func(p string) error { return boltdamage.FlipByte(p, []byte("s3cr3t-Pa55")) }, "checksum mismatch", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := damagedStore(t, tc.damage)
			commands := [][]string{{"hosts"}, {"export"}, {"inventory", "--list"}}
			if !tc.recordOnly {
				// Damage to pages or counters refuses writes too; a damaged
				// record stops only what reads it (a write of another
				// record cannot destroy it, one of the same repairs it).
				commands = append(commands, []string{"host", "add", "new01", "--address", "192.0.2.9"},
					[]string{"resource", "add", "linode:1", "--type", "linode", "--id", "1"})
			}
			for _, args := range commands {
				r := bin(t, nil, append([]string{"--state", db}, args...)...)
				assert.Equal(t, 1, r.code, "%v: stdout %.200s, stderr %.400s", args, r.stdout, r.stderr)
				assert.NotContains(t, r.stdout, "s3cr3t-Pa5", "%v: damaged data is never served", args)
				assert.NotContains(t, r.stdout, "s2cr3t", "%v", args)
				assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "%v: one line: %s", args, r.stderr)
				assert.NotContains(t, r.stderr, "goroutine", "%v: no stack trace", args)
				assert.NotContains(t, r.stderr, "fault", "%v", args)
			}
			r := bin(t, nil, "--state", db, "check")
			assert.Equal(t, 1, r.code, "check: %s %s", r.stdout, r.stderr)
			assert.Contains(t, r.stdout, tc.msg)
			assert.NotContains(t, r.stderr, "goroutine")
			assert.NotContains(t, r.stderr, "SIGSEGV")
		})
	}
}
