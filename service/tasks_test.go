package service_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/jobs"
)

func TestCreateAndGet(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v1/tasks", e.demo, `{"kind":"server.create","params":{"name":"web-1","flavor":"1","image":"cirros"},"options":{"timeout":"10m","retries":3}}`)
	if r.code != 202 {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	task := r.task(t)
	if task.ID == "" || task.Kind != "server.create" || task.Status != jobs.Queued || task.Project != cloudsim.DemoProjectID ||
		task.Options.Retries != 3 || time.Duration(task.Options.Timeout) != 10*time.Minute {
		t.Fatalf("created %+v", task)
	}
	if loc := r.header.Get("Location"); loc != "/v1/tasks/"+task.ID {
		t.Fatalf("Location %q", loc)
	}
	if r.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("a first request marked replayed")
	}
	g := e.do("GET", "/v1/tasks/"+task.ID, e.demo, nil)
	if g.code != 200 {
		t.Fatalf("get: %d %s", g.code, g.body)
	}
	got := g.task(t)
	var params map[string]string
	if err := json.Unmarshal(got.Params, &params); err != nil || params["name"] != "web-1" || got.ID != task.ID {
		t.Fatalf("got %+v (params %s)", got, got.Params)
	}
	if r := e.do("GET", "/v1/tasks/nonesuch", e.demo, nil); r.code != 404 || r.apiErr(t).Code != "not_found" {
		t.Fatalf("unknown task: %d %s", r.code, r.body)
	}
	// params may be left out for a kind that needs none
	if r := e.do("POST", "/v1/tasks", e.demo, `{"kind":"noop"}`); r.code != 202 || string(r.task(t).Params) != "{}" {
		t.Fatalf("noop without params: %d %s", r.code, r.body)
	}
}

