package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
)

// How write commands reach the store.
//
// A write command does not load the store into a State: it opens the
// Backend, reads the few records it needs through one Snapshot, stages its
// changes (validated by the records' own Normalize, as State does), and
// commits them as one Batch. Its cost is that of those records and one
// transaction, whatever the store's size, on every backend. What State
// would add is not needed here: the store's lock (held from open to close)
// excludes every other writer, so what the command read is what it
// changes, and one command is one goroutine.
//
// The changes that would change nothing are dropped (a put equal to the
// stored record but for its times, a delete of an absent record), so that
// a command with nothing to do writes nothing, keeps no backup, and does
// not create a store that does not exist yet.

// editOptions say how a write command treats the store.
type editOptions struct {
	// destructive commands keep a backup of the store before they change
	// it (see keepBackup), unless noBackup.
	destructive, noBackup bool
	// dryRun prints the changes instead of making them.
	dryRun bool
}

// addDestructiveFlags adds what every destructive write command takes:
// --no-backup, --dry-run and --show-secrets (for the dry run's diff).
func (a *app) addDestructiveFlags(cmd *cobra.Command, noBackup, dryRun *bool) {
	cmd.Flags().BoolVar(noBackup, "no-backup", false, "do not keep a backup of the store as it was")
	cmd.Flags().BoolVar(dryRun, "dry-run", false, "print what would change and write nothing")
	a.addSecretsFlag(cmd)
}

// recordKey names a record of the store.
type recordKey struct {
	kind state.Kind
	key  string
}

// original is a record as the store held it when the command started.
type original struct {
	exists bool
	host   *state.HostState
	res    *state.ResourceState
	op     *state.Operation
	// unreadable is why a stored record could not be decoded (an error
	// matching state.ErrCorrupt): it exists, but its fields are unknown.
	// It can be removed or replaced, not edited.
	unreadable error
}

// edit is what a write command sees while it plans: the store as it is,
// through one snapshot, and the changes staged so far.
type edit struct {
	path string
	// snap is the store's snapshot while the plan runs.
	snap state.Snapshot
	// missing is set when the store does not exist yet (snap is empty).
	missing bool
	// changes are the staged changes, one per record, in staging order;
	// at indexes them.
	changes []state.Change
	at      map[recordKey]int
	// orig holds every record staged or looked up, as stored.
	orig map[recordKey]original
	// notes are printed on stderr once the changes are committed.
	notes []string
}

func newEdit(path string, snap state.Snapshot) *edit {
	return &edit{path: path, snap: snap, at: map[recordKey]int{}, orig: map[recordKey]original{}}
}

// note queues a message for stderr, printed when the command succeeds.
func (e *edit) note(format string, args ...any) {
	e.notes = append(e.notes, fmt.Sprintf(format, args...))
}

func (e *edit) original(k recordKey) (original, error) {
	if o, ok := e.orig[k]; ok {
		return o, nil
	}
	var o original
	var err error
	switch k.kind {
	case state.KindHost:
		o.host, o.exists, err = e.snap.Host(k.key)
	case state.KindOperation:
		o.op, o.exists, err = e.snap.Operation(k.key)
	default:
		o.res, o.exists, err = e.snap.Resource(k.key)
	}
	if err != nil {
		if !errors.Is(err, state.ErrCorrupt) {
			return o, fmt.Errorf("%s: %w", e.path, err)
		}
		o = original{exists: true, unreadable: err}
	}
	e.orig[k] = o
	return o, nil
}

// host returns the named host as the edit would leave it; a stored host
// that cannot be decoded gives an error (and ok).
func (e *edit) host(name string) (*state.HostState, bool, error) {
	k := recordKey{state.KindHost, name}
	if i, ok := e.at[k]; ok {
		h := e.changes[i].Host
		return h.Clone(), h != nil, nil
	}
	o, err := e.original(k)
	if err != nil || o.unreadable != nil {
		return nil, o.exists, cmpErr(err, o.unreadable)
	}
	return o.host.Clone(), o.exists, nil
}

