package flow

import "fmt"

// Pattern is how a flow orders its items.
type Pattern uint8

const (
	// LinearPattern runs items one after the other, in the order added; an
	// item sees the values of the items before it.
	LinearPattern Pattern = iota
	// UnorderedPattern runs items independently (in parallel when the
	// engine can); siblings cannot feed each other.
	UnorderedPattern
	// GraphPattern runs items as a DAG whose edges come from requires and
	// provides, plus explicit links.
	GraphPattern
)

func (p Pattern) String() string {
	switch p {
	case LinearPattern:
		return "linear"
	case UnorderedPattern:
		return "unordered"
	case GraphPattern:
		return "graph"
	}
	return "pattern?"
}

// Item is what a flow holds: a [Task] or a nested *[Flow]. (A *Flow's Spec
// carries only its name.)
type Item interface {
	Spec() Spec
}

// Flow is a named composition of items following one [Pattern], with an
// optional retry controller. Build it, then hand it to [Compile] (or to the
// engine, which compiles it). A Flow is a plain value with no state: one
// Flow may be compiled and run many times, but must not be changed while it
// is being compiled.
type Flow struct {
	name    string
	pattern Pattern
	items   []Item
	links   []link
	retry   Retrier
}

type link struct {
	from, to string
	decider  Decider
	depth    Depth
	depthSet bool
}

// Decider decides whether the target of a link runs, from the results of
// the atoms of the items linked to the target with a decider, by atom name
// (an item that is a subflow contributes the results of all its atoms).
// TaskFlow calls this map the history. The engine calls deciders from its
// scheduling goroutine when the target is about to start, so they must be
// quick, and pure: a resumed flow may ask again. After a resume, results
// recorded before it are raw JSON: read them with [As].
type Decider func(results map[string]any) bool

// Depth is how far a decider's "no" reaches: the atoms it reaches end in
// state IGNORE, are never run nor reverted, and count as done for the
// atoms after them.
type Depth uint8

// A target that is a subflow is ignored whole, with every depth; only
// DepthAll reaches beyond it.
const (
	// DepthAll ignores the target and every atom after it, in its graph and
	// beyond (the default).
	DepthAll Depth = iota
	// DepthFlow ignores the target and the tasks of the same graph after
	// it, following links through tasks only: subflows after the target,
	// and what follows them, still run.
	DepthFlow
	// DepthNeighbors ignores the target and the tasks linked right after it.
	DepthNeighbors
	// DepthAtom ignores the target only.
	DepthAtom
)

func (d Depth) String() string {
	switch d {
	case DepthAll:
		return "ALL"
	case DepthFlow:
		return "FLOW"
	case DepthNeighbors:
		return "NEIGHBORS"
	case DepthAtom:
		return "ATOM"
	}
	return fmt.Sprintf("Depth(%d)", uint8(d))
}

// LinkOption configures a [Flow.Link].
type LinkOption func(*link)

// WithDecider makes the link conditional: its target runs only if d says
// so (and every other decider on a link into it too).
func WithDecider(d Decider) LinkOption { return func(l *link) { l.decider = d } }

// WithDepth sets how far the decider's "no" reaches (default DepthAll). It
// needs WithDecider.
func WithDepth(d Depth) LinkOption {
	return func(l *link) { l.depth, l.depthSet = d, true }
}

// Linear returns a linear flow of items.
func Linear(name string, items ...Item) *Flow { return newFlow(name, LinearPattern, items) }

// Unordered returns an unordered flow of items.
func Unordered(name string, items ...Item) *Flow { return newFlow(name, UnorderedPattern, items) }

// Graph returns a graph flow of items.
func Graph(name string, items ...Item) *Flow { return newFlow(name, GraphPattern, items) }

func newFlow(name string, p Pattern, items []Item) *Flow {
	return &Flow{name: name, pattern: p, items: append([]Item(nil), items...)}
}

// Add appends items and returns f.
func (f *Flow) Add(items ...Item) *Flow {
	f.items = append(f.items, items...)
	return f
}

// Link adds an explicit edge between two items of a graph flow, by name
// (an atom's name, or a subflow's): the item named to runs after the one
// named from, and only if the link's [Decider], when it has one, says so.
// Unknown names, links in other patterns and a depth without a decider are
// reported by Compile. It returns f.
func (f *Flow) Link(from, to string, opts ...LinkOption) *Flow {
	l := link{from: from, to: to}
	for _, o := range opts {
		o(&l)
	}
	f.links = append(f.links, l)
	return f
}

// WithRetry attaches a retry controller to f and returns f. An unnamed
// controller is named "<flow>_retry" at compile time.
func (f *Flow) WithRetry(r Retrier) *Flow {
	f.retry = r
	return f
}

// Name returns the flow's name.
func (f *Flow) Name() string { return f.name }

// Pattern returns the flow's pattern.
func (f *Flow) Pattern() Pattern { return f.pattern }

// Items returns the flow's items (not a copy).
func (f *Flow) Items() []Item { return f.items }

// Retry returns the attached retry controller, if any.
func (f *Flow) Retry() Retrier { return f.retry }

// Spec makes a Flow an Item; only Name is set.
func (f *Flow) Spec() Spec { return Spec{Name: f.name} }
