// Command monitor compares ostask's batched monitor with per-resource
// polling (gophercloud's servers.WaitForStatus: one GET per server per
// second) on N concurrent server creates against an in-process cloudsim
// with the fast timing model. It prints, for each N: API requests (all,
// and those spent waiting), p50/p99 latency from the moment cloudsim made
// the server ACTIVE to the moment the waiter knew, wall time, and memory
// per pending operation.
//
//	go run ./bench/monitor            # N = 100, 1000, 5000
//	go run ./bench/monitor -n 100,1000
//
// A third waiter, "ostask events", completes from cloudsim's notifications
// carried by a real RabbitMQ (-amqp; skipped if unreachable), with polling
// stretched to a 30 s reconciliation interval; its list requests are
// reported beside it. Its latency depends on what else the machine runs
// (every row shows the 1-minute load average before its run): -rounds
// repeats it and reports the median p99, -events-only skips the others.
//
//	go run ./bench/monitor -events-only -rounds 5 -n 1000,5000
//
// With -os-cloud it boots N servers at once on a real cloud instead, with
// the CLI's defaults, and reports per-server latency from Nova's ACTIVE
// (launched_at) to completion, list requests, unstable rounds and 5xx
// answers; it deletes what it made:
//
//	OS_CLIENT_CONFIG_FILE=clouds.yaml go run ./bench/monitor -os-cloud mycloud -n 30,100 -flavor m1.tiny -image cirros
//
// and with -notifications amqp://… it boots each N twice, with events off
// and on, and also reports the lateness from each instance.create.end
// that Nova emitted to ostask's report.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

type result struct {
	name           string
	n              int
	requests       int64 // every OpenStack request after auth
	waitRequests   int64 // requests other than the creates
	lists          int64 // GET /servers/detail
	events         bool
	p50, p99, maxL time.Duration
	wall           time.Duration
	bytesPerOp     float64
	load           string // the 1-minute load average before the run
}

const pollInterval = time.Second // gophercloud.WaitFor's fixed interval; the monitor gets the same

