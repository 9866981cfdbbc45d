package cloudsim_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/instanceactions"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"

	"github.com/ostask/ostask/cloudsim"
)

// lastAction returns the newest instance action of id with its events.
func (e *novaEnv) lastAction(id string) instanceactions.InstanceActionDetail {
	e.t.Helper()
	pages, err := instanceactions.List(at(e.demo, "2.84"), id, nil).AllPages(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	list, _ := instanceactions.ExtractInstanceActions(pages)
	d, err := instanceactions.Get(e.ctx, at(e.demo, "2.84"), id, list[0].RequestID).Extract()
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func TestNovaFaultBuildError(t *testing.T) {
	e := newNovaEnv(t, &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpServerCreate: {Error: 1}}})
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, e.create(fmt.Sprintf("doomed-%d", i)))
	}
	e.settle()
	for _, id := range ids {
		srv, err := servers.Get(e.ctx, e.demo, id).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if srv.Status != "ERROR" || srv.TaskState != "" || srv.Fault.Code != 500 ||
			srv.Fault.Message != "No valid host was found. There are not enough hosts available." || srv.Fault.Created.IsZero() {
			t.Fatalf("failed build: %+v fault %+v", srv.Status, srv.Fault)
		}
		if srv.Fault.Details != "" {
			t.Fatal("fault details shown to a member for code 500")
		}
		if e.get(id).Fault.Details == "" {
			t.Fatal("fault details hidden from the admin")
		}
		// The realstack quirk: the create action does not show the failure.
		a := e.lastAction(id)
		if a.Action != "create" || a.Message != "" {
			t.Fatalf("create action %+v", a)
		}
		for _, ev := range *a.Events {
			if ev.Result != "Success" {
				t.Fatalf("event %+v", ev)
			}
		}
	}
	// ERROR servers can be deleted; the fault shows with DELETED.
	since := e.clock.Now()
	if err := servers.Delete(e.ctx, e.demo, ids[0]).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.settle()
	pages, _ := servers.List(e.demo, servers.ListOpts{ChangesSince: since.Format(time.RFC3339)}).AllPages(e.ctx)
	got, _ := servers.ExtractServers(pages)
	if len(got) != 1 || got[0].Status != "DELETED" || got[0].Fault.Message == "" {
		t.Fatalf("deleted ERROR server: %+v", got)
	}
}

func TestNovaFaultBuildHang(t *testing.T) {
	e := newNovaEnv(t, &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpServerCreate: {Hang: 1}}})
	id := e.create("stuck")
	for i := 0; i < 5; i++ {
		e.settle()
	}
	if st, _ := e.state(id); st != "BUILD" {
		t.Fatalf("hung build: %s", st)
	}
	// A delete still works.
	if err := servers.Delete(e.ctx, e.demo, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.settle()
	if _, err := servers.Get(e.ctx, e.demo, id).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("delete of a hung build: %v", err)
	}
}

func TestNovaFaultRequestLevel(t *testing.T) {
	e := newNovaEnv(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpServerCreate, Name: "limited", Kind: cloudsim.Fault429},
		{Op: cloudsim.OpServerCreate, Name: "unavailable", Kind: cloudsim.Fault503},
		{Op: cloudsim.OpServerCreate, Name: "lost", Kind: cloudsim.FaultLoseResponse},
	}})
	body := func(name string) map[string]any {
		return map[string]any{"server": map[string]any{"name": name, "imageRef": e.defaultImage, "flavorRef": "1", "networks": "auto"}}
	}
	r := e.do("POST", "/compute/v2.1/servers", e.demoTok, "2.37", body("limited"))
	if r.code != 429 || r.header.Get("Retry-After") == "" || r.body["overLimit"] == nil {
		t.Fatalf("429: %d %v %s", r.code, r.header, r.text)
	}
	r = e.do("POST", "/compute/v2.1/servers", e.demoTok, "2.37", body("unavailable"))
	if r.code != 503 {
		t.Fatalf("503: %d %s", r.code, r.text)
	}
	_, err := servers.Create(e.ctx, at(e.demo, "2.37"), servers.CreateOpts{Name: "lost", ImageRef: e.defaultImage,
		FlavorRef: "1", Networks: "auto"}, nil).Extract()
	if err == nil {
		t.Fatal("lost response: no error")
	}
	names := map[string]int{}
	for _, s := range e.sim.Servers(false) {
		names[s.Name]++
	}
	if names["lost"] != 1 || names["limited"] != 0 || names["unavailable"] != 0 {
		t.Fatalf("servers after request faults: %v", names)
	}
}

