package export_test

import (
	"fmt"
	"os"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

// open returns a State over a new in-memory store (boltbackend.Open or
// filebackend.Open in production), failing the example on error.
func open() *state.State {
	st, err := state.Open(statetest.NewMemory())
	if err != nil {
		panic(err)
	}
	return st
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func ExampleDiff() {
	before, after := open(), open()
	defer before.Close()
	defer after.Close()

	must(before.AddHost(&state.HostState{Name: "web01", Address: "192.168.1.10", Port: 22, Group: "webservers"}))
	must(before.AddHost(&state.HostState{Name: "web02", Address: "192.168.1.12", Port: 22, Group: "webservers"}))
	must(before.AddResource("linode:1", &state.ResourceState{Type: "linode", ID: "1",
		Data: map[string]any{"ipv4": []any{"192.168.1.10"}, "root_password": "hunter2"}}))

	must(after.AddHost(&state.HostState{Name: "web01", Address: "192.168.1.11", Port: 22, Group: "webservers",
		Vars: map[string]any{"http_port": 8080}}))
	must(after.AddHost(&state.HostState{Name: "web03", Address: "192.168.1.13", Port: 22, Group: "webservers"}))
	must(after.AddResource("linode:1", &state.ResourceState{Type: "linode", ID: "1",
		Data: map[string]any{"ipv4": []any{"192.168.1.11"}, "root_password": "correct horse"}}))

	res, err := export.Diff(before, after, &export.DiffOptions{Redact: true})
	must(err)
	must(res.WriteText(os.Stdout))
	fmt.Printf("%+v\n", res.Summary().Hosts)
	fmt.Println("equal:", res.Empty())
	// Output:
	// ~ hosts.web01.address: "192.168.1.10" -> "192.168.1.11"
	// + hosts.web01.vars.http_port: 8080
	// - hosts.web02
	// + hosts.web03
	// ~ resources.linode:1.data.ipv4.0: "192.168.1.10" -> "192.168.1.11"
	// ~ resources.linode:1.data.root_password: "<redacted>" -> "<redacted>"
	// {Add:1 Change:1 Remove:1}
	// equal: false
}

func ExampleWriteInventoryList() {
	st := open()
	defer st.Close()
	must(st.AddHost(&state.HostState{Name: "web01", Address: "192.168.1.10", Port: 22, User: "admin",
		Group: "web-servers", Vars: map[string]any{"http_port": 80}}))
	must(st.AddHost(&state.HostState{Name: "bastion", Address: "203.0.113.5"}))

	must(export.WriteInventoryList(os.Stdout, st, nil))
	// Output:
	// {
	//   "all": {
	//     "children": [
	//       "ungrouped",
	//       "web_servers"
	//     ]
	//   },
	//   "ungrouped": {
	//     "hosts": [
	//       "bastion"
	//     ],
	//     "vars": {}
	//   },
	//   "web_servers": {
	//     "hosts": [
	//       "web01"
	//     ],
	//     "vars": {}
	//   },
	//   "_meta": {
	//     "hostvars": {
	//       "bastion": {
	//         "ansible_host": "203.0.113.5"
	//       },
	//       "web01": {
	//         "ansible_host": "192.168.1.10",
	//         "ansible_port": 22,
	//         "ansible_user": "admin",
	//         "http_port": 80
	//       }
	//     }
	//   }
	// }
}

func ExampleWriteInventoryHost() {
	st := open()
	defer st.Close()
	must(st.AddHost(&state.HostState{Name: "db01", Address: "192.168.1.20", Port: 5432,
		Group: "dbservers", Vars: map[string]any{"db_password": "hunter2", "replicas": []any{"db02"}}}))

	must(export.WriteInventoryHost(os.Stdout, st, "db01", &export.Options{Redact: true}))
	// Output:
	// {
	//   "ansible_host": "192.168.1.20",
	//   "ansible_port": 5432,
	//   "db_password": "<redacted>",
	//   "replicas": [
	//     "db02"
	//   ]
	// }
}

func ExampleDiffFunc() {
	before, after := open(), open()
	defer before.Close()
	defer after.Close()
	must(before.AddHost(&state.HostState{Name: "web01", Port: 22}))
	must(after.AddHost(&state.HostState{Name: "web01", Port: 2222}))
	must(after.AddHost(&state.HostState{Name: "web02", Port: 22}))

	// Stream the changes instead of collecting them.
	n := 0
	err := export.DiffFunc(before, after, nil, func(c export.Change) error {
		n++
		fmt.Println(c.Op, c.Kind, c.Path)
		return nil
	})
	must(err)
	fmt.Println(n, "changes")
	// Output:
	// change host hosts.web01.port
	// add host hosts.web02
	// 2 changes
}

func ExampleResult_WriteJSON() {
	before, after := open(), open()
	defer before.Close()
	defer after.Close()
	must(before.AddHost(&state.HostState{Name: "web01", Address: "192.168.1.10"}))
	must(after.AddHost(&state.HostState{Name: "web01", Address: "192.168.1.11"}))

	res, err := export.Diff(before, after, nil)
	must(err)
	must(res.WriteJSON(os.Stdout))
	// Output:
	// {
	//   "changes": [
	//     {
	//       "op": "change",
	//       "path": "hosts.web01.address",
	//       "kind": "host",
	//       "key": "web01",
	//       "field": "address",
	//       "old": "192.168.1.10",
	//       "new": "192.168.1.11"
	//     }
	//   ],
	//   "summary": {
	//     "hosts": {
	//       "add": 0,
	//       "change": 1,
	//       "remove": 0
	//     },
	//     "resources": {
	//       "add": 0,
	//       "change": 0,
	//       "remove": 0
	//     },
	//     "operations": {
	//       "add": 0,
	//       "change": 0,
	//       "remove": 0
	//     },
	//     "metadata": {
	//       "add": 0,
	//       "change": 0,
	//       "remove": 0
	//     }
	//   }
	// }
}

func ExampleRedactHost() {
	h := &state.HostState{Name: "db01", Vars: map[string]any{
		"db":       map[string]any{"user": "app", "Password": "hunter2"},
		"api-key":  "abc123",
		"replicas": []any{map[string]any{"host": "db02", "token": "xyz"}},
	}}
	r := export.RedactHost(h)
	fmt.Println(r.Vars)
	fmt.Println(h.Vars["api-key"]) // the input is unchanged
	// Output:
	// map[api-key:<redacted> db:map[Password:<redacted> user:app] replicas:[map[host:db02 token:<redacted>]]]
	// abc123
}

func ExampleAnsibleGroup() {
	for _, g := range []string{"webservers", "", "all", "web-servers", "db.eu", "1st"} {
		name, err := export.AnsibleGroup(g)
		must(err)
		fmt.Printf("%q -> %q\n", g, name)
	}
	// Output:
	// "webservers" -> "webservers"
	// "" -> "ungrouped"
	// "all" -> "ungrouped"
	// "web-servers" -> "web_servers"
	// "db.eu" -> "db_eu"
	// "1st" -> "_1st"
}
