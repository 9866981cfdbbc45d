package service_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/service"
	"github.com/ostask/ostask/service/servicetest"
)

// fuzzServer is the service over the in-memory backend with a fixed
// token, called in process (no network).
func fuzzServer(t testing.TB) (*service.Server, *servicetest.Backend) {
	b := servicetest.New()
	auth := servicetest.Auth{"tok": {Project: service.Ref{ID: "p1", Name: "p"}, ExpiresAt: time.Now().Add(time.Hour)}}
	s, err := service.New(service.Config{Backend: b, Auth: auth, Heartbeat: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

func call(s http.Handler, method, target string, body io.Reader, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://x"+target, body)
	req.Header.Set("X-Auth-Token", "tok")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

// No body makes the service panic or answer 5xx, and whatever it accepts
// is a whole, valid task: a known kind, params an object that fits its
// schema, options in bounds. Everything else is refused with nothing
// stored.
func FuzzCreateBody(f *testing.F) {
	for _, seed := range []string{
		`{"kind":"noop"}`, `{"kind":"noop","params":{},"options":{"timeout":"10m","retries":3}}`,
		`{"kind":"server.create","params":{"name":"a","flavor":"1","image":"i"}}`,
		`{"kind":"server.create","params":{"name":"","flavor":1}}`, `{"kind":"noop","options":{"timeout":10}}`,
		`{"kind":"noop","options":null,"params":null}`, `[]`, `null`, `{"kind":"noop"}x`, `{"kind":"\u0000"}`,
		`{"kind":"noop","options":{"timeout":"9999999999h"}}`, `{"kind":"noop","options":{"retries":1e3}}`,
	} {
		f.Add([]byte(seed), "")
	}
	f.Add([]byte(`{"kind":"noop"}`), "key-1")
	s, b := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		before := b.Created()
		w := call(s, "POST", "/v1/tasks", bytes.NewReader(body), "Idempotency-Key", key)
		switch w.Code {
		case 202:
			var task jobs.Task
			if err := json.Unmarshal(w.Body.Bytes(), &task); err != nil {
				t.Fatalf("202 with %s: %v", w.Body, err)
			}
			stored, err := b.Get(t.Context(), task.ID)
			if err != nil {
				t.Fatalf("202 but not stored: %v", err)
			}
			if !slices.ContainsFunc(b.Kinds(), func(k jobs.Kind) bool { return k.Name == stored.Kind }) ||
				len(stored.Params) == 0 || stored.Params[0] != '{' || stored.Options.Retries < 0 ||
				stored.Options.Retries > service.MaxRetries || time.Duration(stored.Options.Timeout) > service.MaxTimeout {
				t.Fatalf("half-valid task stored from %q: %+v", body, stored)
			}
		case 400, 413, 422:
			var e struct{ Error *service.Error }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == nil || e.Error.Code == "" {
				t.Fatalf("%d not in the error shape: %s", w.Code, w.Body)
			}
			if w.Code != 422 && b.Created() != before {
				t.Fatalf("refused with %d but stored", w.Code)
			}
		default:
			t.Fatalf("%d for %q: %s", w.Code, body, w.Body)
		}
	})
}

// No query string or Last-Event-ID makes the list, the resource views or
// the events answer anything but 200 or 400 (or 404 for no task).
func FuzzQuery(f *testing.F) {
	for _, seed := range []string{"", "limit=10&status=running", "kind=noop&marker=x", "limit=-1", "status=%zz",
		"follow=false&resource=server/1", "after=3", "limit=1&limit=2", "marker=" + strings.Repeat("m", 2000)} {
		f.Add(seed, "")
	}
	f.Add("follow=0", "-1")
	s, b := fuzzServer(f)
	for range 3 {
		call(s, "POST", "/v1/tasks", strings.NewReader(`{"kind":"noop"}`))
	}
	page, _ := b.List(f.Context(), jobs.Filter{})
	id := page.Tasks[0].ID
	f.Fuzz(func(t *testing.T, query, lastEventID string) {
		if _, err := url.ParseRequestURI("/v1/tasks?" + query); err != nil || strings.ContainsAny(query, "# ") {
			return // not a query string a client can send
		}
		if strings.Contains(query, "follow") {
			// Streams never end on their own: only their refusals are
			// checked, on the non-following routes' parser (shared).
			query = strings.ReplaceAll(query, "follow", "f")
		}
		for _, path := range []string{"/v1/tasks", "/v1/resources/server/abc/tasks", "/v1/resources/volume/abc/fault",
			"/v1/tasks/" + id + "/events"} {
			w := call(s, "GET", path+"?"+query, nil, "Last-Event-ID", lastEventID)
			if w.Code != 200 && w.Code != 400 && !(w.Code == 404 && strings.HasSuffix(path, "/fault")) {
				t.Fatalf("GET %s?%s: %d %s", path, query, w.Code, w.Body)
			}
		}
	})
}
