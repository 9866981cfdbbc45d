package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/spf13/cobra"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

// fastBuildTimeout is the demo's build timeout with --timing fast, where a
// build takes a few milliseconds.
const fastBuildTimeout = 2 * time.Second

// demoSummary is what `ostask demo` reports.
type demoSummary struct {
	Servers         int            `json:"servers"`
	Succeeded       int            `json:"succeeded"`
	Failed          int            `json:"failed"`
	Retried         int            `json:"retried"`
	ExtraAttempts   int            `json:"extra_attempts"`
	CleanedUp       int            `json:"cleaned_up"`
	Snapshots       int            `json:"snapshots"`
	Leaked          int            `json:"leaked"`
	LeakedIDs       []string       `json:"leaked_ids,omitempty"`
	APIRequests     int64          `json:"api_requests"`
	PollingEstimate int64          `json:"per_resource_polling_requests_estimate"`
	WaitingRequests int64          `json:"waiting_requests"`
	PollingWaiting  int64          `json:"per_resource_polling_waiting_requests_estimate"`
	Throttled       int64          `json:"throttled_answers"`
	WallSeconds     float64        `json:"wall_seconds"`
	FaultPlan       string         `json:"fault_plan"`
	Timing          string         `json:"timing"`
	FailureReasons  map[string]int `json:"failure_reasons,omitempty"`
	// Events: --events, the servers' operations completed from cloudsim's
	// notifications; EventCompletions of them by an event, EventMissed
	// found first by a reconciliation round.
	Events           bool  `json:"events"`
	EventCompletions int64 `json:"event_completions,omitempty"`
	EventMissed      int64 `json:"event_missed,omitempty"`
	ServerListRounds int64 `json:"server_list_rounds"`
	// RecoveredAnswers counts calls whose answer was lost (a dropped
	// connection, a 5xx after the cloud acted) and which completed from
	// what the call had done, without doing it twice.
	RecoveredAnswers int64 `json:"recovered_answers"`
}

