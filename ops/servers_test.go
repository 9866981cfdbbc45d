package ops_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

func TestCreateServerActive(t *testing.T) {
	tc := start(t, nil, false)
	ctx := ctxT(t)
	op, err := tc.cloud.CreateServer(ctx, serverOpts("web-1"))
	if err != nil {
		t.Fatal(err)
	}
	in := op.Initial()
	if in.StatusCode != 202 || in.ID == "" || in.RequestID == "" {
		t.Fatalf("initial = %+v", in)
	}
	s, err := op.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != in.ID || s.Status != "ACTIVE" || s.TaskState != "" {
		t.Fatalf("server %s %s/%q, want %s ACTIVE/null", s.ID, s.Status, s.TaskState, in.ID)
	}
	if n := tc.cloud.Pending()[ops.KindServer]; n != 0 {
		t.Fatalf("%d watches still pending", n)
	}
}

func TestCreateServerFault(t *testing.T) {
	tc := start(t, &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpServerCreate: {Error: 1}}}, false)
	ctx := ctxT(t)
	op, err := tc.cloud.CreateServer(ctx, serverOpts("doomed"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = op.Result(ctx)
	var fe *ops.FaultError
	if !errors.As(err, &fe) || !errors.Is(err, ops.ErrFault) {
		t.Fatalf("want FaultError, got %T %v", err, err)
	}
	if fe.ID != op.ID() || fe.Status != "ERROR" || !strings.Contains(fe.Message, "No valid host") || fe.RequestID == "" {
		t.Fatalf("fault = %+v", fe)
	}
}

func TestCreateServerHangTimesOut(t *testing.T) {
	tc := start(t, &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpServerCreate: {Hang: 1}}}, false)
	ctx := ctxT(t)
	op, err := tc.cloud.CreateServer(ctx, serverOpts("stuck"), ops.WithTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, err = op.Result(ctx)
	var te *ops.TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("want TimeoutError, got %T %v", err, err)
	}
	if te.LastStatus != "BUILD" || te.LastTaskState == "" {
		t.Fatalf("timeout error lost the last state: %+v", te)
	}
}

func TestCreateServerDeletedWhileBuilding(t *testing.T) {
	tc := start(t, &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpServerCreate: {Hang: 1}}}, false)
	ctx := ctxT(t)
	op, err := tc.cloud.CreateServer(ctx, serverOpts("short-lived"))
	if err != nil {
		t.Fatal(err)
	}
	if r := servers.Delete(ctx, tc.cloud.Compute, op.ID()); r.Err != nil {
		t.Fatal(r.Err)
	}
	_, err = op.Result(ctx)
	if !errors.Is(err, ops.ErrDeleted) {
		t.Fatalf("want DeletedError, got %T %v", err, err)
	}
}

func TestCancelStopsWaiting(t *testing.T) {
	tc := start(t, &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpServerCreate: {Hang: 1}}}, false)
	ctx, cancel := context.WithCancel(ctxT(t))
	op, err := tc.cloud.CreateServer(ctx, serverOpts("cancelled"))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err = op.Result(context.Background())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if n := tc.cloud.Pending()[ops.KindServer]; n != 0 {
		t.Fatalf("cancelled watch still pending (%d)", n)
	}
}

