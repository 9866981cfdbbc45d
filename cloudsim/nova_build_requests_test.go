package cloudsim_test

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/ostask/ostask/cloudsim"
)

// buildRequestTiming is stepTiming with Nova's build-request phase on: a
// new server is a build request for 10 s, then walks on one step a second.
func buildRequestTiming() *cloudsim.Timing {
	t := stepTiming()
	t.BuildRequests = true
	t.BuildRequestPhase = 10 * time.Second
	return t
}

const typeErrorMessage = "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.\n<class 'TypeError'>"

// createAt creates a server and moves the clock one second, so that the
// next one has a later created_at (Nova's DATETIME has whole seconds).
func (e *novaEnv) createAt(name string) string {
	id := e.create(name)
	e.tick(time.Second)
	return id
}

// pageThrough follows servers_links from path (at most 8 pages), calling
// between(i) before page i > 0 is requested. It returns the page sizes and
// the ids in the order listed; a non-200 page ends it with its code.
func (e *novaEnv) pageThrough(path string, between func(i int)) (sizes []int, ids []string, code int) {
	e.t.Helper()
	next := path
	for i := 0; next != "" && i < 8; i++ {
		if i > 0 && between != nil {
			between(i)
		}
		r := e.do("GET", next, e.demoTok, "2.60", nil)
		if r.code != 200 {
			return sizes, ids, r.code
		}
		list := r.body["servers"].([]any)
		sizes = append(sizes, len(list))
		for _, s := range list {
			ids = append(ids, s.(map[string]any)["id"].(string))
		}
		next = ""
		if links, ok := r.body["servers_links"].([]any); ok {
			u, _ := url.Parse(links[0].(map[string]any)["href"].(string))
			next = u.RequestURI()
		}
	}
	return sizes, ids, 200
}

func (e *novaEnv) schedule(id string) {
	e.t.Helper()
	if err := e.sim.ScheduleBuildRequest(id); err != nil {
		e.t.Fatalf("schedule %s: %v", id, err)
	}
}

// While two or more servers of a project are build requests, a list sorted
// by updated_at answers 500 (Nova sorts build requests in Python and their
// updated_at is None); other sorts answer 200, and so does the same list
// once at most one build request is left, or when every build request has
// an updated_at.
func TestBuildRequestSortByUpdatedAt(t *testing.T) {
	const detail = "/compute/v2.1/servers/detail"
	future := url.QueryEscape("2030-01-01T00:00:00Z")
	tests := []struct {
		name  string
		setup func(e *novaEnv, ids []string) // after three servers were created
		query string
		code  int
		count int // servers listed when code is 200
	}{
		{"updated_at asc", nil, "?sort_key=updated_at&sort_dir=asc", 500, 0},
		{"updated_at desc", nil, "?sort_key=updated_at", 500, 0},
		{"updated_at with changes-since", nil, "?changes-since=" + future + "&sort_key=updated_at&sort_dir=asc", 500, 0},
		{"launched_at", nil, "?sort_key=launched_at", 500, 0},
		{"created_at", nil, "?sort_key=created_at&sort_dir=asc", 200, 3},
		{"no sort", nil, "", 200, 3},
		{"display_name", nil, "?sort_key=display_name", 200, 3},
		// changes-since does not apply to build requests: all three are listed.
		{"changes-since in the future", nil, "?changes-since=" + future, 200, 3},
		{"name filter leaves one", nil, "?name=^br-0$&sort_key=updated_at", 200, 1},
		{"one build request left", func(e *novaEnv, ids []string) { e.schedule(ids[0]); e.schedule(ids[1]) },
			"?sort_key=updated_at&sort_dir=asc", 200, 3},
		{"all scheduled", func(e *novaEnv, ids []string) {
			for _, id := range ids {
				e.schedule(id)
			}
			e.settle()
		}, "?sort_key=updated_at&sort_dir=asc", 200, 3},
		{"every build request updated", func(e *novaEnv, ids []string) {
			for i, id := range ids {
				if r := e.do("PUT", "/compute/v2.1/servers/"+id, e.demoTok, "2.60", map[string]any{"server": map[string]any{"name": fmt.Sprintf("br-%d", i)}}); r.code != 200 {
					t.Fatalf("rename: %d %s", r.code, r.text)
				}
			}
		}, "?sort_key=updated_at&sort_dir=asc", 200, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newNovaEnvTiming(t, buildRequestTiming(), nil)
			var ids []string
			for i := range 3 {
				ids = append(ids, e.createAt(fmt.Sprintf("br-%d", i)))
			}
			if got := e.sim.BuildRequests(); !slices.Equal(got, ids) {
				t.Fatalf("build requests %v, want %v", got, ids)
			}
			if tc.setup != nil {
				tc.setup(e, ids)
			}
			r := e.do("GET", detail+tc.query, e.demoTok, "2.60", nil)
			if r.code != tc.code {
				t.Fatalf("%s: %d %s, want %d", tc.query, r.code, r.text, tc.code)
			}
			if tc.code == 500 {
				if r.body["computeFault"] == nil || r.errMessage() != typeErrorMessage {
					t.Fatalf("500 body %s", r.text)
				}
				return
			}
			if n := len(r.body["servers"].([]any)); n != tc.count {
				t.Fatalf("%d servers listed, want %d: %s", n, tc.count, r.text)
			}
		})
	}
}

