package service_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/retry"
	"github.com/ostask/ostask/service"
)

// clientEnv is env with a client of demo's, over a server that counts
// resumed streams (requests with Last-Event-ID).
func (e *env) client(token string, srv *httptest.Server) *service.Client {
	e.t.Helper()
	if srv == nil {
		srv = e.srv
	}
	c, err := service.NewClient(srv.URL, service.StaticToken(token),
		service.WithReconnect(retry.Policy{MaxAttempts: 5, Initial: time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 2}))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func TestClient(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.client(e.demo, nil)
	task, replayed, err := c.Create(ctx, service.CreateRequest{Kind: "server.create", Params: []byte(serverParams("c"))}, "key-c")
	if err != nil || replayed || task.Status != jobs.Queued {
		t.Fatalf("create: %+v %v %v", task, replayed, err)
	}
	again, replayed, err := c.Create(ctx, service.CreateRequest{Kind: "server.create", Params: []byte(serverParams("c"))}, "key-c")
	if err != nil || !replayed || again.ID != task.ID {
		t.Fatalf("replay: %+v %v %v", again, replayed, err)
	}
	_, _, err = c.Create(ctx, service.CreateRequest{Kind: "server.create", Params: []byte(`{"name":"c"}`)}, "")
	var apiErr *service.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || len(apiErr.Fields) != 2 || apiErr.Fields[0].Field != "params.flavor" {
		t.Fatalf("invalid: %v", err)
	}
	if _, _, err := c.Create(ctx, service.CreateRequest{Kind: "noop"}, "key-c"); !errors.Is(err, jobs.ErrKeyReused) {
		t.Fatalf("reused key: %v", err)
	}
	if got, err := c.Get(ctx, task.ID); err != nil || got.ID != task.ID {
		t.Fatalf("get: %v", err)
	}
	if _, err := c.Get(ctx, "nonesuch"); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
	for range 4 {
		if _, _, err := c.Create(ctx, service.CreateRequest{Kind: "noop"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	var all []jobs.Task
	o := service.ListOptions{Limit: 2}
	for {
		p, err := c.List(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Tasks...)
		if p.Next == "" {
			break
		}
		o.Marker = p.Next
	}
	if len(all) != 5 || all[4].ID != task.ID {
		t.Fatalf("paged %d tasks", len(all))
	}
	if p, err := c.List(ctx, service.ListOptions{Kind: "server.create"}); err != nil || len(p.Tasks) != 1 {
		t.Fatalf("filtered: %v %v", p, err)
	}
	if ks, err := c.Kinds(ctx); err != nil || len(ks) != 2 {
		t.Fatalf("kinds: %v %v", ks, err)
	}
	if id, err := c.Whoami(ctx); err != nil || id.User.Name != "demo" {
		t.Fatalf("whoami: %+v %v", id, err)
	}
	if got, err := c.Cancel(ctx, task.ID); err != nil || got.Status != jobs.Cancelled {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	if _, err := c.Cancel(ctx, task.ID); !errors.Is(err, jobs.ErrFinished) {
		t.Fatalf("cancel again: %v", err)
	}
	if _, err := e.client("bad", nil).Kinds(ctx); !errors.Is(err, service.ErrUnauthorized) {
		t.Fatalf("bad token: %v", err)
	}
	if _, err := c.ResourceFault(ctx, "server", "x"); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("no fault: %v", err)
	}
	if _, err := service.NewClient("ftp://x", nil); err == nil {
		t.Fatal("an ftp URL was taken")
	}
}

// FollowEvents reconnects after a cut with Last-Event-ID: every event
// once, in order, then the final task.
func TestClientFollowReconnects(t *testing.T) {
	e := newEnv(t)
	var resumed atomic.Int32
	s, err := service.New(service.Config{Backend: e.backend, Auth: e.keys, Heartbeat: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Last-Event-ID") != "" {
			resumed.Add(1)
		}
		s.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer srv.CloseClientConnections()
	task := e.create(e.demo, "noop", "{}")
	c := e.client(e.demo, srv)
	got := make(chan jobs.Event, 100)
	var final jobs.Task
	var ferr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		final, ferr = c.FollowEvents(t.Context(), task.ID, 0, func(ev jobs.Event) error {
			got <- ev
			return nil
		})
		close(got)
	}()
	next := func() jobs.Event {
		select {
		case ev := <-got:
			return ev
		case <-time.After(20 * time.Second):
			t.Fatal("no event")
		}
		return jobs.Event{}
	}
	if ev := next(); ev.Seq != 1 {
		t.Fatalf("first %+v", ev)
	}
	must(t, e.backend.Start(task.ID, "w"))
	if ev := next(); ev.Seq != 2 {
		t.Fatalf("second %+v", ev)
	}
	srv.CloseClientConnections() // cut
	must(t, e.backend.Step(task.ID, "noop", "RUNNING", nil, nil))
	must(t, e.backend.Step(task.ID, "noop", "SUCCESS", nil, nil))
	must(t, e.backend.Finish(task.ID, jobs.Succeeded, nil, nil))
	for want := int64(3); want <= 5; want++ {
		if ev := next(); ev.Seq != want {
			t.Fatalf("after the cut: %+v, want seq %d", ev, want)
		}
	}
	wg.Wait()
	if _, more := <-got; more {
		t.Fatal("an event twice")
	}
	if ferr != nil || final.Status != jobs.Succeeded {
		t.Fatalf("follow: %+v %v", final, ferr)
	}
	if resumed.Load() < 1 {
		t.Fatal("the stream was not resumed with Last-Event-ID")
	}
	// A refusal is not retried.
	if _, err := c.FollowEvents(t.Context(), "nonesuch", 0, func(jobs.Event) error { return nil }); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("follow unknown: %v", err)
	}
	// The consumer's error ends it.
	boom := errors.New("boom")
	if _, err := c.FollowEvents(t.Context(), task.ID, 0, func(jobs.Event) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("consumer error: %v", err)
	}
}

func TestClientFollowTasks(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.demo, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan struct{})
	seen := make(chan jobs.Task, 10)
	done := make(chan error, 1)
	go func() {
		done <- c.FollowTasks(ctx, service.ListOptions{Kind: "noop"}, func() error { close(ready); return nil },
			func(t jobs.Task) error { seen <- t; return nil })
	}()
	<-ready
	e.create(e.demo, "server.create", serverParams("x")) // not a noop
	n := e.create(e.demo, "noop", "{}")
	select {
	case got := <-seen:
		if got.ID != n.ID {
			t.Fatalf("saw %s, want %s", got.ID, n.ID)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no change seen")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("FollowTasks ended with %v", err)
	}
}
