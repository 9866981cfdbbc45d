package flow

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
	links   [][2]string
	retry   Retrier
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

// Link adds an explicit edge between two items of a graph flow, by name: the
// item named to runs after the one named from. Unknown names and links in
// other patterns are reported by Compile. It returns f.
func (f *Flow) Link(from, to string) *Flow {
	f.links = append(f.links, [2]string{from, to})
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
