package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"
)

// Spec declares an atom: its name, what it needs and what it provides.
// The compiler may call Spec more than once; it must return the same value.
type Spec struct {
	Name    string // unique among all atoms of the flow tree
	Version string // recorded with the atom's state; informative

	// Requires are the values Execute needs, by the name the task uses.
	Requires []string
	// Optional values are passed when something provides them.
	Optional []string
	// RevertRequires are extra values only Revert needs.
	RevertRequires []string
	// Provides names the result. One name takes the whole result; several
	// names take the outputs of a [Values] (by key) or a []any (by position).
	Provides []string

	// Rebind maps a name the task uses to the value name it is read from
	// (take input X from value Y: Rebind{"X": "Y"}).
	Rebind map[string]string
	// Inject holds constants for this atom only; they win over everything
	// and remove the names from the flow's requirements.
	Inject map[string]any

	// Timeout bounds one Execute call (through its context); zero means none.
	Timeout time.Duration
}

// key returns the value name an argument is read from.
func (s *Spec) key(arg string) string {
	if k, ok := s.Rebind[arg]; ok {
		return k
	}
	return arg
}

// Task is an atom of work. Execute does it; Revert undoes it after a failure
// of this task or of any other in the flow. Both may block, for instance on a
// future, and must return when ctx is done.
type Task interface {
	Spec() Spec
	Execute(ctx context.Context, in Inputs) (any, error)
	// Revert gets the same inputs as Execute (plus RevertRequires) and the
	// outcome of this task's Execute: its result, or its failure.
	Revert(ctx context.Context, in Inputs, o Outcome) error
}

// Outcome is what a task's Execute produced, handed to its Revert.
type Outcome struct {
	Result  any      // the result, when Execute succeeded
	Failure *Failure // the failure, when Execute failed
	// FlowFailures are the failures that made the engine revert.
	FlowFailures []*Failure
	// Interrupted is set when Execute was cut short (a crash, or a
	// cancelled run) before its outcome was recorded, and a resume reverts
	// the atom without running it again: Execute may have done all, part
	// or none of its work, and Result and Failure are empty.
	Interrupted bool
}

// Failed reports whether Execute failed.
func (o Outcome) Failed() bool { return o.Failure != nil }

// Values is the result of a task that provides several named outputs.
type Values map[string]any

// Output extracts output out of a result for an atom providing names:
// out < 0 is the whole result, otherwise names[out] from a map with string
// keys (such as [Values]) or the element at position out of a slice or an
// array.
func Output(result any, names []string, out int) (any, bool) {
	if out < 0 {
		return result, true
	}
	switch r := result.(type) {
	case json.RawMessage:
		return rawOutput(r, names, out)
	case Values:
		v, ok := r[names[out]]
		return v, ok
	case map[string]any:
		v, ok := r[names[out]]
		return v, ok
	case []any:
		if out < len(r) {
			return r[out], true
		}
		return nil, false
	}
	rv := reflect.ValueOf(result)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if out < rv.Len() {
			return rv.Index(out).Interface(), true
		}
	case reflect.Map:
		if kt := rv.Type().Key(); kt.Kind() == reflect.String {
			if v := rv.MapIndex(reflect.ValueOf(names[out]).Convert(kt)); v.IsValid() {
				return v.Interface(), true
			}
		}
	}
	return nil, false
}

// CheckResult reports whether result can be split into the outputs the
// node provides: with several names, it must be a map with string keys
// (a missing key leaves that output undefined) or a slice or array with
// exactly one element per name. The error is an *[OutputError].
func (n *Node) CheckResult(result any) error {
	if len(n.Provides) < 2 {
		return nil
	}
	switch r := result.(type) {
	case Values, map[string]any:
		return nil
	case json.RawMessage:
		switch l := rawLen(r); {
		case l == -1 || l == len(n.Provides):
			return nil
		case l >= 0:
			return &OutputError{Atom: n.Name, Provides: n.Provides, Type: "JSON array", Len: l}
		}
		return &OutputError{Atom: n.Name, Provides: n.Provides, Type: "JSON " + string(firstByte(r)), Len: -1}
	case []any:
		if len(r) == len(n.Provides) {
			return nil
		}
		return &OutputError{Atom: n.Name, Provides: n.Provides, Type: "[]any", Len: len(r)}
	}
	rv := reflect.ValueOf(result)
	e := &OutputError{Atom: n.Name, Provides: n.Provides, Type: fmt.Sprintf("%T", result), Len: -1}
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Len() == len(n.Provides) {
			return nil
		}
		e.Len = rv.Len()
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			return nil
		}
	}
	return e
}

