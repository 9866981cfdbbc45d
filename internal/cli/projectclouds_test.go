package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/service"
)

// The clouds of serve and worker: each project's credentials log in at
// once (so that a wrong one stops the process at start), the cloud is
// dialled on first use and kept, by the project's id or name; another
// project has no credentials; every credential is there to be scrubbed.
func TestProjectClouds(t *testing.T) {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	demo, alt := sim.DemoCredentials(), sim.AltCredentials()
	bus := &ops.NotificationConfig{URL: "amqp://u:bus%40secret@127.0.0.1:1/"} // never dialled here
	pc, err := newProjectClouds(ctx, []projectAuth{{cloud: "sim demo", auth: credAuth(demo)},
		{want: alt.ProjectName, cloud: "sim alt", auth: credAuth(alt), notify: bus}}, simConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, p := range pc.byID {
		if p.c != nil {
			t.Fatalf("project %s dialled before its first use", p.name)
		}
	}
	c1, err := pc.Resolve(ctx, cloudsim.DemoProjectID)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := pc.Resolve(ctx, demo.ProjectName)
	if err != nil || c2 != c1 {
		t.Fatalf("by name: %p %v, want the cloud dialled by id (%p)", c2, err, c1)
	}
	if c3, err := pc.Resolve(ctx, alt.ProjectName); err != nil || c3 == c1 {
		t.Fatalf("alt: %p %v: want its own cloud", c3, err)
	}
	if _, err := pc.Resolve(ctx, "admin"); !errors.Is(err, jobs.ErrNoCredentials) {
		t.Fatalf("a project without credentials: %v", err)
	}
	if s := pc.Secrets(); !slices.Contains(s, demo.Password) || !slices.Contains(s, "bus@secret") || !slices.Contains(s, "bus%40secret") {
		t.Fatalf("secrets %q lack a password (a cloud's, or the bus's as it is and as its URL writes it)", s)
	}
	if got := pc.Projects(); !slices.Equal(got, []string{"alt (sim alt)", "demo (sim demo)"}) {
		t.Fatalf("projects %q", got)
	}

	// Credentials of another project than asked for stop the process.
	_, err = newProjectClouds(ctx, []projectAuth{{want: "alt", cloud: "sim demo", auth: credAuth(demo)}}, simConfig)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 2 {
		t.Fatalf("demo's credentials for alt: %v, want a usage error", err)
	}
	// So do wrong credentials.
	bad := demo
	bad.Password = "wrong"
	if _, err := newProjectClouds(ctx, []projectAuth{{cloud: "sim demo", auth: credAuth(bad)}}, simConfig); err == nil {
		t.Fatal("a wrong password was taken")
	}
}

// Projects notified on the same bus share one connection to it (one hub
// per AMQP URL): the broker sends each message once to the process, not
// once per project.
func TestProjectCloudsShareABus(t *testing.T) {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	busA := func() *ops.NotificationConfig { return &ops.NotificationConfig{URL: "amqp://u:a-secret@127.0.0.1:1/"} }
	busB := &ops.NotificationConfig{URL: "amqp://u:b-secret@127.0.0.1:2/"}
	demo, alt, admin := sim.DemoCredentials(), sim.AltCredentials(), sim.AdminCredentials()
	pc, err := newProjectClouds(ctx, []projectAuth{
		{cloud: "sim demo", auth: credAuth(demo), notify: busA()},
		{want: alt.ProjectName, cloud: "sim alt", auth: credAuth(alt), notify: busA()},
		{want: admin.ProjectName, cloud: "sim admin", auth: credAuth(admin), notify: busB},
	}, simConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	stream := func(name string) ops.NotificationStream {
		p, ok := pc.byName[name]
		if !ok || p.notify == nil {
			t.Fatalf("project %s: no notification settings", name)
		}
		return p.notify.Stream
	}
	if len(pc.hubs) != 2 {
		t.Fatalf("%d hubs for two buses", len(pc.hubs))
	}
	if a, b := stream(demo.ProjectName), stream(alt.ProjectName); a == nil || a != b {
		t.Errorf("demo and alt, on one bus, read from %v and %v: want one hub", a, b)
	}
	if stream(admin.ProjectName) == stream(demo.ProjectName) {
		t.Error("admin, on another bus, shares demo's hub")
	}
	if got := fmt.Sprint(stream(demo.ProjectName)); strings.Contains(got, "a-secret") {
		t.Errorf("the hub shows its password: %s", got)
	}
	if s := pc.Secrets(); !slices.Contains(s, "a-secret") || !slices.Contains(s, "b-secret") {
		t.Errorf("secrets %q lack a bus password", s)
	}
}

// instantClock makes ops' retries wait no real time.
type instantClock struct{}

func (instantClock) Now() time.Time { return time.Now() }
func (instantClock) After(time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	c <- time.Now()
	return c
}

// flakyKeystone is a proxy in front of cloudsim's Keystone that can fail
// as an unreachable or broken one does.
type flakyKeystone struct {
	*httptest.Server
	mode atomic.Value // "" (pass), "503", "drop" (close the connection), "hang" (never answer), "401"
	hits atomic.Int32 // requests while failing
}

// flakyProjectClouds is a cloudsim, a flaky proxy of its Keystone, and
// projectClouds whose one project ("flaky", the demo project) logs in
// through the proxy; all closed at the test's end.
func flakyProjectClouds(t *testing.T) (*cloudsim.Sim, *flakyKeystone, *projectClouds) {
	t.Helper()
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	k := newFlakyKeystone(t, sim)
	cfg := simConfig
	cfg.Clock = instantClock{}
	pc, err := newProjectClouds(ctx, []projectAuth{{cloud: "flaky", auth: k.authVia(sim, sim.DemoCredentials())}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return sim, k, pc
}

func newFlakyKeystone(t *testing.T, sim *cloudsim.Sim) *flakyKeystone {
	t.Helper()
	target, err := url.Parse(sim.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	k := &flakyKeystone{}
	k.mode.Store("")
	stop := make(chan struct{})
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode := k.mode.Load().(string)
		if mode != "" {
			k.hits.Add(1)
		}
		switch mode {
		case "503":
			http.Error(w, "keystone is down", http.StatusServiceUnavailable)
		case "401":
			http.Error(w, `{"error":{"code":401}}`, http.StatusUnauthorized)
		case "hang":
			_, _ = io.Copy(io.Discard, r.Body) // so that the server sees the client go
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		case "drop":
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(k.Close)
	t.Cleanup(func() { close(stop) }) // first: a hanging request ends
	return k
}

// authVia is c's credentials with their auth URL on k.
func (k *flakyKeystone) authVia(sim *cloudsim.Sim, c cloudsim.Credentials) ops.Auth {
	a := credAuth(c)
	a.Options.IdentityEndpoint = k.URL + strings.TrimPrefix(c.AuthURL, sim.URL())
	return a
}

// A project's cloud whose Keystone fails transiently (5xx, a dropped
// connection, no answer within the dial's time) is a *jobs.CloudUnavailableError, not kept: the next
// Resolve dials again and succeeds once Keystone is back. Credentials
// Keystone refuses are not transient.
func TestProjectCloudsDialFailures(t *testing.T) {
	ctx := context.Background()
	_, k, pc := flakyProjectClouds(t)
	pc.dialTimeout = time.Second // for "hang"
	for _, mode := range []string{"503", "drop", "hang"} {
		k.mode.Store(mode)
		k.hits.Store(0)
		_, err := pc.Resolve(ctx, cloudsim.DemoProjectID)
		var ce *jobs.CloudUnavailableError
		if !errors.As(err, &ce) || !errors.Is(err, jobs.ErrCloudUnavailable) || ce.RetryAfter <= 0 || ce.Project != cloudsim.DemoProjectID {
			t.Fatalf("Keystone %s: %v, want a CloudUnavailableError", mode, err)
		}
		if k.hits.Load() == 0 {
			t.Fatalf("Keystone %s: the dial did not reach it", mode)
		}
	}
	// A caller that goes away does not end the dial it started: the next
	// caller waits for that same dial rather than starting another.
	k.mode.Store("hang")
	k.hits.Store(0)
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := pc.Resolve(gone, cloudsim.DemoProjectID); !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller gone: %v", err)
	}
	if _, err := pc.Resolve(ctx, "demo"); !errors.Is(err, jobs.ErrCloudUnavailable) {
		t.Fatalf("the shared dial: %v", err)
	}
	if n := k.hits.Load(); n != 1 {
		t.Fatalf("%d logins for one shared dial", n)
	}
	k.mode.Store("401")
	if _, err := pc.Resolve(ctx, cloudsim.DemoProjectID); err == nil || errors.Is(err, jobs.ErrCloudUnavailable) {
		t.Fatalf("Keystone refusing the credentials: %v, want a permanent error", err)
	}
	k.mode.Store("")
	c, err := pc.Resolve(ctx, cloudsim.DemoProjectID)
	if err != nil || c == nil {
		t.Fatalf("Keystone back: %v", err)
	}
	k.mode.Store("503") // kept: no dial any more
	if c2, err := pc.Resolve(ctx, "demo"); err != nil || c2 != c {
		t.Fatalf("the dialled cloud was not kept: %v", err)
	}
}

// Through the API, on the real queue: while a project's cloud cannot be
// reached, POST /v1/tasks answers 503 cloud_unavailable with a
// Retry-After and stores nothing; the next request, with the cloud back,
// is taken. A project without credentials stays 422.
func TestServeCloudUnavailable(t *testing.T) {
	ctx := context.Background()
	sim, k, pc := flakyProjectClouds(t)
	q, err := jobs.Open(ctx, jobs.Config{URL: filepath.Join(t.TempDir(), "q.db"), Clouds: pc.Resolve})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	keys, err := service.NewKeystone(ctx, service.KeystoneConfig{Auth: credAuth(sim.AdminCredentials())})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := service.New(service.Config{Backend: q, Auth: keys, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	cl, err := service.NewClient(hs.URL, service.StaticToken(login(t, sim.DemoCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	req := service.CreateRequest{Kind: "volume.create", Params: json.RawMessage(`{"name":"v","size":1}`)}

	k.mode.Store("503")
	post := func(token string) (int, http.Header, []byte) {
		body, _ := json.Marshal(req)
		r, _ := http.NewRequest("POST", hs.URL+"/v1/tasks", bytes.NewReader(body))
		r.Header.Set(service.TokenHeader, token)
		res, err := hs.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		data, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, data
	}
	code, h, body := post(login(t, sim.DemoCredentials()))
	var eb struct{ Error service.Error }
	if err := json.Unmarshal(body, &eb); err != nil || code != 503 || eb.Error.Code != service.CodeCloudUnavailable ||
		h.Get("Retry-After") != "5" || eb.Error.Message == "" {
		t.Fatalf("Keystone down: %d Retry-After %q %s, want 503 cloud_unavailable with Retry-After 5", code, h.Get("Retry-After"), body)
	}
	_, _, err = cl.Create(ctx, req, "")
	var se *service.Error
	if !errors.As(err, &se) || !errors.Is(err, jobs.ErrCloudUnavailable) || se.RetryAfter != 5*time.Second {
		t.Fatalf("the client: %v, want ErrCloudUnavailable with its RetryAfter", err)
	}
	if p, err := q.List(ctx, jobs.Filter{}); err != nil || len(p.Tasks) != 0 {
		t.Fatalf("stored while the cloud was unreachable: %v %v", p.Tasks, err)
	}

	k.mode.Store("")
	if task, _, err := cl.Create(ctx, req, ""); err != nil || task.Status != jobs.Queued {
		t.Fatalf("Keystone back: %+v %v", task, err)
	}
	if code, _, body := post(login(t, sim.AltCredentials())); code != 422 || !strings.Contains(string(body), service.CodeNoCredentials) {
		t.Fatalf("a project without credentials: %d %s, want 422", code, body)
	}
}

// login is a Keystone token for c, straight from cloudsim.
func login(t *testing.T, c cloudsim.Credentials) string {
	t.Helper()
	body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"` + c.Username +
		`","domain":{"name":"Default"},"password":"` + c.Password + `"}}},"scope":{"project":{"name":"` + c.ProjectName +
		`","domain":{"name":"Default"}}}}}`
	res, err := http.Post(c.AuthURL+"/auth/tokens", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("login %s: %d", c.Username, res.StatusCode)
	}
	return res.Header.Get("X-Subject-Token")
}
