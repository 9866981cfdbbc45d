package jobs

import (
	"context"
	"sync"
	"time"
)

// Waits (WaitEvents, WaitChanges) do not each poll the database: one
// watcher per Queue looks for committed changes for all of them and wakes
// the waiters whose cursor a change passed.
//
// A look reads the safe horizon (every change numbered up to it has
// committed for good; any later commit gets a greater number) and the
// tasks changed between the previous look's horizon and this one. So a
// waiter that notes the horizon before it reads what it waits for (a
// task's events) misses nothing: whatever its read did not see commits
// later, numbered above that horizon, and a later look finds it.
//
// The watcher looks while there are waiters: after a change of this
// process (q.changed), no sooner than watchGap after its last look, and
// every PollInterval for the changes of other processes. With no waiter
// it sleeps.

// watchGap is the least time between two looks prompted by changes of
// this process: a burst of changes costs one look per gap, however many
// waiters there are.
const watchGap = 20 * time.Millisecond

// watchLimit bounds the tasks one look reads; when more changed, every
// waiter of a task is woken to look for itself.
const watchLimit = 512

// waiter is one wait, registered with the watcher until it is woken (and
// removed by the watcher) or gives up (and removes itself).
type waiter struct {
	task  string        // WaitEvents: the task waited for; "" for WaitChanges
	after int64         // WaitChanges: woken when a change numbered above it committed
	seen  int64         // WaitEvents: the horizon when it registered, -1 before any look
	wake  chan struct{} // closed by the watcher
	err   error         // set before wake closes when the look failed
}

// watcher is the Queue's single watcher of committed changes.
type watcher struct {
	q    *Queue
	kick chan struct{} // cap 1: a waiter arrived while none waited

	mu      sync.Mutex
	looked  bool  // a look succeeded; horizon and latest are known
	horizon int64 // the last look's horizon
	latest  int64 // the highest change of a task up to horizon yet seen
	waiters map[*waiter]struct{}
	tasks   int // waiters with a task

	// Tests' hooks, set under mu: a waiter registered (with the number
	// now waiting), a look woke waiters (and left some waiting).
	onAdd  func(waiting int)
	onLook func(horizon int64, woken, waiting int)
}

func newWatcher(q *Queue) *watcher {
	return &watcher{q: q, kick: make(chan struct{}, 1), waiters: map[*waiter]struct{}{}}
}

// add registers w, unless it is done already: a WaitChanges whose cursor
// the last look passed.
func (wt *watcher) add(w *waiter) (done bool) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if w.task == "" && wt.looked && wt.latest > w.after {
		return true
	}
	w.seen = -1
	if wt.looked {
		w.seen = wt.horizon
	}
	w.wake = make(chan struct{})
	if len(wt.waiters) == 0 {
		select {
		case wt.kick <- struct{}{}:
		default:
		}
	}
	wt.waiters[w] = struct{}{}
	if w.task != "" {
		wt.tasks++
	}
	if wt.onAdd != nil {
		wt.onAdd(len(wt.waiters))
	}
	return false
}

// remove unregisters w if the watcher has not woken it.
func (wt *watcher) remove(w *waiter) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	wt.drop(w)
}

func (wt *watcher) drop(w *waiter) {
	if _, ok := wt.waiters[w]; ok {
		delete(wt.waiters, w)
		if w.task != "" {
			wt.tasks--
		}
	}
}

// wait returns when the watcher woke w (nil, or the failure of its look),
// ctx ends or the queue closes.
func (wt *watcher) wait(ctx context.Context, w *waiter) error {
	select {
	case <-w.wake:
		if w.err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		return w.err
	case <-ctx.Done():
		wt.remove(w)
		return ctx.Err()
	case <-wt.q.done:
		wt.remove(w)
		return ErrClosed
	}
}

func (wt *watcher) busy() bool {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	return len(wt.waiters) > 0
}

// run is the watcher's goroutine, from Open to Close.
func (wt *watcher) run(ctx context.Context) {
	q := wt.q
	poll := q.cfg.PollInterval
	gap := min(watchGap, poll)
	timer := time.NewTimer(poll)
	defer timer.Stop()
	var last time.Time
	for {
		if !wt.busy() {
			select {
			case <-q.done:
				return
			case <-wt.kick:
			}
			continue
		}
		if d := gap - time.Since(last); d > 0 {
			timer.Reset(d)
			select {
			case <-q.done:
				return
			case <-timer.C:
			}
		}
		// Subscribed before the look: a change made during it prompts
		// the next one.
		fired := q.changed.wait()
		select {
		case <-wt.kick:
		default:
		}
		wt.look(ctx)
		last = time.Now()
		timer.Reset(poll)
		select {
		case <-q.done:
			return
		case <-fired:
		case <-wt.kick:
		case <-timer.C:
		}
	}
}

// look reads the horizon and the tasks changed since the last look's, and
// wakes the waiters they concern.
func (wt *watcher) look(ctx context.Context) {
	wt.mu.Lock()
	looked, prev, tasks := wt.looked, wt.horizon, wt.tasks
	wt.mu.Unlock()
	h, err := wt.q.db.horizon(ctx)
	if err != nil {
		wt.fail(ctx, err)
		return
	}
	if looked && h <= prev {
		return // nothing committed since
	}
	if !looked {
		prev = -1
	}
	// The first look only needs the newest change (it wakes every waiter
	// of a task); later ones the tasks changed, when a task is waited for.
	limit := 1
	if looked && tasks > 0 {
		limit = watchLimit
	}
	rs, err := wt.q.db.query(ctx, qry("task_changed"), prev, h, limit)
	if err != nil {
		wt.fail(ctx, err)
		return
	}
	changed := map[string]bool{}
	newest, n := int64(-1), 0
	for rs.Next() {
		var id string
		var change int64
		if err := rs.Scan(&id, &change); err != nil {
			rs.Close()
			wt.fail(ctx, err)
			return
		}
		newest = max(newest, change)
		changed[id] = true
		n++
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		wt.fail(ctx, err)
		return
	}
	all := !looked || n == limit // tasks changed that this look did not read
	wt.mu.Lock()
	defer wt.mu.Unlock()
	wt.looked, wt.horizon = true, h
	wt.latest = max(wt.latest, newest)
	woken := 0
	for w := range wt.waiters {
		if w.task == "" && wt.latest > w.after || w.task != "" && (all || w.seen < 0 || changed[w.task]) {
			wt.drop(w)
			close(w.wake)
			woken++
		}
	}
	if wt.onLook != nil {
		wt.onLook(h, woken, len(wt.waiters))
	}
}

// fail wakes every waiter with a look's failure (not the queue's close:
// waiters see that themselves).
func (wt *watcher) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	wt.mu.Lock()
	defer wt.mu.Unlock()
	for w := range wt.waiters {
		wt.drop(w)
		w.err = err
		close(w.wake)
	}
}
