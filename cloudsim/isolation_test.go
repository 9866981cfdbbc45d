package cloudsim_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ostask/ostask/cloudsim"
)

// issueToken logs user in with an optional project scope and returns the
// token.
func issueToken(t *testing.T, e *novaEnv, user, project string) string {
	t.Helper()
	scope := ""
	if project != "" {
		scope = `,"scope":{"project":{"name":"` + project + `","domain":{"id":"default"}}}`
	}
	r := e.do("POST", "/identity/v3/auth/tokens", "", "", `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"`+
		user+`","domain":{"id":"default"},"password":"secret"}}}`+scope+`}}`)
	if r.code != 201 {
		t.Fatalf("login %s/%s: %d %s", user, project, r.code, r.text)
	}
	return r.header.Get("X-Subject-Token")
}

// An unscoped token is refused by Nova, Cinder and Glance: it lists no
// project's servers and creates nothing. Keystone still takes it.
func TestUnscopedTokenRefused(t *testing.T) {
	e := newNovaEnv(t, nil)
	e.create("someone's")
	unscoped := issueToken(t, e, "admin", "")
	create := `{"server": {"name": "orphan", "imageRef": "` + e.defaultImage + `", "flavorRef": "1", "networks": "none"}}`
	for _, tc := range []struct{ method, path, body, fault string }{
		{"GET", "/compute/v2.1/servers?all_tenants=1", "", "forbidden"},
		{"GET", "/compute/v2.1/servers/detail", "", "forbidden"},
		{"POST", "/compute/v2.1/servers", create, "forbidden"},
		{"GET", "/volume/v3/" + cloudsim.DemoProjectID + "/volumes", "", "forbidden"},
		{"GET", "/image/v2/images", "", ""},
	} {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		r := e.do(tc.method, tc.path, unscoped, "2.60", body)
		if r.code != 403 || (tc.fault != "" && r.body[tc.fault] == nil) {
			t.Errorf("%s %s with an unscoped token: %d %s", tc.method, tc.path, r.code, r.text)
		}
	}
	if n := len(e.sim.Servers(false)); n != 1 {
		t.Fatalf("%d servers after an unscoped create, want 1", n)
	}
	if r := e.do("GET", "/identity/v3/auth/tokens", unscoped, "", nil); r.code != 404 {
		// no X-Subject-Token: Keystone looked it up, it did not refuse the caller
		t.Fatalf("Keystone refused an unscoped token: %d %s", r.code, r.text)
	}
}

// Only the token's owner or an admin may validate or revoke it.
func TestTokenValidateRevokePolicy(t *testing.T) {
	e := newNovaEnv(t, nil)
	member := issueToken(t, e, "demo", "demo")
	memberUnscoped := issueToken(t, e, "demo", "")
	admin := issueToken(t, e, "admin", "admin")
	check := func(method, caller, subject string, code int, msg string) {
		t.Helper()
		req, _ := http.NewRequest(method, e.sim.URL()+"/identity/v3/auth/tokens", nil)
		req.Header.Set("X-Auth-Token", caller)
		req.Header.Set("X-Subject-Token", subject)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != code || (msg != "" && !strings.Contains(string(data), msg)) {
			t.Errorf("%s by %.12s of %.12s: %d %s, want %d %q", method, caller, subject, resp.StatusCode, data, code, msg)
		}
	}
	check("GET", member, admin, 403, "You are not authorized to perform the requested action: identity:validate_token.")
	check("HEAD", member, admin, 403, "")
	check("DELETE", member, admin, 403, "You are not authorized to perform the requested action: identity:revoke_token.")
	check("GET", admin, admin, 200, "") // still valid: the member could not revoke it
	check("GET", memberUnscoped, member, 200, "")
	check("GET", admin, member, 200, "")
	check("DELETE", member, memberUnscoped, 204, "")
	check("DELETE", admin, member, 204, "")
}

// Tokens are not kept forever: expired ones are forgotten, and past
// MaxTokens the oldest valid one is.
func TestTokenEviction(t *testing.T) {
	t.Run("expired", func(t *testing.T) {
		e := newNovaEnv(t, nil) // two logins of its own
		for range 20 {
			issueToken(t, e, "demo", "demo")
		}
		if n := e.sim.TokenCountForTest(); n != 22 {
			t.Fatalf("%d tokens, want 22", n)
		}
		e.clock.Advance(cloudsim.DefaultTokenTTL + time.Second)
		issueToken(t, e, "demo", "demo")
		if n := e.sim.TokenCountForTest(); n != 1 {
			t.Fatalf("%d tokens after the others expired, want 1", n)
		}
	})
	t.Run("cap", func(t *testing.T) {
		sim, err := cloudsim.Start(context.Background(), cloudsim.Config{MaxTokens: 10})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sim.Close() })
		e := &novaEnv{t: t, sim: sim}
		first := issueToken(t, e, "demo", "demo")
		var last string
		for range 1000 {
			last = issueToken(t, e, "demo", "demo")
		}
		if n := sim.TokenCountForTest(); n != 10 {
			t.Fatalf("%d tokens held after 1001 logins, want the cap 10", n)
		}
		if r := e.do("GET", "/compute/v2.1/servers", last, "", nil); r.code != 200 {
			t.Fatalf("newest token: %d", r.code)
		}
		if r := e.do("GET", "/compute/v2.1/servers", first, "", nil); r.code != 401 {
			t.Fatalf("evicted token: %d, want 401", r.code)
		}
	})
}

