package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/ostask/ostask/ops"
)

// cliCalls is how many calls `ostask server create --count N` makes at
// once (internal/cli's maxCalls).
const cliCalls = 16

// realResult is one boot of n servers on a real cloud.
type realResult struct {
	n                 int
	failed            int
	found             int // servers of the run found by name afterwards (n - failed if none is unowned)
	lists, listRounds int64
	unstableRounds    int64
	perServerGETs     int64
	requests          int64
	status5xx         map[int]int64
	formSwitches      int
	form              string
	p50, p99, maxL    time.Duration
	late              int // servers reported later than the interval in effect + 1 s
	firstActive       time.Duration
	lastActive        time.Duration
	lastReported      time.Duration
	wall              time.Duration
	// With -notifications: events on for this boot, and the lateness
	// from each instance.create.end Nova emitted to ostask's report.
	events                 bool
	endSeen                int
	endP50, endP99, endMax time.Duration
	completions, missed    int64
}

// runReal boots n servers at once on a real cloud through ops with the
// CLI's defaults (ops.Config{}, as `ostask server create --count N` does),
// and measures, per server, the time from Nova's ACTIVE (launched_at,
// microseconds) to the operation completing. The clocks of this machine
// and the cloud must agree (they do on loopback). Every server is deleted
// afterwards.
func runReal(ctx context.Context, cloudName string, counts []int, flavor, image, prefix, notifications string) error {
	var rows []realResult
	modes := []string{""}
	if notifications != "" {
		modes = append(modes, notifications)
	}
	for _, n := range counts {
		for _, mode := range modes {
			r, err := bootReal(ctx, cloudName, n, flavor, image, prefix, mode, notifications)
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "N\tfailed\tservers found\tlist requests\trounds\tunstable rounds\tper-server GETs\t5xx\tlist form\tfirst ACTIVE\tlast ACTIVE\tlast reported\tp50 latency\tp99 latency\tmax latency\tlate\t\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", r.n, r.failed, r.found, r.lists, r.listRounds,
			r.unstableRounds, r.perServerGETs, fmt5xx(r.status5xx), r.form,
			"+"+r.firstActive.Round(100*time.Millisecond).String(), "+"+r.lastActive.Round(100*time.Millisecond).String(),
			"+"+r.lastReported.Round(100*time.Millisecond).String(),
			r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.maxL.Round(time.Millisecond), r.late)
	}
	tw.Flush()
	fmt.Println("\nlatency: Nova's launched_at to the operation completing. late: servers reported later than the")
	fmt.Println("monitor interval in effect at the time + 1 s (the target). Times are from the first create call.")
	if notifications != "" {
		fmt.Println()
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "N\tevents\tcreate.end seen\tp50 from create.end\tp99 from create.end\tmax from create.end\tcompletions by events\tmissed\tlist requests\trequests\t\n")
		for _, r := range rows {
			fmt.Fprintf(tw, "%d\t%v\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t\n", r.n, r.events, r.endSeen, r.endP50.Round(time.Millisecond),
				r.endP99.Round(time.Millisecond), r.endMax.Round(time.Millisecond), r.completions, r.missed, r.lists, r.requests)
		}
		tw.Flush()
		fmt.Println("\nfrom create.end: the timestamp of Nova's instance.create.end (read on a queue of the bench's own) to the")
		fmt.Println("operation completing in ostask. Target with events on: p99 <= 100 ms.")
	}
	return nil
}

// routeCount sums the requests to routes ending in suffix (the route
// keeps the endpoint's path prefix, which differs between clouds).
func routeCount(st ops.Stats, method, suffix string) int64 {
	var n int64
	for k, v := range st.ByRoute {
		if strings.HasPrefix(k, method+" ") && strings.HasSuffix(k, suffix) {
			n += v
		}
	}
	return n
}

func fmt5xx(m map[int]int64) string {
	var parts []string
	var codes []int
	for c := range m {
		if c >= 500 {
			codes = append(codes, c)
		}
	}
	sort.Ints(codes)
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", m[c], c))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ",")
}

