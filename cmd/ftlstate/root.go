package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/state"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError marks an error in how the command was called (exit 2).
type usageError struct{ error }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitError carries an exit status without a message of its own (the
// command already printed what it found, e.g. diff or check).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// app holds what every command shares: the writers and the global flags.
type app struct {
	stdout, stderr io.Writer
	// statePath is --state; lockTimeout is --lock-timeout.
	statePath   string
	lockTimeout time.Duration
	// isTerminal reports whether stderr is a terminal (progress bars).
	isTerminal bool
}

// run runs ftlstate with args and returns the exit status. It is main
// without the process: tests call it in-process.
func run(args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, isTerminal: isTerminal(stderr)}
	root := a.rootCommand()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(stderr, "ftlstate: "+a.message(err))
	if isUsage(err) {
		fmt.Fprintln(stderr, "Run 'ftlstate --help' for usage.")
		return exitUsage
	}
	return exitFail
}

func isUsage(err error) bool {
	var ue usageError
	if errors.As(err, &ue) {
		return true
	}
	// Cobra's own argument and command errors.
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "flag needs an argument", "invalid argument", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// message renders err as the one line the operator sees: the file and the
// problem, with advice where there is some.
func (a *app) message(err error) string {
	var le *state.LockError
	if errors.As(err, &le) {
		msg := le.Error()
		if a.lockTimeout == 0 {
			msg += "; retry with --lock-timeout 30s"
		}
		return oneLine(msg)
	}
	return oneLine(trimPackage(err.Error()))
}

// trimPackage drops the Go package prefix backends put on their errors
// ("boltbackend: state.db: ..."): the operator needs the file and the
// problem, not where in the code it was found.
func trimPackage(msg string) string {
	for _, p := range []string{"boltbackend: ", "filebackend: ", "etcdbackend: ", "state: load: ", "state: "} {
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
a path ending in .json uses the JSON file backend (the documented state.json),
etcd://host:port[,host:port...]/prefix a shared store on an etcd cluster,
anything else the embedded bbolt backend.

Data goes to stdout, messages to stderr. Exit status: 0 success, 1 failure,
2 usage error.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE:          groupRun,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	def := os.Getenv("FTLSTATE_PATH")
	if def == "" {
		def = "state.db"
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.statePath, "state", def, "the store: a .json path (file backend), etcd://host:port[,...]/prefix (etcd), or any other path (bbolt); default $FTLSTATE_PATH, else ./state.db")
	pf.DurationVar(&a.lockTimeout, "lock-timeout", 0, "how long to wait for a store locked by another process (0: fail at once)")
	root.AddCommand(
		a.hostsCommand(), a.hostCommand(),
		a.resourcesCommand(), a.resourceCommand(),
		a.exportCommand(), a.importCommand(), a.diffCommand(),
		a.inventoryCommand(),
		a.checkCommand(), a.compactCommand(),
		a.demoCommand(), a.benchCommand(),
	)
	return root
}

// groupRun runs a command that only groups subcommands: without
// arguments it prints its help; with any, the subcommand is unknown.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
}

// Argument validators that report usage errors (exit 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
		}
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
