package ops_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

// fakeSource is a notification source the test drives: each Listen is a
// connection, which receives what send sends and ends with fail.
type fakeSource struct {
	mu      sync.Mutex
	listens int
	active  int // Listens not yet returned
	msgs    chan string
	fail    chan error
}

func newFakeSource() *fakeSource {
	return &fakeSource{msgs: make(chan string), fail: make(chan error)}
}

func (f *fakeSource) Listen(ctx context.Context, up func(), deliver func(string, []byte)) error {
	f.mu.Lock()
	f.listens++
	f.active++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.active--
		f.mu.Unlock()
	}()
	up()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err() // as the AMQP source does when cancelled while dialling
		case err := <-f.fail:
			return err
		case m := <-f.msgs:
			deliver("versioned_notifications.info", []byte(m))
		}
	}
}

// send sends m to the connection, failing t if none takes it.
func (f *fakeSource) send(t *testing.T, m string) {
	t.Helper()
	select {
	case f.msgs <- m:
	case <-time.After(10 * time.Second):
		t.Fatalf("no connection took message %q", m)
	}
}

func (f *fakeSource) counts() (listens, active int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listens, f.active
}

// hubListener is one Listen on a hub, as a Cloud makes it.
type hubListener struct {
	cancel context.CancelFunc
	up     chan struct{}
	got    chan string
	ended  chan error
}

func listenHub(h *ops.NotificationHub) *hubListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &hubListener{cancel: cancel, up: make(chan struct{}), got: make(chan string, 100), ended: make(chan error, 1)}
	go func() {
		l.ended <- h.Listen(ctx, func() { close(l.up) }, func(_ string, b []byte) { l.got <- string(b) })
	}()
	return l
}

func (l *hubListener) waitUp(t *testing.T) {
	t.Helper()
	select {
	case <-l.up:
	case <-time.After(10 * time.Second):
		t.Fatal("a listener never saw the hub connected")
	}
}

func (l *hubListener) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-l.got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("a listener received nothing")
		return ""
	}
}

func (l *hubListener) end(t *testing.T) error {
	t.Helper()
	select {
	case err := <-l.ended:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("a listener's Listen never returned")
		return nil
	}
}

// newHub makes a hub on src with an hour's reconciliation interval,
// logging on log (nil: nowhere).
func newHub(t *testing.T, src ops.NotificationStream, log *slog.Logger) *ops.NotificationHub {
	t.Helper()
	h, err := ops.NewNotificationHub(ops.NotificationConfig{Stream: src, ReconcileInterval: time.Hour}, log)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// dialHub dials c's project with h as its notification source, logging on
// log (nil: nowhere); the Cloud closes at the end of the test.
func dialHub(t *testing.T, ctx context.Context, h *ops.NotificationHub, c cloudsim.Credentials, log *slog.Logger) *ops.Cloud {
	t.Helper()
	cfg := h.Config()
	cloud, err := ops.Dial(ctx, ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: c.AuthURL, Username: c.Username,
		Password: c.Password, DomainName: c.DomainName, TenantName: c.ProjectName}},
		ops.Config{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond, DefaultTimeout: 20 * time.Second,
			Notifications: &cfg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cloud.Close() })
	return cloud
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for " + what)
		}
	}
}

// Three Clouds on one hub: one connection to the source, every message to
// each of them, in order; one leaving stops only its own deliveries; the
// last leaving ends the connection, and the next Cloud makes a new one.
func TestNotificationHubShares(t *testing.T) {
	src := newFakeSource()
	h := newHub(t, src, nil)
	defer h.Close()
	ls := []*hubListener{listenHub(h), listenHub(h), listenHub(h)}
	for _, l := range ls {
		l.waitUp(t)
	}
	if n, _ := src.counts(); n != 1 || h.Connections() != 1 {
		t.Fatalf("3 Clouds made %d connections (hub says %d), want 1", n, h.Connections())
	}
	for i := range 5 {
		src.send(t, fmt.Sprint(i))
	}
	for j, l := range ls {
		for i := range 5 {
			if m := l.next(t); m != fmt.Sprint(i) {
				t.Fatalf("listener %d: message %d is %q", j, i, m)
			}
		}
	}
	ls[0].cancel()
	if err := ls[0].end(t); err != nil {
		t.Errorf("a Listen whose context ended returned %v, want nil", err)
	}
	src.send(t, "after")
	for _, l := range ls[1:] {
		if m := l.next(t); m != "after" {
			t.Fatalf("got %q, want after", m)
		}
	}
	if len(ls[0].got) != 0 {
		t.Errorf("a Cloud that left still received %q", <-ls[0].got)
	}
	ls[1].cancel()
	ls[2].cancel()
	ls[1].end(t)
	ls[2].end(t)
	waitFor(t, "the source's Listen to end with its last Cloud", func() bool { _, a := src.counts(); return a == 0 })
	l := listenHub(h)
	l.waitUp(t)
	if n, _ := src.counts(); n != 2 || h.Connections() != 2 {
		t.Errorf("after every Cloud left, a new one made connection %d (hub: %d), want 2", n, h.Connections())
	}
	l.cancel()
	l.end(t)
}

