package service_test

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/service"
)

func TestEventsFollowAndResume(t *testing.T) {
	e := newEnv(t)
	task := e.create(e.demo, "server.create", serverParams("s"))
	must(t, e.backend.SetGraph(task.ID, []string{"create", "wait"}, nil))
	path := "/v1/tasks/" + task.ID + "/events?follow=true"
	s := e.follow(path, e.demo, "")
	ev, _ := s.next()
	if ev.event != "event" || ev.id != "1" {
		t.Fatalf("first event %+v", ev)
	}
	must(t, e.backend.Start(task.ID, "w1"))
	must(t, e.backend.Step(task.ID, "create", "RUNNING", nil, nil))
	var last string
	for want := int64(2); want <= 3; want++ {
		ev, _ := s.next()
		var got jobs.Event
		if err := json.Unmarshal([]byte(ev.data), &got); err != nil || ev.event != "event" || ev.id != strconv.FormatInt(want, 10) || got.Seq != want {
			t.Fatalf("event %d: %+v %v", want, ev, err)
		}
		last = ev.id
	}
	s.close()
	// While nobody listens, the task goes on; a reconnect with
	// Last-Event-ID gets exactly what it missed, then the end.
	must(t, e.backend.Step(task.ID, "create", "SUCCESS", json.RawMessage(`{"server_id":"x"}`), nil))
	must(t, e.backend.Step(task.ID, "wait", "RUNNING", nil, nil))
	s = e.follow(path, e.demo, last)
	for want := int64(4); want <= 5; want++ {
		if ev, _ := s.next(); ev.id != strconv.FormatInt(want, 10) {
			t.Fatalf("after resume: %+v, want id %d", ev, want)
		}
	}
	must(t, e.backend.Step(task.ID, "wait", "SUCCESS", nil, nil))
	must(t, e.backend.Finish(task.ID, jobs.Succeeded, map[string]json.RawMessage{"server_id": json.RawMessage(`"x"`)}, nil))
	for want := int64(6); want <= 7; want++ {
		if ev, _ := s.next(); ev.id != strconv.FormatInt(want, 10) {
			t.Fatalf("%+v, want id %d", ev, want)
		}
	}
	ev, _ = s.next()
	var end jobs.Task
	if err := json.Unmarshal([]byte(ev.data), &end); err != nil || ev.event != "end" || end.Status != jobs.Succeeded {
		t.Fatalf("end %+v", ev)
	}
	if _, ok := s.next(); ok {
		t.Fatal("the stream went on after end")
	}
	// A final task's stream replays and ends at once; ?after works too.
	s = e.follow("/v1/tasks/"+task.ID+"/events?follow=true&after=6", e.demo, "")
	if ev, _ := s.next(); ev.id != "7" {
		t.Fatalf("after=6: %+v", ev)
	}
	if ev, _ := s.next(); ev.event != "end" {
		t.Fatalf("%+v, want end", ev)
	}
	var all struct{ Events []jobs.Event }
	e.do("GET", "/v1/tasks/"+task.ID+"/events", e.demo, nil).decode(t, &all)
	if len(all.Events) != 7 {
		t.Fatalf("%d events listed, want 7", len(all.Events))
	}
}

func TestHeartbeat(t *testing.T) {
	e := newEnv(t, func(c *service.Config) { c.Heartbeat = 5 * time.Millisecond })
	task := e.create(e.demo, "noop", "{}")
	s := e.follow("/v1/tasks/"+task.ID+"/events?follow=true", e.demo, "1")
	for range 2 {
		select {
		case note := <-s.notes:
			if note != "heartbeat" {
				t.Fatalf("comment %q", note)
			}
		case <-time.After(20 * time.Second): // a guard: the server must act first
			t.Fatal("no heartbeats on an idle stream")
		}
	}
	must(t, e.backend.Start(task.ID, "w")) // the stream still carries events
	if ev, _ := s.next(); ev.id != "2" {
		t.Fatalf("after heartbeats: %+v", ev)
	}
}

func TestLiveList(t *testing.T) {
	e := newEnv(t)
	before := e.create(e.demo, "noop", "{}") // before the stream: not sent
	s := e.follow("/v1/tasks?follow=true", e.demo, "")
	ready, _ := s.next()
	if ready.event != "ready" || ready.id == "" {
		t.Fatalf("first %+v, want ready", ready)
	}
	e.create(e.alt, "noop", "{}") // another project's: never sent to demo
	a := e.create(e.demo, "noop", "{}")
	ev, _ := s.next()
	var got jobs.Task
	if err := json.Unmarshal([]byte(ev.data), &got); err != nil || ev.event != "task" || got.ID != a.ID || got.Status != jobs.Queued {
		t.Fatalf("created %+v", ev)
	}
	must(t, e.backend.Start(a.ID, "w"))
	ev, _ = s.next()
	if json.Unmarshal([]byte(ev.data), &got); got.ID != a.ID || got.Status != jobs.Running {
		t.Fatalf("started %+v", ev)
	}
	resume := ev.id
	s.close()
	must(t, e.backend.Finish(a.ID, jobs.Succeeded, nil, nil))
	must(t, e.backend.Start(before.ID, "w"))
	s = e.follow("/v1/tasks?follow=true", e.demo, resume)
	seen := map[string]jobs.Status{}
	for len(seen) < 2 {
		ev, _ := s.next()
		if ev.event != "task" {
			t.Fatalf("%+v", ev)
		}
		json.Unmarshal([]byte(ev.data), &got)
		seen[got.ID] = got.Status
	}
	if seen[a.ID] != jobs.Succeeded || seen[before.ID] != jobs.Running {
		t.Fatalf("after resume %v", seen)
	}
	// A filtered stream: only running tasks of kind server.create.
	f := e.follow("/v1/tasks?follow=true&status=running&kind=server.create", e.demo, "")
	f.next() // ready
	n := e.create(e.demo, "noop", "{}")
	sc := e.create(e.demo, "server.create", serverParams("x"))
	must(t, e.backend.Start(n.ID, "w"))
	must(t, e.backend.Start(sc.ID, "w"))
	ev, _ = f.next()
	if json.Unmarshal([]byte(ev.data), &got); got.ID != sc.ID || got.Status != jobs.Running {
		t.Fatalf("filtered %+v", ev)
	}
	// The admin's stream carries every project's tasks.
	adm := e.follow("/v1/tasks?follow=true", e.admin, "")
	adm.next()
	alt := e.create(e.alt, "noop", "{}")
	ev, _ = adm.next()
	if json.Unmarshal([]byte(ev.data), &got); got.ID != alt.ID {
		t.Fatalf("admin's stream %+v", ev)
	}
	if r := e.do("GET", "/v1/tasks?follow=true", e.demo, nil, "Last-Event-ID", "x"); r.code != 400 {
		t.Fatalf("bad Last-Event-ID: %d", r.code)
	}
}

// Serve's shutdown ends open streams (it would otherwise wait for them
// for ever) and returns.
func TestServeShutdownEndsStreams(t *testing.T) {
	e := newEnv(t)
	s, err := service.New(service.Config{Backend: e.backend, Auth: e.keys, Heartbeat: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- service.Serve(ctx, ln, s) }()
	task := e.create(e.demo, "noop", "{}")
	e.srv.URL = "http://" + ln.Addr().String()
	st := e.follow("/v1/tasks/"+task.ID+"/events?follow=true", e.demo, "")
	if ev, _ := st.next(); ev.id != "1" {
		t.Fatalf("%+v", ev)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, ok := st.next(); ok {
		t.Fatal("the stream outlived the server")
	}
}
