package live

import (
	"errors"
	"fmt"
	"sync"

	"github.com/go-ftl2/ftlstate/state"
)

// Service is the serving side a local backend keeps: at most one Server,
// started by the backend's state.Server method and stopped by its Close.
// The zero value is ready to use; its methods may be called concurrently.
type Service struct {
	mu sync.Mutex // guards the fields below
	// srv is the server once started; err why it did not start or could
	// not record its socket.
	srv     *Server
	err     error
	stopped bool
}

// Start serves st as cfg says, and records the socket in the lock info:
// record (nil: none) is called with cfg.Holder, Socket set, to rewrite
// it. It fails after Stop and when already serving.
func (sv *Service) Start(st *state.State, cfg Config, record func(state.LockInfo) error) error {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	switch {
	case sv.stopped:
		return fmt.Errorf("live: %s: %w", cfg.Store, state.ErrClosed)
	case sv.srv != nil:
		return fmt.Errorf("live: %s: already serving", cfg.Store)
	}
	srv, err := Serve(st, cfg)
	if err != nil {
		sv.err = err
		return err
	}
	sv.srv = srv
	if record != nil {
		h := cfg.Holder
		h.Socket = srv.Socket()
		if err := record(h); err != nil {
			// Readers fall back to the socket path rule.
			sv.err = fmt.Errorf("live: %s: record the socket in the lock info: %w", cfg.Store, err)
		}
	}
	return nil
}

// Stop stops the server, if any, and prevents a later Start. The backend
// calls it before it releases the store's lock.
func (sv *Service) Stop() error {
	sv.mu.Lock()
	srv := sv.srv
	sv.stopped = true
	sv.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// Status returns the socket served, or why there is none (nil, nil
// before Start).
func (sv *Service) Status() (socket string, err error) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.srv != nil {
		if sv.stopped {
			return "", errors.New("live: stopped")
		}
		return sv.srv.Socket(), sv.err
	}
	return "", sv.err
}
