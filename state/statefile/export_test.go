package statefile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-ftl2/ftlstate/state"
)

// MarshalWhole returns the whole document c as encoding/json writes it
// with indent "  " and HTML escaping off, plus a newline: what Encode must
// write, byte for byte, without streaming.
func MarshalWhole(c *state.Contents) ([]byte, error) {
	doc := wireDoc{
		Metadata:  *toWireMeta(c.Metadata),
		Hosts:     make(map[string]*wireHost, len(c.Hosts)),
		Resources: make(map[string]*wireResource, len(c.Resources)),
	}
	for k, h := range c.Hosts {
		doc.Hosts[k] = toWireHost(h)
	}
	for k, r := range c.Resources {
		doc.Resources[k] = toWireResource(r)
	}
	if len(c.Operations) > 0 {
		doc.Operations = make(map[string]*wireOperation, len(c.Operations))
		for k, op := range c.Operations {
			doc.Operations[k] = toWireOperation(op)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	err := enc.Encode(doc)
	return buf.Bytes(), err
}

// stdDoc mirrors the format for DecodeStd, with the scalar fields kept as
// JSON gives them.
type stdDoc struct {
	Metadata *struct {
		Version   string      `json:"version"`
		CreatedAt *string     `json:"created_at"`
		UpdatedAt *string     `json:"updated_at"`
		Serial    json.Number `json:"serial"`
		Lineage   string      `json:"lineage"`
	} `json:"metadata"`
	Hosts map[string]*struct {
		Name      string         `json:"name"`
		Address   string         `json:"address"`
		Port      json.Number    `json:"port"`
		User      string         `json:"user"`
		Group     string         `json:"group"`
		Groups    []string       `json:"groups"`
		Vars      map[string]any `json:"vars"`
		CreatedAt *string        `json:"created_at"`
		UpdatedAt *string        `json:"updated_at"`
	} `json:"hosts"`
	Resources map[string]*struct {
		Type      string            `json:"type"`
		ID        string            `json:"id"`
		Name      string            `json:"name"`
		Data      map[string]any    `json:"data"`
		Tags      map[string]string `json:"tags"`
		CreatedAt *string           `json:"created_at"`
		UpdatedAt *string           `json:"updated_at"`
	} `json:"resources"`
	Operations map[string]*struct {
		ID        string         `json:"id"`
		Action    string         `json:"action"`
		Resource  string         `json:"resource"`
		Host      string         `json:"host"`
		Data      map[string]any `json:"data"`
		StartedAt *string        `json:"started_at"`
		Holder    string         `json:"holder"`
	} `json:"operations"`
}

// DecodeStd decodes data with encoding/json (UseNumber, no unknown
// fields) and validates it with state.Contents.Validate: a second,
// independent reading of the format that tests compare Decode with on
// documents Decode accepts.
func DecodeStd(data []byte) (*state.Contents, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var doc stdDoc
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the document")
	}
	tm := func(s *string) (time.Time, error) {
		var t time.Time
		if s == nil {
			return t, nil
		}
		err := t.UnmarshalText([]byte(*s))
		return state.Timestamp(t), err
	}
	num := func(n json.Number) (int64, error) {
		if n == "" {
			return 0, nil
		}
		v, err := state.NormalizeValue(n)
		if err != nil {
			return 0, err
		}
		i, ok := v.(int64)
		if !ok {
			return 0, fmt.Errorf("not an integer: %s", n)
		}
		return i, nil
	}
	c := &state.Contents{Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}}
	var err error
	if m := doc.Metadata; m != nil {
		c.Metadata.Version, c.Metadata.Lineage = m.Version, m.Lineage
		if m.Serial != "" {
			if c.Metadata.Serial, err = strconv.ParseUint(string(m.Serial), 10, 64); err != nil {
				s, err := num(m.Serial)
				if err != nil {
					return nil, err
				}
				c.Metadata.Serial = uint64(s)
			}
		}
		if c.Metadata.CreatedAt, err = tm(m.CreatedAt); err != nil {
			return nil, err
		}
		if c.Metadata.UpdatedAt, err = tm(m.UpdatedAt); err != nil {
			return nil, err
		}
	}
	if c.Metadata.Version == "" {
		c.Metadata.Version = state.FormatVersion
	}
	for k, h := range doc.Hosts {
		if h == nil {
			c.Hosts[k] = nil
			continue
		}
		hs := &state.HostState{Name: h.Name, Address: h.Address, User: h.User, Group: h.Group, Groups: h.Groups, Vars: h.Vars}
		p, err := num(h.Port)
		if err != nil {
			return nil, err
		}
		hs.Port = int(p)
		if hs.CreatedAt, err = tm(h.CreatedAt); err != nil {
			return nil, err
		}
		if hs.UpdatedAt, err = tm(h.UpdatedAt); err != nil {
			return nil, err
		}
		c.Hosts[k] = hs
	}
	for k, r := range doc.Resources {
		if r == nil {
			c.Resources[k] = nil
			continue
		}
		rs := &state.ResourceState{Type: r.Type, ID: r.ID, Name: r.Name, Data: r.Data, Tags: r.Tags}
		if rs.CreatedAt, err = tm(r.CreatedAt); err != nil {
			return nil, err
		}
		if rs.UpdatedAt, err = tm(r.UpdatedAt); err != nil {
			return nil, err
		}
		c.Resources[k] = rs
	}
	for k, o := range doc.Operations {
		if c.Operations == nil {
			c.Operations = map[string]*state.Operation{}
		}
		if o == nil {
			c.Operations[k] = nil
			continue
		}
		op := &state.Operation{ID: o.ID, Action: o.Action, Resource: o.Resource, Host: o.Host, Data: o.Data, Holder: o.Holder}
		if op.StartedAt, err = tm(o.StartedAt); err != nil {
			return nil, err
		}
		c.Operations[k] = op
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
