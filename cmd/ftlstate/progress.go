package main

import (
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress returns a progress bar on stderr for long work (import,
// export to a file, compact, restore, demo) when stderr is a terminal,
// and a silent one otherwise (scripts, CI). unit is "bytes" (shown as
// MB, MB/s) or what is counted ("records"). total -1 means unknown: a
// spinner with the elapsed time, redrawn every 100 ms by the bar itself,
// so that it moves while a single long step (one transaction) runs.
func (a *app) progress(total int64, desc, unit string) *progressbar.ProgressBar {
	if !a.isTerminal {
		return progressbar.DefaultSilent(total, desc)
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionThrottle(65 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		// Drawn at once, so that the spinner's own ticker redraws it.
		progressbar.OptionSetRenderBlankState(true),
	}
	if unit == "bytes" {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit))
	}
	if total < 0 {
		opts = append(opts, progressbar.OptionSpinnerType(14))
	}
	return progressbar.NewOptions64(total, opts...)
}
