package bench

import (
	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/internal/benchkit"
	"github.com/go-ftl2/ftlstate/state"
)

// BuildBolt creates the bbolt store path holding hosts 0..hosts-1 and
// resources 0..resources-1 (see benchkit.Fill).
func BuildBolt(path string, hosts, resources int) error {
	b, err := boltbackend.Open(path, nil)
	if err != nil {
		return err
	}
	return benchkit.Build(b, hosts, resources)
}

// BuildFile creates the state.json store path holding the records of c,
// in one Replace (one rewrite of the file).
func BuildFile(path string, c *state.Contents) error {
	b, err := filebackend.Open(path, nil)
	if err != nil {
		return err
	}
	return benchkit.Store(b, c)
}

// OpenBolt opens the bbolt store at path (created if missing) as a State.
func OpenBolt(path string) (*state.State, error) {
	b, err := boltbackend.Open(path, nil)
	if err != nil {
		return nil, err
	}
	return state.Open(b)
}

// OpenFile opens the state.json store at path (created by the first
// write if missing) as a State.
func OpenFile(path string) (*state.State, error) {
	b, err := filebackend.Open(path, nil)
	if err != nil {
		return nil, err
	}
	return state.Open(b)
}
