// Command store benchmarks durable flows: the bare commit rate of each
// database (one single-row transaction after another: the physical limit
// of a linear flow that is durable before each step), persisted
// transitions per second of a linear flow of 1,000 trivial tasks and of an
// unordered flow of 1,000 with 16 in parallel, of 16 and 64 linear runs at
// once in one process with and without group commit (their writes sharing
// transactions, or each its own), the resume (load and rebuild) of a
// 1,000-atom run, and the process's peak RSS, on SQLite and PostgreSQL in
// the same run; and, as the baseline, TaskFlow's SQL persistence backend
// on SQLite (python3-taskflow) at 100 tasks. The machine's load average is
// reported at the start and the end: on a shared machine the figures
// mean little without it.
//
//	go run ./bench/store [-n 1000] [-commits 500] [-rounds 5] [-only sqlite,relaxed,postgres]
//		[-concurrent 16,64] [-concurrent-rounds 3] [-concurrent-tasks 200]
//		[-postgres URL|none] [-python /usr/bin/python3|none]
//
// SQLite runs at the default durability (synchronous=FULL: every commit
// on disk) and, reported apart, in the relaxed mode (synchronous=NORMAL:
// survives a crash of the process, not a power loss).
package main

import (
	"bytes"
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/store/postgres"
	"github.com/ostask/ostask/store/sqlite"
)

//go:embed taskflow_sql.py
var taskflowScript []byte

var (
	nTasks   = flag.Int("n", 1000, "tasks of the linear and unordered flows, atoms of the resumed run")
	nCommits = flag.Int("commits", 500, "single-row transactions per round for the bare commit rate")
	rounds   = flag.Int("rounds", 5, "rounds of (bare commits, linear flow), interleaved: the disk is shared, so each linear run is compared with the commits measured next to it")
	pgURL    = flag.String("postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL server ('none' to skip)")
	python   = flag.String("python", "/usr/bin/python3", "python3 with taskflow ('none' to skip the baseline)")
	tfTasks  = flag.Int("taskflow-tasks", 100, "tasks of TaskFlow's linear flow")
	parallel = flag.Int("parallel", 16, "workers of the unordered flow")
	resumes  = flag.Int("resumes", 20, "resumes timed (the median is reported)")
	only     = flag.String("only", "", "databases to measure, comma-separated: sqlite, relaxed, postgres (default: all)")
	conc     = flag.String("concurrent", "16,64", "numbers of concurrent linear runs, each measured with and without group commit")
	cRounds  = flag.Int("concurrent-rounds", 3, "rounds of each concurrent measurement (with and without group commit interleaved)")
	cTasks   = flag.Int("concurrent-tasks", 200, "tasks of each concurrent linear run")
)

type row struct{ db, what, figure, note string }

var rows []row

func report(db, what, figure, note string) {
	rows = append(rows, row{db, what, figure, note})
	fmt.Fprintf(os.Stderr, "%-22s %-48s %s %s\n", db, what, figure, note)
}

