package ops

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
)

// Real Nova's messages (captured on realstack, Zed) decode into the state
// the API would show; other notifications are skipped, not errors.
func TestDecodeRealNovaNotifications(t *testing.T) {
	for _, tc := range []struct {
		file                     string
		none                     bool
		status, task, reqID, evt string
		gone, failed, fault      bool
	}{
		{file: "realstack_instance_create_end.json", status: StatusActive, reqID: "req-103daa1f-6b28-4fd6-9a49-3c665597608a", evt: "instance.create.end"},
		{file: "realstack_instance_delete_end.json", status: StatusDeleted, gone: true, reqID: "req-5d7ace72-5e48-4b7b-8ad9-e2f4603fca27", evt: "instance.delete.end"},
		{file: "realstack_instance_create_error.json", status: "BUILD", task: "spawning", failed: true, fault: true,
			reqID: "req-f1d5473c-889d-4ca3-8951-1d5d78fb2642", evt: "instance.create.error"},
		{file: "realstack_scheduler_select_destinations_end.json", none: true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := decodeNovaEvent(body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.none {
				if ev != nil {
					t.Fatalf("decoded %+v from a notification that is not about an instance", ev)
				}
				return
			}
			o := ev.obs
			if ev.name != tc.evt || ev.reqID != tc.reqID || ev.project != "fb9794c866c54333a7ae81be8824aef5" || ev.failed != tc.failed ||
				o.Status != tc.status || o.TaskState != tc.task || o.Gone != tc.gone || (o.Fault != nil) != tc.fault {
				t.Errorf("decoded %+v / %+v", ev, o)
			}
			if ev.at.IsZero() || ev.at.Location() != time.UTC {
				t.Errorf("timestamp %v, want the envelope's (UTC)", ev.at)
			}
			if o.Resource != nil {
				t.Errorf("the server record was decoded before any operation completed on the event")
			}
			s, ok := ev.decided().Resource.(*servers.Server)
			if !ok || s.ID != o.ID || s.Status != tc.status || s.Flavor["original_name"] == nil || s.Created.IsZero() {
				t.Errorf("server record %+v", s)
			}
			if tc.fault && !strings.Contains(o.Fault.Message, "aborted") {
				t.Errorf("fault %+v, want Nova's exception message", o.Fault)
			}
		})
	}
}

// Bodies that are not notifications are errors (counted as malformed),
// never panics.
func TestDecodeMalformed(t *testing.T) {
	for _, body := range []string{``, `[]`, `{}`, `{"oslo.message": "{"}`, `{"oslo.message": "{\"event_type\": \"instance.create.end\", \"payload\": {\"nova_object.data\": []}}"}`,
		`{"oslo.message": "{\"event_type\": \"instance.create.end\", \"timestamp\": \"yesterday\", \"payload\": {\"nova_object.data\": {\"uuid\": \"x\", \"state\": \"active\"}}}"}`} {
		if _, err := decodeNovaEvent([]byte(body)); err == nil {
			t.Errorf("%q decoded without error", body)
		}
	}
}

// A payload whose fields the monitor does not judge are of another shape
// than Nova's still yields its event (with the minimal server record),
// and another service's payload shaped unlike an instance's is skipped,
// not malformed.
func TestDecodeOtherShapes(t *testing.T) {
	msg := func(evType, data string) []byte {
		inner, _ := json.Marshal(map[string]any{"event_type": evType, "priority": "INFO", "timestamp": "2026-11-27 13:25:29.123456",
			"payload": map[string]any{"nova_object.data": json.RawMessage(data)}})
		body, _ := json.Marshal(map[string]string{"oslo.version": "2.0", "oslo.message": string(inner)})
		return body
	}
	ev, err := decodeNovaEvent(msg("instance.create.end",
		`{"uuid": "s1", "tenant_id": "p1", "request_id": "req-1", "state": "active", "task_state": null, "metadata": ["odd"], "flavor": 3}`))
	if err != nil || ev == nil || ev.id != "s1" || ev.project != "p1" || ev.reqID != "req-1" || ev.obs.Status != StatusActive {
		t.Fatalf("decoded %+v, %v", ev, err)
	}
	if s := ev.decided().Resource.(*servers.Server); s.ID != "s1" || s.Status != StatusActive || s.Flavor != nil {
		t.Errorf("server record %+v, want the minimal one", s)
	}
	if ev, err := decodeNovaEvent(msg("flavor.update", `{"flavorid": "1", "state": 4, "metadata": "x"}`)); ev != nil || err != nil {
		t.Errorf("a flavor notification decoded as %+v, %v; want skipped", ev, err)
	}
}

