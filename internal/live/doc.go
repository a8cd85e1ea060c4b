// Package live lets other processes read a store while one process holds
// it for writing: the holder serves a read-only HTTP API on a Unix socket
// beside the store (Serve), and readers use it like a backend (Open) or
// follow its commits (Backend.Follow). bbolt cannot be opened by a second
// process while its writer holds the file lock, and a run holds it for
// hours: so the writer serves, from its memory.
//
// # Layering
//
// The arrows point one way. Package state declares the capability
// (state.Server) and keeps what is served: the State's memory
// (State.View, records immutable, no disk read and no lock a writer
// waits on) and its newest commits (State.Commits). This package renders
// them with the lowest packages that own the formats, state/statefile
// (state.json) and state/ansible (the inventory), and imports nothing
// else of the module but internal/lockinfo. boltbackend and filebackend
// implement state.Server by calling Serve, so any program that opens a
// local store for writing and calls state.Open serves it, not only the
// CLI; the CLI (cmd/ftlstate) uses Open when a store is locked.
//
//	state  <-  state/statefile, state/ansible  <-  internal/live  <-  boltbackend, filebackend  <-  cmd/ftlstate
//
// # API
//
// Every response is a GET (HEAD works too); anything else is refused
// (405), as is a request with a body (413). Documents are the documented
// state.json (see state/statefile), all from one consistent snapshot,
// with its serial in the Ftlstate-Serial header:
//
//	GET /v1/state                    the whole store
//	GET /v1/hosts                    the hosts only ("resources": {})
//	GET /v1/hosts/NAME               one host (404 when absent);
//	GET /v1/hosts?name=NAME          the same, for any name
//	GET /v1/resources                the resources only
//	GET /v1/resources?type=T         the resources of type T
//	GET /v1/resources/KEY            one resource (404 when absent);
//	GET /v1/resources?key=KEY        the same, for any key
//	GET /v1/operations               the pending operations only
//	GET /v1/operations/ID            one pending operation (404 when absent);
//	GET /v1/operations?id=ID         the same, for any ID
//	GET /v1/ansible/list             the Ansible inventory, --list
//	GET /v1/ansible/host/NAME        one host's variables, --host NAME
//	GET /v1/ansible/host?name=NAME   the same, for any name
//	GET /v1/info                     the holder (pid, command, since),
//	                                 metadata, counts, next serial
//	GET /v1/commits[?from=SERIAL]    the commit stream (see Line)
//
// The commit stream is newline-delimited JSON, one Line per commit,
// starting with the commit of serial SERIAL when the holder still keeps
// it (410 when it does not, 400 when SERIAL is ahead of the store), or
// with the next commit; the Ftlstate-From header says which serial that
// is. It ends with a closed line when the holder closes the store, or an
// error line when this follower fell behind and lost its place. From a
// shell:
//
//	curl --unix-socket state.db.sock http://localhost/v1/state
//	curl -N --unix-socket state.db.sock http://localhost/v1/commits
//
// # The socket
//
// The socket is PATH.sock beside the store (PATH as its backend opened
// it), or .ftlstate-HASH.sock in the same directory when PATH's file
// name is longer than 80 bytes (see SocketPath). Its path is recorded in
// the lock info (PATH.lock, "socket"). A socket address holds at most 107
// bytes: a longer path is bound and reached through a descriptor of the
// store's directory (/proc/self/fd/N/NAME), so that the socket never
// leaves the store's directory; from a shell, cd there and use the
// relative name.
//
// # Security
//
// The state holds credentials; the API reads all of them, exactly what
// the file holds, so only those who may read the file may use it:
//
//   - the socket is mode 0600 (bound under a temporary name and made
//     0600 before it listens, then renamed into place);
//   - the server asks the kernel who connected (SO_PEERCRED) and answers
//     only the store file's owner and root: anyone else gets a 403
//     without a byte of theirs read;
//   - the reader trusts a socket only when it is a socket of the store's
//     owner or root, and the kernel says that the process listening on it
//     is the lock holder named in the lock info, running as the owner or
//     root: a socket left by a killed holder (nobody listens, or the lock
//     is free: a reader tries the file first) is never trusted, and the
//     next holder replaces it;
//   - requests are bounded: 16 KiB of headers read within 5 s, no body,
//     32 connections and 4 whole-store renderings at once; a response
//     must be taken by its reader within WriteIdle per write and
//     MaxResponseTime in all, a commit stream within WriteIdle per write;
//   - nothing is written: there is no write endpoint.
//
// # Concurrency
//
// Serving never blocks a commit. A snapshot is State.View: a copy of the
// maps of immutable records, taken under the State's read lock (writers
// wait for it, microseconds per thousand records), and rendered after
// it is released. A commit stream pulls from State.Commits, so a writer
// only appends to a bounded ring; a follower that does not read is cut
// off after WriteIdle, and one that falls further behind than the ring
// is cut off with an error line.
//
// # Caveats
//
// Linux only (SO_PEERCRED, /proc/self/fd); elsewhere Serve fails and
// stores are read as before. A holder in another pid namespace (a
// container) is not trusted: its pid is not the lock info's. A View of
// the whole store fetches it whole (one state.json) and holds it in the
// reader's memory.
package live
