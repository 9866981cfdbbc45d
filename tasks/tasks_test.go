package tasks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/tasks"
)

func serverInputs(run string) flow.Inputs {
	return flow.NewInputs(map[string]any{tasks.RunID: run, tasks.Name: "t", tasks.Flavor: "1",
		tasks.Image: cloudsim.CirrosImageID, tasks.Network: "none"})
}

func TestCreateServerAdoptsAndRevertsIdempotently(t *testing.T) {
	t.Parallel()
	e := start(t, nil, false)
	ctx := ctxT(t)
	task := tasks.CreateServer(e.cloud, "boot")
	in := serverInputs("run-1")
	a, err := task.Execute(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := task.Execute(ctx, in) // a re-run after a crash, say
	if err != nil {
		t.Fatal(err)
	}
	if a != b || len(e.sim.Servers(false)) != 1 {
		t.Fatalf("re-run made %v after %v; servers %+v", b, a, e.sim.Servers(false))
	}
	if md := e.sim.Servers(false)[0].Metadata[ops.IdempotencyMetadataKey]; md != tasks.Key("run-1", "boot") {
		t.Fatalf("idempotency key %q", md)
	}
	for range 2 {
		if err := task.Revert(ctx, in, flow.Outcome{Result: a}); err != nil {
			t.Fatal(err)
		}
	}
	if l := e.leaks(); len(l) > 0 {
		t.Fatal(l)
	}
}

// A create that fails leaves nothing behind (ops removes each attempt's
// wreck), and its revert has nothing to do.
func TestFailedCreateLeavesNothing(t *testing.T) {
	t.Parallel()
	e := start(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpServerCreate, Kind: cloudsim.FaultError},
		{Op: cloudsim.OpVolumeCreate, Kind: cloudsim.FaultError},
	}}, false)
	ctx := ctxT(t)
	for _, tc := range []struct {
		task flow.Task
		in   flow.Inputs
	}{
		{tasks.CreateServer(e.cloud, "boot", tasks.WithRetries(2)), serverInputs("run-2")},
		{tasks.CreateVolume(e.cloud, "vol", tasks.WithRetries(2)), flow.NewInputs(map[string]any{tasks.RunID: "run-2", tasks.Name: "v", tasks.Size: 1})},
	} {
		_, err := tc.task.Execute(ctx, tc.in)
		var re *ops.RetriesExhaustedError
		if !errors.As(err, &re) || !errors.Is(err, ops.ErrFault) {
			t.Fatalf("want retries exhausted on faults, got %v", err)
		}
		if l := e.leaks(); len(l) > 0 {
			t.Fatalf("the failed attempts left %v", l)
		}
		if err := tc.task.Revert(ctx, tc.in, flow.Outcome{Failure: &flow.Failure{Atom: tc.task.Spec().Name, Err: err}}); err != nil {
			t.Fatal(err)
		}
	}
}

// A create whose wreck could not be removed (every cleanup delete failed)
// leaves it; the task's revert removes it, also when the failure came back
// from a store without its in-memory error.
func TestCreateRevertRemovesTheWreck(t *testing.T) {
	t.Parallel()
	e := start(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpServerCreate, Kind: cloudsim.FaultError},
		{Op: cloudsim.OpServerDelete, FirstN: 3, Kind: cloudsim.FaultError}, // ops's 3 cleanup deletes
	}}, false)
	ctx := ctxT(t)
	task := tasks.CreateServer(e.cloud, "boot", tasks.WithRetries(1))
	in := serverInputs("run-5")
	_, err := task.Execute(ctx, in)
	var ce *ops.CleanupError
	if !errors.As(err, &ce) || !errors.Is(err, ops.ErrFault) {
		t.Fatalf("want a CleanupError after the fault, got %v", err)
	}
	if len(e.leaks()) != 1 {
		t.Fatalf("want the wreck whose cleanup failed, got %v", e.leaks())
	}
	// As read back from a store: the message survives, the error does not.
	f := &flow.Failure{Atom: task.Spec().Name, Message: err.Error()}
	if err := task.Revert(ctx, in, flow.Outcome{Failure: f}); err != nil {
		t.Fatal(err)
	}
	if l := e.leaks(); len(l) > 0 {
		t.Fatalf("revert left %v", l)
	}
}

