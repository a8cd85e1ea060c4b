package main

import (
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress returns a progress bar on stderr for long work (import,
// export to a file, compact, demo) when stderr is a terminal, and a silent
// one otherwise (scripts, CI). total -1 means unknown.
func (a *app) progress(total int64, desc string) *progressbar.ProgressBar {
	if !a.isTerminal {
		return progressbar.DefaultSilent(total, desc)
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("records"),
		progressbar.OptionThrottle(65*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30),
	)
}
