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
		progressbar.OptionSetElapsedTime(true),
		// Drawn at once, so that the spinner's own ticker redraws it.
		progressbar.OptionSetRenderBlankState(true),
	}
	switch {
	case total < 0:
		// Nothing to count: the description says what and how much.
		opts = append(opts, progressbar.OptionSpinnerType(14))
	case unit == "bytes":
		opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionShowCount())
	default:
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit))
	}
	return progressbar.NewOptions64(total, opts...)
}
