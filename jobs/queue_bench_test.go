package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ostask/ostask/internal/riverbench"
	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/store/postgres/pgtest"
)

// BenchmarkNoopTasks creates b.N no-op tasks from 32 goroutines (their
// Creates share transactions) and waits until every one succeeded, with
// 1 and 3 workers; tasks/s is reported. BenchmarkRiverInsertMany is the
// same-run baseline: bare River, one InsertMany, the same database.
//
//	go test ./jobs -run '^$' -bench 'NoopTasks|RiverInsertMany' -benchtime 2000x
func BenchmarkNoopTasks(b *testing.B) {
	for _, db := range []string{"sqlite", "postgres"} {
		for _, workers := range []int{1, 3} {
			b.Run(fmt.Sprintf("%s/workers=%d", db, workers), func(b *testing.B) {
				cfg := benchConfig(b, db)
				q, err := jobs.Open(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer q.Close()
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				for i := range workers {
					w, err := jobs.NewWorker(q, jobs.WorkerConfig{ID: fmt.Sprintf("bench-%d", i), Concurrency: 50})
					if err != nil {
						b.Fatal(err)
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						_ = w.Run(ctx)
					}()
				}
				defer func() {
					cancel()
					wg.Wait()
				}()
				b.ResetTimer()
				start := time.Now()
				var cwg sync.WaitGroup
				next := make(chan struct{}, b.N)
				for range b.N {
					next <- struct{}{}
				}
				close(next)
				var createFor time.Duration
				for range 32 {
					cwg.Add(1)
					go func() {
						defer cwg.Done()
						for range next {
							if _, _, err := q.Create(ctx, jobs.NewTask{Kind: "noop", Project: "bench", Params: json.RawMessage(`{}`)}); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				cwg.Wait()
				createFor = time.Since(start)
				for {
					open := false
					for _, s := range []jobs.Status{jobs.Queued, jobs.Running} {
						p, err := q.List(ctx, jobs.Filter{Status: s, Limit: 1})
						if err != nil {
							b.Fatal(err)
						}
						open = open || len(p.Tasks) > 0
					}
					if !open {
						break
					}
					wctx, wcancel := context.WithTimeout(ctx, 100*time.Millisecond)
					_ = q.WaitChanges(wctx, -1)
					wcancel()
					time.Sleep(20 * time.Millisecond) // observing the workers through the database
				}
				total := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/total.Seconds(), "tasks/s")
				b.ReportMetric(float64(b.N)/createFor.Seconds(), "creates/s")
			})
		}
	}
}

func benchConfig(b *testing.B, db string) jobs.Config {
	if db == "sqlite" {
		return jobs.Config{URL: filepath.Join(b.TempDir(), "bench.db"), PollInterval: 20 * time.Millisecond}
	}
	url, schema := pgtest.Schema(b)
	return jobs.Config{URL: url, Schema: schema, PollInterval: 20 * time.Millisecond}
}

// BenchmarkRiverInsertMany is bare River's ceiling beside the queue: b.N
// no-op jobs inserted with one InsertMany and worked, on each database
// (internal/riverbench, as bench/service runs it).
func BenchmarkRiverInsertMany(b *testing.B) {
	for _, db := range []string{"sqlite", "postgres"} {
		b.Run(db, func(b *testing.B) {
			url := b.TempDir()
			if db == "postgres" {
				url = pgtest.URL(b)
			}
			r, err := riverbench.Run(context.Background(), riverbench.Config{Driver: db, URL: url, Mode: riverbench.InsertMany, Clients: 1, N: b.N, MaxWorkers: 50})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(r.JobsPerSecond, "jobs/s")
		})
	}
}
