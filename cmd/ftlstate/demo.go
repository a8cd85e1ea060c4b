package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/internal/atomicfile"
	"github.com/go-ftl2/ftlstate/internal/simcloud"
	"github.com/go-ftl2/ftlstate/state"
)

// The demo's files, in the current directory (or --dir).
const (
	demoStore  = "ftlstate-demo.db"
	demoExport = "ftlstate-demo.json"
	// demoCloud is the simulated provider's own state: the instances it
	// made, whatever the store says.
	demoCloud = "ftlstate-demo-cloud.json"
)

// demoGroups are the inventory groups the demo spreads hosts over, and
// demoRegions the regions.
var (
	demoGroups  = []string{"webservers", "databases", "caches"}
	demoRegions = []string{"us-east", "eu-west", "ap-south"}
)

type demoOptions struct {
	hosts, workers int
	dir            string
	// kills is how many runs in a row are killed before one finishes.
	kills int
	// phase is internal: "provision" runs one provisioning run (a child
	// the demo kills).
	phase string
	// apiDelay is the simulated cloud API's mean time per call.
	apiDelay time.Duration
}

func (a *app) demoCommand() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Play provisioning runs killed at random and resumed, against a simulated cloud",
		Long: `demo plays the main job of ftlstate on the embedded bbolt store, in the current
directory (or --dir), against a simulated cloud provider that keeps its own
state (ftlstate-demo-cloud.json: the instances it made, whatever the store
says), creates instances idempotently by client token, finds them by token, and
takes a random time per call.

 1. A provisioning run starts: --workers goroutines provision --hosts hosts.
    For each, a worker records a pending operation with a new client token
    (BeginOperation, durable), asks the cloud to create the instance, then
    records the instance and its host and removes the operation in one atomic
    commit (FinishOperation).
 2. At a random moment the run is killed for real: the process gets SIGKILL,
    with creations in flight. --kills N kills N runs in a row.
 3. The next run first reconciles every pending operation: it asks the cloud
    for the operation's token and adopts the instance if the cloud made it,
    or creates it now (with the same token). Then it provisions the rest.
 4. It compares the cloud's instances with the store (none orphaned, none
    duplicated), checks the store, exports it to ftlstate-demo.json and shows
    the Ansible inventory groups.

An earlier demo's files are replaced.`,
		Example: `  go run ./cmd/ftlstate demo
  ftlstate demo --kills 3
  ftlstate demo --hosts 2000 --workers 64`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.hosts < 2 || o.workers < 1 || o.kills < 0 {
				return usageErrorf("--hosts must be at least 2, --workers at least 1 and --kills at least 0")
			}
			if o.phase == "provision" {
				_, err := a.demoRun(o, func(ev demoEvent) {
					fmt.Fprintf(a.stdout, "%s %s\n", ev.kind, ev.name)
					a.out.Flush() // the parent counts these lines as they come
				})
				if err != nil {
					return err
				}
				// A run that is to be killed and finished first waits for
				// its kill.
				fmt.Fprintf(a.stdout, "%s -\n", evDone)
				a.out.Flush()
				time.Sleep(time.Minute)
				return errors.New("demo: not killed within a minute")
			}
			return a.demo(o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.hosts, "hosts", 1000, "hosts to provision")
	f.IntVar(&o.workers, "workers", 32, "concurrent provisioning workers")
	f.IntVar(&o.kills, "kills", 1, "runs killed with SIGKILL in a row before one finishes")
	f.StringVar(&o.dir, "dir", ".", "directory for the demo's files")
	f.DurationVar(&o.apiDelay, "api-delay", 5*time.Millisecond, "mean time of a simulated cloud API call")
	f.StringVar(&o.phase, "phase", "", "internal: run one phase of the demo")
	f.MarkHidden("phase")
	return cmd
}

func demoHostName(i int) string { return fmt.Sprintf("node-%04d", i) }

// demoKey is the resource key of a host's instance.
func demoKey(name string) string { return "sim:" + name }

// demoEvent is what a run reports: "start N" once (the hosts the store
// holds), "pending N" once (the operations it found to reconcile), then "adopted NAME", "re-created NAME" and
// "provisioned NAME" after each durable finish.
type demoEvent struct {
	kind string
	name string
	// d is the time of the begin and finish commits (provisioned only).
	d time.Duration
}

// The kinds of demoEvent.
const (
	evStart       = "start"
	evPending     = "pending"
	evAdopted     = "adopted"
	evRecreated   = "re-created"
	evProvisioned = "provisioned"
	// evDone: a child that finished (before its kill) waits for it.
	evDone = "done"
)

