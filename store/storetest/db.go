package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/engine/enginetest"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/store"
)

// Harness is what the DB suite needs from a driver's tests.
type Harness struct {
	// Open returns a DB on a fresh, empty database, closed when t ends.
	Open func(t *testing.T, opts ...store.Option) *store.DB
	// Reopen opens another DB on the database of db, as a second process
	// would; it is closed when t ends.
	Reopen func(t *testing.T, db *store.DB, opts ...store.Option) (*store.DB, error)
	// Exec runs a statement on the database of db, bypassing the store.
	Exec func(t *testing.T, db *store.DB, query string)
	// Dump returns everything the database of db holds: its files, or the
	// text of every row of its tables.
	Dump func(t *testing.T, db *store.DB) []byte
}

// DB runs the suite of a store.DB on a driver.
func DB(t *testing.T, h Harness) {
	ctx := context.Background()
	t.Run("Storage", func(t *testing.T) {
		Storage(t, func(t *testing.T) engine.Storage {
			return create(t, h.Open(t), "run-1")
		})
	})
	t.Run("Catalogue", func(t *testing.T) { testCatalogue(t, h) })
	t.Run("Fencing", func(t *testing.T) { testFencing(t, h) })
	t.Run("TwoEngines", func(t *testing.T) { testTwoEngines(t, h) })
	t.Run("Batch", func(t *testing.T) { testBatch(t, h) })
	t.Run("Timings", func(t *testing.T) { testTimings(t, h) })
	t.Run("EncodeErrors", func(t *testing.T) { testEncode(t, h) })
	t.Run("Secrets", func(t *testing.T) { testSecrets(t, h) })
	t.Run("Corrupt", func(t *testing.T) { testCorrupt(t, h) })
	t.Run("Schema", func(t *testing.T) { testSchema(t, h) })
	t.Run("Resume", func(t *testing.T) { testResume(t, h) })
	t.Run("Group", func(t *testing.T) { testGroup(t, h) })
	t.Run("Guards", func(t *testing.T) { testGuards(t, h) })
	t.Run("FreshLoad", func(t *testing.T) { testFreshLoad(t, h) })
	t.Run("ConcurrentRuns", func(t *testing.T) {
		db := h.Open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				run, err := db.Create(ctx, store.NewRun{ID: fmt.Sprintf("c%d", g), Flow: "f"})
				if err != nil {
					errs <- err
					return
				}
				for i := range 20 {
					n := fmt.Sprintf("a%d", i)
					if err := run.SaveBatch(ctx, []store.Transition{
						store.AtomMove(flow.StatePending, engine.AtomRecord{Name: n, State: flow.StateRunning}),
						store.AtomMove(flow.StateRunning, engine.AtomRecord{Name: n, State: flow.StateSuccess, Result: g*100 + i}),
					}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for g := range 8 {
			_, atoms, err := db.Show(ctx, fmt.Sprintf("c%d", g))
			if err != nil || len(atoms) != 20 {
				t.Fatalf("run c%d: %d atoms, %v", g, len(atoms), err)
			}
			for _, a := range atoms {
				if a.State != flow.StateSuccess {
					t.Fatalf("run c%d atom %s: %v", g, a.Name, a.State)
				}
			}
		}
	})
}

func create(t *testing.T, db *store.DB, id string) *store.Run {
	t.Helper()
	run, err := db.Create(context.Background(), store.NewRun{ID: id, Flow: "test-flow", Version: "1"})
	if err != nil {
		t.Fatalf("Create %s: %v", id, err)
	}
	return run
}

func batch(t *testing.T, r *store.Run, ts ...store.Transition) {
	t.Helper()
	if err := r.SaveBatch(context.Background(), ts); err != nil {
		t.Fatalf("SaveBatch: %v", err)
	}
}

func atomsByName(t *testing.T, db *store.DB, id string) map[string]store.AtomInfo {
	t.Helper()
	_, atoms, err := db.Show(context.Background(), id)
	if err != nil {
		t.Fatalf("Show %s: %v", id, err)
	}
	out := map[string]store.AtomInfo{}
	for _, a := range atoms {
		out[a.Name] = a
	}
	return out
}

func testCatalogue(t *testing.T, h Harness) {
	ctx := context.Background()
	clock := NewClock()
	db := h.Open(t, store.WithClock(clock.Now), store.WithOwner("host-a:1"))
	t0 := clock.Now()
	params := map[string]any{"flow_run_id": "r1", "name": "web", "volume_size": 2}
	if _, err := db.Create(ctx, store.NewRun{ID: "r1", Flow: "boot-from-volume", Version: "1", Params: params}); err != nil {
		t.Fatal(err)
	}
	info, err := db.Get(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != "r1" || info.Flow != "boot-from-volume" || info.Version != "1" || info.State != flow.StatePending ||
		info.Owner != "host-a:1" || info.Epoch != 1 || !info.Created.Equal(t0) || !info.Updated.Equal(t0) {
		t.Fatalf("info %+v", info)
	}
	sameJSON(t, "params", info.Params, params)

	t.Run("duplicate id", func(t *testing.T) {
		_, err := db.Create(ctx, store.NewRun{ID: "r1", Flow: "other"})
		if !errors.Is(err, store.ErrExists) {
			t.Fatalf("err = %v, want ErrExists", err)
		}
		if info, _ := db.Get(ctx, "r1"); info.Flow != "boot-from-volume" {
			t.Fatalf("the duplicate changed the run: %+v", info)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for _, nr := range []store.NewRun{{Flow: "f"}, {ID: "x"}} {
			if _, err := db.Create(ctx, nr); !errors.Is(err, store.ErrBadRun) {
				t.Fatalf("Create(%+v) = %v, want ErrBadRun", nr, err)
			}
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if _, err := db.Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get: %v", err)
		}
		if _, err := db.Acquire(ctx, "nope", ""); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Acquire: %v", err)
		}
		if _, _, err := db.Show(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Show: %v", err)
		}
		if err := db.Delete(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Delete: %v", err)
		}
	})

	clock.Advance(time.Second)
	r2, err := db.Create(ctx, store.NewRun{ID: "r2", Flow: "resize", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if _, err := db.Create(ctx, store.NewRun{ID: "r3", Flow: "boot-from-volume", Version: "2"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if err := r2.SaveFlow(ctx, flow.StatePending, flow.StateRunning); err != nil {
		t.Fatal(err)
	}
	if info, _ := db.Get(ctx, "r2"); info.State != flow.StateRunning || !info.Updated.Equal(clock.Now()) || !info.Created.Equal(t0.Add(time.Second)) {
		t.Fatalf("after a flow move: %+v", info)
	}
	ids := func(f store.RunFilter) []string {
		runs, err := db.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range runs {
			out = append(out, r.ID)
		}
		return out
	}
	lists := []struct {
		name string
		f    store.RunFilter
		want string
	}{
		{"all, newest first", store.RunFilter{}, "[r3 r2 r1]"},
		{"by flow", store.RunFilter{Flow: "boot-from-volume"}, "[r3 r1]"},
		{"by state", store.RunFilter{State: "RUNNING"}, "[r2]"},
		{"limit", store.RunFilter{Limit: 2}, "[r3 r2]"},
		{"nothing", store.RunFilter{Flow: "none"}, "[]"},
	}
	for _, tc := range lists {
		t.Run("list "+tc.name, func(t *testing.T) {
			if got := fmt.Sprint(ids(tc.f)); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	t.Run("delete", func(t *testing.T) {
		batch(t, r2, store.AtomMove(flow.StatePending, engine.AtomRecord{Name: "a", State: flow.StateRunning}))
		if err := db.Delete(ctx, "r2"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Get(ctx, "r2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get after Delete: %v", err)
		}
		// The handle of a deleted run conflicts rather than recreating it.
		err := r2.SaveAtom(ctx, flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateSuccess})
		var ce *store.ConflictError
		if !errors.As(err, &ce) || !ce.Missing {
			t.Fatalf("save after delete: %v", err)
		}
		if got := fmt.Sprint(ids(store.RunFilter{})); got != "[r3 r1]" {
			t.Fatal(got)
		}
		// The atoms went with the run: a new run of the same id starts
		// empty.
		if _, err := db.Create(ctx, store.NewRun{ID: "r2", Flow: "resize", Version: "1"}); err != nil {
			t.Fatal(err)
		}
		if atoms := atomsByName(t, db, "r2"); len(atoms) != 0 {
			t.Fatalf("the deleted run's atoms are still there: %+v", atoms)
		}
	})
}

func testFencing(t *testing.T, h Harness) {
	ctx := context.Background()
	db := h.Open(t)
	old := create(t, db, "f1")
	batch(t, old, store.FlowMove(flow.StatePending, flow.StateRunning),
		store.AtomMove(flow.StatePending, engine.AtomRecord{Name: "a", State: flow.StateRunning}))
	epochs := []int64{old.Epoch()}
	var cur *store.Run
	for i := range 3 {
		r, err := db.Acquire(ctx, "f1", fmt.Sprintf("owner-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if r.Epoch() <= epochs[len(epochs)-1] {
			t.Fatalf("epochs %v then %d: not strictly increasing", epochs, r.Epoch())
		}
		epochs = append(epochs, r.Epoch())
		cur = r
	}
	if info, _ := db.Get(ctx, "f1"); info.Epoch != cur.Epoch() || info.Owner != "owner-2" {
		t.Fatalf("catalogue says epoch %d owner %q", info.Epoch, info.Owner)
	}
	writes := []struct {
		name string
		fn   func(r *store.Run) error
	}{
		{"SaveAtom", func(r *store.Run) error {
			return r.SaveAtom(ctx, flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateSuccess, Result: "stale"})
		}},
		{"SaveFlow", func(r *store.Run) error { return r.SaveFlow(ctx, flow.StateRunning, flow.StateSuccess) }},
		{"SaveValues", func(r *store.Run) error { return r.SaveValues(ctx, map[string]any{"x": 1}) }},
		{"SaveBatch", func(r *store.Run) error {
			return r.SaveBatch(ctx, []store.Transition{store.FlowMove(flow.StateRunning, flow.StateSuspending)})
		}},
	}
	for _, w := range writes {
		t.Run("stale "+w.name, func(t *testing.T) {
			err := w.fn(old)
			var fe *store.FencedError
			if !errors.As(err, &fe) || !errors.Is(err, store.ErrFenced) || !errors.Is(err, engine.ErrConflict) {
				t.Fatalf("err = %v, want a *FencedError", err)
			}
			if fe.Run != "f1" || fe.Held != epochs[0] || fe.Current != cur.Epoch() || fe.Owner != "owner-2" {
				t.Fatalf("fenced error %+v", fe)
			}
		})
	}
	snap, err := cur.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Flow != flow.StateRunning || snap.Atoms["a"].State != flow.StateRunning || len(snap.Values) != 0 {
		t.Fatalf("a fenced writer changed the run: %+v", snap)
	}
	// The owner writes on.
	batch(t, cur, store.AtomMove(flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateSuccess, Result: "owner"}),
		store.FlowMove(flow.StateRunning, flow.StateSuccess))
	// An intermediate owner is fenced too.
	mid, err := db.Acquire(ctx, "f1", "owner-3")
	if err != nil {
		t.Fatal(err)
	}
	if err := cur.SaveFlow(ctx, flow.StateSuccess, flow.StatePending); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("previous owner after another acquire: %v", err)
	}
	if err := mid.SaveFlow(ctx, flow.StateSuccess, flow.StatePending); err != nil {
		t.Fatal(err)
	}
}

// testTwoEngines: engine A runs a task that blocks; meanwhile B takes the
// run over and finishes it. When A's task returns, A's next write is
// fenced: A stops with the typed error and B's results stand.
func testTwoEngines(t *testing.T, h Harness) {
	ctx := context.Background()
	db := h.Open(t)
	runA := create(t, db, "two")
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	ran := map[string]int{}
	mark := func(s string) {
		mu.Lock()
		ran[s]++
		mu.Unlock()
	}
	build := func(who string, block bool) *flow.Flow {
		a := flow.TaskFunc("a", func(ctx context.Context, in flow.Inputs) (string, error) {
			mark(who + ":a")
			if block {
				close(entered)
				<-release
			}
			return who, nil
		})
		b := flow.TaskFunc("b", func(ctx context.Context, in flow.Inputs) (string, error) {
			mark(who + ":b")
			return who, nil
		})
		return flow.Linear("two", a, b)
	}
	eA, err := engine.New(build("A", true), engine.WithStorage(runA))
	if err != nil {
		t.Fatal(err)
	}
	errA := make(chan error, 1)
	go func() { errA <- eA.Run(ctx) }()
	<-entered

	runB, err := db.Acquire(ctx, "two", "B")
	if err != nil {
		t.Fatal(err)
	}
	eB, err := engine.New(build("B", false), engine.WithStorage(runB))
	if err != nil {
		t.Fatal(err)
	}
	if err := eB.Run(ctx); err != nil {
		t.Fatalf("B: %v", err)
	}
	close(release)
	err = <-errA
	var fe *store.FencedError
	if !errors.As(err, &fe) || fe.Held != runA.Epoch() || fe.Current != runB.Epoch() || fe.Owner != "B" {
		t.Fatalf("A's Run = %v, want a *FencedError naming both epochs", err)
	}
	if ran["A:b"] != 0 || ran["B:a"] != 1 || ran["B:b"] != 1 {
		t.Fatalf("ran %v", ran)
	}
	snap, err := runB.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Flow != flow.StateSuccess {
		t.Fatalf("flow %v", snap.Flow)
	}
	for _, n := range []string{"a", "b"} {
		sameJSON(t, n, snap.Atoms[n].Result, "B")
	}
}

func testBatch(t *testing.T, h Harness) {
	ctx := context.Background()
	clock := NewClock()
	db := h.Open(t, store.WithClock(clock.Now))
	r := create(t, db, "b1")
	if err := r.SaveBatch(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	batch(t, r,
		store.SetValues(map[string]any{"n": 1}),
		store.FlowMove(flow.StatePending, flow.StateRunning),
		store.AtomMove(flow.StatePending, engine.AtomRecord{Name: "a", State: flow.StateRunning}),
		store.AtomMove(flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateSuccess, Result: "ra"}),
		store.AtomMove(flow.StatePending, engine.AtomRecord{Name: "b", State: flow.StateRunning}),
	)
	atoms := atomsByName(t, db, "b1")
	now := clock.Now()
	if a := atoms["a"]; a.State != flow.StateSuccess || a.Attempts != 1 || !a.Started.Equal(now) || !a.Finished.Equal(now) {
		t.Fatalf("a %+v", a)
	}
	if b := atoms["b"]; b.State != flow.StateRunning || b.Attempts != 1 || !b.Started.Equal(now) || !b.Finished.IsZero() {
		t.Fatalf("b %+v", b)
	}

	rejected := []struct {
		name string
		ts   []store.Transition
		atom string
	}{
		{"a later conflict undoes earlier writes", []store.Transition{
			store.AtomMove(flow.StateRunning, engine.AtomRecord{Name: "b", State: flow.StateSuccess}),
			store.FlowMove(flow.StateRunning, flow.StateSuspending),
			store.AtomMove(flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateFailure}),
		}, "a"},
		{"an atom chain that does not link", []store.Transition{
			store.AtomMove(flow.StatePending, engine.AtomRecord{Name: "c", State: flow.StateRunning}),
			store.AtomMove(flow.StateSuccess, engine.AtomRecord{Name: "c", State: flow.StateReverting}),
		}, "c"},
		{"a flow chain that does not link", []store.Transition{
			store.AtomMove(flow.StateRunning, engine.AtomRecord{Name: "b", State: flow.StateSuccess}),
			store.FlowMove(flow.StateRunning, flow.StateSuspending),
			store.FlowMove(flow.StateRunning, flow.StateSuccess),
		}, ""},
		{"a stale flow state", []store.Transition{
			store.AtomMove(flow.StateRunning, engine.AtomRecord{Name: "b", State: flow.StateSuccess}),
			store.FlowMove(flow.StatePending, flow.StateRunning),
		}, ""},
	}
	for _, tc := range rejected {
		t.Run(tc.name, func(t *testing.T) {
			err := r.SaveBatch(ctx, tc.ts)
			var ce *store.ConflictError
			if !errors.As(err, &ce) || ce.Atom != tc.atom || ce.Run != "b1" {
				t.Fatalf("err = %v, want a *ConflictError for atom %q", err, tc.atom)
			}
			atoms := atomsByName(t, db, "b1")
			info, _ := db.Get(ctx, "b1")
			if atoms["a"].State != flow.StateSuccess || atoms["b"].State != flow.StateRunning || len(atoms) != 2 ||
				info.State != flow.StateRunning {
				t.Fatalf("a rejected batch wrote: flow %v atoms %+v", info.State, atoms)
			}
		})
	}
	// The handle is still usable after rejected batches.
	batch(t, r, store.AtomMove(flow.StateRunning, engine.AtomRecord{Name: "b", State: flow.StateSuccess}),
		store.FlowMove(flow.StateRunning, flow.StateSuspending), store.FlowMove(flow.StateSuspending, flow.StateSuspended))
	if info, _ := db.Get(ctx, "b1"); info.State != flow.StateSuspended {
		t.Fatalf("flow %v", info.State)
	}
}

func testTimings(t *testing.T, h Harness) {
	clock := NewClock()
	db := h.Open(t, store.WithClock(clock.Now))
	r := create(t, db, "t1")
	step := func(from, to flow.State) time.Time {
		clock.Advance(time.Second)
		batch(t, r, store.AtomMove(from, engine.AtomRecord{Name: "a", State: to}))
		return clock.Now()
	}
	started := step(flow.StatePending, flow.StateRunning)
	done := step(flow.StateRunning, flow.StateSuccess)
	a := atomsByName(t, db, "t1")["a"]
	if a.Attempts != 1 || !a.Started.Equal(started) || !a.Finished.Equal(done) || !a.Updated.Equal(done) {
		t.Fatalf("after success: %+v", a)
	}
	step(flow.StateSuccess, flow.StateReverting)
	reverted := step(flow.StateReverting, flow.StateReverted)
	if a := atomsByName(t, db, "t1")["a"]; !a.Started.Equal(started) || !a.Finished.Equal(reverted) {
		t.Fatalf("after revert: %+v", a)
	}
	step(flow.StateReverted, flow.StatePending)
	again := step(flow.StatePending, flow.StateRunning)
	a = atomsByName(t, db, "t1")["a"]
	if a.Attempts != 2 || !a.Started.Equal(again) || !a.Finished.IsZero() {
		t.Fatalf("second attempt: %+v", a)
	}
}

func testEncode(t *testing.T, h Harness) {
	ctx := context.Background()
	db := h.Open(t)
	r := create(t, db, "e1")
	batch(t, r, store.AtomMove(flow.StatePending, engine.AtomRecord{Name: "a", State: flow.StateRunning}))
	bad := []struct {
		name  string
		ts    store.Transition
		atom  string
		field string
	}{
		{"channel result", store.AtomMove(flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateSuccess, Result: make(chan int)}), "a", "result"},
		{"infinite result", store.AtomMove(flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateSuccess, Result: math.Inf(1)}), "a", "result"},
		{"function in history", store.AtomMove(flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateSuccess,
			History: flow.History{Attempts: []flow.Attempt{{Result: func() {}}}}}), "a", "history"},
		{"function in values", store.SetValues(map[string]any{"f": func() {}}), "", "values"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := r.SaveBatch(ctx, []store.Transition{store.FlowMove(flow.StatePending, flow.StateRunning), tc.ts})
			var ee *store.EncodeError
			if !errors.As(err, &ee) || !errors.Is(err, store.ErrEncode) || ee.Atom != tc.atom || ee.Field != tc.field || ee.Run != "e1" {
				t.Fatalf("err = %v, want an *EncodeError for %q %s", err, tc.atom, tc.field)
			}
			info, atoms, _ := db.Show(ctx, "e1")
			if info.State != flow.StatePending || atoms[0].State != flow.StateRunning {
				t.Fatalf("an unencodable batch wrote: %v %v", info.State, atoms[0].State)
			}
		})
	}
	t.Run("params", func(t *testing.T) {
		_, err := db.Create(ctx, store.NewRun{ID: "e2", Flow: "f", Params: map[string]any{"c": make(chan int)}})
		var ee *store.EncodeError
		if !errors.As(err, &ee) || ee.Field != "params" {
			t.Fatalf("err = %v", err)
		}
		if _, err := db.Get(ctx, "e2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the run was created: %v", err)
		}
	})
}

// Secrets known to the tests; none may appear in the database.
const (
	secretPassword = "hunter2-cloud-password"
	secretToken    = "gAAAAABkeystone-token-0123456789"
	secretAppCred  = "appcred-secret-abcdefghijkl"
	secretAdmin    = "Adm1n-Pass-from-nova-9f8e7d"
	secretNested   = "nested-credential-secret-value"
	// secretHTML has characters encoding/json escapes by default (\u0026,
	// \u003c) and writes as they are with SetEscapeHTML(false).
	secretHTML = "p&ss<w0rd>-of-a-project"
)

func testSecrets(t *testing.T, h Harness) {
	ctx := context.Background()
	db := h.Open(t, store.WithSecrets(secretPassword))
	db.AddSecrets(secretToken, secretAppCred, "short", secretHTML)
	for doc, want := range map[string]bool{
		`{"name":"web-` + secretPassword + `"}`: true, `{"note":"x` + secretToken + `"}`: true,
		`{"name":"` + secretHTML + `"}`: true, `{"name":"p\u0026ss\u003cw0rd\u003e-of-a-project"}`: true,
		`{"name":"web-visible"}`: false, `{"name":"short"}`: false, `{"adminPass":"` + secretAdmin + `"}`: false,
	} {
		if got := db.HoldsSecret([]byte(doc)); got != want {
			t.Errorf("HoldsSecret(%s) = %v, want %v", doc, got, want)
		}
	}
	type server struct {
		ID        string `json:"id"`
		Name      string `json:"name"`
		AdminPass string `json:"adminPass"`
	}
	r, err := db.Create(ctx, store.NewRun{ID: "s1", Flow: "f", Params: map[string]any{
		"name": "web-visible", "os_password": secretPassword, "note": "uses " + secretToken, "remark": secretHTML}})
	if err != nil {
		t.Fatal(err)
	}
	hist := flow.History{Attempts: []flow.Attempt{{Result: map[string]any{"auth": map[string]any{
		"application_credential_secret": secretNested, "id": "cred-visible"}}}}}
	batch(t, r,
		store.SetValues(map[string]any{"name": "web-visible", "Password": secretPassword, "url": "https://x/?key=" + secretAppCred}),
		store.AtomMove(flow.StatePending, engine.AtomRecord{Name: "boot", State: flow.StateRunning}),
		store.AtomMove(flow.StateRunning, engine.AtomRecord{Name: "boot", State: flow.StateSuccess,
			Result: &server{ID: "server-visible", Name: "web", AdminPass: secretAdmin}}),
		store.AtomMove(flow.StatePending, engine.AtomRecord{Name: "retry", State: flow.StateRunning, History: hist}),
		store.AtomMove(flow.StatePending, engine.AtomRecord{Name: "auth", State: flow.StateRunning}),
		store.AtomMove(flow.StateRunning, engine.AtomRecord{Name: "auth", State: flow.StateFailure,
			Failure: &flow.Failure{Atom: "auth", Message: "401: token " + secretToken + " rejected for password " + secretPassword}}),
		store.AtomMove(flow.StateFailure, engine.AtomRecord{Name: "auth", State: flow.StateReverting}),
		store.AtomMove(flow.StateReverting, engine.AtomRecord{Name: "auth", State: flow.StateRevertFailure,
			RevertFailure: &flow.Failure{Atom: "auth", Message: "X-Auth-Token: " + secretToken}}),
	)
	dump := h.Dump(t, db)
	for _, visible := range []string{"web-visible", "server-visible", "cred-visible", store.Redacted} {
		if !bytes.Contains(dump, []byte(visible)) {
			t.Fatalf("the dump lacks %q: it does not show the data", visible)
		}
	}
	for _, s := range []string{secretPassword, secretToken, secretAppCred, secretAdmin, secretNested, secretHTML,
		`p\u0026ss\u003cw0rd\u003e-of-a-project`} {
		if bytes.Contains(dump, []byte(s)) {
			t.Errorf("secret %q reached the database", s)
		}
	}
	snap, err := r.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(snap.Atoms["boot"].Result.(json.RawMessage), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["adminPass"]; ok || got["id"] != "server-visible" {
		t.Fatalf("boot result %v: want the id without adminPass", got)
	}
}

func testCorrupt(t *testing.T, h Harness) {
	ctx := context.Background()
	edits := []struct {
		name   string
		sql    string
		atom   string
		column string
	}{
		{"unknown atom state", "UPDATE ostask_atoms SET state = 'EXPLODED' WHERE run_id = 'c1' AND name = 'b'", "b", "state"},
		{"failure of the wrong shape", `UPDATE ostask_atoms SET failure = '"just text"' WHERE run_id = 'c1' AND name = 'b'`, "b", "failure"},
		{"history of the wrong shape", `UPDATE ostask_atoms SET history = '{"attempts": 5}' WHERE run_id = 'c1' AND name = 'b'`, "b", "history"},
		{"unknown flow state", "UPDATE ostask_runs SET state = 'WEIRD' WHERE id = 'c1'", "", "state"},
		{"params not an object", "UPDATE ostask_runs SET params = '[1, 2]' WHERE id = 'c1'", "", "params"},
	}
	for _, tc := range edits {
		t.Run(tc.name, func(t *testing.T) {
			db := h.Open(t)
			r := create(t, db, "c1")
			batch(t, r, store.FlowMove(flow.StatePending, flow.StateRunning),
				store.AtomMove(flow.StatePending, engine.AtomRecord{Name: "a", State: flow.StateRunning}),
				store.AtomMove(flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateSuccess, Result: "ok"}),
				store.AtomMove(flow.StatePending, engine.AtomRecord{Name: "b", State: flow.StateRunning}))
			ctl := create(t, db, "control")
			batch(t, ctl, store.FlowMove(flow.StatePending, flow.StateRunning))
			h.Exec(t, db, tc.sql)
			before := h.Dump(t, db)
			_, err := r.Load(ctx)
			var ce *store.CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, store.ErrCorrupt) || ce.Run != "c1" || ce.Atom != tc.atom || ce.Column != tc.column {
				t.Fatalf("Load = %v, want a *CorruptError naming run c1, atom %q, column %s", err, tc.atom, tc.column)
			}
			if after := h.Dump(t, db); !bytes.Equal(before, after) {
				t.Fatal("reading a corrupt run changed the database")
			}
			if tc.column == "state" && tc.atom != "" {
				// Writing over the corrupt atom is refused with the same clarity.
				err = r.SaveAtom(ctx, flow.StateRunning, engine.AtomRecord{Name: tc.atom, State: flow.StateSuccess})
				if !errors.As(err, &ce) || ce.Atom != tc.atom {
					t.Fatalf("save over a corrupt state: %v", err)
				}
			}
			if info, err := db.Get(ctx, "control"); err != nil || info.State != flow.StateRunning {
				t.Fatalf("other run: %+v %v", info, err)
			}
		})
	}
}

