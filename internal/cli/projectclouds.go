package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/ops"
)

// projectCloudUsage is the one meaning of --project-cloud.
const projectCloudUsage = "PROJECT=CLOUD: tasks of PROJECT (its id or name) act with clouds.yaml's CLOUD's credentials, which must be scoped to PROJECT (repeatable)"

// projectAuth is the credentials a project's tasks act with.
type projectAuth struct {
	// want is the project asked for (--project-cloud's PROJECT, an id or
	// a name); "" takes the credentials' own.
	want string
	// cloud names the credentials in messages: clouds.yaml's cloud, or
	// "sim demo".
	cloud string
	auth  ops.Auth
	// notify, if set, completes the project's operations from the
	// cloud's notifications.
	notify *ops.NotificationConfig
}

// notificationsUsage is the one meaning of serve's and worker's
// --notifications.
const notificationsUsage = `complete operations from the cloud's notifications: amqp://user:password@host:5672/ for every project's cloud (default: each cloud's ostask.notifications in clouds.yaml; "off": none); with serve --sim, "sim" for the embedded cloud's own bus`

// projectAuths reads the credentials of --os-cloud (serving its own
// project, when not empty) and of each PROJECT=CLOUD of --project-cloud
// from clouds.yaml, with the notification source of each: notify (an
// AMQP URL), else the cloud's ostask.notifications in clouds.yaml; notify
// "off" turns them off.
func projectAuths(osCloud string, pairs []string, notify string) ([]projectAuth, error) {
	if notify == "sim" {
		return nil, usageError("--notifications sim needs --sim")
	}
	if notify != "off" {
		if err := checkNotifications(notify); err != nil {
			return nil, err
		}
	}
	one := func(want, cloud string) (projectAuth, error) {
		auth, err := cloudAuth(cloud, "")
		if err != nil {
			return projectAuth{}, err
		}
		pa := projectAuth{want: want, cloud: cloud, auth: auth}
		url := notify
		if url == "" {
			if url, err = ops.NotificationsFromClouds(cloud); err != nil {
				return projectAuth{}, &ExitError{Code: 2, Err: err}
			}
			if err := checkNotifications(url); err != nil { // clouds.yaml's
				return projectAuth{}, fmt.Errorf("cloud %s: %w", cloud, err)
			}
		}
		if url != "" && url != "off" {
			pa.notify = &ops.NotificationConfig{URL: url}
		}
		return pa, nil
	}
	var out []projectAuth
	if osCloud != "" {
		pa, err := one("", osCloud)
		if err != nil {
			return nil, err
		}
		out = append(out, pa)
	}
	for _, p := range pairs {
		project, cloud, ok := strings.Cut(p, "=")
		if !ok || project == "" || cloud == "" {
			return nil, usageError("--project-cloud %q: want PROJECT=CLOUD", p)
		}
		pa, err := one(project, cloud)
		if err != nil {
			return nil, err
		}
		out = append(out, pa)
	}
	return out, nil
}

// projectClouds are the clouds tasks act in, one per project, with the
// credentials configured for it (never a caller's token: a task may
// outlive it); 'ostask serve' and 'ostask worker' share it. Every
// project's credentials log in once when it is made, so that a wrong
// setting stops the process at start; a project's cloud is dialled on
// first use and kept. A failed dial is not kept: the next Resolve dials
// again (concurrent ones share one dial).
type projectClouds struct {
	cfg     ops.Config
	byID    map[string]*projectCloud
	byName  map[string]*projectCloud
	secrets []string
	// hubs share one broker connection among the projects notified on
	// the same bus (one per AMQP URL), closed after the clouds.
	hubs []*ops.NotificationHub
	// dialTimeout bounds one dial (projectDialTimeout; tests shorten it).
	dialTimeout time.Duration

	mu     sync.Mutex // guards the projectCloud's c and dial, and closed
	closed bool       // Close ran: nothing is dialled after it
	dials  sync.WaitGroup
}

// projectCloud is one project's credentials and, once dialled, its cloud.
type projectCloud struct {
	id, name, cloud string
	auth            ops.Auth
	notify          *ops.NotificationConfig
	c               *ops.Cloud // nil until dialled
	dial            *dialCall  // the dial under way, if any
}

// dialCall is one dial of a project's cloud, shared by the Resolves
// that wait for it; c and err are set before done is closed.
type dialCall struct {
	done   chan struct{}
	cancel context.CancelFunc
	c      *ops.Cloud
	err    error
}

// Dialling a project's cloud on a request's path: how long one dial may
// take (its retries included), and the Retry-After of a transient failure.
const (
	projectDialTimeout = 20 * time.Second
	cloudRetryAfter    = 5 * time.Second
)