// demoRun is one provisioning run: it reconciles the pending operations an
// earlier run left, then provisions every host the store does not hold,
// each through begin -> cloud create -> finish. It reports each step to
// report (from several goroutines, one at a time) and returns the store's
// size at its start.
func (a *app) demoRun(o demoOptions, report func(demoEvent)) (startHosts int, err error) {
	path := filepath.Join(o.dir, demoStore)
	b, err := boltbackend.Open(path, &boltbackend.Options{Timeout: 10 * time.Second})
	if err != nil {
		return 0, err
	}
	st, err := state.Open(b)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	cloud, err := simcloud.Open(filepath.Join(o.dir, demoCloud), &simcloud.Options{Latency: o.apiDelay})
	if err != nil {
		return 0, err
	}
	defer cloud.Close()
	startHosts, _ = st.Len()

	var mu sync.Mutex
	say := func(ev demoEvent) {
		mu.Lock()
		defer mu.Unlock()
		report(ev)
	}
	var firstErr atomic.Pointer[error]
	fail := func(err error) { firstErr.CompareAndSwap(nil, &err) }
	parallel := func(n int, fn func(i int) error) {
		jobs := make(chan int)
		var wg sync.WaitGroup
		for range o.workers {
			wg.Go(func() {
				for i := range jobs {
					if err := fn(i); err != nil {
						fail(err)
					}
				}
			})
		}
		for i := range n {
			if firstErr.Load() != nil {
				break
			}
			jobs <- i
		}
		close(jobs)
		wg.Wait()
	}

	// 1. Reconcile what an earlier run left in flight.
	pending := st.PendingOperations()
	say(demoEvent{kind: evStart, name: fmt.Sprint(startHosts)})
	say(demoEvent{kind: evPending, name: fmt.Sprint(len(pending))})
	parallel(len(pending), func(i int) error {
		op := pending[i]
		token, _ := op.Data["client_token"].(string)
		inst, found, err := cloud.FindByToken(token)
		if err != nil {
			return err
		}
		kind := evAdopted
		if !found {
			if inst, err = cloud.Create(token, demoSpec(op.Host)); err != nil {
				return err
			}
			kind = evRecreated
		}
		if err := st.FinishOperation(op.ID, demoRecord(op.Host, inst)); err != nil {
			return err
		}
		say(demoEvent{kind: kind, name: op.Host})
		return nil
	})
	if p := firstErr.Load(); p != nil {
		return startHosts, *p
	}

	// 2. Provision the rest.
	parallel(o.hosts, func(i int) error {
		name := demoHostName(i)
		if st.HasHost(name) { // recorded by an earlier run: it exists
			return nil
		}
		start := time.Now()
		op, err := st.BeginOperation(&state.Operation{
			Action: state.ActionCreate, Resource: demoKey(name), Host: name,
			Data: map[string]any{"client_token": newToken(), "request": demoSpecData(name)},
		})
		if err != nil {
			return err
		}
		begun := time.Since(start)
		inst, err := cloud.Create(op.Data["client_token"].(string), demoSpec(name))
		if err != nil {
			return err
		}
		start = time.Now()
		if err := st.FinishOperation(op.ID, demoRecord(name, inst)); err != nil {
			return err
		}
		say(demoEvent{kind: evProvisioned, name: name, d: begun + time.Since(start)})
		return nil
	})
	if p := firstErr.Load(); p != nil {
		return startHosts, *p
	}
	return startHosts, nil
}

// newToken returns a new client token: each attempt of a run has its own,
// so only the store's pending operation can tell a later run which
// instance is whose.
func newToken() string { return "ftl-" + state.NewOperationID() }

func demoIndex(name string) int {
	var i int
	fmt.Sscanf(name, "node-%d", &i)
	return i
}

func demoSpec(name string) simcloud.Spec {
	return simcloud.Spec{Name: name, Region: demoRegions[demoIndex(name)%len(demoRegions)], Type: "g6-standard-2"}
}

func demoSpecData(name string) map[string]any {
	s := demoSpec(name)
	return map[string]any{"name": s.Name, "region": s.Region, "type": s.Type}
}

// demoRecord stages what a finished create records: the instance and its
// host.
func demoRecord(name string, inst *simcloud.Instance) func(tx *state.Tx) error {
	return func(tx *state.Tx) error {
		err := tx.AddResource(demoKey(name), &state.ResourceState{
			Type: "sim_instance", ID: inst.ID, Name: name,
			Data: map[string]any{"region": inst.Region, "type": inst.Type, "ipv4": []any{inst.IPv4}, "client_token": inst.ClientToken},
			Tags: map[string]string{"demo": "true"},
		})
		if err != nil {
			return err
		}
		return tx.AddHost(&state.HostState{
			Name: name, Address: inst.IPv4, Port: 22, User: "admin",
			Group: demoGroups[demoIndex(name)%len(demoGroups)],
			Vars:  map[string]any{"instance": demoKey(name), "instance_id": inst.ID},
		})
	}
}

