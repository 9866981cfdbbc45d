package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/ostask/ostask/flow"
)

// nstate is the run-time state of one node. Only the scheduling goroutine
// touches it.
type nstate struct {
	state    flow.State
	recorded flow.State // the state the storage holds (the compare-and-set base)
	// stale marks a node resumed in RUNNING or REVERTING: no job of this
	// run is working on it. Inside a revert region it is reverted at once
	// (a RUNNING one without running again); elsewhere a RUNNING one runs
	// again.
	stale bool
	// passed marks an IGNORE node the current revert region has passed:
	// it is not reverted, but what is before it waits for what is after it.
	passed   bool
	decision flow.Decision // retry nodes: the decision being carried out
	wait     int32         // predecessors not yet done (SUCCESS or IGNORE)
	rwait    int32         // successors in the revert region not yet clear
	region   int32         // the active revert region covering the node, or -1
	result   any
	failure  *flow.Failure
	rfail    *flow.Failure
	hist     flow.History
}

type jobKind uint8

const (
	jobExec jobKind = iota
	jobRevert
	jobDelay
)

type job struct {
	kind jobKind
	node int32
	in   flow.Inputs
	out  flow.Outcome
	hist flow.History
	d    time.Duration
}

type completion struct {
	kind   jobKind
	node   int32
	result any
	err    error
}

type regionKind uint8

const (
	regRetry    regionKind = iota // revert a retry's subflow, then run it again
	regEscalate                   // revert a retry's subflow with it, then defer to the parent
	regFinal                      // revert everything
)

// region is a range of nodes being reverted.
type region struct {
	lo, hi    int32
	kind      regionKind
	retry     int32
	remaining int32 // nodes not yet clear
	dead      bool  // superseded by a wider region
	rfailed   bool  // a revert in it failed
	failures  []*flow.Failure
}

type runner struct {
	e       *Engine
	cfg     *config
	c       *flow.Compiled
	nodes   []flow.Node
	st      []nstate
	since   []time.Time // per node, made when a listener first needs it
	values  map[string]any
	serial  bool
	workers int

	ctx     context.Context // the caller's
	sctx    context.Context // storage calls: never cancelled
	wctx    context.Context // Execute calls: cancelled by CancelOnFailure
	wcancel context.CancelFunc
	stop    chan struct{} // closed when stopping, to interrupt delays
	stopped bool

	ready    []int32
	head     int
	jobq     []job
	qhead    int
	inflight int
	jobs     chan job
	done     chan completion
	wg       sync.WaitGroup

	// Transitions decided but not yet written, and their announcements:
	// flush writes them (one SaveBatch with a Batcher) before the engine
	// acts on any of them, then announces them.
	batcher Batcher
	pend    []Transition
	pendEv  []Event
	pendAt  []int // pendEv[k] announces pend[pendAt[k]]

	regions        []region
	final          int32
	finalDone      bool
	stopping       bool
	cancelled      bool
	fatal          error
	flowState      flow.State
	flowSince      time.Time
	revertFailures []*flow.Failure
}

// Run runs the flow until it succeeds, is reverted, or is suspended, and
// returns nil, a *FlowError, or an error wrapping ErrSuspended.
//
// When the storage holds an unfinished run (suspended, cancelled, or cut
// short by a crash), Run resumes it. SUCCESS atoms keep their results. A
// revert that was under way continues: nothing runs again, a REVERTING
// atom reverts again, and an atom recorded RUNNING is reverted without
// running again (its Outcome is Interrupted). Outside a revert, a RUNNING
// atom runs again, so tasks must be idempotent (adopting what an earlier
// run made, e.g. through an idempotency key). A retry controller's recorded
// decision is carried out, never asked again, and a REVERTED atom returns
// to PENDING only when its controller decided to retry. A FAILURE atom
// whose controller had not decided yet is handed to it again.
//
// When the storage holds a finished run, Run records and announces
// nothing: it returns nil for a SUCCESS flow and the flow's *FlowError for
// a reverted one. A new run of the flow needs a new Storage.
func (e *Engine) Run(ctx context.Context) error {
	if !e.active.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer e.active.Store(false)
	e.suspend.Store(false)
	select {
	case <-e.wake:
	default:
	}
	r := &runner{e: e, cfg: &e.cfg, c: e.c, nodes: e.c.Nodes(), workers: e.cfg.workers, final: -1}
	r.serial = r.workers <= 1
	r.ctx = ctx
	r.sctx = context.WithoutCancel(ctx)
	r.wctx, r.wcancel = context.WithCancel(ctx)
	defer r.wcancel()
	r.stop = make(chan struct{})
	err := r.run()
	e.mu.Lock()
	e.state, e.st = r.flowState, r.st
	e.mu.Unlock()
	return err
}

func (r *runner) run() error {
	snap, err := r.cfg.storage.Load(r.sctx)
	if err != nil {
		return fmt.Errorf("engine: load: %w: %w", ErrStorage, err)
	}
	r.batcher, _ = r.cfg.storage.(Batcher)
	n := len(r.nodes)
	r.st = make([]nstate, n)
	if r.e.listening() {
		r.flowSince = r.cfg.clock.Now()
	}
	r.flowState = snap.Flow
	fresh := snap.Flow == flow.StatePending && len(snap.Atoms) == 0
	if fresh {
		if m, ok := r.cfg.storage.(interface{ reserve(int) }); ok {
			m.reserve(r.c.Atoms())
		}
		r.values = r.cfg.values
		r.pend = append(r.pend, Transition{Kind: TransitionValues, Values: r.values})
		for i := range r.st {
			r.st[i] = nstate{wait: int32(len(r.c.Pred(int32(i)))), region: -1}
			if r.st[i].wait == 0 {
				r.ready = append(r.ready, int32(i))
			}
		}
		if err := r.flowTo(flow.StateRunning); err != nil {
			return err
		}
	} else if err := r.resume(snap); err != nil || r.flowState.Terminal() {
		return err
	}
	if r.fatal == nil {
		r.loop()
	}
	return r.finish()
}

