package tasks_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/tasks"
)

func bfvValues() map[string]any {
	return map[string]any{tasks.Name: "web", tasks.Flavor: "1", tasks.Image: cloudsim.CirrosImageID, tasks.Network: "none"}
}

func TestBootFromVolumeSucceeds(t *testing.T) {
	t.Parallel()
	e := start(t, nil, false)
	en, err := e.runDef(t, "boot-from-volume", bfvValues())
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := engine.Fetch[string](en, tasks.Server)
	boot, _ := engine.Fetch[string](en, tasks.BootVolume)
	data, _ := engine.Fetch[string](en, tasks.DataVolume)
	if srv == "" || boot == "" || data == "" {
		t.Fatalf("server %q boot %q data %q", srv, boot, data)
	}
	ss := e.sim.Servers(false)
	if len(ss) != 1 || ss[0].Status != "ACTIVE" || len(ss[0].VolumeIDs) != 2 {
		t.Fatalf("servers %+v", ss)
	}
	for _, v := range e.sim.Volumes() {
		if v.Status != "in-use" || len(v.ServerIDs) != 1 || v.ServerIDs[0] != srv {
			t.Errorf("volume %+v", v)
		}
	}
	if l := e.leaks(srv, boot, data); len(l) > 0 {
		t.Fatalf("unexpected resources: %v", l)
	}
}

// faultCase is one step failing: the fault plan, the atom that must fail
// first, and the errors its failure must match.
type faultCase struct {
	name  string
	plan  cloudsim.Scripted
	atom  string
	is    []error
	opts  []tasks.Option
	words string // in the flow error's message
}

func TestBootFromVolumeEachStepFailingRevertsEverything(t *testing.T) {
	t.Parallel()
	cases := []faultCase{
		{name: "boot volume error", plan: cloudsim.Scripted{Op: cloudsim.OpVolumeCreate, Name: "web-boot", Kind: cloudsim.FaultError},
			atom: "create-boot-volume", is: []error{ops.ErrFault}, words: "status error"},
		{name: "data volume error", plan: cloudsim.Scripted{Op: cloudsim.OpVolumeCreate, Name: "web-data", Kind: cloudsim.FaultError},
			atom: "create-data-volume", is: []error{ops.ErrFault}},
		{name: "server error", plan: cloudsim.Scripted{Op: cloudsim.OpServerCreate, Kind: cloudsim.FaultError, Message: "No valid host (scripted)"},
			atom: "boot-server", is: []error{ops.ErrFault}, words: "No valid host (scripted)"},
		{name: "server error on every attempt", plan: cloudsim.Scripted{Op: cloudsim.OpServerCreate, Kind: cloudsim.FaultError},
			atom: "boot-server", is: []error{ops.ErrFault}, opts: []tasks.Option{tasks.WithRetries(2)}, words: "all 2 attempts failed"},
		{name: "server hangs", plan: cloudsim.Scripted{Op: cloudsim.OpServerCreate, Kind: cloudsim.FaultHang},
			atom: "boot-server", is: []error{ops.ErrTimeout}, opts: []tasks.Option{tasks.WithRetries(1), tasks.WithTimeout(time.Second)}},
		{name: "attach error", plan: cloudsim.Scripted{Op: cloudsim.OpVolumeAttach, Kind: cloudsim.FaultError},
			atom: "attach-data-volume", is: []error{ops.ErrFault, ops.ErrRolledBack}},
		{name: "attach rollback", plan: cloudsim.Scripted{Op: cloudsim.OpVolumeAttach, Kind: cloudsim.FaultRollback},
			atom: "attach-data-volume", is: []error{ops.ErrRolledBack}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{tc.plan}}, false)
			opts := tc.opts
			if opts == nil {
				opts = []tasks.Option{tasks.WithRetries(1)}
			}
			_, err := e.runDef(t, "boot-from-volume", bfvValues(), opts...)
			wantReverted(t, err, tc.atom, tc.is...)
			if !strings.Contains(err.Error(), tc.words) {
				t.Errorf("error lacks %q: %v", tc.words, err)
			}
			if l := e.leaks(); len(l) > 0 {
				t.Fatalf("leaked after revert: %v", l)
			}
		})
	}
}

