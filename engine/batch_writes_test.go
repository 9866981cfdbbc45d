package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

// batchLog is a Batcher over Memory that records each SaveBatch.
type batchLog struct {
	engine.Memory
	mu     sync.Mutex
	writes []string
}

func (b *batchLog) SaveBatch(ctx context.Context, ts []engine.Transition) error {
	var w []string
	for _, t := range ts {
		var err error
		switch t.Kind {
		case engine.TransitionFlow:
			err = b.SaveFlow(ctx, t.From, t.To)
			w = append(w, fmt.Sprintf(":%s>%s", t.From, t.To))
		case engine.TransitionAtom:
			err = b.SaveAtom(ctx, t.From, t.Atom)
			w = append(w, fmt.Sprintf("%s:%s>%s", t.Atom.Name, t.From, t.Atom.State))
		case engine.TransitionValues:
			err = b.SaveValues(ctx, t.Values)
			w = append(w, "values")
		}
		if err != nil {
			return err
		}
	}
	b.mu.Lock()
	b.writes = append(b.writes, strings.Join(w, " "))
	b.mu.Unlock()
	return nil
}

// A flow's last completions are recorded with its end, in one write: a
// one-step flow is two durable writes (its start, its end), and each
// step of a linear flow adds one.
func TestLastCompletionsWrittenWithTheEnd(t *testing.T) {
	noop := func(name string) flow.Task {
		return flow.TaskFunc(name, func(context.Context, flow.Inputs) (any, error) { return nil, nil })
	}
	for _, tc := range []struct {
		name   string
		f      *flow.Flow
		serial bool
		want   int
	}{
		{"one step", flow.Linear("one", noop("a")), false, 2},
		{"two steps", flow.Linear("two", noop("a"), noop("b")), false, 3},
		{"two steps, one worker", flow.Linear("two", noop("a"), noop("b")), true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &batchLog{}
			opts := []engine.Option{engine.WithStorage(b)}
			if tc.serial {
				opts = append(opts, engine.Parallel(1))
			}
			if _, err := engine.Run(context.Background(), tc.f, opts...); err != nil {
				t.Fatal(err)
			}
			last := b.writes[len(b.writes)-1]
			if len(b.writes) != tc.want || !strings.Contains(last, ">SUCCESS") || !strings.HasSuffix(last, ":RUNNING>SUCCESS") ||
				strings.Count(last, ">") < 2 {
				t.Fatalf("writes %q: want %d, the last one the last step's SUCCESS with the flow's", b.writes, tc.want)
			}
		})
	}
}
