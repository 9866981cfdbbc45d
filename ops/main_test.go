package ops_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"go.uber.org/goleak"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/retry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// net/http keeps idle connections' goroutines until they time out.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// testCloud starts a cloudsim with plan (nil: no faults) and dials it as
// user (demo or admin) with a fast monitor.
type testCloud struct {
	sim   *cloudsim.Sim
	cloud *ops.Cloud
	clock *instantClock
}

func start(t *testing.T, plan *cloudsim.FaultPlan, admin bool) *testCloud {
	t.Helper()
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{Faults: plan})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	auth := authFor(sim, admin)
	clock := newInstantClock()
	cloud, err := ops.Dial(ctx, auth, ops.Config{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond,
		RateLimit: 1000, Burst: 100, DefaultTimeout: 20 * time.Second, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cloud.Close() })
	return &testCloud{sim: sim, cloud: cloud, clock: clock}
}

// instantClock is an ops.Clock whose waits end at once: its time moves by
// each wait, and it records them. Retries under it never sleep.
type instantClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newInstantClock() *instantClock { return &instantClock{now: time.Now()} }

func (c *instantClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *instantClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// Waits returns the waits so far.
func (c *instantClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// authFor is the login of cloudsim's demo (or admin) user.
func authFor(sim *cloudsim.Sim, admin bool) ops.Auth {
	cred := sim.DemoCredentials()
	if admin {
		cred = sim.AdminCredentials()
	}
	return ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: cred.AuthURL, Username: cred.Username,
		Password: cred.Password, DomainName: cred.DomainName, TenantName: cred.ProjectName}}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func serverOpts(name string) ops.ServerCreateOpts {
	return ops.ServerCreateOpts{Name: name, FlavorRef: "1", ImageRef: cloudsim.CirrosImageID, Networks: "none"}
}

type retryPolicy = retry.Policy