func testSchema(t *testing.T, h Harness) {
	ctx := context.Background()
	db := h.Open(t)
	from, to := db.Migrated()
	if from != 0 || to < 1 {
		t.Fatalf("fresh database migrated %d -> %d", from, to)
	}
	create(t, db, "keep")
	again, err := h.Reopen(t, db)
	if err != nil {
		t.Fatal(err)
	}
	if f, t2 := again.Migrated(); f != to || t2 != to {
		t.Fatalf("reopen migrated %d -> %d, want %d -> %d", f, t2, to, to)
	}
	h.Exec(t, db, "INSERT INTO ostask_schema (version, name) VALUES (9999, '9999_from_the_future.sql')")
	_, err = h.Reopen(t, db)
	var se *store.SchemaError
	if !errors.As(err, &se) || !errors.Is(err, store.ErrSchemaTooNew) || se.Database != 9999 || se.Known != to {
		t.Fatalf("Reopen = %v, want a *SchemaError 9999 > %d", err, to)
	}
	if _, err := db.Get(ctx, "keep"); err != nil {
		t.Fatalf("the refused open touched the data: %v", err)
	}
}

// sequential hides SaveBatch: the engine then saves one transition at a
// time, and a crash can fall between any two.
type sequential struct{ engine.Storage }