func TestCreateValidation(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("k", 256)
	for _, tc := range []struct {
		name, body string
		headers    []string
		fields     []string // the fields named, in order; nil: none
	}{
		{"empty body", ``, nil, nil},
		{"not JSON", `{"kind":`, nil, nil},
		{"not an object", `[1,2]`, nil, nil},
		{"two values", `{"kind":"noop"} {"kind":"noop"}`, nil, nil},
		{"no kind", `{"params":{}}`, nil, []string{"kind"}},
		{"unknown kind", `{"kind":"server.explode","params":{}}`, nil, []string{"kind"}},
		{"kind not a string", `{"kind":7}`, nil, []string{"kind"}},
		{"unknown field", `{"kind":"noop","colour":"red"}`, nil, []string{"colour"}},
		{"unknown option", `{"kind":"noop","options":{"priority":1}}`, nil, []string{"options.priority"}},
		{"params not an object", `{"kind":"noop","params":[1]}`, nil, []string{"params"}},
		{"params missing", `{"kind":"server.create","params":{"name":"x"}}`, nil, []string{"params.flavor", "params.image"}},
		{"params of the wrong type", `{"kind":"server.create","params":{"name":"x","flavor":1,"image":"i"}}`, nil, []string{"params.flavor"}},
		{"params unknown", `{"kind":"noop","params":{"x":1}}`, nil, []string{"params"}},
		{"negative retries", `{"kind":"noop","options":{"retries":-1}}`, nil, []string{"options.retries"}},
		{"too many retries", `{"kind":"noop","options":{"retries":1000}}`, nil, []string{"options.retries"}},
		{"bad timeout", `{"kind":"noop","options":{"timeout":"soon"}}`, nil, []string{"options.timeout"}},
		{"negative timeout", `{"kind":"noop","options":{"timeout":"-1s"}}`, nil, []string{"options.timeout"}},
		{"timeout a number", `{"kind":"noop","options":{"timeout":10}}`, nil, []string{"options.timeout"}},
		{"huge timeout", `{"kind":"noop","options":{"timeout":"10000h"}}`, nil, []string{"options.timeout"}},
		{"long key", `{"kind":"noop"}`, []string{"Idempotency-Key", long}, []string{"Idempotency-Key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/v1/tasks", e.demo, tc.body, tc.headers...)
			if r.code != 400 {
				t.Fatalf("%d %s, want 400", r.code, r.body)
			}
			ae := r.apiErr(t)
			if ae.Code != "bad_request" {
				t.Fatalf("code %q", ae.Code)
			}
			var fields []string
			for _, f := range ae.Fields {
				if f.Message == "" {
					t.Fatalf("field %s without a message", f.Field)
				}
				fields = append(fields, f.Field)
			}
			if strings.Join(fields, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("fields %v, want %v (%s)", fields, tc.fields, r.body)
			}
		})
	}
	if n := e.backend.Created(); n != 0 {
		t.Fatalf("%d tasks stored from invalid requests", n)
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t)
	big := `{"kind":"noop","params":{"pad":"` + strings.Repeat("x", 1<<20) + `"}}`
	r := e.do("POST", "/v1/tasks", e.demo, big)
	if r.code != 413 || r.apiErr(t).Code != "too_large" {
		t.Fatalf("%d %s, want 413", r.code, r.body)
	}
	r = e.do("POST", "/v1/auth/session", "", `{"token":"`+strings.Repeat("x", 1<<20)+`"}`)
	if r.code != 413 {
		t.Fatalf("session: %d, want 413", r.code)
	}
	if e.backend.Created() != 0 {
		t.Fatal("a task was stored")
	}
	// Just under the limit is read (and refused by the kind's schema).
	under := `{"kind":"noop","params":{"pad":"` + strings.Repeat("x", 1<<20-100) + `"}}`
	if r := e.do("POST", "/v1/tasks", e.demo, under); r.code != 400 {
		t.Fatalf("under the limit: %d, want 400", r.code)
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	body := `{"kind":"server.create","params":{"name":"a","flavor":"1","image":"cirros"}}`
	first := e.do("POST", "/v1/tasks", e.demo, body, "Idempotency-Key", "k-1")
	if first.code != 202 {
		t.Fatalf("first: %d %s", first.code, first.body)
	}
	// The same request, with its params in another order: the same task.
	again := e.do("POST", "/v1/tasks", e.demo, `{"params":{"image":"cirros","flavor":"1","name":"a"},"kind":"server.create"}`,
		"Idempotency-Key", "k-1")
	if again.code != 202 || again.header.Get("Idempotent-Replayed") != "true" || again.task(t).ID != first.task(t).ID ||
		again.header.Get("Location") != first.header.Get("Location") {
		t.Fatalf("replay: %d %v %s", again.code, again.header, again.body)
	}
	other := e.do("POST", "/v1/tasks", e.demo, `{"kind":"server.create","params":{"name":"b","flavor":"1","image":"cirros"}}`,
		"Idempotency-Key", "k-1")
	if other.code != 422 || other.apiErr(t).Code != "key_reused" {
		t.Fatalf("key reused: %d %s", other.code, other.body)
	}
	// Keys are per project: alt's k-1 is another task.
	alt := e.do("POST", "/v1/tasks", e.alt, body, "Idempotency-Key", "k-1")
	if alt.code != 202 || alt.header.Get("Idempotent-Replayed") != "" || alt.task(t).ID == first.task(t).ID {
		t.Fatalf("another project's key: %d %s", alt.code, alt.body)
	}
	if n := e.backend.Created(); n != 2 {
		t.Fatalf("%d tasks stored, want 2", n)
	}
}

func TestNoCredentialsForProject(t *testing.T) {
	e := newEnv(t)
	e.backend.SetCredentials(cloudsim.DemoProjectID)
	if r := e.do("POST", "/v1/tasks", e.alt, `{"kind":"noop"}`); r.code != 422 || r.apiErr(t).Code != "no_credentials" {
		t.Fatalf("%d %s, want 422 no_credentials", r.code, r.body)
	}
	e.create(e.demo, "noop", "{}")
}

