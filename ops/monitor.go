package ops

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/retry"
)

// observation is what one monitor round saw of one resource. Only the
// fields a watch needs to decide are kept, plus the decoded resource
// (retained only by the watch that completes on it).
type observation struct {
	ID        string
	Status    string
	TaskState string
	Gone      bool // deleted: DELETED in changes-since, 404, or proven absent
	Fault     *faultInfo
	Size      int      // volumes
	Servers   []string // volumes: attached server ids; servers: attached volume ids
	Resource  any      // *servers.Server, *volumes.Volume or *images.Image
}

type faultInfo struct {
	Code    int
	Message string
	Details string
}

// verdict is a watch's answer to an observation.
type verdict int

const (
	pending verdict = iota
	succeeded
	failed
)

// watch is one pending operation on one resource.
//
// Invariants: a watch is in m.watches[id] until finish has been called;
// finish is called exactly once, on the monitor goroutine, on the
// notification consumer's (an event decided it), or by failAll after the
// monitor has stopped.
type watch struct {
	id    string
	op    string
	round uint64    // observations from rounds started before registration are ignored
	since time.Time // server time when the call that started the operation was sent
	start time.Time
	// deadline is zero for no deadline.
	deadline time.Time
	// wantGone marks delete watches: absence from a list must be proven.
	wantGone bool
	// judge decides on an observation. It runs under the monitor's lock,
	// on the monitor goroutine or the notification consumer's.
	judge func(o *observation) (verdict, error)
	// reqID is the request id of the call that started the operation:
	// the cloud's notifications caused by that call carry it.
	reqID string
	// finish delivers the outcome; it must not block.
	finish func(o *observation, err error)

	lastStatus, lastTask string
	seen                 bool
	seenRound            uint64 // the last round that observed it (or its registration round)

	// Notifications (server watches): lastEvent is the time of the latest
	// event applied (older ones arriving late are ignored); hot is set
	// while the watch needs the monitor to poll at its normal pace.
	lastEvent time.Time
	hot       bool
}

// staleRounds is how many rounds a watch may go unobserved before the
// poller is asked to look at it directly (pollRequest.Stale): for kinds
// whose lists cannot show a disappearance (Cinder hides deleted volumes).
const staleRounds = 5

// serverStaleRounds is staleRounds for server watches other than deletes.
// A server Nova has put in its cell but no compute host has started yet
// keeps a NULL updated_at, so no changes-since list shows it: in a burst of
// boots, servers stay unseen for a minute or more, and looking at each
// would be a GET per pending server. Only a delete needs the look soon (a
// server deleted while still being scheduled never reaches a cell, so no
// list shows it as DELETED); for the rest the look is a slow safety net.
const serverStaleRounds = 60

// maxStalePerRound bounds those direct looks per round.
const maxStalePerRound = 20

// pollRequest is what one round must cover.
type pollRequest struct {
	Since   time.Time // server-clock lower bound; zero means no bound
	IDs     map[string]bool
	GoneIDs map[string]bool // ids whose absence must be proven (delete watches)
	Full    bool            // ask for everything (first round, or after an error)
	// Stale are ids no round has observed for staleRounds rounds; a poller
	// whose lists cannot prove absence looks at them one by one.
	Stale map[string]bool

	// report is where a poller says how the round went; may be nil.
	report *roundReport
}

// roundReport is what a poller tells the monitor about a round besides
// its observations.
type roundReport struct {
	// unstable: the lists may have skipped a change (paging moved under
	// the round), so the changes-since window must not move past it.
	unstable bool
}

// pollFunc makes one round's requests and hands observations to emit as
// they arrive (page by page), so that early pages complete their
// operations without waiting for the last page.
type pollFunc func(ctx context.Context, req pollRequest, emit func([]*observation)) error

// monitor watches every pending operation of one resource kind with one
// batched poll per round. One goroutine per monitor, started on the first
// watch and parked (not stopped) when nothing is watched.
type monitor struct {
	cloud *Cloud
	kind  Kind
	poll  pollFunc

	mu       sync.Mutex
	watches  map[string][]*watch
	n        int
	round    uint64
	since    time.Time // next round's lower bound (server clock); zero = none yet
	youngest time.Time // local time of the latest registration
	started  bool
	stopped  bool

	// staleAfter is how many rounds a watch other than a delete may go
	// unobserved before it is in pollRequest.Stale (deletes: staleRounds).
	staleAfter uint64

	wake   chan struct{}
	rounds atomic.Int64
	rng    *rand.Rand // monitor goroutine only

	health monitorHealth // guarded by mu

	// ev is set for a kind whose completions the cloud's notifications
	// report (servers, with NotificationConfig); guarded by mu.
	ev *eventState
}