func main() {
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ostask-bench-store")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)

	type target struct {
		key, name string
		open      func(name string, opts ...store.Option) (*store.DB, func() error, error) // a fresh database
		bare      func() (float64, error)
	}
	targets := []target{
		{"sqlite", "sqlite (FULL)", func(name string, opts ...store.Option) (*store.DB, func() error, error) {
			return openSQLite(ctx, filepath.Join(dir, name+".db"), sqlite.Full, opts...)
		}, func() (float64, error) { return bareSQLite(filepath.Join(dir, "bare-full.db"), "FULL") }},
		{"relaxed", "sqlite (relaxed)", func(name string, opts ...store.Option) (*store.DB, func() error, error) {
			return openSQLite(ctx, filepath.Join(dir, name+"-relaxed.db"), sqlite.RelaxedNoPowerLossSafety, opts...)
		}, func() (float64, error) { return bareSQLite(filepath.Join(dir, "bare-normal.db"), "NORMAL") }},
	}
	if *pgURL != "none" {
		targets = append(targets, target{"postgres", "postgres", func(name string, opts ...store.Option) (*store.DB, func() error, error) {
			return openPostgres(ctx, *pgURL, "ostask_bench_"+strings.ReplaceAll(name, "-", "_"), opts...)
		}, func() (float64, error) { return barePostgres(ctx, *pgURL) }})
	}
	if *only != "" {
		keep := strings.Split(*only, ",")
		targets = slices.DeleteFunc(targets, func(t target) bool { return !slices.Contains(keep, t.key) })
	}
	var concurrency []int
	for _, f := range strings.Split(*conc, ",") {
		var k int
		if _, err := fmt.Sscan(f, &k); err != nil || k < 1 {
			fail(fmt.Errorf("-concurrent %q: want numbers of runs, comma-separated", *conc))
		}
		concurrency = append(concurrency, k)
	}
	report("machine", "load average (1, 5, 15 min) at the start", loadAvg(), "")
	summary := map[string]map[string]float64{}
	for _, tg := range targets {
		s := map[string]float64{}
		summary[tg.name] = s
		var bares, tasks, trans, ratios []float64
		for r := range *rounds {
			rate, err := tg.bare()
			if err != nil {
				fail(fmt.Errorf("%s: bare commits: %w", tg.name, err))
			}
			db, done, err := tg.open(fmt.Sprint("linear", r))
			if err != nil {
				fail(err)
			}
			tr, sec, err := runFlow(ctx, db, linear(*nTasks), engine.Serial())
			done()
			if err != nil {
				fail(fmt.Errorf("%s: linear: %w", tg.name, err))
			}
			bares, tasks, trans = append(bares, rate), append(tasks, float64(*nTasks)/sec), append(trans, float64(tr)/sec)
			ratios = append(ratios, float64(*nTasks)/sec/rate)
		}
		s["bare"], s["linear tasks"], s["linear ratio"] = medianF(bares), medianF(tasks), medianF(ratios)
		report(tg.name, "bare commits (1-row transactions, one after another)", fmt.Sprintf("%9.0f /s", s["bare"]),
			fmt.Sprintf("(median of %d rounds of %d: %s)", *rounds, *nCommits, spread(bares)))
		report(tg.name, fmt.Sprintf("linear %d, serial: persisted transitions", *nTasks), fmt.Sprintf("%9.0f /s", medianF(trans)),
			fmt.Sprintf("(%.0f tasks/s; per round, tasks/s ÷ the bare rate next to it: median %.2f, %s)", s["linear tasks"], s["linear ratio"], spread(ratios)))

		db, done, err := tg.open("unordered")
		if err != nil {
			fail(err)
		}
		tr, sec, err := runFlow(ctx, db, unordered(*nTasks), engine.Parallel(*parallel))
		done()
		if err != nil {
			fail(fmt.Errorf("%s: unordered: %w", tg.name, err))
		}
		s["unordered transitions"] = float64(tr) / sec
		report(tg.name, fmt.Sprintf("unordered %d, parallel(%d): persisted transitions", *nTasks, *parallel),
			fmt.Sprintf("%9.0f /s", float64(tr)/sec), fmt.Sprintf("(%.0f tasks/s)", float64(*nTasks)/sec))

		for _, k := range concurrency {
			// Alone: each run's write its own transaction. Grouped: writes
			// ready at the same moment share one (the default).
			var alone, grouped, aloneTasks, groupedTasks []float64
			for r := range *cRounds {
				for _, group := range []bool{false, true} {
					opt := store.WithGroupCommit(1)
					if group {
						opt = store.WithGroupCommit(store.DefaultGroupCommit)
					}
					db, done, err := tg.open(fmt.Sprintf("concurrent-%d-%d-%v", k, r, group), opt)
					if err != nil {
						fail(err)
					}
					tr, sec, err := concurrentRuns(ctx, db, k, *cTasks)
					done()
					if err != nil {
						fail(fmt.Errorf("%s: %d concurrent: %w", tg.name, k, err))
					}
					if group {
						grouped, groupedTasks = append(grouped, float64(tr)/sec), append(groupedTasks, float64(k**cTasks)/sec)
					} else {
						alone, aloneTasks = append(alone, float64(tr)/sec), append(aloneTasks, float64(k**cTasks)/sec)
					}
				}
			}
			s[fmt.Sprint("concurrent tasks grouped ", k)] = medianF(groupedTasks)
			report(tg.name, fmt.Sprintf("%d concurrent linear runs of %d, commits not shared: transitions", k, *cTasks),
				fmt.Sprintf("%9.0f /s", medianF(alone)), fmt.Sprintf("(%.0f tasks/s; median of %d: %s)", medianF(aloneTasks), *cRounds, spread(alone)))
			report(tg.name, fmt.Sprintf("%d concurrent linear runs of %d, group commit: transitions", k, *cTasks),
				fmt.Sprintf("%9.0f /s", medianF(grouped)), fmt.Sprintf("(%.0f tasks/s; median of %d: %s)", medianF(groupedTasks), *cRounds, spread(grouped)))
		}

		db, done, err = tg.open("resume")
		if err != nil {
			fail(err)
		}
		load, full, err := resume(ctx, db, *nTasks, *resumes)
		done()
		if err != nil {
			fail(fmt.Errorf("%s: resume: %w", tg.name, err))
		}
		s["resume ms"] = full.Seconds() * 1000
		report(tg.name, fmt.Sprintf("resume of a %d-atom run (median of %d)", *nTasks, *resumes),
			fmt.Sprintf("%9.2f ms", full.Seconds()*1000), fmt.Sprintf("(of which Load %.2f ms)", load.Seconds()*1000))
	}

	var tfRate float64
	if *python != "none" {
		sec, rss, err := taskflow(dir)
		if err != nil {
			report("taskflow sqlalchemy", fmt.Sprintf("linear %d, SQL backend on SQLite", *tfTasks), "failed", err.Error())
		} else {
			tfRate = float64(*tfTasks) / sec
			report("taskflow sqlalchemy", fmt.Sprintf("linear %d, SQL backend on SQLite: tasks", *tfTasks),
				fmt.Sprintf("%9.1f /s", tfRate), fmt.Sprintf("(python peak RSS %d MiB)", rss/1024))
		}
	}
	report("machine", "load average (1, 5, 15 min) at the end", loadAvg(), "")
	rss := peakRSS()
	report("this process", "peak RSS (VmHWM), all of the above", fmt.Sprintf("%9d MiB", rss/1024), "")

	// The targets, checked on this run's figures.
	fmt.Fprintln(os.Stderr)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "database\tmeasure\tfigure\tnote")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.db, r.what, strings.TrimSpace(r.figure), r.note)
	}
	tw.Flush()
	fmt.Println()
	check := func(ok bool, format string, args ...any) {
		mark := "PASS"
		if !ok {
			mark = "MISS"
		}
		fmt.Printf("%s  %s\n", mark, fmt.Sprintf(format, args...))
	}
	for _, name := range []string{"sqlite (FULL)", "postgres"} {
		s, ok := summary[name]
		if !ok {
			continue
		}
		check(s["linear ratio"] >= 0.8, "%s: linear tasks/s = %.2f × bare commits/s (median of rounds) >= 0.8", name, s["linear ratio"])
		want := 20000.0
		if name == "postgres" {
			want = 5000
		}
		check(s["unordered transitions"] >= want, "%s: unordered %.0f transitions/s >= %.0f", name, s["unordered transitions"], want)
		check(s["resume ms"] < 50, "%s: %d-atom resume %.2f ms < 50 ms", name, *nTasks, s["resume ms"])
		if tfRate > 0 {
			check(s["linear tasks"] >= 100*tfRate, "%s: linear %.0f tasks/s >= 100 × TaskFlow's %.1f (a linear flow is bounded by the bare commit rate, here %.0f/s = %.0f × TaskFlow)",
				name, s["linear tasks"], tfRate, s["bare"], s["bare"]/tfRate)
			for _, k := range concurrency {
				if v, ok := s[fmt.Sprint("concurrent tasks grouped ", k)]; ok {
					fmt.Printf("info  %s: %d concurrent linear runs with group commit: %.0f persisted tasks/s = %.0f × TaskFlow's linear flow\n", name, k, v, v/tfRate)
				}
			}
		}
	}
	if s, ok := summary["sqlite (relaxed)"]; ok {
		lin := s["linear tasks"] * 2
		check(lin >= 20000, "sqlite (relaxed, not power-loss safe): linear %.0f transitions/s >= 20000", lin)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/store:", err)
	os.Exit(1)
}

