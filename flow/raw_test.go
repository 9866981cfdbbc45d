package flow_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ostask/ostask/flow"
)

type server struct {
	ID     string            `json:"id"`
	Status string            `json:"status"`
	Meta   map[string]string `json:"metadata"`
}

// Values read back from a store are raw JSON; the readers decode them
// into the type asked for.
func TestRawValues(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	in := flow.NewInputs(map[string]any{
		"n":      raw(`3`),
		"server": raw(`{"id":"s1","status":"ACTIVE","metadata":{"k":"v"}}`),
		"bad":    raw(`"text"`),
		"raw":    raw(`[1,2]`),
	})
	t.Run("Get", func(t *testing.T) {
		if v, err := flow.Get[int](in, "n"); err != nil || v != 3 {
			t.Fatal(v, err)
		}
		s, err := flow.Get[*server](in, "server")
		if err != nil || s.ID != "s1" || s.Meta["k"] != "v" {
			t.Fatalf("%+v %v", s, err)
		}
		if v, err := flow.Get[json.RawMessage](in, "raw"); err != nil || string(v) != "[1,2]" {
			t.Fatal(string(v), err)
		}
		_, err = flow.Get[int](in, "bad")
		var ie *flow.InputError
		var je *json.UnmarshalTypeError
		if !errors.As(err, &ie) || ie.Name != "bad" || !errors.Is(err, flow.ErrWrongType) || !errors.As(err, &je) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("GetOr", func(t *testing.T) {
		if flow.GetOr(in, "n", 7) != 3 || flow.GetOr(in, "bad", 7) != 7 {
			t.Fatal("GetOr")
		}
	})
	t.Run("As", func(t *testing.T) {
		if v, err := flow.As[string]("plain"); err != nil || v != "plain" {
			t.Fatal(v, err)
		}
		if v, err := flow.As[map[string]int](raw(`{"a":1}`)); err != nil || v["a"] != 1 {
			t.Fatal(v, err)
		}
		if _, err := flow.As[int]("plain"); !errors.Is(err, flow.ErrWrongType) {
			t.Fatal(err)
		}
		if v, err := flow.As[*server](nil); err != nil || v != nil {
			t.Fatal(v, err)
		}
	})
	t.Run("Output", func(t *testing.T) {
		names := []string{"a", "b"}
		cases := []struct {
			result string
			out    int
			want   string
			ok     bool
		}{
			{`{"a":1,"b":"x"}`, 1, `"x"`, true},
			{`{"a":1}`, 1, ``, false},
			{`[10, [2, 3]]`, 1, `[2, 3]`, true},
			{`[10]`, 1, ``, false},
			{`"scalar"`, 0, ``, false},
		}
		for _, c := range cases {
			v, ok := flow.Output(raw(c.result), names, c.out)
			if ok != c.ok || ok && string(v.(json.RawMessage)) != c.want {
				t.Errorf("Output(%s, %d) = %v %v", c.result, c.out, v, ok)
			}
		}
		if v, ok := flow.Output(raw(`{"a":1}`), names, -1); !ok || string(v.(json.RawMessage)) != `{"a":1}` {
			t.Fatal(v, ok)
		}
	})
	t.Run("CheckResult", func(t *testing.T) {
		n := &flow.Node{Name: "t", Provides: []string{"a", "b"}}
		for res, ok := range map[string]bool{`{"a":1}`: true, `[1,2]`: true, `[1]`: false, `7`: false} {
			if err := n.CheckResult(raw(res)); (err == nil) != ok || err != nil && !errors.Is(err, flow.ErrOutputs) {
				t.Errorf("CheckResult(%s) = %v", res, err)
			}
		}
	})
}

// A FuncTask's revert gets its result in its own type after a resume, and
// fails rather than act on a zero value when the stored JSON does not fit.
func TestFuncTaskRevertRaw(t *testing.T) {
	var got *server
	task := flow.TaskFunc("boot", func(context.Context, flow.Inputs) (*server, error) { return nil, nil }).
		OnRevert(func(_ context.Context, _ flow.Inputs, s *server, _ flow.Outcome) error {
			got = s
			return nil
		})
	ctx := context.Background()
	err := task.Revert(ctx, flow.Inputs{}, flow.Outcome{Result: json.RawMessage(`{"id":"s9","status":"ERROR"}`)})
	if err != nil || got == nil || got.ID != "s9" {
		t.Fatalf("revert got %+v, %v", got, err)
	}
	got = nil
	err = task.Revert(ctx, flow.Inputs{}, flow.Outcome{Result: json.RawMessage(`["not", "a", "server"]`)})
	if !errors.Is(err, flow.ErrWrongType) || got != nil {
		t.Fatalf("revert with a bad result: %v (called with %+v)", err, got)
	}
}

func TestParameterizedForEachRaw(t *testing.T) {
	c := flow.ParameterizedForEach("each")
	in := flow.NewInputs(map[string]any{"values": json.RawMessage(`["a", "b"]`)})
	v, err := c.Execute(context.Background(), in, flow.History{Attempts: []flow.Attempt{{}}})
	if err != nil || string(v.(json.RawMessage)) != `"b"` {
		t.Fatal(v, err)
	}
	if d := c.OnFailure(in, flow.History{Attempts: []flow.Attempt{{}}}); d != flow.Retry {
		t.Fatal(d)
	}
	bad := flow.NewInputs(map[string]any{"values": json.RawMessage(`{"a": 1}`)})
	if _, err := c.Execute(context.Background(), bad, flow.History{}); !errors.Is(err, flow.ErrWrongType) {
		t.Fatal(err)
	}
}
