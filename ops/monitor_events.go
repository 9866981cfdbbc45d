package ops

import (
	"time"
)

// eventState is what a monitor fed by notifications knows of the feed.
// Guarded by the monitor's mu, except reconcile (set once).
type eventState struct {
	reconcile time.Duration // the interval while events are trusted

	up  bool   // the feed is connected
	gen uint64 // bumped each time the feed comes up
	// resync: the feed came up and no round has listed since, so changes
	// made while it was down (or connecting) may be unreported.
	resync bool
	// distrust: a reconciliation round found a completion no event had
	// reported; the monitor polls normally until an event completes an
	// operation again.
	distrust bool
	hot      int // pending watches with hot set

	recent recentEvents

	completions, missed int64

	// wakeAt is when the sleeping monitor goroutine plans to wake (zero:
	// it is not sleeping on a plan).
	wakeAt time.Time
}

// Bounds of the events kept for servers nobody watches yet: an operation
// whose call has returned but whose watch is not registered yet may
// already have finished (a fast delete), and its event must not be lost.
const (
	recentEventTTL = 10 * time.Second
	recentEventMax = 10000 // servers
	recentPerID    = 4     // events per server
)

// recentEvents keeps the latest events of unwatched servers, for a while.
type recentEvents struct {
	byID  map[string][]*serverEvent
	order []recentMark // oldest first
}

type recentMark struct {
	id string
	at time.Time // when it was kept
}

func (r *recentEvents) add(ev *serverEvent, now time.Time) {
	if r.byID == nil {
		r.byID = map[string][]*serverEvent{}
	}
	evs, ok := r.byID[ev.id]
	if !ok {
		r.order = append(r.order, recentMark{ev.id, now})
	}
	if len(evs) >= recentPerID {
		evs = append(evs[:0:0], evs[1:]...)
	}
	r.byID[ev.id] = append(evs, ev)
	r.prune(now)
}

func (r *recentEvents) prune(now time.Time) {
	i := 0
	for i < len(r.order) && (len(r.order)-i > recentEventMax || now.Sub(r.order[i].at) > recentEventTTL) {
		delete(r.byID, r.order[i].id)
		i++
	}
	if i > 0 {
		r.order = append(r.order[:0:0], r.order[i:]...)
	}
}

// take removes and returns the events kept for id, oldest first.
func (r *recentEvents) take(id string, now time.Time) []*serverEvent {
	r.prune(now)
	evs := r.byID[id]
	if evs != nil {
		delete(r.byID, id)
		// Its mark stays in order until it expires; prune deletes by id,
		// which is harmless for an id kept again since: it is young.
	}
	return evs
}

// stretched reports whether the monitor may wait a whole reconciliation
// interval between rounds: the feed is up and has been listed since it
// came up, no reconciliation found a missed completion since the last
// completion by event, and no pending watch needs polling.
func (m *monitor) stretched(time.Time) bool {
	if m.ev == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ev.up && !m.ev.resync && !m.ev.distrust && m.ev.hot == 0
}

// feedChanged is called by the notification consumer when the feed comes
// up or goes down. Either way the monitor re-plans at once: down, it goes
// back to its normal pace; up, it lists once more (if anything is
// pending) to cover the changes the feed may not have reported while it
// was connecting.
func (m *monitor) feedChanged(up bool) {
	if m.ev == nil {
		return
	}
	m.mu.Lock()
	m.ev.up = up
	if up {
		m.ev.gen++
		// Only pending watches can have missed a change; one registered
		// from now on gets its events (or finds them kept, see recent).
		m.ev.resync = m.n > 0
	}
	m.mu.Unlock()
	m.poke()
}

func (m *monitor) feedGenLocked() uint64 {
	if m.ev == nil {
		return 0
	}
	return m.ev.gen
}

// resyncedLocked is called after a round that began at feed generation
// gen succeeded: if the feed came up before that round began, the round
// covered what it might have missed.
func (m *monitor) resyncedLocked(gen uint64) {
	if m.ev != nil && m.ev.up && m.ev.gen == gen {
		m.ev.resync = false
	}
}

// missedLocked records completions that a reconciliation round found
// before any event reported them.
func (m *monitor) missedLocked(n int) {
	if m.ev == nil {
		return
	}
	m.ev.missed += int64(n)
	if !m.ev.distrust {
		m.ev.distrust = true
		m.cloud.log.Warn("ostask: a reconciliation round found completions no notification reported; polling at the normal pace until events complete operations again",
			"kind", m.kind, "missed", n)
	}
}

// planWake records when the monitor goroutine, about to sleep on its
// timer, will wake; zero once it is awake (or idle, waiting for a poke).
func (m *monitor) planWake(at time.Time) {
	if m.ev == nil {
		return
	}
	m.mu.Lock()
	m.ev.wakeAt = at
	m.mu.Unlock()
}

