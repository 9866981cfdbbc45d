package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/engine/enginetest"
	"github.com/ostask/ostask/flow"
)

var modes = []struct {
	name string
	opt  engine.Option
}{{"serial", engine.Serial()}, {"parallel", engine.Parallel(8)}}

func run(t *testing.T, f *flow.Flow, opts ...engine.Option) (*engine.Engine, error) {
	t.Helper()
	e, err := engine.New(f, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e, e.Run(context.Background())
}

func mustState(t *testing.T, e *engine.Engine, atom string, want flow.State) {
	t.Helper()
	got, err := e.AtomState(atom)
	if err != nil || got != want {
		t.Fatalf("atom %s: %v %v, want %v", atom, got, err, want)
	}
}

// TaskFlow: a linear flow reverts the failed task first, then the others in
// reverse order.
func TestLinearRevertOrder(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			j := &journal{}
			f := flow.Linear("l", rec(j, "a", false), rec(j, "b", false), rec(j, "c", false), rec(j, "d", true), rec(j, "e", false))
			e, err := run(t, f, m.opt)
			var fe *engine.FlowError
			if !errors.As(err, &fe) || fe.State != flow.StateReverted || !errors.Is(err, errBoom) {
				t.Fatalf("err = %v", err)
			}
			if len(fe.Failures) != 1 || fe.Failures[0].Atom != "d" {
				t.Fatalf("failures %v", fe.Failures)
			}
			equal(t, j.get(), []string{"x:a", "x:b", "x:c", "x:d", "r:d", "r:c", "r:b", "r:a"})
			if e.State() != flow.StateReverted {
				t.Fatal(e.State())
			}
			mustState(t, e, "a", flow.StateReverted)
			mustState(t, e, "e", flow.StatePending)
		})
	}
}

// barrier releases its callers once n of them are inside.
type barrier struct {
	mu   sync.Mutex
	n    int
	open chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, open: make(chan struct{})} }

func (b *barrier) wait(t *testing.T) {
	b.mu.Lock()
	if b.n--; b.n == 0 {
		close(b.open)
	}
	b.mu.Unlock()
	select {
	case <-b.open:
	case <-time.After(10 * time.Second): // a deadlock guard, not a timing assertion
		t.Error("barrier: the atoms did not run concurrently")
	}
}

// TaskFlow: the members of an unordered flow run, and revert, in parallel.
func TestParallelUnorderedRevert(t *testing.T) {
	j := &journal{}
	exec, rev := newBarrier(3), newBarrier(3)
	var items []flow.Item
	for _, n := range []string{"a", "b", "c"} {
		items = append(items, flow.TaskFunc(n, func(ctx context.Context, in flow.Inputs) (int, error) {
			exec.wait(t)
			j.add("x:" + n)
			return 0, nil
		}).OnRevert(func(ctx context.Context, in flow.Inputs, _ int, _ flow.Outcome) error {
			rev.wait(t)
			j.add("r:" + n)
			return nil
		}))
	}
	f := flow.Linear("l", flow.Unordered("u", items...), rec(j, "fail", true))
	_, err := run(t, f, engine.Parallel(8))
	if !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	got := j.get()
	slices.Sort(got[:3])
	slices.Sort(got[5:])
	equal(t, got, []string{"x:a", "x:b", "x:c", "x:fail", "r:fail", "r:a", "r:b", "r:c"})
}

// TaskFlow: a graph flow orders its items by requires/provides, whatever
// the order they were added in.
func TestGraphOrder(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			j := &journal{}
			f := flow.Graph("g",
				rec(j, "c", false, flow.Requires("y")),
				rec(j, "b", false, flow.Requires("x"), flow.Provides("y")),
				rec(j, "a", false, flow.Provides("x")),
			)
			e, err := run(t, f, m.opt)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, j.get(), []string{"x:a", "x:b", "x:c"})
			if v, _ := engine.Fetch[string](e, "y"); v != "b" {
				t.Fatalf("y = %q", v)
			}
		})
	}
}

