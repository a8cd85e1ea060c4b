package state

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Checker is implemented by a Backend that can verify its store.
//
// Check reports whether the stored data is intact and consistent, the same
// thing for every backend: every record can be read back and is valid
// (the rules of Normalize), each host is stored under its own name, and
// whatever the backend keeps besides the records (an index by type,
// counters, the storage's own structures, a copy in memory) agrees with
// them. It returns nil, or a *CheckError listing every problem found
// (matching ErrCorrupt). An error that keeps the check from running (the
// Backend is closed, the store is unreachable) is returned as it is.
//
// Check changes nothing. It may run while other methods run; writers may
// wait for it.
type Checker interface {
	Check() error
}

// Check verifies the store b holds: with b's own Check when b is a
// Checker, else with CheckSnapshot on one View of it. See Checker for what
// it reports.
func Check(b Backend) error {
	if c, ok := b.(Checker); ok {
		return c.Check()
	}
	var cerr error
	err := b.View(func(s Snapshot) error {
		cerr = CheckSnapshot(s)
		return nil
	})
	if err != nil {
		return err
	}
	return cerr
}

// LockReporter is implemented by a Backend that can tell who held its
// store's lock last when that holder died holding it (a crash, a kill).
//
// StaleLock returns what the dead holder wrote about itself, as found when
// the Backend was opened, or nil when the previous holder released the
// lock. The result is the caller's. A stale lock needs no repair: every
// commit of the dead holder was durable or not made.
type LockReporter interface {
	StaleLock() *LockInfo
}

// StaleLock returns b's StaleLock when b is a LockReporter, else nil.
func StaleLock(b Backend) *LockInfo {
	if r, ok := b.(LockReporter); ok {
		return r.StaleLock()
	}
	return nil
}

// Server is an optional interface of a Backend that lets other processes
// read the store while this process holds it for writing: boltbackend
// and filebackend serve a read-only API on a Unix socket beside the store
// (see their package documentation). State.Open calls Serve once, after
// it has loaded the store, with the State itself: the backend serves the
// State's memory (State.View) and its commits (State.Commits), so that
// serving costs the store no disk reads and no locks a writer waits for.
// The backend stops serving when it is closed, before it releases its
// lock.
//
// An error from Serve does not fail Open: the store works, and other
// processes find it locked as before; the backend keeps the error for
// its caller (boltbackend.Backend.Serving).
type Server interface {
	Serve(st *State) error
}

// TypeIndex is implemented by a Snapshot that can find the resources of
// one type without reading the others (an index by type).
//
// ResourcesOfType calls fn for every resource whose Type is typ, in key
// order, as Snapshot.Resources does for all of them; its cost is
// proportional to the number of matches.
type TypeIndex interface {
	ResourcesOfType(typ string, fn func(key string, r *ResourceState) error) error
}

// ResourcesOfType calls fn for every resource of s whose Type is typ, in
// key order: with s's index when s is a TypeIndex, else by filtering
// s.Resources. Errors of fn stop the iteration and are returned unchanged.
func ResourcesOfType(s Snapshot, typ string, fn func(key string, r *ResourceState) error) error {
	if ti, ok := s.(TypeIndex); ok {
		return ti.ResourcesOfType(typ, fn)
	}
	return s.Resources(func(key string, r *ResourceState) error {
		if r.Type != typ {
			return nil
		}
		return fn(key, r)
	})
}

// MaxProblems is the most problems a CheckError lists; it counts the rest
// in More.
const MaxProblems = 1000

// Problem is one finding of a check.
type Problem struct {
	// Section is the part of the store the problem is in: a bbolt
	// bucket ("hosts", "resources", "resources_by_type", "operations",
	// "metadata"), the
	// same parts of an etcd prefix or of a state.json document; empty for
	// a problem of the store as a whole.
	Section string
	// Key is the record's key within Section (a host name, a resource
	// key, a metadata key); empty for a problem of the whole section.
	Key string
	// Msg says what is wrong.
	Msg string
}

