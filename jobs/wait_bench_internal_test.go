package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingDB counts the statements the queue sends outside transactions
// (every statement of a wait), unless their context says not to.
type countingDB struct {
	database
	horizons atomic.Int64 // horizon()
	others   atomic.Int64 // query, queryRow, exec
}

// notCounted marks a context whose statements countingDB leaves out.
type notCounted struct{}

func counted(ctx context.Context) bool { return ctx.Value(notCounted{}) == nil }

func (c *countingDB) horizon(ctx context.Context) (int64, error) {
	if counted(ctx) {
		c.horizons.Add(1)
	}
	return c.database.horizon(ctx)
}

func (c *countingDB) query(ctx context.Context, q string, args ...any) (rows, error) {
	if counted(ctx) {
		c.others.Add(1)
	}
	return c.database.query(ctx, q, args...)
}

func (c *countingDB) queryRow(ctx context.Context, q string, args ...any) row {
	if counted(ctx) {
		c.others.Add(1)
	}
	return c.database.queryRow(ctx, q, args...)
}

func (c *countingDB) exec(ctx context.Context, q string, args ...any) (int64, error) {
	if counted(ctx) {
		c.others.Add(1)
	}
	return c.database.exec(ctx, q, args...)
}

func (c *countingDB) total() int64 { return c.horizons.Load() + c.others.Load() }

func openBench(b *testing.B, db string) *Queue {
	b.Helper()
	q, err := Open(context.Background(), testConfig(b, db, DefaultPollInterval))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	return q
}

// BenchmarkFollowers measures the statements K followers of the queue
// make while another task is written b.N times, every 2 ms, each write
// announced in process as a worker's is: K WaitEvents followers of tasks
// that do not change (events), or K followers of the live list looping
// WaitChanges and Changes (changes; Changes' own statements are not
// counted). It reports wait-statements per write and per second.
//
//	go test ./jobs -run '^$' -bench Followers -benchtime 500x
func BenchmarkFollowers(b *testing.B) {
	for _, db := range []string{"postgres", "sqlite"} {
		for _, kind := range []string{"events", "changes"} {
			for _, k := range []int{1, 16, 256} {
				b.Run(fmt.Sprintf("%s/%s/K=%d", db, kind, k), func(b *testing.B) {
					benchFollowers(b, db, kind, k)
				})
			}
		}
	}
}

func benchFollowers(b *testing.B, db, kind string, k int) {
	q := openBench(b, db)
	ctx := context.Background()
	ids := make([]string, k+1)
	for i := range ids {
		task, _, err := q.Create(ctx, NewTask{Kind: "noop", Project: "p", Params: json.RawMessage(`{}`)})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = task.ID
	}
	busy := ids[k]
	c := &countingDB{database: q.db}
	q.db = c
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	cctx := context.WithValue(fctx, notCounted{}, true) // Changes is not waiting
	ready := make(chan struct{}, k)
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if kind == "events" {
				ready <- struct{}{}
				for fctx.Err() == nil {
					_ = q.WaitEvents(fctx, ids[i], 1<<40)
				}
				return
			}
			_, cursor, err := q.Changes(cctx, Filter{}, -1)
			ready <- struct{}{}
			for err == nil && fctx.Err() == nil {
				if err = q.WaitChanges(fctx, cursor); err == nil {
					_, cursor, err = q.Changes(cctx, Filter{}, cursor)
				}
			}
		}()
	}
	for range k {
		<-ready
	}
	before := c.total()
	b.ResetTimer()
	start := time.Now()
	tick := time.NewTicker(2 * time.Millisecond)
	for i := range b.N {
		<-tick.C
		if err := q.inTx(ctx, func(t tx, change int64) error {
			_, err := t.exec(ctx, `UPDATE ostask_tasks SET progress_current = $2, change = $3 WHERE id = $1`, busy, fmt.Sprint(i), change)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		q.changed.fire()
	}
	tick.Stop()
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	wg.Wait()
	waits := c.total() - before
	b.ReportMetric(float64(waits)/float64(b.N), "waitq/write")
	b.ReportMetric(float64(waits)/elapsed.Seconds(), "waitq/s")
}
