package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/service"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/web"
)

// serveFlags are the flags of 'ostask serve'.
type serveFlags struct {
	sim           bool
	simF          simFlags
	listen        string
	cloudsYAML    string
	store         string
	osCloud       string
	projectClouds []string
	authCloud     string
	workers       int
	concurrency   int
	accessLog     bool
	tokenCache    time.Duration
	notifications string
}

func newServeCmd() *cobra.Command {
	sf := &serveFlags{}
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the task service: the REST API, the dashboard and workers",
		Long: `Run ostask's service: tasks as REST resources (POST /v1/tasks, GET /v1/tasks/{id},
its events as Server-Sent Events, per-resource history and faults; /openapi.json
documents it), the dashboard at /, and workers that run the tasks.

  ostask serve --sim

runs everything in one process with nothing installed: the API, one worker, a
SQLite store under the state directory and an embedded cloudsim, whose
clouds.yaml it writes (--clouds-yaml) so that clients get tokens; the dashboard
opens logged in as the demo user.

  ostask serve --store postgres://... --os-cloud X [--project-cloud P=CLOUD]...

serves a real cloud: tasks act with the credentials of clouds.yaml, per project
(--os-cloud X serves X's project; --project-cloud adds more). Callers' Keystone
tokens only say who they are and which project's tasks they see; they are never
stored or used by workers (a task may outlive a token). More workers:
'ostask serve --workers N' here, or more 'ostask serve' processes on the same
PostgreSQL (--workers 0 runs the API alone). --notifications amqp://... (or
each cloud's ostask.notifications in clouds.yaml) completes the workers'
operations from the cloud's notifications, polling only reconciling.`,
		Example: `  ostask serve --sim --timing fast --listen 127.0.0.1:8080 --clouds-yaml /tmp/ostask-serve/clouds.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return sf.run(cmd.Context(), cmd)
		},
	}
	sf.simF.register(c, "realistic", "none")
	c.Flags().BoolVar(&sf.sim, "sim", false, "serve an embedded cloudsim (its projects demo, alt and admin), with one worker and SQLite")
	c.Flags().StringVar(&sf.listen, "listen", defaultListen, "address to serve the API and dashboard on")
	c.Flags().StringVar(&sf.cloudsYAML, "clouds-yaml", "", "with --sim: write the cloud's clouds.yaml here (default: under the state directory; '' with the flag: none)")
	c.Flags().StringVar(&sf.store, "store", "", "the task store: a SQLite file (PATH or sqlite:PATH) or postgres://... (default: serve.db under the state directory; serve-sim.db with --sim)")
	c.Flags().StringVar(&sf.osCloud, "os-cloud", "", "cloud in clouds.yaml whose project the service serves, and whose token validates callers' (default $OS_CLOUD)")
	c.Flags().StringArrayVar(&sf.projectClouds, "project-cloud", nil, projectCloudUsage)
	c.Flags().StringVar(&sf.authCloud, "auth-cloud", "", "cloud whose token validates callers' tokens (it needs Keystone's admin or service role; default: --os-cloud)")
	c.Flags().IntVar(&sf.workers, "workers", 1, "workers in this process (0: the API alone)")
	c.Flags().IntVar(&sf.concurrency, "concurrency", 0, "tasks each worker runs at once (default: jobs.DefaultConcurrency)")
	c.Flags().BoolVar(&sf.accessLog, "access-log", true, "log one line per request (method, path and query, status, duration, bytes, the caller's project) to stderr; never a header, token or body")
	c.Flags().StringVar(&sf.notifications, "notifications", "", notificationsUsage)
	c.Flags().DurationVar(&sf.tokenCache, "token-cache-time", service.DefaultTokenCacheTime, "how long a validated Keystone token is trusted before Keystone is asked again (a revoked token works that long at most; never past its expiry)")
	return c
}

func (sf *serveFlags) run(ctx context.Context, cmd *cobra.Command) error {
	if sf.workers < 0 || sf.concurrency < 0 {
		return usageError("--workers and --concurrency must not be negative")
	}
	if sf.tokenCache <= 0 {
		return usageError("--token-cache-time must be positive")
	}
	out := cmd.OutOrStdout()
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	var (
		projects  []projectAuth
		validator ops.Auth
		autoLogin *service.Login
		cloudCfg  ops.Config
		storeFlag = sf.store
		defaultDB = "serve.db"
		sim       *cloudsim.Sim
	)
	if sf.sim {
		if sf.osCloud != "" || len(sf.projectClouds) > 0 || sf.authCloud != "" {
			return usageError("--sim serves its own cloud: not with --os-cloud, --project-cloud or --auth-cloud")
		}
		scfg, err := sf.simF.config()
		if err != nil {
			return err
		}
		scfg.Logger = log
		var notify *ops.NotificationConfig
		switch n := sf.notifications; n {
		case "", "off":
		case "sim":
		default:
			if err := checkNotifications(n); err != nil {
				return err
			}
			// The embedded cloud publishes where the workers listen.
			pub, err := cloudsim.DialAMQP(n, "")
			if err != nil {
				return err
			}
			defer pub.Close()
			scfg.Publisher = pub
			notify = &ops.NotificationConfig{URL: n}
		}
		if sim, err = cloudsim.Start(ctx, scfg); err != nil {
			return err
		}
		defer sim.Close()
		if sf.notifications == "sim" {
			notify = &ops.NotificationConfig{Stream: sim.Notifications()}
		}
		for _, c := range []cloudsim.Credentials{sim.DemoCredentials(), sim.AltCredentials(), sim.AdminCredentials()} {
			projects = append(projects, projectAuth{want: c.ProjectName, cloud: "sim " + c.Username, auth: credAuth(c), notify: notify})
		}
		validator = credAuth(sim.AdminCredentials())
		d := sim.DemoCredentials()
		autoLogin = &service.Login{Username: d.Username, Password: d.Password, Project: d.ProjectName}
		cloudCfg = simConfig
		defaultDB = "serve-sim.db"
		if err := sf.writeCloudsYAML(cmd, sim); err != nil {
			return err
		}
	} else {
		if cmd.Flags().Changed("clouds-yaml") {
			return usageError("--clouds-yaml is for --sim (a real cloud has its own)")
		}
		name := sf.osCloud
		if name == "" {
			name = os.Getenv("OS_CLOUD")
		}
		if name == "" && len(sf.projectClouds) == 0 {
			return usageError("no cloud to serve: give --sim, or --os-cloud NAME (or OS_CLOUD) and/or --project-cloud PROJECT=CLOUD")
		}
		var err error
		if projects, err = projectAuths(name, sf.projectClouds, sf.notifications); err != nil {
			return err
		}
		if name != "" {
			validator = projects[0].auth
		}
		ac := sf.authCloud
		if ac == "" && name == "" {
			return usageError("--auth-cloud is needed without --os-cloud: whose token validates callers'")
		}
		if ac != "" {
			auth, err := cloudAuth(ac, "")
			if err != nil {
				return err
			}
			validator = auth
		}
	}
	// Every project's credentials log in once now: a wrong one stops
	// the service at start, not a task later.
	cloudCfg.Logger = log
	clouds, err := newProjectClouds(ctx, projects, cloudCfg)
	if err != nil {
		return err
	}
	defer clouds.Close()

	url, err := serveStoreURL(storeFlag, defaultDB)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The credentials tasks act with and the one that validates tokens
	// are scrubbed from whatever the store records (defence in depth:
	// nothing should carry them there).
	vo := validator.Options
	secrets := append([]string{vo.Password, vo.TokenID, vo.ApplicationCredentialSecret, vo.Passcode}, clouds.Secrets()...)
	q, err := jobs.Open(ctx, jobs.Config{URL: url, Logger: log, Registerer: reg, Clouds: clouds.Resolve,
		StoreOptions: []store.Option{store.WithSecrets(secrets...)}})
	if err != nil {
		return fmt.Errorf("task store %s: %w", redactURL(url), err)
	}
	defer q.Close()
	keys, err := service.NewKeystone(ctx, service.KeystoneConfig{Auth: validator, Registerer: reg, CacheFor: sf.tokenCache})
	if err != nil {
		return fmt.Errorf("keystone: %s", describe(err))
	}
	srv, err := service.New(service.Config{Backend: q, Auth: keys, Logger: log, Registerer: reg, UI: web.Handler(), AutoLogin: autoLogin,
		AccessLog: sf.accessLog})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", sf.listen)
	if err != nil {
		return usageError("--listen %s: %v", sf.listen, err)
	}
	var workers []*jobs.Worker
	for range sf.workers {
		w, err := jobs.NewWorker(q, jobs.WorkerConfig{Concurrency: sf.concurrency})
		if err != nil {
			ln.Close()
			return err
		}
		workers = append(workers, w)
	}

	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "ostask serve listening on %s\n", base)
	fmt.Fprintf(out, "  dashboard:   %s/\n", base)
	fmt.Fprintf(out, "  api:         %s/v1/tasks (documented at %s/openapi.json)\n", base, base)
	fmt.Fprintf(out, "  store:       %s\n", redactURL(url))
	fmt.Fprintf(out, "  workers:     %d\n", len(workers))
	fmt.Fprintf(out, "  projects:    %s\n", strings.Join(clouds.Projects(), ", "))
	if sim != nil && sf.cloudsYAML != "" {
		abs, _ := filepath.Abs(sf.cloudsYAML)
		fmt.Fprintf(out, "  clouds.yaml: %s (clouds %s, %s-alt and %s-admin)\n", abs, cloudsim.DefaultCloudName, cloudsim.DefaultCloudName, cloudsim.DefaultCloudName)
		fmt.Fprintf(out, "  use it:      export OS_CLIENT_CONFIG_FILE=%s OS_CLOUD=%s %s=%s\n", shellQuote(abs), cloudsim.DefaultCloudName, urlEnv, base)
	}

	// Everything runs until ctx ends or one part fails; then all stop:
	// the API first (streams end, requests drain), then the workers hand
	// their tasks back.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	errs := make(chan error, len(workers)+1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := service.Serve(ctx, ln, srv); err != nil {
			errs <- err
			cancel(err)
		}
	}()
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
				cancel(err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	fmt.Fprintln(out, "ostask serve: stopped")
	if err := <-errs; err != nil {
		return err
	}
	return nil
}

func (sf *serveFlags) writeCloudsYAML(cmd *cobra.Command, sim *cloudsim.Sim) error {
	if !cmd.Flags().Changed("clouds-yaml") {
		dir, err := stateDir()
		if err != nil {
			return usageError("no state directory to write clouds.yaml in (%v); give --clouds-yaml PATH, or --clouds-yaml '' to write none", err)
		}
		sf.cloudsYAML = filepath.Join(dir, "sim", "clouds.yaml")
	}
	if sf.cloudsYAML == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(sf.cloudsYAML), 0o700); err != nil {
		return err
	}
	return sim.WriteCloudsYAML(sf.cloudsYAML, cloudsim.DefaultCloudName)
}

// serveStoreURL is --store, or name under the state directory.
func serveStoreURL(flag, name string) (string, error) {
	if flag == "none" {
		return "", usageError("--store none: the service needs a store (a SQLite file or postgres://...)")
	}
	if flag != "" {
		return flag, nil
	}
	dir, err := stateDir()
	if err != nil {
		return "", usageError("no state directory for the default store (%v); give --store PATH or --store postgres://...", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

func credAuth(c cloudsim.Credentials) ops.Auth {
	return ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: c.AuthURL, Username: c.Username,
		Password: c.Password, DomainName: c.DomainName, TenantName: c.ProjectName, AllowReauth: true},
		Endpoint: gophercloud.EndpointOpts{Region: c.Region}}
}
