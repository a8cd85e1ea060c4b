package crashtest

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-ftl2/ftlstate/internal/simcloud"
	"github.com/go-ftl2/ftlstate/internal/testfs"
	"github.com/go-ftl2/ftlstate/state"
)

var opRounds = flag.Int("crash.ops", 25, "rounds per operations crash test (Operations, OperationsPowerLoss)")

// envCloud names the simulated provider's state file in the child.
const envCloud = "FTLSTATE_CRASHTEST_CLOUD"

// cloudLatency is the provider's mean time per call in the operations
// workload: long enough that kills often land between a create and its
// finish.
const cloudLatency = 2 * time.Millisecond

// OperationStats sums up an operations crash run.
type OperationStats struct {
	Rounds      int
	KilledEarly int // rounds where the child was killed before it finished opening
	// Begun, Finished and Reconciled count the acknowledged begins,
	// finishes, and finishes of an earlier round's operations, checked.
	Begun, Finished, Reconciled int
	// Pending counts the operations found pending after the kills;
	// Unrecorded those of them whose instance the provider had made: the
	// orphans there would be without the journal.
	Pending, Unrecorded int
	// Instances is the number of instances the provider holds at the end,
	// each recorded exactly once.
	Instances int
}

// Operations is the kill -9 harness of pending operations. Each round's
// child first settles the operations the previous round left pending (the
// reconcile of a resuming run: the provider has the token's instance,
// adopt it; it has none, create it with the same token), from one
// goroutine, while 8 writers provision new instances, each through
// BeginOperation (the client token in Data) -> simcloud Create ->
// FinishOperation (the resource and its host in one commit), printing each
// begin and finish once it returned. The parent kills the child at a
// random moment and checks, besides state.Check and a new write:
//
//   - for every instance the provider holds, the store holds exactly one
//     resource or one pending operation naming it (by client token), and
//     every resource names an instance the provider holds: nothing is
//     orphaned, nothing recorded twice;
//   - an operation whose begin was acknowledged is pending or finished
//     (its resource stored), never both, never neither, in this round and
//     every later one; one whose finish was acknowledged stays finished,
//     and so does each acknowledged reconcile.
//
// The provider's file lives outside the store's directory (it is the
// outside world). -crash.ops=N sets the rounds (25 by default, 5 with
// -short). In the child process it never returns.
func Operations(t *testing.T, open Opener) OperationStats { return runOps(t, open, false) }

// OperationsPowerLoss is Operations with power cuts (see PowerLoss): the
// store is written through a powerfs mount and checked as the backing
// directory holds it after the crash; the provider's file is not under
// the mount. It skips t where FUSE cannot be mounted.
func OperationsPowerLoss(t *testing.T, open Opener) OperationStats { return runOps(t, open, true) }

