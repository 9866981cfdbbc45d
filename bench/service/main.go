// Command service is the load benchmark of ostask's service: N no-op
// tasks POSTed through the HTTP API by C concurrent clients and worked by
// W workers, on PostgreSQL and on SQLite, until every one succeeded. It
// prints tasks/s (first POST to last completion, seen on the API's live
// stream), p50/p99 POST latency (202 after commit), p99 queue latency
// (a task's start minus its creation), and, in the same run, bare River
// with the same driver, database and worker count (InsertMany, and one
// insert per job from C goroutines) as the ceiling; then the targets as
// PASS or MISS, and the CPU a task costs, in this process and in PostgreSQL,
// against what bare River spends on a job and what the targets leave.
//
// Everything runs in this process: the API (with Keystone validation
// against an embedded cloudsim, cached), the workers and the clients, on
// loopback; on a small machine they share its cores.
//
//	go run ./bench/service                                  # N=5000, C=64, W=1,3, postgres and sqlite
//	go run ./bench/service -n 2000 -workers 3 -stores postgres
//	go run ./bench/service -workers 0                          # POSTs alone, no worker, against bare River's inserts alone
//	go run ./bench/service -rate 1000 -no-river                # open loop: 1,000 POSTs/s whatever the answers' pace
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/internal/cpuuse"
	"github.com/ostask/ostask/internal/riverbench"
	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/service"
)

// Targets of the issue.
const (
	targetTasksPerSec = 2000 // PostgreSQL, 3 workers
	targetPOSTp99     = 20 * time.Millisecond
	targetShare       = 1.0 / 3 // of bare River's InsertMany rate
)

type result struct {
	store    string
	workers  int
	n        int
	total    time.Duration
	perSec   float64
	postP50  time.Duration
	postP99  time.Duration
	queueP50 time.Duration
	queueP99 time.Duration
	cpu      cpuuse.Use                   // from the first POST to the last completion
	river    map[string]riverbench.Result // by insert mode
}