// Lost answers (the cloud did the work, the answer never came) are not
// failures: the flow completes with one of everything.
func TestBootFromVolumeLostResponses(t *testing.T) {
	t.Parallel()
	for _, op := range []cloudsim.Op{cloudsim.OpVolumeCreate, cloudsim.OpServerCreate, cloudsim.OpVolumeAttach} {
		t.Run(string(op), func(t *testing.T) {
			t.Parallel()
			e := start(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: op, Nth: 1, Kind: cloudsim.FaultLoseResponse}}}, false)
			en, err := e.runDef(t, "boot-from-volume", bfvValues(), tasks.WithRetries(1))
			if err != nil {
				t.Fatal(err)
			}
			srv, _ := engine.Fetch[string](en, tasks.Server)
			boot, _ := engine.Fetch[string](en, tasks.BootVolume)
			data, _ := engine.Fetch[string](en, tasks.DataVolume)
			if l := e.leaks(srv, boot, data); len(l) > 0 || len(e.sim.Servers(false)) != 1 || len(e.sim.Volumes()) != 2 {
				t.Fatalf("extra resources %v; servers %+v volumes %+v", l, e.sim.Servers(false), e.sim.Volumes())
			}
		})
	}
}

func TestBootFromVolumeRetriesPastOneFault(t *testing.T) {
	t.Parallel()
	e := start(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpServerCreate, FirstN: 1, Kind: cloudsim.FaultError},
		{Op: cloudsim.OpVolumeCreate, Name: "web-data", FirstN: 1, Kind: cloudsim.FaultError},
	}}, false)
	en, err := e.runDef(t, "boot-from-volume", bfvValues(), tasks.WithRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := engine.Fetch[string](en, tasks.Server)
	boot, _ := engine.Fetch[string](en, tasks.BootVolume)
	data, _ := engine.Fetch[string](en, tasks.DataVolume)
	if l := e.leaks(srv, boot, data); len(l) > 0 {
		t.Fatalf("the failed attempts were not cleaned up: %v", l)
	}
}

func TestRerunWithSameRunIDAdopts(t *testing.T) {
	t.Parallel()
	e := start(t, nil, false)
	v := bfvValues()
	v[tasks.RunID] = "run-42"
	first, err := e.runDef(t, "boot-from-volume", v)
	if err != nil {
		t.Fatal(err)
	}
	v = bfvValues()
	v[tasks.RunID] = "run-42"
	second, err := e.runDef(t, "boot-from-volume", v)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{tasks.Server, tasks.BootVolume, tasks.DataVolume} {
		a, _ := engine.Fetch[string](first, name)
		b, _ := engine.Fetch[string](second, name)
		if a == "" || a != b {
			t.Errorf("%s: first run %q, second %q", name, a, b)
		}
	}
	if n, m := len(e.sim.Servers(false)), len(e.sim.Volumes()); n != 1 || m != 2 {
		t.Fatalf("re-run duplicated: %d servers, %d volumes", n, m)
	}
}

func swvValues(n int) map[string]any {
	return map[string]any{tasks.Name: "app", tasks.Flavor: "1", tasks.Image: cloudsim.CirrosImageID,
		tasks.Network: "none", tasks.Volumes: n}
}

