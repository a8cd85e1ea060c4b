package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/state"
)

func (a *app) exportCommand() *cobra.Command {
	var file string
	var redact bool
	cmd := &cobra.Command{
		Use:   "export [-o FILE] [--redact]",
		Short: "Write the store as the documented state.json (stdout, or a file atomically)",
		Long: `export writes the store as the documented state.json: deterministic (the same
content gives the same bytes), sorted, two-space indented, from one consistent
snapshot of the store.

Not redacted by default: an export is a faithful copy that 'ftlstate import'
can restore, so it holds every var, including passwords and tokens. Use
--redact for a copy to review or share: values under keys that look secret
(password, passwd, passphrase, secret, token, private_key, api_key,
credential; any case, at any depth) become "<redacted>".

With -o FILE the file is written atomically (temp file, fsync, rename) with
mode 0600 (an existing file keeps its mode).`,
		Example: `  ftlstate export > state.json
  ftlstate export -o review.json --redact`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := a.openBackend(a.statePath, true)
			if err != nil {
				return err
			}
			defer b.Close()
			opts := &export.Options{Redact: redact}
			if file == "" || file == "-" {
				return export.Write(a.stdout, b, opts)
			}
			var total int
			if err := b.View(func(s state.Snapshot) error { h, r := s.Len(); total = h + r; return nil }); err != nil {
				return err
			}
			bar := a.progress(int64(total), "export")
			opts.Progress = func(int) { bar.Add(1) }
			err = atomicfile.Write(file, nil, func(w io.Writer) error { return export.Write(w, b, opts) })
			bar.Finish()
			if err != nil {
				return fmt.Errorf("export to %s: %w", file, err)
			}
			note := ""
			if !redact {
				note = " (not redacted: it holds every var; --redact for review)"
			}
			fmt.Fprintf(a.stderr, "exported %d records to %s%s\n", total, file, note)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "output", "o", "", "write to FILE instead of stdout")
	cmd.Flags().BoolVar(&redact, "redact", false, "replace secret-looking values with \"<redacted>\" (for review)")
	return cmd
}

