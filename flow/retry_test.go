package flow_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ostask/ostask/flow"
)

// Decisions are recorded by durable stores: they must survive JSON, and
// the zero Decision (none made) must vanish from an omitempty field.
func TestDecisionText(t *testing.T) {
	type rec struct {
		D flow.Decision `json:"d,omitempty"`
	}
	tests := []struct {
		d    flow.Decision
		json string
	}{{0, `{}`}, {flow.Retry, `{"d":"RETRY"}`}, {flow.Revert, `{"d":"REVERT"}`}, {flow.RevertAll, `{"d":"REVERT_ALL"}`}}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			b, err := json.Marshal(rec{tt.d})
			if err != nil || string(b) != tt.json {
				t.Fatalf("%s %v", b, err)
			}
			var back rec
			if err := json.Unmarshal(b, &back); err != nil || back.D != tt.d {
				t.Fatalf("%v %v", back.D, err)
			}
		})
	}
	if _, err := json.Marshal(rec{flow.Decision(9)}); err == nil {
		t.Fatal("an unknown decision must not encode")
	}
	var back rec
	if err := json.Unmarshal([]byte(`{"d":"MAYBE"}`), &back); err == nil {
		t.Fatal("an unknown decision must not decode")
	}
}

// ParameterizedForEach takes any slice or array from the store, such as a
// plain []int, and refuses anything else with ErrWrongType.
func TestParameterizedForEachValues(t *testing.T) {
	h := func(n int) flow.History { return flow.History{Attempts: make([]flow.Attempt, n)} }
	tests := []struct {
		name   string
		values any
		second any // the value of the second attempt
	}{
		{"[]int", []int{1, 2, 3}, 2},
		{"[]any", []any{"a", 2}, 2},
		{"array", [2]string{"x", "y"}, "y"},
		{"[]struct", []struct{ N int }{{1}, {7}}, struct{ N int }{7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pf := flow.ParameterizedForEach("p")
			in := flow.NewInputs(map[string]any{"values": tt.values})
			v, err := pf.Execute(context.Background(), in, h(1))
			if err != nil || v != tt.second || pf.OnFailure(in, h(1)) != flow.Retry {
				t.Fatal(v, err)
			}
		})
	}
	pf := flow.ParameterizedForEach("p")
	for _, bad := range []any{3, "abc", map[string]int{}} {
		if _, err := pf.Execute(context.Background(), flow.NewInputs(map[string]any{"values": bad}), h(0)); !errors.Is(err, flow.ErrWrongType) {
			t.Fatalf("%T: %v", bad, err)
		}
	}
}