// resume rebuilds the run state from a snapshot and continues what was
// under way: a revert, a retry controller's decision, or running forward.
func (r *runner) resume(snap Snapshot) error {
	// The recorded values are the run's; the caller's fill in what the
	// storage does not keep (a secret a durable store refuses to write).
	r.values = snap.Values
	for k, v := range r.cfg.values {
		if _, ok := r.values[k]; !ok {
			if r.values == nil {
				r.values = make(map[string]any, len(r.cfg.values))
			}
			r.values[k] = v
		}
	}
	failures := r.load(snap)
	switch snap.Flow {
	case flow.StateSuccess:
		return nil
	case flow.StateReverted, flow.StateRevertFailure:
		return &FlowError{Flow: r.c.Name(), State: snap.Flow, Failures: failures, RevertFailures: r.revertFailures}
	}
	r.countWaits()
	// A clean resume goes back to work; recovering from a crash (or an
	// engine failure) announces RESUMING first.
	if snap.Flow != flow.StateSuspended && snap.Flow != flow.StateResuming {
		if err := r.flowTo(flow.StateResuming); err != nil {
			return err
		}
	}
	if snap.Flow == flow.StateReverting || r.reverting() {
		if err := r.flowTo(flow.StateReverting); err != nil {
			return err
		}
		r.startRegion(0, int32(len(r.st)), regFinal, -1, failures)
		return nil
	}
	if err := r.flowTo(flow.StateRunning); err != nil {
		return err
	}
	r.carryOutDecisions()
	r.redecide()
	if r.final >= 0 || r.fatal != nil {
		return nil
	}
	for i := range r.st {
		s := &r.st[i]
		if s.region >= 0 {
			continue
		}
		switch s.state {
		case flow.StateRunning:
			s.state, s.stale = flow.StatePending, false // runs again; RUNNING is not recorded twice
		case flow.StateFailure, flow.StateReverting, flow.StateReverted, flow.StateRevertFailure:
			// Reverted, or failed, for no decision a controller has left
			// on record: continue reverting rather than roll forward.
			r.startFinal(failures)
			return nil
		}
	}
	for i := range r.st {
		s := &r.st[i]
		if s.region < 0 && s.wait == 0 && s.state == flow.StatePending {
			r.ready = append(r.ready, int32(i))
		}
	}
	return nil
}

// load sets the nodes' states from the snapshot's records and returns the
// recorded failures, in node order.
func (r *runner) load(snap Snapshot) (failures []*flow.Failure) {
	for i := range r.st {
		s := &r.st[i]
		s.region = -1
		nd := &r.nodes[i]
		if nd.Kind == flow.NodeJoin {
			continue
		}
		rec, ok := snap.Atoms[nd.Name]
		if !ok {
			continue
		}
		if rec.Failure != nil {
			failures = append(failures, rec.Failure)
		}
		s.recorded, s.state = rec.State, rec.State
		s.result, s.failure, s.rfail, s.hist, s.decision = rec.Result, rec.Failure, rec.RevertFailure, rec.History, rec.Decision
		switch rec.State {
		case flow.StateRunning, flow.StateReverting:
			s.stale = true
		case flow.StateRevertFailure:
			r.revertFailures = append(r.revertFailures, rec.RevertFailure)
		}
	}
	return failures
}

// countWaits counts, for every node, the predecessors it still waits for.
// A node's successors wait for it until it is done and has let them go: an
// IGNORE node still waiting for its own predecessors (a crash in the middle
// of ignoring) lets them go when it is reached.
func (r *runner) countWaits() {
	passed := make([]bool, len(r.st))
	for i := range r.st {
		s := &r.st[i]
		preds := r.c.Pred(int32(i))
		for _, p := range preds {
			if !passed[p] {
				s.wait++
			}
		}
		// Joins are done when everything before them is, except the entry
		// of an item whose deciders have not been asked.
		if r.nodes[i].Kind == flow.NodeJoin && s.wait == 0 && len(preds) > 0 && r.nodes[i].Gate == nil {
			s.state, s.recorded = flow.StateSuccess, flow.StateSuccess
		}
		passed[i] = s.state == flow.StateSuccess || s.state == flow.StateIgnore && s.wait == 0
	}
}

// carryOutDecisions continues the retry controllers' recorded decisions,
// outermost first: an outer region covers the inner ones.
func (r *runner) carryOutDecisions() {
	for i := range r.st {
		i := int32(i)
		s := &r.st[i]
		nd := &r.nodes[i]
		if nd.Kind != flow.NodeRetry || s.region >= 0 || r.final >= 0 || r.fatal != nil {
			continue
		}
		switch {
		case s.state == flow.StateRetrying:
			r.restart(i)
		case s.decision == flow.Retry && s.state == flow.StateSuccess:
			r.startRegion(i+1, nd.End, regRetry, i, r.attemptFailures(i))
		case s.decision == flow.Revert && (s.state == flow.StateSuccess || s.state == flow.StateReverting || s.state == flow.StateReverted):
			r.startRegion(i, nd.End, regEscalate, i, r.attemptFailures(i))
		}
	}
}

