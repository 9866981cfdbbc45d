package enginetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

// Case is a flow to interrupt at every save. Flow must build a new flow
// each time it is called; the flow's behaviour must depend only on its
// inputs, never on how many times something was called, so that a crashed
// run and its resume see the same behaviour.
type Case struct {
	Name    string
	Flow    func() *flow.Flow
	Options []engine.Option
}

// Outcome is what a finished run looks like from outside, in a form that
// survives a trip through JSON (failures by atom and message, retry
// results as printed).
type Outcome struct {
	State   flow.State
	Err     string // the FlowError's state, failures and revert failures
	Atoms   map[string]flow.State
	History map[string]string // per retry controller: each attempt's result and failed atoms
}

func (o Outcome) String() string {
	b, _ := json.MarshalIndent(o, "", "  ")
	return string(b)
}

// OutcomeOf describes the end of e's last run, whose error was err. A run
// that did not finish (ErrSuspended, an engine or storage failure) fails t.
func OutcomeOf(t testing.TB, e *engine.Engine, err error) Outcome {
	t.Helper()
	o := Outcome{State: e.State(), Atoms: map[string]flow.State{}, History: map[string]string{}}
	if err != nil {
		var fe *engine.FlowError
		if !errors.As(err, &fe) || fe.Err != nil {
			t.Fatalf("the run did not finish: %v", err)
		}
		o.Err = fmt.Sprintf("%s [%s] [%s]", fe.State, failures(fe.Failures), failures(fe.RevertFailures))
	}
	for _, n := range e.Compiled().Nodes() {
		if n.Kind == flow.NodeJoin {
			continue
		}
		s, _ := e.AtomState(n.Name)
		o.Atoms[n.Name] = s
		if n.Kind == flow.NodeRetry {
			h, _ := e.History(n.Name)
			var parts []string
			for _, a := range h.Attempts {
				var fs []string
				for _, f := range a.Failures {
					fs = append(fs, f.Atom)
				}
				sort.Strings(fs)
				// As JSON: a result read back from a durable store is raw
				// JSON, one made in this process a Go value.
				res, _ := json.Marshal(a.Result)
				parts = append(parts, fmt.Sprintf("%s%v", res, fs))
			}
			o.History[n.Name] = strings.Join(parts, " ")
		}
	}
	return o
}

