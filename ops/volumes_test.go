package ops_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

func TestVolumeLifecycle(t *testing.T) {
	tc := start(t, nil, false)
	ctx := ctxT(t)
	c := tc.cloud
	sop, err := c.CreateServer(ctx, serverOpts("vol-host"))
	if err != nil {
		t.Fatal(err)
	}
	vop, err := c.CreateVolume(ctx, ops.VolumeCreateOpts{Name: "data", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sop.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vop.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != "available" || v.ID != vop.ID() {
		t.Fatalf("volume %s %s", v.ID, v.Status)
	}
	ext, err := c.ExtendVolume(ctx, v.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	if v, err = ext.Result(ctx); err != nil || v.Size != 3 || v.Status != "available" {
		t.Fatalf("extend: %v %v", v, err)
	}
	att, err := c.AttachVolume(ctx, s.ID, v.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if v, err = att.Result(ctx); err != nil || v.Status != "in-use" || len(v.Attachments) != 1 || v.Attachments[0].ServerID != s.ID {
		t.Fatalf("attach: %+v %v", v, err)
	}
	det, err := c.DetachVolume(ctx, s.ID, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v, err = det.Result(ctx); err != nil || v.Status != "available" {
		t.Fatalf("detach: %+v %v", v, err)
	}
	del, err := c.DeleteVolume(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.Result(ctx); err != nil {
		t.Fatal(err)
	}
	if vs := tc.sim.Volumes(); len(vs) != 0 {
		t.Fatalf("volumes left: %+v", vs)
	}
	// Deleting what is already gone succeeds at once.
	again, err := c.DeleteVolume(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Result(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestVolumeCreateFaultAndRetry(t *testing.T) {
	plan := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpVolumeCreate, Name: "flaky", FirstN: 1, Kind: cloudsim.FaultError}}}
	tc := start(t, plan, false)
	ctx := ctxT(t)
	op, err := tc.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: "flaky", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = op.Result(ctx)
	var fe *ops.FaultError
	if !errors.As(err, &fe) || fe.Status != "error" || fe.Kind != ops.KindVolume {
		t.Fatalf("want a volume FaultError, got %v", err)
	}
	// Same name again: the plan fails only the first, and retries clean up.
	plan2 := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpVolumeCreate, FirstN: 2, Kind: cloudsim.FaultError}}}
	tc2 := start(t, plan2, false)
	op2, err := tc2.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: "retried", Size: 1}, ops.WithRetries(3), ops.WithBackoff(fastBackoff()))
	if err != nil {
		t.Fatal(err)
	}
	v, err := op2.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vs := tc2.sim.Volumes()
	if len(vs) != 1 || vs[0].ID != v.ID || vs[0].Status != "available" || op2.Attempts() != 3 {
		t.Fatalf("after retries: %+v (attempts %d)", vs, op2.Attempts())
	}
}

func TestVolumeDeleteFault(t *testing.T) {
	tc := start(t, &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpVolumeDelete: {Error: 1}}}, false)
	ctx := ctxT(t)
	op, err := tc.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: "sticky", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	v, err := op.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	del, err := tc.cloud.DeleteVolume(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	var fe *ops.FaultError
	if _, err := del.Result(ctx); !errors.As(err, &fe) || fe.Status != "error_deleting" {
		t.Fatalf("want error_deleting FaultError, got %v", err)
	}
}

// A create re-run with the key of a volume that is already available
// adopts it, even though it will not change again.
func TestVolumeAdoptsAvailable(t *testing.T) {
	tc := start(t, nil, false)
	ctx := ctxT(t)
	first, err := tc.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: "keep", Size: 1}, ops.WithIdempotencyKey("run-1/keep"))
	if err != nil {
		t.Fatal(err)
	}
	v1, err := first.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := tc.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: "keep", Size: 1}, ops.WithIdempotencyKey("run-1/keep"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := again.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v2.ID != v1.ID || !again.Initial().Adopted || len(tc.sim.Volumes()) != 1 {
		t.Fatalf("re-run made %s (adopted %v), first %s; %d volumes", v2.ID, again.Initial().Adopted, v1.ID, len(tc.sim.Volumes()))
	}
}

