package boltbackend

import (
	"errors"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/go-ftl2/ftlstate/state"
)

// overlay is what the log beside a store opened read-only holds beyond
// its bbolt file: the groups a writer acknowledged before it crashed (or
// was killed), which the next read-write Open applies. A read-only
// Backend writes nothing, so its Views show the file with the overlay
// over it: for each key, the last change the log makes to it.
type overlay struct {
	recs []*logged
	id   [16]byte
	// meta and the counts are the store's after the last group.
	meta               state.Metadata
	nHosts, nResources uint64
	kinds              [state.KindOperation + 1]kindOverlay
	// types lists, per resource type, the keys (sorted) of the resources
	// the overlay puts with that type.
	types map[string][]string
}

// kindOverlay is the overlay's last change per key of one kind, and the
// keys in order.
type kindOverlay struct {
	m    map[string]*prepared
	keys []string
}

// loadOverlay reads the log beside a store opened read-only into b.ov.
// With inspect, a damaged log is kept in b.logErr (Check reports it)
// instead of failing Open.
func (b *Backend) loadOverlay(inspect bool) error {
	return b.db.View(func(tx *bolt.Tx) error {
		return catchFaults(b.path, "reading the log", func() error {
			bk, err := b.openBuckets(tx)
			if err != nil {
				return err
			}
			recs, info, err := b.readLog(bk)
			b.logFound = LogStatus{Path: LogPath(b.real), Size: info.Size, Torn: info.Torn, Bytes: info.Bytes}
			if err != nil {
				if inspect && errors.Is(err, state.ErrCorrupt) {
					b.logErr = err
					return nil
				}
				return err
			}
			if len(recs) == 0 {
				return nil
			}
			b.ov = newOverlay(bk, recs)
			b.logFound.Records = len(recs)
			for _, g := range recs {
				b.logFound.Changes += len(g.changes)
			}
			return nil
		})
	})
}

// newOverlay builds the overlay of recs over the store bk reads.
func newOverlay(bk *buckets, recs []*logged) *overlay {
	ov := &overlay{recs: recs, id: bk.log.id, meta: recs[len(recs)-1].meta, types: map[string][]string{}}
	for k := range ov.kinds {
		ov.kinds[k].m = map[string]*prepared{}
	}
	for _, g := range recs {
		for i := range g.changes {
			c := &g.changes[i]
			ov.kinds[c.kind].m[string(c.key)] = c
		}
	}
	nHosts, nResources := int64(bk.nHosts), int64(bk.nResources)
	for k := range ov.kinds {
		ko := &ov.kinds[k]
		for key, c := range ko.m {
			ko.keys = append(ko.keys, key)
			switch c.kind {
			case state.KindHost:
				if bk.hosts != nil { // nil: not counted (Salvage)
					nHosts += delta(bk.hosts.Get(c.key) != nil, c.value != nil)
				}
			case state.KindResource:
				if bk.resources != nil {
					nResources += delta(bk.resources.Get(c.key) != nil, c.value != nil)
				}
				if c.value != nil {
					typ := string(c.index[:len(c.index)-len(c.key)-1])
					ov.types[typ] = append(ov.types[typ], key)
				}
			}
		}
		slices.Sort(ko.keys)
	}
	for _, keys := range ov.types {
		slices.Sort(keys)
	}
	ov.nHosts, ov.nResources = uint64(max(nHosts, 0)), uint64(max(nResources, 0))
	return ov
}

// delta is the change in a count when a record that was (or not) there
// is (or is not) there after.
func delta(was, is bool) int64 {
	switch {
	case was && !is:
		return -1
	case !was && is:
		return 1
	}
	return 0
}

// change returns the overlay's change of key of kind k, nil when it has
// none.
func (ov *overlay) change(k state.Kind, key []byte) *prepared {
	if ov == nil {
		return nil
	}
	return ov.kinds[k].m[string(key)]
}

// merged walks a bucket's records with the overlay's changes of one
// kind over them, in key order: the bucket's records the overlay does
// not change, and the overlay's puts.
type merged struct {
	c  *bolt.Cursor // nil: an absent bucket (no operations in a version 1 store)
	ko *kindOverlay // nil: no overlay
	// from, when not nil, is where the walk starts (the first key at
	// least from).
	from []byte
	k    []byte
	v    []byte
	i    int
}

// next returns the first pair (first set) or the next one; a nil key
// at the end.
func (m *merged) next(first bool) (k, v []byte) {
	if m.ko == nil {
		switch {
		case m.c == nil:
			return nil, nil
		case first && m.from != nil:
			return m.c.Seek(m.from)
		}
		return step(m.c, first)
	}
	if first {
		m.i = 0
		if m.from != nil {
			m.i, _ = slices.BinarySearch(m.ko.keys, string(m.from))
		}
		if m.c != nil && m.from != nil {
			m.k, m.v = m.c.Seek(m.from)
		} else if m.c != nil {
			m.k, m.v = m.c.First()
		}
	}
	for m.k != nil {
		if _, over := m.ko.m[string(m.k)]; !over {
			break
		}
		m.k, m.v = m.c.Next()
	}
	for m.i < len(m.ko.keys) && m.ko.m[m.ko.keys[m.i]].value == nil {
		m.i++
	}
	if m.i < len(m.ko.keys) && (m.k == nil || string(m.k) >= m.ko.keys[m.i]) {
		key := m.ko.keys[m.i]
		m.i++
		return []byte(key), m.ko.m[key].value
	}
	if m.k == nil {
		return nil, nil
	}
	k, v = m.k, m.v
	m.k, m.v = m.c.Next()
	return k, v
}

// newMerged walks bucket b (nil: absent) with the overlay's changes of
// kind k.
func (s *snapshot) newMerged(b *bolt.Bucket, k state.Kind) *merged {
	m := &merged{}
	if b != nil {
		m.c = b.Cursor()
	}
	if s.ov != nil {
		m.ko = &s.ov.kinds[k]
	}
	return m
}