// String formats p as a CheckError's message shows it:
// `hosts/"web01": message`, `hosts: message`, `"key": message` or
// `message`.
func (p Problem) String() string {
	switch {
	case p.Section == "" && p.Key == "":
		return p.Msg
	case p.Section == "":
		return fmt.Sprintf("%q: %s", p.Key, p.Msg)
	case p.Key == "":
		return p.Section + ": " + p.Msg
	}
	return fmt.Sprintf("%s/%q: %s", p.Section, p.Key, p.Msg)
}

// CheckError is what Check returns when it finds problems: every one of
// them, up to MaxProblems. It matches ErrCorrupt.
//
// It also collects them: a check starts with a CheckError naming the
// store, calls Addf for each finding and returns Err.
type CheckError struct {
	// Path names the store (a file, an etcd prefix).
	Path string
	// Problems are the findings, in the order they were made; at most
	// MaxProblems.
	Problems []Problem
	// More counts the problems found beyond those in Problems.
	More int
}

// Addf records a problem in section (and key) of the store, with a message
// formatted as by fmt.Sprintf.
func (e *CheckError) Addf(section, key, format string, args ...any) {
	if len(e.Problems) >= MaxProblems {
		e.More++
		return
	}
	e.Problems = append(e.Problems, Problem{Section: section, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// Err returns e when it holds a problem, else nil.
func (e *CheckError) Err() error {
	if len(e.Problems) == 0 && e.More == 0 {
		return nil
	}
	return e
}

// Error lists the first ten problems: "PATH: check found 3 problems;
// hosts/"web01": ...; ...".
func (e *CheckError) Error() string {
	n := len(e.Problems) + e.More
	var sb strings.Builder
	if e.Path != "" {
		sb.WriteString(e.Path)
		sb.WriteString(": ")
	}
	fmt.Fprintf(&sb, "check found %d problem", n)
	if n != 1 {
		sb.WriteString("s")
	}
	for i, p := range e.Problems {
		if i == 10 {
			fmt.Fprintf(&sb, "; and %d more", n-10)
			break
		}
		sb.WriteString("; ")
		sb.WriteString(p.String())
	}
	return sb.String()
}

// Unwrap returns ErrCorrupt.
func (e *CheckError) Unwrap() error { return ErrCorrupt }

// CheckSnapshot checks what s shows through the Snapshot methods alone,
// cross-checking them: every record is valid and already normalized
// (Normalize returns it unchanged), each host is stored under its own
// name, Hosts, Resources and Operations iterate in strictly increasing
// byte order of name, key and ID, Host, Resource and Operation return
// what the iterations return, Len
// counts what they yield, and ResourcesOfType yields exactly the
// resources of its type, in order. It returns nil or a *CheckError listing
// every problem; errors of the Snapshot are listed as problems too.
//
// Check uses it for backends that have no check of their own; the
// conformance suite (state/statetest) runs it on every backend.
func CheckSnapshot(s Snapshot) error {
	ce := &CheckError{}
	m := s.Metadata()
	if m.Version == "" {
		ce.Addf("metadata", "version", "empty")
	}
	if m.Lineage == "" {
		ce.Addf("metadata", "lineage", "empty")
	}
	if m.CreatedAt != Timestamp(m.CreatedAt) || m.UpdatedAt != Timestamp(m.UpdatedAt) {
		ce.Addf("metadata", "", "timestamps are not normalized (UTC, no monotonic reading)")
	}

	nh, prev, first := 0, "", true
	err := s.Hosts(func(h *HostState) error {
		nh++
		if h == nil {
			ce.Addf("hosts", "", "Hosts yielded a nil host (after %q)", prev)
			return nil
		}
		if !first && h.Name <= prev {
			ce.Addf("hosts", h.Name, "Hosts yielded it after %q: not in byte order", prev)
		}
		first, prev = false, h.Name
		checkRecord(ce, "hosts", h.Name, h, func() (any, error) { return h.Normalize() })
		got, ok, err := s.Host(h.Name)
		switch {
		case err != nil:
			ce.Addf("hosts", h.Name, "Host: %v", err)
		case !ok || got == nil:
			ce.Addf("hosts", h.Name, "Hosts yields it, Host reports it absent")
		case !reflect.DeepEqual(got, h):
			ce.Addf("hosts", h.Name, "Host returns %+v, Hosts yields %+v", got, h)
		}
		return nil
	})
	if err != nil {
		ce.Addf("hosts", "", "Hosts: %v", err)
	}

	nr, prev, first := 0, "", true
	byType := map[string][]string{}
	err = s.Resources(func(key string, r *ResourceState) error {
		nr++
		if !first && key <= prev {
			ce.Addf("resources", key, "Resources yielded it after %q: not in byte order", prev)
		}
		first, prev = false, key
		if err := ValidateName(key); err != nil {
			ce.Addf("resources", key, "invalid key: %v", err)
		}
		if r == nil {
			ce.Addf("resources", key, "Resources yielded a nil resource")
			return nil
		}
		byType[r.Type] = append(byType[r.Type], key)
		checkRecord(ce, "resources", key, r, func() (any, error) { return r.Normalize() })
		got, ok, err := s.Resource(key)
		switch {
		case err != nil:
			ce.Addf("resources", key, "Resource: %v", err)
		case !ok || got == nil:
			ce.Addf("resources", key, "Resources yields it, Resource reports it absent")
		case !reflect.DeepEqual(got, r):
			ce.Addf("resources", key, "Resource returns %+v, Resources yields %+v", got, r)
		}
		return nil
	})
	if err != nil {
		ce.Addf("resources", "", "Resources: %v", err)
	}

	prev, first = "", true
	err = s.Operations(func(op *Operation) error {
		if op == nil {
			ce.Addf("operations", "", "Operations yielded a nil operation (after %q)", prev)
			return nil
		}
		if !first && op.ID <= prev {
			ce.Addf("operations", op.ID, "Operations yielded it after %q: not in byte order", prev)
		}
		first, prev = false, op.ID
		checkRecord(ce, "operations", op.ID, op, func() (any, error) { return op.Normalize() })
		got, ok, err := s.Operation(op.ID)
		switch {
		case err != nil:
			ce.Addf("operations", op.ID, "Operation: %v", err)
		case !ok || got == nil:
			ce.Addf("operations", op.ID, "Operations yields it, Operation reports it absent")
		case !reflect.DeepEqual(got, op):
			ce.Addf("operations", op.ID, "Operation returns %+v, Operations yields %+v", got, op)
		}
		return nil
	})
	if err != nil {
		ce.Addf("operations", "", "Operations: %v", err)
	}

	if h, r := s.Len(); h != nh || r != nr {
		ce.Addf("", "", "Len reports %d hosts and %d resources, Hosts and Resources yield %d and %d", h, r, nh, nr)
	}
	for typ, want := range byType {
		var got []string
		err := ResourcesOfType(s, typ, func(key string, r *ResourceState) error {
			got = append(got, key)
			if r == nil || r.Type != typ {
				ce.Addf("resources", key, "ResourcesOfType(%q) yielded a resource of another type", typ)
			}
			return nil
		})
		if err != nil {
			ce.Addf("resources", "", "ResourcesOfType(%q): %v", typ, err)
		} else if !slices.Equal(got, want) {
			ce.Addf("resources", "", "ResourcesOfType(%q) yields %q, Resources has %q of that type", typ, got, want)
		}
	}
	return ce.Err()
}

// checkRecord reports a record that is invalid or not in normalized form.
func checkRecord(ce *CheckError, section, key string, rec any, normalize func() (any, error)) {
	n, err := normalize()
	if err != nil {
		ce.Addf(section, key, "invalid record: %v", err)
		return
	}
	if !reflect.DeepEqual(n, rec) {
		ce.Addf(section, key, "record is not in normalized form")
	}
}
