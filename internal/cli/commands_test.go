package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/ostask/ostask/cloudsim"
)

var createArgs = []string{"--flavor", "m1.tiny", "--image", cloudsim.CirrosImageName, "--network", "none"}

func cmdArgs(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// --retries is the number of attempts in all, the same everywhere: 0 and
// negative numbers are usage errors, and the help says what it means.
func TestRetriesHasOneMeaning(t *testing.T) {
	clearCloudEnv(t)
	for _, cmd := range [][]string{
		cmdArgs([]string{"server", "create", "x"}, createArgs, []string{"--sim"}),
		{"volume", "create", "v", "--size", "1", "--sim"},
		{"server", "delete", "x", "--sim"},
		{"volume", "delete", "x", "--sim"},
		{"image", "delete", "x", "--sim"},
		bfvArgs,
		{"demo", "--servers", "1", "--timing", "fast"},
	} {
		for _, n := range []string{"0", "-1"} {
			t.Run(strings.Join(cmd[:2], " ")+" --retries "+n, func(t *testing.T) {
				code, _, stderr := run(t, append(cmd[:len(cmd):len(cmd)], "--retries", n)...)
				if code != 2 || !strings.Contains(stderr, "--retries must be >= 1 (attempts in all; 1 = no retry), got "+n) {
					t.Fatalf("exit %d, stderr %q", code, stderr)
				}
			})
		}
		t.Run(strings.Join(cmd[:2], " ")+" --help", func(t *testing.T) {
			help := cmd[:2]
			if cmd[0] == "flow" {
				help = cmd[:3]
			}
			if cmd[0] == "demo" {
				help = cmd[:1]
			}
			out := mustRun(t, append(help[:len(help):len(help)], "--help")...)
			if !strings.Contains(out, "--retries int") || !strings.Contains(out, "attempts in all (1 = no retry)") {
				t.Fatalf("help does not say what --retries means:\n%s", out)
			}
		})
	}
}

func TestCloudSelection(t *testing.T) {
	t.Run("--sim with --os-cloud", func(t *testing.T) {
		clearCloudEnv(t)
		code, _, stderr := run(t, "server", "list", "--sim", "--os-cloud", "mine")
		if code != 2 || !strings.Contains(stderr, "--sim and --os-cloud mine select two clouds") {
			t.Fatalf("exit %d: %q", code, stderr)
		}
	})
	t.Run("--sim with OS_CLOUD", func(t *testing.T) {
		clearCloudEnv(t)
		t.Setenv("OS_CLOUD", "mine")
		code, _, stderr := run(t, "server", "list", "--sim")
		if code != 2 || !strings.Contains(stderr, "OS_CLOUD=mine") {
			t.Fatalf("exit %d: %q", code, stderr)
		}
	})
	t.Run("a cloud without auth_url", func(t *testing.T) {
		clearCloudEnv(t)
		path := filepath.Join(t.TempDir(), "clouds.yaml")
		if err := os.WriteFile(path, []byte("clouds:\n  broken:\n    auth:\n      username: demo\n      password: x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("OS_CLIENT_CONFIG_FILE", path)
		code, _, stderr := run(t, "server", "list", "--os-cloud", "broken")
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 ||
			!strings.Contains(stderr, `clouds.yaml cloud "broken": auth_url is missing`) {
			t.Fatalf("exit %d: %q", code, stderr)
		}
	})
	t.Run("an openrc's variables", func(t *testing.T) {
		sim := simEnv(t, cloudsim.Config{})
		clearCloudEnv(t)
		c := sim.DemoCredentials()
		for k, v := range map[string]string{"OS_AUTH_URL": c.AuthURL, "OS_USERNAME": c.Username, "OS_PASSWORD": c.Password,
			"OS_PROJECT_NAME": c.ProjectName, "OS_USER_DOMAIN_NAME": c.DomainName, "OS_PROJECT_DOMAIN_NAME": c.DomainName,
			"OS_REGION_NAME": c.Region, "OS_INTERFACE": "public", "OS_IDENTITY_API_VERSION": "3"} {
			t.Setenv(k, v)
		}
		out := mustRun(t, "server", "list")
		if !strings.HasPrefix(out, "ID") {
			t.Fatalf("list: %q", out)
		}
	})
}

// A generated idempotency key is printed at the start with the command
// that resumes; running that command adopts instead of duplicating.
func TestIdempotencyKeyResumesWithoutDuplicates(t *testing.T) {
	noLeaks(t)
	sim := simEnv(t, cloudsim.Config{})
	code, out, stderr := run(t, cmdArgs([]string{"server", "create", "web", "--count", "2", "--json"}, createArgs)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m := regexp.MustCompile(`(?m)^ostask: idempotency key (\S+);.*\n  (ostask .*)$`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no key and resume command at the start of stderr:\n%s", stderr)
	}
	key, resume := m[1], m[2]
	if !strings.HasSuffix(resume, " --idempotency-key "+key) || !strings.Contains(resume, "server create web --count 2 --json") {
		t.Fatalf("resume command %q", resume)
	}
	first := decodeOutcomes(t, out)
	for i, o := range first {
		if o.Adopted || o.Result != resultSucceeded || o.Key != key+"/"+string(rune('1'+i)) {
			t.Fatalf("first run: %+v", o)
		}
	}
	out = mustRun(t, strings.Fields(resume)[1:]...)
	again := decodeOutcomes(t, out)
	for i, o := range again {
		if !o.Adopted || o.ID != first[i].ID || o.Result != resultSucceeded {
			t.Fatalf("re-run did not adopt: %+v (first run %+v)", o, first[i])
		}
	}
	if live := liveServers(sim); len(live["web-1"]) != 1 || len(live["web-2"]) != 1 || len(live) != 2 {
		t.Fatalf("servers after the re-run: %+v", live)
	}
}

// --keep-failed keeps every failed attempt's server and says so; the
// failure names the server and carries the cloud's fault, once.
func TestKeepFailed(t *testing.T) {
	noLeaks(t)
	sim := simEnv(t, cloudsim.Config{Faults: &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpServerCreate: {Error: 1}}}})
	code, out, stderr := run(t, cmdArgs([]string{"server", "create", "doomed", "--retries", "2", "--keep-failed", "--json"}, createArgs)...)
	if code != 1 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	res := decodeOutcomes(t, out)
	if len(res) != 1 || res[0].Result != resultFailed || len(res[0].Kept) != 2 || res[0].Attempts != 2 {
		t.Fatalf("outcome %+v", res)
	}
	live := liveServers(sim)["doomed"]
	if len(live) != 2 {
		t.Fatalf("%d servers kept, want both attempts': %+v", len(live), live)
	}
	for _, s := range live {
		if s.Status != "ERROR" || !strings.Contains(stderr, s.ID) {
			t.Fatalf("kept server %+v not named in %q", s, stderr)
		}
	}
	if !strings.Contains(stderr, "--keep-failed kept 2 failed server(s); delete them with: ostask server delete") {
		t.Fatalf("stderr does not say what was kept: %q", stderr)
	}
	if n := strings.Count(stderr, "No valid host was found"); n != 2 { // once per attempt
		t.Fatalf("fault message %d times in %q", n, stderr)
	}
}

// Failures of several operations are each named with their reason.
func TestFailuresNameWhatFailed(t *testing.T) {
	noLeaks(t)
	simEnv(t, cloudsim.Config{Faults: &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpServerCreate, Name: "web-2", Kind: cloudsim.FaultError, Message: "disk on fire"}}}})
	code, out, stderr := run(t, cmdArgs([]string{"server", "create", "web", "--count", "3", "--retries", "1"}, createArgs)...)
	if code != 1 {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	if !strings.Contains(stderr, "1 of 3 failed:\n  create web-2: server ") || !strings.Contains(stderr, "disk on fire") ||
		strings.Contains(stderr, "web-1") || strings.Contains(stderr, "web-3") {
		t.Fatalf("stderr does not name the failure: %q", stderr)
	}
	if !strings.Contains(out, "create: 2 of 3 succeeded, 1 failed") || strings.Contains(out, "disk on fire") {
		t.Fatalf("stdout %q", out)
	}
}

