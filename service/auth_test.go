package service_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/service"
)

// protected lists a request for every route that needs a token.
func protected(id string) [][2]string {
	return [][2]string{
		{"POST", "/v1/tasks"}, {"GET", "/v1/tasks"}, {"GET", "/v1/tasks?follow=true"}, {"GET", "/v1/tasks/" + id},
		{"GET", "/v1/tasks/" + id + "/events"}, {"GET", "/v1/tasks/" + id + "/events?follow=true"},
		{"GET", "/v1/tasks/" + id + "/graph"}, {"POST", "/v1/tasks/" + id + "/cancel"},
		{"GET", "/v1/resources/server/x/tasks"}, {"GET", "/v1/resources/server/x/fault"}, {"GET", "/v1/kinds"},
	}
}

func TestUnauthenticated(t *testing.T) {
	e := newEnv(t)
	task := e.create(e.demo, "noop", "{}")
	for _, rq := range protected(task.ID) {
		for name, tok := range map[string]string{"no token": "", "bad token": "gAAAAnotatoken", "unscoped": e.unscoped()} {
			r := e.do(rq[0], rq[1], tok, `{"kind":"noop"}`)
			if r.code != 401 || r.apiErr(t).Code != "unauthorized" {
				t.Errorf("%s %s with %s: %d %s, want 401", rq[0], rq[1], name, r.code, r.body)
			}
		}
	}
	if n := e.backend.Created(); n != 1 {
		t.Fatalf("%d tasks stored, want only the authenticated one", n)
	}
	// A token Keystone no longer knows (revoked) is refused once the
	// cache lets go of it; an expired one at its expiry.
	e.sim.ExpireTokens()
	fresh := e.login(e.sim.DemoCredentials())
	if r := e.do("GET", "/v1/kinds", fresh, nil); r.code != 200 {
		t.Fatalf("a fresh token: %d", r.code)
	}
}

