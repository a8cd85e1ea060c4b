package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/state"
)

// The demo's files, in the current directory (or --dir).
const (
	demoStore  = "ftlstate-demo.db"
	demoExport = "ftlstate-demo.json"
)

// demoGroups are the inventory groups the demo spreads hosts over.
var demoGroups = []string{"webservers", "databases", "caches"}

type demoOptions struct {
	hosts, workers int
	dir            string
	// phase is internal: "provision" runs one provisioning run (the child
	// the demo kills).
	phase string
	// apiDelay simulates the cloud API's time to create an instance.
	apiDelay time.Duration
}

func (a *app) demoCommand() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Play a provisioning run that is killed halfway and resumed, on the embedded store",
		Long: `demo plays the main job of ftlstate on the embedded bbolt store, in the current
directory (or --dir):

 1. A provisioning run starts: --workers goroutines create --hosts cloud
    instances (simulated) and record each instance and its host in the state,
    together, in one atomic durable Update.
 2. Halfway, the run is killed for real: the process gets SIGKILL.
 3. A second run resumes: it skips every host the state already records and
    provisions the rest.
 4. It checks that every host has its instance, prints a summary, exports the
    state to ftlstate-demo.json and shows the Ansible inventory groups.

The store is ./ftlstate-demo.db; an earlier demo's files are replaced.`,
		Example: `  go run ./cmd/ftlstate demo
  ftlstate demo --hosts 2000 --workers 64`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.hosts < 2 || o.workers < 1 {
				return usageErrorf("--hosts must be at least 2 and --workers at least 1")
			}
			if o.phase == "provision" {
				return a.demoProvision(o, nil)
			}
			return a.demo(o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.hosts, "hosts", 1000, "hosts to provision")
	f.IntVar(&o.workers, "workers", 32, "concurrent provisioning workers")
	f.StringVar(&o.dir, "dir", ".", "directory for the demo's files")
	f.DurationVar(&o.apiDelay, "api-delay", 5*time.Millisecond, "simulated cloud API time per instance")
	f.StringVar(&o.phase, "phase", "", "internal: run one phase of the demo")
	f.MarkHidden("phase")
	return cmd
}

func demoHostName(i int) string { return fmt.Sprintf("node-%04d", i) }

