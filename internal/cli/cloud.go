package cli

import (
	"context"
	"errors"
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
	// interval is the monitor's shortest interval (0: ops's default, or
	// simConfig's with --sim).
	interval time.Duration
	// notifications: an AMQP URL, or "sim" for --sim's own bus.
	notifications string
}

// monitorIntervalEnv gives --monitor-interval a default, as OS_CLOUD
// gives --os-cloud one.
const monitorIntervalEnv = "OSTASK_MONITOR_INTERVAL"

func (f *cloudFlags) register(c *cobra.Command) {
	c.PersistentFlags().StringVar(&f.osCloud, "os-cloud", "", "cloud name in clouds.yaml (default $OS_CLOUD; else the OS_* variables of an openrc)")
	c.PersistentFlags().BoolVar(&f.sim, "sim", false, "run against an embedded cloudsim instead of a real cloud (not with --os-cloud or OS_CLOUD)")
	c.PersistentFlags().StringVar(&f.simF.timing, "sim-timing", "fast", "with --sim: timing model, fast or realistic")
	c.PersistentFlags().StringVar(&f.simF.faultPlan, "sim-fault-plan", "none", "with --sim: fault plan (see 'ostask sim --help')")
	c.PersistentFlags().Int64Var(&f.simF.seed, "sim-seed", 1, "with --sim: random seed")
	c.PersistentFlags().DurationVar(&f.interval, "monitor-interval", 0,
		"shortest wait between the monitor's list rounds, which grows to 10s while operations age (default $"+monitorIntervalEnv+", else 1s; 100ms with --sim)")
	c.PersistentFlags().StringVar(&f.notifications, "notifications", "",
		"complete operations from the cloud's notifications: amqp://user:password@host:5672/ (default: clouds.yaml's ostask.notifications), or \"sim\" with --sim; polling then only reconciles")
}

// monitorInterval is --monitor-interval, or its environment default.
func (f *cloudFlags) monitorInterval() (time.Duration, error) {
	if f.interval != 0 {
		if f.interval < 0 {
			return 0, usageError("--monitor-interval must be positive, got %s", f.interval)
		}
		return f.interval, nil
	}
	v := os.Getenv(monitorIntervalEnv)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, usageError("%s=%q is not a positive duration", monitorIntervalEnv, v)
	}
	return d, nil
}

// session is a connected cloud and, with --sim, the simulator behind it.
type session struct {
	cloud *ops.Cloud
	sim   *cloudsim.Sim
	pub   *cloudsim.AMQPPublisher // --sim --notifications amqp://…
	// secrets are the credentials the cloud was dialled with: a durable
	// store scrubs them from everything it writes.
	secrets []string
}

func (s *session) Close() {
	if s.cloud != nil {
		_ = s.cloud.Close()
	}
	if s.sim != nil {
		_ = s.sim.Close()
	}
	if s.pub != nil {
		_ = s.pub.Close()
	}
}

// simConfig is the monitor of a Cloud on an embedded cloudsim: the cloud
// is on loopback and fast, so it is watched closely.
var simConfig = ops.Config{MinInterval: 100 * time.Millisecond, MaxInterval: time.Second}

// connect starts cloudsim (with --sim) or reads clouds.yaml / OS_* and
// dials the cloud. Bad or missing settings are usage errors (exit 2).
func (f *cloudFlags) connect(ctx context.Context, cfg ops.Config) (*session, error) {
	s := &session{}
	var auth ops.Auth
	name := f.osCloud
	if name == "" {
		name = os.Getenv("OS_CLOUD")
	}
	if err := checkNotifications(f.notifications); err != nil {
		return nil, err
	}
	switch {
	case f.notifications == "sim" && !f.sim:
		return nil, usageError("--notifications sim needs --sim")
	case f.sim && name != "":
		via := "--os-cloud " + f.osCloud
		if f.osCloud == "" {
			via = "OS_CLOUD=" + name
		}
		return nil, usageError("--sim and %s select two clouds; use one (unset OS_CLOUD to use --sim)", via)
	case f.sim:
		scfg, err := f.simF.config()
		if err != nil {
			return nil, err
		}
		if f.notifications != "" && f.notifications != "sim" {
			// The embedded cloud publishes where the Cloud listens.
			if s.pub, err = cloudsim.DialAMQP(f.notifications, ""); err != nil {
				return nil, err
			}
			scfg.Publisher = s.pub
		}
		sim, err := cloudsim.Start(ctx, scfg)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.sim = sim
		auth = simAuth(sim, false)
		if f.notifications == "sim" {
			cfg.Notifications = &ops.NotificationConfig{Stream: sim.Notifications()}
		}
		if cfg.MinInterval == 0 && cfg.MaxInterval == 0 {
			cfg.MinInterval, cfg.MaxInterval = simConfig.MinInterval, simConfig.MaxInterval
		}
	default:
		var err error
		if auth, err = cloudAuth(name, "--sim"); err != nil {
			return nil, err
		}
		if f.notifications == "" && name != "" {
			if f.notifications, err = ops.NotificationsFromClouds(name); err != nil {
				return nil, &ExitError{Code: 2, Err: err}
			}
			if err := checkNotifications(f.notifications); err != nil { // clouds.yaml's
				return nil, err
			}
		}
	}
	if f.notifications != "" && f.notifications != "sim" {
		cfg.Notifications = &ops.NotificationConfig{URL: f.notifications}
	}
	iv, err := f.monitorInterval()
	if err != nil {
		s.Close()
		return nil, err
	}
	if iv > 0 {
		cfg.MinInterval, cfg.MaxInterval = iv, max(iv, ops.DefaultMaxInterval)
	}
	cloud, err := ops.Dial(ctx, auth, cfg)
	if err != nil {
		s.Close()
		if errors.Is(err, ops.ErrConfig) || errors.Is(err, ops.ErrInvalidOption) {
			return nil, &ExitError{Code: 2, Err: err}
		}
		return nil, fmt.Errorf("connect: %s", describe(err))
	}
	s.cloud = cloud
	o := auth.Options
	s.secrets = []string{o.Password, o.TokenID, o.ApplicationCredentialSecret, o.Passcode}
	return s, nil
}

