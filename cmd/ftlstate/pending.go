package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/internal/lockinfo"
	"github.com/go-ftl2/ftlstate/state"
)

func (a *app) pendingCommand() *cobra.Command {
	var out format
	cmd := &cobra.Command{
		Use:   "pending [-o table|json]",
		Short: "List pending operations: creations (or changes) that were in flight",
		Long: `pending lists the store's pending operations, oldest first: intents that
automation recorded (BeginOperation) before it called a cloud API, and whose
outcome it has not recorded yet (FinishOperation). While a run works, its own
creations in flight are listed; after a crash or a kill, those it left.

The next run reconciles them: it asks the provider for the operation's client
token and adopts what was made, or makes it now. 'ftlstate check' reports the
ones no running process can finish. Remove one with 'ftlstate pending abandon
ID' only when you know it had no effect.

-o table (default): AGE (since it began), ID, ACTION, RESOURCE, HOST, HOLDER
(who began it); json or yaml: the operations as stored (values under
secret-looking keys, such as a client token, redacted unless --show-secrets);
name: one ID a line.`,
		Example: `  ftlstate pending
  ftlstate pending -o json --show-secrets
  ftlstate pending abandon 3f9a1c2e4b5d6071`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			ops, err := a.pendingOperations()
			if err != nil {
				return err
			}
			switch out {
			case formatName:
				for _, op := range ops {
					a.out.WriteString(cell(op.ID))
					a.out.WriteByte('\n')
				}
				return nil
			case formatJSON, formatYAML:
				if !a.showSecrets {
					for i, op := range ops {
						ops[i] = export.RedactOperation(op)
					}
				}
				return writeData(a.stdout, out, ops)
			}
			now := time.Now()
			t := newTable(a.stdout, a.noHeaders, "AGE", "ID", "ACTION", "RESOURCE", "HOST", "HOLDER")
			for _, op := range ops {
				t.row(age(now.Sub(op.StartedAt)), op.ID, op.Action, op.Resource, orDash(op.Host), orDash(op.Holder))
			}
			return t.flush()
		},
	}
	a.addFormatFlag(cmd, &out, formatTable, formatJSON, formatYAML, formatName)
	a.addSecretsFlag(cmd)
	cmd.AddCommand(a.pendingAbandonCommand())
	return cmd
}

// pendingOperations reads the store's pending operations, sorted as
// State.PendingOperations sorts them (by StartedAt, then ID).
func (a *app) pendingOperations() ([]*state.Operation, error) {
	ops := []*state.Operation{}
	err := a.view(func(snap state.Snapshot) error {
		return snap.Operations(func(op *state.Operation) error { ops = append(ops, op); return nil })
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ops, func(x, y *state.Operation) int {
		if c := x.StartedAt.Compare(y.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return ops, nil
}

func (a *app) pendingAbandonCommand() *cobra.Command {
	var noBackup, dryRun bool
	cmd := &cobra.Command{
		Use:   "abandon ID [ID ...]",
		Short: "Remove pending operations known to have had no effect (keeps a backup unless --no-backup)",
		Long: `pending abandon removes the named pending operations in one atomic write: all
of them, or none when one of them is not pending. The store as it was is kept
in a backup (see 'ftlstate backups') unless --no-backup.

Use it only for an operation you know had no effect: the provider has no
instance with its client token, and the creation is no longer wanted.
Otherwise leave it to the next run, whose reconcile adopts what the provider
made: an abandoned operation whose creation did happen leaves an orphan that
nothing tracks.`,
		Example: `  ftlstate pending abandon 3f9a1c2e4b5d6071
  ftlstate pending abandon 3f9a1c2e4b5d6071 --dry-run`,
		Args:              minArgs(1, "at least one ID"),
		ValidArgsFunction: a.completeOperations,
		RunE: func(_ *cobra.Command, args []string) error {
			return a.edit(editOptions{destructive: true, noBackup: noBackup, dryRun: dryRun}, func(e *edit) error {
				var missing []string
				var gone []*state.Operation
				for _, id := range uniq(args) {
					op, _, err := e.operation(id)
					if err != nil && !errors.Is(err, state.ErrCorrupt) {
						return err
					}
					ok, err := e.removeOperation(id)
					if err != nil {
						return err
					}
					if !ok {
						missing = append(missing, id)
						continue
					}
					if op == nil { // unreadable: removed whole
						op = &state.Operation{ID: id, Action: "?", Resource: "?"}
					}
					gone = append(gone, op)
				}
				if len(missing) > 0 {
					return fmt.Errorf("%s: no pending operation %s; nothing removed ('ftlstate pending' lists them)", e.path, quoteList(missing, " or "))
				}
				for _, op := range gone {
					e.note("abandoned operation %s (%s) in %s", op.ID, describeOperation(op), e.path)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&noBackup, "no-backup", false, "do not keep a backup of the store as it was")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would change and write nothing")
	a.addSecretsFlag(cmd)
	return cmd
}

// describeOperation says what op is about: "create linode:web02 for host
// web02".
func describeOperation(op *state.Operation) string {
	s := op.Action + " " + op.Resource
	if op.Host != "" {
		s += " for host " + op.Host
	}
	return s
}

func (a *app) completeOperations(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	var ids []string
	a.view(func(snap state.Snapshot) error {
		return snap.Operations(func(op *state.Operation) error { ids = append(ids, op.ID); return nil })
	})
	return ids, cobra.ShellCompDirectiveNoFileComp
}

// age renders a duration for the AGE column: 45s, 12m, 3h05m, 4d02h.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// lockHolder returns the live holder of the store b's lock, nil when no
// live process holds it (or the backend cannot tell).
func lockHolder(b state.Backend) *state.LockInfo {
	var info *state.LockInfo
	switch bb := b.(type) {
	case *etcdbackend.Backend:
		info, _ = bb.LockHolder()
		return info
	case interface{ Path() string }:
		info, _ = lockinfo.Read(lockinfo.Path(bb.Path()))
	}
	if info == nil || !lockinfo.Alive(info) {
		return nil
	}
	return info
}

// pendingFinding is a pending operation as check reports it.
type pendingFinding struct {
	*state.Operation
	// Attention is set when no running process can finish the operation:
	// it began before the store's current lock holder took the lock, or
	// nobody holds it.
	Attention bool `json:"attention"`
}

// pendingFindings lists the pending operations of snap; holder is the
// store's live lock holder (nil when none).
func pendingFindings(snap state.Snapshot, holder *state.LockInfo) ([]pendingFinding, error) {
	out := []pendingFinding{}
	err := snap.Operations(func(op *state.Operation) error {
		out = append(out, pendingFinding{export.RedactOperation(op), holder == nil || op.StartedAt.Before(holder.Since)})
		return nil
	})
	slices.SortFunc(out, func(x, y pendingFinding) int {
		if c := x.StartedAt.Compare(y.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, err
}

// attentionLine is check's line for a pending operation that needs
// attention.
func attentionLine(path string, op *state.Operation, holder *state.LockInfo) string {
	by := ""
	if op.Holder != "" {
		by = " by " + op.Holder
	}
	why := "nothing holds the store, so no running process can finish it"
	if holder != nil {
		why = "before the store's current lock holder (" + holder.String() + ") took it"
	}
	return fmt.Sprintf("attention: %s: pending operation %s (%s) begun %s%s, %s: its outcome is unknown; the next run's reconcile settles it, or 'ftlstate pending abandon %s' once you know it had no effect",
		path, op.ID, describeOperation(op), timeCell(op.StartedAt), by, why, op.ID)
}