func main() {
	dbURL := flag.String("db", envOr("OSTASK_BENCH_DB", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL URL")
	n := flag.Int("n", 5000, "tasks per run")
	clients := flag.Int("clients", 64, "concurrent HTTP clients")
	workersFlag := flag.String("workers", "1,3", "comma-separated worker counts (0: POSTs alone, nothing works the tasks)")
	stores := flag.String("stores", "postgres,sqlite", "comma-separated stores: postgres, sqlite")
	concurrency := flag.Int("concurrency", 100, "tasks each worker runs at once (River's MaxWorkers in the bare runs)")
	noRiver := flag.Bool("no-river", false, "skip the bare River runs")
	rate := flag.Float64("rate", 0, "POSTs per second, open loop: sent on schedule by up to -clients at once, latency counted from the scheduled time (0: closed loop, each client POSTs again as soon as answered)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the service runs (not the bare River ones) to this file")
	flag.Parse()
	var profile *os.File
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		profile = f
	}
	var workers []int
	for _, f := range strings.Split(*workersFlag, ",") {
		w, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || w < 0 {
			fmt.Fprintf(os.Stderr, "bench/service: bad -workers value %q\n", f)
			os.Exit(2)
		}
		workers = append(workers, w)
	}
	ctx := context.Background()
	loadBefore := loadavg()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fail(err)
	}
	defer sim.Close()
	var rows []result
	for _, st := range strings.Split(*stores, ",") {
		for _, w := range workers {
			if profile != nil {
				if err := pprof.StartCPUProfile(profile); err != nil {
					fail(err)
				}
			}
			r, err := runService(ctx, sim, st, *dbURL, w, *n, *clients, *concurrency, *rate)
			if st != "postgres" {
				r.cpu.PostgresOK = false // its CPU is none of this run's
			}
			if profile != nil {
				pprof.StopCPUProfile()
				profile = nil // one profile: the first run's
			}
			if err != nil {
				fail(fmt.Errorf("%s, %d workers: %w", st, w, err))
			}
			fmt.Fprintf(os.Stderr, "bench/service: %s, %d workers: %.0f tasks/s, POST p99 %s\n", st, w, r.perSec, r.postP99)
			r.river = map[string]riverbench.Result{}
			if !*noRiver {
				url := *dbURL
				if st == "sqlite" {
					url = os.TempDir()
				}
				for _, mode := range []string{riverbench.InsertMany, riverbench.Insert64} {
					rr, err := riverbench.Run(ctx, riverbench.Config{Driver: st, URL: url, Mode: mode, Clients: w, N: *n, MaxWorkers: *concurrency})
					if err != nil {
						fail(fmt.Errorf("bare River %s %s, %d clients: %w", st, mode, w, err))
					}
					fmt.Fprintf(os.Stderr, "bench/service: bare River %s %s, %d clients: %.0f jobs/s\n", st, mode, w, rr.JobsPerSecond)
					r.river[mode] = rr
				}
			}
			rows = append(rows, r)
		}
	}
	loop := "closed loop"
	if *rate > 0 {
		loop = fmt.Sprintf("open loop at %.0f POSTs/s", *rate)
	}
	fmt.Printf("%d no-op tasks, %d HTTP clients (%s); load average before: %s\n\n", *n, *clients, loop, loadBefore)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "store\tworkers\ttasks/s\tPOST p50\tPOST p99\tqueue p50\tqueue p99\tRiver InsertMany jobs/s\tRiver insert-64 jobs/s\tshare of InsertMany\t\n")
	for _, r := range rows {
		im, one := r.river[riverbench.InsertMany], r.river[riverbench.Insert64]
		share := "-"
		if im.JobsPerSecond > 0 {
			share = fmt.Sprintf("%.2f", r.perSec/im.JobsPerSecond)
		}
		qp50, qp99 := ms(r.queueP50), ms(r.queueP99)
		if r.workers == 0 {
			qp50, qp99 = "-", "-" // nothing was dequeued
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%s\t\n", r.store, r.workers, r.perSec, ms(r.postP50), ms(r.postP99),
			qp50, qp99, im.JobsPerSecond, one.JobsPerSecond, share)
	}
	tw.Flush()
	// Where the time goes: with every core busy, tasks/s is the cores
	// divided by the CPU a task costs.
	fmt.Printf("\nCPU per task, ms (first POST or insert to last completion; this process: API, workers and clients; PostgreSQL: all its processes):\n\n")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "store\tworkers\tostask: Go\tPostgreSQL\tsum\tRiver InsertMany: Go\tPostgreSQL\tsum\t\n")
	for _, r := range rows {
		self, pg, sum := r.cpu.PerItem(r.n)
		im := r.river[riverbench.InsertMany]
		rself, rpg, rsum := im.CPU.PerItem(im.N)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.store, r.workers, self, pg, sum, rself, rpg, rsum)
	}
	tw.Flush()
	cores := runtime.NumCPU()
	fmt.Printf("\n%d cores: %d tasks/s leaves at most %.3f ms of CPU per task", cores, targetTasksPerSec, float64(cores)*1000/targetTasksPerSec)
	for _, r := range rows {
		if im := r.river[riverbench.InsertMany]; r.store == "postgres" && r.workers == 3 && im.JobsPerSecond > 0 {
			fmt.Printf("; 1/3 of bare River's InsertMany (%.0f tasks/s) at most %.3f ms", targetShare*im.JobsPerSecond,
				float64(cores)*1000/(targetShare*im.JobsPerSecond))
		}
	}
	fmt.Println(".")
	for _, r := range rows {
		if r.workers == 0 && len(r.river) > 0 {
			fmt.Println("\nworkers 0: nothing works the tasks; tasks/s is POSTs/s, and bare River's figures are its inserts alone (an insert-only client).")
			break
		}
	}
	fmt.Printf("\nload average after: %s\n\ntargets:\n", loadavg())
	for _, r := range rows {
		if r.store == "postgres" && r.workers == 3 {
			verdict(fmt.Sprintf("PostgreSQL, 3 workers: >= %d tasks/s", targetTasksPerSec), r.perSec >= targetTasksPerSec, fmt.Sprintf("%.0f", r.perSec))
			if im := r.river[riverbench.InsertMany]; im.JobsPerSecond > 0 {
				verdict(fmt.Sprintf("PostgreSQL, 3 workers: >= 1/3 of bare River's InsertMany (%.0f jobs/s)", im.JobsPerSecond),
					r.perSec >= targetShare*im.JobsPerSecond, fmt.Sprintf("%.2f", r.perSec/im.JobsPerSecond))
			}
		}
	}
	for _, r := range rows {
		verdict(fmt.Sprintf("%s, %d workers: POST p99 < %s", r.store, r.workers, targetPOSTp99), r.postP99 < targetPOSTp99, ms(r.postP99))
	}
}