// newProjectClouds logs in with each of auths to learn (and check) its
// project. cfg configures the clouds dialled later.
func newProjectClouds(ctx context.Context, auths []projectAuth, cfg ops.Config) (*projectClouds, error) {
	pc := &projectClouds{cfg: cfg, byID: map[string]*projectCloud{}, byName: map[string]*projectCloud{}, dialTimeout: projectDialTimeout}
	hubs := map[string]*ops.NotificationConfig{} // by AMQP URL
	for _, a := range auths {
		a.auth.Options.AllowReauth = true
		o := a.auth.Options
		pc.secrets = append(pc.secrets, o.Password, o.TokenID, o.ApplicationCredentialSecret, o.Passcode)
		if a.notify != nil {
			pc.secrets = append(pc.secrets, a.notify.Secrets()...)
		}
		id, name, err := projectOf(ctx, a.auth)
		if err != nil {
			return nil, fmt.Errorf("cloud %s: %s", a.cloud, describe(err))
		}
		if a.want != "" && a.want != id && a.want != name {
			return nil, usageError("--project-cloud %s=%s: the cloud's credentials are scoped to project %s (%s)", a.want, a.cloud, name, id)
		}
		notify := a.notify
		if notify != nil && notify.URL != "" {
			// Every project's notifications are on the cloud's bus: one
			// connection and queue for all the projects on it, not one
			// each (the broker would send every message once per project).
			if notify = hubs[a.notify.URL]; notify == nil {
				h, err := ops.NewNotificationHub(*a.notify, cfg.Logger)
				if err != nil { // a hub holds nothing until a cloud listens
					return nil, fmt.Errorf("cloud %s: %w", a.cloud, err)
				}
				pc.hubs = append(pc.hubs, h)
				hc := h.Config()
				notify, hubs[a.notify.URL] = &hc, &hc
			}
		}
		p := &projectCloud{id: id, name: name, cloud: a.cloud, auth: a.auth, notify: notify}
		pc.byID[id] = p
		if name != "" {
			pc.byName[name] = p
		}
	}
	return pc, nil
}

// Resolve returns the cloud of a project (its id, or its name), dialling
// it on first use. An unknown project is jobs.ErrNoCredentials; a cloud
// that cannot be reached now (Keystone unreachable, slow, or answering
// 5xx) is a *jobs.CloudUnavailableError; ctx ending stops the wait, not
// the dial other callers may share.
func (pc *projectClouds) Resolve(ctx context.Context, project string) (*ops.Cloud, error) {
	p, ok := pc.byID[project]
	if !ok {
		p, ok = pc.byName[project]
	}
	if !ok {
		return nil, fmt.Errorf("%w: project %q", jobs.ErrNoCredentials, project)
	}
	pc.mu.Lock()
	if pc.closed {
		pc.mu.Unlock()
		return nil, ops.ErrMonitorClosed
	}
	if c := p.c; c != nil {
		pc.mu.Unlock()
		return c, nil
	}
	call := p.dial
	if call == nil {
		dctx, cancel := context.WithTimeout(context.Background(), pc.dialTimeout)
		call = &dialCall{done: make(chan struct{}), cancel: cancel}
		p.dial = call
		pc.dials.Add(1)
		go pc.dialProject(dctx, p, call)
	}
	pc.mu.Unlock()
	select {
	case <-call.done:
		return call.c, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dialProject makes call: dials p's cloud and keeps it, or reports why
// not.
func (pc *projectClouds) dialProject(ctx context.Context, p *projectCloud, call *dialCall) {
	defer pc.dials.Done()
	defer call.cancel()
	cfg := pc.cfg
	if p.notify != nil {
		cfg.Notifications = p.notify
	}
	c, err := ops.Dial(ctx, p.auth, cfg)
	if err != nil {
		err = dialError(p, err)
	}
	pc.mu.Lock()
	if err == nil && pc.closed {
		_ = c.Close()
		c, err = nil, ops.ErrMonitorClosed
	}
	if err == nil {
		p.c = c
	}
	p.dial = nil
	call.c, call.err = c, err
	pc.mu.Unlock()
	close(call.done)
}

// dialError says why p's cloud could not be dialled: a
// *jobs.CloudUnavailableError when trying again later may work (no
// answer, a lost or late one, throttling, 5xx), else a plain error (bad
// credentials, a missing endpoint).
func dialError(p *projectCloud, err error) error {
	msg := fmt.Errorf("cloud %s for project %s: %s", p.cloud, p.name, describe(err))
	if errors.Is(err, ops.ErrMonitorClosed) || errors.Is(err, context.Canceled) {
		return msg
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ops.ErrUnresponsive) || ops.Retryable(err) {
		return &jobs.CloudUnavailableError{Project: p.id, RetryAfter: cloudRetryAfter, Err: msg}
	}
	return msg
}

// Projects names the projects served, "name (cloud)", sorted.
func (pc *projectClouds) Projects() []string {
	out := make([]string, 0, len(pc.byID))
	for _, p := range pc.byID {
		out = append(out, fmt.Sprintf("%s (%s)", p.name, p.cloud))
	}
	sort.Strings(out)
	return out
}

// Secrets are the credentials of every project, for the store to scrub.
func (pc *projectClouds) Secrets() []string { return pc.secrets }

// Close stops the dials under way and closes the clouds dialled.
func (pc *projectClouds) Close() {
	pc.mu.Lock()
	pc.closed = true
	for _, p := range pc.byID {
		if p.dial != nil {
			p.dial.cancel()
		}
		if p.c != nil {
			_ = p.c.Close()
		}
	}
	pc.mu.Unlock()
	pc.dials.Wait()
	for _, h := range pc.hubs {
		_ = h.Close()
	}
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