// redecide hands the failures whose controller had not decided yet back to
// it, together with the other undecided failures of the same scope.
func (r *runner) redecide() {
	for i := range r.st {
		s := &r.st[i]
		if s.state != flow.StateFailure || s.region >= 0 || r.final >= 0 || r.fatal != nil {
			continue
		}
		scope := r.nodes[i].Scope
		var fs []*flow.Failure
		for j := i; j < len(r.st); j++ {
			if o := &r.st[j]; o.state == flow.StateFailure && o.region < 0 && r.nodes[j].Scope == scope {
				fs = append(fs, o.failure)
			}
		}
		r.escalate(scope, fs)
	}
}

// reverting reports whether the recorded atoms show that the whole flow was
// being reverted: a revert failed, a controller decided REVERT_ALL, a
// top-level atom (no controller above it) failed or was reverted, or a
// top-level controller gave up (its REVERT leads to the whole flow).
func (r *runner) reverting() bool {
	for i := range r.st {
		s := &r.st[i]
		nd := &r.nodes[i]
		if nd.Kind == flow.NodeJoin {
			continue
		}
		switch {
		case s.state == flow.StateRevertFailure, s.decision == flow.RevertAll:
			return true
		case nd.Scope >= 0:
		case s.state == flow.StateFailure, s.state == flow.StateReverting, s.state == flow.StateReverted,
			s.decision == flow.Revert:
			return true
		}
	}
	return false
}

// attemptFailures returns the failures of retry node rn's current attempt:
// those its history holds, plus any failure recorded on the atoms of its
// subflow that the history missed (noted while a region was already under
// way, and lost with the crash).
func (r *runner) attemptFailures(rn int32) []*flow.Failure {
	fs := slices.Clone(r.st[rn].hist.Last().Failures)
	for i := rn + 1; i < r.nodes[rn].End; i++ {
		f := r.st[i].failure
		if f == nil || slices.ContainsFunc(fs, func(g *flow.Failure) bool { return g.Atom == f.Atom }) {
			continue
		}
		r.noteFailure(rn, f)
		fs = append(fs, f)
	}
	return fs
}

// done reports whether a node in state s lets its successors start.
func done(s flow.State) bool { return s == flow.StateSuccess || s == flow.StateIgnore }

// loop schedules until nothing is left to do.
func (r *runner) loop() {
	if !r.serial {
		w := max(1, min(r.workers, r.c.Atoms()))
		r.workers = w
		r.jobs = make(chan job, w)
		r.done = make(chan completion, w)
		for range w {
			r.wg.Add(1)
			go r.worker()
		}
		defer func() {
			close(r.jobs)
			r.wg.Wait()
		}()
	}
	ctxDone := r.ctx.Done()
	var batch []job
	for {
		if r.fatal != nil {
			r.halt()
		}
		if !r.stopping && (r.e.suspend.Load() || r.ctx.Err() != nil) {
			r.requestStop()
		}
		if r.serial {
			j, ok := r.nextJob()
			if !ok {
				return // finish records what is left with the flow's end
			}
			r.flush()
			if !r.stopNow() {
				r.complete(r.do(j))
			} // else recorded, not started: stop at the top
			continue
		}
		// Record every start decided now in one write, then hand them out.
		for r.inflight+len(batch) < r.workers {
			j, ok := r.nextJob()
			if !ok {
				break
			}
			batch = append(batch, j)
		}
		if len(batch) == 0 && r.inflight == 0 {
			// The run ends: finish records what is left (the last
			// completions) with the flow's end, in one write.
			return
		}
		r.flush()
		if len(batch) > 0 && r.stopNow() && !r.stopping {
			// Recorded, not started: stop at the top.
			clear(batch)
			batch = batch[:0]
			continue
		}
		for _, j := range batch {
			r.inflight++
			r.jobs <- j
		}
		clear(batch)
		batch = batch[:0]
		select {
		case c := <-r.done:
			r.inflight--
			r.complete(c)
			// Collect what else has finished, to record it together.
			for more := true; more; {
				select {
				case c := <-r.done:
					r.inflight--
					r.complete(c)
				default:
					more = false
				}
			}
		case <-r.e.wake:
		case <-ctxDone:
			ctxDone = nil
		}
	}
}

// stopNow reports whether the jobs just recorded must not start after all:
// a listener told of the transitions suspended the engine or cancelled its
// context, or the write failed. Their atoms stay RUNNING or REVERTING on
// record, and a resume runs or reverts them then.
func (r *runner) stopNow() bool {
	return r.fatal != nil || r.e.suspend.Load() || r.ctx.Err() != nil
}

// requestStop stops scheduling for a suspension or a cancellation.
func (r *runner) requestStop() {
	if r.ctx.Err() != nil {
		r.cancelled = true
	}
	r.halt()
	if r.fatal == nil && (r.flowState == flow.StateRunning || r.flowState == flow.StateReverting) {
		_ = r.flowTo(flow.StateSuspending)
	}
}

func (r *runner) halt() {
	r.stopping = true
	if !r.stopped {
		r.stopped = true
		close(r.stop)
	}
}