// A lost connection ends every Cloud's Listen with its error, so that
// each polls; the first to listen again reconnects, the others join it.
func TestNotificationHubLostConnection(t *testing.T) {
	src := newFakeSource()
	h := newHub(t, src, nil)
	defer h.Close()
	a, b := listenHub(h), listenHub(h)
	a.waitUp(t)
	b.waitUp(t)
	lost := errors.New("connection reset by peer")
	select {
	case src.fail <- lost:
	case <-time.After(10 * time.Second):
		t.Fatal("no connection to fail")
	}
	for _, l := range []*hubListener{a, b} {
		if err := l.end(t); !errors.Is(err, lost) {
			t.Errorf("Listen after the loss: %v, want the source's error", err)
		}
	}
	a, b = listenHub(h), listenHub(h)
	a.waitUp(t)
	b.waitUp(t)
	if n, _ := src.counts(); n != 2 {
		t.Errorf("%d connections after one loss, want 2", n)
	}
	src.send(t, "x")
	if a.next(t) != "x" || b.next(t) != "x" {
		t.Error("the new connection does not reach both Clouds")
	}
	// A source that ends without an error has still lost its connection.
	select {
	case src.fail <- nil:
	case <-time.After(10 * time.Second):
		t.Fatal("no connection to end")
	}
	for _, l := range []*hubListener{a, b} {
		if err := l.end(t); err == nil || errors.Is(err, ops.ErrHubClosed) {
			t.Errorf("Listen after the stream ended: %v, want an error", err)
		}
	}
}