// An API error is the cloud's message with the request id, printed once,
// not gophercloud's text.
func TestAPIErrorPrintedOnce(t *testing.T) {
	simEnv(t, cloudsim.Config{})
	mustRun(t, cmdArgs([]string{"server", "create", "web"}, createArgs)...)
	mustRun(t, "server", "stop", "web")
	code, out, stderr := run(t, "server", "stop", "web")
	if code != 1 {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	all := out + stderr
	msg := regexp.MustCompile(`409 Conflict on POST /\S+/action: ([^\[]+) \[req-[0-9a-f-]+\]`).FindStringSubmatch(stderr)
	if msg == nil || strings.Contains(all, "Expected HTTP response code") {
		t.Fatalf("stderr %q", stderr)
	}
	if n := strings.Count(all, strings.TrimSpace(msg[1])); n != 1 {
		t.Fatalf("the cloud's message %q appears %d times in %q", msg[1], n, all)
	}
}

func TestNewCommands(t *testing.T) {
	sim := simEnv(t, cloudsim.Config{Faults: &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpServerDelete, Name: "flaky", Nth: 1, Kind: cloudsim.FaultError}}}})
	flavorOf := func(name string) string {
		var s struct {
			Flavor struct {
				Name string `json:"original_name"`
			} `json:"flavor"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal([]byte(mustRun(t, "server", "show", name, "--json")), &s); err != nil {
			t.Fatal(err)
		}
		return s.Status + " " + s.Flavor.Name
	}
	mustRun(t, cmdArgs([]string{"server", "create", "a"}, createArgs)...)
	t.Run("confirm-resize", func(t *testing.T) {
		mustRun(t, "server", "resize", "a", "--flavor", "m1.small")
		if got := flavorOf("a"); got != "VERIFY_RESIZE m1.small" {
			t.Fatalf("after resize: %s", got)
		}
		mustRun(t, "server", "confirm-resize", "a")
		if got := flavorOf("a"); got != "ACTIVE m1.small" {
			t.Fatalf("after confirm: %s", got)
		}
	})
	t.Run("revert-resize", func(t *testing.T) {
		mustRun(t, "server", "resize", "a", "--flavor", "m1.medium")
		mustRun(t, "server", "revert-resize", "a")
		if got := flavorOf("a"); got != "ACTIVE m1.small" {
			t.Fatalf("after revert: %s", got)
		}
	})
	t.Run("live-migrate needs admin", func(t *testing.T) {
		code, _, stderr := run(t, "server", "live-migrate", "a")
		if code != 1 || !strings.Contains(stderr, "403 Forbidden") {
			t.Fatalf("exit %d: %q", code, stderr)
		}
		// ops watches the servers of the project it is scoped to.
		mustRun(t, cmdArgs([]string{"server", "create", "adm", "--os-cloud", "ostask-sim-admin"}, createArgs)...)
		mustRun(t, "server", "live-migrate", "adm", "--os-cloud", "ostask-sim-admin")
	})
	t.Run("list and show", func(t *testing.T) {
		out := mustRun(t, "server", "list")
		if !regexp.MustCompile(`(?m)^[0-9a-f-]{36}\s+a\s+ACTIVE\s+-$`).MatchString(out) {
			t.Fatalf("list:\n%s", out)
		}
		out = mustRun(t, "server", "show", "a")
		for _, want := range []string{"status             ACTIVE", "flavor             m1.small", "ostask-idempotency-key"} {
			if !strings.Contains(out, want) {
				t.Errorf("show lacks %q:\n%s", want, out)
			}
		}
		code, _, stderr := run(t, "server", "show", "ghost")
		if code != 2 || !strings.Contains(stderr, `no server named or with id "ghost"`) {
			t.Fatalf("exit %d: %q", code, stderr)
		}
	})
	t.Run("volume list and show", func(t *testing.T) {
		mustRun(t, "volume", "create", "data", "--size", "2")
		out := mustRun(t, "volume", "list")
		if !regexp.MustCompile(`(?m)^[0-9a-f-]{36}\s+data\s+available\s+2 GiB\s+-$`).MatchString(out) {
			t.Fatalf("list:\n%s", out)
		}
		if out := mustRun(t, "volume", "show", "data"); !strings.Contains(out, "size               2 GiB") {
			t.Fatalf("show:\n%s", out)
		}
	})
	t.Run("image delete", func(t *testing.T) {
		mustRun(t, "server", "snapshot", "a", "--name", "a-snap")
		mustRun(t, "image", "delete", "a-snap")
		for _, im := range sim.Images() {
			if im.Name == "a-snap" {
				t.Fatalf("snapshot still there: %+v", im)
			}
		}
	})
	t.Run("delete retries", func(t *testing.T) {
		mustRun(t, cmdArgs([]string{"server", "create", "flaky"}, createArgs)...)
		code, out, stderr := run(t, "server", "delete", "flaky", "--retries", "1", "--json")
		if code != 1 || decodeOutcomes(t, out)[0].Result != resultFailed {
			t.Fatalf("one attempt: exit %d %s %s", code, out, stderr)
		}
		out = mustRun(t, "server", "delete", "flaky", "--retries", "2", "--json")
		if o := decodeOutcomes(t, out)[0]; o.Result != resultSucceeded || o.Attempts != 1 {
			t.Fatalf("%+v", o)
		}
		if live := liveServers(sim)["flaky"]; len(live) != 0 {
			t.Fatalf("flaky still there: %+v", live)
		}
	})
}

// The first delete of "flaky2" fails into ERROR; --retries 3 deletes it
// on the second attempt within one command.
func TestDeleteRetriesWithinOneCommand(t *testing.T) {
	sim := simEnv(t, cloudsim.Config{Faults: &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpServerDelete, Name: "flaky2", Nth: 1, Kind: cloudsim.FaultError}}}})
	mustRun(t, cmdArgs([]string{"server", "create", "flaky2"}, createArgs)...)
	out := mustRun(t, "server", "delete", "flaky2", "--retries", "3", "--json")
	if o := decodeOutcomes(t, out)[0]; o.Result != resultSucceeded || o.Attempts != 2 {
		t.Fatalf("%+v", o)
	}
	if live := liveServers(sim)["flaky2"]; len(live) != 0 {
		t.Fatalf("still there: %+v", live)
	}
}

func TestVersion(t *testing.T) {
	out := mustRun(t, "--version")
	if !strings.HasPrefix(out, "ostask (devel) (") || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("--version: %q", out)
	}
	old := Version
	Version = "v1.2.3"
	defer func() { Version = old }()
	if out := mustRun(t, "--version"); !strings.HasPrefix(out, "ostask v1.2.3 (") {
		t.Fatalf("--version with Version set: %q", out)
	}
}

// demo --json exits 1 when something leaked, after printing the summary.
func TestDemoJSONFailsOnLeaks(t *testing.T) {
	code, out, stderr := run(t, "demo", "--servers", "2", "--snapshots", "0", "--timing", "fast", "--build-timeout", "2s",
		"--fault-plan", "server.delete.error=1", "--json")
	var s demoSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if code != 1 || s.Leaked == 0 || !strings.Contains(stderr, "resources leaked") {
		t.Fatalf("exit %d, leaked %d, stderr %q", code, s.Leaked, stderr)
	}
}

func TestDemoHelpSaysWhyASeedDoesNotFixCounts(t *testing.T) {
	out := mustRun(t, "demo", "--help")
	for _, want := range []string{"A fixed --seed fixes the simulator's random stream, not the run's outcome", "timing decides"} {
		if !strings.Contains(out, want) {
			t.Fatalf("help lacks %q", want)
		}
	}
}

// ostask sim writes its clouds.yaml under the state directory, never in
// the current one, and prints where.
func TestSimWritesCloudsYAMLUnderStateDir(t *testing.T) {
	state, cwd := t.TempDir(), t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	t.Chdir(cwd)
	export := runSim(t, "--listen", "127.0.0.1:0", "--timing", "fast")
	want := filepath.Join(state, "ostask", "sim", "clouds.yaml")
	if export != "use it:      export OS_CLIENT_CONFIG_FILE="+want+" OS_CLOUD=ostask-sim" {
		t.Fatalf("export line %q, want the file %s", export, want)
	}
	if _, err := os.Stat(want); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(cwd); len(entries) != 0 {
		t.Fatalf("ostask sim wrote into the current directory: %v", entries)
	}
}
