package state_test

import (
	"fmt"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

// cloud is a provider whose create is idempotent by client token, as most
// cloud APIs offer (AWS ClientToken, GCP requestId, Azure's PUT by name).
type cloud struct{ byToken map[string]string }

func (c *cloud) Create(token string) string {
	if id, ok := c.byToken[token]; ok {
		return id
	}
	id := fmt.Sprint(40000000 + len(c.byToken))
	c.byToken[token] = id
	return id
}

func (c *cloud) FindByToken(token string) (id string, ok bool) {
	id, ok = c.byToken[token]
	return id, ok
}

// recordInstance is what a finished create records: the instance and its
// host, in the commit that removes the operation.
func recordInstance(name, id string) func(tx *state.Tx) error {
	return func(tx *state.Tx) error {
		if err := tx.AddResource("linode:"+id, &state.ResourceState{Type: "linode", ID: id, Name: name}); err != nil {
			return err
		}
		return tx.AddHost(&state.HostState{Name: name, Address: "192.0.2.10", Vars: map[string]any{"instance": "linode:" + id}})
	}
}

// provision creates the instance of host name: begin (durable before the
// cloud is called), create, finish.
func provision(st *state.State, c *cloud, name string, crashAfterCreate bool) error {
	op, err := st.BeginOperation(&state.Operation{
		Action: state.ActionCreate, Resource: "linode:" + name, Host: name,
		Data: map[string]any{"token": "tok-" + name},
	})
	if err != nil {
		return err
	}
	id := c.Create(op.Data["token"].(string))
	if crashAfterCreate {
		return nil // killed here: the cloud has the instance, the store only the intent
	}
	return st.FinishOperation(op.ID, recordInstance(name, id))
}

// reconcile settles what an earlier run left in flight, before new work:
// adopt the instance the cloud made, or make it now with the same token.
func reconcile(st *state.State, c *cloud) error {
	for _, op := range st.PendingOperations() {
		token := op.Data["token"].(string)
		id, found := c.FindByToken(token)
		if found {
			fmt.Printf("adopt %s: instance %s\n", op.Host, id)
		} else {
			id = c.Create(token)
			fmt.Printf("re-create %s: instance %s\n", op.Host, id)
		}
		if err := st.FinishOperation(op.ID, recordInstance(op.Host, id)); err != nil {
			return err
		}
	}
	return nil
}

func ExampleState_BeginOperation() {
	st, err := state.Open(statetest.NewMemory()) // boltbackend.Open("state.db", nil) in production
	if err != nil {
		panic(err)
	}
	defer st.Close()
	c := &cloud{byToken: map[string]string{}}

	// Run 1: web01 is provisioned; the run dies right after the cloud
	// created web02.
	if err := provision(st, c, "web01", false); err != nil {
		panic(err)
	}
	if err := provision(st, c, "web02", true); err != nil {
		panic(err)
	}
	fmt.Println("pending after the crash:", len(st.PendingOperations()))

	// Run 2 reconciles first: web02's instance is adopted, not made twice.
	if err := reconcile(st, c); err != nil {
		panic(err)
	}
	hosts, resources := st.Len()
	fmt.Printf("cloud instances %d, store: %d hosts, %d resources, %d pending\n", len(c.byToken), hosts, resources, len(st.PendingOperations()))
	// Output:
	// pending after the crash: 1
	// adopt web02: instance 40000001
	// cloud instances 2, store: 2 hosts, 2 resources, 0 pending
}