// monitorHealth is how the monitor's rounds have been going.
type monitorHealth struct {
	failedRounds   int64
	unstableRounds int64
	consecutive    int // failed rounds in a row
	lastErr        error
	lastErrAt      time.Time
}

func newMonitor(c *Cloud, kind Kind, poll pollFunc) *monitor {
	return &monitor{cloud: c, kind: kind, poll: poll, watches: map[string][]*watch{}, wake: make(chan struct{}, 1), staleAfter: staleRounds,
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(len(kind))))}
}

// add registers w. Its judge and finish run on the monitor goroutine.
func (m *monitor) add(w *watch) {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		w.finish(nil, ErrMonitorClosed)
		return
	}
	w.round = m.round
	w.seenRound = m.round
	w.start = time.Now()
	m.watches[w.id] = append(m.watches[w.id], w)
	m.n++
	m.youngest = w.start
	decided := m.registeredLocked(w)
	quiet := m.quietAddLocked(w)
	if !m.started {
		if !m.cloud.goOwned(m.run) {
			m.removeLocked(w)
			m.mu.Unlock()
			w.finish(nil, ErrMonitorClosed)
			return
		}
		m.started = true
	}
	m.mu.Unlock()
	for _, h := range decided {
		m.finish(h.w, h.o, h.err)
	}
	if !quiet {
		m.poke()
	}
}

// remove drops w without finishing it; it reports whether w was pending.
func (m *monitor) remove(w *watch) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removeLocked(w)
}

func (m *monitor) removeLocked(w *watch) bool {
	ws := m.watches[w.id]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			if len(ws) == 0 {
				delete(m.watches, w.id)
			} else {
				m.watches[w.id] = ws
			}
			m.n--
			m.forgetLocked(w)
			return true
		}
	}
	return false
}

// cancel finishes w with err if it is still pending (context cancelled).
func (m *monitor) cancel(w *watch, err error) {
	if m.remove(w) {
		w.finish(nil, err)
	}
}

func (m *monitor) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// failAll finishes every pending watch with err; used by Cloud.Close after
// the monitor goroutine has ended.
func (m *monitor) failAll(err error) {
	m.mu.Lock()
	m.stopped = true
	var all []*watch
	for _, ws := range m.watches {
		all = append(all, ws...)
	}
	m.watches = map[string][]*watch{}
	m.n = 0
	if m.ev != nil {
		m.ev.hot = 0
	}
	m.mu.Unlock()
	for _, w := range all {
		m.finish(w, nil, err)
	}
}

// stats reports the monitor's rounds and health.
func (m *monitor) stats() MonitorStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.health
	ms := MonitorStats{Rounds: m.rounds.Load(), FailedRounds: h.failedRounds, UnstableRounds: h.unstableRounds, FailingRounds: h.consecutive}
	if h.consecutive > 0 {
		ms.Err = &MonitorError{Kind: m.kind, Rounds: h.consecutive, Since: h.lastErrAt, Err: h.lastErr}
	}
	return ms
}

// pendingCount is the number of pending watches.
func (m *monitor) pendingCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n
}

// interval is the wait before the next round: short right after a call,
// longer while every pending operation is old, spread by jitter.
func (m *monitor) interval(age time.Duration) time.Duration {
	cfg := m.cloud.cfg
	d := max(cfg.MinInterval, min(cfg.MaxInterval, age/10))
	// Jitter only shortens the wait, so the interval stays an upper bound
	// on how late a change is noticed.
	if j := cfg.Jitter; j > 0 {
		d = time.Duration(float64(d) * (1 - j*m.rng.Float64()))
	}
	return d
}

