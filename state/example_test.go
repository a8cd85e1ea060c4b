package state_test

import (
	"fmt"

	"github.com/go-ftl2/ftlstate/inventory"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

// HostConfig is what automation knows about a host it adds during a run.
type HostConfig struct {
	Address string
	Port    int
	User    string
	Group   string
	Vars    map[string]any
}

// addHost mirrors Go-FTL2's AutomationContext.AddHost: the host goes into
// the run's inventory and, together with the cloud resource behind it,
// into the state in one atomic, durable write.
func addHost(inv *inventory.Inventory, st *state.State, name, instanceID string, c HostConfig) error {
	host := &inventory.Host{Name: name, Address: c.Address, Port: c.Port, User: c.User, Vars: c.Vars}
	if err := inv.AddHost(c.Group, host); err != nil {
		return err
	}
	return st.Update(func(tx *state.Tx) error {
		err := tx.AddResource("linode:"+instanceID, &state.ResourceState{
			Type: "linode", ID: instanceID, Name: name,
			Data: map[string]any{"ipv4": []string{c.Address}},
		})
		if err != nil {
			return err
		}
		return tx.AddHost(state.FromInventoryHost(host, c.Group))
	})
}

func Example() {
	st, err := state.Open(statetest.NewMemory()) // boltbackend.Open("state.db", nil) in production
	if err != nil {
		panic(err)
	}
	defer st.Close()

	inv := inventory.New()
	err = addHost(inv, st, "web01", "12345678", HostConfig{
		Address: "192.168.1.10", Port: 22, User: "admin", Group: "webservers",
		Vars: map[string]any{"http_port": 80},
	})
	if err != nil {
		panic(err)
	}

	// The next run starts from a fresh inventory and merges the state in.
	next := inventory.New()
	if err := st.MergeToInventory(next); err != nil {
		panic(err)
	}
	for _, g := range next.Groups() {
		for _, h := range next.Hosts(g) {
			fmt.Printf("%s: %s %s:%d vars=%v\n", g, h.Name, h.Address, h.Port, h.Vars)
		}
	}
	r, _ := st.GetResource("linode:12345678")
	fmt.Println(r.Type, r.ID, r.Data["ipv4"])
	fmt.Println("serial", st.Metadata().Serial)
	// Output:
	// webservers: web01 192.168.1.10:22 vars=map[http_port:80]
	// linode 12345678 [192.168.1.10]
	// serial 1
}