func failures(fl []*flow.Failure) string {
	var s []string
	for _, f := range fl {
		s = append(s, f.Error())
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// run runs c once on s with ctx; hook, when set, sees the engine first.
func run(t testing.TB, ctx context.Context, c Case, s engine.Storage, hook func(*engine.Engine)) (*engine.Engine, error) {
	t.Helper()
	e, err := engine.New(c.Flow(), append(slices.Clone(c.Options), engine.WithStorage(s))...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if hook != nil {
		hook(e)
	}
	return e, e.Run(ctx)
}

// baseline runs c uninterrupted on a new storage.
type baseline struct {
	want           Outcome
	execs, reverts map[string]int
}

func runBaseline(t testing.TB, c Case, newStorage func() engine.Storage) baseline {
	t.Helper()
	cs, s := wrap(newStorage())
	e, err := run(t, context.Background(), c, s, nil)
	return baseline{OutcomeOf(t, e, err), cs.Executions(), cs.Reverts()}
}

// check asserts that the resumed run ended as the baseline did and that no
// atom executed or reverted more often.
func (b baseline) check(t testing.TB, what string, got Outcome, execs, reverts map[string]int, saves []string) {
	t.Helper()
	log := tail(saves)
	if got.String() != b.want.String() {
		t.Fatalf("%s: got %s\nwant %s\nsaves: %s", what, got, b.want, log)
	}
	for _, c := range []struct {
		verb      string
		base, got map[string]int
	}{{"executed", b.execs, execs}, {"reverted", b.reverts, reverts}} {
		for atom, n := range c.got {
			if n > c.base[atom] {
				t.Fatalf("%s: %s %s %d times, uninterrupted %d\nsaves: %s", what, atom, c.verb, n, c.base[atom], log)
			}
		}
	}
}

// tail returns the last saves, enough to see what went wrong.
func tail(saves []string) string {
	const most = 60
	if len(saves) > most {
		return "... " + strings.Join(saves[len(saves)-most:], " ")
	}
	return strings.Join(saves, " ")
}

func add(dst, src map[string]int) map[string]int {
	for k, v := range src {
		dst[k] += v
	}
	return dst
}

// CrashAtEverySave kills a run of c right after each of its saves in turn
// (on a new storage each time) and resumes it with a new engine on what
// was recorded: the resume must end as an uninterrupted run does, and no
// atom may execute or revert more often than there.
func CrashAtEverySave(t testing.TB, c Case, newStorage func() engine.Storage) {
	t.Helper()
	b := runBaseline(t, c, newStorage)
	for n := 1; ; n++ {
		cs, s := wrap(newStorage())
		cs.CrashAfter(n, false)
		_, _ = run(t, context.Background(), c, s, nil)
		if !cs.Crashed() {
			if n == 1 {
				t.Fatal("the run never saved")
			}
			return
		}
		rs, rstore := wrap(cs.Inner())
		e, err := run(t, context.Background(), c, rstore, nil)
		saves := append(append(cs.Saves(), "CRASH"), rs.Saves()...)
		b.check(t, fmt.Sprintf("crash after save %d", n), OutcomeOf(t, e, err),
			add(cs.Executions(), rs.Executions()), add(cs.Reverts(), rs.Reverts()), saves)
	}
}

// CrashEvery runs c on one storage, crashing every k atom saves and
// resuming with a new engine each time, until the flow finishes: each
// resume starts from what an interrupted resume left.
func CrashEvery(t testing.TB, c Case, k int, newStorage func() engine.Storage) {
	t.Helper()
	b := runBaseline(t, c, newStorage)
	inner := newStorage()
	execs, reverts := map[string]int{}, map[string]int{}
	var saves []string
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatalf("crash every %d atom saves: no progress\nsaves: %s", k, tail(saves))
		}
		cs, s := wrap(inner)
		cs.CrashAfter(k, true)
		e, err := run(t, context.Background(), c, s, nil)
		add(execs, cs.Executions())
		add(reverts, cs.Reverts())
		saves = append(saves, cs.Saves()...)
		if cs.Crashed() {
			saves = append(saves, "CRASH")
			continue
		}
		b.check(t, fmt.Sprintf("crash every %d atom saves", k), OutcomeOf(t, e, err), execs, reverts, saves)
		return
	}
}

// Interruption is how InterruptAtEverySave stops a run.
type Interruption int

const (
	// Suspend calls the engine's Suspend.
	Suspend Interruption = iota
	// Cancel cancels the context of the engine's Run.
	Cancel
)

func (i Interruption) String() string {
	if i == Cancel {
		return "cancel"
	}
	return "suspend"
}

// InterruptAtEverySave suspends the engine, or cancels its context, right
// after each of its saves in turn, then runs it again, on the same engine
// or (fresh) on a new one given the same storage: same checks as
// CrashAtEverySave.
func InterruptAtEverySave(t testing.TB, c Case, how Interruption, fresh bool, newStorage func() engine.Storage) {
	t.Helper()
	b := runBaseline(t, c, newStorage)
	for n := 1; ; n++ {
		cs, s := wrap(newStorage())
		ctx, cancel := context.WithCancel(context.Background())
		e, err := run(t, ctx, c, s, func(e *engine.Engine) {
			if how == Cancel {
				cs.OnSave(n, cancel)
			} else {
				cs.OnSave(n, e.Suspend)
			}
		})
		cancel()
		if !cs.Fired() {
			return
		}
		if errors.Is(err, engine.ErrSuspended) {
			if fresh {
				e, err = run(t, context.Background(), c, s, nil)
			} else {
				err = e.Run(context.Background())
			}
		}
		b.check(t, fmt.Sprintf("%s after save %d", how, n), OutcomeOf(t, e, err), cs.Executions(), cs.Reverts(), cs.Saves())
	}
}
