package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

func (a *app) salvageCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "salvage --file OUT.json",
		Short: "Export every record of a damaged store that can still be read, listing what it skips",
		Long: `salvage reads a damaged store record by record and writes every record it can
still read to OUT.json (the documented state.json, with the store's lineage and
serial when they are readable), listing each record it skips on stderr. Rebuild
the store from it with 'ftlstate import OUT.json' (which keeps a backup of the
damaged store), or import it into a new store.

Pending operations are salvaged like records. It reads bbolt stores (through damaged records, counters and buckets; not
through damaged meta pages) and JSON stores whose JSON syntax is intact (a
record with a wrong type is skipped, not the whole file). It never writes to
the store. --file - writes to stdout.`,
		Example: `  ftlstate salvage --file salvaged.json
  ftlstate import salvaged.json`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			path := a.statePath
			kind, err := storeKindOf(path)
			if err != nil {
				return err
			}
			if path == "" || kind == kindEtcd {
				if path == "" {
					_, err := a.openBackend(path, true)
					return err
				}
				return fmt.Errorf("%s: salvage reads bbolt and JSON files; read an etcd store with 'etcdctl get --prefix'", path)
			}
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("%s: no such store (--state, $FTLSTATE_PATH)", path)
			}
			direct := false
			if file != "-" {
				if direct, err = a.checkExportTarget(file); err != nil {
					return err
				}
			}
			c := &state.Contents{Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}, Operations: map[string]*state.Operation{}}
			var skipped int
			collect := func(ch state.Change, err error) error {
				switch {
				case err != nil && ch.Kind == 0:
					fmt.Fprintf(a.stderr, "skipped the metadata: %s\n", oneLine(trimPackage(err.Error())))
				case err != nil:
					skipped++
					what := fmt.Sprintf("%v %q", ch.Kind, ch.Key)
					if ch.Key == "" {
						what = fmt.Sprintf("%ss", ch.Kind)
					}
					fmt.Fprintf(a.stderr, "skipped %s: %s\n", what, oneLine(trimPackage(err.Error())))
				case ch.Kind == state.KindHost:
					c.Hosts[ch.Key] = ch.Host
				case ch.Kind == state.KindResource:
					c.Resources[ch.Key] = ch.Resource
				case ch.Kind == state.KindOperation:
					c.Operations[ch.Key] = ch.Operation
				}
				return nil
			}
			if kind == kindJSON {
				c.Metadata, err = salvageJSON(path, collect)
			} else {
				c.Metadata, err = boltbackend.Salvage(path, &boltbackend.Options{Timeout: a.lockTimeout}, collect)
			}
			if err != nil {
				return err
			}
			if err := c.Validate(); err != nil {
				return fmt.Errorf("%s: salvaged records: %w", path, err)
			}
			write := func(w io.Writer) error { return export.Write(w, snapViewer{state.NewSnapshot(c)}, nil) }
			switch {
			case file == "-":
				err = write(a.stdout)
			case direct:
				err = writeDirect(file, write)
			default:
				err = atomicfile.Write(file, nil, write)
			}
			if err != nil {
				return fmt.Errorf("salvage to %s: %w", file, err)
			}
			msg := fmt.Sprintf("salvaged %d hosts, %d resources and %d pending operations of %s to %s", len(c.Hosts), len(c.Resources), len(c.Operations), path, file)
			if skipped > 0 {
				msg += fmt.Sprintf("; skipped %d unreadable (listed above)", skipped)
			} else {
				msg += "; nothing skipped"
			}
			fmt.Fprintf(a.stderr, "%s; rebuild with: ftlstate --state %s import %s\n", msg, path, file)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "write the salvaged records to FILE (required; - for stdout)")
	cmd.MarkFlagRequired("file")
	return cmd
}

// salvageJSON reads a JSON store record by record: each record is checked
// as a document of its own, so a bad one is reported to fn and skipped.
// The JSON syntax of the whole file must be intact.
func salvageJSON(path string, fn func(state.Change, error) error) (state.Metadata, error) {
	f, err := os.Open(path)
	if err != nil {
		return state.Metadata{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, statefile.DefaultMaxSize+1))
	if err != nil {
		return state.Metadata{}, err
	}
	if len(b) > statefile.DefaultMaxSize {
		return state.Metadata{}, fmt.Errorf("%s: larger than %d bytes", path, statefile.DefaultMaxSize)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return state.Metadata{}, fmt.Errorf("%s: not JSON that salvage can read record by record (%v): %w", path, err, state.ErrCorrupt)
	}
	var meta state.Metadata
	head := map[string]json.RawMessage{}
	for k, v := range top {
		if k != "hosts" && k != "resources" && k != "operations" {
			head[k] = v
		}
	}
	if m, err := decodeDoc(head); err != nil {
		if err := fn(state.Change{}, err); err != nil {
			return meta, err
		}
	} else {
		meta = m.Metadata
	}
	for _, sec := range []struct {
		name string
		kind state.Kind
	}{{"hosts", state.KindHost}, {"resources", state.KindResource}, {"operations", state.KindOperation}} {
		raw, ok := top[sec.name]
		if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			continue
		}
		var recs map[string]json.RawMessage
		if err := json.Unmarshal(raw, &recs); err != nil {
			if err := fn(state.Change{Kind: sec.kind}, fmt.Errorf("%s: %s: %v: %w", path, sec.name, err, state.ErrCorrupt)); err != nil {
				return meta, err
			}
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(recs)) {
			raw, _ := json.Marshal(map[string]any{sec.name: map[string]json.RawMessage{key: recs[key]}})
			d, err := export.Read(bytes.NewReader(raw), nil)
			ch := state.Change{Kind: sec.kind, Key: key}
			if err == nil {
				ch.Host, ch.Resource, ch.Operation = d.Hosts[key], d.Resources[key], d.Operations[key]
			} else {
				err = fmt.Errorf("%s: %w", path, err)
			}
			if err := fn(ch, err); err != nil {
				return meta, err
			}
		}
	}
	return meta, nil
}

func decodeDoc(m map[string]json.RawMessage) (*state.Contents, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	c, err := export.Read(bytes.NewReader(raw), nil)
	if err != nil {
		return nil, errors.New("metadata: " + err.Error())
	}
	return c, nil
}
