package etcdbackend

import (
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// Check implements state.Checker: it reads the whole store at one
// revision and reports every record that cannot be decoded, has a key no
// record may have, or is a host stored under another name, and every key
// under the prefix that is not part of the layout (another store nested
// under this one's record prefixes, keys written by hand): nil when there
// are none, else an error wrapping a *state.CheckError (matching
// state.ErrCorrupt) whose problems name the section ("hosts",
// "resources") and the record's key, or, for a key outside the layout,
// the whole etcd key. A store whose metadata cannot be read fails the View
// (an error matching state.ErrCorrupt naming the key). Errors reaching
// etcd are returned as they are. `ftlstate check` calls it.
func (b *Backend) Check() error {
	ce := &state.CheckError{Path: b.prefix}
	err := b.View(func(snap state.Snapshot) error {
		s := snap.(*snapshot)
		return s.scan(b.prefix+"/", func(kv *mvccpb.KeyValue) error {
			key := string(kv.Key)
			switch {
			case strings.HasPrefix(key, b.keys.hosts):
				name := key[len(b.keys.hosts):]
				checkKey(ce, "hosts", name)
				h, err := record.DecodeHost(kv.Value)
				switch {
				case err != nil:
					ce.Addf("hosts", name, "%v", err)
				case h.Name != name:
					ce.Addf("hosts", name, "host named %q stored under another key", h.Name)
				}
			case strings.HasPrefix(key, b.keys.resources):
				rkey := key[len(b.keys.resources):]
				checkKey(ce, "resources", rkey)
				if _, err := record.DecodeResource(kv.Value); err != nil {
					ce.Addf("resources", rkey, "%v", err)
				}
			case strings.HasPrefix(key, b.keys.operations):
				id := key[len(b.keys.operations):]
				checkKey(ce, "operations", id)
				op, err := record.DecodeOperation(kv.Value)
				switch {
				case err != nil:
					ce.Addf("operations", id, "%v", err)
				case op.ID != id:
					ce.Addf("operations", id, "operation %q stored under another key", op.ID)
				}
			case key == b.keys.meta, key == b.keys.layout, key == b.keys.lock:
				// Read by View and Open.
			default:
				ce.Addf("", key, "not a key of this store's layout")
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if err := ce.Err(); err != nil {
		return fmt.Errorf("etcdbackend: %w", err)
	}
	return nil
}

// checkKey reports a record key that no record may have.
func checkKey(ce *state.CheckError, section, key string) {
	if err := state.ValidateName(key); err != nil {
		ce.Addf(section, key, "invalid key: %v", err)
	}
}
