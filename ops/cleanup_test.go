package ops_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

// With the default options (one attempt), a failed build is deleted too:
// the operation fails with the cloud's fault and leaves nothing.
func TestFailedCreateLeavesNothing(t *testing.T) {
	plan := &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpServerCreate: {Error: 1}, cloudsim.OpVolumeCreate: {Error: 1}}}
	tc := start(t, plan, false)
	ctx := ctxT(t)
	sop, err := tc.cloud.CreateServer(ctx, serverOpts("once"))
	if err != nil {
		t.Fatal(err)
	}
	vop, err := tc.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: "once", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sop.Result(ctx); !errors.Is(err, ops.ErrFault) {
		t.Fatalf("server: want a FaultError, got %v", err)
	}
	if _, err := vop.Result(ctx); !errors.Is(err, ops.ErrFault) {
		t.Fatalf("volume: want a FaultError, got %v", err)
	}
	if ss, vs := tc.sim.Servers(false), tc.sim.Volumes(); len(ss)+len(vs) != 0 {
		t.Fatalf("left behind: %+v %+v", ss, vs)
	}
}

// A delete that fails during the cleanup between two attempts is sent
// again: one delete fault does not abort the create.
func TestCleanupDeleteIsRetried(t *testing.T) {
	plan := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpServerCreate, Nth: 1, Kind: cloudsim.FaultError},
		{Op: cloudsim.OpServerDelete, Nth: 1, Kind: cloudsim.FaultError},
	}}
	tc := start(t, plan, false)
	ctx := ctxT(t)
	op, err := tc.cloud.CreateServer(ctx, serverOpts("tenacious"), ops.WithRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	s, err := op.Result(ctx)
	if err != nil {
		t.Fatalf("one failed cleanup delete aborted the create: %v", err)
	}
	live := tc.sim.Servers(false)
	if len(live) != 1 || live[0].ID != s.ID || op.Attempts() != 2 {
		t.Fatalf("servers %+v after %d attempts, want only %s", live, op.Attempts(), s.ID)
	}
	if n := tc.sim.Counters().Get("DELETE", "/compute/v2.1/servers/{id}"); n != 2 {
		t.Fatalf("%d DELETEs, want 2 (the failed one and its retry)", n)
	}
}

// DeleteServer with WithRetries sends the delete again after it failed
// in the cloud (Nova accepts a second delete of a server in ERROR; Cinder
// refuses one of a volume in error_deleting, so volumes have no such test).
func TestDeleteRetries(t *testing.T) {
	plan := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerDelete, Nth: 1, Kind: cloudsim.FaultError}}}
	tc := start(t, plan, false)
	ctx := ctxT(t)
	sop, err := tc.cloud.CreateServer(ctx, serverOpts("twice"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sop.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	op, err := tc.cloud.DeleteServer(ctx, s.ID, ops.WithRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Result(ctx); err != nil {
		t.Fatal(err)
	}
	if errs := op.AttemptErrors(); op.Attempts() != 2 || len(errs) != 1 || !errors.Is(errs[0], ops.ErrFault) {
		t.Fatalf("%d attempts, errors %v; want 2 attempts after one fault", op.Attempts(), errs)
	}
	if ss := tc.sim.Servers(false); len(ss) != 0 {
		t.Fatalf("left behind: %+v", ss)
	}
}

// A re-run with the key of a run whose create failed (its wreck kept)
// removes the ERROR server, or the volume in error, under the key and
// makes a new one.
func TestKeyRemovesWreck(t *testing.T) {
	plan := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpServerCreate, Nth: 1, Kind: cloudsim.FaultError},
		{Op: cloudsim.OpVolumeCreate, Nth: 1, Kind: cloudsim.FaultError},
	}}
	tc := start(t, plan, false)
	ctx := ctxT(t)
	// create runs one create with key K and returns the id it ended on,
	// whether it adopted, and its result.
	type create func(o ...ops.Option) (id string, adopted bool, err error)
	server := func(o ...ops.Option) (string, bool, error) {
		op, err := tc.cloud.CreateServer(ctx, serverOpts("kx"), append(o, ops.WithIdempotencyKey("K"))...)
		if err != nil {
			return "", false, err
		}
		_, err = op.Result(ctx)
		return op.ID(), op.Initial().Adopted, err
	}
	volume := func(o ...ops.Option) (string, bool, error) {
		op, err := tc.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: "kv", Size: 1}, append(o, ops.WithIdempotencyKey("K"))...)
		if err != nil {
			return "", false, err
		}
		_, err = op.Result(ctx)
		return op.ID(), op.Initial().Adopted, err
	}
	live := func() []string {
		var ids []string
		for _, s := range tc.sim.Servers(false) {
			ids = append(ids, s.ID)
		}
		for _, v := range tc.sim.Volumes() {
			ids = append(ids, v.ID)
		}
		return ids
	}
	for _, tt := range []struct {
		name string
		mk   create
	}{{"server", server}, {"volume", volume}} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(live())
			wreckID, _, err := tt.mk(ops.WithCleanup(ops.CleanupKeep))
			if !errors.Is(err, ops.ErrFault) {
				t.Fatalf("first run: %v", err)
			}
			if !slices.Contains(live(), wreckID) {
				t.Fatalf("the first run's wreck %s was not kept", wreckID)
			}
			id, adopted, err := tt.mk()
			if err != nil {
				t.Fatal(err)
			}
			if id == wreckID || adopted {
				t.Fatalf("re-run ended on %s (adopted %v), the wreck was %s", id, adopted, wreckID)
			}
			if ids := live(); len(ids) != before+1 || !slices.Contains(ids, id) {
				t.Fatalf("want the wreck %s replaced by %s, got %v", wreckID, id, ids)
			}
		})
	}
}