// cloudAuth reads the login of cloud name from clouds.yaml, or without a
// name from the OS_* variables; alt names the other choice a command
// offers (--sim), for the message when neither is set. Bad or missing
// settings are usage errors (exit 2).
func cloudAuth(name, alt string) (ops.Auth, error) {
	var auth ops.Auth
	var err error
	switch {
	case name != "":
		auth, err = ops.AuthFromClouds(name)
	case os.Getenv("OS_AUTH_URL") != "":
		auth, err = ops.AuthFromEnv()
	default:
		or := ""
		if alt != "" {
			or = ", or " + alt
		}
		return ops.Auth{}, usageError("no cloud selected: use --os-cloud NAME (or OS_CLOUD) with a clouds.yaml, the OS_* variables of an openrc%s", or)
	}
	if err != nil {
		return ops.Auth{}, &ExitError{Code: 2, Err: err}
	}
	return auth, nil
}

// checkNotifications refuses a --notifications value (or clouds.yaml's)
// that is not an AMQP URL, before anything connects.
func checkNotifications(v string) error {
	if v == "" || v == "sim" {
		return nil
	}
	if err := (ops.Config{Notifications: &ops.NotificationConfig{URL: v}}).Validate(); err != nil {
		return &ExitError{Code: 2, Err: err}
	}
	return nil
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

// retriesUsage is the one meaning of --retries, everywhere.
const retriesUsage = "attempts in all (1 = no retry)"

// checkRetries rejects what is not a number of attempts.
func checkRetries(n int) error {
	if n < 1 {
		return usageError("--retries must be >= 1 (attempts in all; 1 = no retry), got %d", n)
	}
	return nil
}

// waitFlags are the flags of every command that waits on operations.
type waitFlags struct {
	timeout time.Duration
	retries int
	noWait  bool
	json    bool
	// creates only
	keepFailed         bool
	cleanupOnInterrupt bool
	key                string
}

// flagSet says which optional flags a command takes.
type flagSet int

const (
	withRetries flagSet = 1 << iota
	withKeep            // --keep-failed
	withKey             // --idempotency-key, --cleanup-on-interrupt: creates
)

func (w *waitFlags) register(c *cobra.Command, set flagSet, what string) {
	c.Flags().DurationVar(&w.timeout, "timeout", 30*time.Minute, "give up waiting on each operation after this long")
	if set&withRetries != 0 {
		usage := retriesUsage
		if set&withKeep != 0 {
			usage += "; a failed attempt's " + what + " is deleted before the next"
		}
		c.Flags().IntVar(&w.retries, "retries", 3, usage)
	} else {
		w.retries = 1
	}
	c.Flags().BoolVar(&w.noWait, "no-wait", false, "return once the cloud accepted the request")
	c.Flags().BoolVar(&w.json, "json", false, "print results as JSON on stdout (progress goes to stderr)")
	if set&withKeep != 0 {
		c.Flags().BoolVar(&w.keepFailed, "keep-failed", false, "keep the "+what+"s of failed attempts for inspection (default: delete them, the last attempt's too)")
	}
	if set&withKey != 0 {
		c.Flags().BoolVar(&w.cleanupOnInterrupt, "cleanup-on-interrupt", false,
			"on SIGINT/SIGTERM, delete the "+what+"s still being made (default: leave them running and list them)")
		c.Flags().StringVar(&w.key, "idempotency-key", "",
			"key recorded on each "+what+" (default: a new one, printed at the start); re-running with the same key adopts what an earlier run made")
	}
}

// options checks the flags and returns the per-call options. Creates
// pass the per-resource idempotency key themselves.
func (w *waitFlags) options(create bool) ([]ops.Option, error) {
	if w.timeout <= 0 {
		return nil, usageError("--timeout must be positive, got %s", w.timeout)
	}
	if err := checkRetries(w.retries); err != nil {
		return nil, err
	}
	o := []ops.Option{ops.WithTimeout(w.timeout)}
	if w.retries > 0 {
		// Creates and deletes are retried in ops (a delete that fails
		// into ERROR is sent again); other actions ignore it.
		o = append(o, ops.WithRetries(w.retries))
	}
	if create {
		if w.keepFailed {
			o = append(o, ops.WithCleanup(ops.CleanupKeep))
		}
	}
	return o, nil
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
