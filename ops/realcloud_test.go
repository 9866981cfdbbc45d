package ops_test

// Tests against a real OpenStack, opt-in:
//
//	OS_CLIENT_CONFIG_FILE=../shared/realstack/clouds.yaml \
//	OSTASK_TEST_CLOUD=realstack-demo OSTASK_TEST_ADMIN_CLOUD=realstack-admin \
//	go test ./ops -run Real -v
//
// They expect the conventions of shared/realstack: image "cirros-fake",
// flavors "m1.tiny", "m1.small" and "m1.medium", servers named
// fail-abort-* (or with metadata fake_fail=abort) fail their build,
// metadata fake_fail_delete=N fails the first N deletes, networks "none".
// Set OSTASK_TEST_NO_EXTEND=1 where the volume driver cannot extend
// (realstack's cannot).
//
// OSTASK_TEST_NOTIFICATIONS=amqp://openstack:secret@127.0.0.1:5672/ runs
// them with the cloud's notifications on (Config.Notifications).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/ostask/ostask/ops"
)

type realCloud struct {
	cloud                    *ops.Cloud
	image, flavor            string
	flavor2, flavor3, prefix string
}

func dialReal(t *testing.T, env string) *realCloud {
	t.Helper()
	var notify *ops.NotificationConfig
	if url := os.Getenv("OSTASK_TEST_NOTIFICATIONS"); url != "" {
		notify = &ops.NotificationConfig{URL: url}
	}
	return dialRealNotified(t, env, notify)
}

