package ops_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

// A list form the cloud refuses is given up after FormSwitchAfter rounds,
// and those rounds still complete their operations through the next form:
// a form the cloud cannot serve costs one request per round, never a
// failed round.
func TestServerListFormSwitch(t *testing.T) {
	tc := start(t, nil, false)
	ctx := ctxT(t)
	// cloudsim, like Nova, answers 400 to a sort key it does not know.
	tc.cloud.SetServerListForms(ops.ListForm{Name: "bogus", SortKey: "no_such_key", SortDir: "asc"},
		ops.ListForm{Name: "created_at-asc", SortKey: "created_at", SortDir: "asc"})
	for i := range 4 {
		op, err := tc.cloud.CreateServer(ctx, serverOpts(fmt.Sprintf("form-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := op.Result(ctx); err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
	}
	st := tc.cloud.Stats()
	ms := st.Monitors[ops.KindServer]
	if ms.ListForm != "created_at-asc" || ms.FormSwitches != 1 {
		t.Errorf("list form %q after %d switches, want created_at-asc after 1", ms.ListForm, ms.FormSwitches)
	}
	if got := st.ByStatus[http.StatusBadRequest]; got != ops.FormSwitchAfter {
		t.Errorf("%d answers 400, want %d: the refused form must be asked once per round until given up, then never",
			got, ops.FormSwitchAfter)
	}
	if ms.FailedRounds != 0 || ms.Err != nil {
		t.Errorf("%d failed rounds (err %v): a refused form's round must be made again with the next form", ms.FailedRounds, ms.Err)
	}
}

// signalHandler is a slog handler that reports records whose message
// contains match on a channel (non-blocking, buffered).
type signalHandler struct {
	match string
	ch    chan slog.Record
}

func (h *signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.match) {
		select {
		case h.ch <- r:
		default:
		}
	}
	return nil
}
func (h *signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *signalHandler) WithGroup(string) slog.Handler      { return h }

// Rounds that keep failing never fail the operations, but they reach the
// user: Stats carries a *MonitorError with the cloud's answer.
func TestMonitorFailuresReachStats(t *testing.T) {
	ctx := ctxT(t)
	plan := &cloudsim.FaultPlan{API: cloudsim.APIFaults{Match: "GET /compute/v2.1/servers/detail", Error503: 1, RetryAfter: 10 * time.Millisecond}}
	sim, err := cloudsim.Start(ctx, cloudsim.Config{Faults: plan})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	h := &signalHandler{match: "monitor round failed", ch: make(chan slog.Record, 16)}
	cred := sim.DemoCredentials()
	cloud, err := ops.Dial(ctx, ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: cred.AuthURL, Username: cred.Username,
		Password: cred.Password, DomainName: cred.DomainName, TenantName: cred.ProjectName}},
		ops.Config{MinInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond, RateLimit: 1000, Burst: 100, Logger: slog.New(h),
			Clock: newInstantClock()})
	if err != nil {
		t.Fatal(err)
	}
	if ms := cloud.Stats().Monitors[ops.KindServer]; ms.Err != nil || ms.FailingRounds != 0 {
		t.Fatalf("a fresh cloud reports monitor trouble: %+v", ms)
	}
	op, err := cloud.CreateServer(ctx, serverOpts("in-the-dark"))
	if err != nil {
		t.Fatal(err)
	}
	for range ops.MonitorFailingAfter {
		select {
		case <-h.ch:
		case <-ctx.Done():
			t.Fatal("the monitor never logged a failed round")
		}
	}
	ms := cloud.Stats().Monitors[ops.KindServer]
	if ms.FailingRounds < ops.MonitorFailingAfter || ms.FailedRounds < int64(ops.MonitorFailingAfter) {
		t.Errorf("stats say %d failing / %d failed rounds after %d logged failures", ms.FailingRounds, ms.FailedRounds, ops.MonitorFailingAfter)
	}
	var me *ops.MonitorError
	if !errors.As(ms.Err, &me) || me.Kind != ops.KindServer || me.Rounds != ms.FailingRounds {
		t.Fatalf("stats error %v, want a *MonitorError for servers with %d rounds", ms.Err, ms.FailingRounds)
	}
	var ue gophercloud.ErrUnexpectedResponseCode
	if !errors.As(ms.Err, &ue) || ue.Actual != http.StatusServiceUnavailable {
		t.Errorf("the monitor error does not carry the cloud's 503: %v", ms.Err)
	}
	if _, err, done := op.Peek(); done {
		t.Errorf("failing rounds completed the operation: %v", err)
	}
	_ = cloud.Close()
	if _, err := op.Result(ctx); !errors.Is(err, ops.ErrMonitorClosed) {
		t.Errorf("after Close: %v, want ErrMonitorClosed", err)
	}
}
