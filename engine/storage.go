package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/ostask/ostask/flow"
)

// ErrConflict is returned by a Storage when a compare-and-set finds another
// state than the one expected: someone else moved the flow or atom.
var ErrConflict = errors.New("engine: storage state conflict")

// Storage records one flow run. The engine calls it from one goroutine at a
// time and records every transition before it acts on it (before an atom
// starts, before its successors are scheduled, before a revert begins), so
// a crash leaves a state it can resume from. Every save is a
// compare-and-set: it must fail with ErrConflict when the stored state is
// not from (a missing atom counts as PENDING). Values are plain data meant
// to be serialized; results and store values must be encodable by the
// implementation. A durable Storage may give values back as raw JSON (a
// json.RawMessage) from Load: the engine hands them on as they are, and
// flow.Get, flow.As, Fetch and FuncTask's revert decode them into the
// type their reader asks for.
type Storage interface {
	// Load returns what was recorded so far (zero Snapshot: nothing yet).
	Load(ctx context.Context) (Snapshot, error)
	// SaveFlow moves the flow's state.
	SaveFlow(ctx context.Context, from, to flow.State) error
	// SaveAtom records an atom's new state with its result or failure and,
	// for retry controllers, its history.
	SaveAtom(ctx context.Context, from flow.State, rec AtomRecord) error
	// SaveValues records the initial store values (once, before the run).
	SaveValues(ctx context.Context, values map[string]any) error
}

// AtomRecord is the recorded state of one atom.
type AtomRecord struct {
	Name    string     `json:"name"`
	Version string     `json:"version,omitempty"`
	State   flow.State `json:"state"`
	// Result is Execute's result; kept while the atom reverts.
	Result any `json:"result,omitempty"`
	// Failure is Execute's failure.
	Failure *flow.Failure `json:"failure,omitempty"`
	// RevertFailure is Revert's failure (state REVERT_FAILURE).
	RevertFailure *flow.Failure `json:"revert_failure,omitempty"`
	// History is a retry controller's attempts.
	History flow.History `json:"history,omitzero"`
	// Decision is a retry controller's decision on a failure in its current
	// attempt. It is recorded with the History holding the failures,
	// before the engine acts on it, and kept until it is carried out: a
	// RETRY is cleared when the controller moves to RETRYING for the next
	// attempt; a REVERT or REVERT_ALL stays (its subflow ends reverted). A
	// resume carries out the recorded decision rather than asking again,
	// and only a RETRY ever returns REVERTED atoms to PENDING. Zero: none.
	Decision flow.Decision `json:"decision,omitempty"`
}

// ErrStorage is matched by the errors of a Run stopped by its Storage: a
// failed load or save, a conflict, a fenced-out writer. The engine then
// records nothing more, so the run can be resumed from what was recorded.
var ErrStorage = errors.New("engine: storage failed")

// TransitionKind tells what a Transition changes.
type TransitionKind uint8

// Kinds of transitions.
const (
	TransitionFlow   TransitionKind = iota + 1 // the flow: From -> To
	TransitionAtom                             // an atom: From -> Atom.State, with its record
	TransitionValues                           // the initial store values
)

// Transition is one change a Batcher records.
type Transition struct {
	Kind   TransitionKind
	From   flow.State
	To     flow.State     // TransitionFlow
	Atom   AtomRecord     // TransitionAtom
	Values map[string]any // TransitionValues
}

// Batcher is a Storage that records several transitions in one durable
// write: all of them or none, in order, each a compare-and-set as the
// Storage methods are; successive transitions of one atom chain. The
// engine records everything that is decided at one moment (the
// completions a parallel flow collected, and the starts they allow) with
// one SaveBatch before it acts on any of it, so a successor never starts
// before its predecessor's SUCCESS is durable, and a linear flow costs one
// write per task.
type Batcher interface {
	Storage
	SaveBatch(ctx context.Context, ts []Transition) error
}

// Snapshot is everything a Storage holds about one flow run.
type Snapshot struct {
	Flow   flow.State            `json:"flow"`
	Atoms  map[string]AtomRecord `json:"atoms"`
	Values map[string]any        `json:"values"`
}

// Memory is the in-memory Storage; its zero value is ready to use. It is
// safe for concurrent use and may be shared by successive engines to resume
// a flow.
type Memory struct {
	mu     sync.Mutex
	flow   flow.State
	atoms  map[string]AtomRecord
	values map[string]any
}

// NewMemory returns an empty in-memory Storage.
func NewMemory() *Memory { return &Memory{} }

// Load implements Storage. The snapshot is a copy.
func (m *Memory) Load(context.Context) (Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Snapshot{Flow: m.flow, Atoms: maps.Clone(m.atoms), Values: maps.Clone(m.values)}, nil
}

// SaveFlow implements Storage.
func (m *Memory) SaveFlow(_ context.Context, from, to flow.State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.flow != from {
		return fmt.Errorf("%w: flow is %s, not %s", ErrConflict, m.flow, from)
	}
	m.flow = to
	return nil
}

// SaveAtom implements Storage.
func (m *Memory) SaveAtom(_ context.Context, from flow.State, rec AtomRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.atoms == nil {
		m.atoms = make(map[string]AtomRecord, 64)
	}
	if cur := m.atoms[rec.Name].State; cur != from {
		return fmt.Errorf("%w: atom %q is %s, not %s", ErrConflict, rec.Name, cur, from)
	}
	m.atoms[rec.Name] = rec
	return nil
}

// reserve sizes the atom table once the engine knows the flow.
func (m *Memory) reserve(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.atoms == nil {
		m.atoms = make(map[string]AtomRecord, n)
	}
}

// SaveValues implements Storage.
func (m *Memory) SaveValues(_ context.Context, values map[string]any) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values = maps.Clone(values)
	return nil
}
