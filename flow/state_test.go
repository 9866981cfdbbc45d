package flow_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ostask/ostask/flow"
)

type pair struct{ from, to flow.State }

var (
	P  = flow.StatePending
	R  = flow.StateRunning
	S  = flow.StateSuccess
	F  = flow.StateFailure
	RV = flow.StateReverting
	RD = flow.StateReverted
	RF = flow.StateRevertFailure
	RT = flow.StateRetrying
	IG = flow.StateIgnore
	RS = flow.StateResuming
	SG = flow.StateSuspending
	SD = flow.StateSuspended
)

// The expected tables, written out once more by hand: every pair of states
// not listed must be refused.
var expected = map[flow.Machine][]pair{
	flow.MachineTask: {
		{P, R}, {P, IG}, {R, S}, {R, F}, {R, RV}, {S, RV}, {F, RV}, {RV, RD}, {RV, RF}, {RD, P}, {IG, P},
	},
	flow.MachineRetry: {
		{P, R}, {P, IG}, {R, S}, {R, F}, {R, RV}, {S, RV}, {F, RV}, {RV, RD}, {RV, RF}, {RD, P}, {IG, P},
		{S, RT}, {RT, R}, {RT, RV},
	},
	flow.MachineFlow: {
		{P, R}, {P, RS},
		{R, S}, {R, F}, {R, RV}, {R, SG}, {R, RS},
		{RV, RD}, {RV, RF}, {RV, F}, {RV, SG}, {RV, RS},
		{SG, SD}, {SG, S}, {SG, F}, {SG, RD}, {SG, RF}, {SG, RS},
		{SD, R}, {SD, RV},
		{RS, R}, {RS, RV}, {RS, SD},
		{F, RS}, {RF, RS}, {S, P}, {RD, P},
	},
}

func TestTransitionsExhaustive(t *testing.T) {
	for m, allowed := range expected {
		set := map[pair]bool{}
		for _, p := range allowed {
			set[p] = true
		}
		for _, from := range flow.States() {
			for _, to := range flow.States() {
				t.Run(fmt.Sprintf("%s/%s-%s", m, from, to), func(t *testing.T) {
					err := flow.Transition(m, from, to)
					if want := set[pair{from, to}]; want != (err == nil) {
						t.Fatalf("allowed = %v, want %v", err == nil, want)
					}
					if err != nil {
						var te *flow.TransitionError
						if !errors.Is(err, flow.ErrInvalidTransition) || !errors.As(err, &te) || te.From != from || te.To != to {
							t.Fatalf("bad error %v", err)
						}
					}
				})
			}
		}
	}
}

func TestMachineHelpers(t *testing.T) {
	if flow.TaskTransition(S, RT) == nil || flow.RetryTransition(S, RT) != nil || flow.FlowTransition(SD, R) != nil {
		t.Fatal("helpers disagree with the tables")
	}
	if got := fmt.Sprint(flow.Targets(flow.MachineTask, P)); got != "[RUNNING IGNORE]" {
		t.Fatal(got)
	}
	if flow.Allowed(flow.Machine(9), P, R) || flow.Allowed(flow.MachineTask, 200, R) {
		t.Fatal("out of range accepted")
	}
}

func TestStateText(t *testing.T) {
	for _, s := range flow.States() {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back flow.State
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Fatalf("%s: %v %v", s, back, err)
		}
	}
	if _, err := flow.ParseState("nope"); err == nil {
		t.Fatal("parsed nonsense")
	}
	if flow.State(99).String() != "State(99)" {
		t.Fatal(flow.State(99).String())
	}
	if _, err := flow.State(99).MarshalText(); err == nil {
		t.Fatal("marshalled nonsense")
	}
}