func TestListPaging(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 7 {
		kind, params := "noop", "{}"
		if i%2 == 0 {
			kind, params = "server.create", serverParams("s")
		}
		ids = append(ids, e.create(e.demo, kind, params).ID)
	}
	e.create(e.alt, "noop", "{}") // never in demo's lists
	var got []string
	link := "/v1/tasks?limit=3"
	pages := 0
	for link != "" {
		r := e.do("GET", link, e.demo, nil)
		if r.code != 200 {
			t.Fatalf("GET %s: %d %s", link, r.code, r.body)
		}
		var p struct {
			Tasks []jobs.Task `json:"tasks"`
			Next  string      `json:"next"`
		}
		r.decode(t, &p)
		for _, task := range p.Tasks {
			got = append(got, task.ID)
		}
		if p.Next != "" {
			u, err := url.Parse(p.Next)
			if err != nil || u.Path != "/v1/tasks" || u.Query().Get("limit") != "3" || u.Query().Get("marker") != p.Tasks[len(p.Tasks)-1].ID {
				t.Fatalf("next link %q", p.Next)
			}
			if len(p.Tasks) != 3 {
				t.Fatalf("a page of %d before the last", len(p.Tasks))
			}
		}
		link = p.Next
		pages++
	}
	if pages != 3 || len(got) != 7 {
		t.Fatalf("%d pages, %d tasks, want 3 and 7", pages, len(got))
	}
	for i, id := range got {
		if id != ids[len(ids)-1-i] {
			t.Fatalf("order %v, want newest first of %v", got, ids)
		}
	}
	// A filter is kept in the next link.
	r := e.do("GET", "/v1/tasks?kind=server.create&limit=2", e.demo, nil)
	var p struct {
		Tasks []jobs.Task `json:"tasks"`
		Next  string      `json:"next"`
	}
	r.decode(t, &p)
	if len(p.Tasks) != 2 || !strings.Contains(p.Next, "kind=server.create") {
		t.Fatalf("filtered page: %s", r.body)
	}
	r = e.do("GET", p.Next, e.demo, nil)
	p.Next = ""
	r.decode(t, &p)
	if len(p.Tasks) != 2 || p.Next != "" || p.Tasks[0].Kind != "server.create" || p.Tasks[1].Kind != "server.create" {
		t.Fatalf("second filtered page: %s", r.body)
	}
	// By status.
	if err := e.backend.Start(ids[0], "w1"); err != nil {
		t.Fatal(err)
	}
	r = e.do("GET", "/v1/tasks?status=running", e.demo, nil)
	r.decode(t, &p)
	if len(p.Tasks) != 1 || p.Tasks[0].ID != ids[0] {
		t.Fatalf("running: %s", r.body)
	}
}

func TestListQueryValidation(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ query, field string }{
		{"limit=0", "limit"}, {"limit=1001", "limit"}, {"limit=ten", "limit"},
		{"status=sleeping", "status"}, {"kind=server.explode", "kind"},
		{"marker=nonesuch", "marker"}, {"colour=red", "colour"}, {"limit=1&limit=2", "limit"},
		{"follow=perhaps", "follow"},
	} {
		r := e.do("GET", "/v1/tasks?"+tc.query, e.demo, nil)
		if r.code != 400 {
			t.Errorf("?%s: %d %s, want 400", tc.query, r.code, r.body)
			continue
		}
		if ae := r.apiErr(t); len(ae.Fields) != 1 || ae.Fields[0].Field != tc.field {
			t.Errorf("?%s: fields %+v, want %s", tc.query, ae.Fields, tc.field)
		}
	}
	for _, q := range []string{"after=-1", "after=x", "colour=red"} {
		task := e.create(e.demo, "noop", "{}")
		if r := e.do("GET", "/v1/tasks/"+task.ID+"/events?"+q, e.demo, nil); r.code != 400 {
			t.Errorf("events ?%s: %d, want 400", q, r.code)
		}
	}
	if r := e.do("GET", "/v1/resources/server/x/tasks?limit=0", e.demo, nil); r.code != 400 {
		t.Errorf("resource history limit=0: %d", r.code)
	}
}

