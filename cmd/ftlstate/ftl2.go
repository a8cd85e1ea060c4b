package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
)

// formatFlag is the --format of import and export: a state file format
// (export.Format).
type formatFlag struct {
	f          export.Format
	allowEmpty bool
}

func (v *formatFlag) String() string { return string(v.f) }
func (v *formatFlag) Type() string   { return "ftl2|state" }

func (v *formatFlag) Set(s string) error {
	f, err := export.ParseFormat(s)
	if err != nil || f == "" && !v.allowEmpty {
		return fmt.Errorf("want %s or %s", export.FormatFTL2, export.FormatState)
	}
	v.f = f
	return nil
}

// addFileFormatFlag adds --format to cmd, with completion.
func addFileFormatFlag(cmd *cobra.Command, v *formatFlag, usage string) {
	cmd.Flags().Var(v, "format", usage)
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{string(export.FormatFTL2), string(export.FormatState)}, cobra.ShellCompDirectiveNoFileComp))
}

// exportWriter returns the writer of a state file format.
func exportWriter(f export.Format) func(io.Writer, state.Viewer, *export.Options) error {
	if f == export.FormatFTL2 {
		return export.WriteFTL2
	}
	return export.Write
}

// readNote is the line import prints about a file that is not a plain
// state.json: what it found in it.
func readNote(name string, rep *export.ReadReport) string {
	if rep == nil || rep.Format != export.FormatFTL2 {
		return ""
	}
	return fmt.Sprintf("read %s as %s\n", name, rep)
}

// conflictHint adds to an import's refusal what explains it for an ftl2
// file: it carries no lineage.
func conflictHint(rep *export.ReadReport) string {
	if rep != nil && rep.Format == export.FormatFTL2 && !rep.Hybrid {
		return " (an ftl2 state file carries no lineage)"
	}
	return ""
}

// noteUnexported says, for an export in format f of v, what the format
// cannot hold: an ftl2 file has no pending operations.
func (a *app) noteUnexported(v state.Viewer, f export.Format) error {
	if f != export.FormatFTL2 {
		return nil
	}
	n := 0
	err := v.View(func(s state.Snapshot) error {
		return s.Operations(func(*state.Operation) error { n++; return nil })
	})
	if n > 0 {
		fmt.Fprintf(a.stderr, "note: %d pending operations are not in the ftl2 file (ftl2 has none; 'ftlstate export' keeps them)\n", n)
	}
	return err
}