// novaStatus follows Nova's _STATE_MAP.
func TestNovaStatus(t *testing.T) {
	for _, tc := range []struct{ vm, task, want string }{
		{"active", "", "ACTIVE"}, {"active", "rebooting", "REBOOT"}, {"active", "reboot_started_hard", "HARD_REBOOT"},
		{"active", "resize_prep", "RESIZE"}, {"active", "image_snapshot", "ACTIVE"}, {"building", "spawning", "BUILD"},
		{"stopped", "", "SHUTOFF"}, {"stopped", "resize_finish", "RESIZE"}, {"resized", "", "VERIFY_RESIZE"},
		{"resized", "resize_reverting", "REVERT_RESIZE"}, {"error", "", "ERROR"}, {"error", "rebuilding", "REBUILD"},
		{"deleted", "", "DELETED"}, {"soft-delete", "", "SOFT_DELETED"}, {"shelved_offloaded", "", "SHELVED_OFFLOADED"},
		{"paused", "migrating", "MIGRATING"}, {"nonsense", "", "UNKNOWN"},
	} {
		if got := novaStatus(tc.vm, tc.task); got != tc.want {
			t.Errorf("novaStatus(%q, %q) = %q, want %q", tc.vm, tc.task, got, tc.want)
		}
	}
}

func eventMonitor() *monitor {
	c := &Cloud{cfg: Config{}.withDefaults(), log: slog.New(slog.DiscardHandler)}
	m := newMonitor(c, KindServer, nil)
	m.ev = &eventState{reconcile: time.Hour, up: true}
	return m
}

func ev(id, reqID string, at time.Time, vm, task string, failed bool) *serverEvent {
	return &serverEvent{id: id, reqID: reqID, at: at, failed: failed,
		obs: &observation{ID: id, Status: novaStatus(vm, task), TaskState: task, Gone: vm == "deleted"}}
}

// Which events decide a watch: only those its call caused (its request
// id) or a deletion; never one older than an event already applied; and an
// error event leaves it to polling.
func TestEventJudging(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		reqID   string // the watch's
		events  []*serverEvent
		decided bool
		failed  bool
		hot     bool
	}{
		{name: "own end", reqID: "req-1", events: []*serverEvent{ev("s", "req-1", t0, "active", "", false)}, decided: true},
		{name: "own start", reqID: "req-1", events: []*serverEvent{ev("s", "req-1", t0, "active", "rebooting", false)}},
		// A reboot's watch must not take the create's end (ACTIVE, no
		// task) arriving late for completion.
		{name: "another call's end", reqID: "req-2", events: []*serverEvent{ev("s", "req-1", t0, "active", "", false)}},
		{name: "deleted by another call", reqID: "req-2", events: []*serverEvent{ev("s", "req-9", t0, "deleted", "", false)}, decided: true, failed: true},
		{name: "late older event", reqID: "req-1", events: []*serverEvent{
			ev("s", "req-1", t0.Add(time.Second), "active", "rebooting", false),
			ev("s", "req-1", t0, "active", "", false)}},
		{name: "duplicate end", reqID: "req-1", events: []*serverEvent{
			ev("s", "req-1", t0, "active", "rebooting", false),
			ev("s", "req-1", t0, "active", "rebooting", false),
			ev("s", "req-1", t0.Add(time.Millisecond), "active", "", false)}, decided: true},
		{name: "error event", reqID: "req-1", events: []*serverEvent{ev("s", "req-1", t0, "building", "spawning", true)}, hot: true},
		{name: "error state", reqID: "req-1", events: []*serverEvent{ev("s", "req-1", t0, "error", "", false)}, hot: true},
		{name: "no request id", reqID: "", events: []*serverEvent{ev("s", "req-1", t0, "active", "", false)}, hot: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := eventMonitor()
			var got error
			finished := false
			w := &watch{id: "s", op: "reboot", reqID: tc.reqID, judge: serverTarget("s", "reboot", &Initial{}, StatusActive),
				finish: func(_ *observation, err error) { finished, got = true, err }}
			m.started = true // no goroutine: the test judges by hand
			m.add(w)
			for _, e := range tc.events {
				m.onEvent(e)
			}
			if finished != tc.decided || (got != nil) != tc.failed {
				t.Errorf("finished=%v err=%v, want finished=%v failed=%v", finished, got, tc.decided, tc.failed)
			}
			if tc.failed && !errors.Is(got, ErrDeleted) {
				t.Errorf("err %v, want a DeletedError", got)
			}
			if !tc.decided && w.hot != tc.hot {
				t.Errorf("hot=%v, want %v", w.hot, tc.hot)
			}
			if stretched := m.stretched(time.Now()); !tc.decided && stretched == tc.hot {
				t.Errorf("stretched=%v with hot=%v: a hot watch must keep the monitor polling", stretched, tc.hot)
			}
		})
	}
}

