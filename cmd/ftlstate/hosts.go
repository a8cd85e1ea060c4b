package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
)

func (a *app) hostsCommand() *cobra.Command {
	var group string
	var selectors []string
	var out format
	cmd := &cobra.Command{
		Use:   "hosts [PATTERN ...]",
		Short: "List hosts (sorted by name), optionally those matching name patterns or a selector",
		Long: `hosts lists the store's hosts, sorted by name. PATTERNs are shell patterns on
the name ('web*', 'db0?'); a host is listed when it matches any of them.

--group G lists the hosts of group G, as stored or as Ansible names it
(edge-nodes.eu is edge_nodes_eu in the inventory; "ungrouped" or "" for hosts
without one). --selector takes comma-separated terms that must all hold:
FIELD=VALUE, FIELD!=VALUE, FIELD (set), !FIELD (unset), where FIELD is name,
address, port, user, group or var.KEY (a var's value as a string, or as
compact JSON for other values: var.http_port=80).

-o table (default), wide (with creation times and var names), json, yaml, or
name (one name a line). Values under secret-looking keys are redacted in
json and yaml unless --show-secrets.`,
		Example: `  ftlstate hosts
  ftlstate hosts 'web*' -o name
  ftlstate hosts --group webservers -o json
  ftlstate hosts --selector var.role=web,user=admin`,
		ValidArgsFunction: a.completeHosts,
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := newGlobs(args)
			if err != nil {
				return err
			}
			sel, err := parseSelector("host", selectors)
			if err != nil {
				return err
			}
			byGroup := cmd.Flags().Changed("group")
			namesOnly := out == formatName && !byGroup && len(sel) == 0
			l := a.newHostListing(out)
			err = a.view(func(snap state.Snapshot) error {
				return eachHost(snap, g, namesOnly, func(name string, h *state.HostState) error {
					if h != nil && (byGroup && !inGroup(h, group) || !sel.matchHost(h)) {
						return nil
					}
					return l.add(name, h)
				})
			})
			if err != nil {
				return err
			}
			return l.flush()
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "only hosts in this group (among all of theirs), as stored or as Ansible names it (\"\" for hosts without one)")
	cmd.Flags().StringArrayVar(&selectors, "selector", nil, "only hosts matching FIELD=VALUE,FIELD!=VALUE,FIELD,!FIELD (fields: name, address, port, user, group, var.KEY); repeatable")
	cmd.RegisterFlagCompletionFunc("group", a.completeGroups)
	cmd.RegisterFlagCompletionFunc("selector", noFileCompletion)
	a.addFormatFlag(cmd, &out, formatTable, formatWide, formatJSON, formatYAML, formatName)
	a.addSecretsFlag(cmd)
	return cmd
}

// eachHost calls fn for every host of snap whose name g matches: with
// the record, or only the name when namesOnly. A pattern with a literal
// prefix ('web*') reads only the hosts with that prefix where the store
// can seek (state.HostNames).
func eachHost(snap state.Snapshot, g globs, namesOnly bool, fn func(name string, h *state.HostState) error) error {
	prefix := g.prefix()
	switch {
	case namesOnly:
		return state.HostNames(snap, prefix, func(n string) error {
			if !g.match(n) {
				return nil
			}
			return fn(n, nil)
		})
	case prefix != "":
		return state.HostNames(snap, prefix, func(n string) error {
			if !g.match(n) {
				return nil
			}
			h, ok, err := snap.Host(n)
			if err != nil || !ok {
				return err
			}
			return fn(n, h)
		})
	}
	return snap.Hosts(func(h *state.HostState) error {
		if !g.match(h.Name) {
			return nil
		}
		return fn(h.Name, h)
	})
}

// hostListing writes a listing of hosts in one format, row by row as the
// hosts are read (tables keep only their cells, not the records).
type hostListing struct {
	a     *app
	out   format
	t     *table
	hosts []*state.HostState
}

func (a *app) newHostListing(out format) *hostListing {
	l := &hostListing{a: a, out: out}
	switch out {
	case formatTable:
		l.t = newTable(a.stdout, a.noHeaders, "NAME", "ADDRESS", "PORT", "USER", "GROUP", "VARS", "UPDATED")
	case formatWide:
		l.t = newTable(a.stdout, a.noHeaders, "NAME", "ADDRESS", "PORT", "USER", "GROUP", "VARS", "CREATED", "UPDATED")
	case formatJSON, formatYAML:
		l.hosts = []*state.HostState{}
	}
	return l
}

