package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/store/sqlite"
)

// process is what one process of a durable flow holds: its own database
// connections, registry and tasks. A test makes a second one to resume
// what the first left, as a restarted process would.
type process struct {
	db  *store.DB
	reg *store.Registry

	mu       sync.Mutex
	consumed *servers.Server // what "use" got
	reverted *servers.Server // what "boot"'s revert got
	fetched  [2]string       // the split outputs "use" got
	failUse  bool
	stopped  chan struct{} // closed when "boot" has succeeded, in the first process
}

var created = time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)

func bootResult() *servers.Server {
	return &servers.Server{ID: "srv-1", Name: "web", Status: "ACTIVE", Created: created,
		Addresses: map[string]any{"private": []any{map[string]any{"addr": "10.0.0.5", "version": float64(4)}}},
		Metadata:  map[string]string{"role": "db"}, AdminPass: "nova-generated-Admin-Pass-42"}
}

func newProcess(t *testing.T, path string, failUse bool) *process {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := &process{db: db, reg: &store.Registry{}, failUse: failUse}
	build := func(params map[string]json.RawMessage) (*flow.Flow, map[string]any, error) {
		var name string
		if err := json.Unmarshal(params["name"], &name); err != nil {
			return nil, nil, err
		}
		boot := flow.TaskFunc("boot", func(ctx context.Context, in flow.Inputs) (*servers.Server, error) {
			return bootResult(), nil
		}, flow.Requires("name"), flow.Provides("server")).
			OnRevert(func(ctx context.Context, in flow.Inputs, s *servers.Server, o flow.Outcome) error {
				p.mu.Lock()
				p.reverted = s
				p.mu.Unlock()
				return nil
			})
		split := flow.TaskFunc("split", func(ctx context.Context, in flow.Inputs) ([2]string, error) {
			return [2]string{"left", "right"}, nil
		}, flow.Provides("l", "r"))
		use := flow.TaskFunc("use", func(ctx context.Context, in flow.Inputs) (string, error) {
			s, err := flow.Get[*servers.Server](in, "server")
			if err != nil {
				return "", err
			}
			l, err1 := flow.Get[string](in, "l")
			r, err2 := flow.Get[string](in, "r")
			if err := errors.Join(err1, err2); err != nil {
				return "", err
			}
			p.mu.Lock()
			p.consumed, p.fetched = s, [2]string{l, r}
			p.mu.Unlock()
			if p.failUse {
				return "", errors.New("use failed")
			}
			return s.ID, nil
		}, flow.Requires("server", "l", "r"))
		return flow.Linear("typed", boot, split, use), map[string]any{"name": name}, nil
	}
	if err := p.reg.Register("typed", "1", build); err != nil {
		t.Fatal(err)
	}
	return p
}