func TestResizeRevertInVerifyResize(t *testing.T) {
	t.Parallel()
	e := start(t, nil, false)
	id := e.bootServer(t, "r")
	boom := errors.New("later step failed")
	f := flow.Linear("resize-then-fail",
		tasks.ResizeServer(e.cloud, "resize"),
		flow.TaskFunc("fail", func(context.Context, flow.Inputs) (int, error) { return 0, boom }))
	_, err := engine.Run(ctxT(t), f, engine.WithStore(map[string]any{tasks.Server: id, tasks.Flavor: "2"}))
	wantReverted(t, err, "fail", boom)
	ss := e.sim.Servers(false)
	if ss[0].Status != "ACTIVE" {
		t.Fatalf("resize not reverted: %+v", ss[0])
	}
}

func TestMigrateAndConfirm(t *testing.T) {
	t.Parallel()
	e := start(t, nil, true)
	id := e.bootServer(t, "m")
	f := flow.Linear("migrate", tasks.MigrateServer(e.cloud, "migrate"), tasks.ConfirmResize(e.cloud, "confirm"))
	if _, err := engine.Run(ctxT(t), f, engine.WithStore(map[string]any{tasks.Server: id})); err != nil {
		t.Fatal(err)
	}
	if ss := e.sim.Servers(false); ss[0].Status != "ACTIVE" {
		t.Fatalf("%+v", ss[0])
	}
}

func TestDetachRevertReattaches(t *testing.T) {
	t.Parallel()
	e := start(t, nil, false)
	en, err := e.runDef(t, "server-with-volumes", swvValues(1))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := engine.Fetch[string](en, tasks.Server)
	vol, _ := engine.Fetch[string](en, "volume_1")
	boom := errors.New("later step failed")
	f := flow.Linear("detach-then-fail",
		tasks.DetachVolume(e.cloud, "detach"),
		flow.TaskFunc("fail", func(context.Context, flow.Inputs) (int, error) { return 0, boom }))
	_, err = engine.Run(ctxT(t), f, engine.WithStore(map[string]any{tasks.Server: srv, tasks.Volume: vol}))
	wantReverted(t, err, "fail", boom)
	vs := e.sim.Volumes()
	if len(vs) != 1 || vs[0].Status != "in-use" || len(vs[0].ServerIDs) != 1 || vs[0].ServerIDs[0] != srv {
		t.Fatalf("volume not attached again: %+v", vs)
	}
	// Detach and delete for good: nothing left but the server.
	f = flow.Linear("detach-delete", tasks.DetachVolume(e.cloud, "detach"), tasks.DeleteVolume(e.cloud, "delete"))
	if _, err := engine.Run(ctxT(t), f, engine.WithStore(map[string]any{tasks.Server: srv, tasks.Volume: vol})); err != nil {
		t.Fatal(err)
	}
	if l := e.leaks(srv); len(l) > 0 {
		t.Fatal(l)
	}
}