func TestNovaFaultSilentResizeRollback(t *testing.T) {
	e := newNovaEnv(t, &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{
		cloudsim.OpServerResize: {Rollback: 1}, cloudsim.OpServerLiveMigrate: {Rollback: 1}}})
	id := e.active("rolled")
	if err := servers.Resize(e.ctx, e.demo, id, servers.ResizeOpts{FlavorRef: "2"}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.wantState(id, "RESIZE", "resize_prep")
	e.settle()
	srv := e.get(id)
	if srv.Status != "ACTIVE" || srv.TaskState != "" || srv.Fault.Message != "" || srv.Flavor["original_name"] != "m1.tiny" {
		t.Fatalf("after rollback: %s/%s fault %+v flavor %v", srv.Status, srv.TaskState, srv.Fault, srv.Flavor)
	}
	a := e.lastAction(id)
	if a.Action != "resize" || a.Message != "Error" || len(*a.Events) == 0 || (*a.Events)[0].Result != "Error" {
		t.Fatalf("resize action: %+v", a)
	}
	// A stopped server rolls back to SHUTOFF.
	if err := servers.Stop(e.ctx, e.demo, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.settle()
	if err := servers.Resize(e.ctx, e.demo, id, servers.ResizeOpts{FlavorRef: "2"}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.settle()
	e.wantState(id, "SHUTOFF", "")
	if err := servers.Start(e.ctx, e.demo, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.settle()
	host := e.get(id).Host
	if err := servers.LiveMigrate(e.ctx, e.admin, id, servers.LiveMigrateOpts{BlockMigration: new(bool)}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.settle()
	if srv := e.get(id); srv.Status != "ACTIVE" || srv.Host != host || e.lastAction(id).Message != "Error" {
		t.Fatalf("live migrate rollback: %s on %s (was %s)", srv.Status, srv.Host, host)
	}
}

func TestNovaFaultActionErrors(t *testing.T) {
	e := newNovaEnv(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpServerDelete, Name: "undeletable", Kind: cloudsim.FaultError},
		{Op: cloudsim.OpServerDelete, Name: "sticky", Kind: cloudsim.FaultHang},
		{Op: cloudsim.OpServerSnapshot, Name: "nosnap", Kind: cloudsim.FaultError},
		{Op: cloudsim.OpServerReboot, Name: "broken", Kind: cloudsim.FaultError, Message: "kaput"},
		{Op: cloudsim.OpVolumeAttach, Name: "flaky", Kind: cloudsim.FaultRollback},
		{Op: cloudsim.OpVolumeAttach, Name: "slow", Kind: cloudsim.FaultHang},
	}})
	t.Run("delete error", func(t *testing.T) {
		id := e.active("undeletable")
		if err := servers.Delete(e.ctx, e.demo, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		e.settle()
		srv := e.get(id)
		if srv.Status != "ERROR" || srv.VmState != "error" || srv.TaskState != "" || srv.Fault.Message == "" {
			t.Fatalf("delete error: %+v", srv)
		}
	})
	t.Run("delete hang", func(t *testing.T) {
		id := e.active("sticky")
		if err := servers.Delete(e.ctx, e.demo, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		e.settle()
		e.wantState(id, "ACTIVE", "deleting")
	})
	t.Run("snapshot error", func(t *testing.T) {
		id := e.active("nosnap")
		img, err := servers.CreateImage(e.ctx, at(e.demo, "2.45"), id, servers.CreateImageOpts{Name: "s"}).ExtractImageID()
		if err != nil {
			t.Fatal(err)
		}
		e.settle()
		e.wantState(id, "ACTIVE", "")
		if got := e.image(img).Status; got != "gone" {
			t.Fatalf("image after failed snapshot: %s", got)
		}
		if a := e.lastAction(id); a.Action != "createImage" || a.Message != "Error" {
			t.Fatalf("action %+v", a)
		}
	})
	t.Run("reboot error", func(t *testing.T) {
		id := e.active("broken")
		if err := servers.Reboot(e.ctx, e.demo, id, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		e.settle()
		if srv := e.get(id); srv.Status != "ERROR" || srv.Fault.Message != "kaput" {
			t.Fatalf("reboot error: %s %+v", srv.Status, srv.Fault)
		}
	})
	t.Run("attach rollback and hang", func(t *testing.T) {
		id := e.active("host")
		flaky := e.sim.NovaNewVolumeForTest("flaky", 1)
		if _, err := volumeattach.Create(e.ctx, at(e.demo, "2.79"), id, volumeattach.CreateOpts{VolumeID: flaky}).Extract(); err != nil {
			t.Fatal(err)
		}
		e.tick(time.Second)
		if got := e.volume(flaky).Status; got != "attaching" {
			t.Fatalf("flaky: %s", got)
		}
		e.settle()
		if got := e.volume(flaky); got.Status != "available" || len(got.ServerIDs) != 0 {
			t.Fatalf("flaky after rollback: %+v", got)
		}
		if a := e.lastAction(id); a.Action != "attach_volume" || a.Message != "Error" {
			t.Fatalf("attach action %+v", a)
		}
		if len(e.get(id).AttachedVolumes) != 0 {
			t.Fatal("BDM left after a failed attach")
		}
		slow := e.sim.NovaNewVolumeForTest("slow", 1)
		if _, err := volumeattach.Create(e.ctx, at(e.demo, "2.79"), id, volumeattach.CreateOpts{VolumeID: slow}).Extract(); err != nil {
			t.Fatal(err)
		}
		e.settle()
		if got := e.volume(slow).Status; got != "attaching" {
			t.Fatalf("hung attach: %s", got)
		}
	})
}

// A build the compute host aborts (FaultAbort) walks to spawning, then
// ends in ERROR with Nova's "Build of instance <uuid> aborted: <reason>",
// no host and no addresses, while its create action still shows one
// compute__do_build_and_run_instance event that succeeded.
func TestNovaFaultBuildAbort(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plan   *cloudsim.FaultPlan
		reason string
	}{
		{"scripted with a reason", &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerCreate, Name: "aborted",
			Kind: cloudsim.FaultAbort, Message: "Volume did not finish being created."}}}, "Volume did not finish being created."},
		{"by probability", mustParsePlan(t, "server.create.abort=1"), "Failed to allocate the network(s), not rescheduling."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newNovaEnv(t, tc.plan)
			id := e.create("aborted")
			e.tick(time.Second) // scheduled, on a host
			if srv := e.get(id); srv.Host == "" || srv.Status != "BUILD" {
				t.Fatalf("before the abort: %s host %q", srv.Status, srv.Host)
			}
			for range 3 { // networking, block_device_mapping (two halves)
				e.tick(time.Second)
			}
			e.wantState(id, "BUILD", "spawning")
			e.settle()
			srv := e.get(id)
			want := "Build of instance " + id + " aborted: " + tc.reason
			if srv.Status != "ERROR" || srv.TaskState != "" || srv.Host != "" || srv.Fault.Code != 500 || srv.Fault.Message != want ||
				len(srv.Addresses) != 0 || srv.PowerState != 0 || srv.AvailabilityZone != "" {
				t.Fatalf("aborted build: %s/%s host %q power %d addresses %v fault %+v, want %q",
					srv.Status, srv.TaskState, srv.Host, srv.PowerState, srv.Addresses, srv.Fault, want)
			}
			a := e.lastAction(id)
			if a.Action != "create" || a.Message != "" || len(*a.Events) != 1 {
				t.Fatalf("create action %+v", a)
			}
			if ev := (*a.Events)[0]; ev.Event != "compute__do_build_and_run_instance" || ev.Result != "Success" {
				t.Fatalf("event %+v", ev)
			}
		})
	}
}

func mustParsePlan(t *testing.T, v string) *cloudsim.FaultPlan {
	t.Helper()
	p, err := cloudsim.ParseFaultPlan(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// abort is a build fault: a plan that puts it on another operation is
// refused with ErrBadFaultPlan.
func TestFaultAbortOnlyForServerCreate(t *testing.T) {
	for _, v := range []string{"server.resize.abort=0.5", "volume.create.abort=1"} {
		if _, err := cloudsim.ParseFaultPlan(v); !errors.Is(err, cloudsim.ErrBadFaultPlan) {
			t.Errorf("%s: %v, want ErrBadFaultPlan", v, err)
		}
	}
	p := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerDelete, Kind: cloudsim.FaultAbort}}}
	if err := p.Validate(); !errors.Is(err, cloudsim.ErrBadFaultPlan) {
		t.Errorf("scripted abort on delete: %v", err)
	}
}
