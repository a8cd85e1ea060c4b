package etcdbackend

import (
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/go-ftl2/ftlstate/state"
)

// maxProblems bounds the problems Check reports.
const maxProblems = 100

// Check reads the whole store at one revision and reports every record
// that cannot be decoded, or is stored under another name, and every key
// under the prefix that is not part of the layout (another store nested
// under this one's record prefixes, keys written by hand): nil when there
// are none, else one error (errors.Join of at most 100 problems, each
// naming its key) matching state.ErrCorrupt. Errors reaching etcd are
// returned as they are. `ftlstate check` calls it.
func (b *Backend) Check() error {
	var problems []error
	more := 0
	report := func(err error) {
		if len(problems) < maxProblems {
			problems = append(problems, err)
		} else {
			more++
		}
	}
	err := b.View(func(snap state.Snapshot) error {
		s := snap.(*snapshot)
		return s.scan(b.prefix+"/", func(kv *mvccpb.KeyValue) error {
			key := string(kv.Key)
			var err error
			switch {
			case strings.HasPrefix(key, b.keys.hosts):
				_, err = s.host(kv)
			case strings.HasPrefix(key, b.keys.resources):
				_, err = s.resource(kv)
			case key == b.keys.meta, key == b.keys.layout, key == b.keys.lock:
				// Read by View and Open.
			default:
				err = s.corrupt(kv.Key, fmt.Errorf("not a key of this store's layout: %w", state.ErrCorrupt))
			}
			if err != nil {
				report(err)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if more > 0 {
		problems = append(problems, b.errorf("and %d more problems: %w", more, state.ErrCorrupt))
	}
	return errors.Join(problems...)
}
