package service_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/service"
	"github.com/ostask/ostask/service/servicetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// env is a service over the in-memory backend, authenticating against an
// in-process cloudsim's Keystone, with a token per user.
type env struct {
	t       *testing.T
	sim     *cloudsim.Sim
	backend *servicetest.Backend
	srv     *httptest.Server
	reg     *prometheus.Registry
	keys    *service.Keystone
	demo    string // tokens
	alt     string
	admin   string
}

type envOpt func(*service.Config)

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	reg := prometheus.NewRegistry()
	keys, err := service.NewKeystone(ctx, service.KeystoneConfig{Auth: authOf(sim.AdminCredentials()), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	b := servicetest.New()
	cfg := service.Config{Backend: b, Auth: keys, Registerer: reg, Heartbeat: time.Hour}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := service.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	e := &env{t: t, sim: sim, backend: b, srv: srv, reg: reg, keys: keys}
	e.demo = e.login(sim.DemoCredentials())
	e.alt = e.login(sim.AltCredentials())
	e.admin = e.login(sim.AdminCredentials())
	return e
}

func authOf(c cloudsim.Credentials) ops.Auth {
	return ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: c.AuthURL, Username: c.Username,
		Password: c.Password, DomainName: c.DomainName, TenantName: c.ProjectName}}
}

// login returns a Keystone token for c, straight from cloudsim.
func (e *env) login(c cloudsim.Credentials) string {
	e.t.Helper()
	body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"` + c.Username +
		`","domain":{"name":"Default"},"password":"` + c.Password + `"}}},"scope":{"project":{"name":"` + c.ProjectName +
		`","domain":{"name":"Default"}}}}}`
	resp, err := http.Post(c.AuthURL+"/auth/tokens", "application/json", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 201 {
		e.t.Fatalf("login %s: %d", c.Username, resp.StatusCode)
	}
	return resp.Header.Get("X-Subject-Token")
}

// resp is an answer, its body read.
type resp struct {
	code   int
	header http.Header
	body   []byte
}

func (r resp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r resp) task(t *testing.T) jobs.Task {
	t.Helper()
	var task jobs.Task
	r.decode(t, &task)
	return task
}

// apiErr reads the error shape, failing if the body is not in it.
func (r resp) apiErr(t *testing.T) service.Error {
	t.Helper()
	var body struct {
		Error *service.Error `json:"error"`
	}
	r.decode(t, &body)
	if body.Error == nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("not the error shape: %s", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q", ct)
	}
	return *body.Error
}

// do sends a request with token (as X-Auth-Token; "" none) and extra
// headers as name, value pairs.
func (e *env) do(method, path, token string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, data}
}

// create posts a task and checks it was accepted.
func (e *env) create(token, kind, params string, headers ...string) jobs.Task {
	e.t.Helper()
	r := e.do("POST", "/v1/tasks", token, `{"kind":"`+kind+`","params":`+params+`}`, headers...)
	if r.code != 202 {
		e.t.Fatalf("create %s: %d %s", kind, r.code, r.body)
	}
	return r.task(e.t)
}

func serverParams(name string) string {
	return `{"name":"` + name + `","flavor":"1","image":"cirros"}`
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	event, id, data string
}

// stream is an open SSE response read event by event.
type stream struct {
	t      *testing.T
	res    *http.Response
	cancel context.CancelFunc
	events chan sseEvent
	notes  chan string // comments
	done   chan struct{}
}

// follow opens a stream; lastID "" sends no Last-Event-ID.
func (e *env) follow(path, token, lastID string) *stream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	req.Header.Set("X-Auth-Token", token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		data, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		e.t.Fatalf("follow %s: %d %s %s", path, res.StatusCode, res.Header.Get("Content-Type"), data)
	}
	s := &stream{t: e.t, res: res, cancel: cancel, events: make(chan sseEvent, 1000),
		notes: make(chan string, 1000), done: make(chan struct{})}
	go s.read()
	e.t.Cleanup(s.close)
	return s
}

func (s *stream) read() {
	defer close(s.done)
	defer close(s.events)
	sc := bufio.NewScanner(s.res.Body)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.event != "" || ev.data != "" {
				s.events <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			select {
			case s.notes <- strings.TrimSpace(line[1:]):
			default: // nobody looks at them
			}
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}

// next returns the next event; ok false when the stream ended.
func (s *stream) next() (sseEvent, bool) {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		return ev, ok
	case <-time.After(20 * time.Second): // a guard: the server must act first
		s.t.Fatal("no event within 20 s")
	}
	return sseEvent{}, false
}

func (s *stream) close() {
	s.cancel()
	s.res.Body.Close()
	<-s.done
}
