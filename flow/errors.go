package flow

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sentinel conditions; every typed error below matches one with errors.Is.
var (
	ErrInvalidTransition = errors.New("flow: invalid state transition")
	ErrMissing           = errors.New("flow: missing dependency")
	ErrAmbiguous         = errors.New("flow: ambiguous dependency")
	ErrDuplicate         = errors.New("flow: duplicate name")
	ErrCycle             = errors.New("flow: dependency cycle")
	ErrMisuse            = errors.New("flow: invalid flow")
	ErrNotFound          = errors.New("flow: value not found")
	ErrWrongType         = errors.New("flow: value has the wrong type")
	ErrOutputs           = errors.New("flow: result does not fit the provided names")
)

// TransitionError is an illegal state machine move.
type TransitionError struct {
	Machine  Machine
	From, To State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("flow: %s cannot move from %s to %s", e.Machine, e.From, e.To)
}

// Is matches [ErrInvalidTransition].
func (e *TransitionError) Is(target error) bool { return target == ErrInvalidTransition }

// Missing is one requirement that nothing provides.
type Missing struct {
	Atom   string // the atom that needs the value
	Name   string // the value's name (after rebinding)
	Revert bool   // needed only by the atom's revert
}

// MissingError lists every requirement nothing provides: no earlier atom in
// scope and no store value. Needs are sorted by value name, then atom.
type MissingError struct {
	Flow    string
	Missing []Missing
}

func (e *MissingError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "flow %q: missing dependencies", e.Flow)
	for i, m := range e.Missing {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %q (needed by %q", m.Name, m.Atom)
		if m.Revert {
			b.WriteString(" to revert")
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Names returns the missing value names, sorted and without repeats.
func (e *MissingError) Names() []string {
	var out []string
	for _, m := range e.Missing {
		if len(out) == 0 || out[len(out)-1] != m.Name {
			out = append(out, m.Name)
		}
	}
	return out
}

// Is matches [ErrMissing].
func (e *MissingError) Is(target error) bool { return target == ErrMissing }

func (e *MissingError) sort() {
	sort.Slice(e.Missing, func(i, j int) bool {
		a, b := e.Missing[i], e.Missing[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Atom != b.Atom {
			return a.Atom < b.Atom
		}
		return !a.Revert && b.Revert
	})
}

// AmbiguousError is a value an atom needs that several atoms at the same
// distance in its scope provide (siblings of a graph or unordered flow).
type AmbiguousError struct {
	Atom      string   // the consumer
	Name      string   // the value name
	Providers []string // the candidate providers, sorted
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("flow: %q needed by %q is provided by several atoms: %s",
		e.Name, e.Atom, strings.Join(quote(e.Providers), ", "))
}

// Is matches [ErrAmbiguous].
func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

// DuplicateError lists atom names used more than once anywhere in a flow
// tree, or item names repeated inside one graph flow.
type DuplicateError struct {
	Names []string // sorted
}

func (e *DuplicateError) Error() string {
	return "flow: duplicate names: " + strings.Join(quote(e.Names), ", ")
}

// Is matches [ErrDuplicate].
func (e *DuplicateError) Is(target error) bool { return target == ErrDuplicate }

// CycleError is a cycle among the items of a graph flow, from data
// dependencies, explicit links, or both. Cycle lists the items in order; the
// last one depends on the first.
type CycleError struct {
	Flow  string
	Cycle []string
}

func (e *CycleError) Error() string {
	c := append(quote(e.Cycle), quote(e.Cycle[:1])...)
	return fmt.Sprintf("flow %q: dependency cycle: %s", e.Flow, strings.Join(c, " -> "))
}

// Is matches [ErrCycle].
func (e *CycleError) Is(target error) bool { return target == ErrCycle }

// MisuseError is a flow built in a way the engine cannot run: an item that
// is neither a Task nor a *Flow, a retry controller added as a plain item,
// a task without an execute function (revert-only), a link naming no item,
// an empty name.
type MisuseError struct {
	Flow   string
	Item   string
	Reason string
}

func (e *MisuseError) Error() string {
	if e.Item == "" {
		return fmt.Sprintf("flow %q: %s", e.Flow, e.Reason)
	}
	return fmt.Sprintf("flow %q: %q: %s", e.Flow, e.Item, e.Reason)
}

// Is matches [ErrMisuse].
func (e *MisuseError) Is(target error) bool { return target == ErrMisuse }

// OutputError is a result that cannot be split into the several names its
// atom provides: neither a map with string keys nor a slice or array with
// one element per name. Compile reports it for a [FuncTask] whose result
// type cannot fit; the engine fails the atom with it when a result does
// not, before recording the result.
type OutputError struct {
	Atom     string
	Provides []string
	Type     string // the result's Go type
	Len      int    // the sequence's length, or -1 for another kind of value
}

func (e *OutputError) Error() string {
	if e.Len >= 0 {
		return fmt.Sprintf("flow: %q provides %d names but its result (%s) has %d elements", e.Atom, len(e.Provides), e.Type, e.Len)
	}
	return fmt.Sprintf("flow: %q provides %d names but its result (%s) is neither a sequence nor a map with string keys", e.Atom, len(e.Provides), e.Type)
}

// Is matches [ErrOutputs].
func (e *OutputError) Is(target error) bool { return target == ErrOutputs }

// InputError is a failed lookup of a task input.
type InputError struct {
	Name  string
	Want  string // the requested type, for ErrWrongType
	Got   any
	err   error
	cause error // why raw JSON did not decode
}

func (e *InputError) Error() string {
	if e.err == ErrWrongType {
		if e.cause != nil {
			return fmt.Sprintf("flow: input %q: stored JSON does not decode as %s: %v", e.Name, e.Want, e.cause)
		}
		return fmt.Sprintf("flow: input %q is %T, not %s", e.Name, e.Got, e.Want)
	}
	return fmt.Sprintf("flow: input %q not found", e.Name)
}

// Unwrap returns [ErrNotFound] or [ErrWrongType], and the decoding error of
// raw JSON that did not decode.
func (e *InputError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.err, e.cause}
	}
	return []error{e.err}
}

func quote(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
