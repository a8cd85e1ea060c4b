package layers_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/go-ftl2/ftlstate"

// layer gives each package of the module its layer (see the package
// documentation).
var layer = map[string]int{
	"cmd/ftlstate":                7,
	"cmd/ftlstate/internal/bench": 6,
	"boltbackend":                 5,
	"filebackend":                 5,
	"etcdbackend":                 5,
	"export":                      5,
	"internal/live":               4,
	"state/statefile":             3,
	"state/ansible":               3,
	"state/statetest":             3,
	"internal/record":             3,
	"internal/crashtest":          6,
	"internal/lockinfo":           3,
	"internal/benchkit":           3,
	"state":                       2,
	"inventory":                   1,
	"internal/clone":              0,
	"internal/inflight":           0,
	"internal/atomicfile":         0,
	"internal/simcloud":           0,
	"internal/fuzzseed":           0,
	"internal/testfs":             1,
	"internal/powerfs":            0,
	"internal/etcdtest":           0,
	"internal/etcdproc":           0,
	"internal/boltdamage":         0,
	"internal/wal":                0,
	"internal/layers":             0,
}

// testOnly are the packages that only _test.go files may import.
var testOnly = map[string]bool{
	"state/statetest":     true,
	"internal/crashtest":  true,
	"internal/testfs":     true,
	"internal/powerfs":    true,
	"internal/fuzzseed":   true,
	"internal/etcdtest":   true,
	"internal/etcdproc":   true,
	"internal/boltdamage": true,
}

type pkg struct {
	ImportPath string
	Imports    []string
	Standard   bool
	Module     *struct{ Path string }
}

// list runs go list -json with args and decodes every package it prints.
func list(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("go list needs the go tool: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
	}
	return pkgs
}

func local(path string) (string, bool) {
	if path == module {
		return "", true
	}
	return strings.CutPrefix(path, module+"/")
}

func TestImportsPointDown(t *testing.T) {
	for _, p := range list(t, module+"/...") {
		from, _ := local(p.ImportPath)
		lf, ok := layer[from]
		if !ok {
			t.Errorf("%s is not in the layer table of internal/layers: add it", from)
			continue
		}
		for _, imp := range p.Imports {
			to, ok := local(imp)
			if !ok {
				continue
			}
			if lt, ok := layer[to]; ok && lt >= lf {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must point down", from, lf, to, lt)
			}
			if testOnly[to] && !testOnly[from] {
				t.Errorf("%s imports the test-only package %s outside its tests", from, to)
			}
		}
	}
}

// TestStateAndBoltCompileNoEtcd: a program that imports only state and
// boltbackend compiles bbolt, msgpack and this module's own packages, and
// nothing of etcd, gRPC, the CLI's libraries or testing.
func TestStateAndBoltCompileNoEtcd(t *testing.T) {
	deps := list(t, "-deps", "./testdata/stateandbolt")
	modules := map[string]bool{}
	nonStd := 0
	for _, p := range deps {
		if p.Standard {
			continue
		}
		nonStd++
		if p.Module != nil {
			modules[p.Module.Path] = true
		}
		if rel, ok := local(p.ImportPath); ok && testOnly[rel] {
			t.Errorf("compiles the test-only package %s", rel)
		}
		for _, banned := range []string{"go.etcd.io/etcd", "google.golang.org/grpc", "github.com/spf13/", "github.com/stretchr/", "github.com/schollz/", "go.uber.org/zap", "testing"} {
			if strings.HasPrefix(p.ImportPath, banned) {
				t.Errorf("compiles %s", p.ImportPath)
			}
		}
	}
	want := map[string]bool{module: true, "go.etcd.io/bbolt": true, "github.com/vmihailenco/msgpack/v5": true, "github.com/vmihailenco/tagparser/v2": true, "golang.org/x/sys": true}
	for m := range modules {
		if !want[m] {
			t.Errorf("compiles packages of the module %s", m)
		}
	}
	t.Logf("state+boltbackend: %d packages, %d outside the standard library, from %d modules", len(deps), nonStd, len(modules))
}