// An event that comes before its watch is registered (a call whose
// operation ended before its answer was read) is kept and judged on
// registration; an unrelated one is not used.
func TestEventBeforeWatch(t *testing.T) {
	m := eventMonitor()
	m.started = true
	t0 := time.Now()
	m.onEvent(ev("fast", "req-1", t0, "deleted", "", false))
	m.onEvent(ev("other", "req-x", t0, "active", "", false))
	var done []string
	for _, w := range []*watch{
		{id: "fast", op: "delete", reqID: "req-1", wantGone: true},
		{id: "other", op: "reboot", reqID: "req-2"},
	} {
		w.judge = func(o *observation) (verdict, error) {
			if o.Gone || o.TaskState == "" {
				return succeeded, nil
			}
			return pending, nil
		}
		w.finish = func(*observation, error) { done = append(done, w.id) }
		m.add(w)
	}
	if len(done) != 1 || done[0] != "fast" {
		t.Errorf("completed on registration: %v, want [fast]", done)
	}
	if m.pendingCount() != 1 {
		t.Errorf("%d pending, want 1", m.pendingCount())
	}
}

// The kept events are bounded in number and age.
func TestRecentEventsBounded(t *testing.T) {
	var r recentEvents
	t0 := time.Now()
	for i := range recentEventMax + 10 {
		r.add(&serverEvent{id: string(rune('a'+i%26)) + strings.Repeat("x", i/26)}, t0)
	}
	if len(r.byID) > recentEventMax || len(r.order) > recentEventMax {
		t.Errorf("%d ids kept, bound %d", len(r.byID), recentEventMax)
	}
	for range recentPerID + 3 {
		r.add(&serverEvent{id: "many"}, t0)
	}
	if n := len(r.byID["many"]); n != recentPerID {
		t.Errorf("%d events kept for one server, want %d", n, recentPerID)
	}
	if evs := r.take("many", t0.Add(recentEventTTL+time.Second)); evs != nil || len(r.byID) != 0 {
		t.Errorf("events older than the TTL were kept: %d, %d ids", len(evs), len(r.byID))
	}
}

// The monitor trusts events (stretches its rounds) only while the feed is
// up, a round has listed since it came up with watches pending, and no
// reconciliation found a missed completion since the last completion by
// event.
func TestStretchedRules(t *testing.T) {
	m := eventMonitor()
	m.started = true
	now := time.Now()
	if !m.stretched(now) {
		t.Fatal("feed up, nothing pending: not stretched")
	}
	m.feedChanged(false)
	if m.stretched(now) {
		t.Error("feed down: stretched")
	}
	m.add(&watch{id: "s", reqID: "req-1", judge: serverTarget("s", "create", &Initial{}, StatusActive), finish: func(*observation, error) {}})
	m.feedChanged(true)
	if m.stretched(now) {
		t.Error("feed back with a watch pending, before any round: stretched")
	}
	m.mu.Lock()
	m.resyncedLocked(m.feedGenLocked())
	m.mu.Unlock()
	if !m.stretched(now) {
		t.Error("after the resync round: not stretched")
	}
	m.dispatch(1, true, []*observation{{ID: "s", Status: StatusActive}})
	if m.stretched(now) {
		t.Error("after a missed completion: stretched")
	}
	if _, missed := m.eventStats(); missed != 1 {
		t.Errorf("%d missed, want 1", missed)
	}
	m.add(&watch{id: "t", reqID: "req-2", judge: serverTarget("t", "create", &Initial{}, StatusActive), finish: func(*observation, error) {}})
	m.onEvent(ev("t", "req-2", now, "active", "", false))
	if !m.stretched(now) {
		t.Error("an event completed an operation again: still not stretched")
	}
}

// The reconnection backoff doubles from notifyBackoffMin and stops at
// notifyBackoffMax.
func TestNotifyBackoff(t *testing.T) {
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{{1, notifyBackoffMin}, {2, 2 * notifyBackoffMin}, {4, 8 * notifyBackoffMin}, {20, notifyBackoffMax}, {1000, notifyBackoffMax}} {
		if got := notifyBackoff(tc.failures, 0); got != tc.want {
			t.Errorf("%d failures: %s, want %s", tc.failures, got, tc.want)
		}
		if got := notifyBackoff(tc.failures, 0.999); got < tc.want*8/10 || got > tc.want {
			t.Errorf("%d failures with jitter: %s outside [0.8, 1] × %s", tc.failures, got, tc.want)
		}
	}
}

