package filebackend

import "io"

// Rewrites returns how many rewrites of the file b has attempted.
func Rewrites(b *Backend) int64 { return b.rewrites.Load() }

// QueueLen returns how many commits wait for the next rewrite.
func QueueLen(b *Backend) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// SetFaults installs test seams for the following rewrites: writer wraps
// the temp file's writer, step is called before each step of a rewrite
// ("create", "sync", "close", "rename", "syncdir") and fails it with the
// error it returns. nil removes a seam.
func SetFaults(b *Backend, writer func(io.Writer) io.Writer, step func(string) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hooks = hooks{writer: writer, step: step}
}
