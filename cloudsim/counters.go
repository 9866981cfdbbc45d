package cloudsim

import (
	"net/http"
	"sort"
	"strings"
	"sync"
)

// Counters maps a route ("GET /compute/v2.1/servers/detail") to the number
// of requests it received.
type Counters map[string]int64

// Get returns the count of one route given as method and path pattern.
func (c Counters) Get(method, pattern string) int64 { return c[method+" "+pattern] }

// Total is the number of requests to OpenStack routes.
func (c Counters) Total() int64 {
	var n int64
	for k, v := range c {
		if !strings.Contains(k, simAPIPrefix) {
			n += v
		}
	}
	return n
}

// Matching sums the routes whose key contains every one of parts.
func (c Counters) Matching(parts ...string) int64 {
	var n int64
next:
	for k, v := range c {
		for _, p := range parts {
			if !strings.Contains(k, p) {
				continue next
			}
		}
		n += v
	}
	return n
}

// String lists the counters sorted by route.
func (c Counters) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteString(" ")
		b.WriteString(itoa(c[k]))
		b.WriteString("\n")
	}
	return b.String()
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		buf[i] = '-'
	}
	return string(buf[i:])
}

type counters struct {
	mu sync.Mutex
	m  Counters
}

func (c *counters) init() { c.m = Counters{} }

func (c *counters) add(route string) {
	c.mu.Lock()
	c.m[route]++
	c.mu.Unlock()
}

func (c *counters) snapshot() Counters {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(Counters, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

func (c *counters) reset() {
	c.mu.Lock()
	c.m = Counters{}
	c.mu.Unlock()
}

// Counters returns a snapshot of the request counters.
func (s *Sim) Counters() Counters { return s.counters.snapshot() }

// ResetCounters sets every counter to zero.
func (s *Sim) ResetCounters() { s.counters.reset() }

// simAPIPrefix is where the simulator's own endpoints live, outside every
// OpenStack path.
const simAPIPrefix = "/_sim"

func (s *Sim) registerSimAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET "+simAPIPrefix+"/counters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, s.Counters())
	})
	mux.HandleFunc("DELETE "+simAPIPrefix+"/counters", func(w http.ResponseWriter, r *http.Request) {
		s.ResetCounters()
		w.WriteHeader(204)
	})
	mux.HandleFunc("GET "+simAPIPrefix+"/servers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, s.Servers(r.URL.Query().Has("deleted")))
	})
	mux.HandleFunc("GET "+simAPIPrefix+"/volumes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, s.Volumes())
	})
	mux.HandleFunc("GET "+simAPIPrefix+"/images", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, s.Images())
	})
}
