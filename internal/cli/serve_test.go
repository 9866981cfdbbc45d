package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/store/postgres/pgtest"
)

// servedSim is an 'ostask serve --sim' child process.
type servedSim struct {
	url, cloudsYAML, state string
	mu                     sync.Mutex
	logs                   bytes.Buffer // stdout and stderr
	done                   chan error
	cmd                    *exec.Cmd
}

func (s *servedSim) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// startServe runs ostask serve --sim in a child process and waits until
// it prints its URL; it points the task commands (OSTASK_URL,
// OS_CLIENT_CONFIG_FILE, OS_CLOUD) at it.
func startServe(t *testing.T, extra ...string) *servedSim {
	return startServeArgs(t, append([]string{"serve", "--sim", "--timing", "fast"}, extra...))
}

// startServeArgs is startServe with a whole 'serve' command line, whose
// --listen and --clouds-yaml are replaced by a free port and a temporary
// file.
func startServeArgs(t *testing.T, args []string) *servedSim {
	t.Helper()
	sim := contains(args, "--sim")
	if sim {
		clearCloudEnv(t)
	}
	dir := t.TempDir()
	s := &servedSim{cloudsYAML: filepath.Join(dir, "clouds.yaml"), state: filepath.Join(dir, "state"), done: make(chan error, 1)}
	t.Setenv("XDG_STATE_HOME", s.state)
	args = append([]string(nil), args...)
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--listen":
			args[i+1] = "127.0.0.1:0"
		case "--clouds-yaml":
			args[i+1] = s.cloudsYAML
		}
	}
	if !contains(args, "--listen") {
		args = append(args, "--listen", "127.0.0.1:0")
	}
	if sim && !contains(args, "--clouds-yaml") {
		args = append(args, "--clouds-yaml", s.cloudsYAML)
	}
	cmd, stdout, stderr := startChild(t, args...)
	s.cmd = cmd
	urls := make(chan string, 1)
	var wg sync.WaitGroup
	copyLines := func(r io.Reader) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs.WriteString(line + "\n")
			s.mu.Unlock()
			if u, ok := strings.CutPrefix(line, "ostask serve listening on "); ok {
				urls <- u
			}
		}
	}
	wg.Add(2)
	go copyLines(stdout)
	go copyLines(stderr)
	go func() {
		wg.Wait()
		s.done <- cmd.Wait()
	}()
	select {
	case s.url = <-urls:
	case err := <-s.done:
		t.Fatalf("serve exited before serving: %v\n%s", err, s.logText())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not start:\n%s", s.logText())
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-s.done
	})
	t.Setenv(urlEnv, s.url)
	if sim {
		t.Setenv("OS_CLIENT_CONFIG_FILE", s.cloudsYAML)
		t.Setenv("OS_CLOUD", cloudsim.DefaultCloudName)
	}
	return s
}

// stop ends the process with SIGTERM and checks it stopped cleanly.
func (s *servedSim) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, s.logText())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM:\n%s", s.logText())
	}
	if !strings.Contains(s.logText(), "ostask serve: stopped") {
		t.Fatalf("no clean stop:\n%s", s.logText())
	}
}

// simLogin logs in to the served cloudsim as user, from clouds.yaml.
func simLogin(t *testing.T, cloudsYAML, cloud string) string {
	t.Helper()
	data, err := os.ReadFile(cloudsYAML)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Clouds map[string]struct {
			Auth map[string]string `yaml:"auth"`
		} `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	a := doc.Clouds[cloud].Auth
	body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"` + a["username"] +
		`","domain":{"name":"Default"},"password":"` + a["password"] + `"}}},"scope":{"project":{"name":"` +
		a["project_name"] + `","domain":{"name":"Default"}}}}}`
	res, err := http.Post(a["auth_url"]+"/auth/tokens", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("login %s: %d", cloud, res.StatusCode)
	}
	return res.Header.Get("X-Subject-Token")
}