// unscoped is a token with no project: it can own no task.
func (e *env) unscoped() string {
	e.t.Helper()
	body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"demo","domain":{"name":"Default"},"password":"secret"}}}}}`
	r, err := http.Post(e.sim.AuthURL()+"/auth/tokens", "application/json", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	r.Body.Close()
	return r.Header.Get("X-Subject-Token")
}

// A validated token is served from the cache for CacheFor (default
// DefaultTokenCacheTime) at most: a token Keystone revoked stops working
// then, not at its expiry.
func TestTokenCacheTime(t *testing.T) {
	for _, cacheFor := range []time.Duration{0, time.Minute, -1} {
		t.Run(fmt.Sprint(cacheFor), func(t *testing.T) {
			now := time.Now()
			e := newEnv(t)
			keys, err := service.NewKeystone(t.Context(), service.KeystoneConfig{Auth: authOf(e.sim.AdminCredentials()), CacheFor: cacheFor,
				Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			id, err := keys.Validate(t.Context(), e.demo)
			if err != nil {
				t.Fatal(err)
			}
			bound := cacheFor
			if bound == 0 {
				bound = service.DefaultTokenCacheTime
			}
			if bound > 0 && !now.Add(bound).Before(id.ExpiresAt) {
				t.Fatalf("the token expires at %s, before the cache time ends: the test proves nothing", id.ExpiresAt)
			}
			e.sim.ExpireTokens() // Keystone forgets it (revoked)
			if bound > 0 {
				now = now.Add(bound / 2)
			} else {
				now = now.Add(time.Minute)
			}
			if _, err := keys.Validate(t.Context(), e.demo); err != nil {
				t.Fatalf("within the cache time: %v", err)
			}
			if bound < 0 {
				now = id.ExpiresAt.Add(-time.Second) // until expiry
				if _, err := keys.Validate(t.Context(), e.demo); err != nil {
					t.Fatalf("cached until expiry: %v", err)
				}
				return
			}
			now = now.Add(bound) // past the cache time, before the expiry
			if _, err := keys.Validate(t.Context(), e.demo); !errors.Is(err, service.ErrUnauthorized) {
				t.Fatalf("a revoked token after the cache time: %v, want unauthorized", err)
			}
		})
	}
}

// Tokens are validated by Keystone once, then served from the cache
// until they expire (or the cache time ends).
func TestTokenCache(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e := newEnv(t)
	keys, err := service.NewKeystone(t.Context(), service.KeystoneConfig{Auth: authOf(e.sim.AdminCredentials()), Now: func() time.Time { return clock() }})
	if err != nil {
		t.Fatal(err)
	}
	id, err := keys.Validate(t.Context(), e.demo)
	if err != nil || id.Project.ID != cloudsim.DemoProjectID || id.User.Name != "demo" || id.Admin {
		t.Fatalf("validate demo: %+v %v", id, err)
	}
	e.sim.ExpireTokens() // Keystone forgets it; the cache does not
	if _, err := keys.Validate(t.Context(), e.demo); err != nil {
		t.Fatalf("cached token: %v", err)
	}
	now = id.ExpiresAt.Add(time.Second) // past its expiry, Keystone is asked again
	if _, err := keys.Validate(t.Context(), e.demo); err == nil {
		t.Fatal("an expired token was accepted")
	}
	// The service's own metric counts lookups by outcome.
	e2 := newEnv(t)
	for range 5 {
		e2.do("GET", "/v1/kinds", e2.alt, nil)
	}
	e2.do("GET", "/v1/kinds", "bogus", nil)
	if v := counter(t, e2, "cached").value(); v != 4 {
		t.Fatalf("%v cached lookups, want 4", v)
	}
	if v := counter(t, e2, "valid").value(); v != 1 {
		t.Fatalf("%v Keystone validations, want 1", v)
	}
	if v := counter(t, e2, "invalid").value(); v != 1 {
		t.Fatalf("%v invalid, want 1", v)
	}
}

func counter(t *testing.T, e *env, outcome string) *testCounter {
	return &testCounter{t: t, e: e, outcome: outcome}
}

// testCounter reads ostask_service_token_lookups_total{outcome} from the
// env's registry.
type testCounter struct {
	t       *testing.T
	e       *env
	outcome string
}

func (c *testCounter) value() float64 {
	mfs, err := c.e.reg.Gather()
	if err != nil {
		c.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ostask_service_token_lookups_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == c.outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestProjectScoping(t *testing.T) {
	e := newEnv(t)
	demoTask := e.create(e.demo, "noop", "{}")
	altTask := e.create(e.alt, "noop", "{}")
	must(t, e.backend.Start(demoTask.ID, "w"))
	must(t, e.backend.Step(demoTask.ID, "s", "FAILURE", nil, &jobs.Error{Message: "no", Details: &jobs.ErrorDetails{Stack: "goroutine 1"}}))
	must(t, e.backend.Finish(demoTask.ID, jobs.Failed, nil, &jobs.Error{Message: "no", Fault: "f", Details: &jobs.ErrorDetails{Stack: "goroutine 1", Raw: "raw"}}))

	// alt cannot see demo's task by any route: 404, as if it did not exist.
	for _, path := range []string{"", "/events", "/graph", "/events?follow=true"} {
		if r := e.do("GET", "/v1/tasks/"+demoTask.ID+path, e.alt, nil); r.code != 404 || r.apiErr(t).Code != "not_found" {
			t.Errorf("alt GET %s: %d %s", path, r.code, r.body)
		}
	}
	list := func(tok string) []string {
		var p struct{ Tasks []jobs.Task }
		e.do("GET", "/v1/tasks", tok, nil).decode(t, &p)
		var ids []string
		for _, task := range p.Tasks {
			ids = append(ids, task.ID)
		}
		return ids
	}
	if ids := list(e.alt); len(ids) != 1 || ids[0] != altTask.ID {
		t.Fatalf("alt lists %v", ids)
	}
	if ids := list(e.demo); len(ids) != 1 || ids[0] != demoTask.ID {
		t.Fatalf("demo lists %v", ids)
	}
	if ids := list(e.admin); len(ids) != 2 {
		t.Fatalf("admin lists %v, want both", ids)
	}
	// Error details: admins only, in the task and in its events.
	member := e.do("GET", "/v1/tasks/"+demoTask.ID, e.demo, nil)
	if task := member.task(t); task.Error == nil || task.Error.Fault != "f" || task.Error.Details != nil || strings.Contains(string(member.body), "goroutine") {
		t.Fatalf("member sees %s", member.body)
	}
	if task := e.do("GET", "/v1/tasks/"+demoTask.ID, e.admin, nil).task(t); task.Error == nil || task.Error.Details == nil || task.Error.Details.Raw != "raw" {
		t.Fatalf("admin sees %+v", task.Error)
	}
	if r := e.do("GET", "/v1/tasks/"+demoTask.ID+"/events", e.demo, nil); strings.Contains(string(r.body), "goroutine") {
		t.Fatalf("member's events show details: %s", r.body)
	}
	if r := e.do("GET", "/v1/tasks/"+demoTask.ID+"/events", e.admin, nil); !strings.Contains(string(r.body), "goroutine") {
		t.Fatalf("admin's events lack details: %s", r.body)
	}
	// The admin's own tasks belong to the admin project.
	if task := e.create(e.admin, "noop", "{}"); task.Project != cloudsim.AdminProjectID {
		t.Fatalf("admin's task in %s", task.Project)
	}
}

func TestSession(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v1/auth/session", "", `{"username":"demo","password":"secret","project":"demo"}`)
	if r.code != 200 {
		t.Fatalf("login: %d %s", r.code, r.body)
	}
	var id service.Identity
	r.decode(t, &id)
	if id.User.Name != "demo" || id.Project.ID != cloudsim.DemoProjectID || id.Admin || id.ExpiresAt.IsZero() || len(id.Roles) == 0 {
		t.Fatalf("whoami %+v", id)
	}
	cookie := sessionCookie(t, r)
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || cookie.Value == "" {
		t.Fatalf("cookie %+v", cookie)
	}
	if strings.Contains(string(r.body), cookie.Value) {
		t.Fatal("the token is in the body")
	}
	// The cookie authenticates, as the header does.
	if r := e.do("GET", "/v1/tasks", "", nil, "Cookie", service.CookieName+"="+cookie.Value); r.code != 200 {
		t.Fatalf("list with the cookie: %d %s", r.code, r.body)
	}
	if r := e.do("GET", "/v1/auth/session", "", nil, "Cookie", service.CookieName+"="+cookie.Value); r.code != 200 {
		t.Fatalf("whoami with the cookie: %d", r.code)
	}
	if r := e.do("GET", "/v1/auth/session", "", nil); r.code != 401 {
		t.Fatalf("whoami without: %d", r.code)
	}
	// By project id, by token, and the refusals.
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"username":"alt","password":"secret","project":"` + cloudsim.AltProjectID + `"}`, 200},
		{`{"username":"admin","password":"secret","project":"admin","domain":"Default"}`, 200},
		{`{"token":"` + e.alt + `"}`, 200},
		{`{"username":"demo","password":"wrong","project":"demo"}`, 401},
		{`{"username":"alt","password":"secret","project":"demo"}`, 401},
		{`{"token":"nonesuch"}`, 401},
		{`{"username":"demo"}`, 400},
		{`{"token":"x","username":"demo"}`, 400},
		{`{"user":"demo"}`, 400},
	} {
		r := e.do("POST", "/v1/auth/session", "", tc.body)
		if r.code != tc.code {
			t.Errorf("login %s: %d %s, want %d", tc.body, r.code, r.body, tc.code)
		}
		if tc.code != 200 && r.header.Get("Set-Cookie") != "" {
			t.Errorf("login %s set a cookie", tc.body)
		}
	}
	r = e.do("DELETE", "/v1/auth/session", "", nil, "Cookie", service.CookieName+"="+cookie.Value)
	if c := sessionCookie(t, r); r.code != 204 || c.Value != "" || c.MaxAge >= 0 {
		t.Fatalf("logout: %d %+v", r.code, c)
	}
}

