package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/store"
)

// testFreshLoad checks that the first Load of a handle from Create (which
// reads nothing) answers exactly what a read-back gives: the same flow
// state, no atoms, and the same store values, byte for byte and of the
// same types, after redaction.
func testFreshLoad(t *testing.T, h Harness) {
	ctx := context.Background()
	db := h.Open(t, store.WithSecrets(secretPassword))
	db.AddSecrets(secretNested)
	type spec struct {
		Flavor  string            `json:"flavor"`
		Volumes []int             `json:"volumes,omitempty"`
		Meta    map[string]string `json:"meta"`
		Secret  string            `json:"-"`
	}
	shapes := []struct {
		name   string
		params map[string]any
	}{
		{"nil", nil},
		{"empty", map[string]any{}},
		{"scalars", map[string]any{"s": "web", "i": 42, "big": int64(1) << 60, "f": 0.1, "e": 1e21,
			"neg": -3.5, "t": true, "n": nil, "u": uint8(7)}},
		{"text to escape", map[string]any{"html": "<a href='x'>&</a>", "unicode": "héllo \u2028 ☃ 𝄞", "ctl": "tab\tnl\n\x01",
			"quote": `"q" \ back`}},
		{"nested", map[string]any{"spec": spec{Flavor: "m1.small", Volumes: []int{1, 2}, Meta: map[string]string{"b": "2", "a": "1"}, Secret: "x"},
			"list": []any{1, "two", []any{3.0, map[string]any{"four": 4}}, nil}, "deep": map[string]any{"z": map[string]any{"y": map[string]any{}}}}},
		{"raw JSON", map[string]any{"raw": json.RawMessage(` { "b" : [1, 2] , "a" : null } `)}},
		{"redacted", map[string]any{"os_password": secretPassword, "note": "uses " + secretPassword + " here",
			"auth": map[string]any{"credential": map[string]any{"secret": secretNested, "id": "cred-visible"}}}},
	}
	for i, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			id := fmt.Sprintf("fresh-%d", i)
			r, err := db.Create(ctx, store.NewRun{ID: id, Flow: "f", Version: "1", Params: sh.params})
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := r.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			read, err := r.Load(ctx) // a later Load reads the database
			if err != nil {
				t.Fatal(err)
			}
			if fresh.Flow != flow.StatePending || fresh.Atoms == nil || len(fresh.Atoms) != 0 {
				t.Fatalf("fresh snapshot %+v: want PENDING with no atoms", fresh)
			}
			if !reflect.DeepEqual(fresh, read) {
				t.Fatalf("the first Load differs from a read-back:\n first %#v\n read  %#v", fresh, read)
			}
			other, err := h.Reopen(t, db)
			if err != nil {
				t.Fatal(err)
			}
			info, err := other.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Params) != len(fresh.Values) {
				t.Fatalf("another process reads %d values, the first Load %d", len(info.Params), len(fresh.Values))
			}
			for k, v := range fresh.Values {
				raw, ok := v.(json.RawMessage)
				if !ok {
					t.Fatalf("value %q is a %T, want json.RawMessage", k, v)
				}
				if !bytes.Equal(raw, info.Params[k]) {
					t.Fatalf("value %q: first Load %s, another process reads %s", k, raw, info.Params[k])
				}
				for _, s := range []string{secretPassword, secretNested} {
					if bytes.Contains(raw, []byte(s)) {
						t.Fatalf("value %q shows a secret: %s", k, raw)
					}
				}
			}
		})
	}

	t.Run("a write first: Load reads", func(t *testing.T) {
		r, err := db.Create(ctx, store.NewRun{ID: "fresh-w", Flow: "f", Params: map[string]any{"a": 1}})
		if err != nil {
			t.Fatal(err)
		}
		batch(t, r, store.SetValues(map[string]any{"a": 2}),
			store.AtomMove(flow.StatePending, engine.AtomRecord{Name: "x", State: flow.StateRunning}))
		snap, err := r.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(snap.Values["a"].(json.RawMessage)) != "2" || snap.Atoms["x"].State != flow.StateRunning {
			t.Fatalf("Load after a write = %+v, want what was written", snap)
		}
	})

	t.Run("a failed write first: Load reads", func(t *testing.T) {
		r, err := db.Create(ctx, store.NewRun{ID: "fresh-f", Flow: "f"})
		if err != nil {
			t.Fatal(err)
		}
		// Not this handle's write: the run moved on under the same epoch.
		h.Exec(t, db, "UPDATE ostask_runs SET state = 'RUNNING', seq = 1 WHERE id = 'fresh-f'")
		if err := r.SaveFlow(ctx, flow.StatePending, flow.StateRunning); !errors.Is(err, engine.ErrConflict) {
			t.Fatalf("SaveFlow = %v, want a conflict", err)
		}
		snap, err := r.Load(ctx)
		if err != nil || snap.Flow != flow.StateRunning {
			t.Fatalf("Load after a failed write = %v %v, want the stored RUNNING", snap.Flow, err)
		}
	})

	t.Run("taken over before the first Load: the first write is fenced", func(t *testing.T) {
		r, err := db.Create(ctx, store.NewRun{ID: "fresh-t", Flow: "f"})
		if err != nil {
			t.Fatal(err)
		}
		cur, err := db.Acquire(ctx, "fresh-t", "owner-2")
		if err != nil {
			t.Fatal(err)
		}
		batch(t, cur, store.FlowMove(flow.StatePending, flow.StateRunning))
		snap, err := r.Load(ctx)
		if err != nil || snap.Flow != flow.StatePending {
			t.Fatalf("first Load = %v %v", snap.Flow, err)
		}
		var fe *store.FencedError
		if err := r.SaveFlow(ctx, flow.StatePending, flow.StateRunning); !errors.As(err, &fe) || fe.Current != cur.Epoch() {
			t.Fatalf("first write = %v, want a *FencedError", err)
		}
	})

	t.Run("closed", func(t *testing.T) {
		db := h.Open(t)
		r := create(t, db, "fresh-c")
		db.Close()
		if _, err := r.Load(ctx); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Load after Close = %v, want ErrClosed", err)
		}
	})
}