func (m *monitor) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// next is when the next round is due; a new watch pulls it in to at
	// most MinInterval after the previous round, so a burst of calls shares
	// one round and a fresh call is noticed quickly.
	var lastRound, next time.Time
	if now := time.Now(); m.stretched(now) {
		next = now.Add(m.ev.reconcile)
	}
	for {
		m.mu.Lock()
		n := m.n
		m.mu.Unlock()
		if n == 0 {
			// Idle: sleep until a watch arrives.
			select {
			case <-ctx.Done():
				return
			case <-m.wake:
				next = lastRound.Add(m.cloud.cfg.MinInterval)
				if now := time.Now(); m.stretched(now) {
					// Events report the changes: the first
					// reconciliation is an interval away.
					next = now.Add(m.ev.reconcile)
				}
				continue
			}
		}
		if d := time.Until(next); d > 0 {
			wait := min(d, m.untilNextDeadline())
			m.planWake(time.Now().Add(wait))
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-m.wake:
				m.planWake(time.Time{})
				if !timer.Stop() {
					<-timer.C
				}
				if soon := lastRound.Add(m.cloud.cfg.MinInterval); soon.Before(next) && !m.stretched(time.Now()) {
					next = soon
				}
				continue
			case <-timer.C:
				m.planWake(time.Time{})
			}
		}
		now := time.Now()
		m.expire(now)
		if now.Before(next) || m.pendingCount() == 0 {
			continue // woken for a deadline, not for a round
		}
		lastRound = now
		err := m.doRound(ctx, m.stretched(now))
		if ctx.Err() != nil {
			return
		}
		m.expire(time.Now())
		m.mu.Lock()
		age := time.Since(m.youngest)
		m.mu.Unlock()
		wait := m.interval(age)
		if m.stretched(time.Now()) {
			wait = m.ev.reconcile
		}
		if failures := m.recordRound(err); err != nil {
			// Transient API trouble never fails the watched operations;
			// it only slows the monitor down (Retry-After honoured).
			back := m.backoff().Delay(failures, m.rng.Float64())
			var ue gophercloud.ErrUnexpectedResponseCode
			if errors.As(err, &ue) {
				if ra := retryAfter(ue.ResponseHeader); ra > back {
					back = min(ra, maxRoundBackoff)
				}
			}
			back = max(back, wait-time.Since(lastRound))
			m.cloud.log.Warn("ostask: monitor round failed", "kind", m.kind, "err", err, "failures_in_a_row", failures, "retry_in", back)
			// New calls do not cut this wait short (a Retry-After is
			// honoured), but deadlines still expire on time.
			if !m.backOff(ctx, back) {
				return
			}
			next = time.Now()
			continue
		}
		next = lastRound.Add(wait)
	}
}

// backOff waits d on the Cloud's clock after failed rounds, expiring
// watches whose deadline passes meanwhile; false if ctx ended.
func (m *monitor) backOff(ctx context.Context, d time.Duration) bool {
	done := m.cloud.clock.After(d)
	for {
		t := time.NewTimer(m.untilNextDeadline())
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-done:
			t.Stop()
			return true
		case <-t.C:
			m.expire(time.Now())
		}
	}
}

// maxRoundBackoff bounds the wait after failed rounds, Retry-After included,
// so a monitor never sleeps through a recovery for long.
const maxRoundBackoff = time.Minute

// backoff is the wait after failed rounds: MinInterval doubling, with a
// little jitter, up to 32 × MinInterval (at most maxRoundBackoff).
func (m *monitor) backoff() retry.Policy {
	mi := m.cloud.cfg.MinInterval
	return retry.Policy{MaxAttempts: 2, Initial: 2 * mi, Max: min(32*mi, maxRoundBackoff), Multiplier: 2, Jitter: 0.1}
}

// recordRound updates the monitor's health after a round and returns the
// number of failed rounds in a row.
func (m *monitor) recordRound(err error) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		m.health.consecutive = 0
		return 0
	}
	m.health.consecutive++
	m.health.failedRounds++
	m.health.lastErr, m.health.lastErrAt = err, time.Now()
	return m.health.consecutive
}

// finish delivers a watch's outcome. The user's OnDone callbacks run
// inside it; one that panics must not stop the monitor of every other
// operation, so the panic is logged and the monitor goes on (the future
// itself is already complete).
func (m *monitor) finish(w *watch, o *observation, err error) {
	defer func() {
		if p := recover(); p != nil {
			m.cloud.log.Error("ostask: an operation's OnDone callback panicked", "kind", m.kind, "id", w.id, "op", w.op, "panic", p)
		}
	}()
	w.finish(o, err)
}

