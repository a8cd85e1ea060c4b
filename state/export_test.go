package state

import "time"

// SetClock makes s take the time of its writes from now. Call it before
// s is used.
func SetClock(s *State, now func() time.Time) { s.now = now }
