// Package flow is the pure model of ostask's workflows, after OpenStack
// TaskFlow: atoms (tasks and retry controllers) that declare the named values
// they require and provide, composed into linear, unordered and graph
// patterns nested to any depth, compiled and validated into a DAG before
// anything runs, and the state machines of atoms and flows. It does no I/O
// and reads no clock; package engine runs what it compiles.
//
//	boot := flow.TaskFunc("boot", func(ctx context.Context, in flow.Inputs) (string, error) {
//		name, err := flow.Get[string](in, "name")
//		if err != nil {
//			return "", err
//		}
//		return "server-" + name, nil // a real task waits on a future here
//	}, flow.Requires("name"), flow.Provides("server"))
//	attach := flow.TaskFunc("attach", attachFn, flow.Requires("server", "volume"))
//	f := flow.Linear("boot-and-attach", boot, attach)
//	c, err := flow.Compile(f, flow.WithInputs("name", "volume"))
//
// # Scoping
//
// An atom's input is looked up, nearest first: its own injected constants;
// then, walking out through the flows that hold it, the earlier items of a
// linear flow (the latest provider wins), the other items of a graph flow
// (which must be unique: the provider becomes a predecessor), the value of
// the flow's retry controller; finally the store. Siblings of an unordered
// flow never see each other. Values made inside a subflow are visible after
// it. An atom never sees its own outputs.
//
// # Compiling
//
// Compile reports every problem at once, as typed errors: *MissingError (a
// requirement nothing provides, also for revert-only requirements),
// *AmbiguousError (several providers at the same distance), *DuplicateError
// (atom names must be unique in the whole tree, item names in a graph; each
// name is reported once), *CycleError (names the cycle), *OutputError (a
// FuncTask whose result type cannot be split over its Provides names),
// *MisuseError (a retry controller added as an item, a task without an
// execute function, a link to an unknown item, a decider depth without a
// decider). Its cost is linear in the size of the flow: unordered and graph
// flows get join nodes rather than all-to-all edges, and nodes are numbered
// in a topological order in which every subflow is a contiguous range
// entered through its first node (its retry controller, when it has one).
// Compiled.Requires lists what the flow needs from the store, and
// Compiled.Edges every edge with its reasons (order, data, link, join).
//
// # Deciders
//
// A link of a graph flow may carry a [Decider] ([WithDecider]): before the
// link's target (an atom or a subflow) starts, the engine asks it, given
// the results of the link's source; on a "no", the target and what the
// [Depth] reaches are skipped (state IGNORE), never run nor reverted, and
// count as done for what follows. This is TaskFlow's graph_flow.link with
// decider and decider_depth.
//
// # State machines
//
// Transition, TaskTransition, RetryTransition and FlowTransition are pure
// checks over tables (Targets lists them). They follow TaskFlow's, with
// these deliberate differences: a flow has REVERTING and REVERT_FAILURE
// states (TaskFlow ends a failed revert in FAILURE and has no flow
// REVERTING); a crash recovery goes RESUMING to RUNNING or REVERTING, and a
// clean resume SUSPENDED to RUNNING or REVERTING (TaskFlow: RESUMING to
// SUSPENDED to RUNNING); an atom may move from RUNNING to REVERTING, when a
// resumed revert reverts an atom whose execution was interrupted (TaskFlow
// does it too, outside its table); a retry controller waiting between
// attempts (RETRYING) may be reverted directly; and moves TaskFlow silently
// ignores (e.g. SUCCESS to SUSPENDING) are errors.
package flow
