package flow_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ostask/ostask/flow"
)

func TestInputs(t *testing.T) {
	in := flow.NewInputs(map[string]any{"n": 3, "s": "x", "nil": nil})
	if v, err := flow.Get[int](in, "n"); err != nil || v != 3 {
		t.Fatal(v, err)
	}
	if _, err := flow.Get[int](in, "s"); !errors.Is(err, flow.ErrWrongType) || err.Error() != `flow: input "s" is string, not int` {
		t.Fatal(err)
	}
	if _, err := flow.Get[int](in, "none"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatal(err)
	}
	if v, err := flow.Get[error](in, "nil"); err != nil || v != nil {
		t.Fatal(v, err)
	}
	if flow.GetOr(in, "none", 7) != 7 || flow.GetOr(in, "n", 7) != 3 {
		t.Fatal("GetOr")
	}
	opt := flow.MakeInputs([]string{"a", "b"}, []any{1, flow.Absent()})
	if _, ok := opt.Lookup("b"); ok || opt.Len() != 2 || len(opt.Map()) != 1 {
		t.Fatal("absent optional input is visible")
	}
}

func TestFuncTaskRevert(t *testing.T) {
	var gotR int
	var gotF *flow.Failure
	var gotFlow []*flow.Failure
	tk := flow.TaskFunc("t", func(context.Context, flow.Inputs) (int, error) { return 5, nil },
		flow.Version("2"), flow.Timeout(time.Second)).
		OnRevert(func(_ context.Context, _ flow.Inputs, r int, o flow.Outcome) error {
			gotR, gotF, gotFlow = r, o.Failure, o.FlowFailures
			return nil
		})
	if s := tk.Spec(); s.Version != "2" || s.Timeout != time.Second {
		t.Fatal(s)
	}
	r, err := tk.Execute(context.Background(), flow.Inputs{})
	if err != nil || r != 5 {
		t.Fatal(r, err)
	}
	fail := flow.NewFailure("t", errors.New("x"))
	other := flow.NewFailure("u", errors.New("y"))
	_ = tk.Revert(context.Background(), flow.Inputs{}, flow.Outcome{Result: r, FlowFailures: []*flow.Failure{other}})
	if gotR != 5 || gotF != nil || len(gotFlow) != 1 || gotFlow[0] != other {
		t.Fatal(gotR, gotF, gotFlow)
	}
	_ = tk.Revert(context.Background(), flow.Inputs{}, flow.Outcome{Failure: fail, FlowFailures: []*flow.Failure{fail}})
	if gotR != 0 || gotF != fail || len(gotFlow) != 1 || gotFlow[0] != fail {
		t.Fatal(gotR, gotF, gotFlow)
	}
	errT := flow.TaskFunc("e", func(context.Context, flow.Inputs) (int, error) { return 1, errors.New("bad") })
	if r, err := errT.Execute(context.Background(), flow.Inputs{}); err == nil || r != nil {
		t.Fatal(r, err)
	}
	if errT.Revert(context.Background(), flow.Inputs{}, flow.Outcome{}) != nil {
		t.Fatal("default revert")
	}
}

func TestFailure(t *testing.T) {
	base := errors.New("root")
	p := &flow.PanicError{Value: base, Stack: []byte("stack")}
	f := flow.NewFailure("a", p)
	if !errors.Is(f, base) || f.Stack != "stack" || f.Error() != "a: panic: root" || f.Type != "*flow.PanicError" {
		t.Fatalf("%+v", f)
	}
	if (&flow.Failure{Message: "m"}).Error() != "m" {
		t.Fatal("no atom")
	}
}

