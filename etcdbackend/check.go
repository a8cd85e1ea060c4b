package etcdbackend

import (
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// Check implements state.Checker: it reads the whole store at one
// revision and reports every record that cannot be decoded, has a key no
// record may have, or is a host stored under another name, and every key
// under the prefix that is not part of the layout (another store nested
// under this one's record prefixes, keys written by hand, records of a
// generation that is neither the store's nor marked for deletion): nil
// when there are none, else an error wrapping a *state.CheckError
// (matching state.ErrCorrupt) whose problems name the section ("hosts",
// "resources") and the record's key, or, for a key outside the layout,
// the whole etcd key. Records of generations awaiting deletion (an import
// that failed, or the contents an import replaced) are not problems: the
// next writer deletes them. A store whose metadata cannot be read fails
// the View (an error matching state.ErrCorrupt naming the key). Errors
// reaching etcd are returned as they are. `ftlstate check` calls it.
func (b *Backend) Check() error {
	ce := &state.CheckError{Path: b.prefix}
	err := b.View(func(snap state.Snapshot) error {
		s := snap.(*snapshot)
		if s.empty {
			return nil
		}
		// The generations awaiting deletion, as of the same revision.
		stale := map[string]bool{}
		rev := s.rev
		err := b.scan(b.keys.stale, clientv3.GetPrefixRangeEnd(b.keys.stale), &rev, false, func(kv *mvccpb.KeyValue) error {
			stale[string(kv.Value)] = true
			return nil
		})
		if err != nil {
			return s.readError(err)
		}
		v1 := b.keys.of("")
		return s.scan(b.prefix+"/", func(kv *mvccpb.KeyValue) error {
			key := string(kv.Key)
			switch {
			case strings.HasPrefix(key, s.recs.hosts):
				name := key[len(s.recs.hosts):]
				checkKey(ce, "hosts", name)
				h, err := record.DecodeHost(kv.Value)
				switch {
				case err != nil:
					ce.Addf("hosts", name, "%v", err)
				case h.Name != name:
					ce.Addf("hosts", name, "host named %q stored under another key", h.Name)
				}
			case strings.HasPrefix(key, s.recs.resources):
				rkey := key[len(s.recs.resources):]
				checkKey(ce, "resources", rkey)
				if _, err := record.DecodeResource(kv.Value); err != nil {
					ce.Addf("resources", rkey, "%v", err)
				}
			case strings.HasPrefix(key, s.recs.operations):
				id := key[len(s.recs.operations):]
				checkKey(ce, "operations", id)
				op, err := record.DecodeOperation(kv.Value)
				switch {
				case err != nil:
					ce.Addf("operations", id, "%v", err)
				case op.ID != id:
					ce.Addf("operations", id, "operation %q stored under another key", op.ID)
				}
			case key == b.keys.meta, key == b.keys.layout, key == b.keys.lock, key == b.keys.generation, key == b.keys.txn,
				strings.HasPrefix(key, b.keys.stale):
				// Read by View and Open, and above.
			case strings.HasPrefix(key, v1.hosts), strings.HasPrefix(key, v1.resources), strings.HasPrefix(key, v1.operations):
				if !stale[""] {
					ce.Addf("", key, "a record outside the store's generation, not marked for deletion")
				}
			case strings.HasPrefix(key, b.keys.gens):
				gen, _, _ := strings.Cut(key[len(b.keys.gens):], "/")
				if !stale[gen] {
					ce.Addf("", key, "a record of generation %q, which is neither the store's nor marked for deletion", gen)
				}
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
