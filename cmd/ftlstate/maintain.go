package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/state"
)

// checkReport is what check prints with -o json.
type checkReport struct {
	Store     string          `json:"store"`
	OK        bool            `json:"ok"`
	Hosts     int             `json:"hosts"`
	Resources int             `json:"resources"`
	Serial    uint64          `json:"serial"`
	Lineage   string          `json:"lineage"`
	Problems  []string        `json:"problems"`
	StaleLock *state.LockInfo `json:"stale_lock,omitempty"`
	// Pending lists the pending operations; Attention counts those no
	// running process can finish (see pendingFinding).
	Pending   []pendingFinding `json:"pending"`
	Attention int              `json:"attention"`
	// Holder is the store's live lock holder, when check could see one.
	Holder *state.LockInfo `json:"holder,omitempty"`
	// Lock is who holds an etcd store's lock, and its lease.
	Lock *lockReport `json:"lock,omitempty"`
	// Quick is set by --quick: the records were not checked.
	Quick bool `json:"quick,omitempty"`
	// Log describes the changes a bbolt store's write-ahead log holds
	// that its file does not (a writer stopped without closing it).
	Log *logReport `json:"log,omitempty"`
}

// logReport is what check says of a bbolt store's write-ahead log.
type logReport struct {
	Path    string `json:"path"`
	Bytes   int64  `json:"bytes"`
	Commits int    `json:"commits"`
	Changes int    `json:"changes"`
	// Torn is set when its last record was cut short (the write in
	// flight when the writer stopped), and is left out.
	Torn bool `json:"torn,omitempty"`
}

// boltLog reports the write-ahead log of b when it is a bbolt store
// whose log holds changes its file lacks, or a torn record.
func boltLog(b state.Backend) *logReport {
	bb, ok := b.(*boltbackend.Backend)
	if !ok {
		return nil
	}
	ls := bb.Log()
	if ls.Records == 0 && !ls.Torn {
		return nil
	}
	return &logReport{Path: ls.Path, Bytes: ls.Bytes, Commits: ls.Records, Changes: ls.Changes, Torn: ls.Torn}
}

// lockReport describes the lock of an etcd store.
type lockReport struct {
	Held bool `json:"held"`
	// Holder is what the holder wrote about itself; HolderGone says it
	// is a process of this host that no longer runs (its lease holds the
	// lock until it expires).
	Holder     *state.LockInfo `json:"holder,omitempty"`
	HolderGone bool            `json:"holder_gone,omitempty"`
	// LeaseExpiresWithin bounds, in seconds, how long the lease lives if
	// it is not renewed; LeaseTTL is its time to live as granted.
	LeaseExpiresWithin int64 `json:"lease_expires_within_seconds,omitempty"`
	LeaseTTL           int64 `json:"lease_ttl_seconds,omitempty"`
}

// etcdLock reads the lock of b when it is an etcd store.
func etcdLock(b state.Backend) (*lockReport, error) {
	eb, ok := b.(*etcdbackend.Backend)
	if !ok {
		return nil, nil
	}
	st, err := eb.Lock()
	if err != nil {
		return nil, err
	}
	return &lockReport{Held: st.Held, Holder: st.Holder, HolderGone: st.Gone,
		LeaseExpiresWithin: int64(st.Expires / time.Second), LeaseTTL: int64(st.TTL / time.Second)}, nil
}

// String says who holds the lock, one line.
func (l *lockReport) String() string {
	if !l.Held {
		return "free"
	}
	lease := ""
	if l.LeaseExpiresWithin > 0 {
		lease = fmt.Sprintf("its lease (TTL %ds) expires within %ds unless renewed", l.LeaseTTL, l.LeaseExpiresWithin)
	}
	switch {
	case l.Holder == nil:
		return "held by a holder that left no lock info; " + lease
	case l.HolderGone && lease != "":
		return fmt.Sprintf("held by pid %d's lease, which expires within %ds (pid %d on host %s is gone)", l.Holder.PID, l.LeaseExpiresWithin, l.Holder.PID, l.Holder.Host)
	case lease != "":
		return "held by " + l.Holder.String() + "; " + lease
	}
	return "held by " + l.Holder.String()
}

