package cloudsim_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ostask/ostask/cloudsim"
)

// note is one received notification, decoded as a consumer would.
type note struct {
	key      string
	event    string
	priority string
	stamp    string
	data     map[string]any
	raw      []byte
	at       time.Time
}

// listen subscribes to the simulator's bus until the test ends and
// returns the notifications as they come.
func listen(t *testing.T, sim *cloudsim.Sim) <-chan note {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan note, 256)
	up := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- sim.Notifications().Listen(ctx, func() { close(up) }, func(key string, body []byte) {
			ch <- decodeNote(t, key, body)
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen ended with %v, want nil after its context ended", err)
		}
	})
	<-up
	return ch
}

func decodeNote(t *testing.T, key string, body []byte) note {
	var env map[string]any
	if err := json.Unmarshal(body, &env); err != nil {
		t.Errorf("body is not JSON: %v", err)
		return note{}
	}
	s, ok := env["oslo.message"].(string)
	if !ok || env["oslo.version"] != "2.0" {
		t.Errorf("envelope %v: want oslo.version 2.0 and oslo.message as a JSON string", env)
		return note{}
	}
	var msg struct {
		EventType string `json:"event_type"`
		Priority  string `json:"priority"`
		Timestamp string `json:"timestamp"`
		MessageID string `json:"message_id"`
		Payload   struct {
			Name string         `json:"nova_object.name"`
			Data map[string]any `json:"nova_object.data"`
		} `json:"payload"`
	}
	if err := json.Unmarshal([]byte(s), &msg); err != nil {
		t.Errorf("oslo.message: %v", err)
	}
	if msg.MessageID == "" || msg.Payload.Name == "" {
		t.Errorf("message without message_id or payload name: %s", s)
	}
	if _, err := time.Parse("2006-01-02 15:04:05.000000", msg.Timestamp); err != nil {
		t.Errorf("timestamp %q is not oslo's: %v", msg.Timestamp, err)
	}
	return note{key: key, event: msg.EventType, priority: msg.Priority, stamp: msg.Timestamp, data: msg.Payload.Data, raw: body, at: time.Now()}
}

// next returns the next notification, failing the test if none comes.
func next(t *testing.T, ch <-chan note) note {
	t.Helper()
	select {
	case n := <-ch:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no notification came")
		return note{}
	}
}

// A build and a delete notify what Nova notifies: the start and the end of
// each, on the info topic, with the payload fields a consumer reads; the
// request id is the one of the call's instance action.
func TestNotificationsOfALifecycle(t *testing.T) {
	e := newNovaEnv(t, nil)
	ch := listen(t, e.sim)
	id := e.active("noted")
	createReq := e.lastAction(id).RequestID
	if err := servers.Delete(e.ctx, e.demo, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	deleteReq := e.lastAction(id).RequestID
	e.settle()
	for _, want := range []struct{ event, state, task, req string }{
		{"instance.create.start", "building", "networking", createReq},
		{"instance.create.end", "active", "", createReq},
		{"instance.delete.start", "active", "deleting", deleteReq},
		{"instance.delete.end", "deleted", "", deleteReq},
	} {
		n := next(t, ch)
		task, _ := n.data["task_state"].(string)
		if n.event != want.event || n.key != cloudsim.NotifyTopicInfo || n.priority != "INFO" ||
			n.data["uuid"] != id || n.data["state"] != want.state || task != want.task || n.data["request_id"] != want.req {
			t.Errorf("got %s on %s: state %v task %v request %v; want %s %s/%q %s", n.event, n.key,
				n.data["state"], n.data["task_state"], n.data["request_id"], want.event, want.state, want.task, want.req)
		}
		if n.data["tenant_id"] == "" || n.data["tenant_id"] == nil || n.data["display_name"] != "noted" {
			t.Errorf("%s: payload lacks tenant_id or display_name: %v", n.event, n.data)
		}
	}
}

// A build aborted on the compute host: Nova notifies the error first, on
// the error topic, with the state it failed in and the fault, and nothing
// when the server turns ERROR.
func TestNotificationOfABuildAbort(t *testing.T) {
	e := newNovaEnv(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerCreate, Name: "aborted", Kind: cloudsim.FaultAbort}}})
	ch := listen(t, e.sim)
	id := e.create("aborted")
	e.settle()
	if n := next(t, ch); n.event != "instance.create.start" {
		t.Fatalf("first notification %s, want instance.create.start", n.event)
	}
	n := next(t, ch)
	fault, _ := n.data["fault"].(map[string]any)
	fd, _ := fault["nova_object.data"].(map[string]any)
	if n.event != "instance.create.error" || n.key != cloudsim.NotifyTopicError || n.priority != "ERROR" ||
		n.data["state"] != "building" || fd["exception_message"] == nil || n.data["uuid"] != id {
		t.Errorf("got %s on %s (%s): state %v fault %v", n.event, n.key, n.priority, n.data["state"], fault)
	}
	if st, _ := e.state(id); st != "ERROR" {
		t.Errorf("server %s, want ERROR", st)
	}
	// Nothing was sent when the aborted server turned ERROR: the next
	// notification is about another server.
	other := e.create("after")
	e.settle()
	if n := next(t, ch); n.data["uuid"] != other {
		t.Errorf("after the error, a notification %s about %v, want one about the next server", n.event, n.data["uuid"])
	}
}

