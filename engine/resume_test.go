package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/engine/enginetest"
	"github.com/ostask/ostask/flow"
)

// A flow that was reverting resumes its revert whatever state the flow was
// recorded in: RUNNING or REVERTING (a crash before or after the flow's
// REVERTING was recorded), SUSPENDED (a suspension during the revert),
// SUSPENDING or RESUMING (a crash during either), FAILURE (an engine
// failure). Only a reverts; nothing executes; the failure is c's.
func TestResumeContinuesRevert(t *testing.T) {
	flowStates := [][]flow.State{
		{flow.StateRunning},
		{flow.StateRunning, flow.StateReverting},
		{flow.StateRunning, flow.StateReverting, flow.StateSuspending, flow.StateSuspended},
		{flow.StateRunning, flow.StateReverting, flow.StateSuspending},
		{flow.StateRunning, flow.StateResuming},
		{flow.StateRunning, flow.StateFailure},
	}
	for _, path := range flowStates {
		last := path[len(path)-1]
		t.Run(last.String(), func(t *testing.T) {
			ctx := context.Background()
			mem := engine.NewMemory()
			from := flow.StatePending
			for _, to := range path {
				if err := mem.SaveFlow(ctx, from, to); err != nil {
					t.Fatal(err)
				}
				from = to
			}
			cf := flow.NewFailure("c", errBoom)
			for _, rec := range []engine.AtomRecord{
				{Name: "a", State: flow.StateSuccess, Result: "a"},
				{Name: "b", State: flow.StateReverted, Result: "b"},
				{Name: "c", State: flow.StateReverted, Failure: cf},
			} {
				if err := mem.SaveAtom(ctx, flow.StatePending, rec); err != nil {
					t.Fatal(err)
				}
			}
			j := &journal{}
			var events []string
			l := engine.ListenerFunc(func(ev engine.Event) {
				if ev.Atom == "" {
					events = append(events, fmt.Sprintf("%s>%s", ev.From, ev.To))
				}
			})
			// c would succeed now: a resume that rolled forward would end SUCCESS.
			f := flow.Linear("l", rec(j, "a", false), rec(j, "b", false), rec(j, "c", false), rec(j, "d", false))
			e, err := engine.New(f, engine.WithStorage(mem), engine.WithListener(l))
			if err != nil {
				t.Fatal(err)
			}
			err = e.Run(ctx)
			var fe *engine.FlowError
			if !errors.As(err, &fe) || fe.State != flow.StateReverted || len(fe.Failures) != 1 || fe.Failures[0].Atom != "c" {
				t.Fatalf("err = %v", err)
			}
			equal(t, j.get(), []string{"r:a"})
			// A clean resume goes back to work; a crash recovery says RESUMING.
			want := []string{last.String() + ">RESUMING", "RESUMING>REVERTING", "REVERTING>REVERTED"}
			switch last {
			case flow.StateSuspended:
				want = want[1:]
				want[0] = "SUSPENDED>REVERTING"
			case flow.StateResuming:
				want = want[1:]
			}
			equal(t, events, want)
			for _, a := range []string{"a", "b", "c"} {
				mustState(t, e, a, flow.StateReverted)
			}
			mustState(t, e, "d", flow.StatePending)
		})
	}
}

// The case: linear[a, b, c] where c fails (transiently: it would
// succeed if run again), interrupted when b reaches REVERTED. Whatever the
// interruption, the resume reverts a only and ends REVERTED with c's
// failure.
func TestResumeNeverRollsForward(t *testing.T) {
	for _, how := range []string{"suspend", "cancel", "crash"} {
		t.Run(how, func(t *testing.T) {
			j := &journal{}
			runs := 0
			c := flow.TaskFunc("c", func(ctx context.Context, in flow.Inputs) (string, error) {
				j.add("x:c")
				if runs == 1 {
					return "", errBoom
				}
				return "c", nil
			}).OnRevert(func(context.Context, flow.Inputs, string, flow.Outcome) error {
				j.add("r:c")
				return nil
			})
			f := flow.Linear("l", rec(j, "a", false), rec(j, "b", false), c)
			mem := engine.NewMemory()
			cs := enginetest.NewCrashStore(mem)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var e *engine.Engine
			l := engine.ListenerFunc(func(ev engine.Event) {
				if ev.Atom != "b" || ev.To != flow.StateReverted {
					return
				}
				switch how {
				case "suspend":
					e.Suspend()
				case "cancel":
					cancel()
				case "crash":
					cs.Crash()
				}
			})
			e, err := engine.New(f, engine.WithStorage(cs), engine.WithListener(l))
			if err != nil {
				t.Fatal(err)
			}
			runs++
			err = e.Run(ctx)
			if how == "crash" {
				if !errors.Is(err, enginetest.ErrCrashed) {
					t.Fatalf("first run: %v", err)
				}
				e, _ = engine.New(f, engine.WithStorage(mem))
			} else if !errors.Is(err, engine.ErrSuspended) {
				t.Fatalf("first run: %v", err)
			}
			equal(t, j.get(), []string{"x:a", "x:b", "x:c", "r:c", "r:b"})
			runs++
			err = e.Run(context.Background())
			var fe *engine.FlowError
			if !errors.As(err, &fe) || fe.State != flow.StateReverted || !errors.Is(err, errBoom) || fe.Failures[0].Atom != "c" {
				t.Fatalf("resume: %v", err)
			}
			equal(t, j.get(), []string{"x:a", "x:b", "x:c", "r:c", "r:b", "r:a"})
		})
	}
}

