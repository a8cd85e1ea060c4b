package benchkit

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-ftl2/ftlstate/state"
)

// RareType is the resource type that one resource in RareEvery has; the
// others share four common types. GetResourcesByType(RareType) on a store
// of n resources has RareMatches(n) matches.
const (
	RareType  = "linode_nodebalancer"
	RareEvery = 10000
)

// The fixed store sizes of the write benchmarks, in hosts.
const (
	Small  = 1000
	Medium = 10000
)

var commonTypes = [...]string{"linode_instance", "linode_ipv4", "dns_record", "linode_volume"}

// RareMatches returns how many of resources 0..n-1 have RareType.
func RareMatches(n int) int { return (n + RareEvery - 1) / RareEvery }

// HostName returns the name of host i.
func HostName(i int) string { return fmt.Sprintf("host-%07d.example.com", i) }

// Host returns host i: a record of a realistic size (about 300 bytes of
// compact JSON), normalized, with both timestamps now.
func Host(i int) *state.HostState {
	now := state.Timestamp(time.Now())
	return &state.HostState{
		Name: HostName(i), Address: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Port: 22, User: "admin",
		Group: fmt.Sprintf("group%02d", i%20),
		Vars: map[string]any{
			"http_port": int64(8000 + i%100), "env": "production", "tls": true, "weight": 0.75,
			"dns": []any{"192.0.2.1", "192.0.2.2"},
		},
		CreatedAt: now, UpdatedAt: now,
	}
}

// ResourceKey returns the key of resource i.
func ResourceKey(i int) string { return fmt.Sprintf("linode:%08d", i) }

// Resource returns resource i (stored under ResourceKey(i)): about 290
// bytes of compact JSON, normalized, with both timestamps now. Its type is
// RareType for every RareEvery-th resource, starting with 0, and one of
// four common types otherwise.
func Resource(i int) *state.ResourceState {
	now := state.Timestamp(time.Now())
	typ := commonTypes[i%len(commonTypes)]
	if i%RareEvery == 0 {
		typ = RareType
	}
	return &state.ResourceState{
		Type: typ, ID: fmt.Sprint(40000000 + i), Name: fmt.Sprintf("host-%07d", i),
		Data: map[string]any{
			"ipv4": []any{fmt.Sprintf("192.0.%d.%d", i>>8&255, i&255)}, "region": "us-east",
			"plan": "g6-standard-2", "size": int64(2048),
		},
		Tags:      map[string]string{"environment": "production", "role": "web"},
		CreatedAt: now, UpdatedAt: now,
	}
}

// Contents returns a store of hosts 0..hosts-1 and resources
// 0..resources-1, in memory.
func Contents(hosts, resources int) *state.Contents {
	c := &state.Contents{
		Metadata:  state.NewMetadata(time.Now()),
		Hosts:     make(map[string]*state.HostState, hosts),
		Resources: make(map[string]*state.ResourceState, resources),
	}
	for i := range hosts {
		h := Host(i)
		c.Hosts[h.Name] = h
	}
	for i := range resources {
		c.Resources[ResourceKey(i)] = Resource(i)
	}
	return c
}

// FillChunk is the number of records per Update of Fill:
// large enough that building 200k records takes a few seconds, small
// enough that one bbolt transaction stays modest.
const FillChunk = 10000

// Fill adds hosts 0..hosts-1 and resources 0..resources-1 to st, in
// Updates of FillChunk records.
func Fill(st *state.State, hosts, resources int) error {
	for start := 0; start < max(hosts, resources); start += FillChunk / 2 {
		err := st.Update(func(tx *state.Tx) error {
			for i := start; i < start+FillChunk/2; i++ {
				if i < hosts {
					if err := tx.AddHost(Host(i)); err != nil {
						return err
					}
				}
				if i < resources {
					if err := tx.AddResource(ResourceKey(i), Resource(i)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("benchkit: fill: %w", err)
		}
	}
	return nil
}

// Build fills the store of b, an opened backend, with hosts 0..hosts-1
// and resources 0..resources-1 (see Fill), and closes it.
func Build(b state.Backend, hosts, resources int) error {
	st, err := state.Open(b)
	if err != nil {
		return err
	}
	err = Fill(st, hosts, resources)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}

// Store replaces what the store of b, an opened backend, holds with c, in
// one Replace (one write), and closes it.
func Store(b state.Backend, c *state.Contents) error {
	st, err := state.Open(b)
	if err != nil {
		return err
	}
	err = st.Replace(c, false)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("benchkit: store: %w", err)
	}
	return nil
}

// Load reads the whole store v holds into memory.
func Load(v state.Viewer) (*state.Contents, error) {
	var c *state.Contents
	err := v.View(func(s state.Snapshot) error {
		nh, nr := s.Len()
		c = &state.Contents{Metadata: s.Metadata(), Hosts: make(map[string]*state.HostState, nh), Resources: make(map[string]*state.ResourceState, nr)}
		if err := s.Hosts(func(h *state.HostState) error { c.Hosts[h.Name] = h; return nil }); err != nil {
			return err
		}
		return s.Resources(func(k string, r *state.ResourceState) error { c.Resources[k] = r; return nil })
	})
	if err != nil {
		return nil, fmt.Errorf("benchkit: load: %w", err)
	}
	return c, nil
}

// marshalDoc is the state.json document for encoding/json.
type marshalDoc struct {
	Metadata  state.Metadata                  `json:"metadata"`
	Hosts     map[string]*state.HostState     `json:"hosts"`
	Resources map[string]*state.ResourceState `json:"resources"`
}

// MarshalIndent is export's baseline: encoding/json's MarshalIndent of
// the whole store c, held in memory, as a state.json document (the same
// shape and indentation as export writes).
func MarshalIndent(c *state.Contents) ([]byte, error) {
	return json.MarshalIndent(&marshalDoc{Metadata: c.Metadata, Hosts: c.Hosts, Resources: c.Resources}, "", "  ")
}