// Glance's default policy: only admins make images public.
func TestPublicImageNeedsAdmin(t *testing.T) {
	e := newNovaEnv(t, nil)
	member := issueToken(t, e, "demo", "demo")
	admin := issueToken(t, e, "admin", "admin")
	for _, tc := range []struct {
		tok, visibility string
		code            int
	}{
		{member, "public", 403}, {member, "community", 201}, {member, "private", 201}, {admin, "public", 201},
	} {
		r := e.do("POST", "/image/v2/images", tc.tok, "", `{"name": "img", "visibility": "`+tc.visibility+`"}`)
		if r.code != tc.code {
			t.Errorf("%s image: %d %s, want %d", tc.visibility, r.code, r.text, tc.code)
		}
		if tc.code == 403 && !strings.HasPrefix(r.body["message"].(string), "You are not authorized to complete publicize_image action.") {
			t.Errorf("403 body %s", r.text)
		}
	}
}

// A request that stops half way, in its headers or its body, is dropped
// after ReadTimeout instead of holding its connection and handler.
func TestHalfSentRequestsTimeOut(t *testing.T) {
	sim, err := cloudsim.Start(context.Background(), cloudsim.Config{ReadTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	e := &novaEnv{t: t, sim: sim}
	tok := issueToken(t, e, "demo", "demo")
	host := strings.TrimPrefix(sim.URL(), "http://")
	for _, tc := range []struct{ name, sent string }{
		{"headers", "POST /compute/v2.1/servers HTTP/1.1\r\nHost: " + host + "\r\nX-Auth-Tok"},
		{"body", "POST /compute/v2.1/servers HTTP/1.1\r\nHost: " + host + "\r\nX-Auth-Token: " + tok +
			"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"server\": {"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const conns = 20
			done := make(chan error, conns)
			for range conns {
				c, err := net.Dial("tcp", host)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close() })
				if _, err := io.WriteString(c, tc.sent); err != nil {
					t.Fatal(err)
				}
				// The guard only bounds the test; the server must act first.
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
				go func() {
					_, err := io.Copy(io.Discard, bufio.NewReader(c))
					done <- err
				}()
			}
			for range conns {
				if err := <-done; err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatalf("the server still held a half-sent request after 20 s")
					}
				}
			}
		})
	}
}

// A handler that panics is answered 500 with the service's fault body,
// and the panic goes to the configured logger.
func TestHandlerPanicLoggedAndAnswered(t *testing.T) {
	var logs bytes.Buffer
	sim, err := cloudsim.New(cloudsim.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := sim.PanicHandlerForTest()
	for _, tc := range []struct{ path, key string }{
		{"/compute/v2.1/panic", "computeFault"},
		{"/volume/v3/panic", "computeFault"},
		{"/image/panic", "message"},
		{"/identity/panic", "error"},
	} {
		logs.Reset()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "http://sim.test"+tc.path, nil))
		if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"`+tc.key+`"`) || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %s %s", tc.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		if !strings.Contains(logs.String(), "cloudsim: handler panic") || !strings.Contains(logs.String(), "boom") {
			t.Errorf("%s: the panic was not logged: %q", tc.path, logs.String())
		}
	}
}

// With no Logger configured, panics go to slog.Default(), not nowhere.
func TestHandlerPanicDefaultLogger(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	sim, err := cloudsim.New(cloudsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	sim.PanicHandlerForTest().ServeHTTP(rec, httptest.NewRequest("GET", "http://sim.test/compute/v2.1/panic", nil))
	if rec.Code != 500 || !strings.Contains(logs.String(), "cloudsim: handler panic") {
		t.Fatalf("%d, default logger got %q", rec.Code, logs.String())
	}
}

// The alt user is a member of project alt only: it sees none of demo's
// servers, cannot scope to demo, and cannot validate demo's tokens.
func TestAltProjectIsolated(t *testing.T) {
	e := newNovaEnv(t, nil)
	id := e.create("demo's")
	alt := issueToken(t, e, "alt", "alt")
	demo := issueToken(t, e, "demo", "demo")
	r := e.do("GET", "/compute/v2.1/servers", alt, "", nil)
	if r.code != 200 || strings.Contains(r.text, id) {
		t.Fatalf("alt lists servers: %d %s (must not show %s)", r.code, r.text, id)
	}
	if r := e.do("GET", "/compute/v2.1/servers/"+id, alt, "", nil); r.code != 404 {
		t.Fatalf("alt gets demo's server: %d, want 404", r.code)
	}
	if r := e.do("GET", "/identity/v3/auth/tokens", alt, "", nil); r.code != 404 {
		t.Fatalf("validate without a subject: %d", r.code)
	}
	r = e.do("POST", "/identity/v3/auth/tokens", "", "", `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"alt","domain":{"id":"default"},"password":"secret"}}},"scope":{"project":{"name":"demo","domain":{"id":"default"}}}}}`)
	if r.code != 401 {
		t.Fatalf("alt scoped to demo: %d, want 401", r.code)
	}
	req, _ := http.NewRequest("GET", e.sim.URL()+"/identity/v3/auth/tokens", nil)
	req.Header.Set("X-Auth-Token", alt)
	req.Header.Set("X-Subject-Token", demo)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("alt validates demo's token: %d, want 403", resp.StatusCode)
	}
}