// An atom recorded RUNNING when a reverting flow was interrupted is
// reverted, without running again, and its revert is told it was
// interrupted.
func TestResumeRevertsInterruptedAtom(t *testing.T) {
	ctx := context.Background()
	mem := engine.NewMemory()
	_ = mem.SaveFlow(ctx, flow.StatePending, flow.StateRunning)
	_ = mem.SaveAtom(ctx, flow.StatePending, engine.AtomRecord{Name: "slow", State: flow.StateRunning})
	_ = mem.SaveAtom(ctx, flow.StatePending, engine.AtomRecord{Name: "bad", State: flow.StateReverted, Failure: flow.NewFailure("bad", errBoom)})
	var got flow.Outcome
	ran := false
	slow := flow.TaskFunc("slow", func(context.Context, flow.Inputs) (string, error) {
		ran = true
		return "slow", nil
	}).OnRevert(func(_ context.Context, _ flow.Inputs, _ string, o flow.Outcome) error {
		got = o
		return nil
	})
	j := &journal{}
	e, _ := engine.New(flow.Unordered("u", slow, rec(j, "bad", true)), engine.WithStorage(mem))
	err := e.Run(ctx)
	var fe *engine.FlowError
	if !errors.As(err, &fe) || fe.State != flow.StateReverted {
		t.Fatal(err)
	}
	if ran || !got.Interrupted || got.Result != nil || got.Failure != nil || len(got.FlowFailures) != 1 {
		t.Fatalf("ran %v, outcome %+v", ran, got)
	}
	mustState(t, e, "slow", flow.StateReverted)
}

// A retry controller's decision is recorded with its history before the
// engine acts on it, and RETRYING is recorded before the subflow's resets:
// the saves of one retry come in that order.
func TestRetryRecordsDecisionFirst(t *testing.T) {
	mem := engine.NewMemory()
	cs := enginetest.NewCrashStore(mem)
	var decisions []string
	rec := &recordingStore{CrashStore: cs, onAtom: func(from flow.State, r engine.AtomRecord) {
		if r.Name == "r" && r.Decision != 0 {
			decisions = append(decisions, fmt.Sprintf("%s %s %d", r.State, r.Decision, r.History.Len()))
		}
	}}
	f := flow.Linear("l", flow.Linear("sub", enginetest.Step("s1", nil), enginetest.Step("s2", enginetest.Below("attempt", 2), flow.Requires("attempt"))).
		WithRetry(flow.Times("r", 3, flow.ProvidesAs("attempt"))))
	if _, err := run(t, f, engine.WithStorage(rec)); err != nil {
		t.Fatal(err)
	}
	log := strings.Join(cs.Saves(), " ")
	want := "s2:RUNNING>FAILURE r:SUCCESS>SUCCESS s2:FAILURE>REVERTING s2:REVERTING>REVERTED s1:SUCCESS>REVERTING s1:REVERTING>REVERTED r:SUCCESS>RETRYING s1:REVERTED>PENDING s2:REVERTED>PENDING r:RETRYING>RUNNING"
	if !strings.Contains(log, want) {
		t.Fatalf("saves: %s", log)
	}
	equal(t, decisions, []string{"SUCCESS RETRY 1"})
	snap, _ := mem.Load(context.Background())
	if d := snap.Atoms["r"].Decision; d != 0 {
		t.Fatalf("decision %v left after the retry started", d)
	}
}

// recordingStore lets a test look at every atom record saved.
type recordingStore struct {
	*enginetest.CrashStore
	onAtom func(from flow.State, rec engine.AtomRecord)
}

func (s *recordingStore) SaveAtom(ctx context.Context, from flow.State, rec engine.AtomRecord) error {
	s.onAtom(from, rec)
	return s.CrashStore.SaveAtom(ctx, from, rec)
}
