package state

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func serials(l *commitLog) []uint64 {
	var out []uint64
	for i := range l.n {
		out = append(out, l.at(i).Serial)
	}
	return out
}

func TestCommitLog_SerialsMaySkipNeverGoBack(t *testing.T) {
	var l commitLog
	l.reset(10)
	l.add(Commit{Serial: 11})
	l.add(Commit{Serial: 14})
	l.add(Commit{Serial: 12})
	assert.Equal(t, []uint64{11, 14}, serials(&l), "a serial below the newest is never held")
	assert.Equal(t, uint64(15), l.next)
}

func TestCommitLog_Limits(t *testing.T) {
	var l commitLog
	l.reset(0)
	for s := uint64(1); s <= HeldCommits+10; s++ {
		l.add(Commit{Serial: s})
	}
	assert.Equal(t, HeldCommits, l.n)
	assert.Equal(t, uint64(10), l.base)
	assert.Equal(t, uint64(HeldCommits+10), l.at(l.n-1).Serial)

	l.reset(0)
	big := make([]Change, HeldChanges/2+1)
	l.add(Commit{Serial: 1, Changes: big})
	l.add(Commit{Serial: 2, Changes: []Change{{}}})
	l.add(Commit{Serial: 3, Changes: big})
	assert.Equal(t, []uint64{2, 3}, serials(&l), "the changes held stay within HeldChanges")
	assert.Equal(t, 1+len(big), l.changes)
	l.add(Commit{Serial: 4, Changes: make([]Change, HeldChanges+5)})
	assert.Equal(t, []uint64{4}, serials(&l), "a commit larger than the limit is held alone")
}