// A build request shows BUILD/scheduling with no host, its "updated" is
// the time of the request, and it moves to its cell when its phase ends.
func TestBuildRequestPhase(t *testing.T) {
	e := newNovaEnvTiming(t, buildRequestTiming(), nil)
	id := e.create("phase")
	e.tick(4 * time.Second)
	srv := e.get(id)
	if srv.Status != "BUILD" || srv.TaskState != "scheduling" || srv.Host != "" {
		t.Fatalf("build request: %s/%s host %q", srv.Status, srv.TaskState, srv.Host)
	}
	if !srv.Updated.Equal(e.clock.Now()) {
		t.Errorf("updated %v, want the time of the request %v", srv.Updated, e.clock.Now())
	}
	if info := e.sim.Servers(false); len(info) != 1 || !info[0].BuildRequest {
		t.Fatalf("ServerInfo %+v, want one build request", info)
	}
	e.tick(6 * time.Second) // the phase ends
	if got := e.sim.BuildRequests(); len(got) != 0 {
		t.Fatalf("build requests after the phase: %v", got)
	}
	e.wantState(id, "BUILD", "scheduling") // in its cell, not yet on a host
	e.settle()
	e.wantState(id, "ACTIVE", "")
	if err := e.sim.ScheduleBuildRequest(id); !errors.Is(err, cloudsim.ErrNoBuildRequest) {
		t.Fatalf("ScheduleBuildRequest of an ACTIVE server: %v", err)
	}
}

// A scheduling failure buries the server in ERROR (no host) when its
// build-request phase ends.
func TestBuildRequestNoValidHost(t *testing.T) {
	plan := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerCreate, Name: "doomed", Kind: cloudsim.FaultError}}}
	e := newNovaEnvTiming(t, buildRequestTiming(), plan)
	id := e.create("doomed")
	e.tick(5 * time.Second)
	e.wantState(id, "BUILD", "scheduling")
	e.tick(5 * time.Second)
	srv := e.get(id)
	if srv.Status != "ERROR" || srv.Host != "" || srv.Fault.Message == "" {
		t.Fatalf("after the phase: %s host %q fault %+v", srv.Status, srv.Host, srv.Fault)
	}
}

