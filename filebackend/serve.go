package filebackend

import (
	"github.com/go-ftl2/ftlstate/internal/live"
	"github.com/go-ftl2/ftlstate/state"
)

var _ state.Server = (*Backend)(nil)

// Serve implements state.Server: state.Open calls it with the State that
// holds a read-write Backend, and the Backend serves that State's memory
// read-only on the store's socket (PATH.sock, PATH the file with links resolved; see Live reads in the
// package documentation) until it is closed, recording the socket in the
// lock info. A read-only Backend, or one opened with Options.NoSocket,
// serves nothing.
func (b *Backend) Serve(st *state.State) error {
	if b.readOnly || b.noSocket {
		return nil
	}
	return b.live.Start(st, live.Config{Store: b.path, Backend: "json", Holder: b.holder}, b.lock.Write)
}

// Serving returns the socket where the store is served to other
// processes, or why it is not (nil, nil before a State holds the Backend,
// for read-only Backends and with Options.NoSocket).
func (b *Backend) Serving() (socket string, err error) { return b.live.Status() }