func bootReal(ctx context.Context, cloudName string, n int, flavor, image, prefix, events, broker string) (realResult, error) {
	auth, err := ops.AuthFromClouds(cloudName)
	if err != nil {
		return realResult{}, err
	}
	cfg := ops.Config{}
	if events != "" {
		cfg.Notifications = &ops.NotificationConfig{URL: events}
	}
	var ends *createEnds
	if broker != "" {
		if ends, err = watchCreateEnds(broker, ops.DefaultNotificationExchange); err != nil {
			return realResult{}, err
		}
		defer ends.stop()
	}
	if os.Getenv("BENCH_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cloud, err := ops.Dial(ctx, auth, cfg)
	if err != nil {
		return realResult{}, err
	}
	defer cloud.Close()
	for deadline := time.Now().Add(10 * time.Second); events != "" && !cloud.Stats().Notifications.Connected; {
		if time.Now().After(deadline) {
			return realResult{}, fmt.Errorf("notifications never connected: %v", cloud.Stats().Notifications.Err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	flavorID, imageID, err := resolveReal(ctx, cloud, flavor, image)
	if err != nil {
		return realResult{}, err
	}
	before := cloud.Stats()
	name := fmt.Sprintf("%s%d-%d", prefix, n, time.Now().Unix()%100000)
	type rec struct {
		id   string
		done time.Time
		err  error
	}
	recs := make([]rec, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := time.Now()
	var lastCall time.Time
	var callErr error
	// As `ostask server create --count N` does: at most cliCalls calls at
	// once (waiting is free).
	calls := make(chan struct{}, cliCalls)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			calls <- struct{}{}
			op, err := cloud.CreateServer(ctx, ops.ServerCreateOpts{Name: fmt.Sprintf("%s-%03d", name, i),
				FlavorRef: flavorID, ImageRef: imageID, Networks: "none"}, ops.WithRetries(3))
			<-calls
			mu.Lock()
			if now := time.Now(); now.After(lastCall) {
				lastCall = now
			}
			if err != nil {
				callErr = errors.Join(callErr, err)
				mu.Unlock()
				return
			}
			mu.Unlock()
			_, err = op.Result(ctx)
			recs[i] = rec{id: op.ID(), done: time.Now(), err: err}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	after := cloud.Stats()
	r := realResult{n: n, wall: wall, status5xx: map[int]int64{}}
	r.requests = after.Requests - before.Requests
	r.lists = routeCount(after, "GET", "/servers/detail") - routeCount(before, "GET", "/servers/detail")
	r.perServerGETs = routeCount(after, "GET", "/servers/{id}") - routeCount(before, "GET", "/servers/{id}")
	for c, v := range after.ByStatus {
		if d := v - before.ByStatus[c]; d > 0 {
			r.status5xx[c] = d
		}
	}
	if ns := after.Notifications; ns != nil {
		r.events, r.completions, r.missed = true, ns.Completions, ns.Missed
	}
	var endLat []time.Duration
	for _, x := range recs {
		if end, ok := ends.at(x.id); ok && x.err == nil {
			endLat = append(endLat, x.done.Sub(end))
		}
	}
	slices.Sort(endLat)
	if r.endSeen = len(endLat); r.endSeen > 0 {
		r.endP50, r.endP99, r.endMax = endLat[len(endLat)/2], endLat[(len(endLat)*99)/100], endLat[len(endLat)-1]
	}
	ms := after.Monitors[ops.KindServer]
	r.listRounds, r.unstableRounds, r.form, r.formSwitches = ms.Rounds, ms.UnstableRounds, ms.ListForm, ms.FormSwitches

	// Nova's ACTIVE times, read after the fact (not counted above).
	var lat []time.Duration
	cfgMin, cfgMax := ops.DefaultMinInterval, ops.DefaultMaxInterval
	for _, x := range recs {
		if x.err != nil || x.id == "" {
			r.failed++
			continue
		}
		s, err := servers.Get(ctx, cloud.Compute, x.id).Extract()
		if err != nil {
			return r, fmt.Errorf("get %s: %w", x.id, err)
		}
		active := s.LaunchedAt
		d := x.done.Sub(active)
		lat = append(lat, d)
		if r.firstActive == 0 || active.Sub(start) < r.firstActive {
			r.firstActive = active.Sub(start)
		}
		r.lastActive = max(r.lastActive, active.Sub(start))
		r.lastReported = max(r.lastReported, x.done.Sub(start))
		// The monitor's interval when the change happened: a tenth of the
		// age of the youngest operation, within [Min, Max].
		interval := min(max(cfgMin, active.Sub(lastCall)/10), cfgMax)
		if d > interval+time.Second {
			r.late++
		}
	}
	if callErr != nil {
		fmt.Fprintf(os.Stderr, "bench/monitor: create calls failed: %v\n", callErr)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		r.p50, r.p99, r.maxL = lat[len(lat)/2], lat[(len(lat)*99)/100], lat[len(lat)-1]
	}
	// Clean up every server of this run, found by name: a create that
	// failed may have left one without telling its id.
	var dels []*ops.Operation[struct{}]
	left, err := servers.List(cloud.Compute, servers.ListOpts{Name: "^" + name + "-"}).AllPages(ctx)
	if err != nil {
		return r, fmt.Errorf("list the run's servers: %w", err)
	}
	ss, err := servers.ExtractServers(left)
	if err != nil {
		return r, err
	}
	if len(ss) > n-r.failed {
		fmt.Fprintf(os.Stderr, "bench/monitor: %d servers named %s-*, %d reported: %d unowned\n", len(ss), name, n-r.failed, len(ss)-(n-r.failed))
	}
	r.found = len(ss)
	for _, s := range ss {
		op, err := cloud.DeleteServer(ctx, s.ID, ops.WithRetries(3))
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench/monitor: delete %s: %v\n", s.ID, err)
			continue
		}
		dels = append(dels, op)
	}
	for _, op := range dels {
		if _, err := op.Result(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "bench/monitor: delete %s: %v\n", op.ID(), err)
		}
	}
	fmt.Fprintf(os.Stderr, "bench/monitor: real N=%d (events %v) done in %s (%d requests)\n", n, events != "", wall.Round(time.Millisecond), r.requests)
	return r, nil
}

// resolveReal finds the flavor and image by name or id.
func resolveReal(ctx context.Context, cloud *ops.Cloud, flavor, image string) (string, string, error) {
	fpages, err := flavors.ListDetail(cloud.Compute, nil).AllPages(ctx)
	if err != nil {
		return "", "", err
	}
	fs, err := flavors.ExtractFlavors(fpages)
	if err != nil {
		return "", "", err
	}
	var flavorID string
	for _, f := range fs {
		if f.ID == flavor || f.Name == flavor {
			flavorID = f.ID
		}
	}
	ipages, err := images.List(cloud.Image, images.ListOpts{}).AllPages(ctx)
	if err != nil {
		return "", "", err
	}
	is, err := images.ExtractImages(ipages)
	if err != nil {
		return "", "", err
	}
	var imageID string
	for _, im := range is {
		if im.ID == image || im.Name == image {
			imageID = im.ID
		}
	}
	if flavorID == "" || imageID == "" {
		return "", "", fmt.Errorf("flavor %q or image %q not found", flavor, image)
	}
	return flavorID, imageID, nil
}
