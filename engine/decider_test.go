package engine_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/engine/enginetest"
	"github.com/ostask/ostask/flow"
)

func no(map[string]any) bool { return false }

// states returns the states of the named atoms as "name=STATE" strings.
func states(t *testing.T, e *engine.Engine, names ...string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		s, err := e.AtomState(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s=%s", n, s))
	}
	return out
}

// The depths, as TaskFlow 5.0 applies them (checked with python3-taskflow):
// linear[graph[a, b, c, sub[x, y]] with a->b (deciding no), b->c, b->sub;
// after].
func TestDeciderDepthTask(t *testing.T) {
	tests := []struct {
		depth flow.Depth
		want  []string
	}{
		{flow.DepthAll, []string{"a=SUCCESS", "b=IGNORE", "c=IGNORE", "x=IGNORE", "y=IGNORE", "after=IGNORE"}},
		{flow.DepthFlow, []string{"a=SUCCESS", "b=IGNORE", "c=IGNORE", "x=SUCCESS", "y=SUCCESS", "after=SUCCESS"}},
		{flow.DepthNeighbors, []string{"a=SUCCESS", "b=IGNORE", "c=IGNORE", "x=SUCCESS", "y=SUCCESS", "after=SUCCESS"}},
		{flow.DepthAtom, []string{"a=SUCCESS", "b=IGNORE", "c=SUCCESS", "x=SUCCESS", "y=SUCCESS", "after=SUCCESS"}},
	}
	for _, m := range modes {
		for _, tt := range tests {
			t.Run(m.name+"/"+tt.depth.String(), func(t *testing.T) {
				j := &journal{}
				var got map[string]any
				decider := func(r map[string]any) bool { got = r; return false }
				g := flow.Graph("g", rec(j, "a", false), rec(j, "b", false), rec(j, "c", false),
					flow.Linear("sub", rec(j, "x", false), rec(j, "y", false))).
					Link("a", "b", flow.WithDecider(decider), flow.WithDepth(tt.depth)).
					Link("b", "c").Link("b", "sub")
				var events []string
				l := engine.ListenerFunc(func(ev engine.Event) {
					if ev.To == flow.StateIgnore {
						events = append(events, ev.Atom)
					}
				})
				e, err := run(t, flow.Linear("outer", g, rec(j, "after", false)), m.opt, engine.WithListener(l))
				if err != nil {
					t.Fatal(err)
				}
				equal(t, states(t, e, "a", "b", "c", "x", "y", "after"), tt.want)
				if !maps.Equal(got, map[string]any{"a": "a"}) {
					t.Fatalf("decider got %v", got)
				}
				if e.State() != flow.StateSuccess {
					t.Fatal(e.State())
				}
				// every ignored atom was announced, the target last, and none ran
				for _, s := range tt.want {
					name, state := s[:len(s)-len("=IGNORE")], s[len(s)-len("IGNORE"):]
					if state == "IGNORE" && slices.Contains(j.get(), "x:"+name) {
						t.Fatalf("%s ran", name)
					}
				}
				if len(events) == 0 || events[len(events)-1] != "b" {
					t.Fatalf("IGNORE events %v", events)
				}
			})
		}
	}
}

// A decider on a link into a subflow ignores the subflow whole (and, with
// DepthAll, what follows it): graph[a, sub[x, y], c] with a->sub, sub->c.
// TaskFlow agrees but for DepthAtom, where it ignores x only and runs y.
func TestDeciderDepthSubflow(t *testing.T) {
	tests := []struct {
		depth flow.Depth
		want  []string
	}{
		{flow.DepthAll, []string{"a=SUCCESS", "x=IGNORE", "y=IGNORE", "c=IGNORE"}},
		{flow.DepthFlow, []string{"a=SUCCESS", "x=IGNORE", "y=IGNORE", "c=SUCCESS"}},
		{flow.DepthNeighbors, []string{"a=SUCCESS", "x=IGNORE", "y=IGNORE", "c=SUCCESS"}},
		{flow.DepthAtom, []string{"a=SUCCESS", "x=IGNORE", "y=IGNORE", "c=SUCCESS"}},
	}
	for _, sub := range []func(...flow.Item) *flow.Flow{
		func(items ...flow.Item) *flow.Flow { return flow.Linear("sub", items...) },
		func(items ...flow.Item) *flow.Flow { return flow.Unordered("sub", items...) },
	} {
		for _, tt := range tests {
			s := sub()
			t.Run(s.Pattern().String()+"/"+tt.depth.String(), func(t *testing.T) {
				j := &journal{}
				g := flow.Graph("g", rec(j, "a", false), sub(rec(j, "x", false), rec(j, "y", false)), rec(j, "c", false)).
					Link("a", "sub", flow.WithDecider(no), flow.WithDepth(tt.depth)).Link("sub", "c")
				e, err := run(t, g, engine.Parallel(4))
				if err != nil {
					t.Fatal(err)
				}
				equal(t, states(t, e, "a", "x", "y", "c"), tt.want)
			})
		}
	}
}