// dispatch hands observations of round to the watches on them and
// finishes those that are decided.
// reconciling says the round was a reconciliation round (events were
// trusted to report every change): a completion it finds was missed.
func (m *monitor) dispatch(round uint64, reconciling bool, obs []*observation) {
	var done []hit
	m.mu.Lock()
	for _, o := range obs {
		for _, w := range m.watches[o.ID] {
			if w.round >= round {
				continue // registered after this round began: the answer may predate its call
			}
			w.seen, w.lastStatus, w.lastTask, w.seenRound = true, o.Status, o.TaskState, round
			v, err := w.judge(o)
			if v != pending {
				done = append(done, hit{w, o, err})
			}
		}
	}
	for _, h := range done {
		m.removeLocked(h.w)
	}
	if reconciling && len(done) > 0 {
		m.missedLocked(len(done))
	}
	m.mu.Unlock()
	for _, h := range done {
		m.finish(h.w, h.o, h.err)
	}
}

// hit is a watch decided by an observation, to finish outside the lock.
type hit struct {
	w   *watch
	o   *observation
	err error
}

// untilNextDeadline is the time until the earliest watch deadline.
func (m *monitor) untilNextDeadline() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := time.Duration(1<<63 - 1)
	now := time.Now()
	for _, ws := range m.watches {
		for _, w := range ws {
			if !w.deadline.IsZero() {
				next = min(next, max(w.deadline.Sub(now), 0))
			}
		}
	}
	return next
}

// expire finishes every watch whose deadline has passed with a TimeoutError.
func (m *monitor) expire(now time.Time) {
	m.mu.Lock()
	var late []*watch
	for _, ws := range m.watches {
		for _, w := range ws {
			if !w.deadline.IsZero() && !now.Before(w.deadline) {
				late = append(late, w)
			}
		}
	}
	for _, w := range late {
		m.removeLocked(w)
	}
	m.mu.Unlock()
	for _, w := range late {
		m.finish(w, nil, &TimeoutError{Kind: m.kind, ID: w.id, Op: w.op, After: now.Sub(w.start),
			LastStatus: w.lastStatus, LastTaskState: w.lastTask})
	}
}

// doRound polls once and hands each observation to the watches on it.
// reconciling: events were trusted to report every change (see stretched).
func (m *monitor) doRound(ctx context.Context, reconciling bool) error {
	m.mu.Lock()
	m.round++
	round := m.round
	feedGen := m.feedGenLocked()
	req := pollRequest{IDs: make(map[string]bool, len(m.watches)), GoneIDs: map[string]bool{}, Stale: map[string]bool{}}
	since := m.since
	for id, ws := range m.watches {
		req.IDs[id] = true
		// One look serves every watch on the id: it is due when one of
		// them is.
		stale := false
		for _, w := range ws {
			after := m.staleAfter
			if w.wantGone {
				after = staleRounds
			}
			if round-w.seenRound >= after && len(req.Stale) < maxStalePerRound {
				stale = true
			}
			if w.wantGone {
				req.GoneIDs[id] = true
			}
			if since.IsZero() || (!w.since.IsZero() && w.since.Before(since)) {
				since = w.since
			}
		}
		if stale {
			req.Stale[id] = true
		}
	}
	m.mu.Unlock()
	start := m.cloud.serverNow()
	req.Since = since.Add(-m.cloud.cfg.Overlap)
	req.Full = since.IsZero()
	req.report = &roundReport{}
	m.rounds.Add(1)
	began := time.Now()
	observed := 0
	err := m.poll(ctx, req, func(obs []*observation) {
		observed += len(obs)
		m.dispatch(round, reconciling, obs)
	})
	m.cloud.log.Debug("ostask: monitor round", "kind", m.kind, "round", round, "watched", len(req.IDs), "since", req.Since,
		"took", time.Since(began), "observed", observed, "unstable", req.report.unstable, "err", err)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.resyncedLocked(feedGen)
	if req.report.unstable {
		// Keep the window where it was: the next round lists again what
		// this one may have skipped.
		m.health.unstableRounds++
		m.mu.Unlock()
		return nil
	}
	m.since = start
	// Later rounds may start from this one's start time.
	for _, ws := range m.watches {
		for _, w := range ws {
			if w.round < round {
				w.since = time.Time{}
			}
		}
	}
	m.mu.Unlock()
	return nil
}