// resource returns the resource under key as the edit would leave it.
func (e *edit) resource(key string) (*state.ResourceState, bool, error) {
	k := recordKey{state.KindResource, key}
	if i, ok := e.at[k]; ok {
		r := e.changes[i].Resource
		return r.Clone(), r != nil, nil
	}
	o, err := e.original(k)
	if err != nil || o.unreadable != nil {
		return nil, o.exists, cmpErr(err, o.unreadable)
	}
	return o.res.Clone(), o.exists, nil
}

func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *edit) stage(c state.Change) {
	k := recordKey{c.Kind, c.Key}
	if i, ok := e.at[k]; ok {
		e.changes[i] = c
		return
	}
	e.at[k] = len(e.changes)
	e.changes = append(e.changes, c)
}

// putHost stages an add-or-replace of h, normalized and validated (the
// error is a *state.FieldError). A zero h.CreatedAt means: keep the stored
// host's, or now for a new one. changed is false when the store already
// holds the same host (but for its times): nothing is staged then.
func (e *edit) putHost(h *state.HostState) (changed bool, err error) {
	n, err := h.Normalize()
	if err != nil {
		return false, err
	}
	cur, exists, err := e.host(n.Name)
	if err != nil && !errors.Is(err, state.ErrCorrupt) {
		return false, err
	}
	if err == nil && exists && sameHost(cur, n) {
		return false, nil
	}
	e.stage(state.Change{Kind: state.KindHost, Key: n.Name, Host: n})
	return true, nil
}

// putResource stages an add-or-replace of the resource under key (see
// putHost).
func (e *edit) putResource(key string, r *state.ResourceState) (changed bool, err error) {
	if err := state.ValidateName(key); err != nil {
		return false, err.(*state.FieldError).Under("key")
	}
	n, err := r.Normalize()
	if err != nil {
		return false, err
	}
	cur, exists, err := e.resource(key)
	if err != nil && !errors.Is(err, state.ErrCorrupt) {
		return false, err
	}
	if err == nil && exists && sameResource(cur, n) {
		return false, nil
	}
	e.stage(state.Change{Kind: state.KindResource, Key: key, Resource: n})
	return true, nil
}

// removeHost stages the removal of the named host, also when its record
// cannot be decoded; existed is false (and nothing is staged) when there
// is no such host.
func (e *edit) removeHost(name string) (existed bool, err error) {
	_, exists, err := e.host(name)
	if err != nil && !errors.Is(err, state.ErrCorrupt) {
		return false, err
	}
	if !exists {
		return false, nil
	}
	e.stage(state.Change{Kind: state.KindHost, Key: name})
	return true, nil
}

// removeResource stages the removal of the resource under key (see
// removeHost).
func (e *edit) removeResource(key string) (existed bool, err error) {
	_, exists, err := e.resource(key)
	if err != nil && !errors.Is(err, state.ErrCorrupt) {
		return false, err
	}
	if !exists {
		return false, nil
	}
	e.stage(state.Change{Kind: state.KindResource, Key: key})
	return true, nil
}

// operation returns the pending operation id as the edit would leave it.
func (e *edit) operation(id string) (*state.Operation, bool, error) {
	k := recordKey{state.KindOperation, id}
	if i, ok := e.at[k]; ok {
		op := e.changes[i].Operation
		return op.Clone(), op != nil, nil
	}
	o, err := e.original(k)
	if err != nil || o.unreadable != nil {
		return nil, o.exists, cmpErr(err, o.unreadable)
	}
	return o.op.Clone(), o.exists, nil
}

// removeOperation stages the removal of the pending operation id (see
// removeHost).
func (e *edit) removeOperation(id string) (existed bool, err error) {
	_, exists, err := e.operation(id)
	if err != nil && !errors.Is(err, state.ErrCorrupt) {
		return false, err
	}
	if !exists {
		return false, nil
	}
	e.stage(state.Change{Kind: state.KindOperation, Key: id})
	return true, nil
}

