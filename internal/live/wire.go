package live

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/go-ftl2/ftlstate/state"
)

// The types of the lines of a commit stream.
const (
	// LineCommit is a commit: its serial, time and changed records.
	LineCommit = "commit"
	// LineReplaced is a Replace (an import): everything was replaced.
	LineReplaced = "replaced"
	// LineClosed ends a stream: the holder closed the store.
	LineClosed = "closed"
	// LineError ends a stream: the follower fell behind, or the holder
	// failed; Message says which.
	LineError = "error"
)

// Line is one line of a commit stream (newline-delimited JSON):
//
//	{"type":"commit","serial":12,"time":"2026-11-26T10:31:05.123456789Z",
//	 "hosts":{"web01":{"name":"web01",...},"web02":null},
//	 "resources":{"linode:1":{"type":"linode",...}},
//	 "operations":{"4f0c...":null}}
//
// Hosts, Resources and Operations (pending operations) hold the records
// the commit put, in the documented state.json form, and null for those
// it removed; a section is left out when the commit did not touch it.
type Line struct {
	Type       string                          `json:"type"`
	Serial     uint64                          `json:"serial"`
	Time       *time.Time                      `json:"time,omitempty"`
	Hosts      map[string]*state.HostState     `json:"hosts,omitempty"`
	Resources  map[string]*state.ResourceState `json:"resources,omitempty"`
	Operations map[string]*state.Operation     `json:"operations,omitempty"`
	// Message says why a stream ends (closed, error).
	Message string `json:"message,omitempty"`
}

// LineOf returns the line of c.
func LineOf(c state.Commit) *Line {
	t := c.Time
	l := &Line{Type: LineCommit, Serial: c.Serial, Time: &t}
	if c.Replaced {
		l.Type = LineReplaced
		return l
	}
	for _, ch := range c.Changes {
		switch ch.Kind {
		case state.KindHost:
			if l.Hosts == nil {
				l.Hosts = map[string]*state.HostState{}
			}
			l.Hosts[ch.Key] = ch.Host
		case state.KindResource:
			if l.Resources == nil {
				l.Resources = map[string]*state.ResourceState{}
			}
			l.Resources[ch.Key] = ch.Resource
		case state.KindOperation:
			if l.Operations == nil {
				l.Operations = map[string]*state.Operation{}
			}
			l.Operations[ch.Key] = ch.Operation
		}
	}
	return l
}

// Commit returns the commit a commit or replaced line describes, its
// changes in key order, hosts first, then resources, then operations.
func (l *Line) Commit() state.Commit {
	c := state.Commit{Serial: l.Serial, Replaced: l.Type == LineReplaced}
	if l.Time != nil {
		c.Time = *l.Time
	}
	for _, k := range sortedKeys(l.Hosts) {
		c.Changes = append(c.Changes, state.Change{Kind: state.KindHost, Key: k, Host: l.Hosts[k]})
	}
	for _, k := range sortedKeys(l.Resources) {
		c.Changes = append(c.Changes, state.Change{Kind: state.KindResource, Key: k, Resource: l.Resources[k]})
	}
	for _, k := range sortedKeys(l.Operations) {
		c.Changes = append(c.Changes, state.Change{Kind: state.KindOperation, Key: k, Operation: l.Operations[k]})
	}
	return c
}

// Encode writes l as one line of JSON, without HTML escaping.
func (l *Line) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(l)
}

// decodeLine reads one line, normalizing its records to the value model
// of package state (numbers as int64 or float64).
func decodeLine(b []byte) (*Line, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var l Line
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("commit stream: %w", err)
	}
	for k, h := range l.Hosts {
		if h == nil {
			continue
		}
		n, err := h.Normalize()
		if err != nil {
			return nil, fmt.Errorf("commit stream: serial %d: host %q: %w", l.Serial, k, err)
		}
		l.Hosts[k] = n
	}
	for k, r := range l.Resources {
		if r == nil {
			continue
		}
		n, err := r.Normalize()
		if err != nil {
			return nil, fmt.Errorf("commit stream: serial %d: resource %q: %w", l.Serial, k, err)
		}
		l.Resources[k] = n
	}
	for k, op := range l.Operations {
		if op == nil {
			continue
		}
		n, err := op.Normalize()
		if err != nil {
			return nil, fmt.Errorf("commit stream: serial %d: operation %q: %w", l.Serial, k, err)
		}
		l.Operations[k] = n
	}
	return &l, nil
}
