package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
)

// Whole-store replacement: import and restore.
//
// Like the other write commands they reach the Backend directly (see
// edit.go): the store's current records are read once, to compare, and
// never loaded into a State, so a store with a damaged record can still be
// restored. The metadata rules are State.Replace's (state.ReplaceConflict,
// state.ReplaceMetadata).

// replaceOptions are import's and restore's flags.
type replaceOptions struct {
	force, noBackup, dryRun bool
	// restore selects restore's rules: an older document is its purpose,
	// only another lineage is refused.
	restore bool
	// conflictHint is added to a refusal's reason (ftl2 files carry no
	// lineage).
	conflictHint string
}

func (a *app) addReplaceFlags(cmd *cobra.Command, o *replaceOptions) {
	cmd.Flags().BoolVar(&o.noBackup, "no-backup", false, "do not keep a backup of the store as it was")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print what would change and write nothing")
	a.addSecretsFlag(cmd)
}

// readSource reads a whole state: "-" is a state file on stdin; a file is
// read by its content, a state file (a state.json document, an ftl2 file)
// or a store of any kind (a backup, a copy), as is an etcd:// store.
func (a *app) readSource(name string) (*state.Contents, error) {
	c, _, err := a.readSourceAs(name, "")
	return c, err
}

// readSourceAs is readSource, reading a state file as format says (""
// for by its content), and saying what it found there (nil for a store).
func (a *app) readSourceAs(name string, format export.Format) (*state.Contents, *export.ReadReport, error) {
	if name == "-" {
		return a.readStateFile(name, format)
	}
	kind, err := storeKindOf(name)
	if err != nil {
		return nil, nil, err
	}
	if kind == kindJSON {
		return a.readStateFile(name, format)
	}
	if format != "" {
		return nil, nil, usageErrorf("%s is a store, not a state file: --format %s applies to a state file", name, format)
	}
	c, err := a.readStore(name, kind)
	return c, nil, err
}