// checkResultType is CheckResult at compile time, for tasks whose result
// type is known (a [FuncTask]): an array of the wrong length or a type that
// is neither a sequence nor a map with string keys cannot fit.
func checkResultType(name string, provides []string, t reflect.Type) error {
	if len(provides) < 2 || t == nil {
		return nil
	}
	e := &OutputError{Atom: name, Provides: provides, Type: t.String(), Len: -1}
	switch t.Kind() {
	case reflect.Interface, reflect.Slice:
		return nil
	case reflect.Array:
		if t.Len() == len(provides) {
			return nil
		}
		e.Len = t.Len()
	case reflect.Map:
		if t.Key().Kind() == reflect.String {
			return nil
		}
	}
	return e
}

// Inputs are the values handed to Execute or Revert, by the names the task
// uses. The zero value is empty.
type Inputs struct {
	names []string
	vals  []any
}

type absentT struct{}

// absent marks an optional input nothing provided.
var absent any = absentT{}

// NewInputs builds Inputs from a map, for tests and direct calls.
func NewInputs(m map[string]any) Inputs {
	names := slices.Sorted(maps.Keys(m))
	vals := make([]any, len(names))
	for i, n := range names {
		vals[i] = m[n]
	}
	return Inputs{names: names, vals: vals}
}

// MakeInputs builds Inputs over parallel slices without copying them; a
// value equal to [Absent] marks a missing optional input. It is meant for
// engines.
func MakeInputs(names []string, vals []any) Inputs { return Inputs{names: names, vals: vals} }

// Absent returns the marker MakeInputs takes for a missing optional input.
func Absent() any { return absent }

// Lookup returns the named input.
func (in Inputs) Lookup(name string) (any, bool) {
	for i, n := range in.names {
		if n == name {
			v := in.vals[i]
			if v == absent {
				return nil, false
			}
			return v, true
		}
	}
	return nil, false
}

// Len is the number of names (present or not).
func (in Inputs) Len() int { return len(in.names) }

// Map copies the present inputs into a map.
func (in Inputs) Map() map[string]any {
	m := make(map[string]any, len(in.names))
	for i, n := range in.names {
		if in.vals[i] != absent {
			m[n] = in.vals[i]
		}
	}
	return m
}

// Get returns input name as a T, decoding it when it is raw JSON (a value
// read back from a durable store; see [As]). The error is an
// *[InputError] matching [ErrNotFound] or [ErrWrongType].
func Get[T any](in Inputs, name string) (T, error) {
	var zero T
	v, ok := in.Lookup(name)
	if !ok {
		return zero, &InputError{Name: name, err: ErrNotFound}
	}
	t, err := As[T](v)
	if err != nil {
		err.(*InputError).Name = name
		return zero, err
	}
	return t, nil
}

// GetOr returns input name as a T (see [Get]), or def when it is absent or
// of another type.
func GetOr[T any](in Inputs, name string, def T) T {
	if v, ok := in.Lookup(name); ok {
		if t, err := As[T](v); err == nil && v != nil {
			return t
		}
	}
	return def
}

// Failure is a failed Execute or Revert, kept serializable: Message, Type
// and Stack survive a trip through a store; Err only lives in memory.
type Failure struct {
	Atom    string `json:"atom,omitempty"`
	Message string `json:"message"`
	Type    string `json:"type,omitempty"`  // the Go type of the error, e.g. "*errors.errorString"
	Stack   string `json:"stack,omitempty"` // set when the failure is a panic
	Err     error  `json:"-"`
}

// NewFailure wraps err from atom into a Failure. A *[PanicError] keeps its stack.
func NewFailure(atom string, err error) *Failure {
	f := &Failure{Atom: atom, Message: err.Error(), Type: fmt.Sprintf("%T", err), Err: err}
	var p *PanicError
	if errors.As(err, &p) {
		f.Stack = string(p.Stack)
	}
	return f
}

func (f *Failure) Error() string {
	if f.Atom == "" {
		return f.Message
	}
	return fmt.Sprintf("%s: %s", f.Atom, f.Message)
}

// Unwrap returns the original error, when still in memory.
func (f *Failure) Unwrap() error { return f.Err }

// PanicError is a panic recovered from a task, with the goroutine's stack.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// Unwrap returns the panic value when it is an error.
func (p *PanicError) Unwrap() error {
	if err, ok := p.Value.(error); ok {
		return err
	}
	return nil
}