func TestServerActions(t *testing.T) {
	tc := start(t, nil, true)
	ctx := ctxT(t)
	op, err := tc.cloud.CreateServer(ctx, serverOpts("actions"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := op.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := s.ID
	c := tc.cloud
	steps := []struct {
		name string
		call func() (*ops.Operation[*servers.Server], error)
		want string
	}{
		{"stop", func() (*ops.Operation[*servers.Server], error) { return c.StopServer(ctx, id) }, "SHUTOFF"},
		{"start", func() (*ops.Operation[*servers.Server], error) { return c.StartServer(ctx, id) }, "ACTIVE"},
		{"soft reboot", func() (*ops.Operation[*servers.Server], error) { return c.RebootServer(ctx, id, false) }, "ACTIVE"},
		{"hard reboot", func() (*ops.Operation[*servers.Server], error) { return c.RebootServer(ctx, id, true) }, "ACTIVE"},
		{"resize", func() (*ops.Operation[*servers.Server], error) { return c.ResizeServer(ctx, id, "2") }, "VERIFY_RESIZE"},
		{"confirm", func() (*ops.Operation[*servers.Server], error) { return c.ConfirmResize(ctx, id) }, "ACTIVE"},
		{"resize again", func() (*ops.Operation[*servers.Server], error) { return c.ResizeServer(ctx, id, "3") }, "VERIFY_RESIZE"},
		{"revert", func() (*ops.Operation[*servers.Server], error) { return c.RevertResize(ctx, id) }, "ACTIVE"},
		{"migrate", func() (*ops.Operation[*servers.Server], error) { return c.MigrateServer(ctx, id) }, "VERIFY_RESIZE"},
		{"confirm migrate", func() (*ops.Operation[*servers.Server], error) { return c.ConfirmResize(ctx, id) }, "ACTIVE"},
		{"live migrate", func() (*ops.Operation[*servers.Server], error) { return c.LiveMigrateServer(ctx, id) }, "ACTIVE"},
	}
	for _, st := range steps {
		op, err := st.call()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		s, err := op.Result(ctx)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if s.Status != st.want || s.TaskState != "" {
			t.Fatalf("%s: %s/%q, want %s/null", st.name, s.Status, s.TaskState, st.want)
		}
	}
	img, err := c.CreateServerImage(ctx, id, "snap", nil)
	if err != nil {
		t.Fatal(err)
	}
	im, err := img.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if im.ID != img.ID() || im.Status != "active" {
		t.Fatalf("snapshot %s %s", im.ID, im.Status)
	}
	bk, err := c.CreateServerBackup(ctx, id, "bk", "daily", 1)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := bk.Result(ctx); err != nil || b.Status != "active" {
		t.Fatalf("backup: %v %v", b, err)
	}
	del, err := c.DeleteServer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.Result(ctx); err != nil {
		t.Fatal(err)
	}
	for _, sv := range tc.sim.Servers(false) {
		t.Errorf("server left behind: %+v", sv)
	}
}

func TestResizeSilentRollbackIsAFailure(t *testing.T) {
	tc := start(t, &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpServerResize: {Rollback: 1}}}, false)
	ctx := ctxT(t)
	op, err := tc.cloud.CreateServer(ctx, serverOpts("rolls-back"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := op.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := tc.cloud.ResizeServer(ctx, s.ID, "2")
	if err != nil {
		t.Fatal(err)
	}
	_, err = rs.Result(ctx)
	var rb *ops.RolledBackError
	if !errors.As(err, &rb) || !errors.Is(err, ops.ErrRolledBack) {
		t.Fatalf("want RolledBackError, got %T %v", err, err)
	}
	if rb.Status != "ACTIVE" || len(rb.Events) == 0 {
		t.Fatalf("rollback error = %+v (want ACTIVE and the failed events)", rb)
	}
}

func TestSnapshotFailure(t *testing.T) {
	tc := start(t, &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpServerSnapshot: {Error: 1}}}, false)
	ctx := ctxT(t)
	op, err := tc.cloud.CreateServer(ctx, serverOpts("snap-fails"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := op.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tc.cloud.CreateServerImage(ctx, s.ID, "broken", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.Result(ctx); !errors.Is(err, ops.ErrFault) {
		t.Fatalf("want a FaultError for the failed snapshot, got %v", err)
	}
}

// With the first two creates of every server failing, Retries(3) ends with
// every server ACTIVE, no ERROR server and no extra server.
func TestRetryWithCleanup(t *testing.T) {
	plan := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerCreate, FirstN: 2, Kind: cloudsim.FaultError}}}
	tc := start(t, plan, false)
	ctx := ctxT(t)
	const n = 20
	var opsList []*ops.Operation[*servers.Server]
	for i := range n {
		op, err := tc.cloud.CreateServer(ctx, serverOpts(fmt.Sprintf("retry-%02d", i)), ops.WithRetries(3),
			ops.WithBackoff(fastBackoff()))
		if err != nil {
			t.Fatal(err)
		}
		opsList = append(opsList, op)
	}
	ids := map[string]bool{}
	for _, op := range opsList {
		s, err := op.Result(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if op.Attempts() != 3 {
			t.Errorf("%s: %d attempts, want 3", s.Name, op.Attempts())
		}
		ids[s.ID] = true
	}
	live := tc.sim.Servers(false)
	if len(live) != n {
		t.Fatalf("cloudsim holds %d servers, want %d (leaked or lost)", len(live), n)
	}
	for _, sv := range live {
		if sv.Status != "ACTIVE" || !ids[sv.ID] {
			t.Errorf("unexpected server %+v", sv)
		}
	}
}

// A create whose every attempt fails cleans up every wreck by default,
// the last one included; CleanupKeep keeps them all.
func TestRetriesExhausted(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cleanup ops.Cleanup
		left    int
	}{
		{"default cleanup", ops.CleanupDelete, 0},
		{"keep", ops.CleanupKeep, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := start(t, &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpServerCreate: {Error: 1}}}, false)
			ctx := ctxT(t)
			op, err := tc.cloud.CreateServer(ctx, serverOpts("never"), ops.WithRetries(2), ops.WithCleanup(tt.cleanup))
			if err != nil {
				t.Fatal(err)
			}
			_, err = op.Result(ctx)
			var re *ops.RetriesExhaustedError
			if !errors.As(err, &re) || len(re.Attempts) != 2 {
				t.Fatalf("want RetriesExhaustedError with 2 attempts, got %v", err)
			}
			var fe *ops.FaultError
			if !errors.As(err, &fe) {
				t.Fatal("errors.As must reach the attempts' FaultErrors")
			}
			if n := len(tc.sim.Servers(false)); n != tt.left {
				t.Fatalf("%d servers left, want %d", n, tt.left)
			}
		})
	}
}

