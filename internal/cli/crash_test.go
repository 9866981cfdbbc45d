package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/store/postgres/pgtest"
)

// childResult is how a child ostask process ended.
type childResult struct {
	killed         bool // by SIGKILL
	code           int
	stdout, stderr string
}

// runChild runs ostask args in a child process (this test binary) with the
// test's environment plus env, to its end.
func runChild(t *testing.T, env []string, args ...string) childResult {
	t.Helper()
	a, _ := json.Marshal(args)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(append(os.Environ(), childArgsEnv+"="+string(a)), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := childResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			res.killed = true
		}
		res.code = ee.ExitCode()
	default:
		t.Fatalf("%v: %v", args, err)
	}
	return res
}

// endReport is the last line of 'flow run --json' and 'flow resume --json'.
func endReport(t *testing.T, r childResult) flowReport {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var rep flowReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil || rep.Event != "end" {
		t.Fatalf("no end report (exit %d, killed %v): %v\nstdout: %s\nstderr: %s", r.code, r.killed, err, r.stdout, r.stderr)
	}
	return rep
}

// outcome is what must be the same after a crash and a resume as after
// an uninterrupted run: the flow's state, each task's state and whether
// it has a result, and what the cloud holds.
type crashOutcome struct {
	State   string
	Tasks   map[string]string // name -> state, "+id" when it produced one
	Servers []string          // live, by name and status
	Volumes []string          // by name, status and attachments
	Images  int               // made by the run
}

func outcomeOf(t *testing.T, rep flowReport, sim *cloudsim.Sim, baseImages int) crashOutcome {
	t.Helper()
	o := crashOutcome{State: rep.State, Tasks: map[string]string{}}
	for _, tr := range rep.Tasks {
		s := tr.State
		if tr.ID != "" {
			s += "+id"
		}
		o.Tasks[tr.Name] = s
	}
	for _, s := range sim.Servers(false) {
		o.Servers = append(o.Servers, s.Name+" "+s.Status)
	}
	for _, v := range sim.Volumes() {
		o.Volumes = append(o.Volumes, fmt.Sprintf("%s %s attached=%d", v.Name, v.Status, len(v.ServerIDs)))
	}
	slices.Sort(o.Servers)
	slices.Sort(o.Volumes)
	o.Images = len(sim.Images()) - baseImages
	// The ids the report names are the ones the cloud holds.
	if rep.State == "SUCCESS" {
		live := map[string]bool{}
		for _, s := range sim.Servers(false) {
			live[s.ID] = true
		}
		for _, v := range sim.Volumes() {
			live[v.ID] = true
		}
		for name, id := range rep.Values {
			if !live[id] {
				t.Errorf("the report's %s %s does not exist in the cloud", name, id)
			}
		}
	}
	return o
}

type crashScenario struct {
	name  string
	args  []string // flow run ... (without --store, --run-id, --json)
	plan  *cloudsim.FaultPlan
	state string // the uninterrupted run's
}

var crashScenarios = []crashScenario{
	{"boot-from-volume", []string{"flow", "run", "boot-from-volume", "--name", "web", "--flavor", "m1.tiny",
		"--image", cloudsim.CirrosImageName, "--network", "none"}, nil, "SUCCESS"},
	{"server-with-volumes", []string{"flow", "run", "server-with-volumes", "--name", "db", "--flavor", "m1.tiny",
		"--image", cloudsim.CirrosImageName, "--network", "none", "--volumes", "2"}, nil, "SUCCESS"},
	// Every attach fails: the run reverts after making a server and three
	// volumes, and a kill during the revert must leave none of them.
	{"boot-from-volume reverting", []string{"flow", "run", "boot-from-volume", "--name", "rev", "--flavor", "m1.tiny",
		"--image", cloudsim.CirrosImageName, "--network", "none", "--retries", "1"},
		&cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpVolumeAttach, Kind: cloudsim.FaultError}}}, "REVERTED"},
}

// TestCrashAnywhereResumes kills 'ostask flow run' (SIGKILL, a real child
// process) at every stage of every write it makes to its store: before
// the write, inside its transaction, and after it committed, which
// covers before and after each task starts and finishes, and points
// during reverts. The cloud is a cloudsim in this test process, so it
// outlives the kill. 'ostask flow resume' in a new process then brings
// the run to the same end as an uninterrupted run: same flow and task
// states, the same resources in the cloud, no duplicate and no leak. On
// SQLite and on PostgreSQL.
//
// Each kill point costs a few seconds (two processes, a fresh cloud and
// store), so by default two scenarios (forward and reverting) are killed
// at every other write; OSTASK_CRASH_FULL=1 kills every scenario at every
// write, and -short only the reverting one at every third.
func TestCrashAnywhereResumes(t *testing.T) {
	type storeKind struct {
		name string
		url  func(t *testing.T) string // a fresh, empty store
	}
	kinds := []storeKind{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "ostask.db") }},
		{"postgres", func(t *testing.T) string {
			url, schema := pgtest.Schema(t)
			conn, err := pgx.Connect(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(context.Background(), "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
				t.Fatal(err)
			}
			return url + "&search_path=" + schema
		}},
	}
	scenarios, step := []crashScenario{crashScenarios[0], crashScenarios[2]}, 2
	switch {
	case os.Getenv("OSTASK_CRASH_FULL") == "1":
		scenarios, step = crashScenarios, 1
	case testing.Short():
		scenarios, step = crashScenarios[2:], 3
	}
	killPoints := 0
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					killPoints += crashScenarioAtEveryWrite(t, sc, step, kind.url)
				})
			}
		})
	}
	t.Logf("kill points exercised: %d", killPoints)
}

func crashScenarioAtEveryWrite(t *testing.T, sc crashScenario, step int, newStore func(*testing.T) string) int {
	run := func(t *testing.T, env []string) (crashOutcome, bool) {
		sim := simEnv(t, cloudsim.Config{Faults: sc.plan})
		base := len(sim.Images())
		url := newStore(t)
		args := append(slices.Clone(sc.args), "--run-id", "crash", "--store", url, "--json")
		first := runChild(t, env, args...)
		if !first.killed {
			rep := endReport(t, first)
			return outcomeOf(t, rep, sim, base), false
		}
		second := runChild(t, nil, "flow", "resume", "crash", "--store", url, "--json", "--retries", "1")
		if second.killed {
			t.Fatalf("the resume was killed: %s", second.stderr)
		}
		return outcomeOf(t, endReport(t, second), sim, base), true
	}
	var want crashOutcome
	t.Run("uninterrupted", func(t *testing.T) {
		want, _ = run(t, nil)
		if want.State != sc.state {
			t.Fatalf("uninterrupted run ended %s, want %s", want.State, sc.state)
		}
	})
	points := 0
	for _, stage := range []string{"before", "inside", "after"} {
		for n := 1; ; n += step {
			var killed bool
			t.Run(fmt.Sprintf("%s write %d", stage, n), func(t *testing.T) {
				var got crashOutcome
				got, killed = run(t, []string{crashEnv + "=" + fmt.Sprintf("%d:%s", n, stage)})
				if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
					t.Fatalf("killed %v, then resumed:\n got  %s\n want %s", killed, g, w)
				}
			})
			if !killed {
				break // the run made fewer writes
			}
			points++
		}
	}
	return points
}