func TestServerWithVolumes(t *testing.T) {
	t.Parallel()
	t.Run("succeeds", func(t *testing.T) {
		t.Parallel()
		e := start(t, nil, false)
		en, err := e.runDef(t, "server-with-volumes", swvValues(3))
		if err != nil {
			t.Fatal(err)
		}
		srv, _ := engine.Fetch[string](en, tasks.Server)
		keep := []string{srv}
		for i := 1; i <= 3; i++ {
			v, err := engine.Fetch[string](en, "volume_"+string(rune('0'+i)))
			if err != nil || v == "" {
				t.Fatalf("volume_%d: %q %v", i, v, err)
			}
			keep = append(keep, v)
		}
		ss := e.sim.Servers(false)
		if len(ss) != 1 || len(ss[0].VolumeIDs) != 3 {
			t.Fatalf("servers %+v", ss)
		}
		if l := e.leaks(keep...); len(l) > 0 {
			t.Fatal(l)
		}
	})
	for _, tc := range []faultCase{
		{name: "server error", plan: cloudsim.Scripted{Op: cloudsim.OpServerCreate, Kind: cloudsim.FaultError}, atom: "create-server", is: []error{ops.ErrFault}},
		{name: "second volume error", plan: cloudsim.Scripted{Op: cloudsim.OpVolumeCreate, Name: "app-vol-2", Kind: cloudsim.FaultError}, atom: "create-volume-2", is: []error{ops.ErrFault}},
		{name: "third attach rollback", plan: cloudsim.Scripted{Op: cloudsim.OpVolumeAttach, Name: "app-vol-3", Kind: cloudsim.FaultRollback}, atom: "attach-volume-3", is: []error{ops.ErrRolledBack}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{tc.plan}}, false)
			_, err := e.runDef(t, "server-with-volumes", swvValues(3), tasks.WithRetries(1))
			wantReverted(t, err, tc.atom, tc.is...)
			if l := e.leaks(); len(l) > 0 {
				t.Fatalf("leaked after revert: %v", l)
			}
		})
	}
}

func TestSnapshotAndReplace(t *testing.T) {
	t.Parallel()
	values := func(old string) map[string]any {
		return map[string]any{tasks.Server: old, tasks.Name: "new", tasks.Flavor: "1", tasks.Network: "none"}
	}
	t.Run("succeeds", func(t *testing.T) {
		t.Parallel()
		e := start(t, nil, false)
		old := e.bootServer(t, "old")
		en, err := e.runDef(t, "snapshot-and-replace", values(old))
		if err != nil {
			t.Fatal(err)
		}
		snap, _ := engine.Fetch[string](en, tasks.Snapshot)
		repl, _ := engine.Fetch[string](en, tasks.NewServer)
		ss := e.sim.Servers(false)
		if len(ss) != 1 || ss[0].ID != repl || ss[0].Name != "new" || ss[0].Status != "ACTIVE" {
			t.Fatalf("servers %+v (replacement %s)", ss, repl)
		}
		if l := e.leaks(snap, repl); len(l) > 0 {
			t.Fatal(l)
		}
	})
	for _, tc := range []faultCase{
		{name: "snapshot error", plan: cloudsim.Scripted{Op: cloudsim.OpServerSnapshot, Kind: cloudsim.FaultError}, atom: "snapshot-server", is: []error{ops.ErrFault}},
		{name: "replacement error", plan: cloudsim.Scripted{Op: cloudsim.OpServerCreate, Name: "new", Kind: cloudsim.FaultError}, atom: "boot-replacement", is: []error{ops.ErrFault}},
		{name: "old server delete error", plan: cloudsim.Scripted{Op: cloudsim.OpServerDelete, Name: "old", Kind: cloudsim.FaultError}, atom: "delete-old-server", is: []error{ops.ErrFault}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{tc.plan}}, false)
			old := e.bootServer(t, "old")
			_, err := e.runDef(t, "snapshot-and-replace", values(old), tasks.WithRetries(1))
			wantReverted(t, err, tc.atom, tc.is...)
			if l := e.leaks(old); len(l) > 0 {
				t.Fatalf("leaked after revert: %v", l)
			}
			if ss := e.sim.Servers(false); len(ss) != 1 || ss[0].ID != old {
				t.Fatalf("the old server must stay: %+v", ss)
			}
		})
	}
}

