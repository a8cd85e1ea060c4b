package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/state"
)

// Backups.
//
// A destructive command (rm, mv, import, restore, compact) that is about
// to change the store first copies it to PATH.<unix>.backup (like
// terraform.tfstate.<unix>.backup), keeps the newest --keep-backups of
// them (default 10) and removes older ones. It keeps none when it would
// change nothing. PATH.backup, the single backup of earlier versions, is
// listed and restorable but never removed.

// defaultKeepBackups is --keep-backups' default.
const defaultKeepBackups = 10

// backupSuffix ends every backup's name.
const backupSuffix = ".backup"

// legacyBackupPath is the single backup earlier versions kept.
func legacyBackupPath(path string) string { return path + backupSuffix }

// backupFile is one backup of a store.
type backupFile struct {
	Path string `json:"path"`
	// Time is when it was taken (from its name; the file's modification
	// time for the legacy PATH.backup).
	Time time.Time `json:"time"`
	Size int64     `json:"size"`
	// unix and seq order the backups: seq tells apart backups taken in
	// the same second (PATH.<unix>.<seq>.backup).
	unix, seq int64
	legacy    bool
}

// backupName returns the name of backup seq of second unix.
func backupName(path string, unix, seq int64) string {
	if seq == 0 {
		return fmt.Sprintf("%s.%d%s", path, unix, backupSuffix)
	}
	return fmt.Sprintf("%s.%d.%d%s", path, unix, seq, backupSuffix)
}

