package engine_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

func inc(name string) flow.Task {
	return flow.TaskFunc(name, func(_ context.Context, in flow.Inputs) (int, error) {
		v, err := flow.Get[int](in, "value")
		return v + 1, err
	}, flow.Requires("value"), flow.Provides("value"))
}

// The engine's equivalents of TaskFlow's fetch_all and storage.get.
func TestFetchFamily(t *testing.T) {
	j := &journal{}
	f := flow.Linear("l",
		inc("t1"), inc("t2"), inc("t3"),
		flow.Unordered("u", rec(j, "p1", false, flow.Provides("x")), rec(j, "p2", false, flow.Provides("x"))),
		flow.Linear("sub", rec(j, "s", false, flow.Provides("inner"))).WithRetry(flow.Times("r", 2, flow.ProvidesAs("attempt"))),
	)
	e, err := run(t, f, engine.WithStore(map[string]any{"value": 0, "region": "north"}))
	if err != nil {
		t.Fatal(err)
	}
	// A linear flow chains a name provided again: the last provider wins.
	if v, err := engine.Fetch[int](e, "value"); v != 3 || err != nil {
		t.Fatal(v, err)
	}
	if _, err := e.Fetch("x"); !errors.Is(err, flow.ErrAmbiguous) {
		t.Fatal(err)
	}
	all := e.FetchAll()
	want := map[string]any{"value": 3, "region": "north", "inner": "s", "attempt": 1}
	if !maps.Equal(all, want) {
		t.Fatalf("FetchAll = %v", all)
	}
	tests := []struct {
		name string
		want string
		err  error
	}{
		{"value", "[0 1 2 3]", nil},
		{"x", "[p1 p2]", nil},
		{"region", "[north]", nil},
		{"inner", "[s]", nil},
		{"nothing", "[]", flow.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run("FetchMany/"+tt.name, func(t *testing.T) {
			vs, err := e.FetchMany(tt.name)
			if !errors.Is(err, tt.err) || fmt.Sprint(vs) != tt.want && tt.err == nil {
				t.Fatal(vs, err)
			}
		})
	}
	for atom, want := range map[string]any{"t2": 2, "p2": "p2", "r": 1} {
		if v, err := e.Result(atom); v != want || err != nil {
			t.Fatalf("Result(%s) = %v %v", atom, v, err)
		}
	}
	if _, err := e.Result("nope"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatal(err)
	}
}

// Only what succeeded has a result: after a revert, Result and FetchMany
// see no atom outputs, and FetchAll only the store values no atom's output
// hides.
func TestFetchAfterRevert(t *testing.T) {
	j := &journal{}
	e, err := run(t, flow.Linear("l", rec(j, "a", false, flow.Provides("x")), rec(j, "b", true)),
		engine.WithStore(map[string]any{"x": "stored", "y": "kept"}))
	if !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	if _, err := e.Result("a"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatal(err)
	}
	if vs, err := e.FetchMany("x"); err != nil || fmt.Sprint(vs) != "[stored]" {
		t.Fatal(vs, err)
	}
	if all := e.FetchAll(); !maps.Equal(all, map[string]any{"y": "kept"}) {
		t.Fatal(all)
	}
}
