package service_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/service"
)

// The access log: one JSON line per request, with what an operator looks
// for, and never a token, cookie or password (they travel in headers and
// bodies, which it does not log). Off, it logs none.
func TestAccessLog(t *testing.T) {
	logs := &syncBuffer{}
	e := newEnv(t, func(c *service.Config) {
		c.AccessLog = true
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	task := e.create(e.demo, "noop", "{}")
	e.do("GET", "/v1/tasks?status=queued&limit=5", e.demo, nil)
	e.do("GET", "/v1/tasks/"+task.ID, "gAAAAbadtoken-4f1", nil)
	login := e.do("POST", "/v1/auth/session", "", `{"username":"demo","password":"`+cloudsim.DefaultPassword+`","project":"demo"}`)
	e.do("GET", "/v1/auth/session", "", nil, "Cookie", service.CookieName+"="+e.alt)
	e.do("GET", "/healthz", "", nil)

	type line struct {
		Level, Msg, Method, Path, Query, Project, Remote string
		Status                                           int
		Bytes                                            int64
		Duration                                         float64
	}
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var v line
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		if v.Msg == "http request" {
			lines = append(lines, v)
		}
	}
	want := []line{
		{Method: "POST", Path: "/v1/tasks", Status: 202, Project: cloudsim.DemoProjectID},
		{Method: "GET", Path: "/v1/tasks", Query: "status=queued&limit=5", Status: 200, Project: cloudsim.DemoProjectID},
		{Method: "GET", Path: "/v1/tasks/" + task.ID, Status: 401},
		{Method: "POST", Path: "/v1/auth/session", Status: 200, Bytes: int64(len(login.body))},
		{Method: "GET", Path: "/v1/auth/session", Status: 200},
		{Method: "GET", Path: "/healthz", Status: 200},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d access lines, want %d:\n%s", len(lines), len(want), logs)
	}
	for i, w := range want {
		g := lines[i]
		if g.Level != "INFO" || g.Method != w.Method || g.Path != w.Path || g.Query != w.Query || g.Status != w.Status ||
			g.Project != w.Project || g.Bytes <= 0 || (w.Bytes > 0 && g.Bytes != w.Bytes) || g.Duration <= 0 || g.Remote == "" {
			t.Errorf("line %d: %+v, want %+v", i, g, w)
		}
	}
	for _, secret := range []string{e.demo, e.alt, "gAAAA", cloudsim.DefaultPassword, service.CookieName} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds a credential (%.12s…):\n%s", secret, logs)
		}
	}

	quiet := &syncBuffer{}
	off := newEnv(t, func(c *service.Config) { c.Logger = slog.New(slog.NewJSONHandler(quiet, nil)) })
	off.create(off.demo, "noop", "{}")
	if strings.Contains(quiet.String(), "http request") {
		t.Fatalf("access lines without AccessLog:\n%s", quiet)
	}
}