// demoTally counts what runs reported.
type demoTally struct {
	pending, adopted, recreated, provisioned int
}

func (t *demoTally) add(kind string, n int) {
	switch kind {
	case evPending:
		t.pending += n
	case evAdopted:
		t.adopted += n
	case evRecreated:
		t.recreated += n
	case evProvisioned:
		t.provisioned += n
	}
}

func (a *app) demo(o demoOptions) error {
	path := filepath.Join(o.dir, demoStore)
	for _, p := range []string{path, path + ".lock", filepath.Join(o.dir, demoExport), filepath.Join(o.dir, demoCloud)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	fmt.Fprintf(a.stderr, "demo: provisioning %d hosts with %d workers into %s; %d run(s) will be killed\n", o.hosts, o.workers, path, o.kills)

	var lines []string
	var total demoTally
	for run := 1; run <= o.kills; run++ {
		t, err := a.demoKilledRun(o, run)
		if err != nil {
			return err
		}
		total.adopted += t.adopted
		total.recreated += t.recreated
		line := fmt.Sprintf("  run %d: killed with SIGKILL at a random moment, after %d hosts were provisioned", run, t.provisioned)
		if run > 1 {
			line = fmt.Sprintf("  run %d: found %d pending operations, settled %d (%d adopted, %d re-created), provisioned %d more hosts, then was killed with SIGKILL",
				run, t.pending, t.adopted+t.recreated, t.adopted, t.recreated, t.provisioned)
		}
		lines = append(lines, line)
	}

	// The last run resumes in this process.
	run := o.kills + 1
	var t demoTally
	var latencies []time.Duration
	bar := a.progress(int64(o.hosts), fmt.Sprintf("run %d (resume)", run), "hosts")
	start := time.Now()
	startHosts, err := a.demoRun(o, func(ev demoEvent) {
		if ev.kind == evStart {
			return
		}
		if ev.kind == evPending {
			n := 0
			fmt.Sscan(ev.name, &n)
			t.add(ev.kind, n)
			return
		}
		t.add(ev.kind, 1)
		if ev.kind == evProvisioned {
			latencies = append(latencies, ev.d)
		}
		bar.Add(1)
	})
	bar.Finish()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	total.adopted += t.adopted
	total.recreated += t.recreated
	if o.kills > 0 {
		lines = append(lines, fmt.Sprintf("  run %d: found %d pending operations, settled all (%d adopted, %d re-created), skipped %d hosts already in the store, provisioned %d in %s",
			run, t.pending, t.adopted, t.recreated, startHosts, t.provisioned, elapsed.Round(time.Millisecond)))
	} else {
		lines = append(lines, fmt.Sprintf("  run 1: provisioned %d hosts in %s", t.provisioned, elapsed.Round(time.Millisecond)))
	}
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		lines = append(lines, fmt.Sprintf("  begin + finish (two durable commits, %d workers): median %s, p99 %s",
			o.workers, latencies[n/2].Round(time.Microsecond), latencies[min(n-1, n*99/100)].Round(time.Microsecond)))
	}

	summary, err := a.demoReport(o, total)
	if err != nil {
		return err
	}
	w := a.stdout
	fmt.Fprintf(w, "\nftlstate demo: %s (embedded bbolt store), cloud %s\n", path, filepath.Join(o.dir, demoCloud))
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	fmt.Fprint(w, summary)
	return nil
}