// parseBackupName returns the unix second and sequence number of name,
// a backup of path; ok is false when name is not one.
func parseBackupName(path, name string) (unix, seq int64, ok bool) {
	mid, ok := strings.CutPrefix(name, path+".")
	if !ok {
		return 0, 0, false
	}
	if mid, ok = strings.CutSuffix(mid, backupSuffix); !ok {
		return 0, 0, false
	}
	u, s, hasSeq := strings.Cut(mid, ".")
	if !allDigits(u) || hasSeq && !allDigits(s) {
		return 0, 0, false
	}
	unix, err := strconv.ParseInt(u, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if hasSeq {
		if seq, err = strconv.ParseInt(s, 10, 64); err != nil || seq == 0 {
			return 0, 0, false
		}
	}
	return unix, seq, true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// listBackups returns the backups of the store at path, oldest first (the
// legacy PATH.backup before all others).
func listBackups(path string) ([]backupFile, error) {
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	base := filepath.Base(path)
	var out []backupFile
	for _, de := range entries {
		name := de.Name()
		if !strings.HasPrefix(name, base+".") || !strings.HasSuffix(name, backupSuffix) || !de.Type().IsRegular() {
			continue
		}
		full := filepath.Join(dir, name)
		info, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		bf := backupFile{Path: full, Size: info.Size()}
		if name == base+backupSuffix {
			bf.legacy, bf.Time, bf.unix = true, info.ModTime().UTC().Truncate(time.Second), -1
		} else if u, s, ok := parseBackupName(base, name); ok {
			bf.unix, bf.seq, bf.Time = u, s, time.Unix(u, 0).UTC()
		} else {
			continue
		}
		out = append(out, bf)
	}
	slices.SortFunc(out, func(x, y backupFile) int {
		if x.unix != y.unix {
			return cmpInt(x.unix, y.unix)
		}
		return cmpInt(x.seq, y.seq)
	})
	return out, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// keepBackup copies the store at path (open through b, and locked by this
// process, so nobody changes it meanwhile) to a new PATH.<unix>.backup,
// atomically, says so on stderr, and removes the oldest backups beyond
// --keep-backups.
func (a *app) keepBackup(b state.Backend, path string) error {
	if _, ok := b.(*etcdbackend.Backend); ok {
		// etcd keeps earlier revisions until it compacts them; there is
		// no file to copy.
		fmt.Fprintf(a.stderr, "note: no backup of an etcd store is kept; 'ftlstate export --file FILE' makes one\n")
		return nil
	}
	if a.keepBackups == 0 {
		return nil
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil // a JSON store not written yet: nothing to keep
	}
	if bb, ok := b.(*boltbackend.Backend); ok {
		// The file alone holds everything only once the write-ahead log
		// is applied to it; b holds the lock, so nothing is logged
		// before the copy.
		if err := bb.Checkpoint(); err != nil {
			return fmt.Errorf("%s: backup: %w (use --no-backup to go on without one)", path, err)
		}
	}
	dst, err := a.newBackup(path, func(dst string) error { return atomicfile.Copy(dst, path) })
	if err != nil {
		return fmt.Errorf("%s: backup to %s: %w (use --no-backup to go on without one)", path, dst, err)
	}
	fmt.Fprintf(a.stderr, "backup of the previous state: %s\n", dst)
	return nil
}

// newBackup makes the next backup of path with write(dst), then prunes.
func (a *app) newBackup(path string, write func(dst string) error) (string, error) {
	now := time.Now().Unix()
	existing, err := listBackups(path)
	if err != nil {
		return "", err
	}
	// The next name sorts after every existing backup, even if the clock
	// went back.
	unix, seq := now, int64(0)
	if n := len(existing); n > 0 && !existing[n-1].legacy && existing[n-1].unix >= now {
		unix, seq = existing[n-1].unix, existing[n-1].seq+1
	}
	dst := backupName(path, unix, seq)
	if _, err := os.Lstat(dst); err == nil {
		return dst, fmt.Errorf("%s exists", dst)
	}
	if err := write(dst); err != nil {
		return dst, err
	}
	a.pruneBackups(path)
	return dst, nil
}

// pruneBackups removes the oldest timestamped backups beyond
// --keep-backups.
func (a *app) pruneBackups(path string) {
	list, err := listBackups(path)
	if err != nil {
		return
	}
	var timed []backupFile
	for _, b := range list {
		if !b.legacy {
			timed = append(timed, b)
		}
	}
	for i := 0; i < len(timed)-a.keepBackups; i++ {
		if err := os.Remove(timed[i].Path); err == nil {
			fmt.Fprintf(a.stderr, "removed old backup %s (--keep-backups %d)\n", timed[i].Path, a.keepBackups)
		}
	}
}

// backupInfo is what backups prints per backup.
type backupInfo struct {
	backupFile
	Kind      string `json:"kind,omitempty"`
	Serial    uint64 `json:"serial"`
	Hosts     int    `json:"hosts"`
	Resources int    `json:"resources"`
	Problem   string `json:"problem,omitempty"`
}

func (a *app) backupsCommand() *cobra.Command {
	var out format
	cmd := &cobra.Command{
		Use:   "backups",
		Short: "List the backups of the store, oldest first ('restore' puts one back)",
		Long: `backups lists the backups destructive commands (host rm, resource rm, mv,
import, restore, compact) kept of the store: PATH.<unix>.backup, oldest
first, with each one's time, size, serial and record counts. The newest
--keep-backups (default 10) are kept. 'ftlstate restore' puts the newest one
back; 'ftlstate restore BACKUP' a given one; 'ftlstate diff BACKUP PATH' shows
what changed since.`,
		Example: `  ftlstate backups
  ftlstate backups -o name | tail -n 1`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			path := a.statePath
			if path == "" {
				_, err := a.openBackend(path, true)
				return err
			}
			if kind, err := storeKindOf(path); err != nil {
				return err
			} else if kind == kindEtcd {
				return fmt.Errorf("%s: no backups are kept of an etcd store; 'ftlstate export --file FILE' makes one", path)
			}
			list, err := listBackups(path)
			if err != nil {
				return err
			}
			if out == formatName {
				for _, b := range list {
					fmt.Fprintln(a.stdout, b.Path)
				}
				return nil
			}
			infos := make([]backupInfo, len(list))
			for i, b := range list {
				infos[i] = a.describeBackup(b)
			}
			if out == formatJSON || out == formatYAML {
				return writeData(a.stdout, out, infos)
			}
			t := newTable(a.stdout, a.noHeaders, "BACKUP", "TIME", "SIZE", "SERIAL", "HOSTS", "RESOURCES", "NOTE")
			for _, b := range infos {
				note := b.Problem
				if b.legacy && note == "" {
					note = "left by an earlier version; kept until removed by hand"
				}
				t.row(b.Path, timeCell(b.Time), humanBytes(b.Size), strconv.FormatUint(b.Serial, 10), strconv.Itoa(b.Hosts), strconv.Itoa(b.Resources), orDash(note))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if len(infos) == 0 {
				fmt.Fprintf(a.stderr, "no backups of %s\n", path)
			}
			return nil
		},
	}
	a.addFormatFlag(cmd, &out, formatTable, formatJSON, formatYAML, formatName)
	return cmd
}

// describeBackup reads a backup's metadata and counts.
func (a *app) describeBackup(b backupFile) backupInfo {
	info := backupInfo{backupFile: b}
	kind, err := storeKindOf(b.Path)
	if err == nil {
		info.Kind = map[storeKind]string{kindBolt: "bbolt", kindJSON: "json"}[kind]
		err = a.viewPath(b.Path, func(s state.Snapshot) error {
			info.Hosts, info.Resources = s.Len()
			info.Serial = s.Metadata().Serial
			return nil
		})
	}
	if err != nil {
		info.Problem = "unreadable: " + oneLine(trimPackage(err.Error()))
	}
	return info
}

func (a *app) restoreCommand() *cobra.Command {
	var o replaceOptions
	cmd := &cobra.Command{
		Use:   "restore [BACKUP]",
		Short: "Replace the store with a backup (the newest by default), keeping a backup of what it replaces",
		Long: `restore replaces everything the store holds with a backup, in one atomic,
durable write: by default the newest of 'ftlstate backups', or BACKUP (any
store or state.json file: a backup, a copy, an export). It is allowed although
the backup is older than the store (that is its purpose), and it keeps a
backup of what it replaces first, so a restore can be undone with another
restore.

It refuses a file from another store (another lineage) and a redacted export
unless --force. With --dry-run it prints what would change and writes
nothing. A store that does not exist yet is created.`,
		Example: `  ftlstate restore
  ftlstate restore state.db.1764151754.backup --dry-run
  ftlstate restore state.db.1764151754.backup`,
		Args:              maxArgs(1, "one BACKUP"),
		ValidArgsFunction: a.completeBackups,
		RunE: func(_ *cobra.Command, args []string) error {
			path := a.statePath
			if path == "" {
				_, err := a.openBackend(path, true)
				return err
			}
			var src string
			if len(args) == 1 {
				src = args[0]
			} else {
				if kind, err := storeKindOf(path); err != nil {
					return err
				} else if kind == kindEtcd {
					return fmt.Errorf("%s: no backups are kept of an etcd store; name the file to restore: ftlstate restore FILE", path)
				}
				list, err := listBackups(path)
				if err != nil {
					return err
				}
				if len(list) == 0 {
					return fmt.Errorf("%s: no backups (PATH.<unix>.backup) to restore; name a file: ftlstate restore FILE", path)
				}
				src = list[len(list)-1].Path
			}
			c, err := a.readSource(src)
			if err != nil {
				return err
			}
			o.restore = true
			return a.replaceStore(o, src, c)
		},
	}
	a.addReplaceFlags(cmd, &o)
	cmd.Flags().BoolVar(&o.force, "force", false, "restore even a file from another store or a redacted export")
	return cmd
}

// completeBackups completes the store's backups.
func (a *app) completeBackups(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	list, _ := listBackups(a.statePath)
	var names []string
	for i := len(list) - 1; i >= 0; i-- {
		if strings.HasPrefix(list[i].Path, toComplete) {
			names = append(names, list[i].Path)
		}
	}
	return names, cobra.ShellCompDirectiveKeepOrder | cobra.ShellCompDirectiveDefault
}
