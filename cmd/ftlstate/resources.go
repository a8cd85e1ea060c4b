package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
)

// keyedResource is a resource with its key, as listings print it.
type keyedResource struct {
	Key string `json:"key"`
	*state.ResourceState
}

func (a *app) resourcesCommand() *cobra.Command {
	var typ string
	var selectors []string
	var out format
	cmd := &cobra.Command{
		Use:   "resources [PATTERN ...]",
		Short: "List resources (sorted by key), optionally those matching key patterns or a selector",
		Long: `resources lists the store's resources, sorted by key. PATTERNs are shell
patterns on the key ('linode:*'); a resource is listed when it matches any.

--type T lists the resources of type T (through the store's type index).
--selector takes comma-separated terms that must all hold: FIELD=VALUE,
FIELD!=VALUE, FIELD (set), !FIELD (unset), where FIELD is key, type, id, name,
data.KEY or tag.KEY.

-o table (default), wide (with data keys, tags and creation times), json,
yaml, or name (one key a line). Values under secret-looking keys are redacted
in json and yaml unless --show-secrets.`,
		Example: `  ftlstate resources
  ftlstate resources --type linode -o json
  ftlstate resources 'linode:*' --selector tag.environment=production -o name`,
		ValidArgsFunction: a.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := newGlobs(args)
			if err != nil {
				return err
			}
			sel, err := parseSelector("resource", selectors)
			if err != nil {
				return err
			}
			l := a.newResourceListing(out)
			collect := func(key string, r *state.ResourceState) error {
				if !g.match(key) || !sel.matchResource(key, r) {
					return nil
				}
				return l.add(key, r)
			}
			err = a.view(func(snap state.Snapshot) error {
				prefix := g.prefix()
				switch {
				case cmd.Flags().Changed("type"):
					return state.ResourcesOfType(snap, typ, collect)
				case out == formatName && len(sel) == 0:
					return state.ResourceKeys(snap, prefix, func(k string) error {
						if !g.match(k) {
							return nil
						}
						return l.add(k, nil)
					})
				case prefix != "":
					return state.ResourceKeys(snap, prefix, func(k string) error {
						r, ok, err := snap.Resource(k)
						if err != nil || !ok {
							return err
						}
						return collect(k, r)
					})
				}
				return snap.Resources(collect)
			})
			if err != nil {
				return err
			}
			return l.flush()
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "only resources of this type (uses the store's type index)")
	cmd.Flags().StringArrayVar(&selectors, "selector", nil, "only resources matching FIELD=VALUE,FIELD!=VALUE,FIELD,!FIELD (fields: key, type, id, name, data.KEY, tag.KEY); repeatable")
	cmd.RegisterFlagCompletionFunc("type", a.completeTypes)
	cmd.RegisterFlagCompletionFunc("selector", noFileCompletion)
	a.addFormatFlag(cmd, &out, formatTable, formatWide, formatJSON, formatYAML, formatName)
	a.addSecretsFlag(cmd)
	return cmd
}

// resourceListing writes a listing of resources in one format, row by
// row (see hostListing).
type resourceListing struct {
	a    *app
	out  format
	t    *table
	list []keyedResource
}

func (a *app) newResourceListing(out format) *resourceListing {
	l := &resourceListing{a: a, out: out}
	switch out {
	case formatTable:
		l.t = newTable(a.stdout, a.noHeaders, "KEY", "TYPE", "ID", "NAME", "UPDATED")
	case formatWide:
		l.t = newTable(a.stdout, a.noHeaders, "KEY", "TYPE", "ID", "NAME", "DATA", "TAGS", "CREATED", "UPDATED")
	case formatJSON, formatYAML:
		l.list = []keyedResource{}
	}
	return l
}

// add lists a resource; r is nil for -o name without a selector.
func (l *resourceListing) add(key string, r *state.ResourceState) error {
	switch l.out {
	case formatName:
		l.a.out.WriteString(cell(key))
		return l.a.out.WriteByte('\n')
	case formatJSON, formatYAML:
		if !l.a.showSecrets {
			r = export.RedactResource(r)
		}
		l.list = append(l.list, keyedResource{key, r})
	case formatWide:
		l.t.row(key, r.Type, orDash(r.ID), orDash(r.Name), orDash(strings.Join(sortedKeys(r.Data), ",")), orDash(strings.Join(sortedKeys(r.Tags), ",")), timeCell(r.CreatedAt), timeCell(r.UpdatedAt))
	default:
		l.t.row(key, r.Type, orDash(r.ID), orDash(r.Name), timeCell(r.UpdatedAt))
	}
	return nil
}

