package cloudsim_test

import (
	"fmt"
	"net/url"
	"testing"
)

// A changes-since poller asks for the oldest changes first
// (sort_key=updated_at&sort_dir=asc) and pages through with markers.
func TestServerListSortByUpdatedAsc(t *testing.T) {
	e := newNovaEnv(t, nil)
	var ids []string
	for i := range 5 {
		ids = append(ids, e.active(fmt.Sprintf("s%d", i))) // settles: distinct updated_at seconds
	}
	// Touch the first server last: it must come last in updated_at order.
	if r := e.do("POST", "/compute/v2.1/servers/"+ids[0]+"/action", e.demoTok, "2.60", `{"os-stop": null}`); r.code != 202 {
		t.Fatalf("stop: %d %s", r.code, r.text)
	}
	since := url.QueryEscape("2026-03-01T00:00:00Z")
	var got []string
	next := "/compute/v2.1/servers/detail?changes-since=" + since + "&sort_key=updated_at&sort_dir=asc&limit=2"
	for pages := 0; next != "" && pages < 10; pages++ {
		r := e.do("GET", next, e.demoTok, "2.60", nil)
		if r.code != 200 {
			t.Fatalf("list: %d %s", r.code, r.text)
		}
		for _, s := range r.body["servers"].([]any) {
			got = append(got, s.(map[string]any)["id"].(string))
		}
		next = ""
		if links, ok := r.body["servers_links"].([]any); ok {
			u, _ := url.Parse(links[0].(map[string]any)["href"].(string))
			next = u.RequestURI()
		}
	}
	want := append(append([]string{}, ids[1:]...), ids[0])
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if r := e.do("GET", "/compute/v2.1/servers/detail?sort_key=bogus", e.demoTok, "2.60", nil); r.code != 400 {
		t.Fatalf("unknown sort key: %d, want 400", r.code)
	}
}