// Option adjusts a task's Spec; see [TaskFunc] and [Bind].
type Option func(*Spec)

// Requires adds required inputs.
func Requires(names ...string) Option {
	return func(s *Spec) { s.Requires = append(s.Requires, names...) }
}

// Optional adds optional inputs.
func Optional(names ...string) Option {
	return func(s *Spec) { s.Optional = append(s.Optional, names...) }
}

// RevertRequires adds inputs only Revert needs.
func RevertRequires(names ...string) Option {
	return func(s *Spec) { s.RevertRequires = append(s.RevertRequires, names...) }
}

// Provides sets the names of the result (several names: named outputs).
func Provides(names ...string) Option {
	return func(s *Spec) { s.Provides = append([]string(nil), names...) }
}

// Rebind makes input arg read the value named from.
func Rebind(arg, from string) Option {
	return func(s *Spec) {
		s.Rebind = maps.Clone(s.Rebind)
		if s.Rebind == nil {
			s.Rebind = map[string]string{}
		}
		s.Rebind[arg] = from
	}
}

// Inject sets a constant input for this atom only.
func Inject(name string, value any) Option {
	return func(s *Spec) {
		s.Inject = maps.Clone(s.Inject)
		if s.Inject == nil {
			s.Inject = map[string]any{}
		}
		s.Inject[name] = value
	}
}

// Version sets the atom's version.
func Version(v string) Option { return func(s *Spec) { s.Version = v } }

// Timeout bounds each Execute call.
func Timeout(d time.Duration) Option { return func(s *Spec) { s.Timeout = d } }

// Rename gives the atom another name (useful to add one task twice).
func Rename(name string) Option { return func(s *Spec) { s.Name = name } }

// Bind returns t with its Spec adjusted by opts, e.g. to rebind or inject
// inputs of a task written elsewhere.
func Bind(t Task, opts ...Option) Task {
	s := t.Spec()
	s.Requires = slices.Clone(s.Requires)
	s.Optional = slices.Clone(s.Optional)
	s.RevertRequires = slices.Clone(s.RevertRequires)
	for _, o := range opts {
		o(&s)
	}
	return &bound{Task: t, spec: s}
}

type bound struct {
	Task
	spec Spec
}

func (b *bound) Spec() Spec { return b.spec }

// FuncTask is a Task made of typed functions; build it with [TaskFunc].
type FuncTask[R any] struct {
	spec   Spec
	exec   func(ctx context.Context, in Inputs) (R, error)
	revert func(ctx context.Context, in Inputs, result R, o Outcome) error
}

// TaskFunc builds a task named name whose Execute calls exec. Its result is
// provided under the names given with [Provides].
func TaskFunc[R any](name string, exec func(ctx context.Context, in Inputs) (R, error), opts ...Option) *FuncTask[R] {
	t := &FuncTask[R]{spec: Spec{Name: name}, exec: exec}
	for _, o := range opts {
		o(&t.spec)
	}
	return t
}

// OnRevert sets the revert function. It receives Execute's result (zero
// when Execute failed or was interrupted) and the whole outcome, as a
// hand-written Task's Revert does: o.Failure is Execute's own failure and
// o.FlowFailures the failures that made the flow revert. It returns t.
func (t *FuncTask[R]) OnRevert(fn func(ctx context.Context, in Inputs, result R, o Outcome) error) *FuncTask[R] {
	t.revert = fn
	return t
}

// Spec implements Task.
func (t *FuncTask[R]) Spec() Spec { return t.spec }

// Execute implements Task.
func (t *FuncTask[R]) Execute(ctx context.Context, in Inputs) (any, error) {
	r, err := t.exec(ctx, in)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Revert implements Task.
func (t *FuncTask[R]) Revert(ctx context.Context, in Inputs, o Outcome) error {
	if t.revert == nil {
		return nil
	}
	r, err := As[R](o.Result)
	if err != nil {
		// A revert must not act on a zero value it was not given (delete
		// the resource with an empty id): it fails instead.
		return fmt.Errorf("flow: task %q: result for revert: %w", t.spec.Name, err)
	}
	return t.revert(ctx, in, r, o)
}

// executable reports whether t can run at all.
func (t *FuncTask[R]) executable() bool { return t.exec != nil }

// resultType lets Compile check R against several Provides names.
func (t *FuncTask[R]) resultType() reflect.Type { return reflect.TypeFor[R]() }

type executable interface{ executable() bool }

type resultTyped interface{ resultType() reflect.Type }