// finalize returns the staged changes that change something, with their
// times set as State sets them: UpdatedAt now, CreatedAt kept from the
// stored record (or the one staged, or now).
func (e *edit) finalize(now time.Time) []state.Change {
	var out []state.Change
	for _, c := range e.changes {
		o := e.orig[recordKey{c.Kind, c.Key}]
		if c.Delete() {
			if o.exists {
				out = append(out, c)
			}
			continue
		}
		readable := o.exists && o.unreadable == nil
		switch c.Kind {
		case state.KindHost:
			if readable && sameHost(o.host, c.Host) {
				continue
			}
			h := *c.Host
			h.CreatedAt, h.UpdatedAt = created(h.CreatedAt, readable, func() time.Time { return o.host.CreatedAt }, now), now
			c.Host = &h
		case state.KindResource:
			if readable && sameResource(o.res, c.Resource) {
				continue
			}
			r := *c.Resource
			r.CreatedAt, r.UpdatedAt = created(r.CreatedAt, readable, func() time.Time { return o.res.CreatedAt }, now), now
			c.Resource = &r
		}
		out = append(out, c)
	}
	return out
}

func created(staged time.Time, readable bool, stored func() time.Time, now time.Time) time.Time {
	switch {
	case !staged.IsZero():
		return staged
	case readable && !stored().IsZero():
		return stored()
	}
	return now
}

// sameHost reports whether two hosts hold the same content, their times
// aside. It compares every field (so that a field added to HostState
// counts without changing this), an empty map equal to none.
func sameHost(a, b *state.HostState) bool {
	x, y := *a, *b
	x.CreatedAt, x.UpdatedAt, y.CreatedAt, y.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if len(x.Vars) == 0 && len(y.Vars) == 0 {
		x.Vars, y.Vars = nil, nil
	}
	return reflect.DeepEqual(x, y)
}

// sameResource is sameHost for resources.
func sameResource(a, b *state.ResourceState) bool {
	x, y := *a, *b
	x.CreatedAt, x.UpdatedAt, y.CreatedAt, y.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if len(x.Data) == 0 && len(y.Data) == 0 {
		x.Data, y.Data = nil, nil
	}
	if len(x.Tags) == 0 && len(y.Tags) == 0 {
		x.Tags, y.Tags = nil, nil
	}
	return reflect.DeepEqual(x, y)
}

// storeExists reports whether the store at path exists (an etcd store is
// taken to exist: its backend creates it on the first write open).
func storeExists(path string) (bool, error) {
	kind, err := storeKindOf(path)
	if err != nil || kind == kindEtcd {
		return true, err
	}
	_, err = os.Stat(path)
	return err == nil, nil
}

// edit runs a write command: fn plans its changes on an edit of the
// store, then they are committed as one batch (see the top of this file).
// fn may run twice (against a store that does not exist yet, then against
// the one created for the write), so it must only read and stage.
func (a *app) edit(o editOptions, fn func(e *edit) error) error {
	path := a.statePath
	if path == "" {
		_, err := a.openBackend(path, true) // the message for an empty --state
		return err
	}
	exists, err := storeExists(path)
	if err != nil {
		return err
	}
	if o.dryRun || !exists {
		// Plan without the writer's lock and without creating anything.
		e, err := a.planReadOnly(path, exists, fn)
		if err != nil {
			return err
		}
		changes := e.finalize(state.Timestamp(time.Now()))
		if o.dryRun {
			return a.printPlan(e, changes)
		}
		if len(changes) == 0 {
			a.printNotes(e.notes)
			return nil
		}
	}
	b, err := a.openBackend(path, false)
	if err != nil {
		return err
	}
	if !exists {
		fmt.Fprintf(a.stderr, "created new store %s\n", path)
	}
	err = a.commitEdit(b, path, o, fn)
	if cerr := b.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: %w", path, cerr)
	}
	return err
}