// A subflow as the source: the decider gets the results of its atoms
// (TaskFlow gives it an empty history).
func TestDeciderSubflowSource(t *testing.T) {
	j := &journal{}
	var got map[string]any
	g := flow.Graph("g", flow.Linear("sub", rec(j, "x", false), rec(j, "y", false)), rec(j, "c", false)).
		Link("sub", "c", flow.WithDecider(func(r map[string]any) bool { got = r; return true }))
	e, err := run(t, g)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, map[string]any{"x": "x", "y": "y"}) {
		t.Fatal(got)
	}
	mustState(t, e, "c", flow.StateSuccess)
}

// TaskFlow: every decider on the links into one target gets the results of
// all their sources; one "no" is enough, and the widest depth among the
// noes applies. A decider whose source was ignored has no say.
func TestDeciderSeveral(t *testing.T) {
	j := &journal{}
	var seen []map[string]any
	yes := func(r map[string]any) bool { seen = append(seen, r); return true }
	noSeen := func(r map[string]any) bool { seen = append(seen, r); return false }
	g := flow.Graph("g", rec(j, "a", false), rec(j, "a2", false), rec(j, "b", false), rec(j, "c", false), rec(j, "d", false)).
		Link("a", "b", flow.WithDecider(yes)).
		Link("a2", "b", flow.WithDecider(noSeen), flow.WithDepth(flow.DepthAtom)).
		Link("a", "b", flow.WithDecider(noSeen), flow.WithDepth(flow.DepthNeighbors)).
		Link("b", "c").Link("c", "d")
	e, err := run(t, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 {
		t.Fatalf("deciders asked %d times", len(seen))
	}
	for _, r := range seen {
		if !maps.Equal(r, map[string]any{"a": "a", "a2": "a2"}) {
			t.Fatal(r)
		}
	}
	equal(t, states(t, e, "b", "c", "d"), []string{"b=IGNORE", "c=IGNORE", "d=SUCCESS"})

	g = flow.Graph("g2", rec(j, "a", false), rec(j, "b", false), rec(j, "d", false)).
		Link("a", "b", flow.WithDecider(no), flow.WithDepth(flow.DepthAtom)).
		Link("b", "d", flow.WithDecider(func(map[string]any) bool { t.Error("asked a decider of an ignored source"); return false }))
	e, err = run(t, g)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, states(t, e, "b", "d"), []string{"b=IGNORE", "d=SUCCESS"})
}

// TaskFlow: an ignored atom counts as done for the atoms after it and is
// not reverted when the flow reverts.
func TestDeciderIgnoredNotReverted(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			j := &journal{}
			g := flow.Graph("g", rec(j, "a", false), rec(j, "b", false), rec(j, "z", true)).
				Link("a", "b", flow.WithDecider(no), flow.WithDepth(flow.DepthAtom)).Link("b", "z")
			e, err := run(t, g, m.opt)
			if !errors.Is(err, errBoom) {
				t.Fatal(err)
			}
			equal(t, j.get(), []string{"x:a", "x:z", "r:z", "r:a"})
			equal(t, states(t, e, "a", "b", "z"), []string{"a=REVERTED", "b=IGNORE", "z=REVERTED"})
		})
	}
}

// A retry resets the ignored atoms of its subflow, and the deciders are
// asked again on the next attempt.
func TestDeciderAskedAgainOnRetry(t *testing.T) {
	j := &journal{}
	attempt := flow.TaskFunc("a", func(_ context.Context, in flow.Inputs) (int, error) {
		return flow.Get[int](in, "attempt")
	}, flow.Requires("attempt"))
	second := func(r map[string]any) bool { return r["a"] == 2 }
	sub := flow.Linear("sub",
		flow.Graph("g", attempt, rec(j, "b", false)).Link("a", "b", flow.WithDecider(second), flow.WithDepth(flow.DepthAtom)),
		enginetest.Step("c", enginetest.Below("attempt", 2), flow.Requires("attempt")),
	).WithRetry(flow.Times("r", 2, flow.ProvidesAs("attempt")))
	e, err := run(t, sub)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, j.get(), []string{"x:b"})
	mustState(t, e, "b", flow.StateSuccess)
}

// A panicking decider fails its target: the flow reverts, with the panic
// as the failure.
func TestDeciderPanics(t *testing.T) {
	j := &journal{}
	g := flow.Graph("g", rec(j, "a", false), rec(j, "b", false)).
		Link("a", "b", flow.WithDecider(func(map[string]any) bool { panic("decider bug") }))
	e, err := run(t, g)
	var pe *flow.PanicError
	var fe *engine.FlowError
	if !errors.As(err, &pe) || !errors.As(err, &fe) || fe.State != flow.StateReverted || fe.Failures[0].Atom != "b" {
		t.Fatal(err)
	}
	equal(t, j.get(), []string{"x:a", "r:a"})
	mustState(t, e, "b", flow.StatePending)
}
