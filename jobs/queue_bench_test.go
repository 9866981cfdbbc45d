package jobs_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

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

type benchNoopArgs struct{}

func (benchNoopArgs) Kind() string { return "bench_noop" }

type benchNoopWorker struct {
	river.WorkerDefaults[benchNoopArgs]
	done chan<- struct{}
}

func (w *benchNoopWorker) Work(context.Context, *river.Job[benchNoopArgs]) error {
	w.done <- struct{}{}
	return nil
}

// BenchmarkRiverInsertMany: b.N no-op jobs inserted with one InsertMany
// and worked by one River client, on the databases the queue uses.
func BenchmarkRiverInsertMany(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		db, err := sql.Open("sqlite", filepath.Join(b.TempDir(), "river.db")+"?_busy_timeout=10000&_journal_mode=WAL&_txlock=immediate")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		d := riversqlite.New(db)
		m, err := rivermigrate.New(d, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Migrate(context.Background(), rivermigrate.DirectionUp, nil); err != nil {
			b.Fatal(err)
		}
		benchRiver(b, func(cfg *river.Config) (func(context.Context, []river.InsertManyParams) error, func(context.Context) error, func(context.Context) error, error) {
			cfg.FetchPollInterval, cfg.FetchCooldown = 100*time.Millisecond, 10*time.Millisecond
			c, err := river.NewClient(d, cfg)
			if err != nil {
				return nil, nil, nil, err
			}
			ins := func(ctx context.Context, ps []river.InsertManyParams) error {
				_, err := c.InsertMany(ctx, ps)
				return err
			}
			return ins, c.Start, c.Stop, nil
		})
	})
	b.Run("postgres", func(b *testing.B) {
		url, schema := pgtest.Schema(b)
		pcfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			b.Fatal(err)
		}
		pcfg.ConnConfig.RuntimeParams["search_path"] = schema
		pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
		if err != nil {
			b.Fatal(err)
		}
		defer pool.Close()
		if _, err := pool.Exec(context.Background(), "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			b.Fatal(err)
		}
		d := riverpgxv5.New(pool)
		m, err := rivermigrate.New(d, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Migrate(context.Background(), rivermigrate.DirectionUp, nil); err != nil {
			b.Fatal(err)
		}
		benchRiver(b, func(cfg *river.Config) (func(context.Context, []river.InsertManyParams) error, func(context.Context) error, func(context.Context) error, error) {
			c, err := river.NewClient(d, cfg)
			if err != nil {
				return nil, nil, nil, err
			}
			ins := func(ctx context.Context, ps []river.InsertManyParams) error {
				_, err := c.InsertMany(ctx, ps)
				return err
			}
			return ins, c.Start, c.Stop, nil
		})
	})
}

func benchRiver(b *testing.B, mk func(*river.Config) (func(context.Context, []river.InsertManyParams) error, func(context.Context) error, func(context.Context) error, error)) {
	done := make(chan struct{}, b.N)
	workers := river.NewWorkers()
	river.AddWorker(workers, &benchNoopWorker{done: done})
	insert, start, stop, err := mk(&river.Config{Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 50}}, Workers: workers})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := start(ctx); err != nil {
		b.Fatal(err)
	}
	defer stop(ctx)
	ps := make([]river.InsertManyParams, b.N)
	for i := range ps {
		ps[i] = river.InsertManyParams{Args: benchNoopArgs{}}
	}
	b.ResetTimer()
	t0 := time.Now()
	if err := insert(ctx, ps); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		<-done
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "jobs/s")
}
