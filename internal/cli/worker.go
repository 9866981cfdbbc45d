package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/store"
)

type workerFlags struct {
	store           string
	osCloud         string
	projectClouds   []string
	id              string
	concurrency     int
	leaseTTL        time.Duration
	shutdownTimeout time.Duration
	maxLosses       int
	metricsListen   string
	monitorInterval time.Duration
	logLevel        string
	exitWhenIdle    bool
	notifications   string
}

func newWorkerCmd() *cobra.Command {
	var f workerFlags
	c := &cobra.Command{
		Use:   "worker",
		Short: "Run the tasks of an ostask service's queue (as many worker processes as you like)",
		Long: `Run tasks of the queue in --store (the database 'ostask serve' writes to):
claim them through River, run each task's flow through the durable store, and
record its events. Start any number of workers, on any machines, against one
PostgreSQL database; a SQLite file serves the workers of one machine.

Each running task is held under a lease the worker renews every --lease-ttl/3.
When a worker dies (even SIGKILL), another takes its tasks over once their
leases expire (about --lease-ttl later), with a new fencing epoch: the old
worker, if it was only paused, is stopped at its next write. A task that loses
its worker --max-losses times is a poison task: the next worker reverts what it
did instead of running it again, and fails it; if the revert kills workers
--max-losses times too, the task fails naming what it left in the cloud.

Tasks act with credentials configured per project in clouds.yaml, never with
a caller's token: --os-cloud X serves X's project, --project-cloud
PROJECT=CLOUD adds more. A task of another project fails ("no credentials").

SIGTERM or Ctrl-C stops claiming; running tasks are suspended at their next
step and handed back to the other workers within --shutdown-timeout.`,
		Example: simNote + `  ostask worker --exit-when-idle   # the default store; the project of $OS_CLOUD
  # on each of several machines:
  #   ostask worker --store postgres://ostask@db.example/ostask --os-cloud prod --project-cloud web=prod-web
  #   ostask worker --store postgres://ostask@db.example/ostask --os-cloud prod --metrics-listen 127.0.0.1:9101`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWorker(cmd.Context(), cmd, f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.store, "store", "", "the queue's database: postgres://... (several machines) or a SQLite file (PATH or sqlite:PATH; default: ostask.db under the state directory)")
	fl.StringVar(&f.osCloud, "os-cloud", "", "cloud name in clouds.yaml whose project this worker serves (default $OS_CLOUD)")
	fl.StringArrayVar(&f.projectClouds, "project-cloud", nil, projectCloudUsage)
	fl.StringVar(&f.id, "id", "", "this worker's name in tasks, events and the fencing history (default: host, pid and a random suffix)")
	fl.IntVar(&f.concurrency, "concurrency", jobs.DefaultConcurrency, "tasks run at once")
	fl.DurationVar(&f.leaseTTL, "lease-ttl", jobs.DefaultLeaseTTL, "lease of a running task; a dead worker's tasks are taken over about this long after it died")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", jobs.DefaultShutdownTimeout, "on SIGTERM, time to hand running tasks back")
	fl.IntVar(&f.maxLosses, "max-losses", jobs.DefaultMaxLosses, "times a task may lose its worker before it is reverted and failed as a poison task")
	fl.StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus metrics on ADDR (/metrics)")
	fl.DurationVar(&f.monitorInterval, "monitor-interval", 0, "shortest wait between the monitor's list rounds (default $"+monitorIntervalEnv+", else 1s)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error (logs go to stderr)")
	fl.StringVar(&f.notifications, "notifications", "", notificationsUsage)
	fl.BoolVar(&f.exitWhenIdle, "exit-when-idle", false, "stop once no task is queued or running (a batch run)")
	return c
}

func runWorker(ctx context.Context, cmd *cobra.Command, f workerFlags) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return usageError("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	if f.concurrency < 1 || f.leaseTTL < time.Second || f.shutdownTimeout <= 0 || f.maxLosses < 1 {
		return usageError("--concurrency and --max-losses must be at least 1, --lease-ttl at least 1s, --shutdown-timeout positive")
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	url, err := storeURL(f.store)
	if err != nil {
		return err
	}
	if url == "none" {
		return usageError("--store none: a worker needs the queue's database")
	}
	osCloud := f.osCloud
	if osCloud == "" {
		osCloud = envOSCloud()
	}
	cf := cloudFlags{interval: f.monitorInterval}
	iv, err := cf.monitorInterval()
	if err != nil {
		return err
	}
	var ocfg ops.Config
	if iv > 0 {
		ocfg.MinInterval, ocfg.MaxInterval = iv, max(iv, ops.DefaultMaxInterval)
	}
	if osCloud == "" && len(f.projectClouds) == 0 {
		return usageError("no cloud credentials: give --os-cloud NAME (or OS_CLOUD) and/or --project-cloud PROJECT=CLOUD")
	}
	auths, err := projectAuths(osCloud, f.projectClouds, f.notifications)
	if err != nil {
		return err
	}
	ocfg.Logger = log
	clouds, err := newProjectClouds(ctx, auths, ocfg)
	if err != nil {
		return err
	}
	defer clouds.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	storeOpts := []store.Option{store.WithSecrets(clouds.Secrets()...)}
	if hook, err := crashHook(); err != nil {
		return err
	} else if hook != nil {
		storeOpts = append(storeOpts, store.WithWriteHook(hook))
	}
	q, err := jobs.Open(ctx, jobs.Config{URL: url, Logger: log, Registerer: reg, Clouds: clouds.Resolve, StoreOptions: storeOpts})
	if err != nil {
		return fmt.Errorf("queue %s: %w", redactURL(url), err)
	}
	defer q.Close()
	w, err := jobs.NewWorker(q, jobs.WorkerConfig{ID: f.id, Concurrency: f.concurrency, LeaseTTL: f.leaseTTL,
		ShutdownTimeout: f.shutdownTimeout, MaxLosses: f.maxLosses, StepHook: crashStepHook()})
	if err != nil {
		return err
	}
	if f.metricsListen != "" {
		ln, err := net.Listen("tcp", f.metricsListen)
		if err != nil {
			return usageError("--metrics-listen %s: %v", f.metricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		log.Info("metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	}
	log.Info("worker started", "id", w.ID(), "store", redactURL(url), "concurrency", f.concurrency, "lease_ttl", f.leaseTTL)
	fmt.Fprintf(cmd.OutOrStdout(), "worker %s ready\n", w.ID())
	if f.exitWhenIdle {
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		defer stop()
		go func() {
			defer stop()
			for idle := 0; idle < 2; {
				select {
				case <-ctx.Done():
					return
				case <-time.After(500 * time.Millisecond):
				}
				open, err := openTasks(ctx, q)
				if err != nil {
					log.Warn("exit-when-idle", "err", err)
					continue
				}
				if open {
					idle = 0
				} else {
					idle++
				}
			}
			log.Info("no task queued or running: stopping")
		}()
	}
	err = w.Run(ctx)
	log.Info("worker stopped", "id", w.ID())
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// crashStepEnv makes a worker kill itself (SIGKILL) whenever one of the
// listed steps starts, in any task: "STEP" before the step's Execute,
// "revert:STEP" before its Revert, several separated by commas. It exists
// for the poison task tests, which need a task that kills every worker
// running it at the same step.
const crashStepEnv = "OSTASK_TEST_CRASH_STEP"

func crashStepHook() func(task, step string, revert bool) {
	spec := os.Getenv(crashStepEnv)
	if spec == "" {
		return nil
	}
	at := map[string]bool{}
	for _, s := range strings.Split(spec, ",") {
		at[strings.TrimSpace(s)] = true
	}
	return func(_, step string, revert bool) {
		if revert {
			step = "revert:" + step
		}
		if at[step] {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
}

// envOSCloud is OS_CLOUD, trimmed.
func envOSCloud() string { return strings.TrimSpace(os.Getenv("OS_CLOUD")) }

// openTasks reports whether a task is queued, running or reverting.
func openTasks(ctx context.Context, q *jobs.Queue) (bool, error) {
	for _, s := range []jobs.Status{jobs.Queued, jobs.Running, jobs.Reverting} {
		p, err := q.List(ctx, jobs.Filter{Status: s, Limit: 1})
		if err != nil {
			return false, err
		}
		if len(p.Tasks) > 0 {
			return true, nil
		}
	}
	return false, nil
}
