package ops_test

import (
	"context"
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
}

func start(t *testing.T, plan *cloudsim.FaultPlan, admin bool) *testCloud {
	t.Helper()
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{Faults: plan})
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
		RateLimit: 1000, Burst: 100, DefaultTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cloud.Close() })
	return &testCloud{sim: sim, cloud: cloud}
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
