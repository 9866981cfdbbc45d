package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
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
PostgreSQL (--workers 0 runs the API alone).`,
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
	c.Flags().StringArrayVar(&sf.projectClouds, "project-cloud", nil, "PROJECT=CLOUD: run PROJECT's tasks (a name or id) with CLOUD's credentials of clouds.yaml; repeatable")
	c.Flags().StringVar(&sf.authCloud, "auth-cloud", "", "cloud whose token validates callers' tokens (it needs Keystone's admin or service role; default: --os-cloud)")
	c.Flags().IntVar(&sf.workers, "workers", 1, "workers in this process (0: the API alone)")
	c.Flags().IntVar(&sf.concurrency, "concurrency", 0, "tasks each worker runs at once (default: jobs.DefaultConcurrency)")
	return c
}

// projectAuth is the credentials a project's tasks run with.
type projectAuth struct {
	id, name, cloud string
	auth            ops.Auth
}

func authsOf(ps []projectAuth) []ops.Auth {
	out := make([]ops.Auth, len(ps))
	for i, p := range ps {
		out[i] = p.auth
	}
	return out
}

func (sf *serveFlags) run(ctx context.Context, cmd *cobra.Command) error {
	if sf.workers < 0 || sf.concurrency < 0 {
		return usageError("--workers and --concurrency must not be negative")
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
		if sim, err = cloudsim.Start(ctx, scfg); err != nil {
			return err
		}
		defer sim.Close()
		for _, c := range []cloudsim.Credentials{sim.DemoCredentials(), sim.AltCredentials(), sim.AdminCredentials()} {
			projects = append(projects, projectAuth{name: c.ProjectName, cloud: "sim " + c.Username, auth: credAuth(c)})
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
		if name != "" {
			auth, err := cloudAuth(name, "")
			if err != nil {
				return err
			}
			projects = append(projects, projectAuth{cloud: name, auth: auth})
			validator = auth
		}
		for _, pc := range sf.projectClouds {
			p, cloud, ok := strings.Cut(pc, "=")
			if !ok || p == "" || cloud == "" {
				return usageError("--project-cloud %q is not PROJECT=CLOUD", pc)
			}
			auth, err := cloudAuth(cloud, "")
			if err != nil {
				return err
			}
			projects = append(projects, projectAuth{name: p, cloud: cloud, auth: auth})
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
	for i := range projects {
		id, name, err := projectOf(ctx, projects[i].auth)
		if err != nil {
			return fmt.Errorf("cloud %s: %s", projects[i].cloud, describe(err))
		}
		if want := projects[i].name; want != "" && want != name && want != id {
			return usageError("--project-cloud %s=%s: that cloud's project is %s (%s)", want, projects[i].cloud, name, id)
		}
		projects[i].id, projects[i].name = id, name
	}
	clouds := &projectClouds{auths: map[string]projectAuth{}, cfg: cloudCfg, log: log, open: map[string]*ops.Cloud{}}
	for _, p := range projects {
		clouds.auths[p.id] = p
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
	var secrets []string
	for _, a := range append([]ops.Auth{validator}, authsOf(projects)...) {
		o := a.Options
		secrets = append(secrets, o.Password, o.TokenID, o.ApplicationCredentialSecret, o.Passcode)
	}
	q, err := jobs.Open(ctx, jobs.Config{URL: url, Logger: log, Registerer: reg, Clouds: clouds.resolve,
		StoreOptions: []store.Option{store.WithSecrets(secrets...)}})
	if err != nil {
		return fmt.Errorf("task store %s: %w", redactURL(url), err)
	}
	defer q.Close()
	keys, err := service.NewKeystone(ctx, service.KeystoneConfig{Auth: validator, Registerer: reg})
	if err != nil {
		return fmt.Errorf("keystone: %s", describe(err))
	}
	srv, err := service.New(service.Config{Backend: q, Auth: keys, Logger: log, Registerer: reg, UI: web.Handler(), AutoLogin: autoLogin})
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
	names := make([]string, 0, len(projects))
	for _, p := range projects {
		names = append(names, fmt.Sprintf("%s (%s)", p.name, p.cloud))
	}
	sort.Strings(names)
	fmt.Fprintf(out, "  projects:    %s\n", strings.Join(names, ", "))
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

// projectOf logs in with auth and returns its token's project.
func projectOf(ctx context.Context, auth ops.Auth) (id, name string, err error) {
	pc, err := openstack.NewClient(auth.Options.IdentityEndpoint)
	if err != nil {
		return "", "", err
	}
	if auth.TLS != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = auth.TLS
		pc.HTTPClient = http.Client{Transport: tr}
	}
	if err := openstack.Authenticate(ctx, pc, auth.Options); err != nil {
		return "", "", err
	}
	res, ok := pc.GetAuthResult().(tokens.CreateResult)
	if !ok {
		return "", "", errors.New("not a Keystone v3 login")
	}
	p, err := res.ExtractProject()
	if err != nil || p == nil || p.ID == "" {
		return "", "", errors.New("the credentials are not scoped to a project (set project_name or project_id)")
	}
	return p.ID, p.Name, nil
}

// projectClouds dials each project's cloud on first use and keeps it.
type projectClouds struct {
	auths map[string]projectAuth // by project id
	cfg   ops.Config
	log   *slog.Logger

	mu   sync.Mutex
	open map[string]*ops.Cloud
}

func (p *projectClouds) resolve(ctx context.Context, project string) (*ops.Cloud, error) {
	a, ok := p.auths[project]
	if !ok {
		return nil, fmt.Errorf("%w: project %s", jobs.ErrNoCredentials, project)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.open[project]; c != nil {
		return c, nil
	}
	cfg := p.cfg
	cfg.Logger = p.log
	c, err := ops.Dial(ctx, a.auth, cfg)
	if err != nil {
		return nil, fmt.Errorf("cloud %s for project %s: %s", a.cloud, a.name, describe(err))
	}
	p.open[project] = c
	return c, nil
}

func (p *projectClouds) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.open {
		_ = c.Close()
	}
}