// testResume runs the engine's resume checks on runs of this database:
// a crash after every write (every batch, and every single save when the
// engine cannot batch), a crash every write until the run ends, and a
// suspension at every write.
func testResume(t *testing.T, h Harness) {
	db := h.Open(t)
	n := 0
	newRun := func() engine.Storage {
		n++
		return create(t, db, fmt.Sprintf("resume-%d", n))
	}
	newSequential := func() engine.Storage { return sequential{newRun()} }
	for _, c := range enginetest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			enginetest.CrashAtEverySave(t, c, newRun)
			enginetest.CrashAtEverySave(t, c, newSequential)
			enginetest.CrashEvery(t, c, 1, newRun)
			enginetest.InterruptAtEverySave(t, c, enginetest.Suspend, true, newRun)
		})
	}
}

// testGroup checks a GroupDriver's ApplyGroup: several runs' batches in one
// transaction, all or nothing, and the batch that could not be written
// named with what its guard found.
func testGroup(t *testing.T, h Harness) {
	ctx := context.Background()
	db := h.Open(t)
	d, ok := db.Driver().(store.GroupDriver)
	if !ok {
		t.Skipf("%s does not write groups", db.Driver().Name())
	}
	if d.GroupWriters() < 1 {
		t.Fatalf("GroupWriters %d", d.GroupWriters())
	}
	ids := []string{"g0", "g1", "g2"}
	for _, id := range ids {
		create(t, db, id)
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	start := func(id string, seq int64, atom string) *store.Batch {
		return &store.Batch{Run: id, Epoch: 1, Seq: seq, FlowFrom: "PENDING", FlowTo: "RUNNING", Now: now,
			Atoms: []store.AtomWrite{{From: "PENDING", Row: store.AtomRow{Name: atom, State: "RUNNING"}, Start: true}}}
	}
	finish := func(id string, seq int64, atom, from string) *store.Batch {
		return &store.Batch{Run: id, Epoch: 1, Seq: seq, Now: now,
			Atoms: []store.AtomWrite{{From: from, Row: store.AtomRow{Name: atom, State: "SUCCESS", Result: []byte(`"ok"`)}, Finish: true}}}
	}
	creation := func(id string) *store.Batch {
		return &store.Batch{Run: id, Create: &store.RunRow{ID: id, Flow: "f", Params: []byte(`{}`), State: "PENDING",
			Owner: "o", Epoch: 1, Created: now, Updated: now}}
	}
	// unchanged checks that a failed group wrote nothing.
	unchanged := func(t *testing.T, want map[string]flow.State) {
		t.Helper()
		for id, st := range want {
			if got := atomsByName(t, db, id)["a"].State; got != st {
				t.Fatalf("%s atom a is %v, want %v: a failed group wrote", id, got, st)
			}
		}
	}

	if err := d.ApplyGroup(ctx, []*store.Batch{start("g0", 0, "a"), start("g1", 0, "a"), start("g2", 0, "a")}); err != nil {
		t.Fatalf("ApplyGroup: %v", err)
	}
	for _, id := range ids {
		if info, _ := db.Get(ctx, id); info.State != flow.StateRunning {
			t.Fatalf("%s: flow %v", id, info.State)
		}
		if a := atomsByName(t, db, id)["a"]; a.State != flow.StateRunning || a.Attempts != 1 || !a.Started.Equal(now) {
			t.Fatalf("%s: atom %+v", id, a)
		}
	}
	running := map[string]flow.State{"g0": flow.StateRunning, "g1": flow.StateRunning, "g2": flow.StateRunning}

	failures := []struct {
		name  string
		group []*store.Batch
		index int
		check func(t *testing.T, err error)
	}{
		{"a stale epoch", []*store.Batch{finish("g0", 1, "a", "RUNNING"), {Run: "g1", Epoch: 7, Seq: 1, Now: now}, finish("g2", 1, "a", "RUNNING")}, 1,
			func(t *testing.T, err error) {
				var m *store.RunMismatch
				if !errors.As(err, &m) || !m.Found || m.Epoch != 1 || m.Seq != 1 || m.State != "RUNNING" {
					t.Fatalf("err %v, want a *RunMismatch with the row", err)
				}
			}},
		{"a run that is not there", []*store.Batch{finish("g0", 1, "a", "RUNNING"), {Run: "nope", Epoch: 1, Now: now}}, 1,
			func(t *testing.T, err error) {
				var m *store.RunMismatch
				if !errors.As(err, &m) || m.Found {
					t.Fatalf("err %v, want a *RunMismatch, not found", err)
				}
			}},
		{"an atom in another state", []*store.Batch{finish("g0", 1, "a", "RUNNING"), finish("g1", 1, "a", "RUNNING"), finish("g2", 1, "a", "REVERTING")}, 2,
			func(t *testing.T, err error) {
				var m *store.AtomMismatch
				if !errors.As(err, &m) || m.Atom != "a" || !m.Found || m.State != "RUNNING" {
					t.Fatalf("err %v, want an *AtomMismatch: a is RUNNING", err)
				}
			}},
		{"an atom that is not there", []*store.Batch{finish("g0", 1, "b", "RUNNING"), finish("g1", 1, "a", "RUNNING")}, 0,
			func(t *testing.T, err error) {
				var m *store.AtomMismatch
				if !errors.As(err, &m) || m.Atom != "b" || m.Found {
					t.Fatalf("err %v, want an *AtomMismatch: b missing", err)
				}
			}},
		{"a creation whose id is taken", []*store.Batch{creation("g3"), finish("g0", 1, "a", "RUNNING"), creation("g1")}, 2,
			func(t *testing.T, err error) {
				if !errors.Is(err, store.ErrExists) {
					t.Fatalf("err %v, want ErrExists", err)
				}
				if _, err := db.Get(ctx, "g3"); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("g3 of the failed group: %v, want ErrNotFound", err)
				}
			}},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			err := d.ApplyGroup(ctx, tc.group)
			var be *store.BatchError
			if !errors.As(err, &be) || be.Index != tc.index {
				t.Fatalf("ApplyGroup = %v, want a *BatchError for batch %d", err, tc.index)
			}
			tc.check(t, be.Err)
			unchanged(t, running)
		})
	}
	// The sequences did not move: the same group without its failed batch
	// goes through.
	if err := d.ApplyGroup(ctx, []*store.Batch{finish("g0", 1, "a", "RUNNING"), creation("g3"), finish("g2", 1, "a", "RUNNING"), creation("g4")}); err != nil {
		t.Fatalf("ApplyGroup after the failures: %v", err)
	}
	unchanged(t, map[string]flow.State{"g0": flow.StateSuccess, "g1": flow.StateRunning, "g2": flow.StateSuccess})
	for _, id := range []string{"g3", "g4"} {
		info, err := db.Get(ctx, id)
		if err != nil || info.State != flow.StatePending || info.Owner != "o" || info.Epoch != 1 || !info.Created.Equal(now) {
			t.Fatalf("created %s: %+v, %v", id, info, err)
		}
	}
	// A creation alone, through Apply.
	if err := d.Apply(ctx, creation("g1")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("Apply of a taken id: %v, want ErrExists", err)
	}
}

