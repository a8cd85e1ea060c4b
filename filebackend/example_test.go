package filebackend_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/go-ftl2/ftlstate/filebackend"
	"github.com/go-ftl2/ftlstate/state"
)

var variable = regexp.MustCompile(`"(created_at|updated_at|lineage)": "[^"]*"`)

func Example() {
	dir, err := os.MkdirTemp("", "filebackend-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.json")

	b, err := filebackend.Open(path, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	st, err := state.Open(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = st.AddHost(&state.HostState{Name: "web01", Address: "192.168.1.10", Port: 22, User: "admin",
		Group: "webservers", Vars: map[string]any{"http_port": 80}})
	if err != nil {
		fmt.Println(err)
		return
	}

	// While it is open, nobody else can open the store for writing.
	_, err = filebackend.Open(path, nil)
	fmt.Println(errors.Is(err, state.ErrLocked))

	if err := st.Close(); err != nil {
		fmt.Println(err)
		return
	}
	fi, _ := os.Stat(path)
	fmt.Println(fi.Mode().Perm())
	data, _ := os.ReadFile(path)
	// Times and the lineage differ from run to run.
	fmt.Print(variable.ReplaceAllString(string(data), `"$1": "…"`))
	// Output:
	// true
	// -rw-------
	// {
	//   "metadata": {
	//     "version": "1.0",
	//     "created_at": "…",
	//     "updated_at": "…",
	//     "serial": 1,
	//     "lineage": "…"
	//   },
	//   "hosts": {
	//     "web01": {
	//       "name": "web01",
	//       "address": "192.168.1.10",
	//       "port": 22,
	//       "user": "admin",
	//       "group": "webservers",
	//       "vars": {
	//         "http_port": 80
	//       },
	//       "created_at": "…",
	//       "updated_at": "…"
	//     }
	//   },
	//   "resources": {}
	// }
}