// Every create carries an idempotency key, also with the default options,
// so that a lost answer can be looked up.
func TestCreatesCarryAKeyByDefault(t *testing.T) {
	tc := start(t, nil, false)
	ctx := ctxT(t)
	sop, err := tc.cloud.CreateServer(ctx, serverOpts("keyed"))
	if err != nil {
		t.Fatal(err)
	}
	vop, err := tc.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: "keyed", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sop.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vop.Result(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := tc.cloud.CreateServerImage(ctx, s.ID, "keyed-snap", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Result(ctx); err != nil {
		t.Fatal(err)
	}
	backup, err := tc.cloud.CreateServerBackup(ctx, s.ID, "keyed-backup", "daily", 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Result(ctx); err != nil {
		t.Fatal(err)
	}
	if k := tc.sim.Servers(false)[0].Metadata[ops.IdempotencyMetadataKey]; k == "" {
		t.Error("server without a key")
	}
	if k := tc.sim.Volumes()[0].Metadata[ops.IdempotencyMetadataKey]; k == "" {
		t.Error("volume without a key")
	}
	for _, id := range []string{snap.ID(), backup.ID()} {
		for _, im := range tc.sim.Images() {
			if im.ID == id && im.Properties[ops.IdempotencyMetadataKey] == "" {
				t.Errorf("image %s (%s) without a key", im.Name, id)
			}
		}
	}
}

// A create answered 500 is looked up under its key before it is sent
// again, and makes exactly one server.
func TestCreateAnswered500(t *testing.T) {
	plan := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerCreate, Nth: 1, Kind: cloudsim.Fault500}}}
	tc := start(t, plan, false)
	ctx := ctxT(t)
	op, err := tc.cloud.CreateServer(ctx, serverOpts("five-hundred"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Result(ctx); err != nil {
		t.Fatal(err)
	}
	cs := tc.sim.Counters()
	if posts, looks := cs.Get("POST", "/compute/v2.1/servers"), cs.Get("GET", "/compute/v2.1/servers/detail"); posts != 2 || looks < 1 {
		t.Fatalf("%d POSTs and %d lookups; want the 500 looked up, then one more POST", posts, looks)
	}
	if n := len(tc.sim.Servers(false)); n != 1 {
		t.Fatalf("%d servers, want 1", n)
	}
}

// A create answered 500 every time is sent at most 5 times, each time
// after a lookup under its key found nothing.
func TestCreateAlways500(t *testing.T) {
	plan := &cloudsim.FaultPlan{API: cloudsim.APIFaults{Match: "POST /compute/v2.1/servers", Error500: 1}}
	tc := start(t, plan, false)
	ctx := ctxT(t)
	_, err := tc.cloud.CreateServer(ctx, serverOpts("broken"))
	if !gophercloud.ResponseCodeIs(err, 500) {
		t.Fatalf("want the 500, got %v", err)
	}
	cs := tc.sim.Counters()
	posts, looks := cs.Get("POST", "/compute/v2.1/servers"), cs.Get("GET", "/compute/v2.1/servers/detail")
	if posts != 5 || looks != posts {
		t.Fatalf("%d POSTs, %d lookups; want 5 POSTs, each followed by a lookup", posts, looks)
	}
}

// Initial().Body does not keep Nova's adminPass unless asked to.
func TestAdminPassDropped(t *testing.T) {
	tc := start(t, nil, false)
	ctx := ctxT(t)
	for _, tt := range []struct {
		name string
		opts []ops.Option
		want bool
	}{{"default", nil, false}, {"WithAdminPass", []ops.Option{ops.WithAdminPass()}, true}} {
		t.Run(tt.name, func(t *testing.T) {
			op, err := tc.cloud.CreateServer(ctx, serverOpts("secret-"+tt.name), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Server map[string]any `json:"server"`
			}
			if err := json.Unmarshal(op.Initial().Body, &body); err != nil || body.Server["id"] != op.ID() {
				t.Fatalf("body %s: %v", op.Initial().Body, err)
			}
			if _, has := body.Server["adminPass"]; has != tt.want {
				t.Fatalf("adminPass in the body: %v, want %v", has, tt.want)
			}
		})
	}
}