func main() {
	simChild := flag.Bool("sim-child", false, "internal: serve a cloudsim for the memory measurement")
	ns := flag.String("n", "100,1000,5000", "comma-separated numbers of concurrent creates")
	workers := flag.Int("workers", 64, "concurrent create calls")
	osCloud := flag.String("os-cloud", "", "boot on this real cloud (clouds.yaml) instead of cloudsim")
	flavor := flag.String("flavor", "m1.tiny", "with -os-cloud: flavor name or id")
	image := flag.String("image", "cirros-fake", "with -os-cloud: image name or id")
	prefix := flag.String("prefix", "bench-mon-", "with -os-cloud: name prefix of the servers it boots")
	amqpURL := flag.String("amqp", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ for the events waiter (\"\" to skip it)")
	notifications := flag.String("notifications", "", "with -os-cloud: the cloud's AMQP broker; boots each N with events off and on")
	eventsOnly := flag.Bool("events-only", false, "measure only the events waiter")
	rounds := flag.Int("rounds", 1, "runs of the events waiter for each N")
	flag.DurationVar(&buildTime, "build", 0, "how long each cloudsim server build takes (0: fast timing, about 20 ms); longer than the creates take puts all N operations pending at once")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the cloudsim runs to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench/monitor: %v\n", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *simChild {
		runSimChild()
		return
	}
	var counts []int
	for _, f := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench/monitor: bad -n value %q\n", f)
			os.Exit(2)
		}
		counts = append(counts, n)
	}
	ctx := context.Background()
	if *osCloud != "" {
		if err := runReal(ctx, *osCloud, counts, *flavor, *image, *prefix, *notifications); err != nil {
			fmt.Fprintf(os.Stderr, "bench/monitor: %v\n", err)
			os.Exit(1)
		}
		return
	}
	var rows, evRows []result
	for _, n := range counts {
		for _, run := range []func(context.Context, int, int) (result, error){runMonitor, runPolling} {
			if *eventsOnly {
				break
			}
			runtime.GC() // no run pays for the garbage of the one before
			r, err := run(ctx, n, *workers)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench/monitor: %v\n", err)
				os.Exit(1)
			}
			rows = append(rows, r)
			fmt.Fprintf(os.Stderr, "bench/monitor: %s N=%d done in %s\n", r.name, r.n, r.wall.Round(time.Millisecond))
		}
		if *amqpURL == "" {
			continue
		}
		for range max(*rounds, 1) {
			runtime.GC()
			r, err := runEvents(ctx, n, *workers, *amqpURL)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench/monitor: events waiter skipped: %v\n", err)
				*amqpURL = ""
				break
			}
			evRows = append(evRows, r)
			fmt.Fprintf(os.Stderr, "bench/monitor: %s N=%d done in %s\n", r.name, r.n, r.wall.Round(time.Millisecond))
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "waiter\tN\trequests\twaiting requests\tlist requests\tp50 latency\tp99 latency\tmax latency\twall\tbytes/pending op\tload\t\n")
	for _, r := range append(slices.Clone(rows), evRows...) {
		bytes := fmt.Sprintf("%.0f", r.bytesPerOp)
		if r.events {
			bytes = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.name, r.n, r.requests, r.waitRequests, r.lists,
			r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond), r.maxL.Round(100*time.Microsecond),
			r.wall.Round(time.Millisecond), bytes, r.load)
	}
	tw.Flush()
	fmt.Println()
	for i := 0; i+1 < len(rows); i += 2 {
		a, b := rows[i], rows[i+1]
		fmt.Printf("N=%d: per-resource polling made %.0fx the waiting requests of the monitor (%d vs %d); monitor p99 %s vs target %s\n",
			a.n, float64(b.waitRequests)/float64(max(a.waitRequests, 1)), b.waitRequests, a.waitRequests,
			a.p99.Round(time.Millisecond), (pollInterval + 50*time.Millisecond))
	}
	if *rounds > 1 {
		byN := map[int][]time.Duration{}
		for _, r := range evRows {
			byN[r.n] = append(byN[r.n], r.p99)
		}
		for _, n := range counts {
			p99s := byN[n]
			if len(p99s) == 0 {
				continue
			}
			slices.Sort(p99s)
			med := p99s[len(p99s)/2]
			verdict := "MISS"
			if med <= eventsP99Target {
				verdict = "PASS"
			}
			over := 0
			for _, p := range p99s {
				if p > eventsP99Target {
					over++
				}
			}
			fmt.Printf("N=%d: events p99 over %d runs: median %s (target %s: %s), best %s, worst %s; %d of %d runs over the target\n", n, len(p99s),
				med.Round(100*time.Microsecond), eventsP99Target, verdict, p99s[0].Round(100*time.Microsecond),
				p99s[len(p99s)-1].Round(100*time.Microsecond), over, len(p99s))
		}
	}
	for _, r := range evRows {
		intervals := max(1, int64((r.wall+reconcileInterval-1)/reconcileInterval))
		fmt.Printf("N=%d: events p99 %s vs target %s; %d list requests in %s (%d reconciliation intervals of %s; target <= 1 per interval)\n",
			r.n, r.p99.Round(100*time.Microsecond), eventsP99Target, r.lists, r.wall.Round(time.Millisecond), intervals, reconcileInterval)
	}
}

// loadAvg1 is the machine's 1-minute load average ("" where unknown): on
// a shared machine the figures mean little without it.
func loadAvg1() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// buildTime is -build: the servers' build time in the cloudsim runs.
var buildTime time.Duration

// simTiming is the cloudsim runs' timing: fast, with builds of -build.
func simTiming() cloudsim.Timing {
	t := cloudsim.FastTiming()
	if buildTime > 0 {
		// Four steps of a quarter each; the 20% jitter spreads the ends.
		step := buildTime / 4
		t.BuildSchedule, t.BuildNetworking, t.BuildBlockDevice, t.BuildSpawn = step, step, step, step
	}
	return t
}

