package export_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
)

// ExampleReadFTL2 reads a state file of the Python ftl2 and stores it.
func ExampleReadFTL2() {
	file := `{
  "version": 1,
  "created_at": "2026-12-01T18:34:25.973407+00:00",
  "updated_at": "2026-12-01T18:34:26.058585+00:00",
  "hosts": {
    "web01": {
      "ansible_host": "192.0.2.10",
      "ansible_port": 22,
      "groups": ["webservers", "production"],
      "added_at": "2026-12-01T18:34:25.977046+00:00",
      "ansible_user": "admin",
      "http_port": 80
    }
  },
  "resources": {
    "web01": {
      "created_at": "2026-12-01T18:34:26.030015+00:00",
      "provider": "linode",
      "id": 12345678,
      "region": "us-east"
    }
  }
}`
	c, err := export.ReadFTL2(strings.NewReader(file))
	must(err)
	st := open()
	defer st.Close()
	must(st.Replace(c, false))

	h, _ := st.GetHost("web01")
	fmt.Println(h.Name, h.Address, h.Port, h.User, h.AllGroups(), h.Vars)
	r, _ := st.GetResource("web01")
	fmt.Println(r.Type, r.ID, r.Data, r.Tags)
	// Output:
	// web01 192.0.2.10 22 admin [webservers production] map[http_port:80]
	// linode 12345678 map[region:us-east] map[ftl2.id:integer]
}

// ExampleWriteFTL2 writes a store as a state file the Python ftl2 reads.
func ExampleWriteFTL2() {
	st := open()
	defer st.Close()
	must(st.AddHost(&state.HostState{Name: "db01", Address: "192.0.2.20", Port: 5432, User: "postgres",
		Group: "databases", Groups: []string{"production"}}))
	must(st.AddResource("linode:23456789", &state.ResourceState{Type: "linode", ID: "23456789", Name: "db01"}))

	// The times vary from run to run: write them as Python would, but
	// leave them out of the example's output.
	var b strings.Builder
	must(export.WriteFTL2(&b, st, nil))
	for _, line := range strings.Split(b.String(), "\n") {
		if !strings.Contains(line, "_at\"") && !strings.Contains(line, "last_seen") {
			fmt.Fprintln(os.Stdout, line)
		}
	}
	// Output:
	// {
	//   "version": 1,
	//   "hosts": {
	//     "db01": {
	//       "ansible_host": "192.0.2.20",
	//       "ansible_port": 5432,
	//       "groups": [
	//         "databases",
	//         "production"
	//       ],
	//       "ansible_user": "postgres"
	//     }
	//   },
	//   "resources": {
	//     "linode:23456789": {
	//       "provider": "linode",
	//       "id": "23456789",
	//       "ftlstate": {
	//         "name": "db01"
	//       }
	//     }
	//   }
	// }
}
