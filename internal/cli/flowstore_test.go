package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/store/sqlite"
)

// A run recorded with --store is listed by 'flow runs' and shown task by
// task by 'flow show'; its failure names the cloud's fault.
func TestFlowRunsAndShow(t *testing.T) {
	noLeaks(t)
	simEnv(t, cloudsim.Config{})
	st := "sqlite:" + filepath.Join(t.TempDir(), "runs.db")
	args := []string{"flow", "run", "boot-from-volume", "--name", "web", "--flavor", "m1.tiny", "--image", cloudsim.CirrosImageName,
		"--network", "none", "--store", st}
	mustRun(t, append(args, "--run-id", "ok-1")...)
	if code, _, _ := run(t, append(args, "--run-id", "ok-1")...); code != 2 {
		t.Fatalf("a second run with a recorded id: exit %d, want 2", code)
	}
	out := mustRun(t, "flow", "runs", "--store", st, "--json")
	var runs []runJSON
	if err := json.Unmarshal([]byte(out), &runs); err != nil || len(runs) != 1 || runs[0].ID != "ok-1" ||
		runs[0].State != "SUCCESS" || runs[0].Flow != "boot-from-volume" || runs[0].Version != "1" || runs[0].Epoch != 1 {
		t.Fatalf("runs %+v %v\n%s", runs, err, out)
	}
	var shown runJSON
	if err := json.Unmarshal([]byte(mustRun(t, "flow", "show", "ok-1", "--store", st, "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	if len(shown.Atoms) != 4 || string(shown.Params["name"]) != `"web"` {
		t.Fatalf("show %+v", shown)
	}
	for _, a := range shown.Atoms {
		if a.State != "SUCCESS" || a.Attempts != 1 || a.Started == nil || a.Finished == nil {
			t.Fatalf("atom %+v", a)
		}
	}
	text := mustRun(t, "flow", "show", "ok-1", "--store", st)
	for _, want := range []string{"run ok-1: flow boot-from-volume version 1 SUCCESS", "create-boot-volume", "ATTEMPTS"} {
		if !strings.Contains(text, want) {
			t.Fatalf("show lacks %q:\n%s", want, text)
		}
	}
}

func TestFlowShowsTheCloudsFault(t *testing.T) {
	noLeaks(t)
	simEnv(t, cloudsim.Config{Faults: &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpServerCreate, Kind: cloudsim.FaultError, Message: "No valid host was found (scripted)"}}}})
	st := "sqlite:" + filepath.Join(t.TempDir(), "runs.db")
	code, _, _ := run(t, "flow", "run", "boot-from-volume", "--name", "web", "--flavor", "m1.tiny", "--image", cloudsim.CirrosImageName,
		"--network", "none", "--retries", "1", "--store", st, "--run-id", "bad-1")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	var shown runJSON
	if err := json.Unmarshal([]byte(mustRun(t, "flow", "show", "bad-1", "--store", st, "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range shown.Atoms {
		if a.Name == "boot-server" && a.Failure != nil && strings.Contains(a.Failure.Message, "No valid host was found (scripted)") &&
			strings.Contains(a.Failure.Message, "[req-") {
			found = true
		}
	}
	if shown.State != "REVERTED" || !found {
		t.Fatalf("show %+v", shown)
	}
}

func TestStoreRefusals(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("INSERT INTO ostask_schema (version, name) VALUES (99, '0099_future.sql')"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"flow", "resume", "nope", "--store", "sqlite:" + filepath.Join(t.TempDir(), "x.db")}, 2, `run "nope": store: run not found`},
		{[]string{"flow", "show", "nope", "--store", "sqlite:" + filepath.Join(t.TempDir(), "x.db")}, 2, "run not found"},
		{[]string{"flow", "runs", "--store", "sqlite:" + path}, 2, "database schema version 99 is newer than this binary knows"},
		{[]string{"migrate", "--store", "sqlite:" + path}, 2, "upgrade ostask"},
		{[]string{"flow", "runs", "--store", "none"}, 2, "--store none records nothing"},
		{[]string{"flow", "runs", "--state", "NAPPING", "--store", "sqlite:" + path}, 2, "--state"},
	} {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			code, _, stderr := run(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d with %q", code, stderr, tc.code, tc.want)
			}
		})
	}
	out := mustRun(t, "migrate", "--store", "sqlite:"+filepath.Join(t.TempDir(), "new.db"))
	if !strings.HasPrefix(out, "store schema migrated from version 0 to ") {
		t.Fatalf("migrate: %q", out)
	}
}

// With --store none the run lives in memory only, and the command to run
// again is the old one: the same --run-id adopts what was made.
func TestFlowRunStoreNone(t *testing.T) {
	noLeaks(t)
	code, out, stderr := run(t, append(bfvArgs, "--store", "none", "--json", "--run-id", "mem-1")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var start map[string]string
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &start); err != nil || !strings.HasSuffix(start["resume"], " --run-id mem-1") ||
		!strings.HasPrefix(start["resume"], "ostask flow run boot-from-volume") {
		t.Fatalf("start %v %v", start, err)
	}
}
