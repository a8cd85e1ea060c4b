package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/state"
)

// keyedResource is a resource with its key, as listings print it.
type keyedResource struct {
	Key string `json:"key"`
	*state.ResourceState
}

func (a *app) resourcesCommand() *cobra.Command {
	var typ string
	var out format
	cmd := &cobra.Command{
		Use:   "resources",
		Short: "List resources (sorted by key)",
		Example: `  ftlstate resources
  ftlstate resources --type linode -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list := []keyedResource{}
			collect := func(key string, r *state.ResourceState) error {
				list = append(list, keyedResource{key, r})
				return nil
			}
			err := a.view(func(snap state.Snapshot) error {
				if cmd.Flags().Changed("type") {
					return state.ResourcesOfType(snap, typ, collect)
				}
				return snap.Resources(collect)
			})
			if err != nil {
				return err
			}
			if out == formatJSON {
				return writeJSON(a.stdout, list)
			}
			t := newTable(a.stdout, "KEY", "TYPE", "ID", "NAME", "UPDATED")
			for _, r := range list {
				t.row(r.Key, r.Type, orDash(r.ID), orDash(r.Name), timeCell(r.UpdatedAt))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "only resources of this type (uses the store's type index)")
	addFormatFlag(cmd, &out)
	return cmd
}

func (a *app) resourceCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "resource",
		Short: "Show, add or remove one resource",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(a.resourceShowCommand(), a.resourceAddCommand(), a.resourceRmCommand())
	return cmd
}

func (a *app) resourceShowCommand() *cobra.Command {
	var out format
	cmd := &cobra.Command{
		Use:               "show KEY",
		Short:             "Show one resource with its data and tags",
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
			if out == formatJSON {
				return writeJSON(a.stdout, keyedResource{args[0], r})
			}
			t := newTable(a.stdout, "FIELD", "VALUE")
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
	addFormatFlag(cmd, &out)
	return cmd
}

func (a *app) resourceAddCommand() *cobra.Command {
	var r state.ResourceState
	var data, tags []string
	cmd := &cobra.Command{
		Use:   "add KEY --type T --id ID [--name N] [--data k=v ...] [--tag k=v ...]",
		Short: "Add a resource, or update the resource under that key",
		Long: `Add a resource, or update (replace) the resource under that key, keeping its
creation time. --data k=v follows the rules of --var (see 'ftlstate host add
--help'); --tag k=v values are always strings.`,
		Example: `  ftlstate resource add linode:12345678 --type linode --id 12345678 --name web01 --data region=us-east --data 'ipv4=["192.168.1.10"]' --tag environment=production`,
		Args:    exactArgs(1, "KEY"),
		RunE: func(_ *cobra.Command, args []string) error {
			var err error
			if r.Data, err = parseVars("data", data); err != nil {
				return err
			}
			if r.Tags, err = parseTags(tags); err != nil {
				return err
			}
			key := args[0]
			if err := state.ValidateName(key); err != nil {
				return usageErrorf("resource key %q: %v", key, err)
			}
			if _, err := r.Normalize(); err != nil {
				return usageErrorf("resource %q: %v", key, err)
			}
			return a.update(func(st *state.State) error {
				_, exists := st.GetResource(key)
				if err := st.AddResource(key, &r); err != nil {
					return fmt.Errorf("%s: %w", a.statePath, err)
				}
				verb := "added"
				if exists {
					verb = "updated"
				}
				fmt.Fprintf(a.stderr, "%s resource %s in %s\n", verb, key, a.statePath)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.Type, "type", "", "resource type, e.g. linode, ec2_instance (required)")
	f.StringVar(&r.ID, "id", "", "provider-specific id (required)")
	f.StringVar(&r.Name, "name", "", "human-readable name")
	f.StringArrayVar(&data, "data", nil, "a data field, key=value (JSON if valid, else a string) or key:=string; repeatable")
	f.StringArrayVar(&tags, "tag", nil, "a tag, key=value (a string); repeatable")
	cmd.MarkFlagRequired("type")
	cmd.MarkFlagRequired("id")
	return cmd
}

func (a *app) resourceRmCommand() *cobra.Command {
	var noBackup bool
	cmd := &cobra.Command{
		Use:               "rm KEY",
		Short:             "Remove a resource (keeps PATH.backup unless --no-backup)",
		Args:              exactArgs(1, "KEY"),
		ValidArgsFunction: a.completeResources,
		RunE: func(_ *cobra.Command, args []string) error {
			return a.destructive(noBackup, func(st *state.State, keepBackup func() error) error {
				if _, ok := st.GetResource(args[0]); !ok {
					return fmt.Errorf("%s: no resource %q; nothing removed", a.statePath, args[0])
				}
				if err := keepBackup(); err != nil {
					return err
				}
				if err := st.RemoveResource(args[0]); err != nil {
					return fmt.Errorf("%s: %w", a.statePath, err)
				}
				fmt.Fprintf(a.stderr, "removed resource %s from %s\n", args[0], a.statePath)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&noBackup, "no-backup", false, "do not keep PATH.backup")
	return cmd
}

func (a *app) completeResources(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var keys []string
	a.view(func(snap state.Snapshot) error {
		return snap.Resources(func(k string, _ *state.ResourceState) error { keys = append(keys, k); return nil })
	})
	return keys, cobra.ShellCompDirectiveNoFileComp
}