func (a *app) commitEdit(b state.Backend, path string, o editOptions, fn func(e *edit) error) error {
	e := newEdit(path, nil)
	err := b.View(func(s state.Snapshot) error {
		e.snap = s
		defer func() { e.snap = nil }()
		return fn(e)
	})
	if err != nil {
		return err
	}
	now := state.Timestamp(time.Now())
	changes := e.finalize(now)
	if len(changes) > 0 {
		if o.destructive && !o.noBackup {
			if err := a.keepBackup(b, path); err != nil {
				return err
			}
		}
		if _, err := b.Commit(&state.Batch{Changes: changes, Time: now}); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	a.printNotes(e.notes)
	return nil
}

// planReadOnly runs fn on a read-only snapshot of the store, or on an
// empty one when the store does not exist.
func (a *app) planReadOnly(path string, exists bool, fn func(e *edit) error) (*edit, error) {
	if !exists {
		e := newEdit(path, state.NewSnapshot(&state.Contents{}))
		e.missing = true
		if err := fn(e); err != nil {
			return nil, err
		}
		return e, nil
	}
	var e *edit
	err := a.viewPath(path, func(s state.Snapshot) error {
		e = newEdit(path, s)
		defer func() { e.snap = nil }()
		return fn(e)
	})
	return e, err
}

func (a *app) printNotes(notes []string) {
	for _, n := range notes {
		fmt.Fprintln(a.stderr, n)
	}
}

// printPlan prints what a dry run would change: the diff on stdout (as
// diff prints it), a summary on stderr.
func (a *app) printPlan(e *edit, changes []state.Change) error {
	before := &state.Contents{Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}, Operations: map[string]*state.Operation{}}
	after := &state.Contents{Hosts: map[string]*state.HostState{}, Resources: map[string]*state.ResourceState{}, Operations: map[string]*state.Operation{}}
	var unreadable []string
	for _, c := range changes {
		o := e.orig[recordKey{c.Kind, c.Key}]
		if o.unreadable != nil {
			unreadable = append(unreadable, fmt.Sprintf("%v %q", c.Kind, c.Key))
		}
		switch c.Kind {
		case state.KindHost:
			if o.exists && o.unreadable == nil {
				before.Hosts[c.Key] = o.host
			}
			if c.Host != nil {
				after.Hosts[c.Key] = c.Host
			}
		case state.KindResource:
			if o.exists && o.unreadable == nil {
				before.Resources[c.Key] = o.res
			}
			if c.Resource != nil {
				after.Resources[c.Key] = c.Resource
			}
		case state.KindOperation:
			if o.exists && o.unreadable == nil {
				before.Operations[c.Key] = o.op
			}
			if c.Operation != nil {
				after.Operations[c.Key] = c.Operation
			}
		}
	}
	res, err := export.Diff(snapViewer{state.NewSnapshot(before)}, snapViewer{state.NewSnapshot(after)}, &export.DiffOptions{Redact: !a.showSecrets})
	if err != nil {
		return err
	}
	if err := a.writeDiffText(res); err != nil {
		return err
	}
	for _, u := range unreadable {
		fmt.Fprintf(a.stdout, "~ %s (stored record unreadable, replaced or removed whole)\n", u)
	}
	a.out.Flush() // the diff before the summary, on a terminal
	if len(changes) == 0 {
		fmt.Fprintf(a.stderr, "dry run: nothing would change in %s\n", e.path)
		return nil
	}
	fmt.Fprintf(a.stderr, "dry run: %d record(s) would change in %s; nothing written\n", len(changes), e.path)
	return nil
}

// writeDiffText writes a diff's text form, coloured on a terminal.
func (a *app) writeDiffText(res *export.Result) error {
	color := a.color()
	for _, c := range res.Changes {
		line := c.String()
		if color {
			switch c.Op {
			case export.OpAdd:
				line = colorGreen + line + colorReset
			case export.OpRemove:
				line = colorRed + line + colorReset
			default:
				line = colorYellow + line + colorReset
			}
		}
		if _, err := fmt.Fprintln(a.stdout, line); err != nil {
			return err
		}
	}
	return nil
}