func newDemoCmd() *cobra.Command {
	var (
		sf           simFlags
		n, snapshots int
		retries      int
		buildTimeout time.Duration
		asJSON       bool
		events       bool
	)
	c := &cobra.Command{
		Use:   "demo",
		Short: "Boot, attach, snapshot and delete a fleet on an embedded cloudsim with faults, and report",
		Long: `Starts an embedded cloudsim with a realistic timing model and a visible fault
plan (20% of builds fail, 5% hang, 5% of volume creates and 3% of attaches fail,
bursts of 503 and 429), then with ostask: boots --servers servers with retries,
creates and attaches a volume to each, snapshots a few, and deletes everything.
It ends with a summary: succeeded, retried, cleaned up, leaked (must be 0), API
requests made against what per-resource polling would have made, and wall time.
It exits 1 when anything leaked, with --json too.

A fixed --seed fixes the simulator's random stream, not the run's outcome
counts: the 200 pipelines run concurrently, so which request draws which
number (a fault or not) depends on the order in which requests reach the
simulator, which timing decides. Two runs with one seed can therefore differ
by a few in succeeded, failed and retried; leaked is 0 in every run.`,
		Example: `  ostask demo --servers 20 --timing fast
  ostask demo --servers 20 --timing fast --events
  ostask demo --servers 5 --timing fast --fault-plan server.create.error=0.3,api.503=0.05 --seed 7 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkRetries(retries); err != nil {
				return err
			}
			if n < 1 || snapshots < 0 || buildTimeout <= 0 {
				return usageError("--servers must be >= 1, --snapshots >= 0, --build-timeout > 0")
			}
			cfg, err := sf.config()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			sim, err := cloudsim.Start(ctx, cfg)
			if err != nil {
				return err
			}
			defer sim.Close()
			ocfg := ops.Config{MinInterval: time.Second, MaxInterval: 4 * time.Second, RateLimit: 200, Burst: 100}
			if sf.timing == "fast" {
				// Builds take milliseconds: watch closely, and call a
				// build that is not done in 2 s hung.
				ocfg.MinInterval, ocfg.MaxInterval = simConfig.MinInterval, simConfig.MaxInterval
				if !cmd.Flags().Changed("build-timeout") {
					buildTimeout = fastBuildTimeout
				}
			}
			if events {
				// Server operations complete from Nova's notifications,
				// as cloudsim publishes them; polling only reconciles.
				ocfg.Notifications = &ops.NotificationConfig{Stream: sim.Notifications()}
			}
			cloud, err := ops.Dial(ctx, simAuth(sim, false), ocfg)
			if err != nil {
				return err
			}
			defer cloud.Close()
			d := &demo{sim: sim, cloud: cloud, n: n, snapshots: min(snapshots, n), retries: retries, buildTimeout: buildTimeout,
				out: cmd.OutOrStdout(), quiet: asJSON, reasons: map[string]int{}}
			sum, err := d.run(ctx)
			if err != nil {
				return err
			}
			sum.FaultPlan, sum.Timing, sum.Events = sf.faultPlan, sf.timing, events
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), sum); err != nil {
					return err
				}
			} else {
				printSummary(cmd.OutOrStdout(), sum)
			}
			if sum.Leaked > 0 {
				return &ExitError{Code: 1, Err: fmt.Errorf("%d resources leaked", sum.Leaked)}
			}
			return nil
		},
	}
	sf.register(c, "realistic", "demo")
	c.Flags().IntVar(&n, "servers", 200, "servers to boot (each gets a volume)")
	c.Flags().IntVar(&snapshots, "snapshots", 5, "servers to snapshot")
	c.Flags().IntVar(&retries, "retries", 4, retriesUsage+" per create")
	c.Flags().DurationVar(&buildTimeout, "build-timeout", 15*time.Second, "give up on a build (and retry) after this long (with --timing fast: 2s unless set)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON (no progress display)")
	c.Flags().BoolVar(&events, "events", false, "complete server operations from cloudsim's notifications (Nova's versioned notifications), polling only to reconcile; compare the summary's requests with a run without it")
	return c
}

type demo struct {
	sim          *cloudsim.Sim
	cloud        *ops.Cloud
	n, snapshots int
	retries      int
	buildTimeout time.Duration
	out          io.Writer
	quiet        bool

	waited  atomic.Int64 // estimated per-resource polling GETs (1/s of every wait)
	retried atomic.Int64
	// recovered counts operations whose call's answer was lost and which
	// ops completed from what the call had done.
	recovered atomic.Int64
	extra     atomic.Int64
	cleaned   atomic.Int64
	snaps     atomic.Int64
	mu        sync.Mutex
	reasons   map[string]int
}

// wait waits for op and adds what a per-resource poller would have spent.
func waitOp[T any](ctx context.Context, d *demo, op *ops.Operation[T]) (T, error) {
	t0 := time.Now()
	v, err := op.Result(ctx)
	d.waited.Add(int64(time.Since(t0)/time.Second) + 1)
	if op.Initial().Recovered {
		d.recovered.Add(1)
	}
	return v, err
}

func (d *demo) reason(err error) {
	var fe *ops.FaultError
	var te *ops.TimeoutError
	var rb *ops.RolledBackError
	var key string
	switch {
	case errors.As(err, &fe):
		key = fmt.Sprintf("%s %s fault: %s", fe.Kind, fe.Op, firstLine(fe.Message))
	case errors.As(err, &te):
		key = fmt.Sprintf("%s %s timeout (stuck in %s/%s)", te.Kind, te.Op, te.LastStatus, te.LastTaskState)
	case errors.As(err, &rb):
		key = fmt.Sprintf("%s %s rolled back", rb.Kind, rb.Op)
	default:
		key = firstLine(err.Error())
	}
	d.mu.Lock()
	d.reasons[key]++
	d.mu.Unlock()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 90 {
		s = s[:90] + "…"
	}
	return s
}

func (d *demo) countAttempts(attempts int, attemptErrs []error, err error) {
	for _, e := range attemptErrs {
		d.reason(e)
	}
	if attempts > 1 {
		d.retried.Add(1)
		d.extra.Add(int64(attempts - 1))
		d.cleaned.Add(int64(attempts - 1))
	}
	var re *ops.RetriesExhaustedError
	if err != nil && !errors.As(err, &re) {
		d.reason(err)
	}
}

func (d *demo) run(ctx context.Context) (demoSummary, error) {
	disp := newDisplay(ctx, d.out, d.quiet)
	phBoot := disp.phase("boot", d.n)
	phVol := disp.phase("volume", d.n)
	phAttach := disp.phase("attach", d.n)
	phSnap := disp.phase("snapshot", d.snapshots)
	phDel := disp.phase("teardown", d.n)
	start := time.Now()
	stopTicker := d.ticker(ctx, start, phBoot, phVol, phAttach, phSnap, phDel)
	img := cloudsim.CirrosImageID
	var wg sync.WaitGroup
	results := make([]bool, d.n)
	for i := range d.n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = d.pipeline(ctx, i, img, phBoot, phVol, phAttach, phSnap, phDel)
		}()
	}
	wg.Wait()
	stopTicker()
	if disp.p != nil {
		disp.abort()
	}
	if err := ctx.Err(); err != nil {
		return demoSummary{}, err
	}
	sum := demoSummary{Servers: d.n, WallSeconds: time.Since(start).Seconds(), Retried: int(d.retried.Load()),
		ExtraAttempts: int(d.extra.Load()), CleanedUp: int(d.cleaned.Load()), Snapshots: int(d.snaps.Load()), FailureReasons: d.reasons}
	for _, ok := range results {
		if ok {
			sum.Succeeded++
		} else {
			sum.Failed++
		}
	}
	for _, s := range d.sim.Servers(false) {
		sum.LeakedIDs = append(sum.LeakedIDs, "server "+s.ID+" "+s.Status)
	}
	for _, v := range d.sim.Volumes() {
		sum.LeakedIDs = append(sum.LeakedIDs, "volume "+v.ID+" "+v.Status)
	}
	for _, im := range d.sim.Images() {
		if strings.HasPrefix(im.Name, "demo-") {
			sum.LeakedIDs = append(sum.LeakedIDs, "image "+im.ID+" "+im.Status)
		}
	}
	sum.Leaked = len(sum.LeakedIDs)
	st := d.cloud.Stats()
	sum.APIRequests, sum.Throttled = st.Requests, st.Throttled
	cs := d.sim.Counters()
	waitingGETs := cs.Matching("GET /compute") + cs.Matching("GET /volume") + cs.Matching("GET /image")
	sum.WaitingRequests, sum.PollingWaiting = waitingGETs, d.waited.Load()
	sum.PollingEstimate = sum.APIRequests - waitingGETs + d.waited.Load()
	sum.ServerListRounds = st.Monitors[ops.KindServer].Rounds
	sum.RecoveredAnswers = d.recovered.Load()
	if st.Notifications != nil {
		sum.EventCompletions, sum.EventMissed = st.Notifications.Completions, st.Notifications.Missed
	}
	return sum, nil
}

// ticker prints a status line every 5 s when there is no live display.
func (d *demo) ticker(ctx context.Context, start time.Time, phs ...*phase) func() {
	if d.quiet || isTerminal(d.out) {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				var parts []string
				for _, ph := range phs {
					parts = append(parts, fmt.Sprintf("%s %d/%d", ph.name, ph.done.Load(), ph.total))
				}
				fmt.Fprintf(d.out, "[%5.1fs] %s | requests %d\n", time.Since(start).Seconds(), strings.Join(parts, "  "), d.cloud.Stats().Requests)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// pipeline boots server i with a volume, attaches it, maybe snapshots, and
// tears everything down. It reports whether the server made it to ACTIVE
// with its volume attached.
func (d *demo) pipeline(ctx context.Context, i int, img string, phBoot, phVol, phAttach, phSnap, phDel *phase) bool {
	name := fmt.Sprintf("demo-%03d", i)
	itB, itV := phBoot.item(name), phVol.item(name+"-vol")
	quietItem := func(it *item, status string, attempts int, err error) {
		if d.quiet || !isTerminal(d.out) {
			it.ph.done.Add(1)
			if err != nil {
				it.ph.failed.Add(1)
			}
			if attempts > 1 {
				it.ph.retried.Add(1)
			}
			return
		}
		it.done(status, attempts, err)
	}
	sop, serr := d.cloud.CreateServer(ctx, servers.CreateOpts{Name: name, FlavorRef: "1", ImageRef: img, Networks: "none"},
		ops.WithRetries(d.retries), ops.WithTimeout(d.buildTimeout))
	vop, verr := d.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: name + "-vol", Size: 1},
		ops.WithRetries(d.retries), ops.WithTimeout(d.buildTimeout))
	var srv *servers.Server
	if serr == nil {
		srv, serr = waitOp(ctx, d, sop)
		d.countAttempts(sop.Attempts(), sop.AttemptErrors(), serr)
		quietItem(itB, "ACTIVE", sop.Attempts(), serr)
	} else {
		d.reason(serr)
		quietItem(itB, "", 1, serr)
	}
	var vol *ops.Volume
	if verr == nil {
		vol, verr = waitOp(ctx, d, vop)
		d.countAttempts(vop.Attempts(), vop.AttemptErrors(), verr)
		quietItem(itV, "available", vop.Attempts(), verr)
	} else {
		d.reason(verr)
		quietItem(itV, "", 1, verr)
	}
	ok := serr == nil && verr == nil
	attached := false
	itA := phAttach.item(name)
	if ok {
		var aerr error
		for a := 1; a <= 3; a++ {
			var aop *ops.Operation[*ops.Volume]
			if aop, aerr = d.cloud.AttachVolume(ctx, srv.ID, vol.ID, ""); aerr == nil {
				_, aerr = waitOp(ctx, d, aop)
			}
			if aerr == nil || ctx.Err() != nil {
				break
			}
			d.reason(aerr)
		}
		attached = aerr == nil
		ok = attached
		quietItem(itA, "in-use", 1, aerr)
	} else {
		quietItem(itA, "", 0, errors.New("skipped: server or volume failed"))
	}
	var snapID string
	if i < d.snapshots {
		itS := phSnap.item(name)
		if ok {
			iop, err := d.cloud.CreateServerImage(ctx, srv.ID, name+"-snap", nil, ops.WithTimeout(time.Minute))
			if err == nil {
				snapID = iop.ID()
				_, err = waitOp(ctx, d, iop)
			}
			if err == nil {
				d.snaps.Add(1)
			} else {
				d.reason(err)
			}
			quietItem(itS, "active", 1, err)
		} else {
			quietItem(itS, "", 0, errors.New("skipped"))
		}
	}
	// Teardown: everything this pipeline made, whatever happened.
	itD := phDel.item(name)
	var terr error
	if attached {
		if op, err := d.cloud.DetachVolume(ctx, srv.ID, vol.ID); err == nil {
			_, terr = waitOp(ctx, d, op)
		} else {
			terr = err
		}
	}
	var dels []*ops.Operation[struct{}]
	if sop != nil {
		if op, err := d.cloud.DeleteServer(ctx, sop.ID()); err == nil {
			dels = append(dels, op)
		} else {
			terr = errors.Join(terr, err)
		}
	}
	if snapID != "" {
		if op, err := d.cloud.DeleteImage(ctx, snapID); err == nil {
			dels = append(dels, op)
		} else {
			terr = errors.Join(terr, err)
		}
	}
	for _, op := range dels {
		if _, err := waitOp(ctx, d, op); err != nil {
			terr = errors.Join(terr, err)
		}
	}
	// The volume goes last: a volume still attached to a server being
	// deleted cannot be deleted yet.
	if vop != nil {
		if op, err := d.cloud.DeleteVolume(ctx, vop.ID()); err == nil {
			_, err = waitOp(ctx, d, op)
			terr = errors.Join(terr, err)
		} else {
			terr = errors.Join(terr, err)
		}
	}
	if terr != nil {
		d.reason(terr)
	}
	quietItem(itD, "deleted", 1, terr)
	return ok
}

func printSummary(w io.Writer, s demoSummary) {
	fmt.Fprintf(w, "\nostask demo: %d servers, each with a volume, on cloudsim (timing %s, fault plan %s)\n", s.Servers, s.Timing, s.FaultPlan)
	fmt.Fprintf(w, "  succeeded        %d\n  failed           %d\n", s.Succeeded, s.Failed)
	fmt.Fprintf(w, "  retried          %d operations (%d extra attempts)\n", s.Retried, s.ExtraAttempts)
	fmt.Fprintf(w, "  cleaned up       %d failed resources before retrying\n", s.CleanedUp)
	fmt.Fprintf(w, "  snapshots        %d\n", s.Snapshots)
	if s.RecoveredAnswers > 0 {
		fmt.Fprintf(w, "  lost answers     %d calls recovered (done once, found by key or evidence)\n", s.RecoveredAnswers)
	}
	fmt.Fprintf(w, "  leaked           %d\n", s.Leaked)
	for _, id := range s.LeakedIDs {
		fmt.Fprintf(w, "    %s\n", id)
	}
	fmt.Fprintf(w, "  API requests     %d in all, %d of them to wait (%d throttled answers)\n", s.APIRequests, s.WaitingRequests, s.Throttled)
	fmt.Fprintf(w, "  polling instead  about %d in all, %d to wait (one GET per resource per second)\n", s.PollingEstimate, s.PollingWaiting)
	if s.Events {
		fmt.Fprintf(w, "  events           %d server operations completed by notifications, %d found first by polling; %d server list rounds\n",
			s.EventCompletions, s.EventMissed, s.ServerListRounds)
	} else {
		fmt.Fprintf(w, "  server lists     %d rounds (--events completes server operations from notifications instead)\n", s.ServerListRounds)
	}
	fmt.Fprintf(w, "  wall time        %.1fs\n", s.WallSeconds)
	if len(s.FailureReasons) > 0 {
		fmt.Fprintf(w, "  failures seen (and handled):\n")
		keys := make([]string, 0, len(s.FailureReasons))
		for k := range s.FailureReasons {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return s.FailureReasons[keys[i]] > s.FailureReasons[keys[j]] })
		for _, k := range keys {
			fmt.Fprintf(w, "    %4d  %s\n", s.FailureReasons[k], k)
		}
	}
}