func (l *resourceListing) flush() error {
	switch l.out {
	case formatName:
		return nil
	case formatJSON, formatYAML:
		return writeData(l.a.stdout, l.out, l.list)
	}
	return l.t.flush()
}

func (a *app) resourceCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "resource",
		Short: "Show, add, change, rename or remove resources",
		Args:  subcommandArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(a.resourceShowCommand(), a.resourceAddCommand(), a.resourceSetCommand(), a.resourceMvCommand(), a.resourceRmCommand())
	return cmd
}

func (a *app) resourceShowCommand() *cobra.Command {
	var out format
	cmd := &cobra.Command{
		Use:               "show KEY",
		Short:             "Show one resource with its data and tags (secret-looking values redacted unless --show-secrets)",
		Args:              exactArgs(1, "KEY"),
		ValidArgsFunction: a.completeResources,
		RunE: func(_ *cobra.Command, args []string) error {
			var r *state.ResourceState
			err := a.view(func(snap state.Snapshot) error {
				var ok bool
				var err error
				r, ok, err = snap.Resource(args[0])
				if err == nil && !ok {
					err = fmt.Errorf("%s: no resource %q", a.statePath, args[0])
				}
				return err
			})
			if err != nil {
				return err
			}
			if !a.showSecrets {
				r = export.RedactResource(r)
			}
			if out != formatTable {
				return writeData(a.stdout, out, keyedResource{args[0], r})
			}
			t := newTable(a.stdout, a.noHeaders, "FIELD", "VALUE")
			t.row("key", args[0])
			t.row("type", r.Type)
			t.row("id", orDash(r.ID))
			t.row("name", orDash(r.Name))
			t.row("created_at", timeCell(r.CreatedAt))
			t.row("updated_at", timeCell(r.UpdatedAt))
			for _, k := range sortedKeys(r.Data) {
				t.row("data."+k, compactJSON(r.Data[k]))
			}
			for _, k := range sortedKeys(r.Tags) {
				t.row("tags."+k, r.Tags[k])
			}
			return t.flush()
		},
	}
	a.addFormatFlag(cmd, &out, formatTable, formatJSON, formatYAML)
	a.addSecretsFlag(cmd)
	return cmd
}

const dataHelp = `--data k=v follows the rules of --var (see 'ftlstate host add --help');
--data-file FILE reads data from a JSON or YAML object; --tag k=v values are
always strings.`

