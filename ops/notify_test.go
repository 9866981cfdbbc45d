package ops_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

// notifyCloud is a cloudsim and a Cloud that reads its notifications.
type notifyCloud struct {
	sim       *cloudsim.Sim
	cloud     *ops.Cloud
	connected chan slog.Record // "notifications connected" log lines
	logs      *syncBuffer
}

// syncBuffer collects every log line, for checks on what was logged.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// teeHandler sends records to every handler.
type teeHandler []slog.Handler

func (t teeHandler) Enabled(context.Context, slog.Level) bool { return true }
func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range t {
		_ = h.Handle(ctx, r.Clone())
	}
	return nil
}
func (t teeHandler) WithAttrs([]slog.Attr) slog.Handler { return t }
func (t teeHandler) WithGroup(string) slog.Handler      { return t }

// startNotify starts a cloudsim with plan and a Cloud whose notification
// source is nc (its Stream defaults to the simulator's bus).
func startNotify(t *testing.T, plan *cloudsim.FaultPlan, nc ops.NotificationConfig, publisher cloudsim.Publisher) *notifyCloud {
	t.Helper()
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{Faults: plan, Publisher: publisher})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if nc.URL == "" && nc.Stream == nil {
		nc.Stream = sim.Notifications()
	}
	sig := &signalHandler{match: "notifications connected", ch: make(chan slog.Record, 16)}
	logs := &syncBuffer{}
	cred := sim.DemoCredentials()
	cloud, err := ops.Dial(ctx, ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: cred.AuthURL, Username: cred.Username,
		Password: cred.Password, DomainName: cred.DomainName, TenantName: cred.ProjectName}},
		ops.Config{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond, RateLimit: 1000, Burst: 100,
			DefaultTimeout: 20 * time.Second, Notifications: &nc,
			Logger: slog.New(teeHandler{sig, slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cloud.Close() })
	return &notifyCloud{sim: sim, cloud: cloud, connected: sig.ch, logs: logs}
}

// waitConnected waits for the n-th "notifications connected".
func (nc *notifyCloud) waitConnected(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-nc.connected:
	case <-ctx.Done():
		t.Fatalf("the notification feed never connected: %+v", nc.cloud.Stats().Notifications)
	}
}

// lifecycle runs, on n servers at once, what the notifications must
// complete: create, stop, start, reboot, resize and confirm, delete. It
// checks every outcome against the simulator's own record and returns the
// number of server operations.
func lifecycle(t *testing.T, ctx context.Context, c *ops.Cloud, sim *cloudsim.Sim, prefix string, n int) int {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- oneLife(ctx, c, sim, fmt.Sprintf("%s-%d", prefix, i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	return 7 * n
}

func oneLife(ctx context.Context, c *ops.Cloud, sim *cloudsim.Sim, name string) error {
	op, err := c.CreateServer(ctx, serverOpts(name))
	if err != nil {
		return err
	}
	s, err := op.Result(ctx)
	if err != nil {
		return fmt.Errorf("%s: create: %w", name, err)
	}
	if s.Name != name || s.Status != ops.StatusActive || s.ID != op.ID() {
		return fmt.Errorf("%s: create resolved with %q %s %s, want the server ACTIVE", name, s.Name, s.ID, s.Status)
	}
	if err := truth(sim, s.ID, ops.StatusActive); err != nil {
		return err
	}
	steps := []struct {
		name   string
		call   func() (*ops.Operation[*servers.Server], error)
		status string
	}{
		{"stop", func() (*ops.Operation[*servers.Server], error) { return c.StopServer(ctx, s.ID) }, ops.StatusShutoff},
		{"start", func() (*ops.Operation[*servers.Server], error) { return c.StartServer(ctx, s.ID) }, ops.StatusActive},
		{"reboot", func() (*ops.Operation[*servers.Server], error) { return c.RebootServer(ctx, s.ID, false) }, ops.StatusActive},
		{"resize", func() (*ops.Operation[*servers.Server], error) { return c.ResizeServer(ctx, s.ID, "2") }, ops.StatusVerifyResize},
		{"confirm", func() (*ops.Operation[*servers.Server], error) { return c.ConfirmResize(ctx, s.ID) }, ops.StatusActive},
	}
	for _, st := range steps {
		op, err := st.call()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", name, st.name, err)
		}
		got, err := op.Result(ctx)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", name, st.name, err)
		}
		if got.Status != st.status {
			return fmt.Errorf("%s: %s resolved at %s, want %s", name, st.name, got.Status, st.status)
		}
		if err := truth(sim, s.ID, st.status); err != nil {
			return fmt.Errorf("%s: %s: %w", name, st.name, err)
		}
	}
	del, err := c.DeleteServer(ctx, s.ID)
	if err != nil {
		return err
	}
	if _, err := del.Result(ctx); err != nil {
		return fmt.Errorf("%s: delete: %w", name, err)
	}
	return truth(sim, s.ID, ops.StatusDeleted)
}