// demoProvision is one provisioning run: every host not yet in the state is
// "created" and recorded with its instance in one Update. It prints
// "provisioned NAME" after each durable Update; progress, when not nil, is
// called instead. It returns how many hosts it skipped.
func (a *app) demoProvision(o demoOptions, report func(provisioned bool, d time.Duration)) error {
	path := filepath.Join(o.dir, demoStore)
	b, err := boltbackend.Open(path, &boltbackend.Options{Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	st, err := state.Open(b)
	if err != nil {
		return err
	}
	defer st.Close()
	jobs := make(chan int)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	var outMu sync.Mutex
	for range o.workers {
		wg.Go(func() {
			for i := range jobs {
				name := demoHostName(i)
				if st.HasHost(name) { // recorded by an earlier run: already exists
					if report != nil {
						report(false, 0)
					}
					continue
				}
				time.Sleep(o.apiDelay) // the cloud API creating the instance
				id := fmt.Sprint(40000000 + i)
				addr := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
				start := time.Now()
				err := st.Update(func(tx *state.Tx) error {
					err := tx.AddResource("linode:"+id, &state.ResourceState{
						Type: "linode", ID: id, Name: name,
						Data: map[string]any{"region": "us-east", "type": "g6-standard-2", "ipv4": []any{addr}},
						Tags: map[string]string{"demo": "true"},
					})
					if err != nil {
						return err
					}
					return tx.AddHost(&state.HostState{
						Name: name, Address: addr, Port: 22, User: "admin",
						Group: demoGroups[i%len(demoGroups)],
						Vars:  map[string]any{"instance": "linode:" + id},
					})
				})
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				if report != nil {
					report(true, time.Since(start))
				} else {
					outMu.Lock()
					fmt.Fprintf(a.stdout, "provisioned %s\n", name)
					a.out.Flush() // the parent counts these lines as they come
					outMu.Unlock()
				}
			}
		})
	}
	for i := range o.hosts {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (a *app) demo(o demoOptions) error {
	path := filepath.Join(o.dir, demoStore)
	for _, p := range []string{path, path + ".lock", path + ".backup", filepath.Join(o.dir, demoExport)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	fmt.Fprintf(a.stderr, "demo: provisioning %d hosts with %d workers into %s\n", o.hosts, o.workers, path)

	// Run 1, in a child process, killed with SIGKILL halfway.
	recorded, err := a.demoKilledRun(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "demo: run 1 killed with SIGKILL after %d hosts were recorded\n", recorded)

	// Run 2 resumes in this process.
	var skipped, provisioned atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	bar := a.progress(int64(o.hosts), "run 2 (resume)", "hosts")
	start := time.Now()
	err = a.demoProvision(o, func(p bool, d time.Duration) {
		if p {
			provisioned.Add(1)
			mu.Lock()
			latencies = append(latencies, d)
			mu.Unlock()
		} else {
			skipped.Add(1)
		}
		bar.Add(1)
	})
	bar.Finish()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)

	// Check, export, inventory.
	summary, err := a.demoReport(o)
	if err != nil {
		return err
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	w := a.stdout
	fmt.Fprintf(w, "\nftlstate demo: %s (embedded bbolt store)\n", path)
	fmt.Fprintf(w, "  run 1: killed with SIGKILL after recording %d of %d hosts\n", recorded, o.hosts)
	fmt.Fprintf(w, "  run 2: skipped %d hosts already in the state, provisioned %d in %s\n", skipped.Load(), provisioned.Load(), elapsed.Round(time.Millisecond))
	if n := len(latencies); n > 0 {
		fmt.Fprintf(w, "  durable atomic write (instance + host in one Update, %d workers): median %s, p99 %s\n",
			o.workers, latencies[n/2].Round(time.Microsecond), latencies[min(n-1, n*99/100)].Round(time.Microsecond))
	}
	fmt.Fprint(w, summary)
	return nil
}

// demoKilledRun starts run 1 as a child process and kills it with SIGKILL
// once about half the hosts are recorded; it returns how many the child
// reported recorded.
func (a *app) demoKilledRun(o demoOptions) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(exe, "demo", "--phase=provision", "--dir", o.dir,
		"--hosts", fmt.Sprint(o.hosts), "--workers", fmt.Sprint(o.workers), "--api-delay", o.apiDelay.String())
	cmd.Env = append(os.Environ(), "FTLSTATE_DEMO_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	bar := a.progress(int64(o.hosts), "run 1 (to be killed)", "hosts")
	recorded := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "provisioned ") {
			recorded++
			bar.Add(1)
			if recorded >= o.hosts/2 {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
	}
	bar.Finish()
	io.Copy(io.Discard, out)
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return recorded, nil
	}
	return 0, fmt.Errorf("demo: run 1 ended before it could be killed (%v): %s", err, oneLine(stderr.String()))
}

// demoReport checks the demo store (every host has its instance, nothing
// twice), exports it to ftlstate-demo.json and renders the Ansible
// inventory; it returns the summary lines.
func (a *app) demoReport(o demoOptions) (string, error) {
	path := filepath.Join(o.dir, demoStore)
	b, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		return "", err
	}
	defer b.Close()
	if err := b.Check(); err != nil {
		return "", err
	}
	var hosts, resources int
	var meta state.Metadata
	err = b.View(func(s state.Snapshot) error {
		hosts, resources = s.Len()
		meta = s.Metadata()
		for i := range o.hosts {
			h, ok, err := s.Host(demoHostName(i))
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("demo: host %s missing after the resumed run", demoHostName(i))
			}
			key, _ := h.Vars["instance"].(string)
			if _, ok, err := s.Resource(key); err != nil || !ok {
				return fmt.Errorf("demo: host %s has no instance %s: the Update was not atomic (%v)", h.Name, key, err)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if hosts != o.hosts || resources != o.hosts {
		return "", fmt.Errorf("demo: %d hosts and %d resources, want %d of each (a host provisioned twice?)", hosts, resources, o.hosts)
	}

	jsonPath := filepath.Join(o.dir, demoExport)
	bar := a.progress(int64(hosts+resources), "export", "records")
	err = atomicfile.Write(jsonPath, nil, func(w io.Writer) error {
		return export.Write(w, b, &export.Options{Progress: func(int) { bar.Add(1) }})
	})
	bar.Finish()
	if err != nil {
		return "", err
	}
	var inv bytes.Buffer
	if err := export.WriteInventoryList(&inv, b, nil); err != nil {
		return "", err
	}
	var list map[string]struct {
		Hosts []string `json:"hosts"`
	}
	if err := json.Unmarshal(inv.Bytes(), &list); err != nil {
		return "", err
	}
	var groups []string
	for g, v := range list {
		if g != "all" && g != "_meta" && len(v.Hosts) > 0 {
			groups = append(groups, fmt.Sprintf("%s %d", g, len(v.Hosts)))
		}
	}
	sort.Strings(groups)

	var s strings.Builder
	fmt.Fprintf(&s, "  store: %d hosts, %d resources, every host recorded with its instance, check ok (serial %d)\n", hosts, resources, meta.Serial)
	fmt.Fprintf(&s, "  export: %s\n", jsonPath)
	fmt.Fprintf(&s, "  ansible inventory groups: %s\n", strings.Join(groups, ", "))
	fmt.Fprintf(&s, "\nnext: ftlstate --state %s hosts | head; ftlstate --state %s inventory --list\n", path, path)
	return s.String(), nil
}
