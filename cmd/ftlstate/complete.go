package main

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/state"
)

// Shell completion. Candidates are the names that start with what was
// typed, never the whole store; file names are never offered where a
// store's name is expected.

func noFileCompletion(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// completeNames completes the first argument of a command (or every one,
// for commands that take several) from the names list yields.
func (a *app) completeNames(toComplete string, list func(snap state.Snapshot, add func(string)) error) []string {
	var names []string
	a.view(func(snap state.Snapshot) error {
		return list(snap, func(n string) {
			if strings.HasPrefix(n, toComplete) {
				names = append(names, n)
			}
		})
	})
	return names
}

// completeHosts completes host names.
func (a *app) completeHosts(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if !multiName(cmd) && len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return a.completeNames(toComplete, func(snap state.Snapshot, add func(string)) error {
		return state.HostNames(snap, toComplete, func(n string) error { add(n); return nil })
	}), cobra.ShellCompDirectiveNoFileComp
}

// completeResources completes resource keys.
func (a *app) completeResources(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if !multiName(cmd) && len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return a.completeNames(toComplete, func(snap state.Snapshot, add func(string)) error {
		return state.ResourceKeys(snap, toComplete, func(k string) error { add(k); return nil })
	}), cobra.ShellCompDirectiveNoFileComp
}

// multiName reports whether cmd takes several names (rm, listings), and
// mv's two.
func multiName(cmd *cobra.Command) bool {
	switch cmd.Name() {
	case "rm", "hosts", "resources":
		return true
	}
	return false
}

// completeGroups completes --group with the store's groups.
func (a *app) completeGroups(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	seen := map[string]bool{}
	a.view(func(snap state.Snapshot) error {
		return snap.Hosts(func(h *state.HostState) error {
			for _, g := range h.AllGroups() {
				if strings.HasPrefix(g, toComplete) {
					seen[g] = true
				}
			}
			return nil
		})
	})
	return sortedKeys(seen), cobra.ShellCompDirectiveNoFileComp
}

// completeTypes completes --type with the store's resource types.
func (a *app) completeTypes(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	seen := map[string]bool{}
	a.view(func(snap state.Snapshot) error {
		return snap.Resources(func(_ string, r *state.ResourceState) error {
			if strings.HasPrefix(r.Type, toComplete) {
				seen[r.Type] = true
			}
			return nil
		})
	})
	return sortedKeys(seen), cobra.ShellCompDirectiveNoFileComp
}

// completeHostVars completes --unset-var with the vars of the host named
// by the first argument.
func (a *app) completeHostVars(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var keys []string
	a.view(func(snap state.Snapshot) error {
		h, ok, err := snap.Host(args[0])
		if err != nil || !ok {
			return err
		}
		for _, k := range sortedKeys(h.Vars) {
			if strings.HasPrefix(k, toComplete) {
				keys = append(keys, k)
			}
		}
		return nil
	})
	return slices.Clip(keys), cobra.ShellCompDirectiveNoFileComp
}