// quietAddLocked reports whether the watch w just added needs no wake-up
// of the monitor goroutine: while events are trusted a new watch never
// pulls a round in, so the goroutine only needs to hear of a deadline
// earlier than its planned wake. A burst of thousands of calls then does
// not wake it (and make it scan every watch for deadlines) thousands of
// times.
func (m *monitor) quietAddLocked(w *watch) bool {
	if m.ev == nil || !m.started || !m.ev.wakeAt.After(time.Now()) || !m.ev.up || m.ev.resync || m.ev.distrust || m.ev.hot > 0 {
		return false
	}
	return w.deadline.IsZero() || w.deadline.After(m.ev.wakeAt)
}

// registeredLocked is called when w has been added: a server watch whose
// events cannot be recognised (no request id: an adopted create) keeps
// the monitor polling; and events that came before the watch are judged.
func (m *monitor) registeredLocked(w *watch) []hit {
	if m.ev == nil {
		return nil
	}
	if w.reqID == "" {
		m.setHotLocked(w)
	}
	var done []hit
	for _, ev := range m.ev.recent.take(w.id, time.Now()) {
		if h, ok := m.judgeEventLocked(w, ev); ok {
			done = append(done, h)
			break
		}
	}
	for _, h := range done {
		m.removeLocked(h.w)
		m.ev.completions++
	}
	return done
}

func (m *monitor) setHotLocked(w *watch) {
	if !w.hot {
		w.hot = true
		m.ev.hot++
	}
}

// forgetLocked is called when w leaves the monitor.
func (m *monitor) forgetLocked(w *watch) {
	if w.hot && m.ev != nil {
		w.hot = false
		m.ev.hot--
	}
}

// onEvent judges an event about a server of the Cloud's project, on the
// notification consumer's goroutine. An event that does not decide its
// watch changes nothing, except an error-phase one or one showing ERROR:
// Nova sets ERROR after its error event without another, and the fault
// as the API shows it is not in the payload, so the watch is then left to
// the monitor's rounds at their normal pace.
func (m *monitor) onEvent(ev *serverEvent) {
	if ev.id == "" {
		m.onFailure(ev.reqID)
		return
	}
	now := time.Now()
	m.mu.Lock()
	ws := m.watches[ev.id]
	if len(ws) == 0 {
		m.ev.recent.add(ev, now)
		m.mu.Unlock()
		return
	}
	var done []hit
	heated := false
	for _, w := range ws {
		h, ok := m.judgeEventLocked(w, ev)
		if ok {
			done = append(done, h)
		} else if w.hot {
			heated = true
		}
	}
	for _, h := range done {
		m.removeLocked(h.w)
	}
	if len(done) > 0 {
		m.ev.completions += int64(len(done))
		m.ev.distrust = false
	}
	m.mu.Unlock()
	for _, h := range done {
		m.finish(h.w, h.o, h.err)
	}
	if heated {
		m.poke()
	}
}

// onFailure is told that the call reqID failed (Nova's compute.exception):
// its watches are left to the monitor's rounds at their normal pace, to
// read the state and the fault from the API. Such failures are rare, so
// a scan of the watches is cheap enough.
func (m *monitor) onFailure(reqID string) {
	heated := false
	m.mu.Lock()
	for _, ws := range m.watches {
		for _, w := range ws {
			if w.reqID == reqID {
				m.setHotLocked(w)
				heated = true
			}
		}
	}
	m.mu.Unlock()
	if heated {
		m.poke()
	}
}

// judgeEventLocked decides w on ev, if ev is about w's operation: it
// carries the request id of w's call (Nova passes it along to every
// notification the call causes), or it reports the server deleted (a
// state no later change undoes, whoever caused it). Anything else may
// describe the server as it was before w's call, and is left to polling.
func (m *monitor) judgeEventLocked(w *watch, ev *serverEvent) (hit, bool) {
	mine := w.reqID != "" && ev.reqID == w.reqID
	if !mine && !ev.obs.Gone {
		return hit{}, false
	}
	if ev.at.Before(w.lastEvent) {
		return hit{}, false // late: a newer event was applied already
	}
	w.lastEvent = ev.at
	w.seen, w.lastStatus, w.lastTask = true, ev.obs.Status, ev.obs.TaskState
	if !ev.obs.Gone && (ev.failed || ev.obs.Status == StatusError) {
		m.setHotLocked(w)
		return hit{}, false
	}
	v, err := w.judge(ev.obs)
	if v == pending {
		return hit{}, false
	}
	return hit{w, ev.decided(), err}, true
}

// eventStats returns the completions events made and those a
// reconciliation found first.
func (m *monitor) eventStats() (completions, missed int64) {
	if m.ev == nil {
		return 0, 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ev.completions, m.ev.missed
}