func openSQLite(ctx context.Context, path string, d sqlite.Durability, opts ...store.Option) (*store.DB, func() error, error) {
	drv, err := sqlite.NewDriver(path, sqlite.WithDurability(d))
	if err != nil {
		return nil, nil, err
	}
	db, err := store.New(ctx, drv, opts...)
	if err != nil {
		return nil, nil, err
	}
	return db, db.Close, nil
}

func openPostgres(ctx context.Context, url, schema string, opts ...store.Option) (*store.DB, func() error, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	drop := func() error {
		_, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		return err
	}
	if err := drop(); err != nil {
		conn.Close(ctx)
		return nil, nil, err
	}
	db, err := postgres.Open(ctx, url, []postgres.Option{postgres.WithSchema(schema)}, opts...)
	if err != nil {
		conn.Close(ctx)
		return nil, nil, err
	}
	return db, func() error {
		db.Close()
		defer conn.Close(ctx)
		return drop()
	}, nil
}

func bareSQLite(path, sync string) (float64, error) {
	db, err := sql.Open("sqlite", path+"?_journal_mode=WAL&_synchronous="+sync)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY, v INTEGER); INSERT OR IGNORE INTO bench VALUES (1, 0)"); err != nil {
		return 0, err
	}
	// One statement in autocommit: one transaction, one commit, nothing else.
	start := time.Now()
	for range *nCommits {
		if _, err := db.Exec("UPDATE bench SET v = v + 1 WHERE id = 1"); err != nil {
			return 0, err
		}
	}
	return float64(*nCommits) / time.Since(start).Seconds(), nil
}

