package storetest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

// Storage runs the engine.Storage contract; open returns an empty storage
// for one run each time it is called.
func Storage(t *testing.T, open func(t *testing.T) engine.Storage) {
	ctx := context.Background()

	t.Run("EmptyLoad", func(t *testing.T) {
		s := open(t)
		snap, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Flow != flow.StatePending || len(snap.Atoms) != 0 || len(snap.Values) != 0 {
			t.Fatalf("fresh snapshot = %+v", snap)
		}
	})

	t.Run("FlowCompareAndSet", func(t *testing.T) {
		s := open(t)
		if err := s.SaveFlow(ctx, flow.StatePending, flow.StateRunning); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveFlow(ctx, flow.StatePending, flow.StateRunning); !errors.Is(err, engine.ErrConflict) {
			t.Fatalf("stale from: err = %v, want ErrConflict", err)
		}
		if err := s.SaveFlow(ctx, flow.StateRunning, flow.StateSuccess); err != nil {
			t.Fatal(err)
		}
		mustFlow(t, s, flow.StateSuccess)
	})

	t.Run("AtomCompareAndSet", func(t *testing.T) {
		tests := []struct {
			name string
			from flow.State
		}{
			{"missing atom is not RUNNING", flow.StateRunning},
			{"missing atom is not SUCCESS", flow.StateSuccess},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				err := s.SaveAtom(ctx, tc.from, engine.AtomRecord{Name: "a", State: flow.StateSuccess})
				if !errors.Is(err, engine.ErrConflict) {
					t.Fatalf("err = %v, want ErrConflict", err)
				}
				snap := load(t, s)
				if _, ok := snap.Atoms["a"]; ok {
					t.Fatalf("a conflicting save left %+v", snap.Atoms["a"])
				}
			})
		}
		t.Run("stale state leaves the record", func(t *testing.T) {
			s := open(t)
			save(t, s, flow.StatePending, engine.AtomRecord{Name: "a", State: flow.StateRunning})
			save(t, s, flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateSuccess, Result: "r1"})
			err := s.SaveAtom(ctx, flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateFailure})
			if !errors.Is(err, engine.ErrConflict) {
				t.Fatalf("err = %v, want ErrConflict", err)
			}
			rec := load(t, s).Atoms["a"]
			if rec.State != flow.StateSuccess {
				t.Fatalf("state %v after a conflict", rec.State)
			}
			sameJSON(t, "result", rec.Result, "r1")
		})
	})

	t.Run("Lifecycle", func(t *testing.T) {
		// Execute, revert, reset for a retry, execute again.
		s := open(t)
		steps := []struct{ from, to flow.State }{
			{flow.StatePending, flow.StateRunning},
			{flow.StateRunning, flow.StateSuccess},
			{flow.StateSuccess, flow.StateReverting},
			{flow.StateReverting, flow.StateReverted},
			{flow.StateReverted, flow.StatePending},
			{flow.StatePending, flow.StateRunning},
			{flow.StateRunning, flow.StateFailure},
		}
		for _, st := range steps {
			save(t, s, st.from, engine.AtomRecord{Name: "t", State: st.to})
		}
		if got := load(t, s).Atoms["t"].State; got != flow.StateFailure {
			t.Fatalf("state %v", got)
		}
	})

	t.Run("RecordRoundTrip", func(t *testing.T) {
		type server struct {
			ID       string            `json:"id"`
			Name     string            `json:"name"`
			Metadata map[string]string `json:"metadata"`
			Ports    []int             `json:"ports"`
		}
		results := []struct {
			name   string
			result any
		}{
			{"nil", nil},
			{"string", "2f1c-server-id"},
			{"int", 42},
			{"float", 2.5},
			{"bool", true},
			{"list", []any{"a", 1.0, nil}},
			{"struct", &server{ID: "s1", Name: "web", Metadata: map[string]string{"k": "v"}, Ports: []int{22, 80}}},
			{"named outputs", flow.Values{"server": "s1", "volume": "v1"}},
			{"big int", int64(1) << 60},
			{"unicode", "café ☁ \u2028"},
		}
		for _, tc := range results {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				want := engine.AtomRecord{Name: "a", Version: "1.2", State: flow.StateRunning}
				save(t, s, flow.StatePending, want)
				want.State, want.Result = flow.StateSuccess, tc.result
				save(t, s, flow.StateRunning, want)
				got := load(t, s).Atoms["a"]
				if got.Name != "a" || got.Version != "1.2" || got.State != flow.StateSuccess {
					t.Fatalf("record %+v", got)
				}
				if tc.result == nil {
					if got.Result != nil {
						t.Fatalf("nil result came back as %#v", got.Result)
					}
					return
				}
				sameJSON(t, "result", got.Result, tc.result)
			})
		}
		t.Run("failures and history", func(t *testing.T) {
			s := open(t)
			f1 := &flow.Failure{Atom: "a", Message: "No valid host was found", Type: "*ops.FaultError"}
			f2 := &flow.Failure{Atom: "a", Message: "panic: x", Type: "*flow.PanicError", Stack: "goroutine 1"}
			hist := flow.History{Attempts: []flow.Attempt{{Result: 1, Failures: []*flow.Failure{f1}}, {Result: "two"}}}
			save(t, s, flow.StatePending, engine.AtomRecord{Name: "r", State: flow.StateRunning, History: hist})
			want := engine.AtomRecord{Name: "r", State: flow.StateFailure, Failure: f1, History: hist}
			save(t, s, flow.StateRunning, want)
			save(t, s, flow.StateFailure, engine.AtomRecord{Name: "r", State: flow.StateReverting, Failure: f1, History: hist})
			want = engine.AtomRecord{Name: "r", State: flow.StateRevertFailure, Failure: f1, RevertFailure: f2, History: hist}
			save(t, s, flow.StateReverting, want)
			got := load(t, s).Atoms["r"]
			sameJSON(t, "record", got, want)
			if got.Failure == nil || got.Failure.Message != f1.Message || got.RevertFailure.Stack != f2.Stack {
				t.Fatalf("failures %+v %+v", got.Failure, got.RevertFailure)
			}
			if got.History.Len() != 2 || len(got.History.Attempts[0].Failures) != 1 {
				t.Fatalf("history %+v", got.History)
			}
		})
	})

	t.Run("Values", func(t *testing.T) {
		s := open(t)
		values := map[string]any{"flow_run_id": "run-1", "name": "web", "volume_size": 10, "tags": []string{"a", "b"}}
		if err := s.SaveValues(ctx, values); err != nil {
			t.Fatal(err)
		}
		got := load(t, s).Values
		if len(got) != len(values) {
			t.Fatalf("values %v", got)
		}
		for k, v := range values {
			sameJSON(t, k, got[k], v)
		}
	})

	t.Run("ManyAtoms", func(t *testing.T) {
		s := open(t)
		names := make([]string, 200)
		for i := range names {
			names[i] = "atom-" + strconv.Itoa(i)
			save(t, s, flow.StatePending, engine.AtomRecord{Name: names[i], State: flow.StateRunning})
			save(t, s, flow.StateRunning, engine.AtomRecord{Name: names[i], State: flow.StateSuccess, Result: i})
		}
		snap := load(t, s)
		if len(snap.Atoms) != len(names) {
			t.Fatalf("%d atoms", len(snap.Atoms))
		}
		for i, n := range names {
			sameJSON(t, n, snap.Atoms[n].Result, i)
		}
	})

	t.Run("EngineRunAndResume", func(t *testing.T) {
		// A linear flow suspended after its first task, then resumed by a
		// second engine on the same storage: every task runs once.
		s := open(t)
		var mu sync.Mutex
		ran := map[string]int{}
		var e1 *engine.Engine
		task := func(name string) flow.Task {
			return flow.TaskFunc(name, func(ctx context.Context, in flow.Inputs) (string, error) {
				mu.Lock()
				ran[name]++
				mu.Unlock()
				if name == "a" && e1 != nil {
					e1.Suspend()
				}
				return name + "-result", nil
			})
		}
		f := flow.Linear("resume", task("a"), task("b"), task("c"))
		var err error
		if e1, err = engine.New(f, engine.WithStorage(s)); err != nil {
			t.Fatal(err)
		}
		if err := e1.Run(ctx); !errors.Is(err, engine.ErrSuspended) {
			t.Fatalf("first run: %v", err)
		}
		e1 = nil
		snap := load(t, s)
		if snap.Flow != flow.StateSuspended || snap.Atoms["a"].State != flow.StateSuccess {
			t.Fatalf("after suspend: flow %v, a %+v", snap.Flow, snap.Atoms["a"])
		}
		e2, err := engine.New(f, engine.WithStorage(s))
		if err != nil {
			t.Fatal(err)
		}
		if err := e2.Run(ctx); err != nil {
			t.Fatalf("resume: %v", err)
		}
		for _, n := range []string{"a", "b", "c"} {
			if ran[n] != 1 {
				t.Fatalf("%s ran %d times", n, ran[n])
			}
		}
		snap = load(t, s)
		if snap.Flow != flow.StateSuccess {
			t.Fatalf("flow %v", snap.Flow)
		}
		sameJSON(t, "c's result", snap.Atoms["c"].Result, "c-result")
	})
}

func load(t *testing.T, s engine.Storage) engine.Snapshot {
	t.Helper()
	snap, err := s.Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return snap
}

func save(t *testing.T, s engine.Storage, from flow.State, rec engine.AtomRecord) {
	t.Helper()
	if err := s.SaveAtom(context.Background(), from, rec); err != nil {
		t.Fatalf("SaveAtom %s %v->%v: %v", rec.Name, from, rec.State, err)
	}
}

func mustFlow(t *testing.T, s engine.Storage, want flow.State) {
	t.Helper()
	if got := load(t, s).Flow; got != want {
		t.Fatalf("flow %v, want %v", got, want)
	}
}