// A result keeps its Go type across processes: a *servers.Server a task
// returned before a crash is a *servers.Server for the task that reads it
// after the resume, for Fetch, and for the revert; a split result still
// splits.
func TestTypedValuesAcrossProcesses(t *testing.T) {
	for _, failUse := range []bool{false, true} {
		t.Run(map[bool]string{false: "success", true: "revert"}[failUse], func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "ostask.db")
			first := newProcess(t, path, failUse)
			e, _, err := first.db.Start(ctx, first.reg, store.NewRun{ID: "r1", Flow: "typed", Version: "1",
				Params: map[string]any{"name": "web"}})
			if err != nil {
				t.Fatal(err)
			}
			e.AddListener(engine.ListenerFunc(func(ev engine.Event) {
				if ev.Atom == "split" && ev.To == flow.StateSuccess {
					ev.Engine.Suspend()
				}
			}))
			if err := e.Run(ctx); !errors.Is(err, engine.ErrSuspended) {
				t.Fatalf("first process: %v", err)
			}
			first.db.Close()

			second := newProcess(t, path, failUse)
			e, _, err = second.db.Resume(ctx, second.reg, "r1", "second")
			if err != nil {
				t.Fatal(err)
			}
			err = e.Run(ctx)
			if failUse {
				var fe *engine.FlowError
				if !errors.As(err, &fe) || fe.State != flow.StateReverted {
					t.Fatalf("resume: %v", err)
				}
				if r := second.reverted; r == nil || r.ID != "srv-1" || r.Name != "web" {
					t.Fatalf("revert got %+v", r)
				}
			} else if err != nil {
				t.Fatalf("resume: %v", err)
			}
			s := second.consumed
			want := bootResult()
			if s == nil || s.ID != want.ID || s.Name != want.Name || s.Status != want.Status || !s.Created.Equal(want.Created) ||
				s.Metadata["role"] != "db" || len(s.Addresses["private"].([]any)) != 1 {
				t.Fatalf("the task after the resume got %+v", s)
			}
			if s.AdminPass != "" {
				t.Fatalf("a secret came back from the store: %q", s.AdminPass)
			}
			if second.fetched != [2]string{"left", "right"} {
				t.Fatalf("split outputs %v", second.fetched)
			}
			if !failUse {
				got, err := engine.Fetch[*servers.Server](e, "server")
				if err != nil || got.ID != "srv-1" {
					t.Fatalf("Fetch = %+v, %v", got, err)
				}
			}
		})
	}
}

// A run whose flow or version this process does not know, or that records
// an atom its flow does not have, is refused before anything is written.
func TestResumeRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ostask.db")
	p := newProcess(t, path, false)
	if _, err := p.db.Create(ctx, store.NewRun{ID: "v2", Flow: "typed", Version: "2", Params: map[string]any{"name": "x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.db.Create(ctx, store.NewRun{ID: "other", Flow: "mystery", Version: "1"}); err != nil {
		t.Fatal(err)
	}
	extra, err := p.db.Create(ctx, store.NewRun{ID: "extra", Flow: "typed", Version: "1", Params: map[string]any{"name": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := extra.SaveAtom(ctx, flow.StatePending, engine.AtomRecord{Name: "gone-in-v1", State: flow.StateRunning}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id    string
		check func(error) bool
	}{
		{"v2", func(err error) bool {
			var ue *store.UnknownFlowError
			return errors.As(err, &ue) && ue.Run == "v2" && ue.Version == "2" && len(ue.Known) == 1 && ue.Known[0] == "1"
		}},
		{"other", func(err error) bool {
			var ue *store.UnknownFlowError
			return errors.As(err, &ue) && errors.Is(err, store.ErrUnknownFlow) && ue.Flow == "mystery" && len(ue.Known) == 0
		}},
		{"extra", func(err error) bool {
			var ce *store.CorruptError
			return errors.As(err, &ce) && ce.Run == "extra" && ce.Atom == "gone-in-v1"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			before, err := p.db.Get(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = p.db.Resume(ctx, p.reg, tc.id, "intruder")
			if !tc.check(err) {
				t.Fatalf("Resume = %v", err)
			}
			after, _ := p.db.Get(ctx, tc.id)
			if after.Epoch != before.Epoch || after.Owner != before.Owner || !after.Updated.Equal(before.Updated) {
				t.Fatalf("a refused resume touched the run: %+v -> %+v", before, after)
			}
		})
	}
	t.Run("start", func(t *testing.T) {
		_, _, err := p.db.Start(ctx, p.reg, store.NewRun{ID: "new", Flow: "typed", Version: "9"})
		if !errors.Is(err, store.ErrUnknownFlow) {
			t.Fatalf("Start = %v", err)
		}
		if _, err := p.db.Get(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the refused run was created: %v", err)
		}
	})
	t.Run("register twice", func(t *testing.T) {
		err := p.reg.Register("typed", "1", func(map[string]json.RawMessage) (*flow.Flow, map[string]any, error) { return nil, nil, nil })
		if !errors.Is(err, store.ErrRegistered) {
			t.Fatalf("Register = %v", err)
		}
	})
}