// flaky fails until its nth call.
func flaky(j *journal, name string, n int, opts ...flow.Option) flow.Task {
	var mu sync.Mutex
	calls := 0
	return flow.TaskFunc(name, func(ctx context.Context, in flow.Inputs) (int, error) {
		mu.Lock()
		calls++
		c := calls
		mu.Unlock()
		j.add(fmt.Sprintf("x:%s#%d", name, c))
		if c < n {
			return 0, errBoom
		}
		return c, nil
	}, opts...).OnRevert(func(ctx context.Context, in flow.Inputs, _ int, o flow.Outcome) error {
		j.add("r:" + name)
		return nil
	})
}

// TaskFlow: Times(3) reverts the subflow before each new attempt; the third
// attempt succeeds and the history holds three attempts.
func TestRetryTimesThirdAttempt(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			j := &journal{}
			f := flow.Linear("l",
				rec(j, "before", false),
				flow.Linear("sub", rec(j, "s1", false), flaky(j, "s2", 3)).
					WithRetry(flow.Times("r", 3, flow.ProvidesAs("attempt"))),
				rec(j, "after", false, flow.Requires("attempt")),
			)
			e, err := run(t, f, m.opt)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, j.get(), []string{"x:before", "x:s1", "x:s2#1", "r:s2", "r:s1", "x:s1", "x:s2#2", "r:s2", "r:s1", "x:s1", "x:s2#3", "x:after"})
			h, err := e.History("r")
			if err != nil || h.Len() != 3 {
				t.Fatalf("history %+v %v", h, err)
			}
			if len(h.Attempts[0].Failures) != 1 || h.Attempts[0].Failures[0].Atom != "s2" || len(h.Attempts[2].Failures) != 0 {
				t.Fatalf("history %+v", h)
			}
			if a, _ := engine.Fetch[int](e, "attempt"); a != 3 {
				t.Fatalf("attempt = %d", a)
			}
			mustState(t, e, "r", flow.StateSuccess)
		})
	}
}

// Giving up reverts the subflow, then (no outer controller) everything.
func TestRetryGivesUp(t *testing.T) {
	j := &journal{}
	f := flow.Linear("l",
		rec(j, "before", false),
		flow.Linear("sub", flaky(j, "s", 99)).WithRetry(flow.Times("r", 2)),
	)
	e, err := run(t, f)
	if !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	equal(t, j.get(), []string{"x:before", "x:s#1", "r:s", "x:s#2", "r:s", "r:before"})
	mustState(t, e, "r", flow.StateReverted)
	mustState(t, e, "before", flow.StateReverted)
}

// An inner controller's REVERT defers to the outer one, which retries the
// whole outer subflow; REVERT_ALL skips it.
func TestRetryNestedPolicies(t *testing.T) {
	for _, all := range []bool{false, true} {
		j := &journal{}
		var opts []flow.RetryOption
		if all {
			opts = append(opts, flow.RevertAllOnGiveUp())
		}
		f := flow.Linear("outer",
			rec(j, "o1", false),
			flow.Linear("inner", flaky(j, "i", 4)).WithRetry(flow.Times("ri", 2, opts...)),
		).WithRetry(flow.Times("ro", 3))
		e, err := run(t, f)
		if all {
			if !errors.Is(err, errBoom) {
				t.Fatal(err)
			}
			equal(t, j.get(), []string{"x:o1", "x:i#1", "r:i", "x:i#2", "r:i", "r:o1"})
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		// ri: 2 tries, gives up; ro retries; ri 2 more tries: 4th call succeeds
		equal(t, j.get(), []string{"x:o1", "x:i#1", "r:i", "x:i#2", "r:i", "r:o1", "x:o1", "x:i#3", "r:i", "x:i#4"})
		mustState(t, e, "ri", flow.StateSuccess)
		if h, _ := e.History("ro"); h.Len() != 2 {
			t.Fatalf("ro history %+v", h)
		}
	}
}

// TaskFlow: ForEach provides the values in turn until an attempt succeeds.
func TestRetryForEach(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			j := &journal{}
			try := flow.TaskFunc("try", func(ctx context.Context, in flow.Inputs) (string, error) {
				h, err := flow.Get[string](in, "host")
				if err != nil {
					return "", err
				}
				j.add("x:" + h)
				if h != "c" {
					return "", errBoom
				}
				return "ok@" + h, nil
			}, flow.Requires("host"), flow.Provides("res"))
			f := flow.Linear("l", try).WithRetry(flow.ForEach("hosts", []string{"a", "b", "c", "d"}, flow.ProvidesAs("host")))
			e, err := run(t, f, m.opt)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, j.get(), []string{"x:a", "x:b", "x:c"})
			if v, _ := engine.Fetch[string](e, "res"); v != "ok@c" {
				t.Fatal(v)
			}
		})
	}
}