// The whole service as a user meets it: serve --sim as a real process,
// a server created through 'ostask task create', its events and the
// server's history; another project sees none of it; and no credential
// (password or token) is in any response, log line, event or the store.
func TestServeSimEndToEnd(t *testing.T) {
	s := startServe(t)
	out := mustRun(t, "task", "create", "server.create", "--param", "name=e2e-1", "--param", "flavor=1",
		"--param", "image="+cloudsim.CirrosImageID, "--json")
	var task jobs.Task
	if err := json.Unmarshal([]byte(out), &task); err != nil || task.Status != jobs.Succeeded {
		t.Fatalf("create: %v\n%s", err, out)
	}
	var server string
	for _, r := range task.Resources {
		if r.Type == "server" {
			server = r.ID
		}
	}
	if server == "" || len(task.Result) == 0 {
		t.Fatalf("no server in %+v", task)
	}
	events := mustRun(t, "task", "events", task.ID, "--json")
	if !strings.Contains(events, `"to":"SUCCESS"`) || !strings.Contains(events, `"to":"succeeded"`) {
		t.Fatalf("events:\n%s", events)
	}
	history := mustRun(t, "task", "list", "--resource", "server/"+server, "--json")
	if !strings.Contains(history, task.ID) {
		t.Fatalf("history of %s:\n%s", server, history)
	}
	if out := mustRun(t, "task", "list", "--json", "--os-cloud", cloudsim.DefaultCloudName+"-alt"); strings.Contains(out, task.ID) {
		t.Fatalf("alt sees demo's task:\n%s", out)
	}

	// The raw API, for the responses: every route a user reads.
	demo := simLogin(t, s.cloudsYAML, cloudsim.DefaultCloudName)
	admin := simLogin(t, s.cloudsYAML, cloudsim.DefaultCloudName+"-admin")
	var responses bytes.Buffer
	get := func(method, path, token, body string) {
		req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("X-Auth-Token", token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(res.Body)
		res.Body.Close()
		h := res.Header.Clone()
		if path == "/v1/auth/session" {
			h.Del("Set-Cookie") // the session cookie is the one place a token is meant to go
		}
		_ = h.Write(&responses)
		responses.Write(data)
	}
	for _, tok := range []string{demo, admin} {
		for _, p := range []string{"/v1/tasks", "/v1/tasks/" + task.ID, "/v1/tasks/" + task.ID + "/events",
			"/v1/tasks/" + task.ID + "/graph", "/v1/resources/server/" + server + "/tasks",
			"/v1/resources/server/" + server + "/fault", "/v1/kinds", "/v1/auth/session", "/v1/tasks/" + task.ID + "/events?follow=true"} {
			get("GET", p, tok, "")
		}
	}
	get("POST", "/v1/auth/session", "", `{"username":"demo","password":"secret","project":"demo"}`)
	get("POST", "/v1/auth/session", "", `{"username":"demo","password":"wrong-secret","project":"demo"}`)
	get("POST", "/v1/tasks", demo, `{"kind":"server.create","params":{"name":"x","password":"secret"}}`)
	get("GET", "/v1/tasks", "gAAAAbadtoken", "")
	get("GET", "/metrics", "", "")
	if !strings.Contains(responses.String(), task.ID) {
		t.Fatal("the responses were not collected")
	}
	s.stop(t)
	var storeBytes bytes.Buffer
	files, _ := filepath.Glob(filepath.Join(s.state, "ostask", "serve-sim.db*"))
	if len(files) == 0 {
		t.Fatal("no store file")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		storeBytes.Write(data)
	}
	if !bytes.Contains(storeBytes.Bytes(), []byte(task.ID)) {
		t.Fatal("the store does not hold the task: not the right file")
	}
	// The access log has a line for each of those requests (so the grep
	// below reads them), the caller's project on the authenticated ones.
	for _, want := range []string{`msg="http request" method=GET path=/v1/tasks/` + task.ID + ` status=200`,
		`path=/v1/auth/session status=401`, `path=/v1/tasks status=401`, `method=POST path=/v1/tasks status=400`,
		`project=` + cloudsim.DemoProjectID, `query="follow=true"`} {
		if !strings.Contains(s.logText(), want) {
			t.Errorf("no access line with %q in the logs:\n%s", want, s.logText())
		}
	}
	for what, text := range map[string][]byte{"responses": responses.Bytes(), "logs": []byte(s.logText()),
		"events": []byte(events), "store": storeBytes.Bytes()} {
		for _, secret := range []string{"secret", demo, admin, "gAAAA"} {
			if bytes.Contains(text, []byte(secret)) {
				i := bytes.Index(text, []byte(secret))
				t.Errorf("%s hold a credential %.12q…: …%s…", what, secret, text[max(0, i-80):min(len(text), i+40)])
			}
		}
	}
}

// --access-log=false: no line per request.
func TestServeAccessLogOff(t *testing.T) {
	s := startServe(t, "--access-log=false")
	res, err := http.Get(s.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	s.stop(t)
	if strings.Contains(s.logText(), "http request") {
		t.Fatalf("access lines with --access-log=false:\n%s", s.logText())
	}
	if out := mustRun(t, "serve", "--help"); !strings.Contains(out, "--access-log") {
		t.Fatalf("help lacks --access-log:\n%s", out)
	}
}

func TestServeRefusesBadFlags(t *testing.T) {
	clearCloudEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "no cloud to serve"},
		{[]string{"serve", "--sim", "--os-cloud", "x"}, "not with --os-cloud"},
		{[]string{"serve", "--sim", "--store", "none"}, "needs a store"},
		{[]string{"serve", "--project-cloud", "demo"}, "PROJECT=CLOUD"},
		{[]string{"serve", "--sim", "--workers", "-1"}, "must not be negative"},
		{[]string{"serve", "--sim", "--token-cache-time", "0s"}, "must be positive"},
		{[]string{"serve", "--clouds-yaml", "x", "--os-cloud", "x"}, "for --sim"},
		{[]string{"serve", "--project-cloud", "demo=nonesuch", "--auth-cloud", "nonesuch"}, "nonesuch"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d %q, want 2 with %q", tc.args, code, stderr, tc.want)
		}
	}
}

