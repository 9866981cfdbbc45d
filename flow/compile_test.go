package flow_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/ostask/ostask/flow"
)

func task(name string, opts ...flow.Option) *flow.FuncTask[int] {
	return flow.TaskFunc(name, func(context.Context, flow.Inputs) (int, error) { return 0, nil }, opts...)
}

func req(names ...string) flow.Option  { return flow.Requires(names...) }
func prov(names ...string) flow.Option { return flow.Provides(names...) }

func names(c *flow.Compiled) []string {
	var out []string
	for _, n := range c.Nodes() {
		if n.Kind != flow.NodeJoin {
			out = append(out, n.Name)
		}
	}
	return out
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name  string
		flow  *flow.Flow
		check func(t *testing.T, err error)
	}{{
		name: "missing",
		flow: flow.Linear("l", task("a", req("x", "z")), task("b", req("y"))),
		check: func(t *testing.T, err error) {
			var me *flow.MissingError
			if !errors.As(err, &me) || !slices.Equal(me.Names(), []string{"x", "y", "z"}) {
				t.Fatalf("%v", err)
			}
			if me.Missing[0].Atom != "a" || me.Missing[1].Atom != "b" {
				t.Fatalf("%+v", me.Missing)
			}
		},
	}, {
		name: "linear consumer before producer",
		flow: flow.Linear("l", task("a", req("x")), task("b", prov("x"))),
		check: func(t *testing.T, err error) {
			if !errors.Is(err, flow.ErrMissing) {
				t.Fatal(err)
			}
		},
	}, {
		name: "unordered siblings",
		flow: flow.Unordered("u", task("a", req("x")), task("b", prov("x"))),
		check: func(t *testing.T, err error) {
			if !errors.Is(err, flow.ErrMissing) {
				t.Fatal(err)
			}
		},
	}, {
		name: "revert-only requirement",
		flow: flow.Linear("l", task("a", flow.RevertRequires("undo_token"))),
		check: func(t *testing.T, err error) {
			var me *flow.MissingError
			if !errors.As(err, &me) || !me.Missing[0].Revert || me.Error() != `flow "l": missing dependencies "undo_token" (needed by "a" to revert)` {
				t.Fatalf("%v", err)
			}
		},
	}, {
		name: "ambiguous in graph",
		flow: flow.Graph("g", task("p1", prov("x")), task("p2", prov("x")), task("c", req("x"))),
		check: func(t *testing.T, err error) {
			var ae *flow.AmbiguousError
			if !errors.As(err, &ae) || ae.Name != "x" || ae.Atom != "c" || !slices.Equal(ae.Providers, []string{"p1", "p2"}) {
				t.Fatalf("%v", err)
			}
		},
	}, {
		name: "ambiguous after unordered",
		flow: flow.Linear("l", flow.Unordered("u", task("p1", prov("x")), task("p2", prov("x"))), task("c", req("x"))),
		check: func(t *testing.T, err error) {
			if !errors.Is(err, flow.ErrAmbiguous) {
				t.Fatal(err)
			}
		},
	}, {
		name: "duplicates anywhere in the tree",
		flow: flow.Linear("l", task("a"), flow.Unordered("u", task("b"), flow.Linear("deep", task("a"), task("b")))),
		check: func(t *testing.T, err error) {
			var de *flow.DuplicateError
			if !errors.As(err, &de) || !slices.Equal(de.Names, []string{"a", "b"}) {
				t.Fatalf("%v", err)
			}
		},
	}, {
		name: "data cycle",
		flow: flow.Graph("g", task("a", req("z"), prov("x")), task("b", req("x"), prov("y")), task("c", req("y"), prov("z")), task("d")),
		check: func(t *testing.T, err error) {
			var ce *flow.CycleError
			if !errors.As(err, &ce) || len(ce.Cycle) != 3 || ce.Flow != "g" {
				t.Fatalf("%v", err)
			}
			// the cycle is named in dependency order, starting anywhere
			i := slices.Index(ce.Cycle, "a")
			rot := append(slices.Clone(ce.Cycle[i:]), ce.Cycle[:i]...)
			if !slices.Equal(rot, []string{"a", "b", "c"}) {
				t.Fatal(ce.Cycle, err)
			}
		},
	}, {
		name: "link cycle",
		flow: flow.Graph("g", task("a", prov("x")), task("b", req("x"))).Link("b", "a"),
		check: func(t *testing.T, err error) {
			var ce *flow.CycleError
			if !errors.As(err, &ce) || !slices.Equal(slices.Sorted(slices.Values(ce.Cycle)), []string{"a", "b"}) {
				t.Fatalf("%v", err)
			}
		},
	}, {
		name: "self link",
		flow: flow.Graph("g", task("a")).Link("a", "a"),
		check: func(t *testing.T, err error) {
			if !errors.Is(err, flow.ErrCycle) {
				t.Fatal(err)
			}
		},
	}, {
		name: "unknown link",
		flow: flow.Graph("g", task("a")).Link("a", "nope"),
		check: func(t *testing.T, err error) {
			var me *flow.MisuseError
			if !errors.As(err, &me) || me.Item != "nope" {
				t.Fatal(err)
			}
		},
	}, {
		name: "link outside graph",
		flow: flow.Linear("l", task("a"), task("b")).Link("a", "b"),
		check: func(t *testing.T, err error) {
			if !errors.Is(err, flow.ErrMisuse) {
				t.Fatal(err)
			}
		},
	}, {
		name: "decider depth without a decider",
		flow: flow.Graph("g", task("a"), task("b")).Link("a", "b", flow.WithDepth(flow.DepthAtom)),
		check: func(t *testing.T, err error) {
			var me *flow.MisuseError
			if !errors.As(err, &me) || me.Item != "b" {
				t.Fatal(err)
			}
		},
	}, {
		name: "unknown decider depth",
		flow: flow.Graph("g", task("a"), task("b")).Link("a", "b", flow.WithDecider(func(map[string]any) bool { return true }), flow.WithDepth(9)),
		check: func(t *testing.T, err error) {
			if !errors.Is(err, flow.ErrMisuse) {
				t.Fatal(err)
			}
		},
	}, {
		name: "retry added as an item",
		flow: flow.Linear("l", task("a"), flow.Times("r", 3)),
		check: func(t *testing.T, err error) {
			var me *flow.MisuseError
			if !errors.As(err, &me) || me.Item != "r" {
				t.Fatal(err)
			}
		},
	}, {
		name: "revert-only task",
		flow: flow.Linear("l", flow.TaskFunc[int]("undo", nil).OnRevert(func(context.Context, flow.Inputs, int, flow.Outcome) error { return nil })),
		check: func(t *testing.T, err error) {
			var me *flow.MisuseError
			if !errors.As(err, &me) || me.Item != "undo" {
				t.Fatal(err)
			}
		},
	}, {
		name: "empty names",
		flow: flow.Linear("", task("")),
		check: func(t *testing.T, err error) {
			if !errors.Is(err, flow.ErrMisuse) {
				t.Fatal(err)
			}
		},
	}, {
		name: "several problems at once",
		flow: flow.Linear("l", task("a"), task("a"), flow.Graph("g", task("x")).Link("q", "r")),
		check: func(t *testing.T, err error) {
			if !errors.Is(err, flow.ErrDuplicate) || !errors.Is(err, flow.ErrMisuse) {
				t.Fatal(err)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := flow.Compile(tt.flow)
			if err == nil {
				t.Fatalf("compiled: %v", names(c))
			}
			tt.check(t, err)
		})
	}
}