// ParameterizedForEach reads its values from the store; running out of
// values reverts.
func TestRetryParameterizedForEach(t *testing.T) {
	j := &journal{}
	try := flow.TaskFunc("try", func(ctx context.Context, in flow.Inputs) (int, error) {
		v, _ := flow.Get[int](in, "v")
		j.add(fmt.Sprint("x:", v))
		return 0, errBoom
	}, flow.Requires("v"))
	f := flow.Linear("l", try).WithRetry(flow.ParameterizedForEach("p", flow.ValuesFrom("candidates"), flow.ProvidesAs("v")))
	e, err := run(t, f, engine.WithStore(map[string]any{"candidates": []int{1, 2, 3}}))
	if !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	equal(t, j.get(), []string{"x:1", "x:2", "x:3"})
	if h, _ := e.History("p"); h.Len() != 3 {
		t.Fatal(h)
	}
}

// fakeClock fires timers at once and remembers the delays asked for.
type fakeClock struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (c *fakeClock) Now() time.Time { return time.Unix(0, 0) }
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.delays = append(c.delays, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Unix(0, 0)
	return ch
}

func TestRetryBackoff(t *testing.T) {
	j := &journal{}
	clk := &fakeClock{}
	f := flow.Linear("l", flaky(j, "s", 4)).WithRetry(flow.Times("r", 5, flow.Backoff(time.Second, 3*time.Second)))
	if _, err := run(t, f, engine.WithClock(clk)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(clk.delays, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}) {
		t.Fatal(clk.delays)
	}
}

// TaskFlow: the revert of a failed task receives its failure, and every
// revert, of a FuncTask as of a hand-written Task, receives the failures
// that made the flow revert.
func TestRevertGetsFailures(t *testing.T) {
	var failed, before flow.Outcome
	var failedResult, beforeResult int
	task := flow.TaskFunc("t", func(ctx context.Context, in flow.Inputs) (int, error) {
		return 0, fmt.Errorf("create: %w", errBoom)
	}).OnRevert(func(ctx context.Context, in flow.Inputs, r int, o flow.Outcome) error {
		failedResult, failed = r, o
		return nil
	})
	fn := flow.TaskFunc("fn", func(ctx context.Context, in flow.Inputs) (int, error) { return 7, nil }).
		OnRevert(func(ctx context.Context, in flow.Inputs, r int, o flow.Outcome) error {
			beforeResult, before = r, o
			return nil
		})
	var otherOutcome flow.Outcome
	other := flow.Bind(outcomeTask{name: "o", got: &otherOutcome})
	_, err := run(t, flow.Linear("l", other, fn, task))
	got := failed.Failure
	if !errors.Is(err, errBoom) || got == nil || !errors.Is(got, errBoom) || got.Atom != "t" || failedResult != 0 {
		t.Fatalf("err %v, failure %v", err, got)
	}
	for name, o := range map[string]flow.Outcome{"task": otherOutcome, "functask": before, "failed functask": failed} {
		if len(o.FlowFailures) != 1 || o.FlowFailures[0] != got || o.Interrupted {
			t.Fatalf("%s: outcome %+v", name, o)
		}
	}
	if otherOutcome.Failed() || otherOutcome.Result != "o-result" || before.Failed() || before.Result != 7 || beforeResult != 7 {
		t.Fatalf("outcomes %+v %+v", otherOutcome, before)
	}
}

// outcomeTask is a hand-written Task that remembers its revert's outcome.
type outcomeTask struct {
	name string
	got  *flow.Outcome
}

func (o outcomeTask) Spec() flow.Spec { return flow.Spec{Name: o.name} }
func (o outcomeTask) Execute(context.Context, flow.Inputs) (any, error) {
	return o.name + "-result", nil
}
func (o outcomeTask) Revert(_ context.Context, _ flow.Inputs, out flow.Outcome) error {
	*o.got = out
	return nil
}