// When deleting the old server fails once (it goes to ERROR), the delete
// is sent again, as a second DELETE works: the flow completes instead of
// reverting the healthy replacement and leaving the old server in ERROR.
func TestSnapshotAndReplaceOldDeleteFailsOnce(t *testing.T) {
	t.Parallel()
	e := start(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpServerDelete, Name: "old", Nth: 1, Kind: cloudsim.FaultError},
	}}, false)
	old := e.bootServer(t, "old")
	en, err := e.runDef(t, "snapshot-and-replace", map[string]any{tasks.Server: old, tasks.Name: "new", tasks.Flavor: "1", tasks.Network: "none"})
	if err != nil {
		t.Fatalf("one failed delete made the flow give up: %v", err)
	}
	snap, _ := engine.Fetch[string](en, tasks.Snapshot)
	repl, _ := engine.Fetch[string](en, tasks.NewServer)
	if ss := e.sim.Servers(false); len(ss) != 1 || ss[0].ID != repl || ss[0].Status != "ACTIVE" {
		t.Fatalf("servers %+v, want only the replacement %s", ss, repl)
	}
	if l := e.leaks(snap, repl); len(l) > 0 {
		t.Fatal(l)
	}
	if n := e.sim.Counters().Get("DELETE", "/compute/v2.1/servers/{id}"); n != 2 {
		t.Fatalf("%d DELETEs of the old server, want 2", n)
	}
}

func TestResizeFlow(t *testing.T) {
	t.Parallel()
	t.Run("succeeds", func(t *testing.T) {
		t.Parallel()
		e := start(t, nil, false)
		id := e.bootServer(t, "r")
		if _, err := e.runDef(t, "resize", map[string]any{tasks.Server: id, tasks.Flavor: "2"}); err != nil {
			t.Fatal(err)
		}
		if ss := e.sim.Servers(false); ss[0].Status != "ACTIVE" {
			t.Fatalf("%+v", ss)
		}
	})
	t.Run("rollback", func(t *testing.T) {
		t.Parallel()
		e := start(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerResize, Kind: cloudsim.FaultRollback}}}, false)
		id := e.bootServer(t, "r")
		_, err := e.runDef(t, "resize", map[string]any{tasks.Server: id, tasks.Flavor: "2"})
		wantReverted(t, err, "resize-server", ops.ErrRolledBack)
		if ss := e.sim.Servers(false); len(ss) != 1 || ss[0].Status != "ACTIVE" {
			t.Fatalf("%+v", ss)
		}
	})
}

func TestPrepareChecksParameters(t *testing.T) {
	t.Parallel()
	d, _ := tasks.Lookup("server-with-volumes")
	for _, values := range []map[string]any{
		{tasks.Name: "x", tasks.Flavor: "1", tasks.Image: "i"},                                       // no run id
		{tasks.RunID: "r", tasks.Flavor: "1", tasks.Image: "i"},                                      // no name
		{tasks.RunID: "r", tasks.Name: "x", tasks.Flavor: "1", tasks.Image: "i", tasks.Volumes: "2"}, // wrong type
		{tasks.RunID: "r", tasks.Name: "x", tasks.Flavor: "1", tasks.Image: "i", tasks.Volumes: 0},   // out of range
		{tasks.RunID: "r", tasks.Name: "x", tasks.Flavor: "1", tasks.Image: "i", "colour": "blue"},   // unknown
	} {
		if _, _, err := d.Prepare(nil, values); !errors.Is(err, tasks.ErrBadParams) {
			t.Errorf("%v: err %v", values, err)
		}
	}
	f, store, err := d.Prepare(nil, map[string]any{tasks.RunID: "r", tasks.Name: "x", tasks.Flavor: "1", tasks.Image: "i"})
	if err != nil {
		t.Fatal(err)
	}
	if store[tasks.Volumes] != 2 || store[tasks.Network] != "auto" {
		t.Fatalf("defaults not filled: %v", store)
	}
	c, err := flow.Compile(f, flow.WithInputs(keys(store)...))
	if err != nil {
		t.Fatal(err)
	}
	if c.Atoms() != 5 {
		t.Fatalf("%d atoms, want 5", c.Atoms())
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