// The calls an attach makes besides the monitor's (the attach itself, and
// the server-side confirmation) ride out 503s and 429s.
func TestAttachSurvivesThrottling(t *testing.T) {
	tc := start(t, &cloudsim.FaultPlan{API: cloudsim.APIFaults{Match: "os-volume_attachments", Error503: 0.5, RateLimit: 0.2}}, false)
	ctx := ctxT(t)
	sop, err := tc.cloud.CreateServer(ctx, serverOpts("busy"))
	if err != nil {
		t.Fatal(err)
	}
	vop, err := tc.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: "busy-vol", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sop.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := vop.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, attach := range []bool{true, false} {
		var op *ops.Operation[*ops.Volume]
		if attach {
			op, err = tc.cloud.AttachVolume(ctx, srv.ID, vol.ID, "")
		} else {
			op, err = tc.cloud.DetachVolume(ctx, srv.ID, vol.ID)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := op.Result(ctx); err != nil {
			t.Fatalf("attach=%v: %v", attach, err)
		}
	}
	if tc.cloud.Stats().Throttled == 0 {
		t.Fatal("no 503/429 was answered: the test proves nothing")
	}
}

// A volume deleted by someone else while it was being created never shows
// in Cinder's lists again; the monitor notices by a direct look once the
// watch has gone unobserved for a few rounds.
func TestVolumeVanishesWhileCreating(t *testing.T) {
	tc := start(t, &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpVolumeCreate: {Hang: 1}}}, true)
	ctx := ctxT(t)
	op, err := tc.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: "doomed", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	// An admin force-deletes the stuck volume.
	url := tc.cloud.Volume.ServiceURL("volumes", op.ID()) + "?force=true"
	if _, err := tc.cloud.Volume.Delete(ctx, url, nil); err != nil {
		t.Fatal(err)
	}
	_, err = op.Result(ctx)
	var de *ops.DeletedError
	if !errors.As(err, &de) || de.ID != op.ID() {
		t.Fatalf("want DeletedError for %s, got %v", op.ID(), err)
	}
}

// A volume still being created cannot be deleted (Cinder's 400):
// DeleteVolume waits for it with the monitor, not by polling it, and a
// volume that never leaves creating fails after the call's timeout with a
// *TimeoutError naming it.
func TestDeleteVolumeWhileCreating(t *testing.T) {
	tc := start(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpVolumeCreate, Name: "hung", Kind: cloudsim.FaultHang}}}, false)
	ctx := ctxT(t)
	c := tc.cloud
	cctx, stop := context.WithCancel(ctx)
	op, err := c.CreateVolume(cctx, ops.VolumeCreateOpts{Name: "hung", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	stop()
	_, _ = op.Result(ctx)
	before := tc.sim.Counters()
	_, err = c.DeleteVolume(ctx, op.ID(), ops.WithTimeout(time.Second))
	var te *ops.TimeoutError
	if !errors.As(err, &te) || te.ID != op.ID() || te.LastStatus != "creating" {
		t.Fatalf("delete of a volume that never leaves creating: %v", err)
	}
	after := tc.sim.Counters()
	deletes := after.Matching("DELETE", "volumes/{") - before.Matching("DELETE", "volumes/{")
	gets := after.Matching("GET", "volumes/{") - before.Matching("GET", "volumes/{")
	lists := after.Matching("GET", "volumes/detail") - before.Matching("GET", "volumes/detail")
	t.Logf("while waiting: %d delete, %d GETs of the volume, %d lists", deletes, gets, lists)
	// The delete is not sent again while the volume is creating, and the
	// wait is the monitor's (its list rounds, a look at a watch the lists
	// do not show), not a loop of GETs of its own.
	if deletes != 1 || gets*2 > lists {
		t.Fatalf("%d deletes, %d GETs and %d lists of volumes while it was waited for, want 1 refused delete and the lists' rounds", deletes, gets, lists)
	}
	if vs := tc.sim.Volumes(); len(vs) != 1 || vs[0].Status != "creating" {
		t.Fatalf("volumes %+v", vs)
	}
}

// A volume deleted while Cinder still creates it is deleted once it can
// be: the first DELETE is refused (400), the monitor waits for the create
// to end, and a second DELETE removes it.
func TestDeleteVolumeAfterItsCreate(t *testing.T) {
	ctx := ctxT(t)
	timing := cloudsim.FastTiming()
	timing.VolumeCreate = 400 * time.Millisecond
	sim, err := cloudsim.Start(ctx, cloudsim.Config{Timing: &timing})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	c, err := ops.Dial(ctx, authFor(sim, false), ops.Config{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond,
		RateLimit: 1000, Burst: 100, DefaultTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	op, err := c.CreateVolume(ctx, ops.VolumeCreateOpts{Name: "slow", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	before := sim.Counters()
	del, err := c.DeleteVolume(ctx, op.ID())
	if err != nil {
		t.Fatalf("delete of a volume being created: %v", err)
	}
	if _, err := del.Result(ctx); err != nil {
		t.Fatalf("delete of a volume being created: %v", err)
	}
	after := sim.Counters()
	if deletes := after.Matching("DELETE", "volumes/{") - before.Matching("DELETE", "volumes/{"); deletes != 2 {
		t.Fatalf("%d DELETEs, want 2: one refused while creating, one after", deletes)
	}
	if vs := sim.Volumes(); len(vs) != 0 {
		t.Fatalf("volumes left: %+v", vs)
	}
}