func newSim(ctx context.Context, plan *cloudsim.FaultPlan) (*cloudsim.Sim, error) {
	t := simTiming()
	return cloudsim.Start(ctx, cloudsim.Config{Timing: &t, Faults: plan})
}

func authOpts(sim *cloudsim.Sim) gophercloud.AuthOptions {
	c := sim.DemoCredentials()
	return gophercloud.AuthOptions{IdentityEndpoint: c.AuthURL, Username: c.Username, Password: c.Password,
		DomainName: c.DomainName, TenantName: c.ProjectName}
}

func opts(i int) servers.CreateOpts {
	return servers.CreateOpts{Name: fmt.Sprintf("bench-%05d", i), FlavorRef: "1", ImageRef: cloudsim.CirrosImageID, Networks: "none"}
}

// parallel runs fn(i) for i in [0,n) on w goroutines.
func parallel(n, w int, fn func(i int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

func runMonitor(ctx context.Context, n, workers int) (result, error) {
	sim, err := newSim(ctx, nil)
	if err != nil {
		return result{}, err
	}
	defer sim.Close()
	cloud, err := ops.Dial(ctx, ops.Auth{Options: authOpts(sim)}, ops.Config{MinInterval: pollInterval, MaxInterval: pollInterval,
		RateLimit: 1e6, Burst: 1e6})
	if err != nil {
		return result{}, err
	}
	defer cloud.Close()
	sim.ResetCounters()
	load := loadAvg1()
	ids, done, wall, err := createAll(ctx, cloud, n, workers)
	if err != nil {
		return result{}, err
	}
	r := measure(sim, "ostask monitor", n, ids, done, wall, load)
	r.bytesPerOp, err = pendingBytesMonitor(ctx, n, workers)
	return r, err
}

// createAll makes n server creates through cloud on workers goroutines
// and waits for all: the ids, when each operation was done, and the wall
// time from the first call to the last completion.
func createAll(ctx context.Context, cloud *ops.Cloud, n, workers int) ([]string, []time.Time, time.Duration, error) {
	done := make([]time.Time, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	start := time.Now()
	err := parallel(n, workers, func(i int) error {
		op, err := cloud.CreateServer(ctx, opts(i))
		if err != nil {
			return err
		}
		ids[i] = op.ID()
		wg.Add(1)
		op.OnDone(func(_ *servers.Server, err error) {
			done[i] = time.Now()
			wg.Done()
		})
		return nil
	})
	if err != nil {
		return nil, nil, 0, err
	}
	wg.Wait()
	return ids, done, time.Since(start), nil
}

func runPolling(ctx context.Context, n, workers int) (result, error) {
	sim, err := newSim(ctx, nil)
	if err != nil {
		return result{}, err
	}
	defer sim.Close()
	pc, err := openstack.AuthenticatedClient(ctx, authOpts(sim))
	if err != nil {
		return result{}, err
	}
	compute, err := openstack.NewComputeV2(pc, gophercloud.EndpointOpts{})
	if err != nil {
		return result{}, err
	}
	compute.Microversion = "2.60"
	sim.ResetCounters()
	load := loadAvg1()
	done := make([]time.Time, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var waitErr error
	start := time.Now()
	err = parallel(n, workers, func(i int) error {
		s, err := servers.Create(ctx, compute, opts(i), nil).Extract()
		if err != nil {
			return err
		}
		ids[i] = s.ID
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := servers.WaitForStatus(ctx, compute, s.ID, "ACTIVE"); err != nil {
				mu.Lock()
				waitErr = err
				mu.Unlock()
			}
			done[i] = time.Now()
		}()
		return nil
	})
	if err != nil {
		return result{}, err
	}
	wg.Wait()
	if waitErr != nil {
		return result{}, waitErr
	}
	wall := time.Since(start)
	r := measure(sim, "per-resource polling", n, ids, done, wall, load)
	r.bytesPerOp, err = pendingBytesPolling(ctx, n, workers)
	return r, err
}

func measure(sim *cloudsim.Sim, name string, n int, ids []string, done []time.Time, wall time.Duration, load string) result {
	cs := sim.Counters()
	r := result{name: name, n: n, wall: wall, requests: cs.Total(), load: load}
	r.waitRequests = r.requests - cs.Get("POST", "/compute/v2.1/servers")
	r.lists = cs.Get("GET", "/compute/v2.1/servers/detail")
	became := map[string]time.Time{}
	for _, s := range sim.Servers(false) {
		became[s.ID] = s.ChangedAt
	}
	lat := make([]time.Duration, 0, n)
	for i, id := range ids {
		lat = append(lat, done[i].Sub(became[id]))
	}
	slices.Sort(lat)
	r.p50, r.p99, r.maxL = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	return r
}

// heapNow returns live heap plus goroutine stacks after a GC.
func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// The memory of pending operations is measured against a cloudsim in a
// child process (this same binary with -sim-child), so that the
// simulator's own heap does not mix with the waiters'.

// childSim starts cloudsim in a child process with every build hanging.
func childSim(ctx context.Context) (authURL string, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "-sim-child")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return "", nil, fmt.Errorf("child cloudsim: %w", err)
	}
	return strings.TrimSpace(line), func() { _ = stdin.Close(); _ = cmd.Wait() }, nil
}

// runSimChild serves a cloudsim whose builds hang until stdin closes.
func runSimChild() {
	t := cloudsim.FastTiming()
	sim, err := cloudsim.Start(context.Background(), cloudsim.Config{Timing: &t,
		Faults: &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpServerCreate: {Hang: 1}}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(sim.AuthURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = sim.Close()
}

func childAuth(authURL string) gophercloud.AuthOptions {
	return gophercloud.AuthOptions{IdentityEndpoint: authURL, Username: "demo", Password: cloudsim.DefaultPassword,
		DomainName: "Default", TenantName: "demo"}
}

// pendingBytesMonitor is the live heap per pending operation: n creates
// whose servers never leave BUILD, all watched at once.
func pendingBytesMonitor(ctx context.Context, n, _ int) (float64, error) {
	authURL, stop, err := childSim(ctx)
	if err != nil {
		return 0, err
	}
	defer stop()
	cloud, err := ops.Dial(ctx, ops.Auth{Options: childAuth(authURL)}, ops.Config{MinInterval: time.Hour, MaxInterval: time.Hour, RateLimit: 1e6, Burst: 1e6})
	if err != nil {
		return 0, err
	}
	defer cloud.Close()
	keep := make([]*ops.Operation[*servers.Server], n)
	// Warm up the client (connections, buffers) before the baseline.
	if _, err := cloud.CreateServer(ctx, opts(-1)); err != nil {
		return 0, err
	}
	base := heapNow()
	for i := range n {
		if keep[i], err = cloud.CreateServer(ctx, opts(i)); err != nil {
			return 0, err
		}
	}
	after := heapNow()
	runtime.KeepAlive(keep)
	return (float64(after) - float64(base)) / float64(n), nil
}

// pendingBytesPolling is the same for a goroutine per server polling with
// servers.WaitForStatus.
func pendingBytesPolling(ctx context.Context, n, _ int) (float64, error) {
	authURL, stop, err := childSim(ctx)
	if err != nil {
		return 0, err
	}
	defer stop()
	pc, err := openstack.AuthenticatedClient(ctx, childAuth(authURL))
	if err != nil {
		return 0, err
	}
	compute, err := openstack.NewComputeV2(pc, gophercloud.EndpointOpts{})
	if err != nil {
		return 0, err
	}
	compute.Microversion = "2.60"
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	if _, err := servers.Create(ctx, compute, opts(-1), nil).Extract(); err != nil {
		return 0, err
	}
	// Create first, then start the pollers, so that creating does not
	// compete with thousands of polls; measure once each has polled.
	ids := make([]string, n)
	for i := range n {
		s, err := servers.Create(ctx, compute, opts(i), nil).Extract()
		if err != nil {
			return 0, err
		}
		ids[i] = s.ID
	}
	base := heapNow()
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = servers.WaitForStatus(wctx, compute, id, "ACTIVE")
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	after := heapNow()
	return (float64(after) - float64(base)) / float64(n), nil
}
