package cli

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/service"
	"github.com/ostask/ostask/service/servicetest"
)

// taskService runs the service over the in-memory backend, worked by
// servicetest's runner unless run is false, authenticating against the
// cloudsim that simEnv points the commands at; it sets OSTASK_URL.
func taskService(t *testing.T, run bool) (*servicetest.Backend, *cloudsim.Sim) {
	t.Helper()
	sim := simEnv(t, cloudsim.Config{})
	c := sim.AdminCredentials()
	keys, err := service.NewKeystone(context.Background(), service.KeystoneConfig{Auth: ops.Auth{Options: gophercloud.AuthOptions{
		IdentityEndpoint: c.AuthURL, Username: c.Username, Password: c.Password, DomainName: c.DomainName, TenantName: c.ProjectName}}})
	if err != nil {
		t.Fatal(err)
	}
	b := servicetest.New()
	s, err := service.New(service.Config{Backend: b, Auth: keys})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if run {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = b.Run(ctx, "test-worker")
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		s.CloseStreams()
		srv.Close()
	})
	t.Setenv(urlEnv, srv.URL)
	return b, sim
}

func TestTaskCommands(t *testing.T) {
	b, _ := taskService(t, true)
	out := mustRun(t, "task", "create", "server.create", "--param", "name=web-1", "--param", "flavor=1", "--params", `{"image":"cirros"}`)
	if !strings.Contains(out, "succeeded") || !strings.Contains(out, "step noop: PENDING -> RUNNING") {
		t.Fatalf("create output:\n%s", out)
	}
	out = mustRun(t, "task", "create", "noop", "--json", "--idempotency-key", "k1")
	var task jobs.Task
	if err := json.Unmarshal([]byte(out), &task); err != nil || task.Status != jobs.Succeeded || task.Kind != "noop" {
		t.Fatalf("create --json: %v\n%s", err, out)
	}
	// The same key: the same task, nothing new.
	out = mustRun(t, "task", "create", "noop", "--json", "--idempotency-key", "k1", "--no-wait")
	var again jobs.Task
	if err := json.Unmarshal([]byte(out), &again); err != nil || again.ID != task.ID {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if n := b.Created(); n != 2 {
		t.Fatalf("%d tasks stored, want 2", n)
	}
	out = mustRun(t, "task", "get", task.ID)
	if !strings.Contains(out, "status    succeeded") || !strings.Contains(out, task.ID) {
		t.Fatalf("get:\n%s", out)
	}
	out = mustRun(t, "task", "list", "--kind", "noop", "--json")
	var page jobs.Page
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Tasks) != 1 || page.Tasks[0].ID != task.ID {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	out = mustRun(t, "task", "list", "--limit", "1")
	if !strings.Contains(out, "more: --marker") || strings.Count(out, "\n") != 3 {
		t.Fatalf("list --limit 1:\n%s", out)
	}
	if out := mustRun(t, "task", "list", "--limit", "1", "--all"); strings.Count(out, "\n") != 3 {
		t.Fatalf("list --all:\n%s", out)
	}
	out = mustRun(t, "task", "events", task.ID, "--json")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 5 {
		t.Fatalf("events: %d lines\n%s", len(lines), out)
	}
	out = mustRun(t, "task", "events", task.ID, "--follow")
	if !strings.Contains(out, "task "+task.ID+" succeeded") {
		t.Fatalf("events --follow:\n%s", out)
	}
	if out := mustRun(t, "task", "kinds"); !strings.Contains(out, "--param flavor=string (required)") {
		t.Fatalf("kinds:\n%s", out)
	}
	// Refusals: bad params exit 2 naming the field; an ended task's
	// cancel and an unknown task exit 1.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"task", "create", "server.create", "--param", "name=x"}, 2, "params.flavor"},
		{[]string{"task", "create", "nonesuch"}, 2, "kind: unknown kind"},
		{[]string{"task", "create", "noop", "--param", "novalue"}, 2, "NAME=VALUE"},
		{[]string{"task", "cancel", task.ID}, 1, "already ended"},
		{[]string{"task", "get", "nonesuch"}, 1, "not found"},
		{[]string{"task", "list", "--status", "sleeping"}, 2, "unknown status"},
		{[]string{"task", "get", task.ID, "--url", "ftp://x"}, 2, "--url"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// Another project's user (the alt cloud of clouds.yaml) sees none of
// demo's tasks.
func TestTaskCommandsScoped(t *testing.T) {
	taskService(t, true)
	out := mustRun(t, "task", "create", "noop", "--json")
	var task jobs.Task
	if err := json.Unmarshal([]byte(out), &task); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "task", "get", task.ID, "--os-cloud", cloudsim.DefaultCloudName+"-alt"); code != 1 || !strings.Contains(stderr, "not found") {
		t.Fatalf("alt gets demo's task: exit %d %s", code, stderr)
	}
	out = mustRun(t, "task", "list", "--json", "--os-cloud", cloudsim.DefaultCloudName+"-alt")
	if strings.Contains(out, task.ID) {
		t.Fatalf("alt lists demo's task: %s", out)
	}
	if out := mustRun(t, "task", "list", "--os-cloud", cloudsim.DefaultCloudName+"-admin"); !strings.Contains(out, task.ID) {
		t.Fatalf("admin does not list demo's task: %s", out)
	}
}

// A task that does not succeed is exit 1 with its error; cancel --wait
// follows it to cancelled.
func TestTaskCreateFailsAndCancel(t *testing.T) {
	b, _ := taskService(t, false)
	done := make(chan struct{})
	var code int
	var out, stderr string
	go func() {
		defer close(done)
		code, out, stderr = run(t, "task", "create", "noop")
	}()
	// Drive the task as a failing worker would, once it exists.
	var id string
	for id == "" {
		if err := b.WaitChanges(t.Context(), 0); err != nil {
			t.Fatal(err)
		}
		p, _ := b.List(t.Context(), jobs.Filter{})
		if len(p.Tasks) > 0 {
			id = p.Tasks[0].ID
		}
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.Start(id, "w"))
	must(b.Finish(id, jobs.Reverted, nil, &jobs.Error{Message: "server went to ERROR", Step: "create", Fault: "No valid host was found.", Code: 500, RequestID: "req-42"}))
	<-done
	if code != 1 || !strings.Contains(stderr, "reverted") || !strings.Contains(stderr, "No valid host was found.") || !strings.Contains(stderr, "req-42") {
		t.Fatalf("failed task: exit %d\n%s\n%s", code, out, stderr)
	}
	// cancel of a queued task: cancelled at once.
	out = mustRun(t, "task", "create", "noop", "--no-wait", "--json")
	var q jobs.Task
	_ = json.Unmarshal([]byte(out), &q)
	if out := mustRun(t, "task", "cancel", q.ID, "--wait"); !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel --wait:\n%s", out)
	}
}
