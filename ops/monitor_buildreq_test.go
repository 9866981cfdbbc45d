package ops_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

// startBuildRequests starts a cloudsim that models Nova's build requests:
// every new server stays one (BUILD/scheduling, listed in front of the
// cell's servers, no updated_at) until the test releases it with
// Sim.ScheduleBuildRequest.
func startBuildRequests(t *testing.T, cfg ops.Config) *testCloud {
	t.Helper()
	ctx := context.Background()
	timing := cloudsim.FastTiming()
	timing.BuildRequests, timing.BuildRequestPhase = true, time.Hour
	sim, err := cloudsim.Start(ctx, cloudsim.Config{Timing: &timing})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	cred := sim.DemoCredentials()
	cfg.RateLimit, cfg.Burst = 1000, 100
	cloud, err := ops.Dial(ctx, ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: cred.AuthURL, Username: cred.Username,
		Password: cred.Password, DomainName: cred.DomainName, TenantName: cred.ProjectName}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cloud.Close() })
	return &testCloud{sim: sim, cloud: cloud}
}

// releaseAll ends the build-request phase of every server still in it.
func releaseAll(t *testing.T, sim *cloudsim.Sim) {
	t.Helper()
	for _, id := range sim.BuildRequests() {
		if err := sim.ScheduleBuildRequest(id); err != nil {
			t.Fatal(err)
		}
	}
}

