// Command river measures bare River, the job queue under ostask's
// service, as the ceiling the service's task throughput is compared with:
// N no-op jobs inserted and worked through River alone, with River's
// PostgreSQL driver (pgx v5), by W clients (one per would-be worker
// process), inserted three ways:
//
//   - insertmany: one InsertMany of all N jobs (River's batch insert);
//   - insert-1: one Insert (one transaction) per job from one goroutine;
//   - insert-32: the same from 32 goroutines.
//
// Jobs/s runs from the first insert to the last completion. Each run gets
// a fresh schema, dropped afterwards.
//
//	go run ./bench/river                        # N=5000, W=1,3
//	go run ./bench/river -db postgres://postgres@127.0.0.1:5432/test -n 5000 -clients 1,3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// noopArgs is a job that does nothing.
type noopArgs struct{}

func (noopArgs) Kind() string { return "ostask_bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

type row struct {
	mode          string
	clients       int
	n             int
	insertFor     time.Duration
	total         time.Duration
	jobsPerSecond float64
	insertPerSec  float64
}

func main() {
	dbURL := flag.String("db", envOr("OSTASK_BENCH_DB", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL URL")
	n := flag.Int("n", 5000, "jobs per run")
	clientsFlag := flag.String("clients", "1,3", "comma-separated numbers of River clients (worker processes)")
	modesFlag := flag.String("modes", "insertmany,insert-1,insert-32", "insert modes")
	maxWorkers := flag.Int("max-workers", 100, "River MaxWorkers per client")
	flag.Parse()
	var clients []int
	for _, f := range strings.Split(*clientsFlag, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			fmt.Fprintf(os.Stderr, "bench/river: bad -clients value %q\n", f)
			os.Exit(2)
		}
		clients = append(clients, c)
	}
	ctx := context.Background()
	var rows []row
	for _, mode := range strings.Split(*modesFlag, ",") {
		for _, c := range clients {
			r, err := run(ctx, *dbURL, strings.TrimSpace(mode), c, *n, *maxWorkers)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench/river: %s with %d clients: %v\n", mode, c, err)
				os.Exit(1)
			}
			rows = append(rows, r)
			fmt.Fprintf(os.Stderr, "bench/river: %s, %d clients: %.0f jobs/s\n", r.mode, r.clients, r.jobsPerSecond)
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "insert\tclients\tjobs\tinserted in\tinserts/s\tall worked in\tjobs/s end to end\t\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%.0f\t%s\t%.0f\t\n", r.mode, r.clients, r.n, r.insertFor.Round(time.Millisecond),
			r.insertPerSec, r.total.Round(time.Millisecond), r.jobsPerSecond)
	}
	tw.Flush()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, dbURL, mode string, nClients, n, maxWorkers int) (row, error) {
	schema := fmt.Sprintf("riverbench_%d_%d", os.Getpid(), time.Now().UnixNano()%1_000_000)
	admin, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return row{}, err
	}
	defer admin.Close()
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return row{}, fmt.Errorf("create schema: %w", err)
	}
	defer func() { _, _ = admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") }()

	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return row{}, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = int32(max(16, 8*nClients+32))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return row{}, err
	}
	defer pool.Close()
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema})
	if err != nil {
		return row{}, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return row{}, fmt.Errorf("migrate: %w", err)
	}

	var done atomic.Int64
	all := make(chan struct{})
	var first *river.Client[pgx.Tx]
	for range nClients {
		workers := river.NewWorkers()
		river.AddWorker(workers, &noopWorker{})
		c, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
			Schema:            schema,
			Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: maxWorkers}},
			Workers:           workers,
			FetchCooldown:     time.Millisecond,
			FetchPollInterval: 50 * time.Millisecond,
		})
		if err != nil {
			return row{}, err
		}
		events, cancel := c.Subscribe(river.EventKindJobCompleted)
		defer cancel()
		go func() {
			for range events {
				if done.Add(1) == int64(n) {
					close(all)
				}
			}
		}()
		if err := c.Start(ctx); err != nil {
			return row{}, err
		}
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer scancel()
			_ = c.Stop(sctx)
		}()
		if first == nil {
			first = c // the first client inserts
		}
	}
	start := time.Now()
	if err := insert(ctx, first, mode, n); err != nil {
		return row{}, err
	}
	insertFor := time.Since(start)
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		return row{}, fmt.Errorf("only %d of %d jobs completed in 10 minutes", done.Load(), n)
	}
	total := time.Since(start)
	return row{mode: mode, clients: nClients, n: n, insertFor: insertFor, total: total,
		jobsPerSecond: float64(n) / total.Seconds(), insertPerSec: float64(n) / insertFor.Seconds()}, nil
}

func insert(ctx context.Context, c *river.Client[pgx.Tx], mode string, n int) error {
	switch mode {
	case "insertmany":
		params := make([]river.InsertManyParams, n)
		for i := range params {
			params[i] = river.InsertManyParams{Args: noopArgs{}}
		}
		_, err := c.InsertMany(ctx, params)
		return err
	case "insert-1":
		for range n {
			if _, err := c.Insert(ctx, noopArgs{}, nil); err != nil {
				return err
			}
		}
		return nil
	case "insert-32":
		var wg sync.WaitGroup
		var next atomic.Int64
		errs := make(chan error, 32)
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					if _, err := c.Insert(ctx, noopArgs{}, nil); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		return errors.Join(<-errs)
	}
	return fmt.Errorf("unknown insert mode %q", mode)
}