// dialRealNotified dials env's cloud with notify as its notification
// source (nil: none).
func dialRealNotified(t *testing.T, env string, notify *ops.NotificationConfig) *realCloud {
	t.Helper()
	name := os.Getenv(env)
	if name == "" {
		t.Skipf("set %s (and OS_CLIENT_CONFIG_FILE) to run against a real cloud", env)
	}
	ctx := context.Background()
	auth, err := ops.AuthFromClouds(name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ops.Config{MinInterval: 500 * time.Millisecond, MaxInterval: 2 * time.Second, DefaultTimeout: 3 * time.Minute}
	if os.Getenv("OSTASK_TEST_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg.Notifications = notify
	cloud, err := ops.Dial(ctx, auth, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if ns := cloud.Stats().Notifications; ns != nil {
			t.Logf("notifications: %+v", *ns)
			if ns.Connects == 0 {
				t.Errorf("notifications on, but never connected: %v", ns.Err)
			}
		}
		// What the test saw on the way, not only its outcome: a real
		// cloud must never answer 5xx to what ostask sends.
		for code, n := range cloud.Stats().ByStatus {
			if code >= 500 {
				t.Errorf("the cloud answered %d × %d during the test (by route: %v)", n, code, cloud.Stats().ByRoute)
			}
		}
		_ = cloud.Close()
	})
	rc := &realCloud{cloud: cloud, prefix: fmt.Sprintf("ostask-test-%d-", time.Now().Unix())}
	pages, err := images.List(cloud.Image, images.ListOpts{Name: "cirros-fake"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	is, _ := images.ExtractImages(pages)
	if len(is) == 0 {
		t.Fatal("no image cirros-fake")
	}
	rc.image = is[0].ID
	fp, err := flavors.ListDetail(cloud.Compute, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := flavors.ExtractFlavors(fp)
	for _, f := range fs {
		switch f.Name {
		case "m1.tiny":
			rc.flavor = f.ID
		case "m1.small":
			rc.flavor2 = f.ID
		case "m1.medium":
			rc.flavor3 = f.ID
		}
	}
	return rc
}

func (rc *realCloud) opts(name string) ops.ServerCreateOpts {
	return ops.ServerCreateOpts{Name: rc.prefix + name, FlavorRef: rc.flavor, ImageRef: rc.image, Networks: "none"}
}

// cleanupServer deletes id at the end of the test, whatever happened.
func (rc *realCloud) cleanupServer(t *testing.T, id string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for range 3 {
			op, err := rc.cloud.DeleteServer(ctx, id)
			if err == nil {
				if _, err = op.Result(ctx); err == nil {
					return
				}
			}
			t.Logf("cleanup of %s: %v", id, err)
		}
	})
}

func TestRealServerLifecycle(t *testing.T) {
	rc := dialReal(t, "OSTASK_TEST_CLOUD")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	op, err := rc.cloud.CreateServer(ctx, rc.opts("life"))
	if err != nil {
		t.Fatal(err)
	}
	rc.cleanupServer(t, op.ID())
	s, err := op.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "ACTIVE" || s.TaskState != "" {
		t.Fatalf("%s/%q", s.Status, s.TaskState)
	}
	for _, step := range []struct {
		name string
		call func() (*ops.Operation[*servers.Server], error)
		want string
	}{
		{"stop", func() (*ops.Operation[*servers.Server], error) { return rc.cloud.StopServer(ctx, s.ID) }, "SHUTOFF"},
		{"start", func() (*ops.Operation[*servers.Server], error) { return rc.cloud.StartServer(ctx, s.ID) }, "ACTIVE"},
		{"reboot", func() (*ops.Operation[*servers.Server], error) { return rc.cloud.RebootServer(ctx, s.ID, false) }, "ACTIVE"},
		{"resize", func() (*ops.Operation[*servers.Server], error) { return rc.cloud.ResizeServer(ctx, s.ID, rc.flavor2) }, "VERIFY_RESIZE"},
		{"confirm", func() (*ops.Operation[*servers.Server], error) { return rc.cloud.ConfirmResize(ctx, s.ID) }, "ACTIVE"},
	} {
		t0 := time.Now()
		op, err := step.call()
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got, err := op.Result(ctx)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got.Status != step.want || got.TaskState != "" {
			t.Fatalf("%s: %s/%q", step.name, got.Status, got.TaskState)
		}
		t.Logf("%s: %s in %s", step.name, got.Status, time.Since(t0).Round(time.Millisecond))
	}
	img, err := rc.cloud.CreateServerImage(ctx, s.ID, rc.prefix+"snap", nil)
	if err != nil {
		t.Fatal(err)
	}
	im, err := img.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if im.Status != "active" {
		t.Fatalf("image %s", im.Status)
	}
	if d, err := rc.cloud.DeleteImage(ctx, im.ID); err != nil {
		t.Fatal(err)
	} else if _, err := d.Result(ctx); err != nil {
		t.Fatal(err)
	}
	vop, err := rc.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: rc.prefix + "vol", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vop.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	att, err := rc.cloud.AttachVolume(ctx, s.ID, v.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if v, err = att.Result(ctx); err != nil || v.Status != "in-use" {
		t.Fatalf("attach: %v %v", v, err)
	}
	det, err := rc.cloud.DetachVolume(ctx, s.ID, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v, err = det.Result(ctx); err != nil || v.Status != "available" {
		t.Fatalf("detach: %v %v", v, err)
	}
	if d, err := rc.cloud.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	} else if _, err := d.Result(ctx); err != nil {
		t.Fatal(err)
	}
	del, err := rc.cloud.DeleteServer(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.Result(ctx); err != nil {
		t.Fatal(err)
	}
	st := rc.cloud.Stats()
	t.Logf("requests: %d; by status: %v; by route: %v", st.Requests, st.ByStatus, st.ByRoute)
}

// A build that always fails: every attempt ends in a FaultError carrying
// Nova's message, and every failed server is cleaned up, the last one
// included.
func TestRealRetryWithCleanup(t *testing.T) {
	rc := dialReal(t, "OSTASK_TEST_CLOUD")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	o := rc.opts("x")
	o.Name = "fail-abort-" + o.Name // realstack fails builds by name prefix
	t0 := time.Now()
	op, err := rc.cloud.CreateServer(ctx, o, ops.WithRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	_, err = op.Result(ctx)
	rc.cleanupServer(t, op.ID())
	var re *ops.RetriesExhaustedError
	if !errors.As(err, &re) || len(re.Attempts) != 2 {
		t.Fatalf("want 2 failed attempts, got %v", err)
	}
	var fe *ops.FaultError
	if !errors.As(re.Attempts[0], &fe) || !strings.Contains(fe.Message, "aborted") {
		t.Fatalf("attempt 1: want Nova's fault message, got %v", re.Attempts[0])
	}
	for _, id := range []string{fe.ID, op.ID()} {
		if _, err := servers.Get(ctx, rc.cloud.Compute, id).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
			t.Fatalf("the failed server %s was not cleaned up: %v", id, err)
		}
	}
	rc.logStats(t, t0)
}

// A re-run with the key of a run whose build failed and whose wreck was
// kept finds the ERROR server under the key: it deletes it and boots a new
// one (the re-run's server has no fake_fail, so it builds).
func TestRealKeyRemovesWreck(t *testing.T) {
	rc := dialReal(t, "OSTASK_TEST_CLOUD")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	key := rc.prefix + "wreck"
	o := rc.opts("kx")
	o.Metadata = map[string]string{"fake_fail": "abort"}
	t0 := time.Now()
	first, err := rc.cloud.CreateServer(ctx, o, ops.WithIdempotencyKey(key), ops.WithCleanup(ops.CleanupKeep))
	if err != nil {
		t.Fatal(err)
	}
	rc.cleanupServer(t, first.ID())
	if _, err := first.Result(ctx); !errors.Is(err, ops.ErrFault) {
		t.Fatalf("first run: want a FaultError, got %v", err)
	}
	if ss, err := rc.cloud.ServersByKey(ctx, o.Name, key); err != nil || len(ss) != 1 || ss[0].Status != "ERROR" {
		t.Fatalf("want the kept ERROR server under the key, got %v %v", ss, err)
	}
	t.Logf("first run failed and kept its wreck in %s", time.Since(t0).Round(time.Millisecond))
	t1 := time.Now()
	again, err := rc.cloud.CreateServer(ctx, rc.opts("kx"), ops.WithIdempotencyKey(key))
	if err != nil {
		t.Fatal(err)
	}
	rc.cleanupServer(t, again.ID())
	s, err := again.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.Initial().Adopted || s.ID == first.ID() {
		t.Fatalf("the re-run adopted the wreck %s", first.ID())
	}
	ss, err := rc.cloud.ServersByKey(ctx, o.Name, key)
	if err != nil || len(ss) != 1 || ss[0].ID != s.ID || ss[0].Status != "ACTIVE" {
		t.Fatalf("want only the new server %s under the key, got %v %v", s.ID, ss, err)
	}
	t.Logf("re-run removed the wreck and built %s in %s", s.ID, time.Since(t1).Round(time.Millisecond))
	rc.logStats(t, t0)
}

// Every operation with its answer lost after Nova, Cinder or Glance
// carried it out (lost on the client side): each recovers from the
// evidence — key, instance action, attachment, volume — and makes nothing
// twice.
func TestRealLostResponses(t *testing.T) {
	rc := dialReal(t, "OSTASK_TEST_CLOUD")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	// realstack's volume driver cannot extend (error_extending): no extend.
	lostScenario(t, ctx, rc.cloud, rc.image, rc.flavor, rc.flavor2, rc.flavor3, rc.prefix, os.Getenv("OSTASK_TEST_NO_EXTEND") == "")
	rc.logStats(t, t0)
}

// logStats logs the requests the test made.
func (rc *realCloud) logStats(t *testing.T, t0 time.Time) {
	st := rc.cloud.Stats()
	t.Logf("%s: %d requests, by status %v (%d: no answer), by method %v", time.Since(t0).Round(time.Millisecond),
		st.Requests, st.ByStatus, ops.NoAnswer, st.ByMethod)
}

// bootFailingDelete boots a server whose first delete fails into ERROR
// (fake_fail_delete=1); it is deleted at the end of the test.
func (rc *realCloud) bootFailingDelete(t *testing.T, ctx context.Context, name string) *servers.Server {
	t.Helper()
	o := rc.opts(name)
	o.Metadata = map[string]string{"fake_fail_delete": "1"}
	op, err := rc.cloud.CreateServer(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	rc.cleanupServer(t, op.ID())
	s, err := op.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fake_fail_delete=1: the first delete fails into ERROR with a fault; the
// next one works.
func TestRealDeleteFailure(t *testing.T) {
	rc := dialReal(t, "OSTASK_TEST_CLOUD")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	s := rc.bootFailingDelete(t, ctx, "delfail")
	d1, err := rc.cloud.DeleteServer(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	var fe *ops.FaultError
	if _, err := d1.Result(ctx); !errors.As(err, &fe) || fe.Op != "delete" {
		t.Fatalf("first delete: want FaultError, got %v", err)
	}
	t.Logf("first delete failed as planned: %v", fe)
	d2, err := rc.cloud.DeleteServer(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Result(ctx); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

// fake_fail_delete=1 with WithRetries(2): the delete that fails into
// ERROR is sent again, and the second one works.
func TestRealDeleteRetries(t *testing.T) {
	rc := dialReal(t, "OSTASK_TEST_CLOUD")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	s := rc.bootFailingDelete(t, ctx, "delretry")
	t0 := time.Now()
	del, err := rc.cloud.DeleteServer(ctx, s.ID, ops.WithRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.Result(ctx); err != nil {
		t.Fatalf("delete with retries: %v", err)
	}
	if errs := del.AttemptErrors(); del.Attempts() != 2 || len(errs) != 1 || !errors.Is(errs[0], ops.ErrFault) {
		t.Fatalf("%d attempts, errors %v; want the injected failure, then success", del.Attempts(), errs)
	}
	rc.logStats(t, t0)
}

// Ten boots at once, so that Nova schedules several together (its build
// requests): every round answered, one list per round, no GET per server.
func TestRealBatchedMonitor(t *testing.T) {
	rc := dialReal(t, "OSTASK_TEST_CLOUD")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const n = 10
	list := make([]*ops.Operation[*servers.Server], n)
	done := make([]time.Time, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op, err := rc.cloud.CreateServer(ctx, rc.opts(fmt.Sprintf("batch-%d", i)))
			if err != nil {
				errs <- err
				return
			}
			rc.cleanupServer(t, op.ID())
			op.OnDone(func(*servers.Server, error) { done[i] = time.Now() })
			list[i] = op
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, op := range list {
		if _, err := op.Result(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st := rc.cloud.Stats()
	lat := make([]time.Duration, n)
	for i, op := range list {
		s, err := servers.Get(ctx, rc.cloud.Compute, op.ID()).Extract()
		if err != nil {
			t.Fatal(err)
		}
		lat[i] = done[i].Sub(s.LaunchedAt)
		t.Logf("%s: launched %s, updated %s, reported %s", s.ID, s.LaunchedAt.Format("15:04:05.000"), s.Updated.Format("15:04:05"), done[i].Format("15:04:05.000"))
	}
	slices.Sort(lat)
	gets := st.ByRoute["GET /v2.1/servers/{id}"]
	lists := st.ByRoute["GET /v2.1/servers/detail"]
	ms := st.Monitors[ops.KindServer]
	t.Logf("%d boots at once: %d rounds (%d unstable), %d list requests, %d per-server GETs, %d requests in all; "+
		"from Nova's launched_at to completion: median %s, max %s", n, ms.Rounds, ms.UnstableRounds, lists, gets, st.Requests,
		lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	if gets != 0 || lists > 2*ms.Rounds {
		t.Errorf("want no per-server GET and <= 2 lists per round; by route: %v", st.ByRoute)
	}
	if ms.FailedRounds != 0 || ms.FormSwitches != 0 {
		t.Errorf("%d failed monitor rounds, %d list form switches (form %s): the default form must work on a real Nova",
			ms.FailedRounds, ms.FormSwitches, ms.ListForm)
	}
}

// A volume deleted as soon as its create was accepted is deleted, with
// one DELETE that works: if Cinder still had it creating (it refuses to
// delete it then: 400), after the wait for it, with a second. The test
// logs which it saw (realstack's fake backend often makes the volume
// before the delete arrives); cloudsim's TestDeleteVolumeWhileCreating
// covers the wait itself.
func TestRealDeleteVolumeWhileCreating(t *testing.T) {
	rc := dialReal(t, "OSTASK_TEST_CLOUD")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	t0 := time.Now()
	vop, err := rc.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: rc.prefix + "delcreating", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	del, err := rc.cloud.DeleteVolume(ctx, vop.ID())
	if err != nil {
		t.Fatalf("delete of a volume being created: %v", err)
	}
	if _, err := del.Result(ctx); err != nil {
		t.Fatalf("delete of a volume being created: %v", err)
	}
	st := rc.cloud.Stats()
	if refused := st.ByStatus[400]; st.ByMethod["DELETE"] != 1+refused || refused > 1 {
		t.Fatalf("%d DELETEs with %d refused (400): want one that works, after at most one refusal", st.ByMethod["DELETE"], refused)
	}
	t.Logf("deleted %s in %s; Cinder refused the first delete (still creating): %v", vop.ID(), time.Since(t0).Round(time.Millisecond), st.ByStatus[400] == 1)
	rc.logStats(t, t0)
}

// Two projects' Clouds on one NotificationHub, as serve and worker make
// them: one connection to the broker, and each project's boot and delete
// completed by its own events, no monitor round (the reconciliation
// interval is an hour).
func TestRealNotificationHub(t *testing.T) {
	url := os.Getenv("OSTASK_TEST_NOTIFICATIONS")
	if url == "" {
		t.Skip("set OSTASK_TEST_NOTIFICATIONS (and OSTASK_TEST_CLOUD, OSTASK_TEST_ADMIN_CLOUD) to run against a real cloud's bus")
	}
	hub, err := ops.NewNotificationHub(ops.NotificationConfig{URL: url, ReconcileInterval: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Close() }) // after the Clouds' (cleanups run last first)
	cfg := hub.Config()
	rcs := []*realCloud{dialRealNotified(t, "OSTASK_TEST_CLOUD", &cfg), dialRealNotified(t, "OSTASK_TEST_ADMIN_CLOUD", &cfg)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, rc := range rcs {
		for deadline := time.Now().Add(30 * time.Second); !rc.cloud.Stats().Notifications.Connected; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("a Cloud of the hub never connected: %+v", *rc.cloud.Stats().Notifications)
			}
		}
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	for i, rc := range rcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op, err := rc.cloud.CreateServer(ctx, rc.opts(fmt.Sprintf("hub-%d", i)))
			if err != nil {
				t.Error(err)
				return
			}
			rc.cleanupServer(t, op.ID())
			if _, err := op.Result(ctx); err != nil {
				t.Errorf("create: %v", err)
				return
			}
			del, err := rc.cloud.DeleteServer(ctx, op.ID())
			if err == nil {
				_, err = del.Result(ctx)
			}
			if err != nil {
				t.Errorf("delete: %v", err)
			}
		}()
	}
	wg.Wait()
	for i, rc := range rcs {
		st := rc.cloud.Stats()
		if st.Notifications.Completions != 2 || st.Rounds[ops.KindServer] != 0 {
			t.Errorf("cloud %d: %d of 2 operations completed by events, %d monitor rounds: want 2 and 0 (%+v)",
				i, st.Notifications.Completions, st.Rounds[ops.KindServer], *st.Notifications)
		}
	}
	if n := hub.Connections(); n != 1 {
		t.Errorf("two projects made %d connections to the broker, want 1", n)
	}
	t.Logf("two projects, one connection: boot and delete in each in %s", time.Since(t0).Round(time.Millisecond))
}
