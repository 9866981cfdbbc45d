package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/spf13/cobra"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

// cloudFlags select the cloud, like the openstack CLI does.
type cloudFlags struct {
	osCloud string
	sim     bool
	simF    simFlags
}

func (f *cloudFlags) register(c *cobra.Command) {
	c.PersistentFlags().StringVar(&f.osCloud, "os-cloud", "", "cloud name in clouds.yaml (default $OS_CLOUD; else OS_* variables)")
	c.PersistentFlags().BoolVar(&f.sim, "sim", false, "run against an embedded cloudsim instead of a real cloud")
	c.PersistentFlags().StringVar(&f.simF.timing, "sim-timing", "fast", "with --sim: timing model, fast or realistic")
	c.PersistentFlags().StringVar(&f.simF.faultPlan, "sim-fault-plan", "none", "with --sim: fault plan (see 'ostask sim --help')")
	c.PersistentFlags().Int64Var(&f.simF.seed, "sim-seed", 1, "with --sim: random seed")
}

// session is a connected cloud and, with --sim, the simulator behind it.
type session struct {
	cloud *ops.Cloud
	sim   *cloudsim.Sim
}

func (s *session) Close() {
	if s.cloud != nil {
		_ = s.cloud.Close()
	}
	if s.sim != nil {
		_ = s.sim.Close()
	}
}

// connect starts cloudsim (with --sim) or reads clouds.yaml / OS_* and
// dials the cloud.
func (f *cloudFlags) connect(ctx context.Context, cfg ops.Config) (*session, error) {
	s := &session{}
	var auth ops.Auth
	switch {
	case f.sim:
		scfg, err := f.simF.config()
		if err != nil {
			return nil, err
		}
		sim, err := cloudsim.Start(ctx, scfg)
		if err != nil {
			return nil, err
		}
		s.sim = sim
		auth = simAuth(sim, false)
	default:
		name := f.osCloud
		if name == "" {
			name = os.Getenv("OS_CLOUD")
		}
		var err error
		switch {
		case name != "":
			auth, err = ops.AuthFromClouds(name)
		case os.Getenv("OS_AUTH_URL") != "":
			auth, err = ops.AuthFromEnv()
		default:
			return nil, usageError("no cloud selected: use --os-cloud NAME (or OS_CLOUD) with a clouds.yaml, OS_* variables, or --sim")
		}
		if err != nil {
			return nil, &ExitError{Code: 2, Err: err}
		}
	}
	cloud, err := ops.Dial(ctx, auth, cfg)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.cloud = cloud
	return s, nil
}

func simAuth(sim *cloudsim.Sim, admin bool) ops.Auth {
	c := sim.DemoCredentials()
	if admin {
		c = sim.AdminCredentials()
	}
	return ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: c.AuthURL, Username: c.Username,
		Password: c.Password, DomainName: c.DomainName, TenantName: c.ProjectName, AllowReauth: true},
		Endpoint: gophercloud.EndpointOpts{Region: c.Region}}
}

// waitFlags are the flags of every command that waits on operations.
type waitFlags struct {
	timeout time.Duration
	retries int
	noWait  bool
	json    bool
}

func (w *waitFlags) register(c *cobra.Command, retries bool) {
	c.Flags().DurationVar(&w.timeout, "timeout", 30*time.Minute, "give up waiting on each operation after this long")
	if retries {
		c.Flags().IntVar(&w.retries, "retries", 3, "attempts per resource (1 = no retry); failed resources are cleaned up in between")
	}
	c.Flags().BoolVar(&w.noWait, "no-wait", false, "return once the cloud accepted the request")
	c.Flags().BoolVar(&w.json, "json", false, "print results as JSON")
}

func (w *waitFlags) options() ([]ops.Option, error) {
	if w.timeout <= 0 {
		return nil, usageError("--timeout must be positive, got %s", w.timeout)
	}
	o := []ops.Option{ops.WithTimeout(w.timeout)}
	if w.retries != 0 {
		if w.retries < 1 {
			return nil, usageError("--retries must be >= 1 (the number of attempts), got %d", w.retries)
		}
		o = append(o, ops.WithRetries(w.retries))
	}
	return o, nil
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
