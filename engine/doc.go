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
// # Resuming
//
// A Run that stopped (Suspend, a cancelled context, a crash of the
// process) is resumed by Run, on the same engine or on a new one given the
// same Storage. What was under way continues: a revert goes on reverting
// and never runs again what it reverted, whatever the flow's recorded
// state; a retry controller's recorded decision is carried out, not asked
// again; SUCCESS atoms keep their results. An atom recorded RUNNING runs
// again, so tasks must be idempotent (adopt what an earlier attempt made,
// e.g. through an idempotency key), except inside a revert, where it is
// reverted without running (flow.Outcome.Interrupted).
//
// # Differences from TaskFlow
//
// Checked against TaskFlow 5.0 (python3-taskflow). Where ostask differs on
// purpose:
//
//   - A flow has a REVERTING state while it reverts (TaskFlow stays
//     RUNNING), so that observers and a resume can tell a rollback from
//     progress.
//   - A failing revert leaves the flow REVERT_FAILURE and Run's *FlowError
//     holds the original failures first and every revert failure after;
//     TaskFlow ends in FAILURE and raises only the revert's error, which
//     hides why the flow reverted. Other reverts still run.
//   - Run returns an error wrapping ErrSuspended when the run stopped
//     early; TaskFlow's run() returns normally and leaves the state
//     SUSPENDED, which a Go caller would have to check after every nil.
//   - A crash recovery goes RESUMING -> RUNNING (or REVERTING); TaskFlow
//     goes RESUMING -> SUSPENDED -> RUNNING, recording a suspension nobody
//     asked for. A clean resume goes SUSPENDED -> RUNNING in both.
//   - Run on a finished flow records, announces and runs nothing: nil for
//     SUCCESS, the flow's *FlowError again for REVERTED or REVERT_FAILURE.
//     TaskFlow announces RUNNING then SUCCESS again, and resets a REVERTED
//     flow and runs it again. A recorded run is a record (durable stores,
//     the task API and event logs must never show a finished run running),
//     and a run of a reverted flow under the same storage would reuse its
//     idempotency keys: a new run takes a new Storage.
//   - A retry controller's decision is recorded on the controller (with its
//     history) before the engine acts on it; TaskFlow records an intention
//     on every atom of the scope. One write instead of one per atom, and a
//     resume reaches the same result: it continues the revert and only a
//     RETRY returns REVERTED atoms to PENDING.
//   - A controller's REVERT reverts its subflow and then defers to the
//     enclosing controller; with none, the whole flow reverts (TaskFlow's
//     defer_reverts=True). TaskFlow's default leaves the atoms outside the
//     subflow in SUCCESS and still ends the flow REVERTED, which leaves
//     their work in place.
//   - In a linear flow, an atom gets a value from the nearest atom before
//     it that provides it, even when the store holds the name too: tasks
//     that each require and provide "value" chain their outputs. TaskFlow
//     gives every one of them the store's value, a quirk of its lookup
//     order; nearest-provider is the scoping rule everywhere else. Fetch
//     likewise returns the last provider's value (TaskFlow's fetch the
//     first), Fetch of a name that unordered siblings provide is a
//     *flow.AmbiguousError (TaskFlow picks the first), and FetchMany lists
//     them all, as TaskFlow's fetch_all does.
//   - A result split over several Provides names must be a map with string
//     keys or a slice or array with exactly one element per name;
//     otherwise its own atom fails with *flow.OutputError (or Compile
//     rejects a FuncTask's result type). TaskFlow ignores extra elements
//     and leaves missing ones undefined, which shows up only in a consumer.
//   - Deciders: a link into a subflow ignores the whole subflow at every
//     depth (TaskFlow ignores only its first atoms with depth ATOM, and the
//     rest then runs without their values); a link from a subflow gives
//     the decider the results of the subflow's atoms (TaskFlow gives it
//     none); a panicking decider fails the target's scope like a failed
//     atom.
//   - Built-in controllers may wait between attempts (flow.Delay,
//     flow.Backoff); the wait uses the engine's Clock and is cancellable.
//   - Cancelling Run's context suspends the flow (like Suspend, but
//     running atoms see the cancellation); an atom failing because of it
//     stays RUNNING and runs again on resume.
//   - A Storage error stops the run with FAILURE at once; TaskFlow retries
//     storage calls a few times. Only the store knows which of its errors
//     are transient, and every save is a compare-and-set that must not be
//     blindly repeated.
//   - Listeners are called synchronously, in order, from the scheduling
//     goroutine; a panicking listener is logged and ignored (TaskFlow logs
//     and swallows exceptions too). LogListener and TimingListener stand for
//     TaskFlow's logging and duration listeners.
//   - A panic in Execute or Revert becomes a failure whose error is a
//     *flow.PanicError carrying the stack.
//   - Not provided: task progress (update_progress) and per-task
//     notifiers, TargetedFlow, map/reduce functor tasks, run_iter,
//     statistics, engine.reset, the never_resolve and inject_transient
//     options (store values are always recorded), process and worker-based
//     executors, and flow factories, jobboards and conductors (durable runs
//     and workers are other packages' business).
//
// # Storage
//
// Storage is deliberately small: flow state, atom records (state, result,
// failure, revert failure, retry history and decision) and the initial
// store values, each save a compare-and-set on the previous state. Memory
// is the in-memory implementation; package store and its drivers
// (store/sqlite, store/postgres) are the durable ones.
//
// The engine records what it decides before it acts on it. A Storage that
// is a Batcher gets everything decided at one moment in one SaveBatch (a
// parallel flow's completions and the starts they allow; a linear task's
// SUCCESS and its successor's RUNNING): one durable write per step, and no
// successor starts before its predecessor's SUCCESS is durable; the last
// completions are recorded with the flow's end, in one write. Events are
// announced after the write. A storage error (ErrStorage; a fenced-out
// writer's conflict too) stops the run and records nothing more, so the
// run can be resumed from what was written.
//
// A durable Storage gives values back as raw JSON (json.RawMessage):
// flow.Get, flow.As, Fetch and FuncTask's revert decode them into the type
// their reader asks for; Inputs.Lookup, FetchAll and a decider's results
// hand them over as they are.
package engine
