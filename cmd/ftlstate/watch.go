package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/internal/live"
	"github.com/go-ftl2/ftlstate/state"
)

func (a *app) watchCommand() *cobra.Command {
	var from uint64
	var out format
	cmd := &cobra.Command{
		Use:   "watch [--from SERIAL] [-o table|json]",
		Short: "Print each commit of a store in use as it happens (until Ctrl-C or the holder closes it)",
		Long: `watch prints the commits of a store as they happen: for each, its serial, its
time and the records it added (+), changed (~) or removed (-).

A local store (bbolt, JSON) is watched through the socket of the process that
holds it open for writing (any program using the library, e.g. a run of the
automation, or 'ftlstate demo'): watch fails when no process holds it. An
etcd store is watched through etcd's own watch.

By default watch starts with the next commit. --from SERIAL starts with the
commit of that serial, if the holder still keeps it in memory (the newest
32768 commits it made) or, on etcd, if etcd has not compacted it away.

watch ends on Ctrl-C (exit 0), when the holder closes the store (it says so;
exit 0), and when the holder goes away or cuts off a watch that fell behind
(exit 1). With -o json it prints one JSON object per commit and line, the
objects of the holder's commit stream:

  {"type":"commit","serial":12,"time":"...","hosts":{"web01":{...}},"resources":{"vm:1":null}}

(a record removed is null; "type":"replaced" is an import that replaced
everything). Values under secret-looking keys are redacted unless
--show-secrets.`,
		Example: `  ftlstate watch
  ftlstate --state prod.db watch --from 1200 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			p := &commitPrinter{a: a, out: out}
			if strings.HasPrefix(a.statePath, etcdScheme) {
				return a.watchEtcd(ctx, from, p)
			}
			return a.watchHolder(ctx, from, p)
		},
	}
	cmd.Flags().Uint64Var(&from, "from", 0, "start with the commit of this serial (default: the next commit)")
	a.addFormatFlag(cmd, &out, formatTable, formatJSON)
	a.addSecretsFlag(cmd)
	return cmd
}

// watchHolder follows the commits of a local store's running holder.
func (a *app) watchHolder(ctx context.Context, from uint64, p *commitPrinter) error {
	path := a.statePath
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: no such store (--state, $FTLSTATE_PATH)", path)
	}
	rb, err := live.Open(path, nil)
	if errors.Is(err, live.ErrNotServed) {
		return fmt.Errorf("%s: no running process holds this store, so there are no commits to watch (watch follows the process that has it open for writing)", path)
	}
	if err != nil {
		return err
	}
	defer rb.Close()
	h := rb.Holder()
	st, err := rb.Follow(ctx, from)
	if err != nil {
		var se *live.StatusError
		if errors.As(err, &se) {
			return fmt.Errorf("%s: %s", path, se.Msg)
		}
		return err
	}
	defer st.Close()
	fmt.Fprintf(a.stderr, "watching %s: the commits of the running holder, %s, from serial %d (Ctrl-C to stop)\n", path, holderName(h), st.From)
	if err := p.header(); err != nil {
		return err
	}
	for {
		c, err := st.Next()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil // Ctrl-C
		case errors.Is(err, live.ErrHolderClosed):
			fmt.Fprintf(a.stderr, "%s: the holder, pid %d, closed the store (%s); watch ends\n", path, h.PID, strings.TrimPrefix(err.Error(), live.ErrHolderClosed.Error()+" "))
			return nil
		case errors.Is(err, live.ErrHolderGone):
			return fmt.Errorf("%s: the holder, pid %d, went away without closing the store (killed?): %v", path, h.PID, err)
		default:
			return fmt.Errorf("%s: %v", path, err)
		}
		if err := p.commit(c); err != nil {
			return err
		}
	}
}

// holderName describes a lock holder in one phrase: "pid 4242 (ftl2 apply)".
func holderName(h state.LockInfo) string {
	s := "pid " + strconv.Itoa(h.PID)
	if h.Command != "" {
		s += " (" + h.Command + ")"
	}
	return s
}

// commitPrinter prints commits as watch does, each as soon as it comes.
type commitPrinter struct {
	a   *app
	out format
}

// header prints the table's header (nothing for json, nor with
// --no-headers).
func (p *commitPrinter) header() error {
	if p.out == formatJSON || p.a.noHeaders {
		return nil
	}
	fmt.Fprintf(p.a.out, "%-8s %-30s %s\n", "SERIAL", "TIME", "CHANGE")
	return p.a.out.Flush()
}

// commit prints c: a line per changed record in a table, one JSON line
// with -o json; secrets redacted unless --show-secrets.
func (p *commitPrinter) commit(c state.Commit) error {
	if !p.a.showSecrets {
		c = redactCommit(c)
	}
	if p.out == formatJSON {
		if err := live.LineOf(c).Encode(p.a.out); err != nil {
			return err
		}
		return p.a.out.Flush()
	}
	var b strings.Builder
	row := func(change string) {
		fmt.Fprintf(&b, "%-8d %-30s %s\n", c.Serial, c.Time.UTC().Format(time.RFC3339Nano), change)
	}
	if c.Replaced {
		row("* everything replaced (an import); read the store again")
	}
	if len(c.Changes) == 0 && !c.Replaced {
		row("(no record changed)")
	}
	for _, ch := range c.Changes {
		switch {
		case ch.Delete():
			row(fmt.Sprintf("- %s %s", ch.Kind, cell(ch.Key)))
		case ch.Kind == state.KindHost:
			h := ch.Host
			detail := cell(orDash(h.Address))
			if g := h.AllGroups(); len(g) > 0 {
				detail += ", group " + cell(strings.Join(g, ","))
			}
			row(fmt.Sprintf("%s host %s (%s)", putMark(h.CreatedAt, h.UpdatedAt), cell(ch.Key), detail))
		case ch.Kind == state.KindResource:
			r := ch.Resource
			row(fmt.Sprintf("%s resource %s (%s %s)", putMark(r.CreatedAt, r.UpdatedAt), cell(ch.Key), cell(r.Type), cell(orDash(r.ID))))
		default:
			op := ch.Operation
			row(fmt.Sprintf("+ operation %s (%s %s)", cell(ch.Key), op.Action, cell(op.Resource)))
		}
	}
	p.a.out.WriteString(b.String())
	return p.a.out.Flush()
}

// redactCommit returns c with its records redacted (export.RedactHost and
// friends).
func redactCommit(c state.Commit) state.Commit {
	out := c
	out.Changes = make([]state.Change, len(c.Changes))
	for i, ch := range c.Changes {
		ch.Host, ch.Resource = export.RedactHost(ch.Host), export.RedactResource(ch.Resource)
		if op := ch.Operation; op != nil {
			op = op.Clone()
			if op.Data != nil {
				op.Data = export.RedactValue(op.Data).(map[string]any)
			}
			ch.Operation = op
		}
		out.Changes[i] = ch
	}
	return out
}

// putMark tells an added record (+, created by this commit) from an
// updated one (~).
func putMark(created, updated time.Time) string {
	if created.Equal(updated) {
		return "+"
	}
	return "~"
}

// watchEtcd follows an etcd store's commits through etcd's own watch.
func (a *app) watchEtcd(ctx context.Context, from uint64, p *commitPrinter) error {
	b, err := a.openBackend(a.statePath, true)
	if err != nil {
		return err
	}
	defer b.Close()
	eb, ok := b.(*etcdbackend.Backend)
	if !ok {
		return fmt.Errorf("%s: not an etcd store", a.statePath)
	}
	var headerErr error
	err = eb.Watch(ctx, from, func(from uint64) {
		fmt.Fprintf(a.stderr, "watching %s through etcd's watch, from serial %d (Ctrl-C to stop)\n", a.statePath, from)
		headerErr = p.header()
	}, func(c state.Commit) error {
		if headerErr != nil {
			return headerErr
		}
		return p.commit(c)
	})
	switch {
	case ctx.Err() != nil:
		return nil // Ctrl-C
	case errors.Is(err, etcdbackend.ErrReleased):
		fmt.Fprintf(a.stderr, "%s; watch ends\n", strings.TrimPrefix(err.Error(), "etcdbackend: "))
		return nil
	}
	return err
}