func TestResourceViews(t *testing.T) {
	e := newEnv(t)
	const srv = "5b1c6f3e-0000-4000-8000-000000000001"
	made := e.create(e.demo, "server.create", serverParams("a"))
	failed := e.create(e.demo, "server.create", serverParams("b"))
	other := e.create(e.demo, "noop", "{}")
	altTask := e.create(e.alt, "server.create", serverParams("c"))
	for _, id := range []string{made.ID, failed.ID, altTask.ID} {
		if err := e.backend.AddResource(id, jobs.Resource{Type: "server", ID: srv}); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.do("GET", "/v1/resources/server/"+srv+"/fault", e.demo, nil); r.code != 404 {
		t.Fatalf("fault before any: %d %s", r.code, r.body)
	}
	must(t, e.backend.Start(failed.ID, "w"))
	must(t, e.backend.Finish(failed.ID, jobs.Reverted, nil, &jobs.Error{Message: "boom", Fault: "No valid host", Code: 500,
		RequestID: "req-1", Details: &jobs.ErrorDetails{Raw: "raw body", Stack: "stack"}}))
	r := e.do("GET", "/v1/resources/server/"+srv+"/tasks", e.demo, nil)
	var p struct {
		Tasks []jobs.Task `json:"tasks"`
	}
	r.decode(t, &p)
	if r.code != 200 || len(p.Tasks) != 2 || p.Tasks[0].ID != failed.ID || p.Tasks[1].ID != made.ID {
		t.Fatalf("history: %d %s", r.code, r.body)
	}
	_ = other
	r = e.do("GET", "/v1/resources/server/"+srv+"/fault", e.demo, nil)
	if r.code != 200 {
		t.Fatalf("fault: %d %s", r.code, r.body)
	}
	f := r.task(t)
	if f.ID != failed.ID || f.Error == nil || f.Error.Fault != "No valid host" || f.Error.RequestID != "req-1" || f.Error.Details != nil {
		t.Fatalf("fault for a member: %s", r.body)
	}
	if f := e.do("GET", "/v1/resources/server/"+srv+"/fault", e.admin, nil).task(t); f.Error == nil || f.Error.Details == nil || f.Error.Details.Raw != "raw body" {
		t.Fatalf("fault for an admin: %+v", f.Error)
	}
	// alt sees its own task only, and no fault.
	r = e.do("GET", "/v1/resources/server/"+srv+"/tasks", e.alt, nil)
	r.decode(t, &p)
	if len(p.Tasks) != 1 || p.Tasks[0].ID != altTask.ID {
		t.Fatalf("alt's history: %s", r.body)
	}
	if r := e.do("GET", "/v1/resources/server/"+srv+"/fault", e.alt, nil); r.code != 404 {
		t.Fatalf("alt's fault: %d", r.code)
	}
	// The list's resource filter takes an id or type/id.
	for _, q := range []string{srv, "server/" + srv} {
		r = e.do("GET", "/v1/tasks?resource="+url.QueryEscape(q), e.demo, nil)
		r.decode(t, &p)
		if len(p.Tasks) != 2 {
			t.Fatalf("?resource=%s: %s", q, r.body)
		}
	}
	if r := e.do("GET", "/v1/resources/flavor/1/tasks", e.demo, nil); r.code != 400 || r.apiErr(t).Fields[0].Field != "type" {
		t.Fatalf("unknown type: %d %s", r.code, r.body)
	}
}

func TestKindsAndGraph(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/kinds", e.demo, nil)
	var ks struct {
		Kinds []jobs.Kind `json:"kinds"`
	}
	r.decode(t, &ks)
	if r.code != 200 || len(ks.Kinds) != 2 || ks.Kinds[1].Name != "server.create" || !json.Valid(ks.Kinds[1].Schema) {
		t.Fatalf("kinds: %d %s", r.code, r.body)
	}
	task := e.create(e.demo, "server.create", serverParams("g"))
	r = e.do("GET", "/v1/tasks/"+task.ID+"/graph", e.demo, nil)
	if r.code != 200 || string(r.body) != "{\"nodes\":[],\"edges\":[]}\n" {
		t.Fatalf("empty graph: %d %s", r.code, r.body)
	}
	must(t, e.backend.SetGraph(task.ID, []string{"create", "wait"}, []jobs.Edge{{From: "create", To: "wait"}}))
	must(t, e.backend.Start(task.ID, "w"))
	must(t, e.backend.Step(task.ID, "create", "RUNNING", nil, nil))
	var g jobs.Graph
	e.do("GET", "/v1/tasks/"+task.ID+"/graph", e.demo, nil).decode(t, &g)
	if len(g.Nodes) != 2 || g.Nodes[0].State != "RUNNING" || g.Nodes[1].State != "PENDING" || len(g.Edges) != 1 {
		t.Fatalf("graph %+v", g)
	}
	if got := e.do("GET", "/v1/tasks/"+task.ID, e.demo, nil).task(t); got.Progress.Total != 2 || got.Progress.Current != "create" {
		t.Fatalf("progress %+v", got.Progress)
	}
}

func TestCancelAtEachStage(t *testing.T) {
	e := newEnv(t)
	cancel := func(id, token string) resp { return e.do("POST", "/v1/tasks/"+id+"/cancel", token, nil) }

	queued := e.create(e.demo, "noop", "{}")
	r := cancel(queued.ID, e.demo)
	if got := r.task(t); r.code != 202 || got.Status != jobs.Cancelled || !got.CancelRequested || got.FinishedAt == nil {
		t.Fatalf("cancel queued: %d %s", r.code, r.body)
	}

	running := e.create(e.demo, "noop", "{}")
	must(t, e.backend.Start(running.ID, "w"))
	r = cancel(running.ID, e.demo)
	if got := r.task(t); r.code != 202 || got.Status != jobs.Reverting || !got.CancelRequested {
		t.Fatalf("cancel running: %d %s", r.code, r.body)
	}
	// Cancelling again while it reverts is accepted (nothing more to do).
	if r := cancel(running.ID, e.demo); r.code != 202 || r.task(t).Status != jobs.Reverting {
		t.Fatalf("cancel reverting: %d %s", r.code, r.body)
	}
	must(t, e.backend.Finish(running.ID, jobs.Cancelled, nil, nil))
	if got := e.do("GET", "/v1/tasks/"+running.ID, e.demo, nil).task(t); got.Status != jobs.Cancelled {
		t.Fatalf("after revert: %s", got.Status)
	}

	for _, st := range []jobs.Status{jobs.Succeeded, jobs.Failed, jobs.Reverted, jobs.Cancelled} {
		task := e.create(e.demo, "noop", "{}")
		must(t, e.backend.Start(task.ID, "w"))
		must(t, e.backend.Finish(task.ID, st, nil, nil))
		if r := cancel(task.ID, e.demo); r.code != 409 || r.apiErr(t).Code != "conflict" {
			t.Fatalf("cancel %s: %d %s, want 409", st, r.code, r.body)
		}
	}

	// Another project's task cannot be cancelled, nor learnt about.
	mine := e.create(e.demo, "noop", "{}")
	if r := cancel(mine.ID, e.alt); r.code != 404 {
		t.Fatalf("alt cancels demo's: %d", r.code)
	}
	if got, _ := e.backend.Get(t.Context(), mine.ID); got.Status != jobs.Queued || got.CancelRequested {
		t.Fatalf("alt's cancel touched demo's task: %+v", got)
	}
	if r := cancel(mine.ID, e.admin); r.code != 202 {
		t.Fatalf("admin cancels: %d", r.code)
	}
	if r := cancel("nonesuch", e.demo); r.code != 404 {
		t.Fatalf("cancel unknown: %d", r.code)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