// truth checks that the simulator's server id is in status with no task.
func truth(sim *cloudsim.Sim, id, status string) error {
	for _, si := range sim.Servers(true) {
		if si.ID == id {
			if si.Status != status || si.TaskState != "" {
				return fmt.Errorf("server %s completed while the cloud shows %s/%q, want %s", id, si.Status, si.TaskState, status)
			}
			return nil
		}
	}
	return fmt.Errorf("server %s is not in the simulator", id)
}

// With events on, every server operation completes by its event: no
// monitor round runs at all (the reconciliation interval is longer than
// the test), and every outcome is the cloud's.
func TestNotificationsCompleteWithoutPolling(t *testing.T) {
	ctx := ctxT(t)
	nc := startNotify(t, nil, ops.NotificationConfig{ReconcileInterval: time.Hour}, nil)
	nc.waitConnected(t, ctx)
	n := lifecycle(t, ctx, nc.cloud, nc.sim, "evt", 8)
	st := nc.cloud.Stats()
	if r := st.Rounds[ops.KindServer]; r != 0 {
		t.Errorf("%d server monitor rounds, want 0: events must complete every operation", r)
	}
	if ns := st.Notifications; ns == nil || ns.Completions != int64(n) || ns.Missed != 0 || !ns.Connected {
		t.Errorf("notification stats %+v, want %d completions, none missed, connected", ns, n)
	}
}

// Without notifications configured, the same operations complete by
// polling, and Stats has no notification section.
func TestWithoutNotificationsPolls(t *testing.T) {
	tc := start(t, nil, false)
	ctx := ctxT(t)
	lifecycle(t, ctx, tc.cloud, tc.sim, "poll", 3)
	st := tc.cloud.Stats()
	if st.Notifications != nil {
		t.Errorf("notification stats %+v without notifications", st.Notifications)
	}
	if st.Rounds[ops.KindServer] == 0 {
		t.Error("no monitor round: nothing could have completed the operations")
	}
}

// Every event fault: each future still completes with the cloud's true
// outcome (a missing or late event is made up for by reconciliation).
func TestNotificationFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults cloudsim.NotifyFaults
		// polls: the faults make some completions wait for a round.
		polls bool
	}{
		{"none", cloudsim.NotifyFaults{}, false},
		{"drop", cloudsim.NotifyFaults{Drop: 0.5}, true},
		{"drop-all", cloudsim.NotifyFaults{Drop: 1}, true},
		{"duplicate", cloudsim.NotifyFaults{Duplicate: 1}, false},
		{"delay", cloudsim.NotifyFaults{Delay: 0.5, DelayBy: 30 * time.Millisecond}, false},
		{"reorder", cloudsim.NotifyFaults{Reorder: 0.5}, false},
		{"all", cloudsim.NotifyFaults{Drop: 0.2, Duplicate: 0.3, Delay: 0.3, DelayBy: 30 * time.Millisecond, Reorder: 0.3}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			reconcile := time.Hour
			if tc.polls {
				reconcile = 100 * time.Millisecond
			}
			nc := startNotify(t, &cloudsim.FaultPlan{Notify: tc.faults}, ops.NotificationConfig{ReconcileInterval: reconcile}, nil)
			nc.waitConnected(t, ctx)
			n := lifecycle(t, ctx, nc.cloud, nc.sim, "f", 4)
			st := nc.cloud.Stats()
			ns := st.Notifications
			if !tc.polls {
				if r := st.Rounds[ops.KindServer]; r != 0 || ns.Completions != int64(n) {
					t.Errorf("%d rounds, %d of %d completions by events: these faults lose no event", r, ns.Completions, n)
				}
			} else if ns.Missed == 0 {
				t.Errorf("no completion counted missed while events were dropped: %+v", ns)
			}
			if tc.faults.Drop == 1 && (ns.Completions != 0 || ns.Missed == 0) {
				t.Errorf("%d completions by events while every event was dropped", ns.Completions)
			}
		})
	}
}