// TaskFlow: rebind takes an input from another name; inject gives an atom
// its own constant, beating the store.
func TestRebindInject(t *testing.T) {
	var seen []string
	show := func(name string, opts ...flow.Option) flow.Task {
		return flow.TaskFunc(name, func(ctx context.Context, in flow.Inputs) (string, error) {
			x, err := flow.Get[string](in, "x")
			if err != nil {
				return "", err
			}
			seen = append(seen, name+"="+x)
			return x, nil
		}, append([]flow.Option{flow.Requires("x")}, opts...)...)
	}
	f := flow.Linear("l",
		show("plain"),
		show("rebound", flow.Rebind("x", "y")),
		show("injected", flow.Inject("x", "const")),
		flow.Bind(show("bound"), flow.Rename("bound2"), flow.Rebind("x", "y")),
	)
	_, err := run(t, f, engine.WithStore(map[string]any{"x": "from-x", "y": "from-y"}))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, seen, []string{"plain=from-x", "rebound=from-y", "injected=const", "bound=from-y"})
}

// TaskFlow: a task providing several names binds them from its result.
func TestNamedOutputs(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			pair := flow.TaskFunc("pair", func(ctx context.Context, in flow.Inputs) (flow.Values, error) {
				return flow.Values{"ip": "10.0.0.1", "port": 22}, nil
			}, flow.Provides("ip", "port"))
			tuple := flow.TaskFunc("tuple", func(ctx context.Context, in flow.Inputs) ([]any, error) {
				return []any{"a", "b"}, nil
			}, flow.Provides("first", "second"))
			var got string
			use := flow.TaskFunc("use", func(ctx context.Context, in flow.Inputs) (any, error) {
				got = fmt.Sprint(in.Map())
				return nil, nil
			}, flow.Requires("ip", "port", "second"))
			e, err := run(t, flow.Graph("g", use, pair, tuple), m.opt)
			if err != nil {
				t.Fatal(err)
			}
			if got != "map[ip:10.0.0.1 port:22 second:b]" {
				t.Fatal(got)
			}
			if p, _ := engine.Fetch[int](e, "port"); p != 22 {
				t.Fatal(p)
			}
		})
	}
}

// A missing named output fails the consumer, not the engine.
func TestMissingOutputFailsConsumer(t *testing.T) {
	j := &journal{}
	pair := flow.TaskFunc("pair", func(ctx context.Context, in flow.Inputs) (flow.Values, error) {
		return flow.Values{"ip": "x"}, nil
	}, flow.Provides("ip", "port"))
	_, err := run(t, flow.Linear("l", pair, rec(j, "use", false, flow.Requires("port"))))
	if !errors.Is(err, flow.ErrNotFound) {
		t.Fatal(err)
	}
	equal(t, j.get(), []string{"r:use"})
}

// A panicking task fails with its stack; the flow reverts.
func TestTaskPanics(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			j := &journal{}
			bad := flow.TaskFunc("bad", func(ctx context.Context, in flow.Inputs) (int, error) {
				var m map[string]int
				m["x"] = 1 // panics
				return 0, nil
			})
			e, err := run(t, flow.Linear("l", rec(j, "a", false), bad), m.opt)
			var pe *flow.PanicError
			if !errors.As(err, &pe) || !strings.Contains(string(pe.Stack), "engine_test.TestTaskPanics") {
				t.Fatalf("err %v", err)
			}
			var fe *engine.FlowError
			errors.As(err, &fe)
			if fe.Failures[0].Stack == "" {
				t.Fatal("no stack in the failure")
			}
			equal(t, j.get(), []string{"x:a", "r:a"})
			mustState(t, e, "bad", flow.StateReverted)
		})
	}
}

