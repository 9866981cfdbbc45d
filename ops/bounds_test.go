package ops_test

import (
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

// silentServer accepts connections on loopback and never answers. It
// reports how many it accepted; Close drops them all.
type silentServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newSilentServer(t *testing.T) *silentServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *silentServer) URL() string { return "http://" + s.ln.Addr().String() + "/v3" }

func (s *silentServer) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *silentServer) Close() {
	_ = s.ln.Close()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}

// Against an endpoint that accepts connections and never answers, Dial
// fails with an UnresponsiveError: each request gives up after
// ResponseTimeout, and the call after 5 requests or when its retry budget
// ends, whichever comes first.
func TestDialUnresponsiveEndpoint(t *testing.T) {
	for _, tt := range []struct {
		name     string
		cfg      ops.Config
		requests int
	}{
		// Retry waits on the instant clock: 5 requests of 50 ms each.
		{"response timeout", ops.Config{ResponseTimeout: 50 * time.Millisecond, Clock: newInstantClock()}, 5},
		// No response timeout to speak of: the budget cuts the first request.
		{"retry budget", ops.Config{ResponseTimeout: time.Hour, RetryBudget: 50 * time.Millisecond}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSilentServer(t)
			ctx := ctxT(t)
			auth := ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: srv.URL(), Username: "u", Password: "p", DomainName: "Default"}}
			cloud, err := ops.Dial(ctx, auth, tt.cfg)
			if err == nil {
				_ = cloud.Close()
				t.Fatal("Dial succeeded against a server that never answers")
			}
			var ue *ops.UnresponsiveError
			if !errors.Is(err, ops.ErrUnresponsive) || !errors.As(err, &ue) || ue.Method != "POST" {
				t.Fatalf("want an UnresponsiveError for the login, got %v", err)
			}
			if ctx.Err() != nil {
				t.Fatal("Dial returned only when the test's context ended")
			}
			if n := srv.Accepted(); n != tt.requests {
				t.Fatalf("%d connections, want %d (one per request)", n, tt.requests)
			}
			t.Log(err)
		})
	}
}

// The documented default bounds: no request waits more than a minute for
// its answer, and no call retries for more than a minute.
func TestDefaultBounds(t *testing.T) {
	c := ops.ConfigDefaults(ops.Config{})
	if c.ResponseTimeout <= 0 || c.ResponseTimeout > time.Minute || c.RetryBudget <= 0 || c.RetryBudget > time.Minute {
		t.Fatalf("defaults: response timeout %s, retry budget %s; want both in (0, 1m]", c.ResponseTimeout, c.RetryBudget)
	}
	for _, bad := range []ops.Config{{ResponseTimeout: -1}, {RetryBudget: -1}} {
		if err := bad.Validate(); !errors.Is(err, ops.ErrInvalidOption) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

// A Keystone that always answers 429 costs Dial one bounded series of
// logins — at most 5, waiting each Retry-After, within the retry budget —
// and not gophercloud's retries times ostask's.
func TestDialPermanent429(t *testing.T) {
	for _, tt := range []struct {
		name       string
		retryAfter time.Duration
		logins     int
		waits      []time.Duration
	}{
		{"attempts bound", 10 * time.Millisecond, 5, nil},
		// 20 s waits: the 60 s budget allows 3 of them.
		{"budget bound", 20 * time.Second, 4, []time.Duration{20 * time.Second, 20 * time.Second, 20 * time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			plan := &cloudsim.FaultPlan{API: cloudsim.APIFaults{Match: "POST /identity", RateLimit: 1, RetryAfter: tt.retryAfter}}
			sim, err := cloudsim.Start(ctx, cloudsim.Config{Faults: plan})
			if err != nil {
				t.Fatal(err)
			}
			defer sim.Close()
			clock := newInstantClock()
			cloud, err := ops.Dial(ctx, authFor(sim, false), ops.Config{Clock: clock})
			if err == nil {
				_ = cloud.Close()
				t.Fatal("Dial succeeded against a Keystone that always answers 429")
			}
			if !gophercloud.ResponseCodeIs(err, 429) {
				t.Fatalf("want the 429, got %v", err)
			}
			if n := sim.Counters().Get("POST", "/identity/v3/auth/tokens"); n != int64(tt.logins) {
				t.Fatalf("%d logins, want %d", n, tt.logins)
			}
			waits := clock.Waits()
			for _, w := range waits {
				if w < tt.retryAfter {
					t.Fatalf("waited %s, less than Retry-After %s", w, tt.retryAfter)
				}
			}
			if tt.waits != nil && !slices.Equal(waits, tt.waits) {
				t.Fatalf("waits %v, want %v", waits, tt.waits)
			}
		})
	}
}

// A create whose answer never came (the API is slow: it carries the
// request out after the client gave up waiting) is looked for under its
// key for a whole response timeout before it is sent again, so the late
// server is adopted, not doubled — even when the wait spent the call's
// retry budget.
func TestUnansweredCreateCarriedOutLate(t *testing.T) {
	ctx := ctxT(t)
	plan := &cloudsim.FaultPlan{API: cloudsim.APIFaults{Match: "POST /compute/v2.1/servers", Slow: 1, SlowDelay: 150 * time.Millisecond}}
	sim, err := cloudsim.Start(ctx, cloudsim.Config{Faults: plan})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	// The first answer is awaited 100 ms: the budget (100 ms) is spent
	// by then, so only the check's own budget lets it look.
	cloud, err := ops.Dial(ctx, authFor(sim, false), ops.Config{MinInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond,
		ResponseTimeout: 100 * time.Millisecond, RetryBudget: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cloud.Close()
	op, err := cloud.CreateServer(ctx, serverOpts("late"))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := op.Result(ctx); err != nil {
		t.Fatal(err)
	}
	if !op.Initial().Recovered {
		t.Errorf("initial %+v: the create's answer was never received, so it must say Recovered", op.Initial())
	}
	if n := sim.Counters().Get("POST", "/compute/v2.1/servers"); n != 1 {
		t.Errorf("%d POSTs; the first was carried out late and must not have been sent again", n)
	}
	var named int
	for _, s := range sim.Servers(false) {
		if s.Name == "late" {
			named++
		}
	}
	if named != 1 {
		t.Errorf("%d servers named late, want 1", named)
	}
}