func (r *runner) worker() {
	defer r.wg.Done()
	for j := range r.jobs {
		r.done <- r.do(j)
	}
}

// nextJob returns the next job to hand out, recording its transition first.
// Queued reverts and delays go before new executions.
func (r *runner) nextJob() (job, bool) {
	for !r.stopping && r.fatal == nil {
		if r.qhead < len(r.jobq) {
			j := r.jobq[r.qhead]
			r.jobq[r.qhead] = job{}
			r.qhead++
			if r.qhead == len(r.jobq) {
				r.jobq, r.qhead = r.jobq[:0], 0
			}
			if r.prepare(&j) {
				return j, true
			}
			continue
		}
		if r.head >= len(r.ready) {
			break
		}
		i := r.ready[r.head]
		r.head++
		if r.head == len(r.ready) {
			r.ready, r.head = r.ready[:0], 0
		}
		s := &r.st[i]
		if s.wait != 0 || s.region >= 0 || r.final >= 0 {
			continue
		}
		switch s.state {
		case flow.StateIgnore:
			r.propagate(i)
			continue
		case flow.StatePending, flow.StateRetrying:
		default:
			continue
		}
		if r.nodes[i].Gate != nil && s.state == flow.StatePending && !r.gate(i) {
			continue
		}
		if r.nodes[i].Kind == flow.NodeJoin {
			s.state = flow.StateSuccess
			r.propagate(i)
			continue
		}
		j := job{kind: jobExec, node: i}
		if r.prepare(&j) {
			return j, true
		}
	}
	return job{}, false
}

// gate asks the deciders of the links into the item starting at node i
// and reports whether it may run. On a "no" it ignores what the widest
// depth among the noes reaches, and lets the successors of node i go on.
func (r *runner) gate(i int32) bool {
	g := r.nodes[i].Gate
	var results map[string]any
	nay, widest := false, flow.DepthAtom
	for _, d := range g.Deciders {
		if r.ignored(d.Lo, d.Hi) {
			continue // as in TaskFlow, an ignored source has no say
		}
		if results == nil {
			results = r.gateResults(g)
		}
		ok, err := callDecider(d.Decider, results)
		if err != nil {
			r.escalate(r.nodes[i].Scope, []*flow.Failure{flow.NewFailure(g.Item, err)})
			return false
		}
		if !ok {
			nay, widest = true, min(widest, d.Depth)
		}
	}
	if !nay {
		return true
	}
	if r.ignore(g, widest) {
		r.propagate(i)
	}
	return false
}

func callDecider(d flow.Decider, results map[string]any) (ok bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &flow.PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return d(results), nil
}

// ignored reports whether every atom of nodes [lo, hi] is IGNORE.
func (r *runner) ignored(lo, hi int32) bool {
	for k := lo; k <= hi; k++ {
		if r.nodes[k].Kind != flow.NodeJoin && r.st[k].state != flow.StateIgnore {
			return false
		}
	}
	return true
}

// gateResults gathers the results of the SUCCESS atoms of g's sources.
func (r *runner) gateResults(g *flow.Gate) map[string]any {
	out := map[string]any{}
	for _, d := range g.Deciders {
		for k := d.Lo; k <= d.Hi; k++ {
			if r.nodes[k].Kind != flow.NodeJoin && r.st[k].state == flow.StateSuccess {
				out[r.nodes[k].Name] = r.st[k].result
			}
		}
	}
	return out
}

// ignore moves what depth d of gate g reaches to IGNORE, the target's first
// node last: once it is recorded, so is the rest, and a resume that finds
// it still PENDING asks the deciders again. It reports whether it got
// through.
func (r *runner) ignore(g *flow.Gate, d flow.Depth) bool {
	var reach []int32
	for k := g.Lo + 1; k <= g.Hi; k++ {
		reach = append(reach, k)
	}
	switch d {
	case flow.DepthAll:
		seen := make(map[int32]bool)
		stack := []int32{}
		for k := g.Lo; k <= g.Hi; k++ {
			seen[k] = true
			stack = append(stack, k)
		}
		for len(stack) > 0 {
			k := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, sc := range r.c.Succ(k) {
				if !seen[sc] {
					seen[sc] = true
					reach = append(reach, sc)
					stack = append(stack, sc)
				}
			}
		}
	case flow.DepthFlow:
		reach = append(reach, g.Flow...)
	case flow.DepthNeighbors:
		reach = append(reach, g.Neighbors...)
	}
	for _, k := range append(reach, g.Lo) {
		s := &r.st[k]
		if s.state != flow.StatePending {
			continue
		}
		if r.nodes[k].Kind == flow.NodeJoin {
			s.state = flow.StateIgnore
		} else if r.move(k, flow.StateIgnore) != nil {
			return false
		}
	}
	return true
}

