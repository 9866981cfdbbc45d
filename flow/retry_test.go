package flow_test

import (
	"encoding/json"
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
