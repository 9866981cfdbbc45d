package flow

import (
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// NodeKind tells what a compiled node is.
type NodeKind uint8

const (
	NodeTask  NodeKind = iota // a Task
	NodeRetry                 // a retry controller, the entry of its subflow
	NodeJoin                  // a structural join of an unordered or graph flow; never recorded
)

// Source tells where an argument's value comes from.
type Source uint8

const (
	FromNode   Source = iota // the result (or one output) of an earlier node
	FromStore                // a store value (initial values given to the engine)
	FromInject               // a constant injected into the atom
	FromNone                 // an optional argument nothing provides
)

// Arg is one resolved input of a node.
type Arg struct {
	Name     string // the name the task uses
	Key      string // the value name, after rebinding
	Source   Source
	Node     int32 // FromNode: the producing node
	Out      int32 // FromNode: index into that node's Provides, or -1 for the whole result
	Optional bool
	Value    any // FromInject
}

// Node is one vertex of a compiled flow. The engine reads Nodes; nothing
// may change them.
type Node struct {
	Name     string
	Version  string
	Kind     NodeKind
	Task     Task    // NodeTask
	Retry    Retrier // NodeRetry
	Timeout  time.Duration
	Provides []string
	Flow     string // the innermost flow holding the node

	// Args are the inputs of Revert: the first NExec are those of Execute,
	// the rest come from RevertRequires. ArgNames are their names, in the
	// same order (ready for MakeInputs).
	Args     []Arg
	ArgNames []string
	NExec    int32

	// Scope is the index of the retry node controlling this node, or -1.
	Scope int32
	// End is, for a retry node at index i, the end (exclusive) of the
	// nodes it controls: [i+1, End).
	End int32

	// Gate is set on the first node of an item of a graph flow that links
	// with deciders lead to: the engine asks them before the item starts.
	Gate *Gate
}

// Gate holds the deciders of the links into one item of a graph flow (see
// [Flow.Link] and [WithDecider]) and what a "no" reaches.
type Gate struct {
	Item     string // the target item's name
	Lo, Hi   int32  // the target's nodes, [Lo, Hi]; Lo is its first node
	Deciders []GateDecider
	// Flow and Neighbors are the first nodes of the tasks after the target
	// that DepthFlow and DepthNeighbors reach (DepthAll reaches every node
	// after the target; DepthAtom only the target).
	Flow, Neighbors []int32
}

// GateDecider is one decider of a [Gate] and the item its link comes from,
// whose atoms' results it is given.
type GateDecider struct {
	Decider Decider
	Depth   Depth
	From    string // the source item's name
	Lo, Hi  int32  // the source item's nodes, [Lo, Hi]
}

// EdgeReason tells why a compiled edge exists; a graph edge may have
// several reasons.
type EdgeReason uint8

const (
	// EdgeOrder: an item of a linear flow (or its retry controller) comes
	// before the next item.
	EdgeOrder EdgeReason = 1 << iota
	// EdgeData: an item of a graph flow requires values the other provides
	// (Edge.Names).
	EdgeData
	// EdgeLink: an explicit [Flow.Link].
	EdgeLink
	// EdgeJoin: the structure of an unordered or graph flow, into its items
	// from its entry (a join node or its retry controller) or out of them
	// into its exit join node.
	EdgeJoin
)

func (r EdgeReason) String() string {
	var parts []string
	for _, p := range []struct {
		r    EdgeReason
		name string
	}{{EdgeOrder, "order"}, {EdgeData, "data"}, {EdgeLink, "link"}, {EdgeJoin, "join"}} {
		if r&p.r != 0 {
			parts = append(parts, p.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// Edge is one compiled edge: node To runs after node From.
type Edge struct {
	From, To int32
	Reason   EdgeReason
	Names    []string // the values behind an EdgeData edge, sorted
}

// Compiled is a validated flow ready to run: a DAG of nodes numbered in a
// topological order (every edge goes from a lower to a higher index), where
// each subflow occupies a contiguous range that it enters through its first
// node. It is immutable and may be run by many engines at once.
type Compiled struct {
	name     string
	nodes    []Node
	succOff  []int32
	succ     []int32
	succWhy  []EdgeReason       // aligned with succ
	succData map[int32][]string // EdgeData names, by position in succ
	predOff  []int32
	pred     []int32
	index    map[string]int32
	inputs   []string
	requires []string
	exports  map[string][]ref
	atoms    int
}

// Name returns the root flow's name.
func (c *Compiled) Name() string { return c.name }

// Nodes returns the nodes, in topological order (not a copy: do not modify).
func (c *Compiled) Nodes() []Node { return c.nodes }

// Atoms is the number of tasks and retry controllers.
func (c *Compiled) Atoms() int { return c.atoms }

// Succ returns the successors of node i.
func (c *Compiled) Succ(i int32) []int32 { return c.succ[c.succOff[i]:c.succOff[i+1]] }

// Pred returns the predecessors of node i.
func (c *Compiled) Pred(i int32) []int32 { return c.pred[c.predOff[i]:c.predOff[i+1]] }

// Index returns the node index of the named atom.
func (c *Compiled) Index(name string) (int32, bool) {
	i, ok := c.index[name]
	return i, ok
}

// Inputs lists the store values the flow reads, sorted: those it requires
// and the optional ones the store holds.
func (c *Compiled) Inputs() []string { return c.inputs }

// Requires lists, sorted, the values the flow requires from outside (the
// store): what its atoms require, to execute or to revert, that no atom
// before them provides. Injected names are not requirements; optional
// inputs are not either (TaskFlow's flow.requires).
func (c *Compiled) Requires() []string { return c.requires }

// Edges returns the compiled edges, by source node, with their reasons.
func (c *Compiled) Edges() []Edge {
	out := make([]Edge, 0, len(c.succ))
	for i := range c.nodes {
		for k := c.succOff[i]; k < c.succOff[i+1]; k++ {
			out = append(out, Edge{From: int32(i), To: c.succ[k], Reason: c.succWhy[k], Names: c.succData[k]})
		}
	}
	return out
}

// Providers returns the nodes whose results provide the value name, with
// the index of the output in each (-1 for the whole result), in node
// order: every atom that provides it anywhere in the flow.
func (c *Compiled) Providers(name string) (nodes, outs []int32) {
	for i := range c.nodes {
		n := &c.nodes[i]
		for k, p := range n.Provides {
			if p == name {
				out := int32(k)
				if len(n.Provides) == 1 {
					out = -1
				}
				nodes, outs = append(nodes, int32(i)), append(outs, out)
				break
			}
		}
	}
	return nodes, outs
}

// Visible lists, sorted, the names of the values visible after the whole
// flow that atoms provide (the store's values are visible too).
func (c *Compiled) Visible() []string {
	return slices.Sorted(maps.Keys(c.exports))
}

// Lookup tells where the value name visible after the whole flow comes
// from: an atom's output, or the store when no atom provides it.
func (c *Compiled) Lookup(name string) (Arg, error) {
	refs := c.exports[name]
	switch len(refs) {
	case 0:
		return Arg{Name: name, Key: name, Source: FromStore}, nil
	case 1:
		return Arg{Name: name, Key: name, Source: FromNode, Node: refs[0].node, Out: refs[0].out}, nil
	}
	e := &AmbiguousError{Atom: c.name, Name: name}
	for _, r := range refs {
		e.Providers = append(e.Providers, c.nodes[r.node].Name)
	}
	sort.Strings(e.Providers)
	return Arg{}, e
}

// CompileOption configures Compile.
type CompileOption func(*compiler)

// WithInputs declares the names of the values the store will hold; any
// other requirement nothing provides is a [MissingError].
func WithInputs(names ...string) CompileOption {
	return func(c *compiler) {
		for _, n := range names {
			c.store[n] = struct{}{}
		}
	}
}

// Compile validates f and turns it into a Compiled DAG. All problems are
// reported together (errors.Join of *MissingError, *AmbiguousError,
// *DuplicateError, *CycleError and *MisuseError values). Its cost is linear
// in the size of the flow.
func Compile(f *Flow, opts ...CompileOption) (*Compiled, error) {
	c := &compiler{store: map[string]struct{}{}, index: map[string]int32{}}
	for _, o := range opts {
		o(c)
	}
	if f == nil {
		return nil, &MisuseError{Reason: "nil flow"}
	}
	root := c.analyzeFlow(f)
	if len(c.errs) == 0 && len(c.dups) == 0 {
		c.out.nodes = make([]Node, 0, c.count)
		c.out.index = c.index
		_, _, exp := c.emit(root, -1)
		c.out.exports = exp
	}
	if len(c.dups) > 0 {
		e := &DuplicateError{}
		for n := range c.dups {
			e.Names = append(e.Names, n)
		}
		sort.Strings(e.Names)
		c.errs = append([]error{e}, c.errs...)
	}
	if len(c.missing) > 0 {
		e := &MissingError{Flow: f.name, Missing: c.missing}
		e.sort()
		c.errs = append(c.errs, e)
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	out := &c.out
	out.name = f.name
	out.inputs = c.inputs
	sort.Strings(out.inputs)
	out.requires = slices.Clone(root.req)
	sort.Strings(out.requires)
	out.atoms = len(c.index)
	c.csr()
	return out, nil
}

type ref struct {
	node int32
	out  int32
}

type anode struct {
	name    string
	flow    *Flow // flows only
	task    Task  // tasks only
	retrier Retrier
	retry   *anode   // a flow's retry controller
	kids    []*anode // graph flows: in topological order
	gpreds  [][]int  // graph flows: predecessors of kids[i], as kid indices
	gwhy    map[[2]int]edgeWhy
	gdec    [][]gdecider // graph flows: the deciders of the links into kids[i]
	req     []string     // value names needed from outside
	prov    []string     // value names provided
	isRetry bool
}

// edgeWhy is why a graph edge between two items exists.
type edgeWhy struct {
	reason EdgeReason
	names  []string
}

// gdecider is a decider on a link from item from (a kid index).
type gdecider struct {
	from    int
	decider Decider
	depth   Depth
}

type compiler struct {
	store     map[string]struct{}
	index     map[string]int32
	seen      map[string]struct{}
	dups      map[string]struct{}
	errs      []error
	missing   []Missing
	inputs    []string
	inSeen    map[string]struct{}
	count     int
	out       Compiled
	edges     []ref        // from, to (reusing ref's two int32)
	why       []EdgeReason // aligned with edges
	data      map[int][]string
	frames    []frame
	flowNames []string
}

func (c *compiler) atomName(n string, flowName string) {
	if n == "" {
		c.errs = append(c.errs, &MisuseError{Flow: flowName, Reason: "an atom has no name"})
		return
	}
	if _, ok := c.index[n]; ok {
		c.dup(n)
		return
	}
	c.index[n] = -1
}

// dup notes a name used twice; each is reported once, in one DuplicateError.
func (c *compiler) dup(n string) {
	if c.dups == nil {
		c.dups = map[string]struct{}{}
	}
	c.dups[n] = struct{}{}
}

// atomKeys returns the names an atom needs from outside (required and
// revert-required, rebound, minus injected) and its provides.
func atomKeys(s *Spec) (req []string) {
	add := func(args []string) {
		for _, a := range args {
			if _, ok := s.Inject[a]; ok {
				continue
			}
			k := s.key(a)
			if !slices.Contains(req, k) {
				req = append(req, k)
			}
		}
	}
	add(s.Requires)
	add(s.RevertRequires)
	return req
}

// analyzeAtom keeps only what the analysis needs: the Spec is asked for
// again when the node is emitted, so that big flows do not hold two copies.
func (c *compiler) analyzeAtom(name string, s Spec, flowName string) *anode {
	a := &anode{name: s.Name}
	if a.name == "" {
		a.name = name
	}
	c.atomName(a.name, flowName)
	a.req = atomKeys(&s)
	a.prov = s.Provides
	c.count++
	return a
}

// underlying returns the task a Bind wraps.
func underlying(t Task) Task {
	for {
		b, ok := t.(*bound)
		if !ok {
			return t
		}
		t = b.Task
	}
}

func isExecutable(t Task) bool {
	if v, ok := underlying(t).(executable); ok {
		return v.executable()
	}
	return true
}

func (c *compiler) analyzeFlow(f *Flow) *anode {
	a := &anode{name: f.name, flow: f}
	if f.name == "" {
		c.errs = append(c.errs, &MisuseError{Reason: "a flow has no name"})
	}
	var avail map[string]struct{}
	if f.retry != nil {
		r := c.analyzeAtom(f.name+"_retry", f.retry.Spec(), f.name)
		r.retrier, r.isRetry = f.retry, true
		a.retry = r
		avail = make(map[string]struct{}, len(r.prov))
		for _, p := range r.prov {
			avail[p] = struct{}{}
		}
	}
	a.kids = make([]*anode, 0, len(f.items))
	for _, it := range f.items {
		switch v := it.(type) {
		case *Flow:
			if v == nil {
				c.errs = append(c.errs, &MisuseError{Flow: f.name, Reason: "nil subflow"})
				continue
			}
			a.kids = append(a.kids, c.analyzeFlow(v))
		case Task:
			k := c.analyzeAtom("", v.Spec(), f.name)
			k.task = v
			if !isExecutable(v) {
				c.errs = append(c.errs, &MisuseError{Flow: f.name, Item: k.name, Reason: "task has no execute function (revert-only tasks are not allowed)"})
			}
			if rt, ok := underlying(v).(resultTyped); ok {
				if err := checkResultType(k.name, k.prov, rt.resultType()); err != nil {
					c.errs = append(c.errs, err)
				}
			}
			a.kids = append(a.kids, k)
		case Retrier:
			c.errs = append(c.errs, &MisuseError{Flow: f.name, Item: v.Spec().Name, Reason: "a retry controller must be attached with WithRetry, not added as an item"})
		default:
			name := ""
			if it != nil {
				name = it.Spec().Name
			}
			c.errs = append(c.errs, &MisuseError{Flow: f.name, Item: name, Reason: "item is neither a Task nor a *Flow"})
		}
	}
	var req, prov set
	if a.retry != nil {
		for _, r := range a.retry.req {
			req.add(r)
		}
		for _, p := range a.retry.prov {
			prov.add(p)
		}
	}
	switch f.pattern {
	case LinearPattern:
		if len(f.links) > 0 {
			c.errs = append(c.errs, &MisuseError{Flow: f.name, Reason: "links are only allowed in graph flows"})
		}
		for _, k := range a.kids {
			for _, r := range k.req {
				if _, ok := avail[r]; !ok {
					req.add(r)
				}
			}
			if len(k.prov) > 0 && avail == nil {
				avail = map[string]struct{}{}
			}
			for _, p := range k.prov {
				avail[p] = struct{}{}
				prov.add(p)
			}
		}
	case UnorderedPattern:
		if len(f.links) > 0 {
			c.errs = append(c.errs, &MisuseError{Flow: f.name, Reason: "links are only allowed in graph flows"})
		}
		for _, k := range a.kids {
			for _, r := range k.req {
				if _, ok := avail[r]; !ok {
					req.add(r)
				}
			}
			for _, p := range k.prov {
				prov.add(p)
			}
		}
	case GraphPattern:
		c.analyzeGraph(a, avail, &req, &prov)
	}
	a.req, a.prov = req.list, prov.list
	return a
}

// set is an insertion-ordered string set that stays allocation-free while small.
type set struct {
	list []string
	m    map[string]struct{}
}

func (s *set) add(v string) {
	if s.m == nil {
		if len(s.list) < 8 {
			if slices.Contains(s.list, v) {
				return
			}
			s.list = append(s.list, v)
			return
		}
		s.m = make(map[string]struct{}, 16)
		for _, x := range s.list {
			s.m[x] = struct{}{}
		}
	}
	if _, ok := s.m[v]; ok {
		return
	}
	s.m[v] = struct{}{}
	s.list = append(s.list, v)
}

func (c *compiler) analyzeGraph(a *anode, avail map[string]struct{}, req, prov *set) {
	f := a.flow
	n := len(a.kids)
	byName := make(map[string]int, n)
	dups := false
	for i, k := range a.kids {
		if _, ok := byName[k.name]; ok {
			c.dup(k.name) // an atom name is noted already; a subflow's is not
			dups = true
		}
		byName[k.name] = i
	}
	if dups {
		return
	}
	providers := map[string][]int{}
	for i, k := range a.kids {
		for _, p := range k.prov {
			providers[p] = append(providers[p], i)
			prov.add(p)
		}
	}
	preds := make([][]int, n)
	why := map[[2]int]edgeWhy{}
	addEdge := func(from, to int, r EdgeReason, name string) {
		w, ok := why[[2]int{from, to}]
		if !ok {
			preds[to] = append(preds[to], from)
		}
		w.reason |= r
		if name != "" && !slices.Contains(w.names, name) {
			w.names = append(w.names, name)
		}
		why[[2]int{from, to}] = w
	}
	for i, k := range a.kids {
		for _, r := range k.req {
			var ps []int
			for _, j := range providers[r] {
				if j != i {
					ps = append(ps, j)
				}
			}
			switch len(ps) {
			case 0:
				if _, ok := avail[r]; !ok {
					req.add(r)
				}
			case 1:
				addEdge(ps[0], i, EdgeData, r)
			default:
				e := &AmbiguousError{Atom: k.name, Name: r}
				for _, j := range ps {
					e.Providers = append(e.Providers, a.kids[j].name)
				}
				sort.Strings(e.Providers)
				c.errs = append(c.errs, e)
			}
		}
	}
	var decs [][]gdecider
	for _, l := range f.links {
		from, ok1 := byName[l.from]
		to, ok2 := byName[l.to]
		switch {
		case !ok1:
			c.errs = append(c.errs, &MisuseError{Flow: f.name, Item: l.from, Reason: "link names no item of the graph"})
		case !ok2:
			c.errs = append(c.errs, &MisuseError{Flow: f.name, Item: l.to, Reason: "link names no item of the graph"})
		case from == to:
			c.errs = append(c.errs, &CycleError{Flow: f.name, Cycle: []string{l.from}})
		case l.depthSet && l.decider == nil:
			c.errs = append(c.errs, &MisuseError{Flow: f.name, Item: l.to, Reason: "a link has a decider depth but no decider"})
		case l.depth > DepthAtom:
			c.errs = append(c.errs, &MisuseError{Flow: f.name, Item: l.to, Reason: "a link has an unknown decider depth " + l.depth.String()})
		default:
			addEdge(from, to, EdgeLink, "")
			if l.decider != nil {
				if decs == nil {
					decs = make([][]gdecider, n)
				}
				decs[to] = append(decs[to], gdecider{from: from, decider: l.decider, depth: l.depth})
			}
		}
	}
	// Kahn's algorithm, taking ready items in the order they were added.
	indeg := make([]int, n)
	succs := make([][]int, n)
	for to, ps := range preds {
		indeg[to] = len(ps)
		for _, from := range ps {
			succs[from] = append(succs[from], to)
		}
	}
	order := make([]int, 0, n)
	ready := make([]int, 0, n)
	for i := range n {
		if indeg[i] == 0 {
			ready = append(ready, i)
		}
	}
	for len(ready) > 0 {
		// smallest index first keeps the add order where the graph allows
		m := 0
		for j := range ready {
			if ready[j] < ready[m] {
				m = j
			}
		}
		i := ready[m]
		ready[m] = ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		order = append(order, i)
		for _, s := range succs[i] {
			if indeg[s]--; indeg[s] == 0 {
				ready = append(ready, s)
			}
		}
	}
	if len(order) < n {
		c.errs = append(c.errs, &CycleError{Flow: f.name, Cycle: findCycle(a.kids, preds, indeg)})
		return
	}
	pos := make([]int, n)
	for p, i := range order {
		pos[i] = p
	}
	kids := make([]*anode, n)
	gpreds := make([][]int, n)
	a.gwhy = make(map[[2]int]edgeWhy, len(why))
	for p, i := range order {
		kids[p] = a.kids[i]
		for _, from := range preds[i] {
			gpreds[p] = append(gpreds[p], pos[from])
			a.gwhy[[2]int{pos[from], p}] = why[[2]int{from, i}]
		}
		slices.Sort(gpreds[p])
	}
	for _, w := range a.gwhy {
		sort.Strings(w.names)
	}
	if decs != nil {
		a.gdec = make([][]gdecider, n)
		for i, ds := range decs {
			for _, d := range ds {
				d.from = pos[d.from]
				a.gdec[pos[i]] = append(a.gdec[pos[i]], d)
			}
		}
	}
	a.kids, a.gpreds = kids, gpreds
}

// findCycle walks predecessors among the items left by Kahn's algorithm
// (all have a predecessor left) until one repeats.
func findCycle(kids []*anode, preds [][]int, indeg []int) []string {
	start := -1
	for i, d := range indeg {
		if d > 0 {
			start = i
			break
		}
	}
	at := map[int]int{}
	var path []int
	for i := start; ; {
		if p, ok := at[i]; ok {
			path = path[p:]
			break
		}
		at[i] = len(path)
		path = append(path, i)
		for _, p := range preds[i] {
			if indeg[p] > 0 {
				i = p
				break
			}
		}
	}
	// path follows predecessors; report it in dependency order
	slices.Reverse(path)
	names := make([]string, len(path))
	for i, k := range path {
		names[i] = kids[k].name
	}
	return names
}

// frame is one level of scope while resolving arguments.
type frame struct {
	m     map[string][]ref // linear flows and retry values
	graph *gframe
	kid   int // graph: the item being emitted
}

type gframe struct {
	providers map[string][]int
	exports   []map[string][]ref
	preds     [][]int
}

func (c *compiler) lookup(key string, optional bool) ([]ref, bool) {
	for i := len(c.frames) - 1; i >= 0; i-- {
		fr := &c.frames[i]
		if fr.graph == nil {
			if refs, ok := fr.m[key]; ok {
				return refs, true
			}
			continue
		}
		var out []ref
		for _, j := range fr.graph.providers[key] {
			if j == fr.kid || (optional && !slices.Contains(fr.graph.preds[fr.kid], j)) {
				continue
			}
			out = append(out, fr.graph.exports[j][key]...)
		}
		if len(out) > 0 {
			return out, true
		}
		if refs, ok := fr.m[key]; ok { // the graph's retry
			return refs, true
		}
	}
	return nil, false
}

func (c *compiler) newNode(n Node) int32 {
	c.out.nodes = append(c.out.nodes, n)
	return int32(len(c.out.nodes) - 1)
}

func (c *compiler) edge(from, to int32, why EdgeReason) {
	c.edges = append(c.edges, ref{from, to})
	c.why = append(c.why, why)
}

// dataEdge is an edge between graph items, with the reasons analyzeGraph found.
func (c *compiler) dataEdge(from, to int32, w edgeWhy) {
	if len(w.names) > 0 {
		if c.data == nil {
			c.data = map[int][]string{}
		}
		c.data[len(c.edges)] = w.names
	}
	c.edge(from, to, w.reason)
}

func atomExports(idx int32, prov []string) map[string][]ref {
	if len(prov) == 0 {
		return nil
	}
	m := make(map[string][]ref, len(prov))
	for i, p := range prov {
		out := int32(i)
		if len(prov) == 1 {
			out = -1
		}
		m[p] = []ref{{idx, out}}
	}
	return m
}

// emitAtom appends an atom's node and resolves its arguments in the
// current scope.
func (c *compiler) emitAtom(a *anode, scope int32, flowName string) int32 {
	var spec Spec
	if a.isRetry {
		spec = a.retrier.Spec()
	} else {
		spec = a.task.Spec()
	}
	spec.Name = a.name
	s := &spec
	n := Node{Name: a.name, Version: s.Version, Task: a.task, Retry: a.retrier,
		Timeout: s.Timeout, Provides: s.Provides, Flow: flowName, Scope: scope, End: -1}
	if a.isRetry {
		n.Kind = NodeRetry
	}
	nargs := len(s.Requires) + len(s.Optional)
	if nargs+len(s.RevertRequires) > 0 {
		args := make([]Arg, 0, nargs+len(s.RevertRequires))
		names := make([]string, 0, cap(args))
		resolve := func(arg string, optional, revert bool) {
			if slices.Contains(names, arg) {
				return
			}
			ar := Arg{Name: arg, Key: s.key(arg), Optional: optional}
			if v, ok := s.Inject[arg]; ok {
				ar.Source, ar.Value = FromInject, v
			} else if refs, ok := c.lookup(ar.Key, optional); ok {
				if len(refs) > 1 {
					e := &AmbiguousError{Atom: a.name, Name: ar.Key}
					for _, r := range refs {
						e.Providers = append(e.Providers, c.out.nodes[r.node].Name)
					}
					sort.Strings(e.Providers)
					c.errs = append(c.errs, e)
				} else {
					ar.Source, ar.Node, ar.Out = FromNode, refs[0].node, refs[0].out
				}
			} else if _, ok := c.store[ar.Key]; ok {
				ar.Source = FromStore
				c.input(ar.Key)
			} else if optional {
				ar.Source = FromNone
			} else {
				c.missing = append(c.missing, Missing{Atom: a.name, Name: ar.Key, Revert: revert})
			}
			args = append(args, ar)
			names = append(names, arg)
		}
		for _, r := range s.Requires {
			resolve(r, false, false)
		}
		for _, r := range s.Optional {
			resolve(r, true, false)
		}
		nexec := len(args)
		for _, r := range s.RevertRequires {
			resolve(r, false, true)
		}
		n.Args, n.ArgNames, n.NExec = args, names, int32(nexec)
	}
	return c.newNode(n)
}

func (c *compiler) input(k string) {
	if c.inSeen == nil {
		c.inSeen = map[string]struct{}{}
	}
	if _, ok := c.inSeen[k]; !ok {
		c.inSeen[k] = struct{}{}
		c.inputs = append(c.inputs, k)
	}
}

// emit numbers the nodes of a (depth first, graph items in topological
// order), records its edges and returns its entry and exit nodes and the
// values it makes visible after it.
func (c *compiler) emit(a *anode, scope int32) (entry, exit int32, exports map[string][]ref) {
	if a.flow == nil {
		idx := c.emitAtom(a, scope, c.curFlow())
		c.index[a.name] = idx
		return idx, idx, atomExports(idx, a.prov)
	}
	f := a.flow
	c.frames = append(c.frames, frame{})
	fi := len(c.frames) - 1
	c.frames[fi].m = nil
	c.flowNames = append(c.flowNames, f.name)
	defer func() {
		c.frames = c.frames[:fi]
		c.flowNames = c.flowNames[:len(c.flowNames)-1]
	}()
	inner := scope
	start := int32(-1)
	var retryExp map[string][]ref
	if a.retry != nil {
		start = c.emitAtom(a.retry, scope, f.name)
		c.index[a.retry.name] = start
		inner = start
		retryExp = atomExports(start, a.retry.prov)
		c.frames[fi].m = cloneExports(retryExp)
	}
	switch f.pattern {
	case LinearPattern:
		entry, exit = start, start
		for _, k := range a.kids {
			e, x, exp := c.emit(k, inner)
			if exit >= 0 {
				c.edge(exit, e, EdgeOrder)
			} else {
				entry = e
			}
			exit = x
			if len(exp) > 0 {
				if c.frames[fi].m == nil {
					c.frames[fi].m = map[string][]ref{}
				}
				for k, v := range exp {
					c.frames[fi].m[k] = v
				}
			}
		}
		if entry < 0 {
			entry = c.newNode(Node{Name: f.name, Kind: NodeJoin, Flow: f.name, Scope: scope, End: -1})
			exit = entry
		}
		exports = c.frames[fi].m
	default:
		if start < 0 {
			start = c.newNode(Node{Name: f.name, Kind: NodeJoin, Flow: f.name, Scope: scope, End: -1})
		}
		entry = start
		var g *gframe
		if f.pattern == GraphPattern {
			g = &gframe{providers: map[string][]int{}, exports: make([]map[string][]ref, len(a.kids)), preds: a.gpreds}
			for i, k := range a.kids {
				for _, p := range k.prov {
					g.providers[p] = append(g.providers[p], i)
				}
			}
			c.frames[fi].graph = g
		}
		exits := make([]int32, len(a.kids))
		var los, his []int32 // the kids' node ranges, for gates
		if a.gdec != nil {
			los, his = make([]int32, len(a.kids)), make([]int32, len(a.kids))
		}
		hasSucc := make([]bool, len(a.kids))
		for i, k := range a.kids {
			c.frames[fi].kid = i
			lo := int32(len(c.out.nodes))
			e, x, exp := c.emit(k, inner)
			if los != nil {
				los[i], his[i] = lo, int32(len(c.out.nodes)-1)
			}
			exits[i] = x
			if g != nil {
				g.exports[i] = exp
				for _, p := range a.gpreds[i] {
					c.dataEdge(exits[p], e, a.gwhy[[2]int{p, i}])
					hasSucc[p] = true
				}
			}
			if g == nil || len(a.gpreds[i]) == 0 {
				c.edge(start, e, EdgeJoin)
			}
			for k, v := range exp {
				if exports == nil {
					exports = map[string][]ref{}
				}
				exports[k] = append(exports[k], v...)
			}
		}
		exit = c.newNode(Node{Name: f.name, Kind: NodeJoin, Flow: f.name, Scope: inner, End: -1})
		for i, x := range exits {
			if !hasSucc[i] {
				c.edge(x, exit, EdgeJoin)
			}
		}
		if len(a.kids) == 0 {
			c.edge(start, exit, EdgeJoin)
		}
		if los != nil {
			c.gates(a, los, his)
		}
		for k, v := range retryExp {
			if _, ok := exports[k]; !ok {
				if exports == nil {
					exports = map[string][]ref{}
				}
				exports[k] = v
			}
		}
	}
	if a.retry != nil {
		c.out.nodes[start].End = int32(len(c.out.nodes))
	}
	return entry, exit, exports
}

// gates attaches the deciders of a graph's links to the first node of their
// targets, with what each depth reaches.
func (c *compiler) gates(a *anode, los, his []int32) {
	succs := make([][]int, len(a.kids))
	for to, ps := range a.gpreds {
		for _, from := range ps {
			succs[from] = append(succs[from], to)
		}
	}
	isTask := func(k int) bool { return a.kids[k].flow == nil }
	for i, ds := range a.gdec {
		if len(ds) == 0 {
			continue
		}
		g := &Gate{Item: a.kids[i].name, Lo: los[i], Hi: his[i]}
		for _, d := range ds {
			g.Deciders = append(g.Deciders, GateDecider{Decider: d.decider, Depth: d.depth,
				From: a.kids[d.from].name, Lo: los[d.from], Hi: his[d.from]})
		}
		if !isTask(i) {
			// A subflow target is ignored whole, and nothing after it but
			// for DepthAll (TaskFlow ignores the subflow's first atoms and
			// what the depth reaches from them, inside the subflow).
			c.out.nodes[los[i]].Gate = g
			continue
		}
		for _, s := range succs[i] {
			if isTask(s) {
				g.Neighbors = append(g.Neighbors, los[s])
			}
		}
		// DepthFlow: the tasks after the target in this graph, through tasks.
		seen := map[int]bool{i: true}
		queue := []int{i}
		for len(queue) > 0 {
			k := queue[0]
			queue = queue[1:]
			for _, s := range succs[k] {
				if !seen[s] && isTask(s) {
					seen[s] = true
					g.Flow = append(g.Flow, los[s])
					queue = append(queue, s)
				}
			}
		}
		slices.Sort(g.Flow)
		c.out.nodes[los[i]].Gate = g
	}
}

func cloneExports(m map[string][]ref) map[string][]ref {
	if m == nil {
		return nil
	}
	out := make(map[string][]ref, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (c *compiler) curFlow() string {
	if len(c.flowNames) == 0 {
		return ""
	}
	return c.flowNames[len(c.flowNames)-1]
}

// csr turns the edge list into compressed successor and predecessor lists.
func (c *compiler) csr() {
	n := len(c.out.nodes)
	out := &c.out
	out.succOff = make([]int32, n+1)
	out.predOff = make([]int32, n+1)
	for _, e := range c.edges {
		out.succOff[e.node+1]++
		out.predOff[e.out+1]++
	}
	for i := range n {
		out.succOff[i+1] += out.succOff[i]
		out.predOff[i+1] += out.predOff[i]
	}
	out.succ = make([]int32, len(c.edges))
	out.succWhy = make([]EdgeReason, len(c.edges))
	out.pred = make([]int32, len(c.edges))
	sp := slices.Clone(out.succOff[:n])
	pp := slices.Clone(out.predOff[:n])
	for k, e := range c.edges {
		out.succ[sp[e.node]] = e.out
		out.succWhy[sp[e.node]] = c.why[k]
		if names, ok := c.data[k]; ok {
			if out.succData == nil {
				out.succData = map[int32][]string{}
			}
			out.succData[sp[e.node]] = names
		}
		sp[e.node]++
		out.pred[pp[e.out]] = e.node
		pp[e.out]++
	}
	c.edges, c.why, c.data = nil, nil, nil
}