// add lists a host; h is nil for -o name without filters.
func (l *hostListing) add(name string, h *state.HostState) error {
	switch l.out {
	case formatName:
		l.a.out.WriteString(cell(name))
		return l.a.out.WriteByte('\n')
	case formatJSON, formatYAML:
		if !l.a.showSecrets {
			h = export.RedactHost(h)
		}
		l.hosts = append(l.hosts, h)
	case formatWide:
		l.t.row(h.Name, orDash(h.Address), strconv.Itoa(h.Port), orDash(h.User), orDash(strings.Join(h.AllGroups(), ",")), orDash(strings.Join(sortedKeys(h.Vars), ",")), timeCell(h.CreatedAt), timeCell(h.UpdatedAt))
	default:
		l.t.row(h.Name, orDash(h.Address), strconv.Itoa(h.Port), orDash(h.User), orDash(strings.Join(h.AllGroups(), ",")), strconv.Itoa(len(h.Vars)), timeCell(h.UpdatedAt))
	}
	return nil
}

func (l *hostListing) flush() error {
	switch l.out {
	case formatName:
		return nil
	case formatJSON, formatYAML:
		return writeData(l.a.stdout, l.out, l.hosts)
	}
	return l.t.flush()
}

func (a *app) hostCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "host",
		Short: "Show, add, change, rename or remove hosts",
		Args:  subcommandArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(a.hostShowCommand(), a.hostAddCommand(), a.hostSetCommand(), a.hostMvCommand(), a.hostRmCommand())
	return cmd
}