// testGuards checks that Apply names exactly the guard that found nothing
// in batches of several atoms, whichever it is, and writes nothing then.
func testGuards(t *testing.T, h Harness) {
	ctx := context.Background()
	db := h.Open(t)
	d := db.Driver()
	create(t, db, "w")
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	aw := func(name, from, to string) store.AtomWrite {
		return store.AtomWrite{From: from, Row: store.AtomRow{Name: name, State: to}, Start: to == "RUNNING", Finish: to == "SUCCESS"}
	}
	// w: RUNNING, seq 1; a and b RUNNING, c SUCCESS.
	if err := d.Apply(ctx, &store.Batch{Run: "w", Epoch: 1, Seq: 0, FlowFrom: "PENDING", FlowTo: "RUNNING", Now: now,
		Atoms: []store.AtomWrite{aw("a", "PENDING", "RUNNING"), aw("b", "PENDING", "RUNNING"), aw("c", "PENDING", "SUCCESS")}}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	before := atomsByName(t, db, "w")
	runMismatch := func(found bool, seq int64, state string) func(t *testing.T, err error) {
		return func(t *testing.T, err error) {
			var m *store.RunMismatch
			if !errors.As(err, &m) || m.Found != found || (found && (m.Epoch != 1 || m.Seq != seq || m.State != state || m.Owner == "")) {
				t.Fatalf("err %v (%#v), want a *RunMismatch found=%v seq %d state %s", err, err, found, seq, state)
			}
		}
	}
	atomMismatch := func(atom string, found bool, state string) func(t *testing.T, err error) {
		return func(t *testing.T, err error) {
			var m *store.AtomMismatch
			if !errors.As(err, &m) || m.Atom != atom || m.Found != found || m.State != state {
				t.Fatalf("err %v (%#v), want an *AtomMismatch on %s found=%v state %q", err, err, atom, found, state)
			}
		}
	}
	cases := []struct {
		name  string
		b     store.Batch
		check func(t *testing.T, err error)
	}{
		{"epoch", store.Batch{Run: "w", Epoch: 2, Seq: 1, Atoms: []store.AtomWrite{aw("a", "RUNNING", "SUCCESS")}},
			runMismatch(true, 1, "RUNNING")},
		{"sequence", store.Batch{Run: "w", Epoch: 1, Seq: 0, Atoms: []store.AtomWrite{aw("a", "RUNNING", "SUCCESS")}},
			runMismatch(true, 1, "RUNNING")},
		{"flow state", store.Batch{Run: "w", Epoch: 1, Seq: 1, FlowFrom: "PENDING", FlowTo: "RUNNING",
			Atoms: []store.AtomWrite{aw("a", "RUNNING", "SUCCESS")}}, runMismatch(true, 1, "RUNNING")},
		{"run missing", store.Batch{Run: "nope", Epoch: 1, Seq: 1}, runMismatch(false, 0, "")},
		{"second atom in another state", store.Batch{Run: "w", Epoch: 1, Seq: 1,
			Atoms: []store.AtomWrite{aw("a", "RUNNING", "SUCCESS"), aw("c", "RUNNING", "SUCCESS"), aw("b", "RUNNING", "SUCCESS")}},
			atomMismatch("c", true, "SUCCESS")},
		{"last atom missing", store.Batch{Run: "w", Epoch: 1, Seq: 1,
			Atoms: []store.AtomWrite{aw("a", "RUNNING", "SUCCESS"), aw("d", "PENDING", "RUNNING"), aw("e", "RUNNING", "SUCCESS")}},
			atomMismatch("e", false, "")},
		{"an atom leaving PENDING that is not", store.Batch{Run: "w", Epoch: 1, Seq: 1,
			Atoms: []store.AtomWrite{aw("d", "PENDING", "RUNNING"), aw("b", "PENDING", "RUNNING"), aw("a", "RUNNING", "SUCCESS")}},
			atomMismatch("b", true, "RUNNING")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			b.Now = now.Add(time.Hour)
			tc.check(t, d.Apply(ctx, &b))
			info, err := db.Get(ctx, "w")
			if err != nil || info.State != flow.StateRunning {
				t.Fatalf("run w: %+v %v", info, err)
			}
			after := atomsByName(t, db, "w")
			if len(after) != len(before) {
				t.Fatalf("atoms %v, want %v: the failed batch wrote", after, before)
			}
			for n, a := range before {
				if b := after[n]; b.State != a.State || b.Attempts != a.Attempts || !b.Updated.Equal(a.Updated) {
					t.Fatalf("atom %s: %+v, was %+v: the failed batch wrote", n, b, a)
				}
			}
		})
	}
	// The sequence did not move: the right batch goes through.
	if err := d.Apply(ctx, &store.Batch{Run: "w", Epoch: 1, Seq: 1, FlowFrom: "RUNNING", FlowTo: "SUCCESS", Now: now,
		Atoms: []store.AtomWrite{aw("a", "RUNNING", "SUCCESS"), aw("b", "RUNNING", "SUCCESS"), aw("d", "PENDING", "RUNNING")}}); err != nil {
		t.Fatalf("Apply after the failures: %v", err)
	}
	got := atomsByName(t, db, "w")
	if got["a"].State != flow.StateSuccess || got["b"].State != flow.StateSuccess || got["d"].State != flow.StateRunning ||
		got["d"].Attempts != 1 || got["c"].State != flow.StateSuccess {
		t.Fatalf("atoms %+v", got)
	}
}
