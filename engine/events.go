package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ostask/ostask/flow"
)

// Event is one state change of the flow (Atom == "") or of an atom.
type Event struct {
	Flow string // the root flow's name
	Atom string // the atom, or "" for a flow event
	Kind flow.NodeKind
	From flow.State
	To   flow.State
	// Time is when the change happened (engine clock); Elapsed is how long
	// the atom or flow spent in From.
	Time    time.Time
	Elapsed time.Duration
	// Result is set when an atom reaches SUCCESS.
	Result any
	// Failure is set when an atom reaches FAILURE (Execute's failure) or
	// REVERT_FAILURE (Revert's failure).
	Failure *flow.Failure
	// Failures and RevertFailures are set on a flow's final event.
	Failures       []*flow.Failure
	RevertFailures []*flow.Failure
	// Engine is the engine that runs the flow, so that a listener added
	// before New returned can act on it, typically to Suspend it (TaskFlow
	// hands the engine to listeners the same way). Its other methods
	// report the state after the last Run, not the run in progress.
	Engine *Engine
}

// Listener receives events, synchronously from the engine's scheduling
// goroutine, in order: it must be quick and must not call back into the
// engine, except for Suspend, AddListener and the function AddListener
// returned. A panic in a listener is logged and ignored.
type Listener interface {
	OnEvent(Event)
}

// ListenerFunc adapts a function to a Listener.
type ListenerFunc func(Event)

// OnEvent implements Listener.
func (f ListenerFunc) OnEvent(e Event) { f(e) }

// LogListener logs every event to logger: atom failures and flow reverts at
// Warn, revert failures at Error, the rest at Debug (Info for flow events).
func LogListener(logger *slog.Logger) Listener {
	return ListenerFunc(func(e Event) {
		level := slog.LevelDebug
		if e.Atom == "" {
			level = slog.LevelInfo
		}
		switch e.To {
		case flow.StateFailure, flow.StateReverted:
			level = slog.LevelWarn
		case flow.StateRevertFailure:
			level = slog.LevelError
		}
		ctx := context.Background()
		if !logger.Enabled(ctx, level) {
			return
		}
		attrs := []slog.Attr{
			slog.String("flow", e.Flow),
			slog.String("from", e.From.String()),
			slog.String("to", e.To.String()),
			slog.Duration("elapsed", e.Elapsed),
		}
		msg := "flow state"
		if e.Atom != "" {
			msg = "atom state"
			attrs = append(attrs, slog.String("atom", e.Atom))
		}
		if e.Failure != nil {
			attrs = append(attrs, slog.String("failure", e.Failure.Error()))
		}
		for _, f := range e.Failures {
			attrs = append(attrs, slog.String("failure", f.Error()))
		}
		for _, f := range e.RevertFailures {
			attrs = append(attrs, slog.String("revert_failure", f.Error()))
		}
		logger.LogAttrs(ctx, level, msg, attrs...)
	})
}

// Timing is the time an atom or the flow spent running and reverting.
type Timing struct {
	Run    time.Duration // RUNNING until SUCCESS/FAILURE (summed over retries)
	Revert time.Duration // REVERTING until REVERTED/REVERT_FAILURE
}

// TimingListener adds up the time atoms and the flow spend running and
// reverting (TaskFlow's DurationListener). It is safe for concurrent use.
type TimingListener struct {
	mu    sync.Mutex
	atoms map[string]Timing
	flow  Timing
}

// NewTimingListener returns an empty TimingListener.
func NewTimingListener() *TimingListener {
	return &TimingListener{atoms: map[string]Timing{}}
}

// OnEvent implements Listener.
func (t *TimingListener) OnEvent(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var tm *Timing
	if e.Atom == "" {
		tm = &t.flow
	} else {
		v := t.atoms[e.Atom]
		defer func() { t.atoms[e.Atom] = v }()
		tm = &v
	}
	switch e.From {
	case flow.StateRunning:
		tm.Run += e.Elapsed
	case flow.StateReverting:
		tm.Revert += e.Elapsed
	}
}

// Atom returns the timing of one atom.
func (t *TimingListener) Atom(name string) Timing {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.atoms[name]
}

// Atoms returns a copy of all atom timings.
func (t *TimingListener) Atoms() map[string]Timing {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]Timing, len(t.atoms))
	for k, v := range t.atoms {
		out[k] = v
	}
	return out
}

// Flow returns the flow's timing.
func (t *TimingListener) Flow() Timing {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.flow
}