func (a *app) checkCommand() *cobra.Command {
	var out format
	var quick bool
	cmd := &cobra.Command{
		Use:   "check [--quick]",
		Short: "Check the store's integrity (after a crash, before a run); exit 1 on findings",
		Long: `check verifies the store: for bbolt, bbolt's own page consistency check, that
every record decodes and is valid, that the type index matches the records and
the counters match; for a JSON store, that the file parses and every record is
valid; for etcd, that every record decodes and no stray key lies under the
prefix. It also reports lock info left by a process that died holding the store
(harmless: the kernel released the lock, the next writer takes over), and for
etcd who holds the lock and how long its lease has left if not renewed.

Pending operations (see 'ftlstate pending') that began before the store's
current lock holder took the lock, or while nothing holds it, need attention:
the process that began them is gone, and the provider may or may not have
done what they describe. The next run's reconcile settles them.

The integrity check reads the file itself, so it needs a store no process
holds for writing. --quick skips it: it only opens the store and reads its
metadata, counts and pending operations; on a store in use it asks the
running holder (through its socket), like the other read commands.

Exit status 0 when the store is sound and no pending operation needs
attention, 1 with the findings when not.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			rep := checkReport{Store: a.statePath, Problems: []string{}, Quick: quick}
			var b state.Backend
			var err error
			if quick {
				b, err = a.openBackend(a.statePath, true)
			} else {
				b, err = a.openFile(a.statePath)
			}
			if kind, _ := storeKindOf(a.statePath); errors.Is(err, state.ErrCorrupt) && kind == kindBolt {
				// Open refuses a bbolt store whose pages or counters are
				// damaged; opened for inspection, Check lists everything.
				if ib, ierr := boltbackend.Open(a.statePath, &boltbackend.Options{Inspect: true, Timeout: a.lockTimeout}); ierr == nil {
					b, err = ib, nil
				}
			}
			if err != nil {
				return err
			}
			defer b.Close()
			// --quick: opening checked the layout and the metadata; the
			// records are not read.
			var cerr error
			if !quick {
				cerr = state.Check(b)
			}
			if err := cerr; err != nil {
				var ce *state.CheckError
				if errors.As(err, &ce) {
					for _, p := range ce.Problems {
						rep.Problems = append(rep.Problems, oneLine(p.String()))
					}
					if ce.More > 0 {
						rep.Problems = append(rep.Problems, fmt.Sprintf("and %d more", ce.More))
					}
				} else {
					rep.Problems = append(rep.Problems, oneLine(err.Error()))
				}
			}
			rep.Holder = lockHolder(b)
			err = b.View(func(s state.Snapshot) error {
				rep.Hosts, rep.Resources = s.Len()
				m := s.Metadata()
				rep.Serial, rep.Lineage = m.Serial, m.Lineage
				var err error
				rep.Pending, err = pendingFindings(s, rep.Holder)
				return err
			})
			for _, f := range rep.Pending {
				if f.Attention {
					rep.Attention++
				}
			}
			if err != nil {
				rep.Problems = append(rep.Problems, oneLine(err.Error()))
			}
			rep.StaleLock = state.StaleLock(b)
			rep.Log = boltLog(b)
			if rep.Lock, err = etcdLock(b); err != nil {
				rep.Problems = append(rep.Problems, oneLine(err.Error()))
			}
			rep.OK = len(rep.Problems) == 0 && rep.Attention == 0
			if out != formatTable {
				if err := writeData(a.stdout, out, rep); err != nil {
					return err
				}
			} else {
				if rep.StaleLock != nil {
					fmt.Fprintf(a.stdout, "note: %s: lock info left by %s, which is gone (a crash or kill); the lock is free\n", a.statePath, rep.StaleLock)
				}
				if rep.Lock != nil {
					fmt.Fprintf(a.stdout, "lock: %s: %s\n", a.statePath, rep.Lock)
				}
				if l := rep.Log; l != nil && l.Commits > 0 {
					fmt.Fprintf(a.stdout, "note: %s: its write-ahead log %s holds %d changes in %d commits (%d bytes) that the file does not (the writer stopped without closing the store); they are part of the store, and the next open for writing applies them\n",
						a.statePath, l.Path, l.Changes, l.Commits, l.Bytes)
				}
				if l := rep.Log; l != nil && l.Torn {
					fmt.Fprintf(a.stdout, "note: %s: the last record of %s was cut short (a commit in flight when the writer stopped, never acknowledged); it is left out\n", a.statePath, l.Path)
				}
				for _, p := range rep.Problems {
					fmt.Fprintf(a.stdout, "problem: %s\n", p)
				}
				for _, f := range rep.Pending {
					if f.Attention {
						fmt.Fprintln(a.stdout, attentionLine(a.statePath, f.Operation, rep.Holder))
					}
				}
				inFlight := ""
				if n := len(rep.Pending) - rep.Attention; n > 0 {
					inFlight = fmt.Sprintf(", %d pending operation(s) in flight in %s", n, rep.Holder)
				}
				switch {
				case rep.OK:
					note := ""
					if quick {
						note = " (quick: records not checked)"
					}
					fmt.Fprintf(a.stdout, "ok: %s: %d hosts, %d resources%s, serial %d%s\n", a.statePath, rep.Hosts, rep.Resources, inFlight, rep.Serial, note)
				case len(rep.Problems) == 0:
					fmt.Fprintf(a.stdout, "%s: sound; %d pending operation(s) need attention%s\n", a.statePath, rep.Attention, inFlight)
				default:
					fmt.Fprintf(a.stdout, "%s: %d problem(s) found, %d pending operation(s) need attention\n", a.statePath, len(rep.Problems), rep.Attention)
				}
			}
			if !rep.OK {
				return exitError{exitFail}
			}
			return nil
		},
	}
	a.addFormatFlag(cmd, &out, formatTable, formatJSON, formatYAML)
	cmd.Flags().BoolVar(&quick, "quick", false, "only open the store and read its metadata, counts and pending operations (reads a store in use from its running holder)")
	return cmd
}

func (a *app) compactCommand() *cobra.Command {
	var noBackup, dryRun bool
	cmd := &cobra.Command{
		Use:   "compact",
		Short: "Rewrite a bbolt store without its free pages (bbolt files never shrink); keeps a backup",
		Long: `compact copies the live data of a bbolt store into a new file, atomically, and
puts it in the store's place: bbolt files never shrink after deletes, this
returns the space. The original is kept as a backup (see 'ftlstate backups')
unless --no-backup. On any failure the store is left as it was. --dry-run
says what it would do and writes nothing.

JSON stores are rewritten whole on every change and need no compaction.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			path := a.statePath
			kind, err := storeKindOf(path)
			if err != nil {
				return err
			}
			switch kind {
			case kindJSON:
				fmt.Fprintf(a.stderr, "%s: a JSON store is rewritten whole on every change; nothing to compact\n", path)
				return nil
			case kindEtcd:
				fmt.Fprintf(a.stderr, "%s: etcd keeps its own history; compact and defragment the cluster with etcdctl (compaction, defrag)\n", path)
				return nil
			}
			if path == "" {
				_, err := a.openBackend(path, true)
				return err
			}
			if _, err := os.Stat(path); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("%s: no such store (--state, $FTLSTATE_PATH)", path)
				}
				return err
			}
			if dryRun {
				fi, err := os.Stat(path)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "dry run: would compact %s (%s) into a new file and keep the original as a backup; nothing written\n", path, humanBytes(fi.Size()))
				return nil
			}
			b, err := boltbackend.Open(path, &boltbackend.Options{Timeout: a.lockTimeout})
			if err != nil {
				return err
			}
			defer b.Close()
			before, err := os.Stat(path)
			if err != nil {
				return err
			}
			bar := a.progress(-1, "compact "+path+" (copying its live records)", "records")
			// The library replaces the store's real file (symbolic links
			// resolved, its owner and mode kept); the original, locked by
			// us and unchanged, becomes the backup (a hard link: exact and
			// free). Writers waiting for the lock find the new file.
			if !noBackup && a.keepBackups > 0 {
				dst, err := a.newBackup(path, b.CompactInPlace)
				bar.Finish()
				if err != nil {
					return fmt.Errorf("%w (use --no-backup to go on without a backup of %s)", err, dst)
				}
				fmt.Fprintf(a.stderr, "backup of the previous state: %s\n", dst)
			} else {
				err := b.CompactInPlace("")
				bar.Finish()
				if err != nil {
					return err
				}
			}
			after, err := os.Stat(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "compacted %s: %s -> %s\n", path, humanBytes(before.Size()), humanBytes(after.Size()))
			return nil
		},
	}
	cmd.Flags().BoolVar(&noBackup, "no-backup", false, "do not keep a backup of the store as it was")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be done and write nothing")
	return cmd
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