// A create re-run with the same key (after a crash) adopts what the first
// run made.
func TestIdempotencyKeyAdoptsAfterRerun(t *testing.T) {
	tc := start(t, nil, false)
	ctx := ctxT(t)
	first, err := tc.cloud.CreateServer(ctx, serverOpts("job-42"), ops.WithIdempotencyKey("job-42/boot"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := tc.cloud.CreateServer(ctx, serverOpts("job-42"), ops.WithIdempotencyKey("job-42/boot"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := first.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := second.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || !second.Initial().Adopted {
		t.Fatalf("re-run made %s, first made %s; want adoption", b.ID, a.ID)
	}
	if n := len(tc.sim.Servers(false)); n != 1 {
		t.Fatalf("%d servers, want 1", n)
	}
}

func TestInvalidOptions(t *testing.T) {
	tc := start(t, nil, false)
	ctx := ctxT(t)
	for name, opt := range map[string]ops.Option{
		"zero retries":     ops.WithRetries(0),
		"negative retries": ops.WithRetries(-1),
		"zero timeout":     ops.WithTimeout(0),
		"empty key":        ops.WithIdempotencyKey(""),
	} {
		if _, err := tc.cloud.CreateServer(ctx, serverOpts("x"), opt); !errors.Is(err, ops.ErrInvalidOption) {
			t.Errorf("%s: want ErrInvalidOption, got %v", name, err)
		}
	}
	if n := tc.sim.Counters().Matching("POST"); n != 1 { // only the auth POST
		t.Errorf("invalid options still made %d POSTs", n)
	}
	if _, err := tc.cloud.CreateServer(ctx, ops.ServerCreateOpts{Name: "bad", FlavorRef: "999", ImageRef: cloudsim.CirrosImageID, Networks: "none"},
		ops.WithRetries(3)); err == nil || ops.Retryable(err) {
		t.Fatalf("unknown flavor must fail fast without retry, got %v", err)
	}
}

// With 1,000 concurrent creates, monitoring costs one paginated list per
// round and no per-server GET.
func TestBatchedMonitor(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 servers")
	}
	tc := start(t, nil, false)
	ctx := ctxT(t)
	const n = 1000
	futs := make([]*ops.Operation[*servers.Server], n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			op, err := tc.cloud.CreateServer(ctx, serverOpts(fmt.Sprintf("batch-%04d", i)))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			futs[i] = op
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	for _, f := range futs {
		if _, err := f.Result(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cs := tc.sim.Counters()
	if g := cs.Get("GET", "/compute/v2.1/servers/{server_id}"); g != 0 {
		t.Errorf("%d per-server GETs during monitoring, want 0", g)
	}
	lists := cs.Get("GET", "/compute/v2.1/servers/detail")
	rounds := tc.cloud.Stats().Rounds[ops.KindServer]
	// A round lists at most the 1,000 changed servers: 4 pages of the
	// monitor's 250, plus the empty page Nova's paging needs after a full one.
	if perRound := int64(1000/ops.MonitorPageSize + 1); rounds == 0 || lists > perRound*rounds {
		t.Errorf("%d list requests in %d rounds; want <= %d per round", lists, rounds, perRound)
	}
	t.Logf("%d creates: %d monitor rounds, %d list requests, %d requests in all", n, rounds, lists, cs.Total())
}

func fastBackoff() retryPolicy {
	return retryPolicy{MaxAttempts: 1, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2}
}

// Dial rides out a Keystone that answers 503 for a while.
func TestDialRetriesUnavailableKeystone(t *testing.T) {
	ctx := ctxT(t)
	plan := &cloudsim.FaultPlan{API: cloudsim.APIFaults{Match: "POST /identity", Error503: 0.5, RetryAfter: 10 * time.Millisecond}}
	sim, err := cloudsim.Start(ctx, cloudsim.Config{Faults: plan, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	for i := range 2 {
		cloud, err := ops.Dial(ctx, authFor(sim, false), ops.Config{Clock: newInstantClock()})
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		_ = cloud.Close()
	}
	if n := sim.Counters().Get("POST", "/identity/v3/auth/tokens"); n <= 2 {
		t.Fatalf("%d token requests for 2 dials: the 503s were never hit, the test proves nothing", n)
	}
}

// 503s and 429s on the monitor's list requests slow it down but never fail
// the operations it watches.
func TestMonitorSurvivesTransientErrors(t *testing.T) {
	plan := &cloudsim.FaultPlan{API: cloudsim.APIFaults{Match: "GET /compute/v2.1/servers/detail", Error503: 0.4, RateLimit: 0.2}}
	tc := start(t, plan, false)
	ctx := ctxT(t)
	var list []*ops.Operation[*servers.Server]
	for i := range 5 {
		op, err := tc.cloud.CreateServer(ctx, serverOpts(fmt.Sprintf("weather-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, op)
	}
	for _, op := range list {
		if _, err := op.Result(ctx); err != nil {
			t.Fatalf("a transient list error failed the operation: %v", err)
		}
	}
	if st := tc.cloud.Stats(); st.Throttled == 0 {
		t.Fatal("no 503/429 was answered: the test proves nothing")
	}
}

// A callback that panics does not stop the monitor: later operations
// still complete.
func TestPanickingCallbackDoesNotStopMonitor(t *testing.T) {
	tc := start(t, nil, false)
	ctx := ctxT(t)
	first, err := tc.cloud.CreateServer(ctx, serverOpts("panicky"))
	if err != nil {
		t.Fatal(err)
	}
	first.OnDone(func(*servers.Server, error) { panic("user bug") })
	if _, err := first.Result(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := tc.cloud.CreateServer(ctx, serverOpts("after"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.Result(ctx); err != nil {
		t.Fatalf("the monitor stopped after a panicking callback: %v", err)
	}
}

// Close fails pending operations with ErrMonitorClosed, waits for the
// Cloud's goroutines, and later calls fail fast instead of leaking.
func TestCloseFailsPendingOperations(t *testing.T) {
	tc := start(t, &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpServerCreate: {Hang: 1}}}, false)
	ctx := ctxT(t)
	op, err := tc.cloud.CreateServer(ctx, serverOpts("orphan"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.cloud.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := op.Result(ctx); !errors.Is(err, ops.ErrMonitorClosed) {
		t.Fatalf("pending operation after Close: %v, want ErrMonitorClosed", err)
	}
	before := tc.sim.Counters().Total()
	if _, err := tc.cloud.DeleteServer(ctx, op.ID()); !errors.Is(err, ops.ErrMonitorClosed) {
		t.Fatalf("call after Close: %v, want ErrMonitorClosed", err)
	}
	if after := tc.sim.Counters().Total(); after != before {
		t.Fatalf("a call after Close still made %d requests", after-before)
	}
}

// A snapshot re-run with the same idempotency key adopts the image the
// first run made.
func TestSnapshotIdempotencyKey(t *testing.T) {
	tc := start(t, nil, false)
	ctx := ctxT(t)
	sop, err := tc.cloud.CreateServer(ctx, serverOpts("snapped"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sop.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, err := tc.cloud.CreateServerImage(ctx, s.ID, "nightly", nil, ops.WithIdempotencyKey("run-7/snap"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := first.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := tc.cloud.CreateServerImage(ctx, s.ID, "nightly", nil, ops.WithIdempotencyKey("run-7/snap"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := again.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || !again.Initial().Adopted {
		t.Fatalf("re-run made image %s (adopted %v), first made %s", b.ID, again.Initial().Adopted, a.ID)
	}
	n := 0
	for _, im := range tc.sim.Images() {
		if im.Name == "nightly" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d images named nightly, want 1", n)
	}
}
