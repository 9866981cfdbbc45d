package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

// Build a flow whose tasks pass values along, run it, and read a result.
func Example() {
	create := flow.TaskFunc("create", func(ctx context.Context, in flow.Inputs) (string, error) {
		name, err := flow.Get[string](in, "name")
		return "srv-" + name, err // a real task would wait on an operation's future
	}, flow.Requires("name"), flow.Provides("server"))
	undo := func(ctx context.Context, in flow.Inputs, server string, o flow.Outcome) error {
		fmt.Println("deleting", server)
		return nil
	}
	create.OnRevert(undo)

	tag := flow.TaskFunc("tag", func(ctx context.Context, in flow.Inputs) (flow.Values, error) {
		s, _ := flow.Get[string](in, "server")
		return flow.Values{"tagged": s, "tags": 2}, nil
	}, flow.Requires("server"), flow.Provides("tagged", "tags"))

	f := flow.Linear("boot", create, tag)
	e, err := engine.New(f, engine.WithStore(map[string]any{"name": "web"}))
	if err != nil {
		panic(err)
	}
	if err := e.Run(context.Background()); err != nil {
		panic(err)
	}
	tagged, _ := engine.Fetch[string](e, "tagged")
	fmt.Println(e.State(), tagged)

	// The same flow with a failing last step reverts what ran.
	fail := flow.TaskFunc("check", func(context.Context, flow.Inputs) (int, error) {
		return 0, errors.New("quota exceeded")
	})
	_, err = engine.Run(context.Background(), flow.Linear("boot2", create, fail), engine.WithStore(map[string]any{"name": "db"}))
	fmt.Println(err)
	// Output:
	// SUCCESS srv-web
	// deleting srv-db
	// flow "boot2" REVERTED: check: quota exceeded
}

// A retry controller runs its subflow again after a failure: here up to
// three times, providing the attempt number.
func Example_retry() {
	calls := 0
	flaky := flow.TaskFunc("flaky", func(ctx context.Context, in flow.Inputs) (string, error) {
		calls++
		n, _ := flow.Get[int](in, "attempt")
		if n < 3 {
			return "", fmt.Errorf("attempt %d failed", n)
		}
		return "ok", nil
	}, flow.Requires("attempt"), flow.Provides("result"))
	f := flow.Linear("f", flaky).WithRetry(flow.Times("retry", 3, flow.ProvidesAs("attempt")))

	e, err := engine.Run(context.Background(), f)
	if err != nil {
		panic(err)
	}
	h, _ := e.History("retry")
	for i, a := range h.Attempts {
		fmt.Println("attempt", i+1, "failures:", len(a.Failures))
	}
	res, _ := engine.Fetch[string](e, "result")
	fmt.Println(res, "after", calls, "calls")
	// Output:
	// attempt 1 failures: 1
	// attempt 2 failures: 1
	// attempt 3 failures: 0
	// ok after 3 calls
}

// Listeners see every flow and atom state change; LogListener writes them
// to a slog.Logger.
func Example_listener() {
	print := engine.ListenerFunc(func(ev engine.Event) {
		if ev.Atom == "" {
			fmt.Printf("flow %s -> %s\n", ev.From, ev.To)
			return
		}
		fmt.Printf("  %s: %s -> %s (result %v)\n", ev.Atom, ev.From, ev.To, ev.Result)
	})
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelWarn,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "elapsed" {
				return slog.Attr{}
			}
			return a
		},
	}))
	one := flow.TaskFunc("one", func(context.Context, flow.Inputs) (int, error) { return 1, nil })
	_, err := engine.Run(context.Background(), flow.Linear("f", one),
		engine.WithListener(print, engine.LogListener(logger)))
	fmt.Println(err)
	// Output:
	// flow PENDING -> RUNNING
	//   one: PENDING -> RUNNING (result <nil>)
	//   one: RUNNING -> SUCCESS (result 1)
	// flow RUNNING -> SUCCESS
	// <nil>
}

// A link with a decider runs its target only if the decider, given the
// results of the link's source, says so; what a "no" reaches ends IGNORE
// and is never run nor reverted.
func Example_decider() {
	noop := func(name string) flow.Task {
		return flow.TaskFunc(name, func(context.Context, flow.Inputs) (string, error) { return name, nil })
	}
	check := flow.TaskFunc("check-quota", func(context.Context, flow.Inputs) (int, error) {
		return 0, nil // free volumes left
	})
	enough := func(results map[string]any) bool { return results["check-quota"].(int) > 0 }
	f := flow.Graph("boot", check, noop("create-volume"), noop("attach-volume"), noop("boot-server")).
		Link("check-quota", "create-volume", flow.WithDecider(enough), flow.WithDepth(flow.DepthFlow)).
		Link("create-volume", "attach-volume").
		Link("check-quota", "boot-server")
	e, err := engine.Run(context.Background(), f)
	if err != nil {
		panic(err)
	}
	for _, name := range []string{"create-volume", "attach-volume", "boot-server"} {
		s, _ := e.AtomState(name)
		fmt.Println(name, s)
	}
	// Output:
	// create-volume IGNORE
	// attach-volume IGNORE
	// boot-server SUCCESS
}

// Read what a flow produced: every visible value, every value of a name
// provided several times, one atom's result.
func ExampleEngine_FetchAll() {
	double := func(name string) flow.Task {
		return flow.TaskFunc(name, func(_ context.Context, in flow.Inputs) (int, error) {
			n, err := flow.Get[int](in, "n")
			return 2 * n, err
		}, flow.Requires("n"), flow.Provides("n"))
	}
	e, err := engine.Run(context.Background(), flow.Linear("f", double("once"), double("twice")),
		engine.WithStore(map[string]any{"n": 1, "zone": "a"}))
	if err != nil {
		panic(err)
	}
	all := e.FetchAll()
	fmt.Println(all["n"], all["zone"])
	many, _ := e.FetchMany("n")
	fmt.Println(many)
	once, _ := e.Result("once")
	fmt.Println(once)
	// Output:
	// 4 a
	// [1 2 4]
	// 2
}

// A listener added after New, here one that suspends the engine it
// listens to when an atom succeeds; Run resumes it.
func ExampleEngine_AddListener() {
	step := func(name string) flow.Task {
		return flow.TaskFunc(name, func(context.Context, flow.Inputs) (string, error) { return name, nil })
	}
	e, err := engine.New(flow.Linear("f", step("first"), step("second")))
	if err != nil {
		panic(err)
	}
	remove := e.AddListener(engine.ListenerFunc(func(ev engine.Event) {
		if ev.Atom == "first" && ev.To == flow.StateSuccess {
			ev.Engine.Suspend()
		}
	}))
	fmt.Println(e.Run(context.Background()))
	remove()
	fmt.Println(e.Run(context.Background()), e.State())
	// Output:
	// engine: flow suspended
	// <nil> SUCCESS
}
