package ansible_test

import (
	"os"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/ansible"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

func ExampleWriteList() {
	st, err := state.Open(statetest.NewMemory())
	if err != nil {
		panic(err)
	}
	defer st.Close()
	st.AddHost(&state.HostState{Name: "web01", Address: "192.0.2.10", Port: 22, Group: "web-servers", Vars: map[string]any{"http_port": 80}})
	st.AddHost(&state.HostState{Name: "db01", Address: "192.0.2.20"})
	if err := ansible.WriteList(os.Stdout, st, nil); err != nil {
		panic(err)
	}
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
	//       "db01"
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
	//       "db01": {
	//         "ansible_host": "192.0.2.20"
	//       },
	//       "web01": {
	//         "ansible_host": "192.0.2.10",
	//         "ansible_port": 22,
	//         "http_port": 80
	//       }
	//     }
	//   }
	// }
}