// readStore reads a whole store of kind (not kindJSON).
func (a *app) readStore(name string, kind storeKind) (*state.Contents, error) {
	if kind == kindBolt {
		if _, err := os.Stat(name); err != nil {
			return nil, err
		}
	}
	var err error
	c := &state.Contents{Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}, Operations: map[string]*state.Operation{}}
	err = a.viewPath(name, func(s state.Snapshot) error {
		c.Metadata = s.Metadata()
		h, r := s.Len()
		bar := a.progress(int64(h+r), "read "+name, "records")
		defer bar.Finish()
		if err := s.Hosts(func(h *state.HostState) error { c.Hosts[h.Name] = h; bar.Add(1); return nil }); err != nil {
			return err
		}
		if err := s.Resources(func(k string, r *state.ResourceState) error { c.Resources[k] = r; bar.Add(1); return nil }); err != nil {
			return err
		}
		return s.Operations(func(op *state.Operation) error { c.Operations[op.ID] = op; return nil })
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// readStateFile reads and validates a state file ("-" for stdin) of the
// format given ("" for by its content: a state.json or an ftl2 file), with
// a progress bar over its bytes, and says what it found.
func (a *app) readStateFile(name string, format export.Format) (*state.Contents, *export.ReadReport, error) {
	var r io.Reader = os.Stdin
	var size int64 = -1
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		r = f
	}
	bar := a.progress(size, "read "+name, "bytes")
	pr := progressbar.NewReader(r, bar)
	c, rep, err := export.ReadAny(&pr, &export.ImportOptions{Format: format})
	bar.Finish()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, rep, nil
}

// errDiffers stops a comparison at the first difference.
var errDiffers = errors.New("differs")

// replaceStore replaces everything the store holds with c, read from src.
func (a *app) replaceStore(o replaceOptions, src string, c *state.Contents) error {
	verb := "import"
	if o.restore {
		verb = "restore"
	}
	if !o.force && export.HasRedacted(c) {
		return fmt.Errorf("%s: holds %q values (a redacted export): a %s would overwrite secrets with them; use --force to %s anyway", src, export.Redacted, verb, verb)
	}
	if err := c.CheckGroups(); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	path := a.statePath
	exists, err := storeExists(path)
	if err != nil {
		return err
	}
	doc := snapViewer{state.NewSnapshot(c)}
	check := func(s state.Snapshot) error {
		ops, err := operationsOf(s)
		if err != nil {
			return err
		}
		h, r := s.Len()
		if err := a.replaceConflict(o, s.Metadata(), h+r+len(ops) == 0, c.Metadata); err != nil {
			return fmt.Errorf("%s: %s of %s refused: %s%s; use --force to %s anyway", path, verb, src, err.(*state.ConflictError).Reason, o.conflictHint, verb)
		}
		return nil
	}
	if o.dryRun {
		view := func(fn func(state.Snapshot) error) error { return fn(state.NewSnapshot(&state.Contents{})) }
		if exists {
			view = func(fn func(state.Snapshot) error) error { return a.viewPath(path, fn) }
		}
		return view(func(s state.Snapshot) error {
			if err := check(s); err != nil {
				return err
			}
			res, err := export.Diff(snapViewer{s}, doc, &export.DiffOptions{Redact: !a.showSecrets})
			if err != nil {
				return err
			}
			if err := a.writeDiffText(res); err != nil {
				return err
			}
			sum := res.Summary()
			a.out.Flush() // the diff before the summary, on a terminal
			fmt.Fprintf(a.stderr, "dry run: %s of %s into %s would add %d, change %d and remove %d hosts, add %d, change %d and remove %d resources; nothing written\n",
				verb, src, path, sum.Hosts.Add, sum.Hosts.Change, sum.Hosts.Remove, sum.Resources.Add, sum.Resources.Change, sum.Resources.Remove)
			return nil
		})
	}
	b, err := a.openBackend(path, false)
	if err != nil {
		return err
	}
	defer b.Close()
	if !exists {
		fmt.Fprintf(a.stderr, "created new store %s\n", path)
	}
	var cur state.Metadata
	same := false
	err = b.View(func(s state.Snapshot) error {
		if err := check(s); err != nil {
			return err
		}
		cur = s.Metadata()
		h, r := s.Len()
		bar := a.progress(int64(h+r), "compare", "records")
		defer bar.Finish()
		err := export.DiffFunc(snapViewer{countingSnapshot{s, bar}}, doc, &export.DiffOptions{Timestamps: true},
			func(export.Change) error { return errDiffers })
		switch {
		case errors.Is(err, errDiffers), errors.Is(err, state.ErrCorrupt):
			return nil // a damaged record differs from any
		case err != nil:
			return err
		}
		ops, err := operationsOf(s)
		if err != nil {
			return err
		}
		same = len(c.Hosts) == h && len(c.Resources) == r && sameOperations(ops, c.Operations)
		return nil
	})
	if err != nil {
		return err
	}
	if same {
		fmt.Fprintf(a.stderr, "%s: already holds the content of %s; nothing to %s, nothing written\n", path, src, verb)
		return nil
	}
	if !o.noBackup && exists {
		if err := a.keepBackup(b, path); err != nil {
			return err
		}
	}
	now := state.Timestamp(time.Now())
	meta := state.ReplaceMetadata(cur, c.Metadata, now)
	changes := make([]state.Change, 0, len(c.Hosts)+len(c.Resources)+len(c.Operations))
	for _, name := range slices.Sorted(maps.Keys(c.Hosts)) {
		changes = append(changes, state.Change{Kind: state.KindHost, Key: name, Host: c.Hosts[name]})
	}
	for _, key := range slices.Sorted(maps.Keys(c.Resources)) {
		changes = append(changes, state.Change{Kind: state.KindResource, Key: key, Resource: c.Resources[key]})
	}
	for _, id := range slices.Sorted(maps.Keys(c.Operations)) {
		changes = append(changes, state.Change{Kind: state.KindOperation, Key: id, Operation: c.Operations[id]})
	}
	bar := a.progress(-1, fmt.Sprintf("write %d records to %s (one transaction)", len(changes), path), "records")
	got, err := b.Commit(&state.Batch{Changes: changes, Time: now, Replace: &meta})
	bar.Finish()
	if err != nil {
		return fmt.Errorf("%s: %s: %w", path, verb, err)
	}
	if err := b.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if o.restore {
		fmt.Fprintf(a.stderr, "restored %s from %s (serial %d): %d hosts, %d resources, serial %d\n", path, src, c.Metadata.Serial, len(c.Hosts), len(c.Resources), got.Serial)
	} else {
		fmt.Fprintf(a.stderr, "imported %s into %s: %d hosts, %d resources, serial %d\n", src, path, len(c.Hosts), len(c.Resources), got.Serial)
	}
	return nil
}

// operationsOf returns the pending operations of s by ID.
func operationsOf(s state.Snapshot) (map[string]*state.Operation, error) {
	ops := map[string]*state.Operation{}
	err := s.Operations(func(op *state.Operation) error { ops[op.ID] = op; return nil })
	return ops, err
}

// sameOperations reports whether two sets of pending operations are equal.
func sameOperations(a, b map[string]*state.Operation) bool {
	if len(a) != len(b) {
		return false
	}
	for id, x := range a {
		y, ok := b[id]
		if !ok || !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// replaceConflict applies import's rules (state.ReplaceConflict) or
// restore's (another lineage only) to a document with metadata doc.
func (a *app) replaceConflict(o replaceOptions, cur state.Metadata, empty bool, doc state.Metadata) error {
	if !o.restore {
		return state.ReplaceConflict(cur, empty, doc, o.force)
	}
	if !o.force && doc.Lineage != "" && cur.Lineage != "" && doc.Lineage != cur.Lineage && !(cur.Serial == 0 && empty) {
		return &state.ConflictError{Reason: fmt.Sprintf("it comes from another store (lineage %s, this store's is %s)", doc.Lineage, cur.Lineage)}
	}
	return nil
}

// countingSnapshot counts the records read through it on a progress bar.
type countingSnapshot struct {
	state.Snapshot
	bar *progressbar.ProgressBar
}

func (s countingSnapshot) Hosts(fn func(*state.HostState) error) error {
	return s.Snapshot.Hosts(func(h *state.HostState) error { s.bar.Add(1); return fn(h) })
}

func (s countingSnapshot) Resources(fn func(string, *state.ResourceState) error) error {
	return s.Snapshot.Resources(func(k string, r *state.ResourceState) error { s.bar.Add(1); return fn(k, r) })
}