// Deleting a build request removes the server at once and leaves no
// record: GET answers 404 and changes-since never shows it DELETED.
func TestBuildRequestDelete(t *testing.T) {
	e := newNovaEnvTiming(t, buildRequestTiming(), nil)
	since := url.QueryEscape(e.clock.Now().Add(-time.Minute).Format(time.RFC3339))
	id := e.create("gone")
	if r := e.do("DELETE", "/compute/v2.1/servers/"+id, e.demoTok, "2.60", nil); r.code != 204 {
		t.Fatalf("delete: %d %s", r.code, r.text)
	}
	if r := e.do("GET", "/compute/v2.1/servers/"+id, e.demoTok, "2.60", nil); r.code != 404 {
		t.Fatalf("GET after delete: %d", r.code)
	}
	e.settle()
	e.tick(10 * time.Second)
	r := e.do("GET", "/compute/v2.1/servers/detail?changes-since="+since, e.demoTok, "2.60", nil)
	if n := len(r.body["servers"].([]any)); r.code != 200 || n != 0 {
		t.Fatalf("changes-since after deleting a build request: %d %s", r.code, r.text)
	}
	if got := e.sim.Servers(true); len(got) != 0 {
		t.Fatalf("the simulator still holds %+v", got)
	}
}

// Marker paging while servers move from build requests to their cell:
// Nova looks the marker up among the build requests first. A marker that
// is the last build request makes the next page restart the cells from
// their start (a server is listed twice); a marker that moved to its cell
// drops the build requests from the page (servers are skipped). Once no
// build request is left, paging lists every server once.
func TestBuildRequestPaging(t *testing.T) {
	const list = "/compute/v2.1/servers/detail?limit=1"
	t.Run("repeats", func(t *testing.T) {
		e := newNovaEnvTiming(t, buildRequestTiming(), nil)
		a, b, c := e.createAt("a"), e.createAt("b"), e.createAt("c")
		// Newest first: c, b, a. c moves to its cell after the second page.
		sizes, ids, code := e.pageThrough(list, func(i int) {
			if i == 2 {
				e.schedule(c)
			}
		})
		if code != 200 || !slices.Equal(sizes, []int{1, 1, 1, 1, 0}) || !slices.Equal(ids, []string{c, b, a, c}) {
			t.Fatalf("pages %v ids %v (code %d), want [1 1 1 1 0] [c b a c] with c=%s b=%s a=%s", sizes, ids, code, c, b, a)
		}
	})
	t.Run("skips", func(t *testing.T) {
		e := newNovaEnvTiming(t, buildRequestTiming(), nil)
		x := e.createAt("x")
		e.schedule(x)
		e.settle() // x is ACTIVE in its cell
		y, z := e.createAt("y"), e.createAt("z")
		// z moves after the first page: the next page continues in the
		// cell after z, and y, still a build request, is never listed.
		sizes, ids, code := e.pageThrough(list, func(i int) {
			if i == 1 {
				e.schedule(z)
			}
		})
		if code != 200 || !slices.Equal(sizes, []int{1, 1, 0}) || !slices.Equal(ids, []string{z, x}) {
			t.Fatalf("pages %v ids %v (code %d), want [1 1 0] [z x] (y=%s skipped)", sizes, ids, code, y)
		}
	})
	t.Run("stable without build requests", func(t *testing.T) {
		e := newNovaEnvTiming(t, buildRequestTiming(), nil)
		a, b, c := e.createAt("a"), e.createAt("b"), e.createAt("c")
		e.tick(10 * time.Second) // every phase ends
		sizes, ids, code := e.pageThrough(list, func(int) { e.tick(time.Second) })
		if code != 200 || !slices.Equal(sizes, []int{1, 1, 1, 0}) || !slices.Equal(ids, []string{c, b, a}) {
			t.Fatalf("pages %v ids %v (code %d), want [1 1 1 0] [c b a]", sizes, ids, code)
		}
	})
	t.Run("stable while nothing moves", func(t *testing.T) {
		e := newNovaEnvTiming(t, buildRequestTiming(), nil)
		a, b, c := e.createAt("a"), e.createAt("b"), e.createAt("c")
		sizes, ids, code := e.pageThrough(list, nil)
		if code != 200 || !slices.Equal(sizes, []int{1, 1, 1, 0}) || !slices.Equal(ids, []string{c, b, a}) {
			t.Fatalf("pages %v ids %v (code %d), want [1 1 1 0] [c b a]", sizes, ids, code)
		}
	})
}
