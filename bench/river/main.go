// Command river measures bare River, the job queue under ostask's
// service, as the ceiling the service's task throughput is compared with:
// N no-op jobs inserted and worked through River alone, with River's
// PostgreSQL driver (pgx v5) or its SQLite driver, by W clients (one per
// would-be worker process), inserted several ways:
//
//   - insertmany: InsertMany of all N jobs (River's batch insert; batches
//     of 1000 on SQLite);
//   - insert-1: one Insert (one transaction) per job from one goroutine;
//   - insert-32, insert-64: the same from 32 or 64 goroutines.
//
// Jobs/s runs from the first insert to the last completion. Each run gets
// a fresh schema (or SQLite file), dropped afterwards. bench/service runs
// the same measure beside the service's, in one run.
//
//	go run ./bench/river                        # N=5000, W=1,3, PostgreSQL
//	go run ./bench/river -db postgres://postgres@127.0.0.1:5432/test -n 5000 -clients 1,3 -drivers postgres,sqlite
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ostask/ostask/internal/riverbench"
)

func main() {
	dbURL := flag.String("db", envOr("OSTASK_BENCH_DB", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL URL")
	n := flag.Int("n", 5000, "jobs per run")
	clientsFlag := flag.String("clients", "1,3", "comma-separated numbers of River clients (worker processes)")
	modesFlag := flag.String("modes", "insertmany,insert-1,insert-32", "insert modes")
	drivers := flag.String("drivers", "postgres", "comma-separated drivers: postgres, sqlite")
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
	var rows []riverbench.Result
	for _, driver := range strings.Split(*drivers, ",") {
		url := *dbURL
		if driver == "sqlite" {
			url = os.TempDir()
		}
		for _, mode := range strings.Split(*modesFlag, ",") {
			for _, c := range clients {
				r, err := riverbench.Run(ctx, riverbench.Config{Driver: driver, URL: url, Mode: strings.TrimSpace(mode), Clients: c,
					N: *n, MaxWorkers: *maxWorkers})
				if err != nil {
					fmt.Fprintf(os.Stderr, "bench/river: %s %s with %d clients: %v\n", driver, mode, c, err)
					os.Exit(1)
				}
				rows = append(rows, r)
				fmt.Fprintf(os.Stderr, "bench/river: %s %s, %d clients: %.0f jobs/s\n", driver, r.Mode, r.Clients, r.JobsPerSecond)
			}
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "driver\tinsert\tclients\tjobs\tinserted in\tinserts/s\tall worked in\tjobs/s end to end\tCPU ms/job: Go\tPostgreSQL\tsum\t\n")
	for _, r := range rows {
		self, pg, sum := r.CPU.PerItem(r.N)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%.0f\t%s\t%.0f\t%s\t%s\t%s\t\n", r.Driver, r.Mode, r.Clients, r.N, r.InsertFor.Round(time.Millisecond),
			r.InsertsPerSec, r.Total.Round(time.Millisecond), r.JobsPerSecond, self, pg, sum)
	}
	tw.Flush()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