func TestControllers(t *testing.T) {
	ctx := context.Background()
	h := func(n int) flow.History { return flow.History{Attempts: make([]flow.Attempt, n)} }
	tm := flow.Times("t", 3)
	if v, _ := tm.Execute(ctx, flow.Inputs{}, h(1)); v != 2 {
		t.Fatal(v)
	}
	if tm.OnFailure(flow.Inputs{}, h(2)) != flow.Retry || tm.OnFailure(flow.Inputs{}, h(3)) != flow.Revert {
		t.Fatal("times")
	}
	if flow.Times("t", 1, flow.RevertAllOnGiveUp()).OnFailure(flow.Inputs{}, h(1)) != flow.RevertAll {
		t.Fatal("revert all")
	}
	fe := flow.ForEach("f", []string{"a", "a"})
	if v, _ := fe.Execute(ctx, flow.Inputs{}, h(1)); v != "a" {
		t.Fatal(v)
	}
	if _, err := fe.Execute(ctx, flow.Inputs{}, h(2)); err == nil {
		t.Fatal("no values left")
	}
	pf := flow.ParameterizedForEach("p")
	in := flow.NewInputs(map[string]any{"values": []any{1, 2}})
	if v, _ := pf.Execute(ctx, in, h(1)); v != 2 || pf.OnFailure(in, h(1)) != flow.Retry || pf.OnFailure(in, h(2)) != flow.Revert {
		t.Fatal(v)
	}
	if _, err := pf.Execute(ctx, flow.NewInputs(map[string]any{"values": 3}), h(0)); !errors.Is(err, flow.ErrWrongType) {
		t.Fatal(err)
	}
	if pf.OnFailure(flow.Inputs{}, h(0)) != flow.Revert {
		t.Fatal("unreadable values must give up")
	}
	b := flow.Times("b", 9, flow.Backoff(time.Second, 5*time.Second))
	var got []time.Duration
	for i := 1; i <= 5; i++ {
		got = append(got, b.Delay(h(i)))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatal(got)
		}
	}
	if flow.Times("d", 2, flow.Delay(time.Minute)).Delay(h(4)) != time.Minute || tm.Delay(h(1)) != 0 {
		t.Fatal("delay")
	}
	if flow.Retry.String() != "RETRY" || flow.RevertAll.String() != "REVERT_ALL" {
		t.Fatal("decision names")
	}
}

// A result split over several Provides names may be any map with string
// keys, or any slice or array (one element per name).
func TestOutput(t *testing.T) {
	names := []string{"a", "b"}
	tests := []struct {
		name   string
		result any
		want   []any // per output; nil: absent
	}{
		{"values", flow.Values{"a": 1, "b": "x"}, []any{1, "x"}},
		{"map any", map[string]any{"b": 2}, []any{nil, 2}},
		{"typed map", map[string]int{"a": 1, "b": 2}, []any{1, 2}},
		{"named key type", map[key]int{"a": 1}, []any{1, nil}},
		{"[]any", []any{1, "x"}, []any{1, "x"}},
		{"[]int", []int{3, 4}, []any{3, 4}},
		{"array", [2]string{"p", "q"}, []any{"p", "q"}},
		{"short", []int{3}, []any{3, nil}},
		{"scalar", 5, []any{nil, nil}},
		{"nil", nil, []any{nil, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, w := range tt.want {
				v, ok := flow.Output(tt.result, names, i)
				if ok != (w != nil) || ok && v != w {
					t.Fatalf("output %d = %v %v, want %v", i, v, ok, w)
				}
			}
			if v, ok := flow.Output(tt.result, names, -1); !ok || fmt.Sprint(v) != fmt.Sprint(tt.result) {
				t.Fatal("the whole result")
			}
		})
	}
}

type key string

// Compile rejects a FuncTask whose result type cannot be split over its
// Provides names, naming the atom; the engine checks the others when they
// return.
func TestCompileChecksResultType(t *testing.T) {
	two := flow.Provides("x", "y")
	tests := []struct {
		name string
		task flow.Task
		ok   bool
	}{
		{"int", flow.TaskFunc("t", func(context.Context, flow.Inputs) (int, error) { return 0, nil }, two), false},
		{"long array", flow.TaskFunc("t", func(context.Context, flow.Inputs) ([3]int, error) { return [3]int{}, nil }, two), false},
		{"int keys", flow.TaskFunc("t", func(context.Context, flow.Inputs) (map[int]int, error) { return nil, nil }, two), false},
		{"bound int", flow.Bind(flow.TaskFunc("t", func(context.Context, flow.Inputs) (int, error) { return 0, nil }), two), false},
		{"array", flow.TaskFunc("t", func(context.Context, flow.Inputs) ([2]int, error) { return [2]int{}, nil }, two), true},
		{"slice", flow.TaskFunc("t", func(context.Context, flow.Inputs) ([]int, error) { return nil, nil }, two), true},
		{"map", flow.TaskFunc("t", func(context.Context, flow.Inputs) (map[string]int, error) { return nil, nil }, two), true},
		{"values", flow.TaskFunc("t", func(context.Context, flow.Inputs) (flow.Values, error) { return nil, nil }, two), true},
		{"any", flow.TaskFunc("t", func(context.Context, flow.Inputs) (any, error) { return nil, nil }, two), true},
		{"one name", flow.TaskFunc("t", func(context.Context, flow.Inputs) (int, error) { return 0, nil }, flow.Provides("x")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := flow.Compile(flow.Linear("l", tt.task))
			var oe *flow.OutputError
			if tt.ok != (err == nil) || !tt.ok && (!errors.As(err, &oe) || oe.Atom != "t" || !errors.Is(err, flow.ErrOutputs)) {
				t.Fatalf("%v", err)
			}
		})
	}
}
