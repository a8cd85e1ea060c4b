package etcdbackend_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-ftl2/ftlstate/etcdbackend"
	"github.com/go-ftl2/ftlstate/internal/etcdtest"
	"github.com/go-ftl2/ftlstate/state"
)

func Example() {
	// A real one-member etcd server on loopback, for the example; in
	// production the endpoints are those of your cluster.
	cluster, err := etcdtest.Start(etcdtest.Options{})
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	ctx := context.Background()
	cfg := etcdbackend.Config{Endpoints: cluster.Endpoints(), Prefix: "/ftl/prod"}

	b, err := etcdbackend.Open(ctx, cfg) // creates the store, takes its lock
	if err != nil {
		panic(err)
	}
	st, err := state.Open(b) // st.Close closes b, releasing the lock
	if err != nil {
		panic(err)
	}
	defer st.Close()
	err = st.Update(func(tx *state.Tx) error { // one etcd transaction
		if err := tx.AddResource("linode:123", &state.ResourceState{Type: "linode", ID: "123"}); err != nil {
			return err
		}
		return tx.AddHost(&state.HostState{Name: "web01", Address: "192.0.2.10", Port: 22, Vars: map[string]any{"http_port": 80}})
	})
	if err != nil {
		panic(err)
	}

	// Another controller cannot write while st holds the lock.
	_, err = etcdbackend.Open(ctx, cfg)
	fmt.Println("second writer locked:", errors.Is(err, state.ErrLocked))

	// A read-only open needs no lock: reports work while st writes.
	cfg.ReadOnly = true
	ro, err := etcdbackend.Open(ctx, cfg)
	if err != nil {
		panic(err)
	}
	defer ro.Close()
	err = ro.View(func(s state.Snapshot) error {
		h, _, err := s.Host("web01")
		if err != nil {
			return err
		}
		fmt.Printf("%s %s:%d http_port=%v (%T)\n", h.Name, h.Address, h.Port, h.Vars["http_port"], h.Vars["http_port"])
		fmt.Println("serial", s.Metadata().Serial)
		return state.ResourcesOfType(s, "linode", func(key string, r *state.ResourceState) error {
			fmt.Println(key, r.ID)
			return nil
		})
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// second writer locked: true
	// web01 192.0.2.10:22 http_port=80 (int64)
	// serial 1
	// linode:123 123
}
