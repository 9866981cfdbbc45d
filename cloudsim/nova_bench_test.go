package cloudsim_test

import (
	"encoding/json"
	"fmt"
	"net/url"
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
