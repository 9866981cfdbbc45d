package ops_test

// Tests against a real OpenStack, opt-in:
//
//	OS_CLIENT_CONFIG_FILE=../shared/realstack/clouds.yaml \
//	OSTASK_TEST_CLOUD=realstack-demo OSTASK_TEST_ADMIN_CLOUD=realstack-admin \
//	go test ./ops -run Real -v
//
// They expect the conventions of shared/realstack: image "cirros-fake",
// flavor "m1.tiny", servers named fail-abort-* fail their build, metadata
// fake_fail_delete=N fails the first N deletes, networks "none".

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

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/ostask/ostask/ops"
)

type realCloud struct {
	cloud           *ops.Cloud
	image, flavor   string
	flavor2, prefix string
}

func dialReal(t *testing.T, env string) *realCloud {
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
	cloud, err := ops.Dial(ctx, auth, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
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
	t.Logf("requests: %d; by route: %v", st.Requests, st.ByRoute)
}

// A build that always fails: every attempt ends in a FaultError carrying
// Nova's message, and every failed server but the last is cleaned up.
func TestRealRetryWithCleanup(t *testing.T) {
	rc := dialReal(t, "OSTASK_TEST_CLOUD")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	o := rc.opts("x")
	o.Name = "fail-abort-" + o.Name // realstack fails builds by name prefix
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
	// The first attempt's server was deleted before the second began.
	first := fe.ID
	if _, err := servers.Get(ctx, rc.cloud.Compute, first).Extract(); err == nil {
		t.Fatalf("the failed server %s of attempt 1 was not cleaned up", first)
	}
}

// fake_fail_delete=1: the first delete fails into ERROR with a fault; the
// next one works.
func TestRealDeleteFailure(t *testing.T) {
	rc := dialReal(t, "OSTASK_TEST_CLOUD")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	o := rc.opts("delfail")
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
