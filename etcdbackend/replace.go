package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

// importWriters is how many transactions of a Replace's records are in
// flight at once.
const importWriters = 8

// deletePage is how many keys one transaction deletes when a generation
// is removed.
const deletePage = 1000

// replace commits a Replace batch: its records go to a new generation, in
// as many transactions as they need (invisible to readers, who follow
// PREFIX/generation), and one transaction, with the comparisons of every
// write, makes that generation the store's along with the new metadata.
// The generation is marked stale (PREFIX/stale/ID) before its first
// record is written, and the switch clears the mark, so the records of an
// import that failed or crashed are found and deleted by the next writer.
// The old generation, marked stale by the switch, is deleted in the
// background.
func (b *Backend) replace(r *request) {
	r.err = b.replaceErr(r)
	if r.err != nil {
		r.meta = state.Metadata{}
	}
}

func (b *Backend) replaceErr(r *request) error {
	if err := b.writable(r.deadline); err != nil {
		return err
	}
	gen := b.newGeneration()
	recs := b.keys.of(gen)
	// Mark the new generation stale until the switch.
	if err := b.fenced(context.Background(), "replace: mark the new generation", clientv3.OpPut(b.keys.staleKey(gen), gen)); err != nil {
		return err
	}
	if err := b.writeRecords(recs, r.ops); err != nil {
		b.collect([]string{gen})
		if errors.Is(err, state.ErrLocked) {
			return err
		}
		return b.errorf("replace: write the new contents: %w; the store is unchanged (the records written so far are deleted)", err)
	}
	old := b.gen
	w := &write{meta: state.NextMetadata(b.meta, r.batch), gen: gen, layoutVer: LayoutVersion, group: []*request{r}}
	r.meta = w.meta
	var err error
	if w.mb, err = record.EncodeMetadata(&w.meta); err != nil {
		b.collect([]string{gen})
		return b.errorf("replace: metadata: %w", err)
	}
	w.ops = []clientv3.Op{
		clientv3.OpPut(b.keys.layout, strconv.Itoa(LayoutVersion)),
		clientv3.OpPut(b.keys.generation, gen),
		clientv3.OpDelete(b.keys.staleKey(gen)),
	}
	created := b.created.Load()
	if created {
		w.ops = append(w.ops, clientv3.OpPut(b.keys.staleKey(old), old))
	}
	// The switch has the time bound of a commit.
	if _, err := b.write(w, time.Now().Add(2*b.cfg.RequestTimeout)); err != nil {
		if b.pending == nil {
			// Not switched: the new generation is garbage.
			b.collect([]string{gen})
		}
		return err
	}
	if created {
		b.collect([]string{old})
	}
	return nil
}

// fenced commits ops in one transaction that compares only our lock,
// retrying while etcd does not answer (ops must be safe to repeat).
func (b *Backend) fenced(ctx context.Context, what string, ops ...clientv3.Op) error {
	var resp *clientv3.TxnResponse
	err := b.retry(ctx, time.Now().Add(2*b.cfg.RequestTimeout), what, func(ctx context.Context) (err error) {
		resp, err = b.client.Txn(ctx).If(b.fence()).Then(ops...).Else(clientv3.OpGet(b.keys.lock)).Commit()
		return err
	})
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		lost := b.lostLock(first(resp.Responses[0].GetResponseRange().Kvs), "nothing visible was written")
		b.broken.Store(&lost)
		return lost
	}
	return nil
}

// writeRecords puts ops under recs in transactions within etcd's limits,
// several in flight at once.
func (b *Backend) writeRecords(recs records, ops []op) error {
	var chunks [][]op
	for start := 0; start < len(ops); {
		end, size := start, 0
		for end < len(ops) && end-start < b.cfg.MaxTxnOps {
			s := opSize(b.prefix, &ops[end])
			if end > start && size+s > b.maxRecordBytes() {
				break
			}
			size += s
			end++
		}
		chunks = append(chunks, ops[start:end])
		start = end
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	work := make(chan []op)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range min(importWriters, len(chunks)) {
		wg.Go(func() {
			for chunk := range work {
				eops := make([]clientv3.Op, len(chunk))
				for i := range chunk {
					eops[i] = chunk[i].etcd(recs)
				}
				if err := b.fenced(ctx, fmt.Sprintf("write %d records", len(chunk)), eops...); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, c := range chunks {
		if ctx.Err() != nil {
			break
		}
		work <- c
	}
	close(work)
	wg.Wait()
	return first
}

// collect deletes, in the background, the records of the generations
// gens (their stale markers say they are to go), then their markers;
// Close waits for it. It stops at the first failure: the markers stay,
// and the next writer carries on.
func (b *Backend) collect(gens []string) {
	if len(gens) == 0 {
		return
	}
	b.background.Add(1)
	go func() {
		defer b.background.Done()
		for _, gen := range gens {
			if err := b.deleteGeneration(gen); err != nil {
				return
			}
		}
	}()
}

// deleteGeneration deletes generation gen's records, a page at a time,
// and its stale marker.
func (b *Backend) deleteGeneration(gen string) error {
	if cur := b.viewGen.Load(); cur != nil && *cur == gen && b.created.Load() {
		return nil // never the store's own records (a marker written by hand)
	}
	for _, rg := range b.keys.ranges(gen) {
		if err := b.deletePaged(rg[0], rg[1]); err != nil {
			return err
		}
	}
	return b.fenced(context.Background(), "delete a stale generation's marker", clientv3.OpDelete(b.keys.staleKey(gen)))
}

// deletePaged deletes the keys in [from, end), a page at a time, each
// page one transaction that compares our lock; the lock key itself is
// left. Deleting a page again is harmless, so an unanswered one is sent
// again.
func (b *Backend) deletePaged(from, end string) error {
	for {
		var kvs []*mvccpb.KeyValue
		err := b.retry(context.Background(), time.Time{}, "list keys to delete", func(ctx context.Context) error {
			resp, err := b.client.Txn(ctx).Then(clientv3.OpGet(from, clientv3.WithRange(end), clientv3.WithKeysOnly(), clientv3.WithLimit(deletePage))).Commit()
			if err == nil {
				kvs = resp.Responses[0].GetResponseRange().Kvs
			}
			return err
		})
		if err != nil || len(kvs) == 0 {
			return err
		}
		next := string(kvs[len(kvs)-1].Key) + "\x00"
		var ops []clientv3.Op
		if lock := b.keys.lock; from <= lock && lock < next {
			ops = append(ops, clientv3.OpDelete(from, clientv3.WithRange(lock)), clientv3.OpDelete(lock+"\x00", clientv3.WithRange(next)))
		} else {
			ops = append(ops, clientv3.OpDelete(from, clientv3.WithRange(next)))
		}
		if err := b.fenced(context.Background(), "delete keys", ops...); err != nil {
			return err
		}
		from = next
	}
}