// A failing revert: REVERT_FAILURE, the original failure first, the revert's
// error after, and the other reverts still done.
func TestRevertFailure(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			j := &journal{}
			errUndo := errors.New("cannot undo")
			badUndo := flow.TaskFunc("b", func(ctx context.Context, in flow.Inputs) (int, error) {
				return 1, nil
			}).OnRevert(func(context.Context, flow.Inputs, int, flow.Outcome) error { return errUndo })
			e, err := run(t, flow.Linear("l", rec(j, "a", false), badUndo, rec(j, "c", true)), m.opt)
			var fe *engine.FlowError
			if !errors.As(err, &fe) || fe.State != flow.StateRevertFailure {
				t.Fatalf("err %v", err)
			}
			if !errors.Is(err, errBoom) || !errors.Is(err, errUndo) {
				t.Fatalf("err %v hides an error", err)
			}
			if fe.Failures[0].Atom != "c" || fe.RevertFailures[0].Atom != "b" {
				t.Fatalf("%+v", fe)
			}
			equal(t, j.get(), []string{"x:a", "x:c", "r:c", "r:a"})
			if e.State() != flow.StateRevertFailure {
				t.Fatal(e.State())
			}
			mustState(t, e, "b", flow.StateRevertFailure)
		})
	}
}

// Per-task timeouts reach Execute through its context.
func TestTaskTimeout(t *testing.T) {
	slow := flow.TaskFunc("slow", func(ctx context.Context, in flow.Inputs) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}, flow.Timeout(time.Millisecond))
	_, err := run(t, flow.Linear("l", slow))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}

// CancelOnFailure cancels running siblings instead of waiting for them.
func TestCancelOnFailure(t *testing.T) {
	started := make(chan struct{})
	waiter := flow.TaskFunc("waiter", func(ctx context.Context, in flow.Inputs) (int, error) {
		close(started)
		<-ctx.Done()
		return 0, ctx.Err()
	})
	failer := flow.TaskFunc("failer", func(ctx context.Context, in flow.Inputs) (int, error) {
		<-started
		return 0, errBoom
	})
	_, err := run(t, flow.Unordered("u", waiter, failer), engine.Parallel(2), engine.CancelOnFailure())
	var fe *engine.FlowError
	if !errors.As(err, &fe) || fe.State != flow.StateReverted || !errors.Is(err, errBoom) || !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// Suspend stops after the running atom; Run again resumes without re-running
// what succeeded.
func TestSuspendResume(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			j := &journal{}
			var e *engine.Engine
			pause := flow.TaskFunc("pause", func(ctx context.Context, in flow.Inputs) (int, error) {
				j.add("x:pause")
				e.Suspend()
				return 7, nil
			}, flow.Provides("n"))
			f := flow.Linear("l", rec(j, "a", false), pause, rec(j, "b", false, flow.Requires("n")))
			var err error
			e, err = engine.New(f, m.opt)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Run(context.Background()); !errors.Is(err, engine.ErrSuspended) {
				t.Fatal(err)
			}
			if e.State() != flow.StateSuspended {
				t.Fatal(e.State())
			}
			mustState(t, e, "b", flow.StatePending)
			// TaskFlow: a clean resume goes SUSPENDED -> RUNNING; RESUMING
			// is for a crash recovery.
			ev := &events{}
			e.AddListener(ev)
			if err := e.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			equal(t, j.get(), []string{"x:a", "x:pause", "x:b"})
			if e.State() != flow.StateSuccess {
				t.Fatal(e.State())
			}
			equal(t, ev.get(), []string{":SUSPENDED>RUNNING", "b:PENDING>RUNNING", "b:RUNNING>SUCCESS", ":RUNNING>SUCCESS"})
		})
	}
}

