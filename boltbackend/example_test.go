package boltbackend_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/state"
)

func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.db")

	b, err := boltbackend.Open(path, nil) // creates the store
	if err != nil {
		panic(err)
	}
	st, err := state.Open(b) // st.Close closes b
	if err != nil {
		panic(err)
	}
	err = st.Update(func(tx *state.Tx) error {
		if err := tx.AddResource("linode:123", &state.ResourceState{Type: "linode", ID: "123"}); err != nil {
			return err
		}
		return tx.AddHost(&state.HostState{Name: "web01", Address: "192.0.2.10", Port: 22, Vars: map[string]any{"http_port": 80}})
	})
	if err != nil {
		panic(err)
	}

	// While st holds the store, another open fails at once.
	_, err = boltbackend.Open(path, nil)
	fmt.Println("second open locked:", errors.Is(err, state.ErrLocked))
	if err := st.Close(); err != nil {
		panic(err)
	}

	// A read-only open for reporting: check the store, then read it.
	ro, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: true})
	if err != nil {
		panic(err)
	}
	defer ro.Close()
	fmt.Println("check:", ro.Check())
	err = ro.View(func(s state.Snapshot) error {
		h, _, err := s.Host("web01")
		if err != nil {
			return err
		}
		fmt.Printf("%s %s:%d http_port=%v (%T)\n", h.Name, h.Address, h.Port, h.Vars["http_port"], h.Vars["http_port"])
		return state.ResourcesOfType(s, "linode", func(key string, r *state.ResourceState) error {
			fmt.Println(key, r.ID)
			return nil
		})
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// second open locked: true
	// check: <nil>
	// web01 192.0.2.10:22 http_port=80 (int64)
	// linode:123 123
}