func sessionCookie(t *testing.T, r resp) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == service.CookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", service.CookieName, r.header)
	return nil
}

// serve --sim: a caller without a session is logged in as the demo user.
func TestAutoLogin(t *testing.T) {
	e := newEnv(t, func(c *service.Config) {
		c.AutoLogin = &service.Login{Username: "demo", Password: "secret", Project: "demo"}
	})
	for _, cookie := range []string{"", service.CookieName + "=stale"} {
		r := e.do("GET", "/v1/auth/session", "", nil, "Cookie", cookie)
		var id service.Identity
		r.decode(t, &id)
		if r.code != 200 || id.User.Name != "demo" || sessionCookie(t, r).Value == "" {
			t.Fatalf("auto login with cookie %q: %d %s", cookie, r.code, r.body)
		}
	}
	// An explicit bad token is not replaced, and other routes still need one.
	if r := e.do("GET", "/v1/auth/session", "bad", nil); r.code != 401 {
		t.Fatalf("bad token: %d", r.code)
	}
	if r := e.do("GET", "/v1/tasks", "", nil); r.code != 401 {
		t.Fatalf("list without a token in sim mode: %d", r.code)
	}
}

// Service credentials without the right to validate others' tokens: the
// callers get 503 (no verdict), not 401, and the log says why.
func TestKeystoneWithoutValidateRight(t *testing.T) {
	e := newEnv(t)
	keys, err := service.NewKeystone(t.Context(), service.KeystoneConfig{Auth: authOf(e.sim.DemoCredentials())})
	if err != nil {
		t.Fatal(err)
	}
	_, err = keys.Validate(t.Context(), e.alt)
	if !errors.Is(err, service.ErrUnavailable) || !strings.Contains(err.Error(), "admin or service role") {
		t.Fatalf("validate with a member's token: %v", err)
	}
}