// Run on a finished flow records and announces nothing and runs nothing:
// it returns nil for a SUCCESS flow, and the same *FlowError for a
// reverted one. (TaskFlow announces RUNNING then SUCCESS again, and resets
// and re-runs a REVERTED flow.)
func TestRunFinished(t *testing.T) {
	errUndo := errors.New("cannot undo")
	tests := []struct {
		name  string
		items func(j *journal) []flow.Item
		state flow.State
	}{
		{"success", func(j *journal) []flow.Item { return []flow.Item{rec(j, "a", false)} }, flow.StateSuccess},
		{"reverted", func(j *journal) []flow.Item { return []flow.Item{rec(j, "a", false), rec(j, "b", true)} }, flow.StateReverted},
		{"revert failure", func(j *journal) []flow.Item {
			bad := flow.TaskFunc("a", func(context.Context, flow.Inputs) (int, error) { return 0, nil }).
				OnRevert(func(context.Context, flow.Inputs, int, flow.Outcome) error { return errUndo })
			return []flow.Item{bad, rec(j, "b", true)}
		}, flow.StateRevertFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &journal{}
			mem := engine.NewMemory()
			cs := enginetest.NewCrashStore(mem)
			e, err := engine.New(flow.Linear("l", tt.items(j)...), engine.WithStorage(cs))
			if err != nil {
				t.Fatal(err)
			}
			first := e.Run(context.Background())
			saves, done := cs.Saves(), j.get()
			ev := &events{}
			e.AddListener(ev)
			for _, again := range []*engine.Engine{e, func() *engine.Engine {
				fresh, _ := engine.New(flow.Linear("l", tt.items(j)...), engine.WithStorage(cs))
				fresh.AddListener(ev)
				return fresh
			}()} {
				err := again.Run(context.Background())
				if fmt.Sprint(err) != fmt.Sprint(first) || again.State() != tt.state {
					t.Fatalf("again: %v, %v; first %v", err, again.State(), first)
				}
				var fe *engine.FlowError
				if tt.state != flow.StateSuccess && (!errors.As(err, &fe) || fe.State != tt.state || !errors.Is(err, errBoom)) {
					t.Fatal(err)
				}
			}
			equal(t, cs.Saves(), saves)
			equal(t, j.get(), done)
			equal(t, ev.get(), nil)
		})
	}
}

// In a linear flow where every task requires and provides the same name,
// each task gets the output of the one before it, and the store's value
// only the first. (TaskFlow gives every task the store's value.)
func TestLinearChainsValues(t *testing.T) {
	var seen []int
	step := func(name string) flow.Task {
		return flow.TaskFunc(name, func(_ context.Context, in flow.Inputs) (int, error) {
			v, err := flow.Get[int](in, "value")
			seen = append(seen, v)
			return v + 1, err
		}, flow.Requires("value"), flow.Provides("value"))
	}
	e, err := run(t, flow.Linear("l", step("t1"), step("t2"), step("t3")), engine.WithStore(map[string]any{"value": 0}))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seen) != "[0 1 2]" {
		t.Fatal(seen)
	}
	if v, _ := engine.Fetch[int](e, "value"); v != 3 {
		t.Fatal(v)
	}
}

// Cancelling the context suspends; the interrupted atom runs again on resume.
func TestCancelSuspends(t *testing.T) {
	j := &journal{}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	block := flow.TaskFunc("block", func(c context.Context, in flow.Inputs) (int, error) {
		calls++
		j.add("x:block")
		if calls == 1 {
			cancel()
			<-c.Done()
			return 0, c.Err()
		}
		return 1, nil
	})
	mem := engine.NewMemory()
	f := flow.Linear("l", rec(j, "a", false), block, rec(j, "b", false))
	e, _ := engine.New(f, engine.WithStorage(mem))
	if err := e.Run(ctx); !errors.Is(err, engine.ErrSuspended) || !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	snap, _ := mem.Load(context.Background())
	if snap.Flow != flow.StateSuspended || snap.Atoms["block"].State != flow.StateRunning {
		t.Fatalf("%+v", snap)
	}
	if err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	equal(t, j.get(), []string{"x:a", "x:block", "x:block", "x:b"})
}

// TaskFlow: on resume, SUCCESS atoms are not re-run and their saved result
// is used; RUNNING atoms run again (a crashed worker's flow).
func TestResumeFromStorage(t *testing.T) {
	ctx := context.Background()
	mem := engine.NewMemory()
	_ = mem.SaveFlow(ctx, flow.StatePending, flow.StateRunning)
	_ = mem.SaveAtom(ctx, flow.StatePending, engine.AtomRecord{Name: "a", State: flow.StateSuccess, Result: 17})
	_ = mem.SaveAtom(ctx, flow.StatePending, engine.AtomRecord{Name: "b", State: flow.StateRunning})
	j := &journal{}
	var got int
	a := rec(j, "a", false, flow.Provides("x"))
	b := flow.TaskFunc("b", func(ctx context.Context, in flow.Inputs) (int, error) {
		got, _ = flow.Get[int](in, "x")
		j.add("x:b")
		return got + 1, nil
	}, flow.Requires("x"))
	var events []string
	l := engine.ListenerFunc(func(ev engine.Event) {
		events = append(events, fmt.Sprintf("%s:%s>%s", ev.Atom, ev.From, ev.To))
	})
	e, err := engine.New(flow.Linear("l", a, b, rec(j, "c", false)), engine.WithStorage(mem), engine.WithListener(l))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	equal(t, j.get(), []string{"x:b", "x:c"})
	if got != 17 {
		t.Fatal(got)
	}
	equal(t, events, []string{":RUNNING>RESUMING", ":RESUMING>RUNNING", "b:RUNNING>SUCCESS",
		"c:PENDING>RUNNING", "c:RUNNING>SUCCESS", ":RUNNING>SUCCESS"})
}