// prepare checks a job is still wanted, records its transition and fills
// in its inputs. It returns false for a job to drop.
func (r *runner) prepare(j *job) bool {
	i := j.node
	s := &r.st[i]
	nd := &r.nodes[i]
	switch j.kind {
	case jobExec:
		if s.region >= 0 || (s.state != flow.StatePending && s.state != flow.StateRetrying) {
			return false
		}
		in, err := r.inputs(nd.Args[:nd.NExec], nd.ArgNames[:nd.NExec], false)
		if r.move(i, flow.StateRunning) != nil {
			return false
		}
		if err != nil { // an output the provider did not produce
			r.complete(completion{kind: jobExec, node: i, err: err})
			return false
		}
		j.in, j.hist = in, s.hist
	case jobRevert:
		if s.region < 0 || !r.revertible(i) {
			return false
		}
		interrupted := s.stale && s.state == flow.StateRunning
		s.stale = false
		if r.move(i, flow.StateReverting) != nil {
			return false
		}
		j.in, _ = r.inputs(nd.Args, nd.ArgNames, true)
		j.out = flow.Outcome{Result: s.result, Failure: s.failure, Interrupted: interrupted}
		if r.final >= 0 {
			j.out.FlowFailures = r.regions[r.final].failures
		} else {
			j.out.FlowFailures = r.regions[s.region].failures
		}
		j.hist = s.hist
	case jobDelay:
		if s.region >= 0 || s.state != flow.StateRetrying {
			return false
		}
	}
	return true
}

func (r *runner) inputs(args []flow.Arg, names []string, lenient bool) (flow.Inputs, error) {
	if len(args) == 0 {
		return flow.Inputs{}, nil
	}
	vals := make([]any, len(args))
	var err error
	for k := range args {
		a := &args[k]
		switch a.Source {
		case flow.FromNode:
			p := &r.st[a.Node]
			v, ok := flow.Output(p.result, r.nodes[a.Node].Provides, int(a.Out))
			if !ok || p.state != flow.StateSuccess && !lenient {
				v = flow.Absent()
				if !a.Optional && err == nil && !lenient {
					err = fmt.Errorf("%w: %q (output of %q)", flow.ErrNotFound, a.Key, r.nodes[a.Node].Name)
				}
			}
			vals[k] = v
		case flow.FromStore:
			v, ok := r.values[a.Key]
			if !ok {
				v = flow.Absent()
				if !a.Optional && err == nil && !lenient {
					err = fmt.Errorf("%w: store value %q", flow.ErrNotFound, a.Key)
				}
			}
			vals[k] = v
		case flow.FromInject:
			vals[k] = a.Value
		default:
			vals[k] = flow.Absent()
		}
	}
	return flow.MakeInputs(names, vals), err
}

// do runs a job: in a worker, or inline for the serial engine.
func (r *runner) do(j job) (c completion) {
	c.kind, c.node = j.kind, j.node
	nd := &r.nodes[j.node]
	defer func() {
		if p := recover(); p != nil {
			c.result, c.err = nil, &flow.PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	switch j.kind {
	case jobExec:
		ctx := r.wctx
		if nd.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, nd.Timeout)
			defer cancel()
		}
		if nd.Kind == flow.NodeRetry {
			c.result, c.err = nd.Retry.Execute(ctx, j.in, j.hist)
		} else {
			c.result, c.err = nd.Task.Execute(ctx, j.in)
		}
	case jobRevert:
		if nd.Kind == flow.NodeRetry {
			if rv, ok := nd.Retry.(flow.RetryReverter); ok {
				c.err = rv.Revert(r.sctx, j.in, j.hist)
			}
		} else {
			c.err = nd.Task.Revert(r.sctx, j.in, j.out)
		}
	case jobDelay:
		select {
		case <-r.cfg.clock.After(j.d):
		case <-r.stop:
			c.err = ErrSuspended
		case <-r.ctx.Done():
			c.err = r.ctx.Err()
		}
	}
	return c
}

// complete handles a finished job.
func (r *runner) complete(c completion) {
	i := c.node
	s := &r.st[i]
	nd := &r.nodes[i]
	switch c.kind {
	case jobDelay:
		if c.err == nil && s.state == flow.StateRetrying && s.region < 0 {
			r.queue(job{kind: jobExec, node: i})
		}
	case jobRevert:
		if c.err == nil {
			if r.move(i, flow.StateReverted) != nil {
				return
			}
		} else {
			s.rfail = flow.NewFailure(nd.Name, c.err)
			if r.move(i, flow.StateRevertFailure) != nil {
				return
			}
			r.revertFailures = append(r.revertFailures, s.rfail)
			r.regions[s.region].rfailed = true
		}
		r.cleared(i)
	case jobExec:
		if c.err != nil && r.ctx.Err() != nil {
			// interrupted by the caller: stays RUNNING, runs again on resume
			if !r.stopping {
				r.requestStop()
			}
			return
		}
		if c.err == nil && len(nd.Provides) > 1 {
			// A result that cannot be split fails its own atom, not the
			// consumers of the outputs it lacks.
			if err := nd.CheckResult(c.result); err != nil {
				c.result, c.err = nil, err
			}
		}
		if c.err == nil {
			s.result = c.result
			if nd.Kind == flow.NodeRetry {
				s.hist = flow.History{Attempts: append(slices.Clip(s.hist.Attempts), flow.Attempt{Result: c.result})}
			}
			if r.move(i, flow.StateSuccess) != nil {
				return
			}
			if s.region >= 0 {
				r.revertIfReady(i)
			} else {
				r.propagate(i)
			}
			return
		}
		s.failure = flow.NewFailure(nd.Name, c.err)
		if r.move(i, flow.StateFailure) != nil {
			return
		}
		if s.region >= 0 {
			reg := &r.regions[s.region]
			reg.failures = append(reg.failures, s.failure)
			if reg.kind != regFinal && r.final < 0 {
				r.noteFailure(reg.retry, s.failure)
			}
			r.revertIfReady(i)
			return
		}
		r.escalate(nd.Scope, []*flow.Failure{s.failure})
	}
}

