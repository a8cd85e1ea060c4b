package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionInfo is what version prints: from the build information Go
// embeds in every binary (debug.ReadBuildInfo).
type versionInfo struct {
	// Version is the module version ("v1.2.3"), or "(devel)" for a build
	// from a checkout.
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from, with
	// "-dirty" when the checkout had local changes; empty when unknown.
	Commit string `json:"commit,omitempty"`
	// CommitTime is the revision's time (RFC 3339), empty when unknown.
	CommitTime string `json:"commit_time,omitempty"`
	Go         string `json:"go"`
	Platform   string `json:"platform"`
}

func readVersion() versionInfo {
	bi, _ := debug.ReadBuildInfo()
	return versionFrom(bi)
}

// versionFrom reads bi (nil when the binary has none).
func versionFrom(bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: "(unknown)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return v
	}
	v.Version = bi.Main.Version
	if v.Version == "" {
		v.Version = "(devel)"
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.CommitTime = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && v.Commit != "" {
		v.Commit += "-dirty"
	}
	return v
}

// versionLine is the one line --version prints.
func versionLine() string {
	v := readVersion()
	s := "ftlstate " + v.Version
	if v.Commit != "" {
		s += ", commit " + v.Commit
		if v.CommitTime != "" {
			s += " (" + v.CommitTime + ")"
		}
	}
	return s + ", " + v.Go + ", " + v.Platform
}

func (a *app) versionCommand() *cobra.Command {
	var out format
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version ftlstate was built with",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if out != formatTable {
				return writeData(a.stdout, out, readVersion())
			}
			_, err := fmt.Fprintln(a.stdout, versionLine())
			return err
		},
	}
	a.addFormatFlag(cmd, &out, formatTable, formatJSON, formatYAML)
	return cmd
}