// A run that crashed while reverting resumes the revert; REVERTING atoms
// revert again.
func TestResumeReverting(t *testing.T) {
	ctx := context.Background()
	mem := engine.NewMemory()
	_ = mem.SaveFlow(ctx, flow.StatePending, flow.StateRunning)
	_ = mem.SaveFlow(ctx, flow.StateRunning, flow.StateReverting)
	_ = mem.SaveAtom(ctx, flow.StatePending, engine.AtomRecord{Name: "a", State: flow.StateSuccess, Result: "a"})
	_ = mem.SaveAtom(ctx, flow.StatePending, engine.AtomRecord{Name: "b", State: flow.StateReverting, Result: "b"})
	f0 := flow.NewFailure("c", errBoom)
	_ = mem.SaveAtom(ctx, flow.StatePending, engine.AtomRecord{Name: "c", State: flow.StateReverted, Failure: f0})
	j := &journal{}
	f := flow.Linear("l", rec(j, "a", false), rec(j, "b", false), rec(j, "c", true))
	e, _ := engine.New(f, engine.WithStorage(mem))
	err := e.Run(ctx)
	if !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	equal(t, j.get(), []string{"r:b", "r:a"})
	if e.State() != flow.StateReverted {
		t.Fatal(e.State())
	}
}

// Every transition reaches the storage before the engine acts on it: the
// storage sees RUNNING before Execute starts and SUCCESS before the next
// atom starts.
func TestRecordedBeforeActing(t *testing.T) {
	mem := engine.NewMemory()
	ctx := context.Background()
	check := func(name, prev string) flow.Task {
		return flow.TaskFunc(name, func(context.Context, flow.Inputs) (int, error) {
			snap, _ := mem.Load(ctx)
			if snap.Atoms[name].State != flow.StateRunning {
				t.Errorf("%s: storage says %v while running", name, snap.Atoms[name].State)
			}
			if prev != "" && snap.Atoms[prev].State != flow.StateSuccess {
				t.Errorf("%s: %s is %v", name, prev, snap.Atoms[prev].State)
			}
			return 0, nil
		})
	}
	if _, err := run(t, flow.Linear("l", check("a", ""), check("b", "a")), engine.WithStorage(mem)); err != nil {
		t.Fatal(err)
	}
}

// A Storage that refuses a write stops the engine with FAILURE.
type failingStorage struct {
	*engine.Memory
	after int
}

func (s *failingStorage) SaveAtom(ctx context.Context, from flow.State, rec engine.AtomRecord) error {
	if s.after--; s.after < 0 {
		return errors.New("disk full")
	}
	return s.Memory.SaveAtom(ctx, from, rec)
}

func TestStorageFailure(t *testing.T) {
	j := &journal{}
	st := &failingStorage{Memory: engine.NewMemory(), after: 2}
	e, err := run(t, flow.Linear("l", rec(j, "a", false), rec(j, "b", false)), engine.WithStorage(st))
	var fe *engine.FlowError
	if !errors.As(err, &fe) || fe.State != flow.StateFailure || !strings.Contains(err.Error(), "disk full") {
		t.Fatal(err)
	}
	if e.State() != flow.StateFailure {
		t.Fatal(e.State())
	}
	equal(t, j.get(), []string{"x:a"})
}