// The default list form is one real Nova serves while it schedules: a
// burst of boots makes no 5xx and no failed round.
func TestMonitorDuringBuildRequests(t *testing.T) {
	tc := startBuildRequests(t, ops.Config{MinInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond})
	ctx := ctxT(t)
	rounds := make(chan struct{}, 1)
	var ops_ []*ops.Operation[*servers.Server]
	for i := range 6 {
		op, err := tc.cloud.CreateServer(ctx, serverOpts(fmt.Sprintf("sched-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ops_ = append(ops_, op)
	}
	// Let the monitor list while all six are build requests.
	tc.cloud.AfterServerListPage(func([]string) {
		select {
		case rounds <- struct{}{}:
		default:
		}
	})
	for range 3 {
		<-rounds
	}
	if n := len(tc.sim.BuildRequests()); n != 6 {
		t.Fatalf("%d build requests while the monitor listed, want 6", n)
	}
	releaseAll(t, tc.sim)
	for _, op := range ops_ {
		if _, err := op.Result(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st := tc.cloud.Stats()
	for code, n := range st.ByStatus {
		if code >= 500 {
			t.Errorf("%d answers %d", n, code)
		}
	}
	if ms := st.Monitors[ops.KindServer]; ms.FailedRounds != 0 || ms.FormSwitches != 0 {
		t.Errorf("monitor: %d failed rounds, %d form switches, want none", ms.FailedRounds, ms.FormSwitches)
	}
}

// The list form the monitor used to send (sorted by updated_at) answers
// 500 while two servers are build requests. A monitor that starts with it
// switches to the next form, and no operation waits for the builds to
// leave scheduling to be noticed.
func TestMonitorSwitchesAwayFromUpdatedAtSort(t *testing.T) {
	h := &signalHandler{match: "switched to another", ch: make(chan slog.Record, 1)}
	tc := startBuildRequests(t, ops.Config{MinInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond, Logger: slog.New(h)})
	tc.cloud.SetServerListForms(ops.ListForm{Name: "updated_at-asc", SortKey: "updated_at", SortDir: "asc"},
		ops.ListForm{Name: "created_at-asc", SortKey: "created_at", SortDir: "asc"})
	ctx := ctxT(t)
	var list []*ops.Operation[*servers.Server]
	for i := range 3 {
		op, err := tc.cloud.CreateServer(ctx, serverOpts(fmt.Sprintf("upd-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, op)
	}
	select {
	case <-h.ch:
	case <-ctx.Done():
		t.Fatal("the monitor never gave up the updated_at form")
	}
	releaseAll(t, tc.sim)
	for _, op := range list {
		if _, err := op.Result(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st := tc.cloud.Stats()
	ms := st.Monitors[ops.KindServer]
	if ms.ListForm != "created_at-asc" || ms.FormSwitches != 1 || ms.FailedRounds != 0 {
		t.Errorf("form %q, %d switches, %d failed rounds; want created_at-asc, 1, 0", ms.ListForm, ms.FormSwitches, ms.FailedRounds)
	}
	if n := st.ByStatus[http.StatusInternalServerError]; n != ops.FormSwitchAfter {
		t.Errorf("%d answers 500, want %d (one per round until the form is given up)", n, ops.FormSwitchAfter)
	}
}

// While servers move from build requests to their cell between two page
// requests, Nova's paging skips servers. A change skipped that way must
// still complete its operation from the lists (the per-server GET safety
// net is turned off here), even when the skipping lasts longer than the
// changes-since window's overlap: the window does not move past a round
// that may have skipped.
func TestNoCompletionLostToUnstablePaging(t *testing.T) {
	// 150 rounds of 20 ms outlast the window's margin: the 1 ms overlap,
	// the second the cloud's clock estimate errs early, and the whole
	// seconds of changes-since and of the Date header.
	const skippingRounds = 150
	tc := startBuildRequests(t, ops.Config{MinInterval: 20 * time.Millisecond, MaxInterval: 20 * time.Millisecond, Overlap: time.Millisecond})
	ctx := ctxT(t)
	tc.cloud.SetMonitorPageSize(2)
	tc.cloud.SetServerStaleRounds(1 << 30)

	// A: an old server in its cell, which the test will stop.
	a, err := tc.cloud.CreateServer(ctx, serverOpts("a-old"))
	if err != nil {
		t.Fatal(err)
	}
	releaseAll(t, tc.sim)
	if _, err := a.Result(ctx); err != nil {
		t.Fatal(err)
	}
	// Build requests created after A (not watched: made with a plain
	// client), enough to fill page 1 of every disturbed round.
	compute := plainCompute(t, tc.sim)
	for i := range skippingRounds + 2 {
		if _, err := servers.Create(ctx, compute, serverOpts(fmt.Sprintf("b-%03d", i)), nil).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	// Each round's page 1 holds two build requests; moving the second to
	// its cell before page 2 is asked for makes Nova continue after it in
	// the cell, past A, which was created before it.
	var mu sync.Mutex
	skipped, after := 0, 0
	calm := make(chan struct{})
	tc.cloud.AfterServerListPage(func(ids []string) {
		mu.Lock()
		defer mu.Unlock()
		if skipped == skippingRounds {
			// Undisturbed pages after the skipping; the first round
			// after it must see A.
			if after++; after == 4 {
				close(calm)
			}
			return
		}
		brs := tc.sim.BuildRequests()
		if len(ids) != 2 || !slices.Contains(brs, ids[0]) || !slices.Contains(brs, ids[1]) {
			return
		}
		if err := tc.sim.ScheduleBuildRequest(ids[1]); err != nil {
			t.Error(err)
			return
		}
		skipped++
	})
	stop, err := tc.cloud.StopServer(ctx, a.ID())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-calm:
	case <-stop.Done():
		mu.Lock()
		n := skipped
		mu.Unlock()
		if n < skippingRounds {
			t.Fatalf("the stop completed after %d of %d disturbed rounds: the monitor saw A on a round the test did not disturb, so the test proves nothing", n, skippingRounds)
		}
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if _, err, done := stop.Peek(); !done || err != nil {
		t.Fatalf("undisturbed rounds after the skipping, and the stop is done=%v err=%v: the change was lost", done, err)
	}
	st := tc.cloud.Stats()
	if ms := st.Monitors[ops.KindServer]; ms.UnstableRounds < skippingRounds {
		t.Errorf("%d unstable rounds counted, want >= %d", ms.UnstableRounds, skippingRounds)
	}
	for route, n := range st.ByRoute {
		if strings.HasSuffix(route, "/servers/{id}") && strings.HasPrefix(route, "GET ") && n > 0 {
			t.Errorf("%d per-server GETs (%s), want none", n, route)
		}
	}
}

// plainCompute is a gophercloud compute client on sim, outside ops.
func plainCompute(t *testing.T, sim *cloudsim.Sim) *gophercloud.ServiceClient {
	t.Helper()
	cred := sim.DemoCredentials()
	pc, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{IdentityEndpoint: cred.AuthURL,
		Username: cred.Username, Password: cred.Password, DomainName: cred.DomainName, TenantName: cred.ProjectName})
	if err != nil {
		t.Fatal(err)
	}
	c, err := openstack.NewComputeV2(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	c.Microversion = "2.60"
	return c
}

// A server deleted while Nova still schedules it never reaches a cell, so
// no changes-since list shows it as DELETED: its delete completes through
// the direct look at watches no round has shown (a 404).
func TestDeleteWhileBuildRequest(t *testing.T) {
	tc := startBuildRequests(t, ops.Config{MinInterval: 10 * time.Millisecond, MaxInterval: 20 * time.Millisecond})
	ctx := ctxT(t)
	create, err := tc.cloud.CreateServer(ctx, serverOpts("short-lived"))
	if err != nil {
		t.Fatal(err)
	}
	if brs := tc.sim.BuildRequests(); !slices.Contains(brs, create.ID()) {
		t.Fatalf("the new server is not a build request (%v): the test proves nothing", brs)
	}
	del, err := tc.cloud.DeleteServer(ctx, create.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.Result(ctx); err != nil {
		t.Fatalf("delete: %v", err)
	}
	var gone *ops.DeletedError
	if _, err := create.Result(ctx); !errors.As(err, &gone) {
		t.Errorf("the create of a server deleted while scheduled: %v, want a DeletedError", err)
	}
	var gets int64
	for route, n := range tc.cloud.Stats().ByRoute {
		if strings.HasPrefix(route, "GET ") && strings.HasSuffix(route, "/servers/{id}") {
			gets += n
		}
	}
	if gets == 0 {
		t.Error("no per-server GET: then what proved the server gone?")
	}
}
