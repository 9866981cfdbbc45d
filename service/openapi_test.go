package service_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/ostask/ostask/service"
)

// The OpenAPI document and the router agree, in both directions: every
// documented operation is routed (not to the fallbacks), and every route
// the server has is documented.
func TestOpenAPIMatchesRouter(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(service.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	routes := service.Routes()
	sort.Strings(documented)
	sort.Strings(routes)
	if strings.Join(documented, "\n") != strings.Join(routes, "\n") {
		t.Fatalf("documented:\n%s\n\nrouted:\n%s", strings.Join(documented, "\n"), strings.Join(routes, "\n"))
	}
	// And the router really dispatches each documented operation to its
	// route, not to the 404/405 fallback: a request on the concrete path
	// is never answered 404-no-such-path or 405.
	e := newEnv(t)
	task := e.create(e.demo, "noop", "{}")
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		path = strings.NewReplacer("{id}", task.ID, "{type}", "server").Replace(path)
		if strings.Contains(path, "/resources/") {
			path = strings.Replace(path, task.ID, "srv-1", 1)
		}
		r := e.do(method, path, e.admin, `{"kind":"noop"}`)
		if r.code == 405 || (r.code == 404 && strings.Contains(string(r.body), "no such path")) {
			t.Errorf("%s: %d %s", op, r.code, r.body)
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/openapi.json", "", nil)
	if r.code != 200 || r.header.Get("Content-Type") != "application/json" || string(r.body) != string(service.OpenAPI()) {
		t.Fatalf("/openapi.json: %d %s", r.code, r.header.Get("Content-Type"))
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t)
	if r := e.do("GET", "/healthz", "", nil); r.code != 200 {
		t.Fatalf("healthz %d", r.code)
	}
	if r := e.do("GET", "/readyz", "", nil); r.code != 200 {
		t.Fatalf("readyz %d", r.code)
	}
	e.backend.SetReady(errTest("database down"))
	if r := e.do("GET", "/readyz", "", nil); r.code != 503 || strings.Contains(string(r.body), "database down") {
		t.Fatalf("readyz when not ready: %d %s", r.code, r.body)
	}
	e.do("GET", "/v1/kinds", e.demo, nil)
	r := e.do("GET", "/metrics", "", nil)
	for _, want := range []string{`ostask_http_requests_total{code="200",route="GET /v1/kinds"} 1`,
		`ostask_http_requests_total{code="503",route="GET /readyz"} 1`, "ostask_http_request_duration_seconds_bucket",
		`ostask_service_token_lookups_total{outcome="valid"}`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }

func TestUnknownPathsAndMethods(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/nothing", e.demo, nil)
	if r.code != 404 || r.apiErr(t).Code != "not_found" {
		t.Fatalf("unknown path: %d %s", r.code, r.body)
	}
	r = e.do("DELETE", "/v1/tasks", e.demo, nil)
	if r.code != 405 || r.apiErr(t).Code != "method_not_allowed" || strings.Join(r.header.Values("Allow"), ",") != "GET,POST" {
		t.Fatalf("DELETE /v1/tasks: %d %v %s", r.code, r.header, r.body)
	}
	if r := e.do("GET", "/", "", nil); r.code != 404 {
		t.Fatalf("/ without a UI: %d", r.code)
	}
	ui := newEnv(t, func(c *service.Config) {
		c.UI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("dashboard " + r.URL.Path)) })
	})
	for _, p := range []string{"/", "/tasks/abc"} {
		if r := ui.do("GET", p, "", nil); r.code != 200 || string(r.body) != "dashboard "+p {
			t.Fatalf("UI at %s: %d %s", p, r.code, r.body)
		}
	}
	if r := ui.do("GET", "/v1/nothing", "", nil); r.code != 404 || r.apiErr(t).Code != "not_found" {
		t.Fatalf("API 404 with a UI: %d %s", r.code, r.body)
	}
	_ = httptest.NewRecorder
}