func TestListeners(t *testing.T) {
	var events []string
	l := engine.ListenerFunc(func(ev engine.Event) {
		s := fmt.Sprintf("%s:%s>%s", ev.Atom, ev.From, ev.To)
		if ev.Result != nil {
			s += fmt.Sprintf("=%v", ev.Result)
		}
		if ev.Failure != nil {
			s += "!" + ev.Failure.Message
		}
		events = append(events, s)
	})
	panicky := engine.ListenerFunc(func(engine.Event) { panic("listener bug") })
	tl := engine.NewTimingListener()
	j := &journal{}
	_, err := run(t, flow.Linear("l", rec(j, "a", false), rec(j, "b", true)), engine.WithListener(panicky, l, tl))
	if !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	equal(t, events, []string{":PENDING>RUNNING", "a:PENDING>RUNNING", "a:RUNNING>SUCCESS=a", "b:PENDING>RUNNING",
		"b:RUNNING>FAILURE!boom", ":RUNNING>REVERTING", "b:FAILURE>REVERTING", "b:REVERTING>REVERTED",
		"a:SUCCESS>REVERTING", "a:REVERTING>REVERTED", ":REVERTING>REVERTED"})
	if len(tl.Atoms()) != 2 {
		t.Fatal(tl.Atoms())
	}
}

func TestRunTwiceConcurrently(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	task := flow.TaskFunc("t", func(context.Context, flow.Inputs) (int, error) {
		close(entered)
		<-release
		return 0, nil
	})
	e, _ := engine.New(flow.Linear("l", task))
	done := make(chan error)
	go func() { done <- e.Run(context.Background()) }()
	<-entered
	if err := e.Run(context.Background()); !errors.Is(err, engine.ErrRunning) {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestMissingStoreValue(t *testing.T) {
	j := &journal{}
	_, err := engine.New(flow.Linear("l", rec(j, "a", false, flow.Requires("x"))))
	if !errors.Is(err, flow.ErrMissing) {
		t.Fatal(err)
	}
	c, _ := flow.Compile(flow.Linear("l", rec(j, "a", false, flow.Requires("x"))), flow.WithInputs("x"))
	if _, err := engine.NewCompiled(c); !errors.Is(err, flow.ErrMissing) {
		t.Fatal(err)
	}
	if _, err := engine.NewCompiled(c, engine.WithStore(map[string]any{"x": 1})); err != nil {
		t.Fatal(err)
	}
}

// A result split over several names may be any slice or array of the
// right length, or any map with string keys; a result that does not fit
// fails its own atom, naming it, before anything consumes it.
func TestTypedOutputs(t *testing.T) {
	tests := []struct {
		name   string
		result any
		fails  bool
	}{
		{"[]int", []int{1, 2}, false},
		{"[2]int", [2]int{1, 2}, false},
		{"map[string]int", map[string]int{"first": 1, "second": 2}, false},
		{"short slice", []int{1}, true},
		{"long slice", []int{1, 2, 3}, true},
		{"scalar", 12, true},
	}
	for _, m := range modes {
		for _, tt := range tests {
			t.Run(m.name+"/"+tt.name, func(t *testing.T) {
				j := &journal{}
				pair := flow.TaskFunc("pair", func(context.Context, flow.Inputs) (any, error) { return tt.result, nil },
					flow.Provides("first", "second"))
				var got []any
				use := flow.TaskFunc("use", func(_ context.Context, in flow.Inputs) (int, error) {
					j.add("x:use")
					a, _ := in.Lookup("first")
					b, _ := in.Lookup("second")
					got = []any{a, b}
					return 0, nil
				}, flow.Requires("first", "second"))
				e, err := run(t, flow.Linear("l", pair, use), m.opt)
				if !tt.fails {
					if err != nil || fmt.Sprint(got) != "[1 2]" {
						t.Fatal(err, got)
					}
					if v, _ := engine.Fetch[int](e, "second"); v != 2 {
						t.Fatal(v)
					}
					return
				}
				var oe *flow.OutputError
				var fe *engine.FlowError
				if !errors.As(err, &oe) || oe.Atom != "pair" || !errors.Is(err, flow.ErrOutputs) || !errors.As(err, &fe) || fe.Failures[0].Atom != "pair" {
					t.Fatal(err)
				}
				if len(j.get()) != 0 {
					t.Fatal("the consumer ran")
				}
			})
		}
	}
}
