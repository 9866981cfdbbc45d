package enginetest

import (
	"context"
	"errors"
	"fmt"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

// ErrStep is the error of a Step that fails.
var ErrStep = errors.New("enginetest: step failed")

// Step returns a task whose result is its name and which fails (with
// ErrStep) when fails, given its inputs, says so; nil never fails.
func Step(name string, fails func(flow.Inputs) bool, opts ...flow.Option) flow.Task {
	return flow.TaskFunc(name, func(_ context.Context, in flow.Inputs) (string, error) {
		if fails != nil && fails(in) {
			return "", ErrStep
		}
		return name, nil
	}, opts...)
}

// Always fails a Step.
func Always(flow.Inputs) bool { return true }

// Below fails a Step while its number input name is below n, e.g. the
// attempt a Times controller provides. A number read back from a durable
// store is raw JSON: every kind counts.
func Below(name string, n int) func(flow.Inputs) bool {
	return func(in flow.Inputs) bool { return number(in, name) < float64(n) }
}

func number(in flow.Inputs, name string) float64 {
	v, _ := in.Lookup(name)
	switch v := v.(type) {
	case int:
		return float64(v)
	case float64:
		return v
	}
	f, _ := flow.As[float64](v) // raw JSON from a durable store
	return f
}

// badRevert is a task whose revert fails.
func badRevert(name string) flow.Task {
	return flow.TaskFunc(name, func(context.Context, flow.Inputs) (string, error) { return name, nil }).
		OnRevert(func(context.Context, flow.Inputs, string, flow.Outcome) error {
			return errors.New("cannot undo " + name)
		})
}

// Cases returns the flows that resuming must get right: reverting linear,
// graph and unordered flows (serial and parallel), a failing revert, Times
// (succeeding on the third attempt, and giving up), ForEach,
// ParameterizedForEach, nested retries (REVERT deferring to the outer
// controller, and REVERT_ALL), a retried unordered flow, and deciders (in a
// reverting flow, and asked again on a retry).
func Cases() []Case {
	serial, parallel := []engine.Option{engine.Serial()}, []engine.Option{engine.Parallel(4)}
	linear := func() *flow.Flow {
		return flow.Linear("l", Step("a", nil), Step("b", nil), Step("c", Always), Step("d", nil))
	}
	graph := func() *flow.Flow {
		return flow.Graph("g",
			Step("a", nil, flow.Provides("x")),
			Step("b", nil, flow.Requires("x"), flow.Provides("y")),
			Step("c", Always, flow.Requires("x"), flow.Provides("z")),
			Step("d", nil, flow.Requires("y", "z")),
		)
	}
	unordered := func() *flow.Flow {
		return flow.Linear("l", Step("first", nil),
			flow.Unordered("u", Step("u1", nil), Step("u2", nil), Step("u3", Always), Step("u4", nil)),
			Step("after", nil))
	}
	times := func(n int, fails func(flow.Inputs) bool) func() *flow.Flow {
		return func() *flow.Flow {
			return flow.Linear("l",
				Step("before", nil),
				flow.Linear("sub", Step("s1", nil), Step("s2", fails, flow.Requires("attempt"))).
					WithRetry(flow.Times("r", n, flow.ProvidesAs("attempt"))),
				Step("after", nil, flow.Requires("attempt")),
			)
		}
	}
	forEach := func() *flow.Flow {
		notC := func(in flow.Inputs) bool { return flow.GetOr(in, "host", "") != "c" }
		return flow.Linear("l", Step("before", nil),
			flow.Linear("sub", Step("try", notC, flow.Requires("host"))).
				WithRetry(flow.ForEach("hosts", []string{"a", "b", "c", "d"}, flow.ProvidesAs("host"))))
	}
	paramForEach := func() *flow.Flow {
		return flow.Linear("l", Step("before", nil),
			flow.Linear("sub", Step("try", Below("v", 3), flow.Requires("v"))).
				WithRetry(flow.ParameterizedForEach("p", flow.ValuesFrom("candidates"), flow.ProvidesAs("v"))))
	}
	nested := func(innerOpts ...flow.RetryOption) func() *flow.Flow {
		return func() *flow.Flow {
			fails := func(in flow.Inputs) bool { return number(in, "oa") < 2 || number(in, "ia") < 2 }
			return flow.Linear("outer",
				Step("o1", nil),
				flow.Linear("inner", Step("i1", nil), Step("i2", fails, flow.Requires("oa", "ia"))).
					WithRetry(flow.Times("ri", 2, append([]flow.RetryOption{flow.ProvidesAs("ia")}, innerOpts...)...)),
				Step("o2", nil),
			).WithRetry(flow.Times("ro", 2, flow.ProvidesAs("oa")))
		}
	}
	unorderedRetry := func() *flow.Flow {
		return flow.Linear("l", Step("first", nil),
			flow.Unordered("u", Step("u1", nil), Step("u2", nil), Step("u3", Below("attempt", 2), flow.Requires("attempt"))).
				WithRetry(flow.Times("r", 3, flow.ProvidesAs("attempt"))),
			Step("after", nil))
	}
	revertFails := func() *flow.Flow {
		return flow.Linear("l", Step("a", nil), badRevert("b"), Step("c", nil), Step("d", Always))
	}
	no := func(map[string]any) bool { return false }
	deciders := func() *flow.Flow {
		return flow.Linear("l",
			flow.Graph("g", Step("a", nil), Step("b", nil), Step("c", nil), flow.Linear("sub", Step("x", nil), Step("y", nil))).
				Link("a", "b", flow.WithDecider(no), flow.WithDepth(flow.DepthFlow)).Link("b", "c").Link("b", "sub"),
			Step("z", Always))
	}
	decidersRetry := func() *flow.Flow {
		second := func(r map[string]any) bool { return r["a"] == "a2" }
		attempt := flow.TaskFunc("a", func(_ context.Context, in flow.Inputs) (string, error) {
			return fmt.Sprint("a", number(in, "attempt")), nil
		}, flow.Requires("attempt"))
		return flow.Linear("sub",
			flow.Graph("g", attempt, Step("b", nil), Step("c", nil)).
				Link("a", "b", flow.WithDecider(second)).Link("b", "c"),
			Step("d", Below("attempt", 2), flow.Requires("attempt")),
		).WithRetry(flow.Times("r", 2, flow.ProvidesAs("attempt")))
	}
	store := engine.WithStore(map[string]any{"candidates": []any{1, 2, 3}})
	return []Case{
		{"linear revert/serial", linear, serial},
		{"linear revert/parallel", linear, parallel},
		{"graph revert/parallel", graph, parallel},
		{"unordered revert/parallel", unordered, parallel},
		{"unordered revert/serial", unordered, serial},
		{"revert failure/serial", revertFails, serial},
		{"times third attempt/serial", times(3, Below("attempt", 3)), serial},
		{"times third attempt/parallel", times(3, Below("attempt", 3)), parallel},
		{"times gives up/serial", times(2, Always), serial},
		{"foreach/serial", forEach, serial},
		{"parameterized foreach/serial", paramForEach, append([]engine.Option{store}, serial...)},
		{"nested retries/serial", nested(), serial},
		{"nested revert all/serial", nested(flow.RevertAllOnGiveUp()), serial},
		{"unordered retry/parallel", unorderedRetry, parallel},
		{"deciders revert/serial", deciders, serial},
		{"deciders revert/parallel", deciders, parallel},
		{"deciders retry/serial", decidersRetry, serial},
	}
}