func barePostgres(ctx context.Context, url string) (float64, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	// A real table (a temporary one is not WAL-logged), dropped after.
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS ostask_bench_bare (id int PRIMARY KEY, v int); INSERT INTO ostask_bench_bare VALUES (1, 0) ON CONFLICT DO NOTHING"); err != nil {
		return 0, err
	}
	defer conn.Exec(ctx, "DROP TABLE ostask_bench_bare")
	// One statement in autocommit: one round trip, one commit.
	start := time.Now()
	for range *nCommits {
		if _, err := conn.Exec(ctx, "UPDATE ostask_bench_bare SET v = v + 1 WHERE id = 1"); err != nil {
			return 0, err
		}
	}
	return float64(*nCommits) / time.Since(start).Seconds(), nil
}

func trivial(name string) flow.Task {
	return flow.TaskFunc(name, func(context.Context, flow.Inputs) (any, error) { return nil, nil })
}

func linear(n int) *flow.Flow {
	f := flow.Linear("linear")
	for i := range n {
		f.Add(trivial(fmt.Sprint("t", i)))
	}
	return f
}

func unordered(n int) *flow.Flow {
	f := flow.Unordered("unordered")
	for i := range n {
		f.Add(trivial(fmt.Sprint("t", i)))
	}
	return f
}

// counting counts the transitions an engine writes.
type counting struct {
	*store.Run
	mu sync.Mutex
	n  int
}

func (c *counting) SaveBatch(ctx context.Context, ts []engine.Transition) error {
	c.mu.Lock()
	c.n += len(ts)
	c.mu.Unlock()
	return c.Run.SaveBatch(ctx, ts)
}

// runFlow runs f as a new durable run and returns the transitions written
// and the seconds from the run's creation to its end.
func runFlow(ctx context.Context, db *store.DB, f *flow.Flow, mode engine.Option) (int, float64, error) {
	start := time.Now()
	run, err := db.Create(ctx, store.NewRun{ID: "bench", Flow: f.Name(), Version: "1"})
	if err != nil {
		return 0, 0, err
	}
	c := &counting{Run: run}
	e, err := engine.New(f, mode, engine.WithStorage(c))
	if err != nil {
		return 0, 0, err
	}
	if err := e.Run(ctx); err != nil {
		return 0, 0, err
	}
	return c.n, time.Since(start).Seconds(), nil
}