func runOps(t *testing.T, open Opener, power bool) OperationStats {
	if dir := os.Getenv(envDir); dir != "" {
		round, _ := strconv.Atoi(os.Getenv(envRound))
		opsChild(dir, round, os.Getenv(envCloud), open)
		os.Exit(0) // not reached
	}
	n, mode := *opRounds, "operations, kill -9"
	if power {
		mode = "operations, power loss"
		testfs.FUSE(t)
	}
	if testing.Short() && n == 25 {
		n = 5
	}
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	store := t.TempDir()
	cloudPath := filepath.Join(t.TempDir(), "cloud.json")
	t.Setenv(envCloud, cloudPath)
	var mnt string
	if power {
		mnt = filepath.Join(t.TempDir(), "mnt")
		if err := os.Mkdir(mnt, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("crashtest: %s, %d rounds, seed %d (-crash.seed=%d repeats the kill times and crashes), store in %s", mode, n, seed, seed, store)

	var st OperationStats
	m := &opsModel{begun: map[string]string{}, finished: map[string]bool{}}
	for round := 1; round <= n; round++ {
		r := roundPlan{
			round: round,
			early: rng.IntN(8) == 0,
			wait:  time.Duration(rng.Int64N(int64(*maxKill))),
			torn:  rng.IntN(4) != 0 && *torn,
			crash: rng.Uint64(),
		}
		if r.early {
			r.wait = time.Duration(rng.Int64N(int64(earlyKill)))
		}
		acked, early, _ := runRound(t, store, mnt, r)
		if early {
			st.KilledEarly++
		}
		st.Rounds++
		problems := m.verify(&st, store, cloudPath, round, acked, open)
		for _, p := range problems {
			t.Error(p)
		}
		if t.Failed() {
			t.Fatalf("crashtest: round %d failed (-crash.seed=%d); store kept in %s, provider in %s", round, seed, store, cloudPath)
		}
	}
	t.Logf("crashtest: %s, %d rounds: %d acknowledged begins, %d finishes and %d reconciles checked; %d operations pending after the kills, %d of them with their instance made (the orphans the journal prevents); %d instances, each recorded once; %d kills during open",
		mode, st.Rounds, st.Begun, st.Finished, st.Reconciled, st.Pending, st.Unrecorded, st.Instances, st.KilledEarly)
	if st.Begun == 0 || st.Finished == 0 {
		t.Errorf("crashtest: no operation was acknowledged begun and finished in %d rounds: the run proved nothing (seed %d)", st.Rounds, seed)
	}
	return st
}

// The names of the operation k of writer w in round: its ID (also its
// client token), its resource key and its host.
func opID(round, w, k int) string { return fmt.Sprintf("r%d-w%d-op%d", round, w, k) }
func opKey(id string) string      { return "vm:" + id }
func opHost(id string) string     { return "h-" + id }
func tokenOf(data map[string]any) string {
	s, _ := data["client_token"].(string)
	return s
}

// record stages what a finished create records: the instance and its host.
func record(id string, inst *simcloud.Instance) func(tx *state.Tx) error {
	return func(tx *state.Tx) error {
		err := tx.AddResource(opKey(id), &state.ResourceState{Type: "vm", ID: inst.ID, Name: id,
			Data: map[string]any{"client_token": inst.ClientToken, "ipv4": inst.IPv4}})
		if err != nil {
			return err
		}
		return tx.AddHost(&state.HostState{Name: opHost(id), Address: inst.IPv4, Vars: map[string]any{"instance": inst.ID}})
	}
}

// opsChild reconciles what the previous round left pending and provisions
// until it is killed. Writer w acknowledges the begin of its operation k
// as event 2k and its finish as event 2k+1; the reconciler (writer maint)
// acknowledges the finish of the j-th operation it found pending as
// event j.
func opsChild(dir string, round int, cloudPath string, open Opener) {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "crashtest child: "+format+"\n", args...)
		os.Exit(3)
	}
	time.AfterFunc(2*time.Minute, func() { fail("not killed after 2 minutes") })
	c := &worker{dir: dir, open: open}
	if err := c.openStore(); err != nil {
		fail("%v", err)
	}
	cloud, err := simcloud.Open(cloudPath, &simcloud.Options{Latency: cloudLatency})
	if err != nil {
		fail("%v", err)
	}
	st := c.st
	pending := st.PendingOperations()
	var mu sync.Mutex
	say := func(w, i int) {
		mu.Lock()
		defer mu.Unlock()
		os.Stdout.WriteString(fmt.Sprintf("%s %d %d\n", ackTag, w, i))
	}
	mu.Lock()
	os.Stdout.WriteString(readyTag + "\n")
	mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() {
		for j, op := range pending {
			token := tokenOf(op.Data)
			inst, found, err := cloud.FindByToken(token)
			if err == nil && !found {
				inst, err = cloud.Create(token, simcloud.Spec{Name: op.ID})
			}
			if err == nil {
				err = st.FinishOperation(op.ID, record(op.ID, inst))
			}
			if err != nil {
				fail("reconcile %s: %v", op.ID, err)
			}
			say(maint, j)
		}
		select {} // until killed
	})
	for w := range writers {
		wg.Go(func() {
			for k := 0; ; k++ {
				id := opID(round, w, k)
				if _, err := st.BeginOperation(&state.Operation{ID: id, Action: state.ActionCreate, Resource: opKey(id), Host: opHost(id),
					Data: map[string]any{"client_token": id}}); err != nil {
					fail("begin %s: %v", id, err)
				}
				say(w, 2*k)
				inst, err := cloud.Create(id, simcloud.Spec{Name: id})
				if err != nil {
					fail("create %s: %v", id, err)
				}
				if err := st.FinishOperation(id, record(id, inst)); err != nil {
					fail("finish %s: %v", id, err)
				}
				say(w, 2*k+1)
			}
		})
	}
	wg.Wait()
}

