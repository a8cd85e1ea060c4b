package bench

import (
	"fmt"
	"time"

	"github.com/go-ftl2/ftlstate/internal/benchkit"
	"github.com/go-ftl2/ftlstate/state"
)

// opKey is the resource key of the outcome of operation i.
func opKey(i int) string { return fmt.Sprintf("op:%08d", i) }

// beginFinish provisions resource i through a pending operation: a
// BeginOperation, then a FinishOperation that stores the resource and
// removes the operation (two durable commits).
func beginFinish(st *state.State, i int) error {
	op, err := st.BeginOperation(&state.Operation{Action: state.ActionCreate, Resource: opKey(i),
		Data: map[string]any{"client_token": fmt.Sprintf("tok-%08d", i)}})
	if err != nil {
		return err
	}
	r := benchkit.Resource(i)
	return st.FinishOperation(op.ID, func(tx *state.Tx) error { return tx.AddResource(opKey(i), r) })
}

// boltOperations times, on bbolt stores of 1k hosts, one AddResource
// against one begin + finish of an operation that records the same
// resource (one writer, one of each in turn on one store), and the same
// two from cfg.Writers workers on a store of their own, in rounds
// alternating with the one-writer loop, so that the machine's load
// affects every side of the ratios alike.
func (r *runner) boltOperations() error {
	return r.withBolt("ops-single.db", benchkit.Small, func(single *state.State) error {
		return r.withBolt("ops-writers.db", benchkit.Small, func(many *state.State) error {
			var add, one, addAll, all benchkit.Timed
			d := r.cfg.Duration / alternations
			next := benchkit.Small
			for range alternations {
				// One AddResource, then one begin + finish, in turn: both
				// see the same moments of the machine's load.
				begin := time.Now()
				for i := 0; i < MinSamples || time.Since(begin) < d; i++ {
					if err := r.ctx.Err(); err != nil {
						return err
					}
					key, res := benchkit.ResourceKey(next), benchkit.Resource(next)
					start := time.Now()
					if err := single.AddResource(key, res); err != nil {
						return err
					}
					lat := time.Since(start)
					add.Lat, add.Wall = append(add.Lat, lat), add.Wall+lat
					start = time.Now()
					if err := beginFinish(single, next+1); err != nil {
						return err
					}
					lat = time.Since(start)
					one.Lat, one.Wall = append(one.Lat, lat), one.Wall+lat
					next += 2
				}
				from := 1<<24 + len(addAll.Lat)
				t, err := benchkit.Concurrent(r.ctx, d/2, r.cfg.Writers, func(i int) error {
					return many.AddResource(benchkit.ResourceKey(from+i), benchkit.Resource(from+i))
				})
				addAll.Lat, addAll.Wall = append(addAll.Lat, t.Lat...), addAll.Wall+t.Wall
				if err != nil {
					return err
				}
				from = len(all.Lat)
				t, err = benchkit.Concurrent(r.ctx, d/2, r.cfg.Writers, func(i int) error { return beginFinish(many, from+i) })
				all.Lat, all.Wall = append(all.Lat, t.Lat...), all.Wall+t.Wall
				if err != nil {
					return err
				}
			}
			if n := len(single.PendingOperations()) + len(many.PendingOperations()); n != 0 {
				return fmt.Errorf("%d operations left pending", n)
			}
			row := r.add(latencyRow(&Row{ID: "bbolt.add_resource.1k", Backend: "bbolt", Op: "AddResource", Hosts: benchkit.Small}, add))
			row.Note = "one of each in turn with the row below"
			row = r.add(latencyRow(&Row{ID: "bbolt.operation.1k", Backend: "bbolt", Op: "BeginOperation + FinishOperation", Hosts: benchkit.Small}, one))
			row.Note = "two durable commits; the finish records the resource"
			row = r.add(latencyRow(&Row{ID: "bbolt.add_resource.writers", Backend: "bbolt", Op: fmt.Sprintf("AddResource, %d writers", r.cfg.Writers), Hosts: benchkit.Small, throughput: true}, addAll))
			row.Note = "x floor: wall time per write; alternating with the rows around it"
			row = r.add(latencyRow(&Row{ID: "bbolt.operation.writers", Backend: "bbolt", Op: fmt.Sprintf("begin + finish, %d workers", r.cfg.Writers), Hosts: benchkit.Small, throughput: true}, all))
			row.Note = "x floor: wall time per begin + finish (two commits)"
			return nil
		})
	})
}

// operationTargets are issue 15's targets.
func operationTargets(get func(id string) *Row, writers int) []Target {
	add, one := get("bbolt.add_resource.1k"), get("bbolt.operation.1k")
	addAll, all := get("bbolt.add_resource.writers"), get("bbolt.operation.writers")
	return []Target{
		{ID: "operation_cost", Goal: "bbolt begin + finish of an operation vs one AddResource, medians",
			Measured: ratio(float64(one.MedianNS), float64(add.MedianNS)), Cmp: "<=", Limit: 2.2, Unit: "x", From: "bbolt.operation.1k / bbolt.add_resource.1k"},
		{ID: "operation_writers", Goal: fmt.Sprintf("%d workers' begins and finishes share commits as %d AddResource writers do: writes/s vs theirs", writers, writers),
			Measured: ratio(2*all.OpsPerSec, addAll.OpsPerSec), Cmp: ">=", Limit: 0.8, Unit: "x",
			From: "2 x bbolt.operation.writers / bbolt.add_resource.writers, ops/s"},
	}
}