func (a *app) hostShowCommand() *cobra.Command {
	var out format
	cmd := &cobra.Command{
		Use:               "show NAME",
		Short:             "Show one host with its vars (secret-looking values redacted unless --show-secrets)",
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
			if !a.showSecrets {
				h = export.RedactHost(h)
			}
			if out != formatTable {
				return writeData(a.stdout, out, h)
			}
			t := newTable(a.stdout, a.noHeaders, "FIELD", "VALUE")
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
	a.addFormatFlag(cmd, &out, formatTable, formatJSON, formatYAML)
	a.addSecretsFlag(cmd)
	return cmd
}

const varHelp = `--var k=v sets a var: v is parsed as JSON when it is valid JSON (--var port=8080
gives a number, --var tags='["a"]' a list, --var on=true a bool), else taken
as a string (--var region=us-east). --var k:=v always gives a string
(--var version:=15 gives "15"). --var-file FILE reads vars from a JSON or YAML
object (so that secrets need not go through the shell's history); --var
arguments win over the file's values.`

func (a *app) hostAddCommand() *cobra.Command {
	var h state.HostState
	var vars, groups []string
	var varFile string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "add NAME --address A [--port 22] [--user U] [--group G ...] [--var k=v ...] [--var-file FILE]",
		Short: "Add a host, or replace the host of that name (see 'host set' to change some fields)",
		Long: `Add a host, or replace the host of that name whole, keeping its creation time.
A replaced host's fields that are not given again are dropped (the message
names them); 'ftlstate host set' changes only the fields it is given.

--group G puts the host in group G; repeat it for several groups, in order
(the first is the host's main group, the others its groups).

` + varHelp,
		Example: `  ftlstate host add web01 --address 192.168.1.10 --user admin --group webservers --var http_port=80
  ftlstate host add db01 --address 192.168.1.20 --var-file db01-vars.yaml`,
		Args: exactArgs(1, "NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			m, err := a.varsArg("var", vars, "var-file", varFile)
			if err != nil {
				return err
			}
			h.Name, h.Vars = args[0], m
			h.SetGroups(groups...)
			if _, err := h.Normalize(); err != nil {
				return usageErrorf("host %q: %v", h.Name, err)
			}
			return a.edit(editOptions{dryRun: dryRun}, func(e *edit) error {
				old, exists, err := e.host(h.Name)
				if err != nil && !errors.Is(err, state.ErrCorrupt) {
					return err
				}
				created, err := e.checkGroup(&h, old)
				if err != nil {
					return err
				}
				changed, err := e.putHost(&h)
				if err != nil {
					return usageErrorf("host %q: %v", h.Name, err)
				}
				a.hostWarnings(&h, created)
				switch {
				case !changed:
					e.note("host %s unchanged in %s; nothing written", h.Name, e.path)
				case !exists:
					e.note("added host %s in %s", h.Name, e.path)
				case old == nil:
					e.note("replaced unreadable host %s in %s", h.Name, e.path)
				default:
					msg := fmt.Sprintf("updated host %s in %s", h.Name, e.path)
					if d := droppedFields(old, &h); len(d) > 0 {
						msg += "; dropped " + strings.Join(d, ", ") + " ('host add' replaces the whole host; 'host set' changes only the fields given)"
					}
					e.note("%s", msg)
				}
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
	f.StringVar(&varFile, "var-file", "", "read vars from a JSON or YAML object in FILE")
	f.BoolVar(&dryRun, "dry-run", false, "print what would change and write nothing")
	cmd.MarkFlagRequired("address")
	cmd.RegisterFlagCompletionFunc("group", a.completeGroups)
	a.addSecretsFlag(cmd)
	return cmd
}

// droppedFields names what a replacement of old by h loses: fields old
// set that h leaves empty, and vars h does not have.
func droppedFields(old, h *state.HostState) []string {
	var d []string
	if old.User != "" && h.User == "" {
		d = append(d, "user "+strconv.Quote(old.User))
	}
	var groups []string
	for _, g := range old.AllGroups() {
		if !slices.Contains(h.AllGroups(), g) {
			groups = append(groups, strconv.Quote(g))
		}
	}
	if len(groups) == 1 {
		d = append(d, "group "+groups[0])
	} else if len(groups) > 1 {
		d = append(d, "groups "+strings.Join(groups, ", "))
	}
	var vars []string
	for _, k := range sortedKeys(old.Vars) {
		if _, ok := h.Vars[k]; !ok {
			vars = append(vars, k)
		}
	}
	if len(vars) > 0 {
		d = append(d, "vars "+strings.Join(vars, ", "))
	}
	return d
}

// ansibleFieldVars are the vars the inventory sets from a host's fields
// (and their older aliases), overriding vars of the same names.
var ansibleFieldVars = []struct{ field, name, alias string }{
	{"address", "ansible_host", "ansible_ssh_host"},
	{"port", "ansible_port", "ansible_ssh_port"},
	{"user", "ansible_user", "ansible_ssh_user"},
}

// hostWarnings warns about what Ansible will not see as given: a var that
// the inventory overrides with a field, and the name of a group new to the
// store that it rewrites.
func (a *app) hostWarnings(h *state.HostState, created []string) {
	set := map[string]bool{"address": h.Address != "", "port": h.Port != 0, "user": h.User != ""}
	for _, f := range ansibleFieldVars {
		for _, name := range []string{f.name, f.alias} {
			if _, ok := h.Vars[name]; ok && set[f.field] {
				fmt.Fprintf(a.stderr, "warning: host %s: var %s is overridden by the host's %s in the Ansible inventory (set --%s instead)\n", h.Name, name, f.field, f.field)
			}
		}
	}
	for _, g := range created {
		if ag := state.AnsibleGroupName(g); ag != g && ag != "ungrouped" && ag != "_meta" {
			fmt.Fprintf(a.stderr, "warning: group %q is %q in the Ansible inventory (Ansible allows letters, digits and _ only)\n", g, ag)
		}
	}
}

// varsArg parses --var arguments over an optional --var-file.
func (a *app) varsArg(flag string, args []string, fileFlag, file string) (map[string]any, error) {
	m, err := parseVars(flag, args)
	if err != nil {
		return nil, err
	}
	if file == "" {
		return m, nil
	}
	fm, err := readValueFile(fileFlag, file)
	if err != nil {
		return nil, err
	}
	return mergeVars(fm, m), nil
}

func (a *app) hostSetCommand() *cobra.Command {
	var (
		address, user       string
		port                int
		groups, vars, unset []string
		varFile             string
		dryRun              bool
	)
	cmd := &cobra.Command{
		Use:   "set NAME [--address A] [--port P] [--user U] [--group G] [--var k=v ...] [--unset-var k ...]",
		Short: "Change some fields of a host, keeping the others",
		Long: `host set changes only the fields it is given: --address, --port and --user
replace those fields ('' empties the user), --group replaces the host's groups
(repeat it for several; --group '' for none), --var k=v sets a var and
--unset-var k removes one; every other field and var stays. The host must
exist ('host add' adds one).

` + varHelp,
		Example: `  ftlstate host set web01 --address 192.168.1.11
  ftlstate host set web01 --var http_port=8080 --unset-var debug
  ftlstate host set web01 --group webservers --dry-run`,
		Args:              exactArgs(1, "NAME"),
		ValidArgsFunction: a.completeHosts,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			m, err := a.varsArg("var", vars, "var-file", varFile)
			if err != nil {
				return err
			}
			for _, k := range unset {
				if _, ok := m[k]; ok {
					return usageErrorf("--var %s and --unset-var %s: set or unset, not both", k, k)
				}
			}
			fl := cmd.Flags()
			if !slices.ContainsFunc([]string{"address", "port", "user", "group", "var", "var-file", "unset-var"}, fl.Changed) {
				return usageErrorf("host set %s: nothing to change; give --address, --port, --user, --group, --var, --var-file or --unset-var", name)
			}
			return a.edit(editOptions{dryRun: dryRun}, func(e *edit) error {
				old, exists, err := e.host(name)
				if err != nil {
					return fmt.Errorf("%s: host %q: %w; 'host add' replaces it whole, 'host rm' removes it", e.path, name, err)
				}
				if !exists {
					return fmt.Errorf("%s: no host %q; 'host add %s --address A' adds it", e.path, name, name)
				}
				h := old.Clone()
				if fl.Changed("address") {
					h.Address = address
				}
				if fl.Changed("port") {
					h.Port = port
				}
				if fl.Changed("user") {
					h.User = user
				}
				if fl.Changed("group") {
					h.SetGroups(slices.DeleteFunc(slices.Clone(groups), func(g string) bool { return g == "" })...)
				}
				if len(m) > 0 && h.Vars == nil {
					h.Vars = map[string]any{}
				}
				for k, v := range m {
					h.Vars[k] = v
				}
				for _, k := range unset {
					delete(h.Vars, k)
				}
				created, err := e.checkGroup(h, old)
				if err != nil {
					return err
				}
				changed, err := e.putHost(h)
				if err != nil {
					return usageErrorf("host %q: %v", name, err)
				}
				a.hostWarnings(h, created)
				if changed {
					e.note("updated host %s in %s", name, e.path)
				} else {
					e.note("host %s unchanged in %s; nothing written", name, e.path)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&address, "address", "", "address to connect to")
	f.IntVar(&port, "port", 22, "SSH port")
	f.StringVar(&user, "user", "", "user to connect as ('' for none)")
	f.StringArrayVar(&groups, "group", nil, "the host's groups, replacing its others; repeatable ('' for none)")
	f.StringArrayVar(&vars, "var", nil, "set a var, key=value (JSON if valid, else a string) or key:=string; repeatable")
	f.StringVar(&varFile, "var-file", "", "set the vars of a JSON or YAML object in FILE")
	f.StringArrayVar(&unset, "unset-var", nil, "remove a var; repeatable")
	f.BoolVar(&dryRun, "dry-run", false, "print what would change and write nothing")
	cmd.RegisterFlagCompletionFunc("group", a.completeGroups)
	cmd.RegisterFlagCompletionFunc("unset-var", a.completeHostVars)
	a.addSecretsFlag(cmd)
	return cmd
}

func (a *app) hostMvCommand() *cobra.Command {
	var noBackup, dryRun bool
	cmd := &cobra.Command{
		Use:   "mv OLD NEW",
		Short: "Rename a host, atomically (keeps a backup unless --no-backup)",
		Long: `host mv renames host OLD to NEW in one atomic write: NEW gets every field, var
and the creation time of OLD, and OLD is gone (like 'terraform state mv'). NEW
must not exist. The store as it was is kept in a backup (see 'ftlstate
backups') unless --no-backup.`,
		Example:           `  ftlstate host mv web01 web01.example.com`,
		Args:              exactArgs(2, "OLD", "NEW"),
		ValidArgsFunction: a.completeHosts,
		RunE: func(_ *cobra.Command, args []string) error {
			from, to := args[0], args[1]
			return a.edit(editOptions{destructive: true, noBackup: noBackup, dryRun: dryRun}, func(e *edit) error {
				h, ok, err := e.host(from)
				if err != nil {
					return fmt.Errorf("%s: host %q: %w", e.path, from, err)
				}
				if !ok {
					return fmt.Errorf("%s: no host %q; nothing renamed", e.path, from)
				}
				if from == to {
					e.note("host %s: the same name; nothing written", from)
					return nil
				}
				if _, exists, err := e.host(to); exists || err != nil {
					return fmt.Errorf("%s: host %q exists; remove it first ('host rm %s'); nothing renamed", e.path, to, to)
				}
				if _, err := e.removeHost(from); err != nil {
					return err
				}
				h.Name = to
				if _, err := e.putHost(h); err != nil {
					return usageErrorf("host %q: %v", to, err)
				}
				e.note("renamed host %s to %s in %s", from, to, e.path)
				return nil
			})
		},
	}
	a.addDestructiveFlags(cmd, &noBackup, &dryRun)
	return cmd
}

func (a *app) hostRmCommand() *cobra.Command {
	var noBackup, dryRun bool
	cmd := &cobra.Command{
		Use:   "rm NAME [NAME ...]",
		Short: "Remove hosts, in one atomic write (keeps a backup unless --no-backup)",
		Long: `host rm removes the named hosts in one atomic write: all of them, or none when
one of them does not exist. A host whose record cannot be read (damaged) can
be removed too. The store as it was is kept in a backup (see 'ftlstate
backups') unless --no-backup.`,
		Example: `  ftlstate host rm web03
  ftlstate host rm web03 web04 --dry-run`,
		Args:              minArgs(1, "at least one NAME"),
		ValidArgsFunction: a.completeHosts,
		RunE: func(_ *cobra.Command, args []string) error {
			return a.edit(editOptions{destructive: true, noBackup: noBackup, dryRun: dryRun}, func(e *edit) error {
				var missing []string
				for _, name := range uniq(args) {
					ok, err := e.removeHost(name)
					if err != nil {
						return err
					}
					if !ok {
						missing = append(missing, name)
					}
				}
				if len(missing) > 0 {
					return fmt.Errorf("%s: no host %s; nothing removed", e.path, quoteList(missing, " or "))
				}
				for _, name := range uniq(args) {
					e.note("removed host %s from %s", name, e.path)
				}
				return nil
			})
		},
	}
	a.addDestructiveFlags(cmd, &noBackup, &dryRun)
	return cmd
}

// newGroups returns the groups of h that old (nil for a new host) was
// not in.
func newGroups(h, old *state.HostState) []string {
	var out []string
	for _, g := range h.AllGroups() {
		if old == nil || !old.InGroup(g) {
			out = append(out, g)
		}
	}
	return out
}

// checkGroup refuses a group for h that Ansible would merge with another
// group of the store (a *state.GroupClashError, as State refuses it): two
// names that map to the same Ansible group name ("edge-nodes" and
// "edge_nodes") make the inventory ambiguous, and 'inventory --list' fails
// for the whole store. The edit reads no State, so it walks the hosts,
// comparing only the groups h was not in before, and stops as soon as each
// of them is found on another host (a group that exists was checked when
// it was made). created lists h's groups that no other host has.
func (e *edit) checkGroup(h, old *state.HostState) (created []string, err error) {
	type wanted struct {
		name, ansible string
		exists        bool
		clash         string
	}
	var todo []*wanted
	for _, g := range newGroups(h, old) {
		w := &wanted{name: g, ansible: state.AnsibleGroupName(g)}
		if w.ansible == "ungrouped" {
			continue
		}
		for _, other := range h.AllGroups() {
			if other != g && state.AnsibleGroupName(other) == w.ansible {
				return nil, usageError{fmt.Errorf("host %q: %w", h.Name, &state.GroupClashError{Group: g, Other: other, Ansible: w.ansible})}
			}
		}
		todo = append(todo, w)
	}
	if len(todo) == 0 {
		return nil, nil
	}
	errDone := errors.New("done")
	open := len(todo)
	err = e.snap.Hosts(func(o *state.HostState) error {
		if o.Name == h.Name {
			return nil
		}
		for _, og := range o.AllGroups() {
			for _, w := range todo {
				switch {
				case w.exists:
				case og == w.name:
					w.exists = true
					if open--; open == 0 {
						return errDone
					}
				case w.clash == "" && state.AnsibleGroupName(og) == w.ansible:
					w.clash = og
				}
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDone) && !errors.Is(err, state.ErrCorrupt) {
		return nil, err
	}
	for _, w := range todo {
		switch {
		case w.exists:
		case w.clash != "":
			return nil, usageError{fmt.Errorf("host %q: %w", h.Name, &state.GroupClashError{Group: w.name, Other: w.clash, Ansible: w.ansible})}
		default:
			created = append(created, w.name)
		}
	}
	return created, nil
}

func uniq(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