func (a *app) importCommand() *cobra.Command {
	var force, noBackup bool
	cmd := &cobra.Command{
		Use:   "import FILE [--force]",
		Short: "Replace the store's contents with a state.json, atomically (keeps PATH.backup)",
		Long: `import reads a state.json (the documented format, e.g. from 'ftlstate export'),
validates all of it, and then replaces everything the store holds with it in
one atomic, durable write: all or nothing. Errors name the line, column and
JSON path of the problem (hosts.web01.port: must be 0..65535).

Like Terraform's 'state push' it refuses a document from another store
(different lineage), an older copy (lower serial), a document without lineage
into a store that is not empty, and a redacted export (it would replace
secrets with "<redacted>"), unless --force. FILE "-" reads stdin.

The store as it was is kept in PATH.backup unless --no-backup.`,
		Example: `  ftlstate import state.json
  ftlstate --state prod.db import old-copy.json --force`,
		Args: exactArgs(1, "FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.readStateFile(args[0])
			if err != nil {
				return err
			}
			if !force && export.HasRedacted(c) {
				return fmt.Errorf("%s: holds %q values (a redacted export): importing it would overwrite secrets; use --force to import anyway", args[0], export.Redacted)
			}
			return a.destructive(noBackup, func(st *state.State, keepBackup func() error) error {
				// Refuse a conflicting document before the backup, so a
				// refused import leaves the previous backup alone.
				if err := st.CheckReplace(c, force); err != nil {
					var ce *state.ConflictError
					if errors.As(err, &ce) {
						return fmt.Errorf("%s: import of %s refused: %s; use --force to import anyway", a.statePath, args[0], ce.Reason)
					}
					return err
				}
				if err := keepBackup(); err != nil {
					return err
				}
				if err := st.Replace(c, force); err != nil {
					return fmt.Errorf("%s: %w", a.statePath, err)
				}
				h, r := st.Len()
				fmt.Fprintf(a.stderr, "imported %s into %s: %d hosts, %d resources, serial %d\n", args[0], a.statePath, h, r, st.Metadata().Serial)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "import even from another store, an older copy or a redacted export")
	cmd.Flags().BoolVar(&noBackup, "no-backup", false, "do not keep PATH.backup")
	return cmd
}

// readStateFile reads and validates a state.json file ("-" for stdin),
// with a progress bar over its bytes.
func (a *app) readStateFile(name string) (*state.Contents, error) {
	var r io.Reader = os.Stdin
	var size int64 = -1
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		r = f
	}
	bar := a.progress(size, "read "+name)
	pr := progressbar.NewReader(r, bar)
	c, err := export.Read(&pr, nil)
	bar.Finish()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

func (a *app) diffCommand() *cobra.Command {
	var out format
	var opts export.DiffOptions
	var exitCode bool
	cmd := &cobra.Command{
		Use:   "diff A B [-o json]",
		Short: "Show what changed from state A to state B (stores or state.json files)",
		Long: `diff compares two states, each a store (bbolt) or a state.json file (an
export, or a JSON store): hosts and resources added (+), removed (-) and
changed (~), field by field, in a deterministic order.

Timestamps and metadata (serial, lineage) are left out unless --timestamps and
--metadata. Exit status 0 whether or not they differ; with --exit-code, 1 when
they differ (like git diff).`,
		Example: `  ftlstate diff state.db.backup state.db
  ftlstate diff before.json after.json -o json`,
		Args: exactArgs(2, "A", "B"),
		RunE: func(_ *cobra.Command, args []string) error {
			var res *export.Result
			err := a.viewPath(args[0], func(sa state.Snapshot) error {
				return a.viewPath(args[1], func(sb state.Snapshot) error {
					var err error
					res, err = export.Diff(snapViewer{sa}, snapViewer{sb}, &opts)
					return err
				})
			})
			if err != nil {
				return err
			}
			if out == formatJSON {
				err = res.WriteJSON(a.stdout)
			} else {
				err = res.WriteText(a.stdout)
			}
			if err != nil {
				return err
			}
			if exitCode && !res.Empty() {
				return exitError{exitFail}
			}
			return nil
		},
	}
	addFormatFlag(cmd, &out)
	cmd.Flags().BoolVar(&opts.Timestamps, "timestamps", false, "also report created_at/updated_at changes")
	cmd.Flags().BoolVar(&opts.Metadata, "metadata", false, "also report metadata changes (version, serial, lineage)")
	cmd.Flags().BoolVar(&opts.Redact, "redact", false, "show secret-looking values as \"<redacted>\"")
	cmd.Flags().BoolVar(&exitCode, "exit-code", false, "exit 1 when the states differ")
	return cmd
}

// snapViewer offers an open snapshot as a Viewer.
type snapViewer struct{ s state.Snapshot }

func (v snapViewer) View(fn func(state.Snapshot) error) error { return fn(v.s) }

func (a *app) inventoryCommand() *cobra.Command {
	var list, redact bool
	var host string
	cmd := &cobra.Command{
		Use:   "inventory --list | --host NAME",
		Short: "Ansible dynamic inventory: the store's hosts, groups and vars",
		Long: `inventory speaks Ansible's dynamic inventory script protocol. --list prints every
group ({"hosts": [...], "vars": {}}), "all" with its children, and
_meta.hostvars: per host ansible_host (address), ansible_port, ansible_user and
the host's vars. --host NAME prints one host's vars. Hosts without a group are
in "ungrouped"; group names are made valid for Ansible (other characters
become "_").

Use it from Ansible with a two-line executable script:

  #!/bin/sh
  exec ftlstate --state /path/to/state.db inventory "$@"

  ansible-inventory -i ./ftlstate-inventory.sh --graph`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			if list == (host != "") {
				return usageErrorf("inventory needs exactly one of --list and --host NAME")
			}
			b, err := a.openBackend(a.statePath, true)
			if err != nil {
				return err
			}
			defer b.Close()
			opts := &export.Options{Redact: redact}
			if list {
				return export.WriteInventoryList(a.stdout, b, opts)
			}
			return export.WriteInventoryHost(a.stdout, b, host, opts)
		},
	}
	cmd.Flags().BoolVar(&list, "list", false, "print the whole inventory")
	cmd.Flags().StringVar(&host, "host", "", "print the vars of one host")
	cmd.Flags().BoolVar(&redact, "redact", false, "replace secret-looking vars with \"<redacted>\"")
	cmd.RegisterFlagCompletionFunc("host", a.completeHosts)
	return cmd
}
