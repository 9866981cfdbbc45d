package engine_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/ostask/ostask/flow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// journal records what tasks did, safely from many goroutines.
type journal struct {
	mu  sync.Mutex
	log []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	j.log = append(j.log, s)
	j.mu.Unlock()
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.log)
}

var errBoom = errors.New("boom")

// rec returns a task that journals "x:name" and "r:name", and fails when fail is set.
func rec(j *journal, name string, fail bool, opts ...flow.Option) flow.Task {
	return flow.TaskFunc(name, func(ctx context.Context, in flow.Inputs) (string, error) {
		j.add("x:" + name)
		if fail {
			return "", errBoom
		}
		return name, nil
	}, opts...).OnRevert(func(ctx context.Context, in flow.Inputs, r string, o flow.Outcome) error {
		j.add("r:" + name)
		return nil
	})
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}