// A Cloud slow to handle a message (a slow OnDone callback) does not
// hold up the other Clouds of the hub: each handles its messages in its
// own goroutine, in order.
func TestNotificationHubSlowCloud(t *testing.T) {
	src := newFakeSource()
	h := newHub(t, src, nil)
	defer h.Close()
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	slowGot := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()  // a failed test ends too: the slow Cloud leaves,
	defer unblock() // once unblocked, before the hub closes
	slowUp, slowEnded := make(chan struct{}), make(chan error, 1)
	go func() {
		slowEnded <- h.Listen(ctx, func() { close(slowUp) }, func(_ string, b []byte) {
			<-release
			slowGot <- string(b)
		})
	}()
	fast := listenHub(h)
	fast.waitUp(t)
	select {
	case <-slowUp:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow Cloud never connected")
	}
	for _, m := range []string{"1", "2", "3"} {
		src.send(t, m)
	}
	for _, want := range []string{"1", "2", "3"} {
		if m := fast.next(t); m != want {
			t.Fatalf("while another Cloud is stuck: got %q, want %q", m, want)
		}
	}
	unblock()
	for _, want := range []string{"1", "2", "3"} {
		select {
		case m := <-slowGot:
			if m != want {
				t.Fatalf("the slow Cloud got %q, want %q", m, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the slow Cloud never got its messages")
		}
	}
	cancel()
	select {
	case err := <-slowEnded:
		if err != nil {
			t.Errorf("the slow Cloud's Listen: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the slow Cloud's Listen never returned")
	}
	fast.cancel()
	fast.end(t)
}

// Close returns even while a Cloud is stuck on a message and its queue is
// full (the connection stops waiting for room).
func TestNotificationHubCloseWhileStuck(t *testing.T) {
	src := newFakeSource()
	h := newHub(t, src, nil)
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up := make(chan struct{})
	go func() { _ = h.Listen(ctx, func() { close(up) }, func(string, []byte) { <-release }) }()
	select {
	case <-up:
	case <-time.After(10 * time.Second):
		t.Fatal("never connected")
	}
	// One message taken and stuck in deliver, HubQueue queued, and one
	// more that waits for room.
	for i := range ops.HubQueue + 2 {
		src.send(t, fmt.Sprint(i))
	}
	closed := make(chan struct{})
	go func() {
		h.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waits for a stuck Cloud")
	}
}

// refusingSource refuses every connection while refuse is set, as a
// broker that is down does.
type refusingSource struct {
	*fakeSource
	refuse atomic.Bool
}

func (r *refusingSource) Listen(ctx context.Context, up func(), deliver func(string, []byte)) error {
	if r.refuse.Load() {
		return errors.New("connection refused")
	}
	return r.fakeSource.Listen(ctx, up, deliver)
}

// While the broker is down every Cloud tries again on its own, and each
// try fails; the hub warns once per outage, and says once that it is
// connected again.
func TestNotificationHubLogsOncePerOutage(t *testing.T) {
	src := &refusingSource{fakeSource: newFakeSource()}
	src.refuse.Store(true)
	var logs syncBuffer
	h := newHub(t, src, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	defer h.Close()
	for range 3 { // three Clouds, three tries each
		for range 3 {
			if err := h.Listen(context.Background(), func() {}, func(string, []byte) {}); err == nil {
				t.Fatal("Listen on a refusing source returned nil")
			}
		}
	}
	src.refuse.Store(false)
	l := listenHub(h)
	l.waitUp(t)
	lost, up := "level=WARN msg=\"ostask: notifications unavailable", "level=INFO msg=\"ostask: notifications connected"
	if n, m := strings.Count(logs.String(), lost), strings.Count(logs.String(), up); n != 1 || m != 1 {
		t.Errorf("9 refused tries then a connection: %d warnings and %d connections logged, want 1 and 1:\n%s", n, m, logs.String())
	}
	l.cancel()
	l.end(t)
}

// Close ends the connection; a Listen after it is refused.
func TestNotificationHubClose(t *testing.T) {
	src := newFakeSource()
	h := newHub(t, src, nil)
	l := listenHub(h)
	l.waitUp(t)
	h.Close()
	if err := l.end(t); !errors.Is(err, ops.ErrHubClosed) {
		t.Errorf("Listen at Close: %v, want ErrHubClosed", err)
	}
	if _, a := src.counts(); a != 0 {
		t.Error("the source is still listened to after Close")
	}
	if err := h.Listen(context.Background(), func() {}, func(string, []byte) {}); !errors.Is(err, ops.ErrHubClosed) {
		t.Errorf("Listen after Close: %v, want ErrHubClosed", err)
	}
	if _, err := ops.NewNotificationHub(ops.NotificationConfig{URL: "http://broker/"}, nil); !errors.Is(err, ops.ErrInvalidOption) {
		t.Errorf("a hub on an http URL: %v, want ErrInvalidOption", err)
	}
}

// countingStream counts the connections made to the stream it wraps.
type countingStream struct {
	ops.NotificationStream
	n atomic.Int64
}

func (c *countingStream) Listen(ctx context.Context, up func(), deliver func(string, []byte)) error {
	c.n.Add(1)
	return c.NotificationStream.Listen(ctx, up, deliver)
}

// Two projects' Clouds on one hub, as serve and worker make them: one
// connection to the bus, and each project's operations complete by their
// own events (no monitor round: the reconciliation interval is an hour),
// while the other project's messages are skipped undecoded.
func TestNotificationHubOfTwoProjects(t *testing.T) {
	ctx := ctxT(t)
	nc := startNotify(t, nil, ops.NotificationConfig{Stream: newFakeSource()}, nil) // its own Cloud is not used
	bus := &countingStream{NotificationStream: nc.sim.Notifications()}
	h := newHub(t, bus, nil)
	t.Cleanup(func() { _ = h.Close() }) // after the Clouds'
	mine, theirs := dialHub(t, ctx, h, nc.sim.DemoCredentials(), nil), dialHub(t, ctx, h, nc.sim.AltCredentials(), nil)
	for _, c := range []*ops.Cloud{mine, theirs} {
		waitFor(t, "a Cloud of the hub to connect", func() bool { return c.Stats().Notifications.Connected })
	}
	var wg sync.WaitGroup
	var nMine, nTheirs int
	wg.Add(2)
	go func() { defer wg.Done(); nMine = lifecycle(t, ctx, mine, nc.sim, "mine", 2) }()
	go func() { defer wg.Done(); nTheirs = lifecycle(t, ctx, theirs, nc.sim, "theirs", 2) }()
	wg.Wait()
	if got := bus.n.Load(); got != 1 || h.Connections() != 1 {
		t.Errorf("two Clouds made %d connections to the bus (hub: %d), want 1", got, h.Connections())
	}
	for _, c := range []struct {
		name  string
		cloud *ops.Cloud
		n     int
	}{{"demo", mine, nMine}, {"alt", theirs, nTheirs}} {
		st := c.cloud.Stats()
		if st.Notifications.Completions != int64(c.n) || st.Rounds[ops.KindServer] != 0 {
			t.Errorf("%s: %d of %d operations completed by events, %d monitor rounds; want all, and none",
				c.name, st.Notifications.Completions, c.n, st.Rounds[ops.KindServer])
		}
		if st.Notifications.Foreign == 0 {
			t.Errorf("%s: no foreign message skipped, though both projects shared the bus: %+v", c.name, st.Notifications)
		}
	}
}

// A broker restart (the bus cut) ends the hub's connection for both
// projects' Clouds: each polls, comes back after its own backoff, and
// they share one new connection. The hub logs the loss once; the Clouds
// only at debug level.
func TestNotificationHubReconnects(t *testing.T) {
	ctx := ctxT(t)
	nc := startNotify(t, nil, ops.NotificationConfig{Stream: newFakeSource()}, nil) // its own Cloud is not used
	bus := &countingStream{NotificationStream: nc.sim.Notifications()}
	hubLog, cloudLog := &syncBuffer{}, &syncBuffer{}
	info := &slog.HandlerOptions{Level: slog.LevelInfo}
	h := newHub(t, bus, slog.New(slog.NewTextHandler(hubLog, info)))
	t.Cleanup(func() { _ = h.Close() }) // after the Clouds'
	cl := slog.New(slog.NewTextHandler(cloudLog, info))
	clouds := []*ops.Cloud{dialHub(t, ctx, h, nc.sim.DemoCredentials(), cl), dialHub(t, ctx, h, nc.sim.AltCredentials(), cl)}
	connects := func(n int64) func() bool {
		return func() bool {
			for _, c := range clouds {
				if ns := c.Stats().Notifications; !ns.Connected || ns.Connects != n {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "both Clouds to connect", connects(1))
	nc.sim.CutNotifications(false)
	waitFor(t, "both Clouds to connect again", connects(2))
	for _, c := range clouds {
		if ns := c.Stats().Notifications; ns.Failures != 1 {
			t.Errorf("a Cloud saw %d failures for one cut: %+v", ns.Failures, *ns)
		}
	}
	if got := bus.n.Load(); got != 2 || h.Connections() != 2 {
		t.Errorf("%d connections to the bus (hub: %d) after one cut, want 2", got, h.Connections())
	}
	lost, up := "level=WARN msg=\"ostask: notifications unavailable", "level=INFO msg=\"ostask: notifications connected"
	if n, m := strings.Count(hubLog.String(), lost), strings.Count(hubLog.String(), up); n != 1 || m != 2 {
		t.Errorf("the hub logged %d losses and %d connections for one cut, want 1 and 2:\n%s", n, m, hubLog)
	}
	if strings.Contains(cloudLog.String(), "notifications") {
		t.Errorf("the hub's Clouds logged their notifications above debug level:\n%s", cloudLog)
	}
	if n := lifecycle(t, ctx, clouds[1], nc.sim, "after-cut", 1); clouds[1].Stats().Notifications.Completions != int64(n) {
		t.Errorf("after the reconnection, %d of %d operations completed by events", clouds[1].Stats().Notifications.Completions, n)
	}
}