func (a *app) resourceAddCommand() *cobra.Command {
	var r state.ResourceState
	var data, tags []string
	var dataFile string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "add KEY --type T --id ID [--name N] [--data k=v ...] [--data-file FILE] [--tag k=v ...]",
		Short: "Add a resource, or replace the resource under that key (see 'resource set')",
		Long: `Add a resource, or replace (whole) the resource under that key, keeping its
creation time. 'ftlstate resource set' changes only the fields it is given.
` + dataHelp,
		Example: `  ftlstate resource add linode:12345678 --type linode --id 12345678 --name web01 --data region=us-east --data 'ipv4=["192.168.1.10"]' --tag environment=production`,
		Args:    exactArgs(1, "KEY"),
		RunE: func(_ *cobra.Command, args []string) error {
			var err error
			if r.Data, err = a.varsArg("data", data, "data-file", dataFile); err != nil {
				return err
			}
			if r.Tags, err = parseTags("tag", tags); err != nil {
				return err
			}
			key := args[0]
			if err := state.ValidateName(key); err != nil {
				return usageErrorf("resource key %q: %v", key, err)
			}
			if _, err := r.Normalize(); err != nil {
				return usageErrorf("resource %q: %v", key, err)
			}
			return a.edit(editOptions{dryRun: dryRun}, func(e *edit) error {
				_, exists, err := e.resource(key)
				unreadable := errors.Is(err, state.ErrCorrupt)
				if err != nil && !unreadable {
					return err
				}
				changed, err := e.putResource(key, &r)
				if err != nil {
					return usageErrorf("resource %q: %v", key, err)
				}
				switch {
				case !changed:
					e.note("resource %s unchanged in %s; nothing written", key, e.path)
				case unreadable:
					e.note("replaced unreadable resource %s in %s", key, e.path)
				case exists:
					e.note("updated resource %s in %s", key, e.path)
				default:
					e.note("added resource %s in %s", key, e.path)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.Type, "type", "", "resource type, e.g. linode, ec2_instance (required)")
	f.StringVar(&r.ID, "id", "", "provider-specific id (required)")
	f.StringVar(&r.Name, "name", "", "human-readable name")
	f.StringArrayVar(&data, "data", nil, "a data field, key=value (JSON if valid, else a string) or key:=string; repeatable")
	f.StringVar(&dataFile, "data-file", "", "read data from a JSON or YAML object in FILE")
	f.StringArrayVar(&tags, "tag", nil, "a tag, key=value (a string); repeatable")
	f.BoolVar(&dryRun, "dry-run", false, "print what would change and write nothing")
	cmd.MarkFlagRequired("type")
	cmd.MarkFlagRequired("id")
	cmd.RegisterFlagCompletionFunc("type", a.completeTypes)
	a.addSecretsFlag(cmd)
	return cmd
}

func (a *app) resourceSetCommand() *cobra.Command {
	var (
		typ, id, name   string
		data, unsetData []string
		tags, unsetTags []string
		dataFile        string
		dryRun          bool
	)
	cmd := &cobra.Command{
		Use:   "set KEY [--type T] [--id ID] [--name N] [--data k=v ...] [--unset-data k ...] [--tag k=v ...] [--unset-tag k ...]",
		Short: "Change some fields of a resource, keeping the others",
		Long: `resource set changes only what it is given: --type, --id and --name replace
those fields, --data k=v and --tag k=v set a data field or a tag, --unset-data
k and --unset-tag k remove one; everything else stays. The resource must
exist ('resource add' adds one).
` + dataHelp,
		Example:           `  ftlstate resource set linode:12345678 --data plan=g6-standard-4 --unset-tag temporary`,
		Args:              exactArgs(1, "KEY"),
		ValidArgsFunction: a.completeResources,
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[0]
			d, err := a.varsArg("data", data, "data-file", dataFile)
			if err != nil {
				return err
			}
			tm, err := parseTags("tag", tags)
			if err != nil {
				return err
			}
			for _, k := range unsetData {
				if _, ok := d[k]; ok {
					return usageErrorf("--data %s and --unset-data %s: set or unset, not both", k, k)
				}
			}
			for _, k := range unsetTags {
				if _, ok := tm[k]; ok {
					return usageErrorf("--tag %s and --unset-tag %s: set or unset, not both", k, k)
				}
			}
			fl := cmd.Flags()
			if !slices.ContainsFunc([]string{"type", "id", "name", "data", "data-file", "unset-data", "tag", "unset-tag"}, fl.Changed) {
				return usageErrorf("resource set %s: nothing to change; give --type, --id, --name, --data, --data-file, --unset-data, --tag or --unset-tag", key)
			}
			return a.edit(editOptions{dryRun: dryRun}, func(e *edit) error {
				old, exists, err := e.resource(key)
				if err != nil {
					return fmt.Errorf("%s: resource %q: %w; 'resource add' replaces it whole, 'resource rm' removes it", e.path, key, err)
				}
				if !exists {
					return fmt.Errorf("%s: no resource %q; 'resource add %s --type T --id ID' adds it", e.path, key, key)
				}
				r := old.Clone()
				if fl.Changed("type") {
					r.Type = typ
				}
				if fl.Changed("id") {
					r.ID = id
				}
				if fl.Changed("name") {
					r.Name = name
				}
				if len(d) > 0 && r.Data == nil {
					r.Data = map[string]any{}
				}
				for k, v := range d {
					r.Data[k] = v
				}
				for _, k := range unsetData {
					delete(r.Data, k)
				}
				if len(tm) > 0 && r.Tags == nil {
					r.Tags = map[string]string{}
				}
				for k, v := range tm {
					r.Tags[k] = v
				}
				for _, k := range unsetTags {
					delete(r.Tags, k)
				}
				changed, err := e.putResource(key, r)
				if err != nil {
					return usageErrorf("resource %q: %v", key, err)
				}
				if changed {
					e.note("updated resource %s in %s", key, e.path)
				} else {
					e.note("resource %s unchanged in %s; nothing written", key, e.path)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&typ, "type", "", "resource type")
	f.StringVar(&id, "id", "", "provider-specific id")
	f.StringVar(&name, "name", "", "human-readable name ('' for none)")
	f.StringArrayVar(&data, "data", nil, "set a data field, key=value (JSON if valid, else a string) or key:=string; repeatable")
	f.StringVar(&dataFile, "data-file", "", "set the data fields of a JSON or YAML object in FILE")
	f.StringArrayVar(&unsetData, "unset-data", nil, "remove a data field; repeatable")
	f.StringArrayVar(&tags, "tag", nil, "set a tag, key=value; repeatable")
	f.StringArrayVar(&unsetTags, "unset-tag", nil, "remove a tag; repeatable")
	f.BoolVar(&dryRun, "dry-run", false, "print what would change and write nothing")
	cmd.RegisterFlagCompletionFunc("type", a.completeTypes)
	a.addSecretsFlag(cmd)
	return cmd
}

func (a *app) resourceMvCommand() *cobra.Command {
	var noBackup, dryRun bool
	cmd := &cobra.Command{
		Use:   "mv OLD NEW",
		Short: "Move a resource to another key, atomically (keeps a backup unless --no-backup)",
		Long: `resource mv moves the resource under key OLD to key NEW in one atomic write,
with every field and its creation time (like 'terraform state mv'). NEW must
not exist. The store as it was is kept in a backup unless --no-backup.`,
		Example:           `  ftlstate resource mv linode:12345678 linode:web01`,
		Args:              exactArgs(2, "OLD", "NEW"),
		ValidArgsFunction: a.completeResources,
		RunE: func(_ *cobra.Command, args []string) error {
			from, to := args[0], args[1]
			return a.edit(editOptions{destructive: true, noBackup: noBackup, dryRun: dryRun}, func(e *edit) error {
				r, ok, err := e.resource(from)
				if err != nil {
					return fmt.Errorf("%s: resource %q: %w", e.path, from, err)
				}
				if !ok {
					return fmt.Errorf("%s: no resource %q; nothing moved", e.path, from)
				}
				if from == to {
					e.note("resource %s: the same key; nothing written", from)
					return nil
				}
				if _, exists, err := e.resource(to); exists || err != nil {
					return fmt.Errorf("%s: resource %q exists; remove it first ('resource rm %s'); nothing moved", e.path, to, to)
				}
				if _, err := e.removeResource(from); err != nil {
					return err
				}
				if _, err := e.putResource(to, r); err != nil {
					return usageErrorf("resource %q: %v", to, err)
				}
				e.note("moved resource %s to %s in %s", from, to, e.path)
				return nil
			})
		},
	}
	a.addDestructiveFlags(cmd, &noBackup, &dryRun)
	return cmd
}

func (a *app) resourceRmCommand() *cobra.Command {
	var noBackup, dryRun bool
	cmd := &cobra.Command{
		Use:   "rm KEY [KEY ...]",
		Short: "Remove resources, in one atomic write (keeps a backup unless --no-backup)",
		Long: `resource rm removes the resources under the given keys in one atomic write:
all of them, or none when one does not exist. A damaged record can be removed
too. The store as it was is kept in a backup unless --no-backup.`,
		Example:           `  ftlstate resource rm linode:12345678 linode:12345679`,
		Args:              minArgs(1, "at least one KEY"),
		ValidArgsFunction: a.completeResources,
		RunE: func(_ *cobra.Command, args []string) error {
			return a.edit(editOptions{destructive: true, noBackup: noBackup, dryRun: dryRun}, func(e *edit) error {
				var missing []string
				for _, key := range uniq(args) {
					ok, err := e.removeResource(key)
					if err != nil {
						return err
					}
					if !ok {
						missing = append(missing, key)
					}
				}
				if len(missing) > 0 {
					return fmt.Errorf("%s: no resource %s; nothing removed", e.path, quoteList(missing, " or "))
				}
				for _, key := range uniq(args) {
					e.note("removed resource %s from %s", key, e.path)
				}
				return nil
			})
		},
	}
	a.addDestructiveFlags(cmd, &noBackup, &dryRun)
	return cmd
}
