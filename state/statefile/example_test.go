package statefile_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

func Example() {
	doc := `{
  "metadata": {"version": "1.0", "created_at": "2024-01-15T10:30:00Z", "updated_at": "2024-01-15T10:30:00Z"},
  "hosts": {
    "web01": {"name": "web01", "address": "192.168.1.10", "port": 22, "user": "admin", "vars": {"http_port": 80}}
  }
}`
	c, err := statefile.Decode(strings.NewReader(doc), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	web01 := c.Hosts["web01"]
	fmt.Printf("%s %s:%d http_port=%#v\n", web01.Name, web01.Address, web01.Port, web01.Vars["http_port"])

	c.Hosts["db01"] = &state.HostState{Name: "db01", Address: "192.168.1.20", Port: 5432,
		CreatedAt: time.Date(2024, 1, 15, 10, 35, 0, 0, time.UTC), UpdatedAt: time.Date(2024, 1, 15, 10, 35, 0, 0, time.UTC)}
	delete(c.Hosts, "web01")
	if err := statefile.EncodeContents(os.Stdout, c, nil); err != nil {
		fmt.Println(err)
	}

	_, err = statefile.Decode(strings.NewReader(`{"hosts": {"web01": {"name": "web01", "port": "22"}}}`), nil)
	fmt.Println(err)
	fmt.Println(errors.Is(err, state.ErrCorrupt))
	// Output:
	// web01 192.168.1.10:22 http_port=80
	// {
	//   "metadata": {
	//     "version": "1.0",
	//     "created_at": "2024-01-15T10:30:00Z",
	//     "updated_at": "2024-01-15T10:30:00Z"
	//   },
	//   "hosts": {
	//     "db01": {
	//       "name": "db01",
	//       "address": "192.168.1.20",
	//       "port": 5432,
	//       "user": "",
	//       "created_at": "2024-01-15T10:35:00Z",
	//       "updated_at": "2024-01-15T10:35:00Z"
	//     }
	//   },
	//   "resources": {}
	// }
	// line 1, column 47: hosts.web01.port: must be an integer, not a string
	// true
}
