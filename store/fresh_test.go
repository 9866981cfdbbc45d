package store_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/store/sqlite"
)

// reads counts the driver's reads of a run.
type reads struct {
	store.Driver
	gets, loads atomic.Int32
}

func (r *reads) GetRun(ctx context.Context, id string) (store.RunRow, error) {
	r.gets.Add(1)
	return r.Driver.GetRun(ctx, id)
}

func (r *reads) LoadAtoms(ctx context.Context, id string) ([]store.AtomRow, error) {
	r.loads.Add(1)
	return r.Driver.LoadAtoms(ctx, id)
}

// A run from Start runs without reading back what Create wrote, and ends
// exactly as a run whose engine read it back does.
func TestStartReadsNothing(t *testing.T) {
	ctx := context.Background()
	d, err := sqlite.NewDriver(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	rd := &reads{Driver: d}
	db, err := store.New(ctx, rd, store.WithSecrets("s3cret-password-value"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := &store.Registry{}
	err = reg.Register("echo", "1", func(params map[string]json.RawMessage) (*flow.Flow, map[string]any, error) {
		values := map[string]any{}
		for k, v := range params {
			var x any
			if err := json.Unmarshal(v, &x); err != nil {
				return nil, nil, err
			}
			values[k] = x
		}
		echo := flow.TaskFunc("echo", func(ctx context.Context, in flow.Inputs) (map[string]any, error) {
			spec, err := flow.Get[map[string]any](in, "spec")
			if err != nil {
				return nil, err
			}
			name, err := flow.Get[string](in, "name")
			if err != nil {
				return nil, err
			}
			return map[string]any{"name": name, "spec": spec}, nil
		}, flow.Requires("name", "spec"), flow.Provides("out"))
		return flow.Linear("echo-flow", echo), values, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]any{"name": "web", "spec": map[string]any{"flavor": "m1", "password": "s3cret-password-value",
		"volumes": []any{1, 2.5, map[string]any{"size": 10}}}}

	start := func(id string, readBack bool) {
		t.Helper()
		e, run, err := db.Start(ctx, reg, store.NewRun{ID: id, Flow: "echo", Version: "1", Params: params})
		if err != nil {
			t.Fatal(err)
		}
		if readBack {
			if _, err := run.Load(ctx); err != nil { // the engine's Load is then a second one
				t.Fatal(err)
			}
		}
		if err := e.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}

	start("fresh", false)
	if g, l := rd.gets.Load(), rd.loads.Load(); g != 0 || l != 0 {
		t.Fatalf("a started run read %d runs and %d atom lists, want none", g, l)
	}
	start("read", true)
	if g, l := rd.gets.Load(), rd.loads.Load(); g != 1 || l != 1 {
		t.Fatalf("a second Load read %d runs and %d atom lists, want 1 and 1", g, l)
	}

	// Both runs end the same, but for ids and times.
	show := func(id string) (store.RunInfo, []store.AtomInfo) {
		t.Helper()
		info, atoms, err := db.Show(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		info.ID, info.Created, info.Updated = "", time.Time{}, time.Time{}
		for i := range atoms {
			atoms[i].Started, atoms[i].Finished, atoms[i].Updated = time.Time{}, time.Time{}, time.Time{}
		}
		return info, atoms
	}
	fi, fa := show("fresh")
	ri, ra := show("read")
	if fi.State != flow.StateSuccess || len(fa) != 1 || fa[0].State != flow.StateSuccess {
		t.Fatalf("fresh run ended %v with %+v", fi.State, fa)
	}
	if !reflect.DeepEqual(fi, ri) || !reflect.DeepEqual(fa, ra) {
		t.Fatalf("the runs differ:\n fresh %+v %+v\n read  %+v %+v", fi, fa, ri, ra)
	}
	var out map[string]any
	if err := json.Unmarshal(fa[0].Result, &out); err != nil || out["name"] != "web" {
		t.Fatalf("result %s %v", fa[0].Result, err)
	}
}