// Secrets never show in a scrubbed error or a redacted URL.
func TestRedaction(t *testing.T) {
	raw := "amqp://ostask:p%40ss@broker:5672/vh"
	if r := redactURL(raw); strings.Contains(r, "p%40ss") || strings.Contains(r, "p@ss") || !strings.Contains(r, "broker:5672") {
		t.Errorf("redactURL = %q", r)
	}
	inner := errors.New("dial amqp://ostask:p@ss@broker failed, password p@ss")
	err := &scrubbedError{err: inner, secrets: secretsOf(raw)}
	if strings.Contains(err.Error(), "p@ss") || !errors.Is(err, inner) {
		t.Errorf("scrubbed: %q (Is inner: %v)", err.Error(), errors.Is(err, inner))
	}
	if r := redactURL("amqp://u:pw@h:bad port/"); strings.Contains(r, "pw") {
		t.Errorf("unparsable URL shown as %q", r)
	}
}

// Nova's compute.exception names no server, only the failed request (a
// delete that failed and turned the server ERROR sends nothing else): the
// watches of that request are left to polling at once.
func TestComputeExceptionHeatsItsWatches(t *testing.T) {
	body := `{"oslo.version": "2.0", "oslo.message": "{\"message_id\": \"m\", \"event_type\": \"compute.exception\", \"priority\": \"ERROR\", ` +
		`\"timestamp\": \"2026-11-27 13:25:47.364294\", \"_context_request_id\": \"req-del\", \"_context_project_id\": \"p\", ` +
		`\"payload\": {\"nova_object.name\": \"ExceptionPayload\", \"nova_object.data\": {\"exception\": \"InstanceTerminationFailure\"}}}"}`
	e, err := decodeNovaEvent([]byte(body))
	if err != nil || e == nil || e.id != "" || e.reqID != "req-del" || e.project != "p" {
		t.Fatalf("decoded %+v, %v", e, err)
	}
	m := eventMonitor()
	m.started = true
	del := &watch{id: "s", op: "delete", reqID: "req-del", wantGone: true, judge: func(*observation) (verdict, error) { return pending, nil }, finish: func(*observation, error) {}}
	other := &watch{id: "t", op: "delete", reqID: "req-other", wantGone: true, judge: func(*observation) (verdict, error) { return pending, nil }, finish: func(*observation, error) {}}
	m.add(del)
	m.add(other)
	m.onEvent(e)
	if !del.hot || other.hot || m.stretched(time.Now()) {
		t.Errorf("hot: failed request's watch %v, other %v; stretched %v", del.hot, other.hot, m.stretched(time.Now()))
	}
}

// While events are trusted, a new watch wakes the sleeping monitor
// goroutine only if its deadline comes before the planned wake: a burst
// of calls must not make it scan every watch once per call.
func TestQuietAdd(t *testing.T) {
	m := eventMonitor()
	m.started = true
	m.planWake(time.Now().Add(time.Hour))
	m.add(&watch{id: "a", reqID: "r", judge: func(*observation) (verdict, error) { return pending, nil }, finish: func(*observation, error) {}})
	select {
	case <-m.wake:
		t.Error("a watch without a deadline woke the monitor")
	default:
	}
	m.add(&watch{id: "b", reqID: "r", deadline: time.Now().Add(time.Minute), judge: func(*observation) (verdict, error) { return pending, nil }, finish: func(*observation, error) {}})
	select {
	case <-m.wake:
	default:
		t.Error("a watch due before the planned wake did not wake the monitor")
	}
	m.planWake(time.Time{}) // awake or idle: every watch must wake it
	m.add(&watch{id: "c", reqID: "r", judge: func(*observation) (verdict, error) { return pending, nil }, finish: func(*observation, error) {}})
	select {
	case <-m.wake:
	default:
		t.Error("a watch added while the monitor had no plan did not wake it")
	}
}

// The consumer decodes every notification of a burst on one goroutine:
// what one costs, and what one that completes an operation costs.
func BenchmarkDecodeNovaEvent(b *testing.B) {
	body, err := os.ReadFile("testdata/realstack_instance_create_end.json")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := decodeNovaEvent(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("foreign", func(b *testing.B) { // another project's: looked at, not decoded
		mark := []byte("0123456789abcdef0123456789abcdef")
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if bytes.Contains(body, mark) {
				b.Fatal("the fixture names the project")
			}
		}
	})
	b.Run("decode+decided", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			ev, err := decodeNovaEvent(body)
			if err != nil {
				b.Fatal(err)
			}
			ev.decided()
		}
	})
}
