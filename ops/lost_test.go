package ops_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

// lostCase is one operation whose first request's answer is lost after
// the cloud carried it out: the setup, the operation, and the route of
// its request.
type lostCase struct {
	op    cloudsim.Op
	admin bool
	// idempotent: the request is a DELETE, which Go's transport may
	// repeat by itself.
	idempotent bool
	// run prepares what the operation needs (with other ops, which the
	// fault does not touch) and starts the operation; it returns its
	// Initial and waits with the returned func.
	run func(t *testing.T, f *fixture) (ops.Initial, func() error)
	// check looks at the cloud afterwards: exactly one resource, in the
	// state the operation promised.
	check func(t *testing.T, f *fixture)
}

type fixture struct {
	*testCloud
	ctx    context.Context
	server string
	volume string
	image  string
}

func (f *fixture) bootServer(t *testing.T) string {
	t.Helper()
	op, err := f.cloud.CreateServer(f.ctx, serverOpts("lost"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Result(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.server = op.ID()
	return f.server
}

func (f *fixture) makeVolume(t *testing.T) string {
	t.Helper()
	op, err := f.cloud.CreateVolume(f.ctx, ops.VolumeCreateOpts{Name: "lost", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Result(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.volume = op.ID()
	return f.volume
}

func (f *fixture) waitServer(t *testing.T, op *ops.Operation[*servers.Server], err error) {
	t.Helper()
	if err == nil {
		_, err = op.Result(f.ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// serverAction is a lostCase for a server action that ends in want.
func serverAction(op cloudsim.Op, admin bool, prep func(t *testing.T, f *fixture),
	call func(f *fixture) (*ops.Operation[*servers.Server], error), want string) lostCase {
	return lostCase{op: op, admin: admin,
		run: func(t *testing.T, f *fixture) (ops.Initial, func() error) {
			f.bootServer(t)
			if prep != nil {
				prep(t, f)
			}
			o, err := call(f)
			if err != nil {
				t.Fatal(err)
			}
			return o.Initial(), func() error {
				s, err := o.Result(f.ctx)
				if err == nil && (s.Status != want || s.TaskState != "") {
					t.Errorf("server %s/%q, want %s", s.Status, s.TaskState, want)
				}
				return err
			}
		},
		check: func(t *testing.T, f *fixture) {
			if ss := f.sim.Servers(false); len(ss) != 1 || ss[0].Status != want {
				t.Errorf("servers %+v, want one %s", ss, want)
			}
		}}
}

func resize(t *testing.T, f *fixture) {
	op, err := f.cloud.ResizeServer(f.ctx, f.server, "2")
	f.waitServer(t, op, err)
}

func oneServer(status string) func(t *testing.T, f *fixture) {
	return func(t *testing.T, f *fixture) {
		if ss := f.sim.Servers(false); len(ss) != 1 || ss[0].Status != status {
			t.Errorf("servers %+v, want one %s", ss, status)
		}
	}
}

func oneImage(name string) func(t *testing.T, f *fixture) {
	return func(t *testing.T, f *fixture) {
		n := 0
		for _, im := range f.sim.Images() {
			if im.Name == name {
				n++
				if im.Status != "active" {
					t.Errorf("image %s is %s", im.ID, im.Status)
				}
			}
		}
		if n != 1 {
			t.Errorf("%d images named %s, want 1", n, name)
		}
	}
}

func lostCases() map[string]lostCase {
	vol := func(t *testing.T, f *fixture, o *ops.Operation[*ops.Volume], err error) (ops.Initial, func() error) {
		if err != nil {
			t.Fatal(err)
		}
		return o.Initial(), func() error { _, err := o.Result(f.ctx); return err }
	}
	img := func(t *testing.T, f *fixture, o *ops.Operation[struct{}], err error) (ops.Initial, func() error) {
		if err != nil {
			t.Fatal(err)
		}
		return o.Initial(), func() error { _, err := o.Result(f.ctx); return err }
	}
	snap := func(t *testing.T, f *fixture, o interface {
		Initial() ops.Initial
		ID() string
	}, wait func(context.Context) error, err error) (ops.Initial, func() error) {
		if err != nil {
			t.Fatal(err)
		}
		f.image = o.ID()
		return o.Initial(), func() error { return wait(f.ctx) }
	}
	return map[string]lostCase{
		"server create": {op: cloudsim.OpServerCreate,
			run: func(t *testing.T, f *fixture) (ops.Initial, func() error) {
				o, err := f.cloud.CreateServer(f.ctx, serverOpts("lost"))
				if err != nil {
					t.Fatal(err)
				}
				return o.Initial(), func() error { _, err := o.Result(f.ctx); return err }
			},
			check: oneServer("ACTIVE")},
		"volume create": {op: cloudsim.OpVolumeCreate,
			run: func(t *testing.T, f *fixture) (ops.Initial, func() error) {
				o, err := f.cloud.CreateVolume(f.ctx, ops.VolumeCreateOpts{Name: "lost", Size: 1})
				return vol(t, f, o, err)
			},
			check: func(t *testing.T, f *fixture) {
				if vs := f.sim.Volumes(); len(vs) != 1 || vs[0].Status != "available" {
					t.Errorf("volumes %+v, want one available", vs)
				}
			}},
		"snapshot": {op: cloudsim.OpServerSnapshot,
			run: func(t *testing.T, f *fixture) (ops.Initial, func() error) {
				o, err := f.cloud.CreateServerImage(f.ctx, f.bootServer(t), "lost-snap", nil)
				if err != nil {
					t.Fatal(err)
				}
				return snap(t, f, o, func(ctx context.Context) error { _, err := o.Result(ctx); return err }, err)
			},
			check: oneImage("lost-snap")},
		"backup": {op: cloudsim.OpServerBackup,
			run: func(t *testing.T, f *fixture) (ops.Initial, func() error) {
				o, err := f.cloud.CreateServerBackup(f.ctx, f.bootServer(t), "lost-backup", "daily", 3)
				if err != nil {
					t.Fatal(err)
				}
				return snap(t, f, o, func(ctx context.Context) error { _, err := o.Result(ctx); return err }, err)
			},
			check: oneImage("lost-backup")},
		"stop": serverAction(cloudsim.OpServerStop, false, nil,
			func(f *fixture) (*ops.Operation[*servers.Server], error) { return f.cloud.StopServer(f.ctx, f.server) }, "SHUTOFF"),
		"start": serverAction(cloudsim.OpServerStart, false, func(t *testing.T, f *fixture) {
			op, err := f.cloud.StopServer(f.ctx, f.server)
			f.waitServer(t, op, err)
		}, func(f *fixture) (*ops.Operation[*servers.Server], error) { return f.cloud.StartServer(f.ctx, f.server) }, "ACTIVE"),
		"reboot": serverAction(cloudsim.OpServerReboot, false, nil,
			func(f *fixture) (*ops.Operation[*servers.Server], error) {
				return f.cloud.RebootServer(f.ctx, f.server, false)
			}, "ACTIVE"),
		"resize": serverAction(cloudsim.OpServerResize, false, nil,
			func(f *fixture) (*ops.Operation[*servers.Server], error) {
				return f.cloud.ResizeServer(f.ctx, f.server, "2")
			}, "VERIFY_RESIZE"),
		"confirm resize": serverAction(cloudsim.OpServerConfirm, false, resize,
			func(f *fixture) (*ops.Operation[*servers.Server], error) {
				return f.cloud.ConfirmResize(f.ctx, f.server)
			}, "ACTIVE"),
		"revert resize": serverAction(cloudsim.OpServerRevert, false, resize,
			func(f *fixture) (*ops.Operation[*servers.Server], error) {
				return f.cloud.RevertResize(f.ctx, f.server)
			}, "ACTIVE"),
		"migrate": serverAction(cloudsim.OpServerMigrate, true, nil,
			func(f *fixture) (*ops.Operation[*servers.Server], error) {
				return f.cloud.MigrateServer(f.ctx, f.server)
			}, "VERIFY_RESIZE"),
		"live migrate": serverAction(cloudsim.OpServerLiveMigrate, true, nil,
			func(f *fixture) (*ops.Operation[*servers.Server], error) {
				return f.cloud.LiveMigrateServer(f.ctx, f.server)
			}, "ACTIVE"),
		"attach": {op: cloudsim.OpVolumeAttach,
			run: func(t *testing.T, f *fixture) (ops.Initial, func() error) {
				o, err := f.cloud.AttachVolume(f.ctx, f.bootServer(t), f.makeVolume(t), "")
				return vol(t, f, o, err)
			},
			check: func(t *testing.T, f *fixture) {
				if vs := f.sim.Volumes(); len(vs) != 1 || vs[0].Status != "in-use" || len(vs[0].ServerIDs) != 1 {
					t.Errorf("volumes %+v, want one in-use", vs)
				}
			}},
		"detach": {op: cloudsim.OpVolumeDetach, idempotent: true,
			run: func(t *testing.T, f *fixture) (ops.Initial, func() error) {
				a, err := f.cloud.AttachVolume(f.ctx, f.bootServer(t), f.makeVolume(t), "")
				if err == nil {
					_, err = a.Result(f.ctx)
				}
				if err != nil {
					t.Fatal(err)
				}
				o, err := f.cloud.DetachVolume(f.ctx, f.server, f.volume)
				return vol(t, f, o, err)
			},
			check: func(t *testing.T, f *fixture) {
				if vs := f.sim.Volumes(); len(vs) != 1 || vs[0].Status != "available" || len(vs[0].ServerIDs) != 0 {
					t.Errorf("volumes %+v, want one available", vs)
				}
			}},
		"extend": {op: cloudsim.OpVolumeExtend,
			run: func(t *testing.T, f *fixture) (ops.Initial, func() error) {
				o, err := f.cloud.ExtendVolume(f.ctx, f.makeVolume(t), 3)
				return vol(t, f, o, err)
			},
			check: func(t *testing.T, f *fixture) {
				if vs := f.sim.Volumes(); len(vs) != 1 || vs[0].Status != "available" || vs[0].Size != 3 {
					t.Errorf("volumes %+v, want one of 3 GiB", vs)
				}
			}},
		"server delete": {op: cloudsim.OpServerDelete, idempotent: true,
			run: func(t *testing.T, f *fixture) (ops.Initial, func() error) {
				o, err := f.cloud.DeleteServer(f.ctx, f.bootServer(t))
				return img(t, f, o, err)
			},
			check: func(t *testing.T, f *fixture) {
				if ss := f.sim.Servers(false); len(ss) != 0 {
					t.Errorf("servers %+v, want none", ss)
				}
			}},
		"volume delete": {op: cloudsim.OpVolumeDelete, idempotent: true,
			run: func(t *testing.T, f *fixture) (ops.Initial, func() error) {
				o, err := f.cloud.DeleteVolume(f.ctx, f.makeVolume(t))
				return img(t, f, o, err)
			},
			check: func(t *testing.T, f *fixture) {
				if vs := f.sim.Volumes(); len(vs) != 0 {
					t.Errorf("volumes %+v, want none", vs)
				}
			}},
		"image delete": {op: cloudsim.OpImageDelete, idempotent: true,
			run: func(t *testing.T, f *fixture) (ops.Initial, func() error) {
				s, err := f.cloud.CreateServerImage(f.ctx, f.bootServer(t), "doomed-snap", nil)
				if err == nil {
					_, err = s.Result(f.ctx)
				}
				if err != nil {
					t.Fatal(err)
				}
				o, err := f.cloud.DeleteImage(f.ctx, s.ID())
				return img(t, f, o, err)
			},
			check: func(t *testing.T, f *fixture) {
				for _, im := range f.sim.Images() {
					if im.Name == "doomed-snap" {
						t.Errorf("image left: %+v", im)
					}
				}
			}},
	}
}

// Every operation, with the default options, whose first request's answer
// is lost after the cloud carried it out: the operation neither reports a
// false failure nor does the work twice — exactly one resource, in the
// state the operation promised — and it says that it recovered.
func TestLostResponseEveryOperation(t *testing.T) {
	for name, tc := range lostCases() {
		t.Run(name, func(t *testing.T) {
			plan := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: tc.op, Nth: 1, Kind: cloudsim.FaultLoseResponse}}}
			f := &fixture{testCloud: start(t, plan, tc.admin), ctx: ctxT(t)}
			in, wait := tc.run(t, f)
			if err := wait(); err != nil {
				t.Fatalf("false failure: %v", err)
			}
			tc.check(t, f)
			t.Logf("initial %+v; requests:\n%s", in, f.sim.Counters())
			// Go's transport sends a DELETE again by itself when the
			// connection it reused drops, so ops may never see that loss;
			// for the others the loss must have been seen and recovered.
			if !tc.idempotent && !in.Recovered {
				t.Errorf("Initial %+v: the lost answer went unnoticed (the test proves nothing)", in)
			}
		})
	}
}

// After a lost answer, a check that cannot be made (the instance actions
// answer 500) ends the operation with ErrUnknownOutcome; the request is
// not sent again blindly.
func TestLostResponseUncheckable(t *testing.T) {
	plan := &cloudsim.FaultPlan{
		Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerStop, Nth: 1, Kind: cloudsim.FaultLoseResponse}},
		API:      cloudsim.APIFaults{Match: "os-instance-actions", Error500: 1},
	}
	tc := start(t, plan, false)
	ctx := ctxT(t)
	f := &fixture{testCloud: tc, ctx: ctx}
	id := f.bootServer(t)
	before := tc.sim.Counters().Get("POST", "/compute/v2.1/servers/{id}/action")
	_, err := tc.cloud.StopServer(ctx, id)
	var ue *ops.UnknownOutcomeError
	if !errors.Is(err, ops.ErrUnknownOutcome) || !errors.As(err, &ue) {
		t.Fatalf("want an UnknownOutcomeError, got %v", err)
	}
	if n := tc.sim.Counters().Get("POST", "/compute/v2.1/servers/{id}/action") - before; n != 1 {
		t.Fatalf("the stop was sent %d times; an unchecked lost answer must not be repeated", n)
	}
}

// lostScenario runs every operation once on one server and one volume,
// each with its answer lost after the cloud carried it out (by the
// client-side Loser, so that it runs against a real cloud too), and
// checks that each recovers, ends as promised and makes nothing twice.
//
// extend is false for a cloud whose volume driver cannot extend
// (realstack's fake LVM driver: the volume goes to error_extending).
func lostScenario(t *testing.T, ctx context.Context, cloud *ops.Cloud, image, flavor, flavor2, flavor3, prefix string, extend bool) {
	loser := ops.InstallLoser(cloud)
	step := func(name, method, suffix string, call func() (ops.Initial, func() error)) {
		t.Helper()
		t0 := time.Now()
		loser.Arm(method, suffix)
		lostBefore := loser.Lost()
		in, wait := call()
		if err := wait(); err != nil {
			t.Fatalf("%s: false failure: %v", name, err)
		}
		if loser.Lost() != lostBefore+1 || !in.Recovered {
			t.Fatalf("%s: lost %d answers, initial %+v; want one lost and recovered", name, loser.Lost()-lostBefore, in)
		}
		t.Logf("%s: recovered (request id %q) and done in %s", name, in.RequestID, time.Since(t0).Round(time.Millisecond))
	}
	srvOp := func(status string, call func() (*ops.Operation[*servers.Server], error)) func() (ops.Initial, func() error) {
		return func() (ops.Initial, func() error) {
			op, err := call()
			if err != nil {
				t.Fatal(err)
			}
			return op.Initial(), func() error {
				s, err := op.Result(ctx)
				if err == nil && (s.Status != status || s.TaskState != "") {
					err = fmt.Errorf("server %s/%q, want %s", s.Status, s.TaskState, status)
				}
				return err
			}
		}
	}
	done := func(op interface{ Initial() ops.Initial }, wait func() error, err error) (ops.Initial, func() error) {
		if err != nil {
			t.Fatal(err)
		}
		return op.Initial(), wait
	}
	name := prefix + "lost"
	var id, vol, img string
	step("create server", "POST", "/servers", func() (ops.Initial, func() error) {
		op, err := cloud.CreateServer(ctx, ops.ServerCreateOpts{Name: name, FlavorRef: flavor, ImageRef: image, Networks: "none"})
		if err != nil {
			t.Fatal(err)
		}
		id = op.ID()
		t.Cleanup(func() { cleanupDelete(t, cloud.DeleteServer, id) })
		return done(op, func() error { _, err := op.Result(ctx); return err }, nil)
	})
	action := func(op string, status string, call func() (*ops.Operation[*servers.Server], error)) {
		step(op, "POST", "/servers/"+id+"/action", srvOp(status, call))
	}
	action("stop", "SHUTOFF", func() (*ops.Operation[*servers.Server], error) { return cloud.StopServer(ctx, id) })
	action("start", "ACTIVE", func() (*ops.Operation[*servers.Server], error) { return cloud.StartServer(ctx, id) })
	action("reboot", "ACTIVE", func() (*ops.Operation[*servers.Server], error) { return cloud.RebootServer(ctx, id, false) })
	action("resize", "VERIFY_RESIZE", func() (*ops.Operation[*servers.Server], error) { return cloud.ResizeServer(ctx, id, flavor2) })
	action("confirm resize", "ACTIVE", func() (*ops.Operation[*servers.Server], error) { return cloud.ConfirmResize(ctx, id) })
	action("resize again", "VERIFY_RESIZE", func() (*ops.Operation[*servers.Server], error) { return cloud.ResizeServer(ctx, id, flavor3) })
	action("revert resize", "ACTIVE", func() (*ops.Operation[*servers.Server], error) { return cloud.RevertResize(ctx, id) })
	step("snapshot", "POST", "/servers/"+id+"/action", func() (ops.Initial, func() error) {
		op, err := cloud.CreateServerImage(ctx, id, name+"-snap", nil)
		if err == nil {
			img = op.ID()
			t.Cleanup(func() { cleanupDelete(t, cloud.DeleteImage, img) })
		}
		return done(op, func() error { _, err := op.Result(ctx); return err }, err)
	})
	step("create volume", "POST", "/volumes", func() (ops.Initial, func() error) {
		op, err := cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: name, Size: 1})
		if err == nil {
			vol = op.ID()
			t.Cleanup(func() { cleanupDelete(t, cloud.DeleteVolume, vol) })
		}
		return done(op, func() error { _, err := op.Result(ctx); return err }, err)
	})
	volStep := func(name, method, suffix, status string, size int, call func() (*ops.Operation[*ops.Volume], error)) {
		step(name, method, suffix, func() (ops.Initial, func() error) {
			op, err := call()
			return done(op, func() error {
				v, err := op.Result(ctx)
				if err == nil && (v.Status != status || v.Size < size) {
					err = fmt.Errorf("volume %s of %d GiB, want %s", v.Status, v.Size, status)
				}
				return err
			}, err)
		})
	}
	volStep("attach", "POST", "/os-volume_attachments", "in-use", 1, func() (*ops.Operation[*ops.Volume], error) {
		return cloud.AttachVolume(ctx, id, vol, "")
	})
	volStep("detach", "DELETE", "/os-volume_attachments/"+vol, "available", 1, func() (*ops.Operation[*ops.Volume], error) {
		return cloud.DetachVolume(ctx, id, vol)
	})
	if extend {
		volStep("extend", "POST", "/volumes/"+vol+"/action", "available", 2, func() (*ops.Operation[*ops.Volume], error) {
			return cloud.ExtendVolume(ctx, vol, 2)
		})
	}
	// Exactly one of each before the deletes: nothing was made twice.
	sp, err := servers.List(cloud.Compute, servers.ListOpts{Name: "^" + name + "$"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ss, _ := servers.ExtractServers(sp)
	vp, err := volumes.List(cloud.Volume, volumes.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := volumes.ExtractVolumes(vp)
	ip, err := images.List(cloud.Image, images.ListOpts{Name: name + "-snap"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	is, _ := images.ExtractImages(ip)
	if len(ss) != 1 || len(vs) != 1 || len(is) != 1 {
		t.Fatalf("%d servers, %d volumes, %d images named %s; want one of each", len(ss), len(vs), len(is), name)
	}
	for _, del := range []struct {
		name, suffix, id string
		fn               func(context.Context, string, ...ops.Option) (*ops.Operation[struct{}], error)
	}{
		{"delete volume", "/volumes/" + vol, vol, cloud.DeleteVolume},
		{"delete image", "/images/" + img, img, cloud.DeleteImage},
		{"delete server", "/servers/" + id, id, cloud.DeleteServer},
	} {
		step(del.name, "DELETE", del.suffix, func() (ops.Initial, func() error) {
			op, err := del.fn(ctx, del.id)
			return done(op, func() error { _, err := op.Result(ctx); return err }, err)
		})
	}
	t.Logf("%d answers lost on purpose (Stats.ByStatus counts them under NoAnswer)", loser.Lost())
}

// cleanupDelete deletes id at the end of a test, whatever happened.
func cleanupDelete(t *testing.T, del func(context.Context, string, ...ops.Option) (*ops.Operation[struct{}], error), id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	op, err := del(ctx, id, ops.WithRetries(3))
	if err == nil {
		_, err = op.Result(ctx)
	}
	if err != nil {
		t.Logf("cleanup of %s: %v", id, err)
	}
}

// The lost-answer scenario on cloudsim (see TestRealLostResponses for a
// real cloud).
func TestLostResponseScenario(t *testing.T) {
	tc := start(t, nil, false)
	lostScenario(t, ctxT(t), tc.cloud, cloudsim.CirrosImageID, "1", "2", "3", "", true)
	if ss, vs := tc.sim.Servers(false), tc.sim.Volumes(); len(ss)+len(vs) != 0 {
		t.Fatalf("left behind: %+v %+v", ss, vs)
	}
}

// A call that the cloud rejected, with the rejection lost, is not taken
// for an older action of the same name that started in the same second:
// the resize to a smaller disk fails with Nova's 400 after the resend,
// instead of "recovering" the earlier resize.
func TestLostRejectionIsNotAnOlderAction(t *testing.T) {
	tc := start(t, nil, false)
	ctx := ctxT(t)
	f := &fixture{testCloud: tc, ctx: ctx}
	id := f.bootServer(t)
	op, err := tc.cloud.ResizeServer(ctx, id, "2")
	f.waitServer(t, op, err)
	op, err = tc.cloud.ConfirmResize(ctx, id)
	f.waitServer(t, op, err)
	loser := ops.InstallLoser(tc.cloud)
	loser.Arm("POST", "/action")
	_, err = tc.cloud.ResizeServer(ctx, id, "1")
	if loser.Lost() != 1 || !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("lost %d, err %v; want the lost rejection, then Nova's 400", loser.Lost(), err)
	}
}
