// Package riverbench measures bare River, the job queue under ostask's
// service: N no-op jobs inserted and worked through River alone by W
// clients (one per would-be worker process), on PostgreSQL (riverpgxv5)
// or SQLite (riversqlite) — the ceiling bench/river prints alone and
// bench/service beside the service's own figures, in the same run.
package riverbench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	_ "modernc.org/sqlite"

	"github.com/ostask/ostask/internal/cpuuse"
)

// Insert modes.
const (
	InsertMany = "insertmany" // one InsertMany of all N jobs
	Insert1    = "insert-1"   // one Insert (transaction) per job, from one goroutine
	Insert32   = "insert-32"  // the same from 32 goroutines
	Insert64   = "insert-64"  // ... from 64, as many as the service's HTTP clients
)

// Config is one run.
type Config struct {
	// Driver is "postgres" or "sqlite".
	Driver string
	// URL: PostgreSQL's (a fresh schema is made and dropped), or a
	// directory for SQLite (a fresh file is made and removed).
	URL  string
	Mode string
	// Clients work the jobs; 0 inserts them only (an insert-only client,
	// as the service's API alone with --workers 0): the run then ends
	// with the inserts.
	Clients    int
	N          int
	MaxWorkers int // per client (0: 100)
}

// Result is a run's figures; JobsPerSecond runs from the first insert to
// the last completion.
type Result struct {
	Config
	InsertFor, Total             time.Duration
	JobsPerSecond, InsertsPerSec float64
	// CPU is what the run used from the first insert to the last
	// completion, in this process and in PostgreSQL.
	CPU cpuuse.Use
}

type noopArgs struct{}

func (noopArgs) Kind() string { return "ostask_bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

// Run makes one run.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.MaxWorkers == 0 {
		cfg.MaxWorkers = 100
	}
	if cfg.Clients < 0 || cfg.N < 1 {
		return Result{}, fmt.Errorf("riverbench: %d clients, %d jobs: want clients >= 0 and jobs >= 1", cfg.Clients, cfg.N)
	}
	switch cfg.Driver {
	case "postgres":
		return runPostgres(ctx, cfg)
	case "sqlite":
		return withoutPostgres(runSQLite(ctx, cfg))
	}
	return Result{}, fmt.Errorf("riverbench: unknown driver %q", cfg.Driver)
}

// runSQLite's results: PostgreSQL's CPU is none of the run's.
func withoutPostgres(r Result, err error) (Result, error) {
	r.CPU.PostgresOK = false
	return r, err
}

func runPostgres(ctx context.Context, cfg Config) (Result, error) {
	schema := fmt.Sprintf("riverbench_%d_%d", os.Getpid(), time.Now().UnixNano()%1_000_000)
	admin, err := pgxpool.New(ctx, cfg.URL)
	if err != nil {
		return Result{}, err
	}
	defer admin.Close()
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return Result{}, fmt.Errorf("create schema: %w", err)
	}
	defer func() { _, _ = admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") }()
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return Result{}, err
	}
	pcfg.ConnConfig.RuntimeParams["search_path"] = schema
	pcfg.MaxConns = int32(max(16, 8*cfg.Clients+72))
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return Result{}, err
	}
	defer pool.Close()
	return runDriver(ctx, cfg, riverpgxv5.New(pool), schema)
}

func runSQLite(ctx context.Context, cfg Config) (Result, error) {
	dir, err := os.MkdirTemp(cfg.URL, "riverbench-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	// As jobs opens it: WAL, full sync, one connection (one writer).
	db, err := sql.Open("sqlite", filepath.Join(dir, "river.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return Result{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	return runDriver(ctx, cfg, riversqlite.New(db), "")
}

func runDriver[TTx any](ctx context.Context, cfg Config, driver riverdriver.Driver[TTx], schema string) (Result, error) {
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: schema})
	if err != nil {
		return Result{}, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return Result{}, fmt.Errorf("migrate: %w", err)
	}
	var done atomic.Int64
	all := make(chan struct{})
	var clients []*river.Client[TTx]
	var cancels []func()
	var subs sync.WaitGroup
	defer func() {
		// Stop every client, then end their subscriptions.
		for _, c := range clients {
			sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = c.Stop(sctx)
			scancel()
		}
		for _, cancel := range cancels {
			cancel()
		}
		subs.Wait()
	}()
	for range cfg.Clients {
		workers := river.NewWorkers()
		river.AddWorker(workers, &noopWorker{})
		c, err := river.NewClient(driver, &river.Config{
			Schema:            schema,
			Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.MaxWorkers}},
			Workers:           workers,
			FetchCooldown:     time.Millisecond,
			FetchPollInterval: 50 * time.Millisecond,
		})
		if err != nil {
			return Result{}, err
		}
		// Room for every completion: a subscription drops what overflows
		// its buffer, and the count would never reach N.
		events, cancel := c.SubscribeConfig(&river.SubscribeConfig{Kinds: []river.EventKind{river.EventKindJobCompleted},
			ChanSize: cfg.N + 1000})
		cancels = append(cancels, cancel)
		subs.Add(1)
		go func() {
			defer subs.Done()
			for range events {
				if done.Add(1) == int64(cfg.N) {
					close(all)
				}
			}
		}()
		if err := c.Start(ctx); err != nil {
			return Result{}, err
		}
		clients = append(clients, c)
	}
	var first *river.Client[TTx] // the first client inserts
	if len(clients) > 0 {
		first = clients[0]
	} else {
		// Insert only: a client without queues works nothing.
		c, err := river.NewClient(driver, &river.Config{Schema: schema})
		if err != nil {
			return Result{}, err
		}
		first = c
	}
	cpu0 := cpuuse.Now()
	start := time.Now()
	batch := cfg.N
	if cfg.Driver == "sqlite" {
		batch = 1000 // SQLite bounds a statement's parameters
	}
	if err := insert(ctx, first, cfg.Mode, cfg.N, batch); err != nil {
		return Result{}, err
	}
	insertFor := time.Since(start)
	if cfg.Clients == 0 {
		return Result{Config: cfg, InsertFor: insertFor, Total: insertFor, CPU: cpuuse.Now().Sub(cpu0),
			JobsPerSecond: float64(cfg.N) / insertFor.Seconds(), InsertsPerSec: float64(cfg.N) / insertFor.Seconds()}, nil
	}
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		return Result{}, fmt.Errorf("only %d of %d jobs completed in 10 minutes", done.Load(), cfg.N)
	}
	total := time.Since(start)
	return Result{Config: cfg, InsertFor: insertFor, Total: total, CPU: cpuuse.Now().Sub(cpu0),
		JobsPerSecond: float64(cfg.N) / total.Seconds(), InsertsPerSec: float64(cfg.N) / insertFor.Seconds()}, nil
}

func insert[TTx any](ctx context.Context, c *river.Client[TTx], mode string, n, batch int) error {
	concurrent := map[string]int{Insert1: 1, Insert32: 32, Insert64: 64}
	if mode == InsertMany {
		params := make([]river.InsertManyParams, n)
		for i := range params {
			params[i] = river.InsertManyParams{Args: noopArgs{}}
		}
		for len(params) > 0 {
			b := params[:min(len(params), batch)]
			if _, err := c.InsertMany(ctx, b); err != nil {
				return err
			}
			params = params[len(b):]
		}
		return nil
	}
	g, ok := concurrent[mode]
	if !ok {
		return fmt.Errorf("unknown insert mode %q", mode)
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, g)
	for range g {
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
