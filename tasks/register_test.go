package tasks_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/store/sqlite"
	"github.com/ostask/ostask/tasks"
)

func TestRegister(t *testing.T) {
	e := start(t, nil, false)
	reg := &store.Registry{}
	if err := tasks.Register(reg, e.cloud); err != nil {
		t.Fatal(err)
	}
	for _, d := range tasks.Flows() {
		if _, err := reg.Lookup(d.Name, tasks.FlowsVersion); err != nil {
			t.Errorf("%s: %v", d.Name, err)
		}
	}
	if err := tasks.Register(reg, e.cloud); !errors.Is(err, store.ErrRegistered) {
		t.Fatalf("second Register = %v", err)
	}
	build, _ := reg.Lookup("boot-from-volume", tasks.FlowsVersion)
	raw := func(m map[string]string) map[string]json.RawMessage {
		out := map[string]json.RawMessage{}
		for k, v := range m {
			out[k] = json.RawMessage(v)
		}
		return out
	}
	base := map[string]string{tasks.RunID: `"r"`, tasks.Name: `"web"`, tasks.Flavor: `"1"`, tasks.Image: `"img"`}
	t.Run("typed parameters", func(t *testing.T) {
		p := raw(base)
		p[tasks.BootVolumeSize] = json.RawMessage(`3`)
		_, values, err := build(p)
		if err != nil || values[tasks.BootVolumeSize] != 3 || values[tasks.Name] != "web" || values[tasks.DataVolumeSize] != 1 {
			t.Fatalf("values %v, %v", values, err)
		}
	})
	for name, bad := range map[string][2]string{
		"int given as text": {tasks.BootVolumeSize, `"3"`},
		"text given as int": {tasks.Name, `7`},
		"unknown parameter": {"colour", `"blue"`},
	} {
		t.Run(name, func(t *testing.T) {
			p := raw(base)
			p[bad[0]] = json.RawMessage(bad[1])
			if _, _, err := build(p); !errors.Is(err, tasks.ErrBadParams) {
				t.Fatalf("build = %v", err)
			}
		})
	}
}

// durableRun starts a ready-made flow recorded in SQLite, suspends it at
// the first event stop approves, and resumes it as a new process would: new
// database connections, a new registry, a new engine.
func durableRun(t *testing.T, e *env, name string, params map[string]any, stop func(engine.Event) bool) error {
	t.Helper()
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "ostask.db")
	open := func() (*store.DB, *store.Registry) {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		reg := &store.Registry{}
		if err := tasks.Register(reg, e.cloud); err != nil {
			t.Fatal(err)
		}
		return db, reg
	}
	db, reg := open()
	params[tasks.RunID] = t.Name()
	en, _, err := db.Start(ctx, reg, store.NewRun{ID: "run", Flow: name, Version: tasks.FlowsVersion, Params: params},
		engine.Parallel(0))
	if err != nil {
		t.Fatal(err)
	}
	en.AddListener(engine.ListenerFunc(func(ev engine.Event) {
		if stop(ev) {
			ev.Engine.Suspend()
		}
	}))
	if err := en.Run(ctx); !errors.Is(err, engine.ErrSuspended) {
		t.Fatalf("first run: %v", err)
	}
	db.Close()

	db, reg = open()
	en, _, err = db.Resume(ctx, reg, "run", "second", engine.Parallel(0))
	if err != nil {
		t.Fatal(err)
	}
	return en.Run(ctx)
}

func TestDurableBootFromVolumeResumes(t *testing.T) {
	t.Parallel()
	e := start(t, nil, false)
	err := durableRun(t, e, "boot-from-volume", map[string]any{tasks.Name: "web", tasks.Flavor: "1",
		tasks.Image: cloudsim.CirrosImageID, tasks.Network: "none", tasks.BootVolumeSize: 2},
		func(ev engine.Event) bool { return ev.Atom == "create-boot-volume" && ev.To == flow.StateSuccess })
	if err != nil {
		t.Fatal(err)
	}
	ss, vs := e.sim.Servers(false), e.sim.Volumes()
	if len(ss) != 1 || ss[0].Status != "ACTIVE" || len(vs) != 2 {
		t.Fatalf("servers %+v volumes %+v", ss, vs)
	}
	for _, v := range vs {
		if v.Status != "in-use" {
			t.Errorf("volume %+v", v)
		}
	}
}

// A run suspended in the middle of its revert resumes into the revert and
// leaves nothing behind.
func TestDurableRevertResumes(t *testing.T) {
	t.Parallel()
	e := start(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpVolumeAttach, Kind: cloudsim.FaultError}}}, false)
	err := durableRun(t, e, "boot-from-volume", map[string]any{tasks.Name: "web", tasks.Flavor: "1",
		tasks.Image: cloudsim.CirrosImageID, tasks.Network: "none"},
		func(ev engine.Event) bool { return ev.To == flow.StateReverted })
	wantReverted(t, err, "attach-data-volume")
	if l := e.leaks(); len(l) > 0 {
		t.Fatalf("leaked: %v", l)
	}
}
