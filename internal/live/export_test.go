package live

import "time"

// SetWriteIdle sets how long a server waits for a client to read, and
// returns the function that restores it.
func SetWriteIdle(d time.Duration) (restore func()) {
	old := writeIdle
	writeIdle = d
	return func() { writeIdle = old }
}
