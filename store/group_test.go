package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/store/sqlite"
)

// gated is the SQLite driver with the writes recorded and, when asked, the
// next single write or the next group held until released.
type gated struct {
	*sqlite.Driver
	mu         sync.Mutex
	singles    []string   // runs written alone, in order
	groups     [][]string // runs of each group, in order
	holdSingle chan struct{}
	holdGroup  chan struct{}
	entered    chan struct{} // a held write has started
	groupCtx   error         // the group's context error once released
	lose       int           // commit the next groups, then report a lost answer
}

func (g *gated) hold(h *chan struct{}) {
	g.mu.Lock()
	c := *h
	*h = nil
	g.mu.Unlock()
	if c != nil {
		g.entered <- struct{}{}
		<-c
	}
}

func (g *gated) Apply(ctx context.Context, b *store.Batch) error {
	g.hold(&g.holdSingle)
	g.mu.Lock()
	g.singles = append(g.singles, b.Run)
	g.mu.Unlock()
	return g.Driver.Apply(ctx, b)
}

func (g *gated) ApplyGroup(ctx context.Context, bs []*store.Batch) error {
	g.hold(&g.holdGroup)
	var runs []string
	for _, b := range bs {
		runs = append(runs, b.Run)
	}
	g.mu.Lock()
	g.groups = append(g.groups, runs)
	g.groupCtx = ctx.Err()
	lose := g.lose > 0
	if lose {
		g.lose--
	}
	g.mu.Unlock()
	err := g.Driver.ApplyGroup(ctx, bs)
	if err == nil && lose {
		return errTransient
	}
	return err
}

func (g *gated) Retryable(err error) bool {
	return errors.Is(err, errTransient) || g.Driver.Retryable(err)
}

