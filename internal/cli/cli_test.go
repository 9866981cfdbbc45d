package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := Main(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// The monitor interval's environment default is checked like the flag.
func TestMonitorIntervalEnv(t *testing.T) {
	clearCloudEnv(t)
	t.Setenv(monitorIntervalEnv, "soon")
	code, _, stderr := run(t, "server", "list", "--sim")
	if code != 2 || !strings.Contains(stderr, monitorIntervalEnv) {
		t.Errorf("exit %d, stderr %q; want 2 naming %s", code, stderr, monitorIntervalEnv)
	}
	t.Setenv(monitorIntervalEnv, "50ms")
	if code, out, stderr := run(t, "server", "list", "--sim"); code != 0 {
		t.Errorf("exit %d with a good interval: %s %s", code, out, stderr)
	}
}

func TestBadInputExitsNonZeroWithOneLine(t *testing.T) {
	t.Setenv("OS_CLOUD", "")
	t.Setenv("OS_AUTH_URL", "")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"server", "create", "x", "--flavor", "nope", "--image", "cirros-0.6.2-x86_64-disk", "--sim"}, 2, `no flavor named or with id "nope"`},
		{[]string{"server", "create", "x", "--flavor", "m1.tiny", "--image", "nope", "--sim"}, 2, `no image named or with id "nope"`},
		{[]string{"server", "create", "x", "--flavor", "m1.tiny", "--image", "i", "--retries", "-1", "--sim"}, 2, "--retries must be >= 1"},
		{[]string{"server", "create", "x", "--flavor", "m1.tiny", "--image", "i", "--timeout", "0s", "--sim"}, 2, "--timeout must be positive"},
		{[]string{"server", "create", "x", "--flavor", "m1.tiny", "--image", "i", "--count", "0", "--sim"}, 2, "--count must be >= 1"},
		{[]string{"server", "list", "--sim", "--monitor-interval", "-1s"}, 2, "--monitor-interval must be positive"},
		{[]string{"server", "create", "x", "--flavor", "m1.tiny"}, 2, "missing required flag --image"},
		{[]string{"server", "delete", "ghost", "--sim"}, 2, `no server named or with id "ghost"`},
		{[]string{"server", "stop", "ghost"}, 2, "no cloud selected"},
		{[]string{"volume", "create", "v", "--size", "0", "--sim"}, 2, "--size must be a positive"},
		{[]string{"sim", "--fault-plan", "server.create.explode=1"}, 2, "unknown fault"},
		{[]string{"demo", "--servers", "0"}, 2, "--servers must be >= 1"},
		{[]string{"server", "create", "x", "--bogus"}, 2, "unknown flag: --bogus"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := run(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d containing %q", code, stderr, tc.code, tc.want)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
				t.Fatalf("want a one-line reason, got %d lines: %q", n+1, stderr)
			}
		})
	}
}

func TestServerCreateAgainstSim(t *testing.T) {
	code, out, stderr := run(t, "server", "create", "web", "--sim", "--flavor", "m1.tiny", "--image", "cirros-0.6.2-x86_64-disk",
		"--network", "none", "--count", "3", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res []outcome
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		if r.Status != "ACTIVE" || r.ID == "" || r.Label != names("web", 3)[i] || r.Error != "" {
			t.Errorf("result %d = %+v", i, r)
		}
	}
}

func TestServerCreateFailureIsReported(t *testing.T) {
	code, out, stderr := run(t, "server", "create", "doomed", "--sim", "--sim-fault-plan", "server.create.error=1",
		"--flavor", "m1.tiny", "--image", "cirros-0.6.2-x86_64-disk", "--network", "none", "--retries", "2")
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s %s", code, out, stderr)
	}
	if !strings.Contains(stderr, "No valid host was found") || !strings.Contains(stderr, "attempt 2") {
		t.Fatalf("stderr lacks the cloud's fault and the attempts: %q", stderr)
	}
}

func TestDemoSmall(t *testing.T) {
	code, out, stderr := run(t, "demo", "--servers", "12", "--snapshots", "2", "--timing", "fast", "--build-timeout", "2s", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var s demoSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if s.Servers != 12 || s.Leaked != 0 || s.Succeeded+s.Failed != 12 || s.APIRequests == 0 {
		t.Fatalf("summary %+v", s)
	}
}

// Lost answers alone never fail anything and never leave anything: with
// the default options every create has a key and every action is checked
// before it is sent again, so the demo succeeds in full.
func TestDemoLostResponses(t *testing.T) {
	code, out, stderr := run(t, "demo", "--servers", "12", "--snapshots", "3", "--timing", "fast",
		"--fault-plan", "api.lose-response=0.3", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var s demoSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if s.RecoveredAnswers == 0 {
		t.Fatal("no lost answer was recovered: the fault plan did not bite, the test proves nothing")
	}
	if s.Succeeded != 12 || s.Failed != 0 || s.Leaked != 0 || s.Snapshots != 3 {
		t.Fatalf("with only lost answers: %d succeeded, %d failed, %d leaked, %d snapshots; want 12, 0, 0, 3 (reasons: %v)",
			s.Succeeded, s.Failed, s.Leaked, s.Snapshots, s.FailureReasons)
	}
}

// With --events the demo's server operations complete from cloudsim's
// notifications, and the server monitor only reconciles.
func TestDemoEvents(t *testing.T) {
	code, out, stderr := run(t, "demo", "--servers", "12", "--snapshots", "2", "--timing", "fast", "--events", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var s demoSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if !s.Events || s.Leaked != 0 || s.Succeeded+s.Failed != 12 {
		t.Fatalf("summary %+v", s)
	}
	// Every server is created and deleted at least once: that many
	// operations at least completed by events, none found by polling first.
	if s.EventCompletions < 24 || s.EventMissed != 0 {
		t.Errorf("%d completions by events, %d found first by polling; want >= 24 and 0", s.EventCompletions, s.EventMissed)
	}
}

// `ostask sim` writes its clouds.yaml where --clouds-yaml says and stops
// cleanly when its context ends (SIGINT/SIGTERM cancel it in Exec).
func TestSimStopsOnSignal(t *testing.T) {
	path := t.TempDir() + "/clouds.yaml"
	export := runSim(t, "--listen", "127.0.0.1:0", "--clouds-yaml", path, "--timing", "fast")
	if !strings.Contains(export, path) {
		t.Fatalf("export line %q does not name %s", export, path)
	}
	if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), "ostask-sim") {
		t.Fatalf("clouds.yaml: %v %s", err, b)
	}
}