func (r *runner) propagate(i int32) {
	for _, sc := range r.c.Succ(i) {
		s := &r.st[sc]
		if s.wait--; s.wait == 0 {
			r.ready = append(r.ready, sc)
		}
	}
}

func (r *runner) queue(j job) { r.jobq = append(r.jobq, j) }

// revertible reports whether node i may start reverting now: it has an
// outcome, or it was resumed in RUNNING or REVERTING with no job on it.
func (r *runner) revertible(i int32) bool {
	s := &r.st[i]
	switch s.state {
	case flow.StateSuccess, flow.StateFailure, flow.StateRetrying:
		return true
	case flow.StateRunning, flow.StateReverting:
		return s.stale
	}
	return false
}

// needsRevert reports whether a node in state s must be cleared before
// what is before it reverts. IGNORE nodes never revert, but atoms after
// them may have run: they are passed through.
func needsRevert(s flow.State) bool {
	switch s {
	case flow.StateSuccess, flow.StateFailure, flow.StateRunning, flow.StateReverting, flow.StateRetrying, flow.StateIgnore:
		return true
	}
	return false
}

func (r *runner) revertIfReady(i int32) {
	s := &r.st[i]
	if s.rwait != 0 {
		return
	}
	if s.state == flow.StateIgnore {
		if !s.passed {
			s.passed = true
			r.cleared(i)
		}
		return
	}
	if !r.revertible(i) {
		return
	}
	if r.nodes[i].Kind == flow.NodeJoin {
		s.state = flow.StateReverted
		r.cleared(i)
		return
	}
	r.queue(job{kind: jobRevert, node: i})
}

// cleared is called when node i no longer needs reverting.
func (r *runner) cleared(i int32) {
	id := r.st[i].region
	reg := &r.regions[id]
	for _, p := range r.c.Pred(i) {
		ps := &r.st[p]
		if ps.region == id {
			if ps.rwait--; ps.rwait == 0 {
				r.revertIfReady(p)
			}
		}
	}
	if reg.remaining--; reg.remaining == 0 {
		r.finishRegion(id)
	}
}

// noteFailure adds a failure to the current attempt of retry node rn.
func (r *runner) noteFailure(rn int32, f *flow.Failure) {
	s := &r.st[rn]
	at := slices.Clone(s.hist.Attempts)
	if len(at) == 0 {
		at = append(at, flow.Attempt{})
	}
	last := &at[len(at)-1]
	last.Failures = append(slices.Clip(last.Failures), f)
	s.hist = flow.History{Attempts: at}
}

// escalate hands failures to the retry controller at scope (or reverts
// everything when there is none).
func (r *runner) escalate(scope int32, failures []*flow.Failure) {
	if r.final >= 0 {
		reg := &r.regions[r.final]
		reg.failures = append(reg.failures, failures...)
		return
	}
	if scope < 0 {
		r.startFinal(failures)
		return
	}
	for _, f := range failures {
		r.noteFailure(scope, f)
	}
	s := &r.st[scope]
	nd := &r.nodes[scope]
	in, _ := r.inputs(nd.Args[:nd.NExec], nd.ArgNames[:nd.NExec], true)
	d := r.decide(nd.Retry, in, s.hist)
	if d != flow.Retry && d != flow.Revert {
		d = flow.RevertAll
	}
	// Record the decision, with the history holding the failures, before
	// acting on it: a resume carries it out instead of asking again.
	s.decision = d
	if r.save(scope, s.state) != nil {
		return
	}
	switch d {
	case flow.Retry:
		r.startRegion(scope+1, nd.End, regRetry, scope, failures)
	case flow.Revert:
		r.startRegion(scope, nd.End, regEscalate, scope, failures)
	default:
		r.startFinal(failures)
	}
}

func (r *runner) decide(rt flow.Retrier, in flow.Inputs, h flow.History) (d flow.Decision) {
	defer func() {
		if p := recover(); p != nil {
			r.cfg.logger.Error("engine: retry controller panicked in OnFailure; reverting all", "panic", p)
			d = flow.RevertAll
		}
	}()
	return rt.OnFailure(in, h)
}

func (r *runner) startFinal(failures []*flow.Failure) {
	if r.cfg.cancelOnFailure {
		r.wcancel()
	}
	if r.flowState == flow.StateRunning {
		if r.flowTo(flow.StateReverting) != nil {
			return
		}
	}
	r.startRegion(0, int32(len(r.st)), regFinal, -1, failures)
}

// startRegion starts reverting nodes [lo, hi) in reverse dependency order.
func (r *runner) startRegion(lo, hi int32, kind regionKind, rn int32, failures []*flow.Failure) {
	id := int32(len(r.regions))
	var inherited []*flow.Failure
	for i := lo; i < hi; i++ {
		if old := r.st[i].region; old >= 0 && !r.regions[old].dead {
			r.regions[old].dead = true
			inherited = append(inherited, r.regions[old].failures...)
		}
	}
	r.regions = append(r.regions, region{lo: lo, hi: hi, kind: kind, retry: rn,
		failures: append(inherited, failures...)})
	if kind == regFinal {
		r.final = id
	}
	var remaining int32
	for i := hi - 1; i >= lo; i-- {
		s := &r.st[i]
		s.region, s.passed = id, false
		var cnt int32
		for _, sc := range r.c.Succ(i) {
			if sc < hi && needsRevert(r.st[sc].state) {
				cnt++
			}
		}
		s.rwait = cnt
		if needsRevert(s.state) {
			remaining++
		}
	}
	r.regions[id].remaining = remaining
	if remaining == 0 {
		r.finishRegion(id)
		return
	}
	for i := hi - 1; i >= lo; i-- {
		if r.st[i].rwait == 0 && r.st[i].region == id {
			r.revertIfReady(i)
		}
	}
}

