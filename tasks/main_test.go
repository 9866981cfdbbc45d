package tasks_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"go.uber.org/goleak"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/tasks"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// net/http keeps idle connections' goroutines until they time out.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// env is a cloudsim and a fast Cloud dialled to it, with what existed
// before the test (the seeded images) to tell leaks from the baseline.
type env struct {
	sim        *cloudsim.Sim
	cloud      *ops.Cloud
	baseImages []string
}

func start(t *testing.T, plan *cloudsim.FaultPlan, admin bool) *env {
	t.Helper()
	return startConfig(t, cloudsim.Config{Faults: plan}, admin)
}

func startConfig(t *testing.T, cfg cloudsim.Config, admin bool) *env {
	t.Helper()
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	cred := sim.DemoCredentials()
	if admin {
		cred = sim.AdminCredentials()
	}
	auth := ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: cred.AuthURL, Username: cred.Username,
		Password: cred.Password, DomainName: cred.DomainName, TenantName: cred.ProjectName}}
	cloud, err := ops.Dial(ctx, auth, ops.Config{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond,
		RateLimit: 1000, Burst: 100, DefaultTimeout: 20 * time.Second, Clock: instantClock{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cloud.Close() })
	e := &env{sim: sim, cloud: cloud}
	for _, im := range sim.Images() {
		e.baseImages = append(e.baseImages, im.ID)
	}
	return e
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// leaks lists what exists in the cloud besides the baseline and keep.
func (e *env) leaks(keep ...string) []string {
	var out []string
	for _, s := range e.sim.Servers(false) {
		if !slices.Contains(keep, s.ID) {
			out = append(out, "server "+s.Name+" "+s.ID+" "+s.Status)
		}
	}
	for _, v := range e.sim.Volumes() {
		if !slices.Contains(keep, v.ID) {
			out = append(out, "volume "+v.Name+" "+v.ID+" "+v.Status)
		}
	}
	for _, im := range e.sim.Images() {
		if !slices.Contains(e.baseImages, im.ID) && !slices.Contains(keep, im.ID) {
			out = append(out, "image "+im.Name+" "+im.ID+" "+im.Status)
		}
	}
	return out
}

// runDef runs the ready-made flow name with values (flow_run_id added
// when missing) and returns the engine and Run's error.
func (e *env) runDef(t *testing.T, name string, values map[string]any, opts ...tasks.Option) (*engine.Engine, error) {
	t.Helper()
	d, ok := tasks.Lookup(name)
	if !ok {
		t.Fatalf("no flow %q", name)
	}
	if _, ok := values[tasks.RunID]; !ok {
		values[tasks.RunID] = t.Name()
	}
	f, store, err := d.Prepare(e.cloud, values, opts...)
	if err != nil {
		t.Fatal(err)
	}
	en, err := engine.New(f, engine.Parallel(0), engine.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	return en, en.Run(ctxT(t))
}

// bootServer makes a server outside any flow (the one a flow changes).
func (e *env) bootServer(t *testing.T, name string) string {
	t.Helper()
	op, err := e.cloud.CreateServer(ctxT(t), ops.ServerCreateOpts{Name: name, FlavorRef: "1", ImageRef: cloudsim.CirrosImageID, Networks: "none"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := op.Result(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

// wantReverted checks that err is the flow REVERTED cleanly because of
// atom's failure, matching is.
func wantReverted(t *testing.T, err error, atom string, is ...error) {
	t.Helper()
	var fe *engine.FlowError
	if !errors.As(err, &fe) {
		t.Fatalf("want a *engine.FlowError, got %v", err)
	}
	if fe.State != flow.StateReverted || len(fe.RevertFailures) > 0 {
		t.Fatalf("flow %s, revert failures %v: %v", fe.State, fe.RevertFailures, err)
	}
	if len(fe.Failures) == 0 || fe.Failures[0].Atom != atom {
		t.Fatalf("want the first failure from %q: %v", atom, err)
	}
	for _, target := range is {
		if errors.Is(err, target) {
			return
		}
	}
	if len(is) > 0 {
		t.Fatalf("error %v matches none of %v", err, is)
	}
}

// instantClock is an ops.Clock whose waits end at once, so that retries
// between attempts do not sleep.
type instantClock struct{}

func (instantClock) Now() time.Time { return time.Now() }

func (instantClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- time.Now()
	return ch
}