func TestSnapshotAdoptsAnActiveImage(t *testing.T) {
	t.Parallel()
	e := start(t, nil, false)
	id := e.bootServer(t, "s")
	task := tasks.CreateServerImage(e.cloud, "snap")
	in := flow.NewInputs(map[string]any{tasks.RunID: "run-3", tasks.Server: id, tasks.Name: "s"})
	a, err := task.Execute(ctxT(t), in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := task.Execute(ctxT(t), in)
	if err != nil || a != b {
		t.Fatalf("re-run: %v %v (first %v)", b, err, a)
	}
	if err := task.Revert(ctxT(t), in, flow.Outcome{Result: a}); err != nil {
		t.Fatal(err)
	}
	if l := e.leaks(id); len(l) > 0 {
		t.Fatal(l)
	}
}

// A run that stopped after a build failed (its process killed before any
// cleanup or revert) left a wreck under the key: the re-run removes it and
// makes a new one.
func TestRerunRemovesAnEarlierWreck(t *testing.T) {
	t.Parallel()
	e := start(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpServerCreate, Nth: 1, Kind: cloudsim.FaultError},
		{Op: cloudsim.OpVolumeCreate, Nth: 1, Kind: cloudsim.FaultError},
	}}, false)
	ctx := ctxT(t)
	// The first run's wrecks, as a killed run leaves them.
	keep := []ops.Option{ops.WithIdempotencyKey(tasks.Key("run-4", "boot")), ops.WithCleanup(ops.CleanupKeep)}
	sop, err := e.cloud.CreateServer(ctx, ops.ServerCreateOpts{Name: "t", FlavorRef: "1", ImageRef: cloudsim.CirrosImageID, Networks: "none"}, keep...)
	if err != nil {
		t.Fatal(err)
	}
	keep[0] = ops.WithIdempotencyKey(tasks.Key("run-4", "vol"))
	vop, err := e.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: "v", Size: 1}, keep...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sop.Result(ctx); !errors.Is(err, ops.ErrFault) {
		t.Fatalf("first run: %v", err)
	}
	if _, err := vop.Result(ctx); !errors.Is(err, ops.ErrFault) {
		t.Fatalf("first run: %v", err)
	}
	if l := e.leaks(); len(l) != 2 {
		t.Fatalf("want the two wrecks, got %v", l)
	}
	for _, tc := range []struct {
		task flow.Task
		in   flow.Inputs
	}{
		{tasks.CreateServer(e.cloud, "boot", tasks.WithRetries(1)), serverInputs("run-4")},
		{tasks.CreateVolume(e.cloud, "vol", tasks.WithRetries(1)), flow.NewInputs(map[string]any{tasks.RunID: "run-4", tasks.Name: "v", tasks.Size: 1})},
	} {
		id, err := tc.task.Execute(ctx, tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if id == sop.ID() || id == vop.ID() {
			t.Fatalf("the re-run adopted the wreck %v", id)
		}
		if err := tc.task.Revert(ctx, tc.in, flow.Outcome{Result: id}); err != nil {
			t.Fatal(err)
		}
	}
	if l := e.leaks(); len(l) > 0 {
		t.Fatalf("the first run's wrecks are still there: %v", l)
	}
}

// A volume create cut short (the task cancelled while the volume was
// still creating) is reverted: the revert waits until the volume can be
// deleted (Cinder refuses a volume in creating), then deletes it. A
// volume that never leaves creating fails the revert after the task's
// timeout, naming it.
func TestCreateVolumeRevertWhileCreating(t *testing.T) {
	t.Parallel()
	timing := cloudsim.FastTiming()
	timing.VolumeCreate = time.Second
	e := startConfig(t, cloudsim.Config{Timing: &timing, Faults: &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpVolumeCreate, Name: "hung", Kind: cloudsim.FaultHang},
	}}}, false)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name string
		hung bool
	}{{"slow", false}, {"hung", true}} {
		task := tasks.CreateVolume(e.cloud, "vol", tasks.WithTimeout(2*time.Second))
		in := flow.NewInputs(map[string]any{tasks.RunID: "run-" + tc.name, tasks.Name: tc.name, tasks.Size: 1})
		// What an Execute cancelled while it waited leaves: the volume,
		// made under the task's key, creating.
		octx, stop := context.WithCancel(ctx)
		op, err := e.cloud.CreateVolume(octx, ops.VolumeCreateOpts{Name: tc.name, Size: 1}, ops.WithIdempotencyKey(tasks.Key("run-"+tc.name, "vol")))
		if err != nil {
			t.Fatal(err)
		}
		stop()
		_, _ = op.Result(ctx)
		if vs := e.sim.Volumes(); len(vs) != 1 || vs[0].Status != "creating" {
			t.Fatalf("%s: volumes %+v, want one creating", tc.name, vs)
		}
		err = task.Revert(ctx, in, flow.Outcome{Failure: &flow.Failure{Atom: "vol", Err: context.Canceled, Message: "cancelled"}})
		if !tc.hung {
			if err != nil {
				t.Fatalf("revert of a volume being created: %v", err)
			}
			if l := e.leaks(); len(l) > 0 {
				t.Fatalf("left %v", l)
			}
			continue
		}
		var te *ops.TimeoutError
		vs := e.sim.Volumes()
		if !errors.As(err, &te) || len(vs) != 1 || te.ID != vs[0].ID || te.LastStatus != "creating" {
			t.Fatalf("revert of a volume that never leaves creating: %v (volumes %+v)", err, vs)
		}
	}
}