func (r *runner) finishRegion(id int32) {
	reg := &r.regions[id]
	if reg.dead {
		return
	}
	reg.dead = true
	switch {
	case reg.kind == regFinal:
		r.finalDone = true
		return
	case reg.rfailed:
		// cannot retry or defer over a failed revert: give up
		for i := reg.lo; i < reg.hi; i++ {
			r.st[i].region = -1
		}
		r.startFinal(reg.failures)
		return
	}
	for i := reg.lo; i < reg.hi; i++ {
		r.st[i].region = -1
	}
	if reg.kind == regEscalate {
		r.escalate(r.nodes[reg.retry].Scope, reg.failures)
		return
	}
	// regRetry: the decision is carried out. Record the next attempt
	// (RETRYING) before resetting the subflow, so that a crash in between
	// resumes into that attempt and no other.
	rn := reg.retry
	r.st[rn].decision = 0
	if r.move(rn, flow.StateRetrying) != nil {
		return
	}
	r.restart(rn)
}

// restart resets the subflow of retry node rn, which is RETRYING, and
// queues its next attempt.
func (r *runner) restart(rn int32) {
	for i := rn + 1; i < r.nodes[rn].End; i++ {
		s := &r.st[i]
		s.wait = int32(len(r.c.Pred(i)))
		s.result, s.failure, s.rfail, s.stale = nil, nil, nil, false
		if r.nodes[i].Kind == flow.NodeRetry {
			s.hist, s.decision = flow.History{}, 0 // a nested controller starts afresh
		}
		switch s.state {
		case flow.StateReverted, flow.StateIgnore:
			if r.nodes[i].Kind == flow.NodeJoin {
				s.state = flow.StatePending
			} else if r.move(i, flow.StatePending) != nil {
				return
			}
		}
	}
	var d time.Duration
	if dl, ok := r.nodes[rn].Retry.(flow.Delayer); ok {
		d = dl.Delay(r.st[rn].hist)
	}
	if d > 0 {
		r.queue(job{kind: jobDelay, node: rn, d: d})
	} else {
		r.queue(job{kind: jobExec, node: rn})
	}
}

// move records and announces an atom's transition.
func (r *runner) move(i int32, to flow.State) error {
	s := &r.st[i]
	nd := &r.nodes[i]
	m := flow.MachineTask
	if nd.Kind == flow.NodeRetry {
		m = flow.MachineRetry
	}
	if s.recorded == to { // resumed in this state: not recorded nor announced twice
		s.state = to
		return nil
	}
	if err := flow.Transition(m, s.state, to); err != nil {
		r.fatal = fmt.Errorf("engine: atom %q: %w", nd.Name, err)
		return r.fatal
	}
	from := s.state
	s.state = to
	r.save(i, from)
	if r.e.listening() {
		r.announce(i, from, to)
	}
	return nil
}

// save records node i's current state, expecting the stored state to be
// the last one recorded. The write happens at the next flush, before the
// engine acts on the new state.
func (r *runner) save(i int32, _ flow.State) error {
	s := &r.st[i]
	nd := &r.nodes[i]
	rec := AtomRecord{Name: nd.Name, Version: nd.Version, State: s.state, Result: s.result,
		Failure: s.failure, RevertFailure: s.rfail}
	if nd.Kind == flow.NodeRetry {
		rec.History, rec.Decision = s.hist, s.decision
	}
	r.pend = append(r.pend, Transition{Kind: TransitionAtom, From: s.recorded, Atom: rec})
	s.recorded = s.state
	return nil
}

// flush writes the pending transitions and announces them: with a
// Batcher in one write, then every event; otherwise one save at a time,
// each followed by its event, so that a listener reacting to one sees
// nothing recorded after it yet. A storage error stops the run: nothing
// more is recorded, and what was written can be resumed.
func (r *runner) flush() {
	if len(r.pend) == 0 {
		return
	}
	if errors.Is(r.fatal, ErrStorage) {
		r.dropPending()
		return
	}
	if err := r.write(); err != nil {
		r.fatal = err
	}
	r.dropPending()
}

func (r *runner) dropPending() {
	clear(r.pend)
	r.pend = r.pend[:0]
	clear(r.pendEv)
	r.pendEv, r.pendAt = r.pendEv[:0], r.pendAt[:0]
}

// announceUpTo announces the pending events of transitions [.., k], from
// event *next on.
func (r *runner) announceUpTo(k int, next *int) {
	for ; *next < len(r.pendEv) && r.pendAt[*next] <= k; *next++ {
		r.notify(r.pendEv[*next])
	}
}

