package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError marks an error in how the command was called (exit 2). Usage
// errors are told from failures by this type alone, never by their text.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitError carries an exit status without a message of its own (the
// command already printed what it found, e.g. diff or check).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// app holds what every command shares: the writers and the global flags.
type app struct {
	// stdout is buffered (out); run flushes it, and a failed write of it
	// is a failure (exit 1). stderr is not buffered.
	stdout, stderr io.Writer
	out            *bufio.Writer
	// statePath is --state; lockTimeout is --lock-timeout; keepBackups is
	// --keep-backups.
	statePath   string
	lockTimeout time.Duration
	keepBackups int
	// etcd holds the --etcd-* flags.
	etcd etcdOptions
	// noColor is --no-color; noHeaders is --no-headers; showSecrets is
	// --show-secrets (of the commands that have them).
	noColor, noHeaders, showSecrets bool
	// isTerminal reports whether stderr is a terminal (progress bars);
	// stdoutTerminal whether stdout is (colours, the export warning).
	isTerminal, stdoutTerminal bool
}

// newApp returns an app writing to stdout and stderr.
func newApp(stdout, stderr io.Writer) *app {
	out := bufio.NewWriterSize(stdout, 64<<10)
	return &app{stdout: out, out: out, stderr: stderr, isTerminal: isTerminal(stderr), stdoutTerminal: isTerminal(stdout)}
}

// run runs ftlstate with args and returns the exit status. It is main
// without the process: tests call it in-process.
func run(args []string, stdout, stderr io.Writer) int {
	return newApp(stdout, stderr).run(args)
}

func (a *app) run(args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if ferr := a.out.Flush(); ferr != nil && err == nil {
		err = fmt.Errorf("writing the output: %w", ferr)
	}
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(a.stderr, "ftlstate: "+a.message(err))
	var ue usageError
	if errors.As(err, &ue) {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	}
	return exitFail
}

// message renders err as the one line the operator sees: the file and the
// problem, with advice where there is some.
func (a *app) message(err error) string {
	var le *state.LockError
	if errors.As(err, &le) {
		msg := le.Error()
		if a.lockTimeout == 0 {
			msg += "; " + lockAdvice(le)
		}
		return oneLine(msg)
	}
	msg := trimPackage(err.Error())
	if advice := etcdAdvice(err); advice != "" {
		msg += "; " + advice
	}
	return oneLine(msg)
}

// trimPackage drops the Go package prefix backends put on their errors
// ("boltbackend: state.db: ..."): the operator needs the file and the
// problem, not where in the code it was found.
func trimPackage(msg string) string {
	for _, p := range []string{"boltbackend: ", "filebackend: ", "etcdbackend: ", "export: ", "live: ", "state: load: ", "state: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "ftlstate",
		Short: "Inspect and manage ftlstate stores (the state of Go-FTL2 automation)",
		Long: `ftlstate manages the state store of Go-FTL2-style automation: the hosts and
cloud resources a run created, kept durably so the next run knows what exists.

The store is chosen with --state (default $FTLSTATE_PATH, else ./state.db):
etcd://host:port[,host:port...]/prefix is a shared store on an etcd cluster
(etcds:// for TLS; --etcd-cacert, --etcd-cert, --etcd-key, --etcd-user and
--etcd-password, or $FTLSTATE_ETCD_* and etcdctl's $ETCDCTL_*, for a secured
cluster); a file is read by what it holds (a bbolt store or a state.json
document), and a new one is created as state.json when the path ends in
.json, else as an embedded bbolt store.

Data goes to stdout, messages to stderr. Exit status: 0 success, 1 failure,
2 usage error.`,
		Version:       versionLine(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          subcommandArgs,
		RunE:          groupRun,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := requiredFlags(cmd); err != nil {
				return err
			}
			if a.lockTimeout < 0 {
				return usageErrorf("--lock-timeout %s: must not be negative (0 fails at once when the store is locked)", a.lockTimeout)
			}
			if a.keepBackups < 0 {
				return usageErrorf("--keep-backups %d: must not be negative", a.keepBackups)
			}
			// The lock-info record names the command, not only the program.
			lockinfo.SetCommand(cmd.CommandPath())
			return nil
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	def := os.Getenv("FTLSTATE_PATH")
	if def == "" {
		def = "state.db"
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.statePath, "state", def, "the store: a file (bbolt or state.json, told by its content; a new one is state.json when the name ends in .json) or etcd://host:port[,...]/prefix (etcds:// for TLS); default $FTLSTATE_PATH, else ./state.db")
	pf.DurationVar(&a.lockTimeout, "lock-timeout", 0, "how long to wait for a store locked by another process, and for an etcd cluster to answer (0: fail at once when locked)")
	a.etcd.addFlags(pf)
	pf.IntVar(&a.keepBackups, "keep-backups", defaultKeepBackups, "how many timestamped backups (PATH.<unix>.backup) destructive commands keep")
	pf.BoolVar(&a.noColor, "no-color", false, "no colours, even on a terminal (also: NO_COLOR=1)")
	root.AddCommand(
		a.hostsCommand(), a.hostCommand(),
		a.resourcesCommand(), a.resourceCommand(),
		a.exportCommand(), a.importCommand(), a.diffCommand(),
		a.inventoryCommand(),
		a.backupsCommand(), a.restoreCommand(), a.salvageCommand(),
		a.pendingCommand(),
		a.checkCommand(), a.compactCommand(), a.watchCommand(),
		a.demoCommand(), a.benchCommand(), a.versionCommand(),
	)
	return root
}

// groupRun runs a command that only groups subcommands: without
// arguments it prints its help (subcommandArgs refuses any argument).
func groupRun(cmd *cobra.Command, args []string) error {
	return cmd.Help()
}

// subcommandArgs refuses an unknown subcommand of a command that groups
// subcommands, suggesting the nearest ones (cobra's own suggestions).
func subcommandArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + quoteList(s, " or ") + "?"
	}
	return usageError{errors.New(msg)}
}

func quoteList(s []string, last string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + last + q[len(q)-1]
}

// requiredFlags checks the flags marked required (MarkFlagRequired) and
// reports a missing one as a usage error, before cobra's own untyped check.
func requiredFlags(cmd *cobra.Command) error {
	var missing []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if req, ok := f.Annotations[cobra.BashCompOneRequiredFlag]; ok && len(req) > 0 && req[0] == "true" && !f.Changed {
			missing = append(missing, "--"+f.Name)
		}
	})
	if len(missing) > 0 {
		return usageErrorf("%s needs %s", cmd.CommandPath(), strings.Join(missing, " and "))
	}
	return nil
}

// Argument validators that report usage errors (exit 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

func exactArgs(n int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s needs %s, got %d argument(s)", cmd.CommandPath(), strings.Join(names, " and "), len(args))
		}
		return nil
	}
}

func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageErrorf("%s needs %s", cmd.CommandPath(), what)
		}
		return nil
	}
}

func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageErrorf("%s takes at most %s, got %d argument(s)", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}
