package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-ftl2/ftlstate/state"
)

// Design is the store of the Go-FTL2 design document "State Management"
// (its State and FileBackend), kept as the baseline the backends are measured
// against: every AddHost updates memory and then Save rewrites the whole
// file: json.MarshalIndent of the whole state, os.WriteFile to the fixed
// name path+".tmp", os.Rename over path. There is no fsync, as in the
// document, so it is not durable, and two processes would share the
// temp name; it is here only to be timed.
type Design struct {
	path string

	mu        sync.RWMutex // guards the fields below, as the document's State.mu
	hosts     map[string]*state.HostState
	resources map[string]*state.ResourceState
	metadata  *designMetadata
}

// designMetadata and designFile are the document's Metadata and
// stateFile.
type designMetadata struct {
	Version   string    `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type designFile struct {
	Metadata  *designMetadata                 `json:"metadata"`
	Hosts     map[string]*state.HostState     `json:"hosts"`
	Resources map[string]*state.ResourceState `json:"resources"`
}

// NewDesign returns the document's store at path holding the records of
// c (not copied), and saves it once.
func NewDesign(path string, c *state.Contents) (*Design, error) {
	d := &Design{
		path:      path,
		hosts:     c.Hosts,
		resources: c.Resources,
		metadata:  &designMetadata{Version: "1.0", CreatedAt: time.Now(), UpdatedAt: time.Now()},
	}
	if err := d.save(); err != nil {
		return nil, err
	}
	return d, nil
}

// AddHost is the document's State.AddHost: it adds or updates host in
// memory (keeping host, not a copy) and saves.
func (d *Design) AddHost(host *state.HostState) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if existing, ok := d.hosts[host.Name]; ok {
		existing.Address = host.Address
		existing.Port = host.Port
		existing.User = host.User
		existing.Vars = host.Vars
		existing.Group = host.Group
		existing.UpdatedAt = now
	} else {
		host.CreatedAt = now
		host.UpdatedAt = now
		d.hosts[host.Name] = host
	}
	d.metadata.UpdatedAt = now
	return d.save()
}

// save is the document's FileBackend.Save.
func (d *Design) save() error {
	sf := designFile{Metadata: d.metadata, Hosts: d.hosts, Resources: d.resources}
	data, err := json.MarshalIndent(sf, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to marshal state: %w", err)
	}
	tmpPath := d.path + ".tmp"
	if err := os.WriteFile(tmpPath, data, 0o644); err != nil {
		return fmt.Errorf("failed to write state: %w", err)
	}
	if err := os.Rename(tmpPath, d.path); err != nil {
		return fmt.Errorf("failed to rename state file: %w", err)
	}
	return nil
}