func verdict(what string, ok bool, got string) {
	v := "MISS"
	if ok {
		v = "PASS"
	}
	fmt.Printf("  %s  %s (got %s)\n", v, what, got)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

func runService(ctx context.Context, sim *cloudsim.Sim, st, pgURL string, nWorkers, n, nClients, concurrency int, rate float64) (result, error) {
	cfg := jobs.Config{Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()}
	switch st {
	case "postgres":
		schema := fmt.Sprintf("svcbench_%d_%d", os.Getpid(), time.Now().UnixNano()%1_000_000)
		conn, err := pgx.Connect(ctx, pgURL)
		if err != nil {
			return result{}, err
		}
		defer func() {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			conn.Close(context.Background())
		}()
		cfg.URL, cfg.Schema = pgURL, schema
	case "sqlite":
		dir, err := os.MkdirTemp("", "svcbench-")
		if err != nil {
			return result{}, err
		}
		defer os.RemoveAll(dir)
		cfg.URL = filepath.Join(dir, "ostask.db")
	default:
		return result{}, fmt.Errorf("unknown store %q", st)
	}
	q, err := jobs.Open(ctx, cfg)
	if err != nil {
		return result{}, err
	}
	defer q.Close()
	c := sim.AdminCredentials()
	keys, err := service.NewKeystone(ctx, service.KeystoneConfig{Auth: ops.Auth{Options: gophercloud.AuthOptions{
		IdentityEndpoint: c.AuthURL, Username: c.Username, Password: c.Password, DomainName: c.DomainName, TenantName: c.ProjectName}}})
	if err != nil {
		return result{}, err
	}
	srv, err := service.New(service.Config{Backend: q, Auth: keys, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return result{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stop()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = service.Serve(runCtx, ln, srv)
	}()
	for range nWorkers {
		w, err := jobs.NewWorker(q, jobs.WorkerConfig{Concurrency: concurrency})
		if err != nil {
			return result{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = w.Run(runCtx)
		}()
	}
	token, err := login(ctx, sim)
	if err != nil {
		return result{}, err
	}
	base := "http://" + ln.Addr().String()

	// Completions, from the API's live stream of succeeded tasks.
	cl, err := service.NewClient(base, service.StaticToken(token))
	if err != nil {
		return result{}, err
	}
	ready := make(chan struct{})
	allDone := make(chan struct{})
	seen := map[string]bool{}
	followCtx, stopFollow := context.WithCancel(runCtx)
	defer stopFollow()
	followErr := make(chan error, 1)
	go func() {
		followErr <- cl.FollowTasks(followCtx, service.ListOptions{Kind: "noop"}, func() error { close(ready); return nil },
			func(t jobs.Task) error {
				switch {
				case t.Status == jobs.Succeeded:
					if !seen[t.ID] {
						seen[t.ID] = true
						if len(seen) == n {
							close(allDone)
						}
					}
				case t.Status.Final():
					return fmt.Errorf("task %s ended %s: %+v", t.ID, t.Status, t.Error)
				}
				return nil
			})
	}()
	select {
	case <-ready:
	case err := <-followErr:
		return result{}, err
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = nClients
	hc := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	lat := make([]time.Duration, n)
	var next atomic.Int64
	errs := make(chan error, nClients)
	body := []byte(`{"kind":"noop"}`)
	cpu0 := cpuuse.Now()
	start := time.Now()
	// Open loop: POST i is due at start + i/rate; a client takes the next
	// due POST, waits for its time, and its latency counts from then (a
	// POST sent late because every client was busy counts its wait).
	due := func(i int64) time.Time {
		if rate <= 0 {
			return time.Now()
		}
		return start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
	}
	var posters sync.WaitGroup
	for range nClients {
		posters.Add(1)
		go func() {
			defer posters.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				t0 := due(i)
				time.Sleep(time.Until(t0))
				req, _ := http.NewRequestWithContext(runCtx, "POST", base+"/v1/tasks", bytes.NewReader(body))
				req.Header.Set("X-Auth-Token", token)
				req.Header.Set("Content-Type", "application/json")
				res, err := hc.Do(req)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				lat[i] = time.Since(t0)
				if res.StatusCode != 202 {
					errs <- fmt.Errorf("POST: %d", res.StatusCode)
					return
				}
			}
		}()
	}
	posters.Wait()
	close(errs)
	if err := errors.Join(<-errs); err != nil {
		return result{}, err
	}
	slices.Sort(lat)
	if nWorkers == 0 {
		// The API and the create path alone: POSTs per second.
		total := time.Since(start)
		return result{store: st, n: n, total: total, perSec: float64(n) / total.Seconds(), postP50: pct(lat, 50), postP99: pct(lat, 99),
			cpu: cpuuse.Now().Sub(cpu0)}, nil
	}
	select {
	case <-allDone:
	case err := <-followErr:
		return result{}, fmt.Errorf("following completions: %w", err)
	case <-time.After(15 * time.Minute):
		return result{}, fmt.Errorf("only %d of %d tasks succeeded in 15 minutes", len(seen), n)
	}
	total := time.Since(start)
	cpu := cpuuse.Now().Sub(cpu0)
	stopFollow()
	<-followErr

	// Queue latency: each task's start after its creation (commit).
	var queue []time.Duration
	o := service.ListOptions{Kind: "noop", Limit: jobs.MaxLimit}
	for {
		p, err := cl.List(ctx, o)
		if err != nil {
			return result{}, err
		}
		for _, t := range p.Tasks {
			if t.StartedAt != nil {
				queue = append(queue, t.StartedAt.Sub(t.CreatedAt))
			}
		}
		if p.Next == "" {
			break
		}
		o.Marker = p.Next
	}
	if len(queue) != n {
		return result{}, fmt.Errorf("%d tasks listed with a start, want %d", len(queue), n)
	}
	slices.Sort(queue)
	return result{store: st, workers: nWorkers, n: n, total: total, perSec: float64(n) / total.Seconds(),
		postP50: pct(lat, 50), postP99: pct(lat, 99), queueP50: pct(queue, 50), queueP99: pct(queue, 99), cpu: cpu}, nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}

// login gets a demo token from the cloudsim's Keystone.
func login(ctx context.Context, sim *cloudsim.Sim) (string, error) {
	c := sim.DemoCredentials()
	body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"` + c.Username +
		`","domain":{"name":"Default"},"password":"` + c.Password + `"}}},"scope":{"project":{"name":"` + c.ProjectName +
		`","domain":{"name":"Default"}}}}}`
	req, _ := http.NewRequestWithContext(ctx, "POST", c.AuthURL+"/auth/tokens", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		return "", fmt.Errorf("login: %d", res.StatusCode)
	}
	return res.Header.Get("X-Subject-Token"), nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "bench/service: %v\n", err)
	os.Exit(1)
}