// demoKilledRun runs one provisioning run as a child process and kills
// it with SIGKILL at a random moment: after a random number of hosts are
// provisioned, and a random part of an API call later, so that creations
// are in flight. It returns what the child reported before it died.
func (a *app) demoKilledRun(o demoOptions, run int) (demoTally, error) {
	var t demoTally
	exe, err := os.Executable()
	if err != nil {
		return t, err
	}
	cmd := exec.Command(exe, "demo", "--phase=provision", "--dir", o.dir,
		"--hosts", fmt.Sprint(o.hosts), "--workers", fmt.Sprint(o.workers), "--api-delay", o.apiDelay.String())
	cmd.Env = append(os.Environ(), "FTLSTATE_DEMO_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return t, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return t, err
	}
	bar := a.progress(int64(o.hosts), fmt.Sprintf("run %d (to be killed)", run), "hosts")
	stored := 0
	target := -1 // provisioned hosts after which the child dies
	killed := false
	kill := func() {
		time.Sleep(rand.N(2*o.apiDelay + 1)) // mid-call
		cmd.Process.Signal(syscall.SIGKILL)
		killed = true
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		kind, arg, _ := strings.Cut(sc.Text(), " ")
		n := 0
		switch kind {
		case evStart:
			fmt.Sscan(arg, &stored)
			bar.Add(stored)
			continue
		case evDone:
			kill()
		case evPending:
			fmt.Sscan(arg, &n)
			t.add(kind, n)
			// The kill comes while hosts are left to provision (at least
			// two workers' worth, when there are that many, so that the
			// next run has work of its own); when none is left, during
			// the reconcile.
			if left := o.hosts - stored - n; left >= 2 {
				target = 1 + rand.IntN(max(left-1-2*o.workers, 1))
			} else {
				kill()
			}
		default:
			t.add(kind, 1)
			bar.Add(1)
			if kind == evProvisioned && t.provisioned >= target && target > 0 {
				kill()
			}
		}
		if killed {
			break
		}
	}
	bar.Finish()
	io.Copy(io.Discard, out)
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); killed && ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return t, nil
	}
	return t, fmt.Errorf("demo: run %d ended before it could be killed (%v): %s", run, err, oneLine(stderr.String()))
}

// demoReport compares the cloud's instances with the store (every host
// has its instance, none orphaned, none duplicated, nothing pending),
// checks the store, exports it to ftlstate-demo.json and renders the
// Ansible inventory; it returns the summary lines.
func (a *app) demoReport(o demoOptions, total demoTally) (string, error) {
	path := filepath.Join(o.dir, demoStore)
	cloud, err := simcloud.Open(filepath.Join(o.dir, demoCloud), nil)
	if err != nil {
		return "", err
	}
	instances, err := cloud.Instances()
	cloud.Close()
	if err != nil {
		return "", err
	}
	b, err := boltbackend.Open(path, &boltbackend.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		return "", err
	}
	defer b.Close()
	if err := b.Check(); err != nil {
		return "", err
	}
	var hosts, resources, pending int
	var meta state.Metadata
	recorded := map[string]string{} // instance ID -> resource key
	err = b.View(func(s state.Snapshot) error {
		hosts, resources = s.Len()
		meta = s.Metadata()
		if err := s.Operations(func(*state.Operation) error { pending++; return nil }); err != nil {
			return err
		}
		if err := s.Resources(func(key string, r *state.ResourceState) error { recorded[r.ID] = key; return nil }); err != nil {
			return err
		}
		for i := range o.hosts {
			name := demoHostName(i)
			h, ok, err := s.Host(name)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("demo: host %s missing after the last run", name)
			}
			key, _ := h.Vars["instance"].(string)
			if r, ok, err := s.Resource(key); err != nil || !ok || r.ID != h.Vars["instance_id"] {
				return fmt.Errorf("demo: host %s has no instance %s: the finish was not atomic (%v)", h.Name, key, err)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	perName := map[string]int{}
	orphaned := 0
	for _, inst := range instances {
		perName[inst.Name]++
		if _, ok := recorded[inst.ID]; !ok {
			orphaned++
		}
	}
	duplicated := 0
	for _, n := range perName {
		duplicated += n - 1
	}
	if orphaned > 0 || duplicated > 0 || pending > 0 || hosts != o.hosts || resources != o.hosts || len(instances) != o.hosts {
		return "", fmt.Errorf("demo: %d instances in the cloud, %d hosts and %d resources in the store, %d pending, %d orphaned, %d duplicated; want %d, %d, %d, 0, 0, 0",
			len(instances), hosts, resources, pending, orphaned, duplicated, o.hosts, o.hosts, o.hosts)
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
	slices.Sort(groups)

	var s strings.Builder
	fmt.Fprintf(&s, "  cloud: %d instances; store: %d hosts, %d resources, 0 pending; orphaned 0, duplicated 0\n", len(instances), hosts, resources)
	fmt.Fprintf(&s, "  operations adopted %d, re-created %d: instances made by killed runs were found by token, not made twice\n", total.adopted, total.recreated)
	fmt.Fprintf(&s, "  store check ok (serial %d)\n", meta.Serial)
	fmt.Fprintf(&s, "  export: %s\n", jsonPath)
	fmt.Fprintf(&s, "  ansible inventory groups: %s\n", strings.Join(groups, ", "))
	fmt.Fprintf(&s, "\nnext: ftlstate --state %s hosts | head; ftlstate --state %s inventory --list\n", path, path)
	return s.String(), nil
}
