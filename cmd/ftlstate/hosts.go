package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/state"
)

func (a *app) hostsCommand() *cobra.Command {
	var group string
	var out format
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "List hosts (sorted by name)",
		Example: `  ftlstate hosts
  ftlstate hosts --group webservers -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hosts := []*state.HostState{}
			err := a.view(func(snap state.Snapshot) error {
				return snap.Hosts(func(h *state.HostState) error {
					if !cmd.Flags().Changed("group") || h.InGroup(group) {
						hosts = append(hosts, h)
					}
					return nil
				})
			})
			if err != nil {
				return err
			}
			if out == formatJSON {
				return writeJSON(a.stdout, hosts)
			}
			t := newTable(a.stdout, "NAME", "ADDRESS", "PORT", "USER", "GROUP", "VARS", "UPDATED")
			for _, h := range hosts {
				t.row(h.Name, orDash(h.Address), strconv.Itoa(h.Port), orDash(h.User), orDash(strings.Join(h.AllGroups(), ",")), strconv.Itoa(len(h.Vars)), timeCell(h.UpdatedAt))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "only hosts in this group, among all of theirs (\"\" for hosts without one)")
	addFormatFlag(cmd, &out)
	return cmd
}

func (a *app) hostCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "host",
		Short: "Show, add or remove one host",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(a.hostShowCommand(), a.hostAddCommand(), a.hostRmCommand())
	return cmd
}

func (a *app) hostShowCommand() *cobra.Command {
	var out format
	cmd := &cobra.Command{
		Use:               "show NAME",
		Short:             "Show one host with its vars",
		Args:              exactArgs(1, "NAME"),
		ValidArgsFunction: a.completeHosts,
		RunE: func(_ *cobra.Command, args []string) error {
			var h *state.HostState
			err := a.view(func(snap state.Snapshot) error {
				var ok bool
				var err error
				h, ok, err = snap.Host(args[0])
				if err == nil && !ok {
					err = fmt.Errorf("%s: no host %q", a.statePath, args[0])
				}
				return err
			})
			if err != nil {
				return err
			}
			if out == formatJSON {
				return writeJSON(a.stdout, h)
			}
			t := newTable(a.stdout, "FIELD", "VALUE")
			t.row("name", h.Name)
			t.row("address", orDash(h.Address))
			t.row("port", strconv.Itoa(h.Port))
			t.row("user", orDash(h.User))
			t.row("group", orDash(h.Group))
			if len(h.Groups) > 0 {
				t.row("groups", strings.Join(h.Groups, ","))
			}
			t.row("created_at", timeCell(h.CreatedAt))
			t.row("updated_at", timeCell(h.UpdatedAt))
			for _, k := range sortedKeys(h.Vars) {
				t.row("vars."+k, compactJSON(h.Vars[k]))
			}
			return t.flush()
		},
	}
	addFormatFlag(cmd, &out)
	return cmd
}

func (a *app) hostAddCommand() *cobra.Command {
	var h state.HostState
	var vars, groups []string
	cmd := &cobra.Command{
		Use:   "add NAME --address A [--port 22] [--user U] [--group G ...] [--var k=v ...]",
		Short: "Add a host, or update the host of that name",
		Long: `Add a host, or update (replace) the host of that name, keeping its creation time.

--group G puts the host in group G; repeat it for several groups, in order
(the first is the host's main group, the others its groups).

--var k=v sets a var: v is parsed as JSON when it is valid JSON (--var port=8080
gives a number, --var tags='["a"]' a list, --var on=true a bool), else taken
as a string (--var region=us-east). --var k:=v always gives a string
(--var version:=15 gives "15").`,
		Example: `  ftlstate host add web01 --address 192.168.1.10 --user admin --group webservers --var http_port=80`,
		Args:    exactArgs(1, "NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			m, err := parseVars("var", vars)
			if err != nil {
				return err
			}
			h.Name, h.Vars = args[0], m
			h.SetGroups(groups...)
			if _, err := h.Normalize(); err != nil {
				return usageErrorf("host %q: %v", h.Name, err)
			}
			return a.update(func(st *state.State) error {
				verb := "added"
				if st.HasHost(h.Name) {
					verb = "updated"
				}
				if err := st.AddHost(&h); err != nil {
					return fmt.Errorf("%s: %w", a.statePath, err)
				}
				fmt.Fprintf(a.stderr, "%s host %s in %s\n", verb, h.Name, a.statePath)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&h.Address, "address", "", "address to connect to (required)")
	f.IntVar(&h.Port, "port", 22, "SSH port")
	f.StringVar(&h.User, "user", "", "user to connect as")
	f.StringArrayVar(&groups, "group", nil, "inventory group; repeatable (the first is the main group)")
	f.StringArrayVar(&vars, "var", nil, "a var, key=value (JSON if valid, else a string) or key:=string; repeatable")
	cmd.MarkFlagRequired("address")
	return cmd
}

func (a *app) hostRmCommand() *cobra.Command {
	var noBackup bool
	cmd := &cobra.Command{
		Use:               "rm NAME",
		Short:             "Remove a host (keeps PATH.backup unless --no-backup)",
		Args:              exactArgs(1, "NAME"),
		ValidArgsFunction: a.completeHosts,
		RunE: func(_ *cobra.Command, args []string) error {
			return a.destructive(noBackup, func(st *state.State, keepBackup func() error) error {
				if !st.HasHost(args[0]) {
					return fmt.Errorf("%s: no host %q; nothing removed", a.statePath, args[0])
				}
				if err := keepBackup(); err != nil {
					return err
				}
				if err := st.RemoveHost(args[0]); err != nil {
					return fmt.Errorf("%s: %w", a.statePath, err)
				}
				fmt.Fprintf(a.stderr, "removed host %s from %s\n", args[0], a.statePath)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&noBackup, "no-backup", false, "do not keep PATH.backup")
	return cmd
}

// completeHosts completes host names from the store (for shell completion).
func (a *app) completeHosts(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	a.view(func(snap state.Snapshot) error {
		return snap.Hosts(func(h *state.HostState) error { names = append(names, h.Name); return nil })
	})
	return names, cobra.ShellCompDirectiveNoFileComp
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
