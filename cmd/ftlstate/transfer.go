package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
)

func (a *app) exportCommand() *cobra.Command {
	var file, output string
	var redact bool
	fileFormat := formatFlag{f: export.FormatState}
	cmd := &cobra.Command{
		Use:   "export [--file FILE] [--format state|ftl2] [--redact]",
		Short: "Write the store as the documented state.json, or an ftl2 state file (stdout, or a file atomically)",
		Long: `export writes the store as the documented state.json: deterministic (the same
content gives the same bytes), sorted, two-space indented, from one consistent
snapshot of the store.

Not redacted by default: an export is a faithful copy that 'ftlstate import'
can restore, so it holds every var, including passwords and tokens (on a
terminal, a line on stderr says so). Use --redact for a copy to review or
share: values under keys that look secret (password, passwd, passphrase,
secret, token, private_key, api_key, credential; any case, at any depth)
become "<redacted>".

With --file FILE (-f) the file is written atomically (temp file, fsync,
rename) with mode 0600 (an existing file keeps its mode). FILE may not be the
store itself, its lock file or one of its backups. A character device or a
named pipe (/dev/stdout, a FIFO) is written to as it is, never replaced.

-o is the output format, json (state.json is JSON). For one release, an -o
value that is not a format name still names the file, with a warning.

--format ftl2 writes the .ftl2-state.json of the Python ftl2 instead (also
JSON): its hosts connect to the same address, port and user, in the same
groups, as 'ftlstate inventory' says (see "Coming from Python ftl2" in the
README). Pending operations are not in it: ftl2 has none.`,
		Example: `  ftlstate export > state.json
  ftlstate export --file review.json --redact
  ftlstate export --format ftl2 --file .ftl2-state.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("output") {
				switch {
				case output == string(formatJSON):
				case isFormatName(output):
					return usageErrorf("export writes state.json, which is JSON: -o json, not %q (--file FILE names a file)", output)
				case file != "":
					return usageErrorf("export: -o %s and --file %s: give the file once, with --file", output, file)
				default:
					fmt.Fprintf(a.stderr, "warning: 'export -o FILE' is deprecated and goes in the next release; use 'export --file %s' (-o is the output format)\n", output)
					file = output
				}
			}
			b, err := a.openBackend(a.statePath, true)
			if err != nil {
				return err
			}
			defer b.Close()
			opts := &export.Options{Redact: redact}
			writeTo := exportWriter(fileFormat.f)
			if err := a.noteUnexported(b, fileFormat.f); err != nil {
				return err
			}
			if file == "" || file == "-" {
				if a.stdoutTerminal && !redact {
					fmt.Fprintln(a.stderr, "note: this export holds every var, secrets included (--redact for a copy to share)")
				}
				return writeTo(a.stdout, b, opts)
			}
			direct, err := a.checkExportTarget(file)
			if err != nil {
				return err
			}
			var total int
			if err := b.View(func(s state.Snapshot) error { h, r := s.Len(); total = h + r; return nil }); err != nil {
				return err
			}
			bar := a.progress(int64(total), "export", "records")
			opts.Progress = func(int) { bar.Add(1) }
			write := func(w io.Writer) error { return writeTo(w, b, opts) }
			if direct {
				err = writeDirect(file, write)
			} else {
				err = atomicfile.Write(file, nil, write)
			}
			bar.Finish()
			if err != nil {
				return fmt.Errorf("export to %s: %w", file, err)
			}
			note := ""
			if !redact {
				note = " (not redacted: it holds every var; --redact for review)"
			}
			if fileFormat.f == export.FormatFTL2 {
				note = " as an ftl2 state file" + note
			}
			fmt.Fprintf(a.stderr, "exported %d records to %s%s\n", total, file, note)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "write to FILE (atomically) instead of stdout")
	cmd.Flags().StringVarP(&output, "output", "o", "json", "output format: json (deprecated for one release: a file name)")
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.Flags().BoolVar(&redact, "redact", false, "replace secret-looking values with \"<redacted>\" (for review)")
	addFileFormatFlag(cmd, &fileFormat, "the file format: state (the documented state.json) or ftl2 (the Python ftl2's .ftl2-state.json)")
	return cmd
}

// checkExportTarget refuses an export target that is the store itself
// (the same file, by inode: a link or another name of it), its lock file
// or one of its backups, or that is not a file one can write a document
// to. direct reports a character device or named pipe, written to as it
// is instead of replaced.
func (a *app) checkExportTarget(file string) (direct bool, err error) {
	fi, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("export to %s: %w", file, err)
	}
	switch m := fi.Mode(); {
	case m&(fs.ModeCharDevice|fs.ModeNamedPipe) != 0:
		return true, nil
	case !m.IsRegular():
		return false, fmt.Errorf("export to %s: %s; export writes a file", file, describeMode(m))
	}
	path := a.statePath
	if isEtcd(path) {
		return false, nil
	}
	same := func(p string) bool {
		o, err := os.Stat(p)
		return err == nil && os.SameFile(fi, o)
	}
	if same(path) {
		return false, fmt.Errorf("export to %s: that is the store itself (%s); export to another file", file, path)
	}
	if same(lockinfo.Path(path)) {
		return false, fmt.Errorf("export to %s: that is the store's lock file; export to another file", file)
	}
	backups, _ := listBackups(path)
	for _, bk := range backups {
		if same(bk.Path) {
			return false, fmt.Errorf("export to %s: that is a backup of %s ('ftlstate restore' puts it back); export to another file", file, path)
		}
	}
	return false, nil
}

// writeDirect writes to an existing device or pipe without replacing it.
func writeDirect(file string, write func(io.Writer) error) error {
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (a *app) importCommand() *cobra.Command {
	var o replaceOptions
	fileFormat := formatFlag{allowEmpty: true}
	cmd := &cobra.Command{
		Use:   "import FILE [--format ftl2|state] [--force]",
		Short: "Replace the store's contents with a state.json, an ftl2 state file or any store, atomically (keeps a backup)",
		Long: `import reads a state.json (the documented format, e.g. from 'ftlstate export'),
a state file of the Python ftl2 (.ftl2-state.json), or any store (a bbolt
file, a backup, etcd://...), each told apart by its content, validates all of
it, and then replaces everything the store holds with it in one atomic,
durable write: all or nothing. Errors name the line, column and JSON path of
the problem (hosts.web01.port: must be 0..65535).

--format ftl2 or state says how to read FILE. An ftl2 file that ftl2 wrote
over a state.json (a hybrid) is read entry by entry by shape, and a line says
how many of each it found. An ftl2 execution record (from 'ftl2 run
--state-file') is refused.

Like Terraform's 'state push' it refuses a document from another store
(different lineage), an older copy (lower serial), a document without lineage
into a store that is not empty, and a redacted export (it would replace
secrets with "<redacted>"), unless --force ('ftlstate restore' takes an older
backup). FILE "-" reads stdin. A document the store already holds is not
written again.

The store as it was is kept in a backup (see 'ftlstate backups') unless
--no-backup. --dry-run prints what would change and writes nothing.`,
		Example: `  ftlstate import state.json
  ftlstate import state.json --dry-run
  ftlstate --state prod.db import old-copy.json --force
  ftlstate import .ftl2-state.json`,
		Args: exactArgs(1, "FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			if a.statePath == "" {
				_, err := a.openBackend("", true)
				return err
			}
			c, rep, err := a.readSourceAs(args[0], fileFormat.f)
			if err != nil {
				return err
			}
			fmt.Fprint(a.stderr, readNote(args[0], rep))
			o.conflictHint = conflictHint(rep)
			return a.replaceStore(o, args[0], c)
		},
	}
	a.addReplaceFlags(cmd, &o)
	cmd.Flags().BoolVar(&o.force, "force", false, "import even from another store, an older copy or a redacted export")
	addFileFormatFlag(cmd, &fileFormat, "read FILE as this format: state (the documented state.json) or ftl2 (the Python ftl2's); default: by its content")
	return cmd
}

func (a *app) diffCommand() *cobra.Command {
	var out format
	var opts export.DiffOptions
	var exitCode, redact bool
	cmd := &cobra.Command{
		Use:   "diff A B [-o json]",
		Short: "Show what changed from state A to state B (stores, backups or state.json files)",
		Long: `diff compares two states, each a store or a state.json file (an export, a JSON
store, a backup; each is read by its content): hosts, resources and pending
operations added (+), removed (-) and changed (~), field by field, in a
deterministic order;
coloured on a terminal (not with --no-color or NO_COLOR).

Timestamps and metadata (serial, lineage) are left out unless --timestamps and
--metadata. Values under secret-looking keys are shown as "<redacted>" unless
--show-secrets. Exit status 0 whether or not they differ; with --exit-code, 1
when they differ (like git diff).`,
		Example: `  ftlstate diff state.db.1764151754.backup state.db
  ftlstate diff before.json after.json -o json`,
		Args: exactArgs(2, "A", "B"),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Redact = !a.showSecrets
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
			switch out {
			case formatJSON:
				err = res.WriteJSON(a.stdout)
			case formatYAML:
				var buf bytes.Buffer
				if err = res.WriteJSON(&buf); err == nil {
					err = jsonToYAML(a.stdout, buf.Bytes())
				}
			default:
				err = a.writeDiffText(res)
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
	a.addFormatFlag(cmd, &out, formatTable, formatJSON, formatYAML)
	cmd.Flags().BoolVar(&opts.Timestamps, "timestamps", false, "also report created_at/updated_at changes")
	cmd.Flags().BoolVar(&opts.Metadata, "metadata", false, "also report metadata changes (version, serial, lineage)")
	cmd.Flags().BoolVar(&redact, "redact", false, "show secret-looking values as \"<redacted>\" (the default now; see --show-secrets)")
	cmd.Flags().MarkHidden("redact")
	cmd.Flags().BoolVar(&exitCode, "exit-code", false, "exit 1 when the states differ")
	a.addSecretsFlag(cmd)
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
			opts := &export.Options{Redact: redact}
			err := a.view(func(s state.Snapshot) error {
				if list {
					return export.WriteInventoryList(a.stdout, snapViewer{s}, opts)
				}
				if _, ok, err := s.Host(host); err != nil {
					return err
				} else if !ok {
					return fmt.Errorf("%s: no host %q", a.statePath, host)
				}
				return export.WriteInventoryHost(a.stdout, snapViewer{s}, host, opts)
			})
			if rest, ok := strings.CutPrefix(fmt.Sprint(err), "export: inventory: "); ok {
				// The document's problem (two groups Ansible would merge), in
				// the store.
				return fmt.Errorf("%s: %s", a.statePath, rest)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&list, "list", false, "print the whole inventory")
	cmd.Flags().StringVar(&host, "host", "", "print the vars of one host")
	cmd.Flags().BoolVar(&redact, "redact", false, "replace secret-looking vars with \"<redacted>\"")
	cmd.RegisterFlagCompletionFunc("host", a.completeHosts)
	return cmd
}