// opsModel is what the parent knows: every operation whose begin (and
// finish) was acknowledged, and the operations pending after the last
// check, in the order a child's PendingOperations lists them.
type opsModel struct {
	begun    map[string]string // ID -> resource key
	finished map[string]bool
	pending  []*state.Operation
}

// verify adds the round's acknowledgments to m, checks the store and the
// provider against it, and returns the problems found.
func (m *opsModel) verify(st *OperationStats, dir, cloudPath string, round int, acked [writers + 1]int, open Opener) (problems []string) {
	lost := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("round %d: %s: %s", round, lostTag, fmt.Sprintf(format, args...)))
	}
	for w := range writers {
		for e := range acked[w] {
			id := opID(round, w, e/2)
			if e%2 == 0 {
				m.begun[id] = opKey(id)
				st.Begun++
			} else {
				m.finished[id] = true
				st.Finished++
			}
		}
	}
	for j := range acked[maint] {
		if j >= len(m.pending) {
			lost("the reconciler acknowledged %d finishes of %d pending operations", acked[maint], len(m.pending))
			break
		}
		m.finished[m.pending[j].ID] = true
		st.Reconciled++
	}

	s := reopen(dir, open, lost)
	if s == nil {
		return problems
	}
	defer s.Close()
	cloud, err := simcloud.Open(cloudPath, nil)
	if err != nil {
		lost("the provider: %v", err)
		return problems
	}
	instances, err := cloud.Instances()
	cloud.Close()
	if err != nil {
		lost("the provider: %v", err)
		return problems
	}

	pending := s.PendingOperations()
	pendingIDs := map[string]bool{}
	pendingTokens := map[string]int{}
	for _, op := range pending {
		pendingIDs[op.ID] = true
		pendingTokens[tokenOf(op.Data)]++
	}
	resources := s.AllResources()
	recorded := map[string]int{}   // token -> resources naming it
	recordedID := map[string]int{} // instance ID -> resources naming it
	for _, r := range resources {
		recorded[tokenOf(r.Data)]++
		recordedID[r.ID]++
	}

	// Acknowledged operations: pending or finished, never both, never
	// neither; a finish is never undone.
	for id, key := range m.begun {
		_, done := resources[key]
		switch {
		case pendingIDs[id] && done:
			lost("operation %s is both pending and finished", id)
		case !pendingIDs[id] && !done:
			lost("operation %s was acknowledged begun, and is neither pending nor finished", id)
		case m.finished[id] && pendingIDs[id]:
			lost("operation %s was acknowledged finished, and is pending", id)
		}
	}
	for id := range m.finished {
		if key, ok := m.begun[id]; ok {
			if _, done := resources[key]; !done {
				lost("operation %s was acknowledged finished, and its resource is gone", id)
			}
			continue
		}
		if _, done := resources[opKey(id)]; !done || pendingIDs[id] { // reconciled, begun unacknowledged
			lost("operation %s was acknowledged reconciled, and is not finished", id)
		}
	}
	// The provider against the store: exactly one record per instance.
	inCloud := map[string]bool{}
	for _, inst := range instances {
		inCloud[inst.ID] = true
		if n := recorded[inst.ClientToken] + pendingTokens[inst.ClientToken]; n != 1 {
			lost("instance %s (token %s) is named by %d resources and %d pending operations, want exactly one", inst.ID, inst.ClientToken, recorded[inst.ClientToken], pendingTokens[inst.ClientToken])
		}
	}
	for key, r := range resources {
		if !inCloud[r.ID] {
			lost("resource %s names instance %s, which the provider does not hold", key, r.ID)
		}
		if recordedID[r.ID] != 1 {
			lost("instance %s is recorded %d times", r.ID, recordedID[r.ID])
		}
	}
	// What the kill left in flight.
	byToken := map[string]bool{}
	for _, inst := range instances {
		byToken[inst.ClientToken] = true
	}
	st.Pending += len(pending)
	for _, op := range pending {
		if byToken[tokenOf(op.Data)] {
			st.Unrecorded++
		}
	}
	st.Instances = len(instances)

	if p := probe(s, round); p != "" {
		problems = append(problems, p)
	}
	m.pending = s.PendingOperations()
	return problems
}
