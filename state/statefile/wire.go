package statefile

import (
	"time"

	"github.com/go-ftl2/ftlstate/state"
)

// The wire structs are the documented format, apart from the domain types
// so that the file format changes only on purpose. Field order is the
// order of the document's example; encoding/json writes struct fields in
// declaration order.

// wireDoc is a whole state.json document. The encoder never builds one
// (it streams); tests marshal it to check that the stream is identical to
// encoding/json's encoding of the whole document.
type wireDoc struct {
	Metadata   wireMeta                  `json:"metadata"`
	Hosts      map[string]*wireHost      `json:"hosts"`
	Resources  map[string]*wireResource  `json:"resources"`
	Operations map[string]*wireOperation `json:"operations,omitempty"`
}

type wireMeta struct {
	Version   string    `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Serial    uint64    `json:"serial,omitempty"`
	Lineage   string    `json:"lineage,omitempty"`
}

// wireHost: Vars and (in wireResource) Data and Tags use omitzero, so that
// a nil map is left out while an empty one is written as {}: both survive
// a round trip as they were.
type wireHost struct {
	Name      string         `json:"name"`
	Address   string         `json:"address"`
	Port      int            `json:"port"`
	User      string         `json:"user"`
	Group     string         `json:"group,omitempty"`
	Groups    []string       `json:"groups,omitempty"`
	Vars      map[string]any `json:"vars,omitzero"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

type wireResource struct {
	Type      string            `json:"type"`
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Data      map[string]any    `json:"data,omitzero"`
	Tags      map[string]string `json:"tags,omitzero"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// wireOperation is a pending operation; Data is omitzero as in
// wireResource.
type wireOperation struct {
	ID        string         `json:"id"`
	Action    string         `json:"action"`
	Resource  string         `json:"resource"`
	Host      string         `json:"host,omitempty"`
	Data      map[string]any `json:"data,omitzero"`
	StartedAt time.Time      `json:"started_at"`
	Holder    string         `json:"holder,omitempty"`
}

func toWireMeta(m state.Metadata) *wireMeta {
	return &wireMeta{Version: m.Version, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt, Serial: m.Serial, Lineage: m.Lineage}
}

func toWireHost(h *state.HostState) *wireHost {
	return &wireHost{Name: h.Name, Address: h.Address, Port: h.Port, User: h.User, Group: h.Group, Groups: h.Groups, Vars: h.Vars, CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt}
}

func toWireResource(r *state.ResourceState) *wireResource {
	return &wireResource{Type: r.Type, ID: r.ID, Name: r.Name, Data: r.Data, Tags: r.Tags, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func toWireOperation(op *state.Operation) *wireOperation {
	return &wireOperation{ID: op.ID, Action: op.Action, Resource: op.Resource, Host: op.Host, Data: op.Data, StartedAt: op.StartedAt, Holder: op.Holder}
}