// Several machines: an API-only 'serve --workers 0' and a worker
// 'serve' on one PostgreSQL, serving a cloud of clouds.yaml; a task
// created through the first is run by the second.
func TestServeSplitOnPostgres(t *testing.T) {
	url, schema := pgtest.Schema(t) // dropped at the end, not made
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(t.Context(), "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
	conn.Close(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	store := url + "&search_path=" + schema
	simEnv(t, cloudsim.Config{})
	common := []string{"serve", "--store", store, "--os-cloud", cloudsim.DefaultCloudName,
		"--project-cloud", "alt=" + cloudsim.DefaultCloudName + "-alt", "--auth-cloud", cloudsim.DefaultCloudName + "-admin"}
	worker := startServeArgs(t, append(common, "--workers", "1"))
	startServeArgs(t, append(common, "--workers", "0")) // the task commands' OSTASK_URL
	out := mustRun(t, "task", "create", "server.create", "--param", "name=split-1", "--param", "flavor=1",
		"--param", "image="+cloudsim.CirrosImageID, "--json")
	var task jobs.Task
	if err := json.Unmarshal([]byte(out), &task); err != nil || task.Status != jobs.Succeeded {
		t.Fatalf("create through the API process: %v\n%s", err, out)
	}
	// Worker ids are host-pid-suffix: the worker process ran it.
	events := mustRun(t, "task", "events", task.ID, "--json")
	if !strings.Contains(events, fmt.Sprintf("-%d-", worker.cmd.Process.Pid)) {
		t.Fatalf("not run by the worker process (pid %d):\n%s", worker.cmd.Process.Pid, events)
	}
	// alt's project has credentials (--project-cloud); admin's has none.
	mustRun(t, "task", "create", "volume.create", "--param", "name=v", "--param", "size=1", "--os-cloud", cloudsim.DefaultCloudName+"-alt")
	code, _, stderr := run(t, "task", "create", "volume.create", "--param", "name=v", "--param", "size=1", "--os-cloud", cloudsim.DefaultCloudName+"-admin")
	if code != 1 || !strings.Contains(stderr, "no_credentials") {
		t.Fatalf("admin's project without credentials: exit %d %s", code, stderr)
	}
}