// groupSetup opens a DB on a gated driver with runs r0..r(n-1), and counts
// the writes that join the queue on queued.
func groupSetup(t *testing.T, n int, opts ...store.Option) (*gated, *store.DB, []*store.Run, chan struct{}) {
	t.Helper()
	d, err := sqlite.NewDriver(filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	g := &gated{Driver: d, entered: make(chan struct{}, 1)}
	opts = append([]store.Option{store.WithRetryPolicy(policy), store.WithRetrySleep(noWait)}, opts...)
	db, err := store.New(context.Background(), g, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	queued := make(chan struct{}, n)
	store.OnQueued(db, func() { queued <- struct{}{} })
	runs := make([]*store.Run, n)
	for i := range runs {
		if runs[i], err = db.Create(context.Background(), store.NewRun{ID: runID(i), Flow: "f"}); err != nil {
			t.Fatal(err)
		}
	}
	g.mu.Lock()
	g.singles = nil // the creations
	g.mu.Unlock()
	return g, db, runs, queued
}

// noWait retries at once: several runs retry at the same time here.
func noWait(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func runID(i int) string { return "r" + string(rune('0'+i)) }

// recv waits for a signal; the deadline only turns a hang into a failure.
func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
		panic("unreachable")
	}
}

// start runs fn in a goroutine and returns its error on a channel.
func start(fn func() error) <-chan error {
	c := make(chan error, 1)
	go func() { c <- fn() }()
	return c
}

func flowState(t *testing.T, db *store.DB, id string) flow.State {
	t.Helper()
	info, err := db.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

// holdFirst starts r0's write and holds it in the driver, so that the
// next writes queue behind it; then it starts the writes of runs[1:]
// (with the contexts given, Background when nil) and waits until all have
// queued.
func holdFirst(t *testing.T, g *gated, runs []*store.Run, queued chan struct{}, ctxs map[int]context.Context) (release func(), results []<-chan error) {
	t.Helper()
	hold := make(chan struct{})
	g.holdSingle = hold
	results = make([]<-chan error, len(runs))
	results[0] = start(func() error { return runs[0].SaveFlow(context.Background(), flow.StatePending, flow.StateRunning) })
	recv(t, g.entered, "write in progress")
	for i := 1; i < len(runs); i++ {
		ctx := ctxs[i]
		if ctx == nil {
			ctx = context.Background()
		}
		results[i] = start(func() error { return runs[i].SaveFlow(ctx, flow.StatePending, flow.StateRunning) })
		recv(t, queued, "queued write")
	}
	return func() { close(hold) }, results
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

func TestGroupCommit(t *testing.T) {
	ctx := context.Background()

	t.Run("writes ready together share one transaction", func(t *testing.T) {
		g, db, runs, queued := groupSetup(t, 5)
		release, results := holdFirst(t, g, runs, queued, nil)
		release()
		for i, c := range results {
			if err := recv(t, c, "result"); err != nil {
				t.Fatalf("run %d: %v", i, err)
			}
		}
		if !slices.Equal(g.singles, []string{"r0"}) || len(g.groups) != 1 || !slices.Equal(sorted(g.groups[0]), []string{"r1", "r2", "r3", "r4"}) {
			t.Fatalf("alone %v, groups %v; want r0 alone, then r1..r4 in one transaction", g.singles, g.groups)
		}
		for i := range runs {
			if s := flowState(t, db, runID(i)); s != flow.StateRunning {
				t.Fatalf("run %d is %v", i, s)
			}
		}
		// The handles' sequences followed: they write on.
		for _, r := range runs {
			if err := r.SaveFlow(ctx, flow.StateRunning, flow.StateSuccess); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("a fenced run's write fails alone", func(t *testing.T) {
		g, db, runs, queued := groupSetup(t, 4)
		if _, err := db.Acquire(ctx, "r2", "other"); err != nil {
			t.Fatal(err)
		}
		release, results := holdFirst(t, g, runs, queued, nil)
		release()
		for i, c := range results {
			err := recv(t, c, "result")
			var fe *store.FencedError
			if i == 2 && (!errors.As(err, &fe) || fe.Run != "r2" || fe.Owner != "other") {
				t.Fatalf("r2: %v, want a *FencedError", err)
			}
			if i != 2 && err != nil {
				t.Fatalf("run %d failed with the fenced one: %v", i, err)
			}
		}
		if len(g.groups) != 2 || !slices.Contains(g.groups[0], "r2") || !slices.Equal(sorted(g.groups[1]), []string{"r1", "r3"}) {
			t.Fatalf("groups %v: want r2 dropped from the second attempt", g.groups)
		}
		if s := flowState(t, db, "r2"); s != flow.StatePending {
			t.Fatalf("the fenced write changed r2: %v", s)
		}
		if s := flowState(t, db, "r3"); s != flow.StateRunning {
			t.Fatalf("r3 is %v", s)
		}
	})

	t.Run("a conflicting run's write fails alone", func(t *testing.T) {
		g, db, runs, queued := groupSetup(t, 4)
		hold := make(chan struct{})
		g.holdSingle = hold
		first := start(func() error { return runs[0].SaveFlow(ctx, flow.StatePending, flow.StateRunning) })
		recv(t, g.entered, "write in progress")
		results := []<-chan error{
			start(func() error { return runs[1].SaveFlow(ctx, flow.StatePending, flow.StateRunning) }),
		}
		recv(t, queued, "queued write")
		// r2 says its atom was RUNNING; it was never started.
		results = append(results, start(func() error {
			return runs[2].SaveAtom(ctx, flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateSuccess})
		}))
		recv(t, queued, "queued write")
		results = append(results, start(func() error { return runs[3].SaveFlow(ctx, flow.StatePending, flow.StateRunning) }))
		recv(t, queued, "queued write")
		close(hold)
		if err := recv(t, first, "result"); err != nil {
			t.Fatal(err)
		}
		for i, c := range results {
			err := recv(t, c, "result")
			var ce *store.ConflictError
			if i == 1 && (!errors.As(err, &ce) || ce.Run != "r2" || ce.Atom != "a" || !ce.Missing) {
				t.Fatalf("r2: %v, want a *ConflictError on atom a", err)
			}
			if i != 1 && err != nil {
				t.Fatalf("write %d failed with the conflicting one: %v", i, err)
			}
		}
		if _, atoms, _ := db.Show(ctx, "r2"); len(atoms) != 0 {
			t.Fatalf("r2 atoms %+v", atoms)
		}
	})

	t.Run("a write given up while queued is never sent", func(t *testing.T) {
		g, db, runs, queued := groupSetup(t, 4)
		cctx, cancel := context.WithCancel(ctx)
		release, results := holdFirst(t, g, runs, queued, map[int]context.Context{2: cctx})
		cancel()
		if err := recv(t, results[2], "result"); !errors.Is(err, context.Canceled) {
			t.Fatalf("r2: %v, want context.Canceled", err)
		}
		release()
		for i, c := range results {
			if i != 2 {
				if err := recv(t, c, "result"); err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
			}
		}
		if len(g.groups) != 1 || slices.Contains(g.groups[0], "r2") || slices.Contains(g.singles, "r2") {
			t.Fatalf("alone %v, groups %v: r2 was sent", g.singles, g.groups)
		}
		if s := flowState(t, db, "r2"); s != flow.StatePending {
			t.Fatalf("r2 is %v", s)
		}
	})

	t.Run("a caller that gives up does not end the others' transaction", func(t *testing.T) {
		g, db, runs, queued := groupSetup(t, 4)
		cctx, cancel := context.WithCancel(ctx)
		release, results := holdFirst(t, g, runs, queued, map[int]context.Context{1: cctx})
		holdGroup := make(chan struct{})
		g.holdGroup = holdGroup
		release()
		recv(t, g.entered, "group in progress")
		cancel()
		// r1 returns while its group is still held: its outcome is unknown.
		if err := recv(t, results[1], "result"); !errors.Is(err, context.Canceled) {
			t.Fatalf("r1: %v, want context.Canceled", err)
		}
		close(holdGroup)
		for i, c := range results {
			if i != 1 {
				if err := recv(t, c, "result"); err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
			}
		}
		if g.groupCtx != nil {
			t.Fatalf("the group's context ended with one caller's: %v", g.groupCtx)
		}
		for _, id := range []string{"r2", "r3"} {
			if s := flowState(t, db, id); s != flow.StateRunning {
				t.Fatalf("%s is %v", id, s)
			}
		}
	})

	t.Run("a lost answer to a group's commit is no conflict for any of them", func(t *testing.T) {
		g, _, runs, queued := groupSetup(t, 4)
		g.lose = 1
		release, results := holdFirst(t, g, runs, queued, nil)
		release()
		for i, c := range results {
			if err := recv(t, c, "result"); err != nil {
				t.Fatalf("run %d: %v", i, err)
			}
		}
		for _, r := range runs {
			if err := r.SaveFlow(ctx, flow.StateRunning, flow.StateSuccess); err != nil {
				t.Fatalf("%s after the lost answer: %v", r.ID(), err)
			}
		}
	})

	t.Run("close answers the queued writes", func(t *testing.T) {
		g, db, runs, queued := groupSetup(t, 3)
		release, results := holdFirst(t, g, runs, queued, nil)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(results); i++ {
			if err := recv(t, results[i], "result"); !errors.Is(err, store.ErrClosed) {
				t.Fatalf("run %d: %v, want ErrClosed", i, err)
			}
		}
		release()
		recv(t, results[0], "result") // the write in progress ends, one way or the other
	})

	t.Run("creations ready together share one transaction with other writes", func(t *testing.T) {
		g, db, runs, queued := groupSetup(t, 2)
		hold := make(chan struct{})
		g.holdSingle = hold
		first := start(func() error { return runs[0].SaveFlow(ctx, flow.StatePending, flow.StateRunning) })
		recv(t, g.entered, "write in progress")
		results := []<-chan error{start(func() error { return runs[1].SaveFlow(ctx, flow.StatePending, flow.StateRunning) })}
		recv(t, queued, "queued write")
		handles := make([]*store.Run, 3)
		for i := range handles {
			results = append(results, start(func() error {
				var err error
				handles[i], err = db.Create(ctx, store.NewRun{ID: "new" + runID(i), Flow: "f"})
				return err
			}))
			recv(t, queued, "queued creation")
		}
		close(hold)
		if err := recv(t, first, "result"); err != nil {
			t.Fatal(err)
		}
		for i, c := range results {
			if err := recv(t, c, "result"); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		if !slices.Equal(g.singles, []string{"r0"}) || len(g.groups) != 1 || !slices.Equal(sorted(g.groups[0]), []string{"newr0", "newr1", "newr2", "r1"}) {
			t.Fatalf("alone %v, groups %v; want r0 alone, then r1 and the three creations in one transaction", g.singles, g.groups)
		}
		for _, h := range handles {
			if s := flowState(t, db, h.ID()); s != flow.StatePending {
				t.Fatalf("%s is %v", h.ID(), s)
			}
			if err := h.SaveFlow(ctx, flow.StatePending, flow.StateRunning); err != nil {
				t.Fatalf("%s after its creation: %v", h.ID(), err)
			}
		}
	})

	t.Run("a creation whose id is taken fails alone", func(t *testing.T) {
		g, db, runs, queued := groupSetup(t, 2)
		hold := make(chan struct{})
		g.holdSingle = hold
		first := start(func() error { return runs[0].SaveFlow(ctx, flow.StatePending, flow.StateRunning) })
		recv(t, g.entered, "write in progress")
		var results []<-chan error
		for _, id := range []string{"new0", "r1", "new1"} {
			results = append(results, start(func() error {
				_, err := db.Create(ctx, store.NewRun{ID: id, Flow: "f"})
				return err
			}))
			recv(t, queued, "queued creation")
		}
		results = append(results, start(func() error { return runs[1].SaveFlow(ctx, flow.StatePending, flow.StateRunning) }))
		recv(t, queued, "queued write")
		close(hold)
		if err := recv(t, first, "result"); err != nil {
			t.Fatal(err)
		}
		for i, c := range results {
			err := recv(t, c, "result")
			if i == 1 && !errors.Is(err, store.ErrExists) {
				t.Fatalf("creation of r1: %v, want ErrExists", err)
			}
			if i != 1 && err != nil {
				t.Fatalf("write %d failed with the taken id: %v", i, err)
			}
		}
		if len(g.groups) != 2 || !slices.Contains(g.groups[0], "r1") || !slices.Equal(sorted(g.groups[1]), []string{"new0", "new1", "r1"}) {
			t.Fatalf("groups %v: want the taken id's creation dropped from the second attempt", g.groups)
		}
		// r1 itself was not touched by the failed creation, and was written once.
		if s := flowState(t, db, "r1"); s != flow.StateRunning {
			t.Fatalf("r1 is %v", s)
		}
		for _, id := range []string{"new0", "new1"} {
			if s := flowState(t, db, id); s != flow.StatePending {
				t.Fatalf("%s is %v", id, s)
			}
		}
	})

	t.Run("off: every write alone", func(t *testing.T) {
		g, _, runs, _ := groupSetup(t, 8, store.WithGroupCommit(1))
		var wg sync.WaitGroup
		for _, r := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := r.SaveFlow(ctx, flow.StatePending, flow.StateRunning); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if len(g.groups) != 0 || len(g.singles) != len(runs) {
			t.Fatalf("alone %v, groups %v", g.singles, g.groups)
		}
	})
}