// A build that fails on the compute host: Nova's error notification
// comes before the server is ERROR, so the monitor polls for the fault,
// and the future fails with the fault the API shows.
func TestNotificationBuildFailure(t *testing.T) {
	ctx := ctxT(t)
	plan := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerCreate, Name: "doomed", Kind: cloudsim.FaultAbort}}}
	nc := startNotify(t, plan, ops.NotificationConfig{ReconcileInterval: time.Hour}, nil)
	nc.waitConnected(t, ctx)
	op, err := nc.cloud.CreateServer(ctx, serverOpts("doomed"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = op.Result(ctx)
	var fe *ops.FaultError
	if !errors.As(err, &fe) || !strings.Contains(fe.Message, "aborted") || fe.Code != 500 {
		t.Fatalf("create: %v, want a FaultError with Nova's abort message and code 500", err)
	}
	if r := nc.cloud.Stats().Rounds[ops.KindServer]; r == 0 {
		t.Error("no round: the fault can only have come from the API")
	}
}

// A cut connection sends the monitor back to polling; the consumer
// reconnects, and operations complete either way.
func TestNotificationsCut(t *testing.T) {
	ctx := ctxT(t)
	nc := startNotify(t, nil, ops.NotificationConfig{ReconcileInterval: time.Hour}, nil)
	nc.waitConnected(t, ctx)
	// Down, and staying down: operations complete by polling.
	nc.sim.CutNotifications(true)
	lifecycle(t, ctx, nc.cloud, nc.sim, "cut", 2)
	st := nc.cloud.Stats()
	if st.Rounds[ops.KindServer] == 0 {
		t.Error("no round while the feed was down")
	}
	var ne *ops.NotificationError
	if st.Notifications.Connected || !errors.As(st.Notifications.Err, &ne) || !errors.Is(ne, ops.ErrNotifications) {
		t.Errorf("stats while down: %+v, want not connected with a *NotificationError", st.Notifications)
	}
	nc.sim.RestoreNotifications()
	nc.waitConnected(t, ctx)
	rounds := nc.cloud.Stats().Rounds[ops.KindServer]
	n := lifecycle(t, ctx, nc.cloud, nc.sim, "back", 2)
	st = nc.cloud.Stats()
	if st.Notifications.Connects < 2 || st.Notifications.Err != nil {
		t.Errorf("stats after reconnecting: %+v", st.Notifications)
	}
	if st.Rounds[ops.KindServer] != rounds {
		t.Errorf("%d rounds after the feed came back with nothing pending, want none (%d completions by events of %d)",
			st.Rounds[ops.KindServer]-rounds, st.Notifications.Completions, n)
	}
}

// A broker that cannot be reached at start: operations complete by
// polling, the error says so without the password, and no log line shows
// the password either.
func TestNotificationsUnreachable(t *testing.T) {
	ctx := ctxT(t)
	const secret = "s3cr3t-pw"
	nc := startNotify(t, nil, ops.NotificationConfig{URL: "amqp://ostask:" + secret + "@127.0.0.1:1/", ReconcileInterval: time.Hour}, nil)
	lifecycle(t, ctx, nc.cloud, nc.sim, "unreach", 2)
	st := nc.cloud.Stats()
	if st.Rounds[ops.KindServer] == 0 {
		t.Error("no round: with the broker unreachable, polling must complete the operations")
	}
	var ne *ops.NotificationError
	if !errors.As(st.Notifications.Err, &ne) || st.Notifications.Connected {
		t.Fatalf("stats %+v, want a *NotificationError", st.Notifications)
	}
	if strings.Contains(ne.Error(), secret) || strings.Contains(ne.URL, secret) || !strings.Contains(ne.URL, "127.0.0.1:1") {
		t.Errorf("error %q (URL %q) shows the password or hides the broker", ne.Error(), ne.URL)
	}
	_ = nc.cloud.Close()
	if logs := nc.logs.String(); strings.Contains(logs, secret) || !strings.Contains(logs, "notifications unavailable") {
		t.Errorf("logs show the password, or say nothing of the broker:\n%s", logs)
	}
}

// Bad notification settings are refused with ErrInvalidOption, and the
// password of a URL does not appear in the error.
func TestNotificationConfigValidate(t *testing.T) {
	var bus nopStream
	for _, tc := range []struct {
		name string
		nc   ops.NotificationConfig
	}{
		{"none", ops.NotificationConfig{}},
		{"both", ops.NotificationConfig{URL: "amqp://h/", Stream: bus}},
		{"scheme", ops.NotificationConfig{URL: "http://u:pw-secret@h/"}},
		{"no-host", ops.NotificationConfig{URL: "amqp://u:pw-secret@/"}},
		{"unparsable", ops.NotificationConfig{URL: "amqp://u:pw-secret@h:port/%zz"}},
		{"negative", ops.NotificationConfig{Stream: bus, ReconcileInterval: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ops.Config{Notifications: &tc.nc}.Validate()
			if !errors.Is(err, ops.ErrInvalidOption) {
				t.Fatalf("Validate: %v, want ErrInvalidOption", err)
			}
			if strings.Contains(err.Error(), "pw-secret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	if err := (ops.Config{Notifications: &ops.NotificationConfig{URL: "amqps://u:p@h:5671/vhost"}}).Validate(); err != nil {
		t.Errorf("a good URL: %v", err)
	}
}

type nopStream struct{}

func (nopStream) Listen(ctx context.Context, up func(), _ func(string, []byte)) error {
	up()
	<-ctx.Done()
	return nil
}

// Every project's notifications are on the bus: a Cloud skips another
// project's undecoded (Foreign), and they complete nothing of its own.
func TestNotificationsOfAnotherProject(t *testing.T) {
	ctx := ctxT(t)
	nc := startNotify(t, nil, ops.NotificationConfig{ReconcileInterval: time.Hour}, nil)
	nc.waitConnected(t, ctx)
	alt := nc.sim.AltCredentials()
	other, err := ops.Dial(ctx, ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: alt.AuthURL, Username: alt.Username,
		Password: alt.Password, DomainName: alt.DomainName, TenantName: alt.ProjectName}},
		ops.Config{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond,
			Notifications: &ops.NotificationConfig{Stream: nc.sim.Notifications(), ReconcileInterval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for deadline := time.Now().Add(10 * time.Second); !other.Stats().Notifications.Connected; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the other project's Cloud never connected")
		}
	}
	n := lifecycle(t, ctx, nc.cloud, nc.sim, "mine", 2)
	mine, theirs := nc.cloud.Stats().Notifications, other.Stats().Notifications
	if mine.Completions != int64(n) || mine.Foreign != 0 {
		t.Errorf("the project's own Cloud: %+v, want %d completions and nothing foreign", mine, n)
	}
	// The bus delivers to both: what the other Cloud received is all
	// foreign, none of it decoded.
	for deadline := time.Now().Add(5 * time.Second); other.Stats().Notifications.Received < mine.Received; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			break
		}
	}
	theirs = other.Stats().Notifications
	if theirs.Received < mine.Received || theirs.Foreign != theirs.Received || theirs.Events != 0 || theirs.Completions != 0 || theirs.Malformed != 0 {
		t.Errorf("another project's Cloud: %+v; want every one of the %d messages foreign", theirs, mine.Received)
	}
}