// The fault plan's notification faults, each alone.
func TestNotificationFaultsInSim(t *testing.T) {
	t.Run("duplicate", func(t *testing.T) {
		e := newNovaEnv(t, &cloudsim.FaultPlan{Notify: cloudsim.NotifyFaults{Duplicate: 1}})
		ch := listen(t, e.sim)
		e.active("dup")
		a, b := next(t, ch), next(t, ch)
		if a.event != "instance.create.start" || string(a.raw) != string(b.raw) {
			t.Errorf("got %s then %s, want the same notification twice", a.event, b.event)
		}
	})
	t.Run("reorder", func(t *testing.T) {
		e := newNovaEnv(t, &cloudsim.FaultPlan{Notify: cloudsim.NotifyFaults{Reorder: 1}})
		ch := listen(t, e.sim)
		e.active("reo")
		a, b := next(t, ch), next(t, ch)
		if a.event != "instance.create.end" || b.event != "instance.create.start" {
			t.Errorf("got %s then %s, want the end to overtake the start", a.event, b.event)
		}
	})
	t.Run("delay", func(t *testing.T) {
		const by = 50 * time.Millisecond
		e := newNovaEnv(t, &cloudsim.FaultPlan{Notify: cloudsim.NotifyFaults{Delay: 1, DelayBy: by}})
		ch := listen(t, e.sim)
		e.create("late")
		sent := time.Now()
		e.tick(2 * time.Second) // to networking: create.start
		if n := next(t, ch); n.event != "instance.create.start" || n.at.Sub(sent) < by {
			t.Errorf("%s came %s after the change, want at least %s", n.event, n.at.Sub(sent), by)
		}
	})
	t.Run("parse", func(t *testing.T) {
		p, err := cloudsim.ParseFaultPlan("notify.drop=0.1,notify.duplicate=0.2,notify.delay=0.3,notify.delay-by=40ms,notify.reorder=0.4")
		want := cloudsim.NotifyFaults{Drop: 0.1, Duplicate: 0.2, Delay: 0.3, DelayBy: 40 * time.Millisecond, Reorder: 0.4}
		if err != nil || p.Notify != want {
			t.Errorf("parsed %+v, %v; want %+v", p, err, want)
		}
		for _, bad := range []string{"notify.explode=1", "notify.drop=lots", "notify.delay-by=soon", "notify.drop=2"} {
			if _, err := cloudsim.ParseFaultPlan(bad); !errors.Is(err, cloudsim.ErrBadFaultPlan) {
				t.Errorf("%s: %v, want ErrBadFaultPlan", bad, err)
			}
		}
	})
	t.Run("bad", func(t *testing.T) {
		for _, f := range []cloudsim.NotifyFaults{{Drop: 2}, {Reorder: -1}, {DelayBy: -time.Second}} {
			if err := (&cloudsim.FaultPlan{Notify: f}).Validate(); !errors.Is(err, cloudsim.ErrBadFaultPlan) {
				t.Errorf("%+v: %v, want ErrBadFaultPlan", f, err)
			}
		}
	})
}

// Cutting the connection ends every listener with ErrNotificationsCut;
// staying down, new listeners are refused until RestoreNotifications.
func TestCutNotifications(t *testing.T) {
	e := newNovaEnv(t, nil)
	ctx := context.Background()
	up := make(chan struct{})
	ended := make(chan error, 1)
	go func() { ended <- e.sim.Notifications().Listen(ctx, func() { close(up) }, func(string, []byte) {}) }()
	<-up
	e.sim.CutNotifications(true)
	if err := <-ended; !errors.Is(err, cloudsim.ErrNotificationsCut) {
		t.Fatalf("a cut listener ended with %v", err)
	}
	if err := e.sim.Notifications().Listen(ctx, func() { t.Error("connected while down") }, nil); !errors.Is(err, cloudsim.ErrNotificationsCut) {
		t.Errorf("Listen while down: %v", err)
	}
	e.sim.RestoreNotifications()
	lctx, cancel := context.WithCancel(ctx)
	got := make(chan struct{})
	go func() {
		<-got
		cancel()
	}()
	if err := e.sim.Notifications().Listen(lctx, func() { close(got) }, nil); err != nil {
		t.Errorf("Listen after restore: %v", err)
	}
}
