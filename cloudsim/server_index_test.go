package cloudsim_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/ostask/ostask/cloudsim"
)

// Deleted servers are kept for changes-since up to MaxDeletedServers: the
// oldest deletions are forgotten first, so churn cannot grow memory
// without bound; the live servers are untouched.
func TestDeletedServersRetentionCap(t *testing.T) {
	clock := cloudsim.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	sim, err := cloudsim.New(cloudsim.Config{Clock: clock, MaxDeletedServers: 3})
	if err != nil {
		t.Fatal(err)
	}
	e := &handlerEnv{sim: sim, h: sim.Handler()}
	e.token = login(t, e, "demo")
	since := url.QueryEscape(clock.Now().Add(-time.Minute).Format(time.RFC3339))
	live := sim.NovaSeedServersForTest(2)
	var deleted []string
	for range 5 {
		clock.Advance(time.Second)
		ids := sim.NovaSeedServersForTest(1)
		sim.NovaDeleteServersForTest(ids)
		deleted = append(deleted, ids[0])
	}
	listed := func(path string) []string {
		rec := e.serve("GET", path, "2.60", nil)
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		return idsOf(t, rec.Body.Bytes())
	}
	got := listed("/compute/v2.1/servers?changes-since=" + since)
	want := append(slices.Clone(deleted[2:]), live...)
	if !sameIDs(got, want) {
		t.Fatalf("changes-since lists %v, want the 3 newest deletions and the live servers %v", got, want)
	}
	if got := listed("/compute/v2.1/servers"); !sameIDs(got, live) {
		t.Fatalf("plain list %v, want %v", got, live)
	}
	if n := len(sim.Servers(true)); n != 5 {
		t.Fatalf("the simulator holds %d servers, want 2 live + 3 deleted", n)
	}
	// Retention by time: an hour past DeletedRetention, none is left.
	clock.Advance(cloudsim.DefaultDeletedRetention + time.Hour)
	e.token = login(t, e, "demo") // the token expired too
	if got := listed("/compute/v2.1/servers?changes-since=" + since); !sameIDs(got, live) {
		t.Fatalf("after the retention: %v, want only the live %v", got, live)
	}
}

func sameIDs(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// Listing pages through live servers correctly while others are deleted
// around them: the index drops deleted servers without disturbing the
// marker order.
func TestServerListSkipsDeletedRows(t *testing.T) {
	clock := cloudsim.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	sim, err := cloudsim.New(cloudsim.Config{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	e := &handlerEnv{sim: sim, h: sim.Handler()}
	e.token = login(t, e, "demo")
	ids := sim.NovaSeedServersForTest(200)
	var keep []string
	for i, id := range ids {
		if i%3 == 0 {
			keep = append(keep, id)
		} else {
			sim.NovaDeleteServersForTest([]string{id})
		}
	}
	var got []string
	next := "/compute/v2.1/servers?limit=7"
	for pages := 0; next != "" && pages < 100; pages++ {
		rec := e.serve("GET", next, "2.60", nil)
		page := idsOf(t, rec.Body.Bytes())
		got = append(got, page...)
		next = ""
		if len(page) == 7 {
			next = "/compute/v2.1/servers?limit=7&marker=" + page[6]
		}
	}
	slices.Reverse(keep) // newest first
	if !slices.Equal(got, keep) {
		t.Fatalf("paged %d servers, want the %d kept ones newest first", len(got), len(keep))
	}
}

func login(t *testing.T, e *handlerEnv, user string) string {
	t.Helper()
	auth := fmt.Sprintf(`{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":%q,"domain":{"id":"default"},"password":"secret"}}},
		"scope":{"project":{"name":%q,"domain":{"id":"default"}}}}}`, user, user)
	e.token = ""
	rec := e.serve("POST", "/identity/v3/auth/tokens?nocatalog", "", []byte(auth))
	if rec.Code != 201 {
		t.Fatalf("auth: %d %s", rec.Code, rec.Body)
	}
	return rec.Header().Get("X-Subject-Token")
}

// idsOf returns the ids of a servers list body, in order.
func idsOf(t *testing.T, body []byte) []string {
	t.Helper()
	var out struct{ Servers []struct{ ID string } }
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	ids := make([]string, len(out.Servers))
	for i, s := range out.Servers {
		ids[i] = s.ID
	}
	return ids
}
