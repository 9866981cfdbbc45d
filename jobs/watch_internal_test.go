package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// openTwo opens two queues on one database, as two processes would.
func openTwo(t *testing.T, db string, poll time.Duration) (a, b *Queue) {
	t.Helper()
	cfg := testConfig(t, db, poll)
	var qs [2]*Queue
	for i := range qs {
		q, err := Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		qs[i] = q
	}
	return qs[0], qs[1]
}

// TestWatcherWakesFollowersOfAnotherProcessesChange: many followers of one
// queue (of a task's events, and of the live list) all wait on the
// queue's one watcher; a change that another queue on the same database
// commits wakes every one still waiting at the first look whose horizon
// covers it, and none before.
func TestWatcherWakesFollowersOfAnotherProcessesChange(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			const k = 64
			a, b := openTwo(t, db, 20*time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a failure guard only
			defer cancel()
			task, _, err := a.Create(ctx, NewTask{Kind: "noop", Project: "p", Params: json.RawMessage(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			_, cursor, err := a.Changes(ctx, Filter{}, -1)
			if err != nil {
				t.Fatal(err)
			}
			var events int64
			var status string
			if err := a.db.queryRow(ctx, qry("task_wait"), task.ID).Scan(&events, &status); err != nil {
				t.Fatal(err)
			}
			// One look first, so that the followers register with a
			// known horizon.
			if err := a.WaitChanges(ctx, -1); err != nil {
				t.Fatal(err)
			}

			type look struct {
				horizon        int64
				woken, waiting int
			}
			var mu sync.Mutex
			var looks []look
			registered := make(chan struct{})
			a.watch.mu.Lock()
			a.watch.onAdd = func(n int) {
				if n == k {
					close(registered)
				}
			}
			a.watch.onLook = func(h int64, woken, waiting int) {
				mu.Lock()
				looks = append(looks, look{h, woken, waiting})
				mu.Unlock()
			}
			a.watch.mu.Unlock()

			errs := make(chan error, k)
			for i := range k {
				go func() {
					if i%2 == 0 {
						errs <- a.WaitEvents(ctx, task.ID, events)
					} else {
						errs <- a.WaitChanges(ctx, cursor)
					}
				}()
			}
			select {
			case <-registered:
			case err := <-errs:
				t.Fatalf("a follower returned before any change: %v", err)
			case <-ctx.Done():
				t.Fatal("the followers did not all register")
			}

			// The other process writes: a new event of the task.
			var change int64
			err = b.inTx(ctx, func(t tx, c int64) error {
				change = c
				_, err := t.exec(ctx, `UPDATE ostask_tasks SET events = events + 1, change = $2 WHERE id = $1`, task.ID, c)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			for range k {
				if err := <-errs; err != nil {
					t.Fatalf("follower: %v", err)
				}
			}

			mu.Lock()
			defer mu.Unlock()
			first := -1
			for i, l := range looks {
				if first < 0 && l.horizon >= change {
					first = i
				}
				if first < 0 && l.woken > 0 {
					t.Fatalf("look %d (horizon %d, before the change %d) woke %d followers", i, l.horizon, change, l.woken)
				}
			}
			if first < 0 {
				t.Fatalf("no look reached the change %d: %v", change, looks)
			}
			// It woke every follower still waiting: all the list's (they
			// read nothing themselves) and the events followers whose
			// read came before the commit (the others saw the event).
			if l := looks[first]; l.waiting != 0 || l.woken < k/2 {
				t.Fatalf("the first look past the change woke %d and left %d of %d followers waiting (looks %v)", l.woken, l.waiting, k, looks)
			}
		})
	}
}

// TestWatcherIdleAndErrors: a wait for a missing task fails with
// ErrNotFound; waits end with ctx and with the queue's close and leave no
// waiter behind; a wait after the watcher idled (it ignores changes while
// nobody waits) sees the changes made meanwhile.
func TestWatcherIdleAndErrors(t *testing.T) {
	a, _ := openTwo(t, "sqlite", 10*time.Millisecond)
	ctx := context.Background()
	task, _, err := a.Create(ctx, NewTask{Kind: "noop", Project: "p", Params: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WaitEvents(ctx, "no-such-task", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("WaitEvents of a missing task = %v, want ErrNotFound", err)
	}
	// Done at once: the task has an event after 0.
	if err := a.WaitEvents(ctx, task.ID, 0); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.WaitEvents(cctx, task.ID, 1<<40); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitEvents with a cancelled context = %v", err)
	}
	if err := a.WaitChanges(cctx, 1<<40); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitChanges with a cancelled context = %v", err)
	}
	if a.watch.busy() {
		t.Fatal("waits that ended left waiters behind")
	}

	_, cursor, err := a.Changes(ctx, Filter{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	var looks int
	var mu sync.Mutex
	a.watch.mu.Lock()
	a.watch.onLook = func(int64, int, int) { mu.Lock(); looks++; mu.Unlock() }
	a.watch.mu.Unlock()
	for i := range 20 {
		if err := mark(ctx, a, task.ID, fmt.Sprint(i), nil); err != nil {
			t.Fatal(err)
		}
		a.changed.fire()
	}
	// A wait then looks (at least once) and sees the writes.
	if err := a.WaitChanges(ctx, cursor); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if looks == 0 {
		t.Fatal("a wait after idling returned without a look")
	}
	mu.Unlock()

	// Close ends the waits.
	done := make(chan error, 1)
	registered := make(chan struct{})
	a.watch.mu.Lock()
	a.watch.onAdd = func(int) { close(registered) }
	a.watch.mu.Unlock()
	go func() { done <- a.WaitChanges(ctx, 1<<40) }()
	<-registered
	a.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("a wait across Close = %v, want ErrClosed", err)
	}
}