func TestCompileShapes(t *testing.T) {
	t.Run("graph order and edges", func(t *testing.T) {
		c, err := flow.Compile(flow.Graph("g", task("c", req("y")), task("b", req("x"), prov("y")), task("a", prov("x")), task("free")))
		if err != nil {
			t.Fatal(err)
		}
		if got := names(c); !slices.Equal(got, []string{"free", "a", "b", "c"}) && !slices.Equal(got, []string{"a", "b", "c", "free"}) {
			t.Fatal(got)
		}
		for i := range c.Nodes() {
			for _, s := range c.Succ(int32(i)) {
				if s <= int32(i) {
					t.Fatalf("edge %d->%d is not topological", i, s)
				}
			}
		}
	})
	t.Run("linear nearest provider wins", func(t *testing.T) {
		c, err := flow.Compile(flow.Linear("l", task("p1", prov("x")), flow.Linear("sub", task("p2", prov("x"))), task("c", req("x"))))
		if err != nil {
			t.Fatal(err)
		}
		i, _ := c.Index("c")
		a := c.Nodes()[i].Args[0]
		if a.Source != flow.FromNode || c.Nodes()[a.Node].Name != "p2" {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("self requires and provides", func(t *testing.T) {
		c, err := flow.Compile(flow.Linear("l", task("inc", req("x"), prov("x"))), flow.WithInputs("x"))
		if err != nil {
			t.Fatal(err)
		}
		if a := c.Nodes()[0].Args[0]; a.Source != flow.FromStore || !slices.Equal(c.Inputs(), []string{"x"}) {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("optional", func(t *testing.T) {
		c, err := flow.Compile(flow.Linear("l", task("a", flow.Optional("maybe", "there")), task("b", prov("there"))))
		if err != nil {
			t.Fatal(err)
		}
		if a := c.Nodes()[0].Args; a[0].Source != flow.FromNone || a[1].Source != flow.FromNone {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("retry scope", func(t *testing.T) {
		c, err := flow.Compile(flow.Linear("l", task("a"), flow.Unordered("u", task("b"), task("c")).WithRetry(flow.Times("", 2, flow.ProvidesAs("n"))), task("d", req("n"))))
		if err != nil {
			t.Fatal(err)
		}
		r, ok := c.Index("u_retry")
		if !ok {
			t.Fatal(names(c))
		}
		n := c.Nodes()[r]
		for i := r + 1; i < n.End; i++ {
			if c.Nodes()[i].Scope != r {
				t.Fatalf("node %d scope %d", i, c.Nodes()[i].Scope)
			}
		}
		if d, _ := c.Index("d"); d != n.End || c.Nodes()[d].Scope != -1 {
			t.Fatalf("d at %d, end %d", d, n.End)
		}
		if got := fmt.Sprint(c.Lookup("n")); got == "" {
			t.Fatal(got)
		}
	})
	t.Run("nesting joins stay linear", func(t *testing.T) {
		l := flow.Linear("l")
		for k := range 20 {
			u := flow.Unordered(fmt.Sprint("u", k))
			for i := range 10 {
				u.Add(task(fmt.Sprintf("t%d_%d", k, i)))
			}
			l.Add(u)
		}
		c, err := flow.Compile(l)
		if err != nil {
			t.Fatal(err)
		}
		edges := 0
		for i := range c.Nodes() {
			edges += len(c.Succ(int32(i)))
		}
		if len(c.Nodes()) != 240 || edges != 20*20+19 || c.Atoms() != 200 {
			t.Fatalf("%d nodes, %d edges", len(c.Nodes()), edges)
		}
	})
}

// Compiled edges say why they exist (TaskFlow's iter_links reasons):
// linear order, data (with the values), explicit links, and the joins of
// unordered and graph flows.
func TestEdgeReasons(t *testing.T) {
	f := flow.Linear("l",
		task("first"),
		flow.Graph("g",
			flow.TaskFunc("a", func(context.Context, flow.Inputs) (flow.Values, error) { return nil, nil }, prov("x", "y")),
			task("b", req("x", "y")),
			task("c"),
		).Link("a", "b").Link("b", "c"),
	)
	c, err := flow.Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	name := func(i int32) string {
		n := c.Nodes()[i]
		if n.Kind == flow.NodeJoin {
			return "join:" + n.Name
		}
		return n.Name
	}
	var got []string
	for _, e := range c.Edges() {
		got = append(got, fmt.Sprintf("%s->%s %s %v", name(e.From), name(e.To), e.Reason, e.Names))
	}
	want := []string{
		"first->join:g order []",
		"join:g->a join []",
		"a->b data+link [x y]",
		"b->c link []",
		"c->join:g join []",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// A name used twice is reported once, in one *DuplicateError, whether the
// repeat is inside one graph flow (where links need unique item names),
// across the tree, or between an atom and a subflow of one graph.
func TestDuplicateReportedOnce(t *testing.T) {
	tests := []struct {
		name string
		flow *flow.Flow
		want []string
	}{
		{"graph", flow.Graph("g", task("a"), task("a"), task("b")), []string{"a"}},
		{"graph and tree", flow.Linear("l", task("a"), flow.Graph("g", task("a"), task("a"))), []string{"a"}},
		{"atom and subflow", flow.Graph("g", task("a"), flow.Linear("a", task("b"))), []string{"a"}},
		{"several", flow.Graph("g", task("a"), task("b"), task("a"), task("b")), []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := flow.Compile(tt.flow)
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("%T %v", err, err)
			}
			var dups []*flow.DuplicateError
			for _, e := range joined.Unwrap() {
				if de, ok := e.(*flow.DuplicateError); ok {
					dups = append(dups, de)
				}
			}
			if len(dups) != 1 || !slices.Equal(dups[0].Names, tt.want) {
				t.Fatalf("%v", err)
			}
		})
	}
}

// Requires is what the flow needs from the store (TaskFlow's
// flow.requires): required names no atom before provides, revert-only
// requirements included, injected and optional names excluded.
func TestRequires(t *testing.T) {
	f := flow.Linear("l",
		task("a", req("image", "flavor"), prov("server")),
		task("b", req("server", "network", "key"), flow.Inject("key", "k"), flow.Optional("tag")),
		task("c", flow.RevertRequires("token"), flow.Rebind("x", "y"), req("x")),
		task("d", req("n")),
	).WithRetry(flow.Times("r", 2, flow.ProvidesAs("n")))
	c, err := flow.Compile(f, flow.WithInputs("image", "flavor", "network", "token", "y", "tag"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Requires(); !slices.Equal(got, []string{"flavor", "image", "network", "token", "y"}) {
		t.Fatal(got)
	}
	if got := c.Inputs(); !slices.Equal(got, []string{"flavor", "image", "network", "tag", "token", "y"}) {
		t.Fatal(got)
	}
}
