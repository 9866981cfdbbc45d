package flow

import (
	"fmt"
	"strings"
)

// State is the state of an atom (task or retry controller) or of a whole flow.
// Atoms and flows share one set of names, as in TaskFlow; which moves are
// legal depends on the machine (see [TaskTransition], [RetryTransition] and
// [FlowTransition]). The zero value is [StatePending].
type State uint8

// The states of atoms and flows. The names (String) are TaskFlow's.
const (
	StatePending       State = iota // not started yet
	StateRunning                    // executing
	StateSuccess                    // executed successfully
	StateFailure                    // execution failed (atom) or the engine could not finish (flow)
	StateReverting                  // being reverted
	StateReverted                   // reverted successfully
	StateRevertFailure              // a revert failed
	StateRetrying                   // a retry controller is starting a new attempt
	StateIgnore                     // skipped (atoms only)
	StateResuming                   // the engine is resuming the flow (flows only)
	StateSuspending                 // a suspension was requested (flows only)
	StateSuspended                  // suspended, may be resumed (flows only)

	numStates
)

var stateNames = [numStates]string{
	"PENDING", "RUNNING", "SUCCESS", "FAILURE", "REVERTING", "REVERTED",
	"REVERT_FAILURE", "RETRYING", "IGNORE", "RESUMING", "SUSPENDING", "SUSPENDED",
}

// String returns TaskFlow's name of the state, e.g. "REVERT_FAILURE".
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// ParseState is the inverse of [State.String]; it accepts any letter case.
func ParseState(name string) (State, error) {
	for i, n := range stateNames {
		if strings.EqualFold(n, name) {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("flow: unknown state %q", name)
}

// MarshalText makes states readable in JSON and other text encodings.
func (s State) MarshalText() ([]byte, error) {
	if s >= numStates {
		return nil, fmt.Errorf("flow: invalid state %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText parses the output of MarshalText.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Machine names a state machine, for error messages and tables.
type Machine uint8

// The state machines.
const (
	MachineTask Machine = iota
	MachineRetry
	MachineFlow
)

func (m Machine) String() string {
	switch m {
	case MachineTask:
		return "task"
	case MachineRetry:
		return "retry"
	case MachineFlow:
		return "flow"
	}
	return fmt.Sprintf("Machine(%d)", uint8(m))
}

type edges struct {
	from State
	to   []State
}

// taskEdges is TaskFlow's task machine (taskflow/states.py).
var taskEdges = []edges{
	{StatePending, []State{StateRunning, StateIgnore}},
	// RUNNING to REVERTING is not in TaskFlow's table, but TaskFlow makes
	// the move too: a resume that continues a revert reverts an atom whose
	// Execute the interruption cut short, without running it again.
	{StateRunning, []State{StateSuccess, StateFailure, StateReverting}},
	{StateSuccess, []State{StateReverting}},
	{StateFailure, []State{StateReverting}},
	{StateReverting, []State{StateReverted, StateRevertFailure}},
	{StateReverted, []State{StatePending}},
	{StateIgnore, []State{StatePending}},
}

// retryEdges is the task machine plus the RETRYING loop.
var retryEdges = append(append([]edges(nil), taskEdges...),
	edges{StateSuccess, []State{StateRetrying}},
	edges{StateRetrying, []State{StateRunning, StateReverting}},
)

// flowEdges differs from TaskFlow's flow machine where ostask differs on
// purpose: a flow has REVERTING and REVERT_FAILURE (TaskFlow ends a failed
// revert in FAILURE), and moves TaskFlow "ignores" silently are simply absent,
// so asking for them is an error.
var flowEdges = []edges{
	{StatePending, []State{StateRunning, StateResuming}},
	{StateRunning, []State{StateSuccess, StateFailure, StateReverting, StateSuspending, StateResuming}},
	{StateReverting, []State{StateReverted, StateRevertFailure, StateFailure, StateSuspending, StateResuming}},
	{StateSuspending, []State{StateSuspended, StateSuccess, StateFailure, StateReverted, StateRevertFailure, StateResuming}},
	// A clean resume goes straight back to work, as in TaskFlow; RESUMING is
	// for a flow recovered from a crash.
	{StateSuspended, []State{StateRunning, StateReverting}},
	{StateResuming, []State{StateRunning, StateReverting, StateSuspended}},
	{StateFailure, []State{StateResuming}},
	{StateRevertFailure, []State{StateResuming}},
	{StateSuccess, []State{StatePending}},
	{StateReverted, []State{StatePending}},
}

type table [numStates][numStates]bool

func build(es []edges) *table {
	var t table
	for _, e := range es {
		for _, to := range e.to {
			t[e.from][to] = true
		}
	}
	return &t
}

var tables = [3]*table{build(taskEdges), build(retryEdges), build(flowEdges)}

// Allowed reports whether machine m may move from one state to another.
// Identity moves (from == to) are never allowed: the engine does not record
// or announce them.
func Allowed(m Machine, from, to State) bool {
	if int(m) >= len(tables) || from >= numStates || to >= numStates {
		return false
	}
	return tables[m][from][to]
}

// Transition returns nil when machine m may move from one state to another,
// and a *[TransitionError] (matching [ErrInvalidTransition]) otherwise.
func Transition(m Machine, from, to State) error {
	if Allowed(m, from, to) {
		return nil
	}
	return &TransitionError{Machine: m, From: from, To: to}
}

// TaskTransition checks a task's move.
func TaskTransition(from, to State) error { return Transition(MachineTask, from, to) }

// RetryTransition checks a retry controller's move.
func RetryTransition(from, to State) error { return Transition(MachineRetry, from, to) }

// FlowTransition checks a flow's move.
func FlowTransition(from, to State) error { return Transition(MachineFlow, from, to) }

// Targets lists the states machine m may move to from a state, in State order.
func Targets(m Machine, from State) []State {
	var out []State
	for to := State(0); to < numStates; to++ {
		if Allowed(m, from, to) {
			out = append(out, to)
		}
	}
	return out
}

// States lists every state, in order.
func States() []State {
	out := make([]State, numStates)
	for i := range out {
		out[i] = State(i)
	}
	return out
}

// Terminal reports whether a flow in state s has finished running (it may
// still be reset or resumed).
func (s State) Terminal() bool {
	switch s {
	case StateSuccess, StateFailure, StateReverted, StateRevertFailure:
		return true
	}
	return false
}
