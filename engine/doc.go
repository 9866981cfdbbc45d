// Package engine runs flows compiled by package flow: serially in the
// caller's goroutine or on a bounded pool of goroutines, reverting in
// reverse dependency order on failure, driving retry controllers, recording
// every transition in a Storage before acting on it, and resuming from
// what a Storage recorded.
//
//	e, err := engine.New(f, engine.Parallel(8), engine.WithStore(map[string]any{"name": "web"}))
//	if err != nil {
//		return err // a *flow.MissingError, *flow.CycleError, ...
//	}
//	err = e.Run(ctx) // nil, a *engine.FlowError, or ErrSuspended
//	server, err := engine.Fetch[string](e, "server")
//
// # Failure and revert
//
// When an atom fails, the innermost retry controller around it decides
// (flow.Retry, flow.Revert or flow.RevertAll); without one, the whole flow
// reverts. No new atom starts in the reverting range; running ones finish
// (or see their context cancelled with CancelOnFailure) and are reverted
// too. Every atom that ran is reverted once all atoms after it are, so
// independent branches revert in parallel. Each Revert gets the atom's own
// outcome (result or failure) and the failures that caused the revert.
//
// # Differences from TaskFlow
//
//   - A failing revert leaves the flow REVERT_FAILURE and Run's *FlowError
//     holds the original failures first and every revert failure after;
//     TaskFlow ends in FAILURE and raises only the revert's error. Other
//     reverts still run.
//   - A controller's REVERT reverts its subflow and then defers to the
//     enclosing controller; with none, the whole flow reverts. (TaskFlow
//     leaves the atoms outside the subflow in SUCCESS and still ends the
//     flow REVERTED.)
//   - Built-in controllers may wait between attempts (flow.Delay,
//     flow.Backoff); the wait uses the engine's Clock and is cancellable.
//   - Cancelling Run's context suspends the flow (like Suspend, but
//     running atoms see the cancellation); an atom failing because of it
//     stays RUNNING and runs again on resume.
//   - A retry controller's decision is recorded (with its history) before
//     the engine acts on it, and a resume carries it out; TaskFlow records
//     intentions on every atom of the scope instead. Either way a resume
//     continues a revert and never re-executes what was reverted.
//   - Listeners are called synchronously, in order, from the scheduling
//     goroutine; a panicking listener is logged and ignored (TaskFlow logs
//     and swallows exceptions too).
//   - A panic in Execute or Revert becomes a failure whose error is a
//     *flow.PanicError carrying the stack.
//
// # Storage
//
// Storage is deliberately small: flow state, atom records (state, result,
// failure, revert failure, retry history) and the initial store values,
// each save a compare-and-set on the previous state. Memory is the
// in-memory implementation.
package engine
