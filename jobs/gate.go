package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ostask/ostask/flow"
)

// ErrCancelled is the failure of the step a cancel request stopped; the
// flow then reverts.
var ErrCancelled = errors.New("jobs: task cancelled")

// ErrTaskTimeout is the failure of the step running when the task's
// timeout passed; the flow then reverts.
var ErrTaskTimeout = errors.New("jobs: task timed out")

// ErrPoison is the failure of the steps of a task that lost its worker
// WorkerConfig.MaxLosses times: the next worker reverts what the task did
// instead of running it again, and fails it.
var ErrPoison = errors.New("jobs: the task kept losing its worker (a poison task?)")

// gate stops a running flow so that it reverts: once fired, no step
// starts, and every step under way has its context cancelled, so that it
// stops waiting on the cloud, and fails with the gate's reason. The engine
// suspends (rather than reverts) a flow whose Run context is cancelled;
// failing the steps instead is what makes it undo what they did (their
// reverts find by idempotency key what a step cut short made, and wait
// until the cloud lets them remove it).
type gate struct {
	mu     sync.Mutex
	reason error
	ch     chan struct{}
	// hook, when set, is called before a step's own Execute or Revert
	// runs (WorkerConfig.StepHook).
	hook func(step string, revert bool)
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) fire(reason error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reason == nil {
		g.reason = reason
		close(g.ch)
	}
}

func (g *gate) fired() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reason
}

// gated wraps a task's Execute; its Revert is never cut short (a revert
// must run to the end), only announced to the hook.
type gated struct {
	flow.Task
	g *gate
}

func (t *gated) Execute(ctx context.Context, in flow.Inputs) (any, error) {
	if err := t.g.fired(); err != nil {
		return nil, err
	}
	if t.g.hook != nil {
		t.g.hook(t.Spec().Name, false)
	}
	// A cancel or timeout cuts the step short rather than wait for a
	// cloud operation that may hang.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-t.g.ch:
			cancel()
		case <-stop:
		}
	}()
	v, err := t.Task.Execute(sctx, in)
	if reason := t.g.fired(); reason != nil && ctx.Err() == nil {
		switch {
		case err == nil:
			return nil, fmt.Errorf("%w (after %s finished)", reason, t.Spec().Name)
		case sctx.Err() != nil:
			// err may name what the step made (a wreck): its revert needs it.
			return nil, fmt.Errorf("%w (%s stopped: %w)", reason, t.Spec().Name, err)
		default:
			return nil, fmt.Errorf("%w (%s also failed: %w)", reason, t.Spec().Name, err)
		}
	}
	return v, err
}

func (t *gated) Revert(ctx context.Context, in flow.Inputs, o flow.Outcome) error {
	if t.g.hook != nil {
		t.g.hook(t.Spec().Name, true)
	}
	return t.Task.Revert(ctx, in, o)
}

// gateFlow returns f with every task gated by g. The kinds' flows use
// patterns, data dependencies and no explicit links or retry
// controllers other than those carried over here.
func gateFlow(f *flow.Flow, g *gate) *flow.Flow {
	items := f.Items()
	out := make([]flow.Item, len(items))
	for i, it := range items {
		switch x := it.(type) {
		case *flow.Flow:
			out[i] = gateFlow(x, g)
		case flow.Task:
			out[i] = &gated{Task: x, g: g}
		default:
			out[i] = it
		}
	}
	var nf *flow.Flow
	switch f.Pattern() {
	case flow.LinearPattern:
		nf = flow.Linear(f.Name(), out...)
	case flow.UnorderedPattern:
		nf = flow.Unordered(f.Name(), out...)
	default:
		nf = flow.Graph(f.Name(), out...)
	}
	if r := f.Retry(); r != nil {
		nf.WithRetry(r)
	}
	return nf
}
