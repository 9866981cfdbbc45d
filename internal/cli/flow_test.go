package cli

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// noLeaks checks, when the test ends, that the command left no goroutine
// behind (the cloud's monitors, the simulator, the engine, the display).
func noLeaks(t *testing.T) {
	opts := []goleak.Option{goleak.IgnoreCurrent(),
		// net/http keeps idle connections' goroutines until they time out.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	}
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

var bfvArgs = []string{"flow", "run", "boot-from-volume", "--sim", "--name", "web", "--flavor", "m1.tiny",
	"--image", "cirros-0.6.2-x86_64-disk", "--network", "none"}

func TestFlowList(t *testing.T) {
	noLeaks(t)
	code, out, stderr := run(t, "flow", "list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"boot-from-volume", "server-with-volumes", "snapshot-and-replace", "resize",
		"--boot-volume-size", "--volumes", "(required)", "(default 2)", "--run-id"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	code, out, stderr = run(t, "flow", "list", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var defs []struct {
		Name   string `json:"name"`
		Params []struct {
			Name     string `json:"name"`
			Flag     string `json:"flag"`
			Required bool   `json:"required"`
		} `json:"params"`
	}
	if err := json.Unmarshal([]byte(out), &defs); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(defs) != 4 || defs[0].Name != "boot-from-volume" || defs[0].Params[0].Flag != "--name" || !defs[0].Params[0].Required {
		t.Fatalf("flows %+v", defs)
	}
}

func TestFlowRunJSON(t *testing.T) {
	noLeaks(t)
	code, out, stderr := run(t, append(bfvArgs, "--json", "--run-id", "cli-1")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// NDJSON: the start event first, the report last, task events between.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var startRaw map[string]string
	if err := json.Unmarshal([]byte(lines[0]), &startRaw); err != nil {
		t.Fatalf("first line: %v\n%s", err, out)
	}
	if startRaw["event"] != "start" || startRaw["run_id"] != "cli-1" || startRaw["resume"] != "ostask flow resume cli-1" {
		t.Fatalf("first line %q", lines[0])
	}
	tasksSeen := map[string]bool{}
	for _, l := range lines[1 : len(lines)-1] {
		var ev struct {
			Event string `json:"event"`
			Name  string `json:"name"`
			State string `json:"state"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Event != "task" {
			t.Fatalf("line %q: %v", l, err)
		}
		if ev.State == "SUCCESS" {
			tasksSeen[ev.Name] = true
		}
	}
	if len(tasksSeen) != 4 {
		t.Errorf("task events %v", tasksSeen)
	}
	var rep flowReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if rep.Event != "end" || rep.Flow != "boot-from-volume" || rep.RunID != "cli-1" || rep.State != "SUCCESS" || rep.Error != "" || len(rep.Tasks) != 4 {
		t.Fatalf("report %+v", rep)
	}
	for _, tr := range rep.Tasks {
		if tr.State != "SUCCESS" || (len(tr.Provides) == 1 && tr.ID == "") {
			t.Errorf("task %+v", tr)
		}
	}
	for _, v := range []string{"server", "boot_volume", "data_volume"} {
		if rep.Values[v] == "" {
			t.Errorf("no %s in %v", v, rep.Values)
		}
	}
}

func TestFlowRunFailureRevertsAndExplains(t *testing.T) {
	noLeaks(t)
	code, out, stderr := run(t, append(bfvArgs, "--sim-fault-plan", "volume.attach.error=1", "--run-id", "r1")...)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s %s", code, out, stderr)
	}
	if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
		t.Fatalf("want a one-line reason, got %q", stderr)
	}
	for _, want := range []string{`flow "boot-from-volume" REVERTED`, "attach-data-volume:", "attach"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q: %q", want, stderr)
		}
	}
	// Plain progress: one line per task state change, and the final state.
	for _, want := range []string{"boot-server: RUNNING", "boot-server: SUCCESS server=", "attach-data-volume: FAILURE: ",
		"boot-server: REVERTED", "create-boot-volume: REVERTED", "flow boot-from-volume REVERTED (run id "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestFlowRunBadInput(t *testing.T) {
	noLeaks(t)
	t.Setenv("OS_CLOUD", "")
	t.Setenv("OS_AUTH_URL", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"flow", "run", "boot-from-volume", "--sim", "--flavor", "m1.tiny", "--image", "x"}, "missing required flag --name"},
		{[]string{"flow", "run", "nope"}, `unknown command "nope"`},
		{append(bfvArgs[:len(bfvArgs):len(bfvArgs)], "--retries", "0"), "--retries must be >= 1"},
		{[]string{"flow", "run", "boot-from-volume", "--sim", "--name", "w", "--flavor", "m1.tiny", "--image", "x", "--network", "bogus"}, "--network"},
		{[]string{"flow", "run", "server-with-volumes", "--sim", "--name", "w", "--flavor", "m1.tiny", "--image", "cirros-0.6.2-x86_64-disk", "--volumes", "0"}, "volumes must be in 1..64"},
		{[]string{"flow", "run", "boot-from-volume", "--sim", "--name", "w", "--flavor", "huge", "--image", "x"}, `no flavor named or with id "huge"`},
		{[]string{"flow", "run", "resize", "--server", "s", "--flavor", "m1.tiny"}, "no cloud selected"},
	} {
		t.Run(strings.Join(tc.args[2:], " "), func(t *testing.T) {
			code, _, stderr := run(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 containing %q", code, stderr, tc.want)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
				t.Fatalf("want a one-line reason, got %q", stderr)
			}
		})
	}
}

// Without --run-id, the run id and the command that resumes it from the
// store are printed before the run, and the report names the same id.
func TestFlowRunPrintsRunIDAtStart(t *testing.T) {
	noLeaks(t)
	code, out, stderr := run(t, bfvArgs...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m := regexp.MustCompile(`^ostask: flow boot-from-volume run id ([0-9a-f-]{36}); if this run is cut short, run this to continue it:\n  (ostask flow resume ([0-9a-f-]{36}))\n$`).FindStringSubmatch(stderr)
	if m == nil || m[1] != m[3] {
		t.Fatalf("stderr %q", stderr)
	}
	if !strings.HasSuffix(strings.TrimSpace(out), "flow boot-from-volume SUCCESS (run id "+m[1]+")") {
		t.Fatalf("stdout %q", out)
	}
}