// concurrentRuns runs k linear flows of n tasks at once on one database.
func concurrentRuns(ctx context.Context, db *store.DB, k, n int) (int, float64, error) {
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	errs := make(chan error, k)
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run, err := db.Create(ctx, store.NewRun{ID: fmt.Sprint("c", i), Flow: "linear", Version: "1"})
			if err != nil {
				errs <- err
				return
			}
			c := &counting{Run: run}
			e, err := engine.New(linear(n), engine.WithStorage(c))
			if err == nil {
				err = e.Run(ctx)
			}
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			total += c.n
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return 0, 0, err
	}
	return total, time.Since(start).Seconds(), nil
}

// resume records an n-atom run that crashed right after its last atom
// succeeded (the flow still RUNNING), then times, repeatedly, what a new
// process does: the load alone, and the whole resume (look up the flow,
// rebuild it, take the run over, load, continue to the end).
func resume(ctx context.Context, db *store.DB, n, times int) (load, full time.Duration, err error) {
	reg := &store.Registry{}
	build := func(map[string]json.RawMessage) (*flow.Flow, map[string]any, error) {
		return linear(n), map[string]any{}, nil
	}
	if err := reg.Register("linear", "1", build); err != nil {
		return 0, 0, err
	}
	var loads, fulls []time.Duration
	for i := range times {
		id := fmt.Sprint("resume-", i)
		run, err := db.Create(ctx, store.NewRun{ID: id, Flow: "linear", Version: "1"})
		if err != nil {
			return 0, 0, err
		}
		ts := []engine.Transition{{Kind: engine.TransitionFlow, From: flow.StatePending, To: flow.StateRunning}}
		for k := range n {
			name := fmt.Sprint("t", k)
			ts = append(ts,
				engine.Transition{Kind: engine.TransitionAtom, From: flow.StatePending, Atom: engine.AtomRecord{Name: name, State: flow.StateRunning}},
				engine.Transition{Kind: engine.TransitionAtom, From: flow.StateRunning, Atom: engine.AtomRecord{Name: name, State: flow.StateSuccess, Result: k}})
		}
		if err := run.SaveBatch(ctx, ts); err != nil {
			return 0, 0, err
		}
		t0 := time.Now()
		if _, err := run.Load(ctx); err != nil {
			return 0, 0, err
		}
		loads = append(loads, time.Since(t0))
		t0 = time.Now()
		e, _, err := db.Resume(ctx, reg, id, "")
		if err != nil {
			return 0, 0, err
		}
		if err := e.Run(ctx); err != nil {
			return 0, 0, err
		}
		fulls = append(fulls, time.Since(t0))
		if e.State() != flow.StateSuccess {
			return 0, 0, fmt.Errorf("resumed run ended %s", e.State())
		}
	}
	return median(loads), median(fulls), nil
}

func medianF(xs []float64) float64 {
	ys := slices.Clone(xs)
	slices.Sort(ys)
	return ys[len(ys)/2]
}

// spread prints the range of a measure over the rounds.
func spread(xs []float64) string {
	return fmt.Sprintf("range %.4g..%.4g", slices.Min(xs), slices.Max(xs))
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// taskflow runs the Python baseline and returns its seconds and peak RSS.
func taskflow(dir string) (float64, int64, error) {
	script := filepath.Join(dir, "taskflow_sql.py")
	if err := os.WriteFile(script, taskflowScript, 0o600); err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, *python, script, fmt.Sprint(*tfTasks), filepath.Join(dir, "taskflow.db"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%w: %s", err, strings.TrimSpace(errb.String()))
	}
	var res struct {
		Seconds  float64 `json:"seconds"`
		MaxRSSKB int64   `json:"maxrss_kb"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return 0, 0, fmt.Errorf("taskflow output %q: %w", out.String(), err)
	}
	return res.Seconds, res.MaxRSSKB, nil
}

// loadAvg returns the machine's load averages: the machine is shared, and
// the figures mean little without them.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// peakRSS returns the process's VmHWM in KiB.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb
		}
	}
	return 0
}