func (r *runner) write() error {
	next := 0
	if r.batcher != nil {
		if err := r.batcher.SaveBatch(r.sctx, r.pend); err != nil {
			return fmt.Errorf("engine: record %d transitions: %w: %w", len(r.pend), ErrStorage, err)
		}
		r.announceUpTo(len(r.pend), &next)
		return nil
	}
	st := r.cfg.storage
	for k := range r.pend {
		t := &r.pend[k]
		var err error
		switch t.Kind {
		case TransitionValues:
			if err = st.SaveValues(r.sctx, t.Values); err != nil {
				err = fmt.Errorf("engine: save values: %w: %w", ErrStorage, err)
			}
		case TransitionFlow:
			if err = st.SaveFlow(r.sctx, t.From, t.To); err != nil {
				err = fmt.Errorf("engine: record flow %s: %w: %w", t.To, ErrStorage, err)
			}
		case TransitionAtom:
			if err = st.SaveAtom(r.sctx, t.From, t.Atom); err != nil {
				err = fmt.Errorf("engine: record atom %q %s: %w: %w", t.Atom.Name, t.Atom.State, ErrStorage, err)
			}
		}
		if err != nil {
			return err
		}
		r.announceUpTo(k, &next)
	}
	return nil
}

func (r *runner) announce(i int32, from, to flow.State) {
	now := r.cfg.clock.Now()
	if r.since == nil {
		r.since = make([]time.Time, len(r.nodes))
	}
	s := &r.st[i]
	nd := &r.nodes[i]
	ev := Event{Flow: r.c.Name(), Atom: nd.Name, Kind: nd.Kind, From: from, To: to, Time: now, Engine: r.e}
	if !r.since[i].IsZero() {
		ev.Elapsed = now.Sub(r.since[i])
	}
	r.since[i] = now
	switch to {
	case flow.StateSuccess:
		ev.Result = s.result
	case flow.StateFailure:
		ev.Failure = s.failure
	case flow.StateRevertFailure:
		ev.Failure = s.rfail
	}
	r.later(ev)
}

// later queues ev, the announcement of the transition just recorded.
func (r *runner) later(ev Event) {
	r.pendEv = append(r.pendEv, ev)
	r.pendAt = append(r.pendAt, len(r.pend)-1)
}

func (r *runner) notify(ev Event) {
	for _, l := range r.e.listeners() {
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.cfg.logger.Error("engine: listener panicked", "panic", p, "stack", string(debug.Stack()))
				}
			}()
			l.l.OnEvent(ev)
		}()
	}
}

// flowTo records and announces a flow transition.
func (r *runner) flowTo(to flow.State) error {
	from := r.flowState
	if err := flow.FlowTransition(from, to); err != nil {
		r.fatal = fmt.Errorf("engine: %w", err)
		return r.fatal
	}
	r.pend = append(r.pend, Transition{Kind: TransitionFlow, From: from, To: to})
	r.flowState = to
	if r.e.listening() {
		now := r.cfg.clock.Now()
		ev := Event{Flow: r.c.Name(), From: from, To: to, Time: now, Engine: r.e}
		if !r.flowSince.IsZero() {
			ev.Elapsed = now.Sub(r.flowSince)
		}
		r.flowSince = now
		if to.Terminal() && r.final >= 0 {
			ev.Failures = r.regions[r.final].failures
			ev.RevertFailures = r.revertFailures
		}
		r.later(ev)
	}
	return nil
}

// settle records and announces the flow's final state.
func (r *runner) settle(to flow.State) error {
	if err := r.flowTo(to); err != nil {
		return err
	}
	r.flush()
	return r.fatal
}

// finish decides the flow's final state once the loop is over.
func (r *runner) finish() error {
	name := r.c.Name()
	if r.fatal != nil {
		fe := &FlowError{Flow: name, State: flow.StateFailure, Err: r.fatal, RevertFailures: r.revertFailures}
		if r.final >= 0 {
			fe.Failures = r.regions[r.final].failures
		}
		// Record the failure unless the storage itself is the problem: then
		// the run stays as it was last recorded, to be resumed, and only
		// this engine says FAILURE.
		if errors.Is(r.fatal, ErrStorage) || errors.Is(r.fatal, ErrConflict) {
			r.flowState = flow.StateFailure
		} else if flow.FlowTransition(r.flowState, flow.StateFailure) == nil {
			r.fatal = nil
			_ = r.settle(flow.StateFailure)
		} else {
			r.flush() // what the loop left to record with the end
		}
		return fe
	}
	if r.finalDone {
		to := flow.StateReverted
		if len(r.revertFailures) > 0 {
			to = flow.StateRevertFailure
		}
		if err := r.settle(to); err != nil {
			return &FlowError{Flow: name, State: flow.StateFailure, Err: err}
		}
		return &FlowError{Flow: name, State: to, Failures: r.regions[r.final].failures, RevertFailures: r.revertFailures}
	}
	allDone := true
	for i := range r.st {
		if !done(r.st[i].state) {
			allDone = false
			break
		}
	}
	if allDone {
		if err := r.settle(flow.StateSuccess); err != nil {
			return &FlowError{Flow: name, State: flow.StateFailure, Err: err}
		}
		return nil
	}
	if r.stopping {
		if err := r.settle(flow.StateSuspended); err != nil {
			return &FlowError{Flow: name, State: flow.StateFailure, Err: err}
		}
		if r.cancelled {
			return fmt.Errorf("%w: %w", ErrSuspended, context.Cause(r.ctx))
		}
		return ErrSuspended
	}
	err := errors.New("engine: scheduler stalled (a bug)")
	_ = r.settle(flow.StateFailure)
	return &FlowError{Flow: name, State: flow.StateFailure, Err: err}
}
