// Package lockinfo reads and writes the lock-info record that the local
// backends keep beside a store while they hold its lock (PATH.lock): who
// holds it (pid, host, command line, since when), so that a second process
// can say who is in the way. The record is information, not the lock: the
// lock itself is a kernel file lock (bbolt's on the store, flock on
// PATH.lock for the file backend), released by the kernel when its holder
// dies, so a record left by a killed process never blocks anyone. Such a
// record is reported as stale.
//
// The record holds no secrets: only the command's program name and
// subcommand words are kept, never flag values.
package lockinfo
