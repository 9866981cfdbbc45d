package cloudsim_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/ostask/ostask/cloudsim"
)

// BenchmarkChangesSince lists the 10 servers changed since a point in time
// out of 1,000 / 10,000 / 50,000 through the HTTP handler. The cost must
// follow the changed rows, not the fleet.
func BenchmarkChangesSince(b *testing.B) {
	for _, total := range []int{1000, 10000, 50000} {
		b.Run(fmt.Sprintf("servers=%d", total), func(b *testing.B) {
			clock := cloudsim.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			e := newHandlerEnv(b, clock)
			ids := e.sim.NovaSeedServersForTest(total)
			clock.Advance(10 * time.Second)
			since := clock.Now()
			e.sim.NovaTouchServersForTest(ids[:10])
			path := "/compute/v2.1/servers/detail?changes-since=" + url.QueryEscape(since.Format(time.RFC3339))
			rec := e.serve("GET", path, "2.100", nil)
			if rec.Code != 200 {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rec := e.serve("GET", path, "2.100", nil)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}

func TestChangesSinceReturnsOnlyChanged(t *testing.T) {
	clock := cloudsim.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	e := newHandlerEnv(t, clock)
	ids := e.sim.NovaSeedServersForTest(2000)
	clock.Advance(10 * time.Second)
	since := clock.Now()
	e.sim.NovaTouchServersForTest(ids[:10])
	rec := e.serve("GET", "/compute/v2.1/servers?changes-since="+url.QueryEscape(since.Format(time.RFC3339)), "", nil)
	if rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	var out struct{ Servers []struct{ ID string } }
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out.Servers) != 10 {
		t.Fatalf("%d servers, %v", len(out.Servers), err)
	}
}

// BenchmarkServerListAfterDeletes lists a project's 100 live servers
// (all of them, and the 10 oldest-changed) after 0, 10,000 and 49,000
// other servers were created and deleted (and are retained for
// changes-since). A list must cost what the live servers cost, whatever
// the number of deleted rows.
func BenchmarkServerListAfterDeletes(b *testing.B) {
	for _, deleted := range []int{0, 10000, 49000} {
		for _, q := range []string{"", "?limit=10&sort_key=updated_at&sort_dir=asc"} {
			b.Run(fmt.Sprintf("deleted=%d/query=%q", deleted, q), func(b *testing.B) {
				clock := cloudsim.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
				e := newHandlerEnv(b, clock)
				for done := 0; done < deleted; done += 1000 {
					e.sim.NovaDeleteServersForTest(e.sim.NovaSeedServersForTest(min(1000, deleted-done)))
				}
				e.sim.NovaSeedServersForTest(100)
				path := "/compute/v2.1/servers" + q
				var out struct{ Servers []struct{ ID string } }
				rec := e.serve("GET", path, "2.100", nil)
				if err := json.Unmarshal(rec.Body.Bytes(), &out); rec.Code != 200 || err != nil || len(out.Servers) != min(100, limitOf(path)) {
					b.Fatalf("%d: %d servers, %v", rec.Code, len(out.Servers), err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if rec := e.serve("GET", path, "2.100", nil); rec.Code != 200 {
						b.Fatal(rec.Code)
					}
				}
			})
		}
	}
}

func limitOf(path string) int {
	u, _ := url.Parse(path)
	if n, err := strconv.Atoi(u.Query().Get("limit")); err == nil {
		return n
	}
	return 1000
}
