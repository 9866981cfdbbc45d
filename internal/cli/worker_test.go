package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/store/postgres/pgtest"
)

func TestWorkerHelpAndRefusals(t *testing.T) {
	clearCloudEnv(t)
	out := mustRun(t, "worker", "--help")
	for _, want := range []string{"--store", "--os-cloud", "--project-cloud", "--lease-ttl", "--shutdown-timeout", "SIGKILL"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	db := filepath.Join(t.TempDir(), "q.db")
	for _, args := range [][]string{
		{"worker", "--store", db},                            // no credentials
		{"worker", "--store", db, "--project-cloud", "nope"}, // not PROJECT=CLOUD
		{"worker", "--store", db, "--os-cloud", "x", "--lease-ttl", "10ms"},
		{"worker", "--store", "none", "--os-cloud", "x"},
	} {
		if code, _, stderr := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
}

// worker is a child process running 'ostask worker'.
type workerProc struct {
	id     string
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *lockedWriter // read while the child writes: String locks
}

func startWorkerProc(t *testing.T, id string, args ...string) *workerProc {
	t.Helper()
	return startWorkerProcEnv(t, id, nil, args...)
}

// startWorkerProcEnv is startWorkerProc with env added to the child's
// environment.
func startWorkerProcEnv(t *testing.T, id string, env []string, args ...string) *workerProc {
	t.Helper()
	a, _ := json.Marshal(append([]string{"worker", "--id", id}, args...))
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), childArgsEnv+"="+string(a)), env...)
	errw := &lockedWriter{w: &strings.Builder{}}
	cmd.Stderr = errw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &workerProc{id: id, cmd: cmd, done: make(chan struct{}), stderr: errw}
	go func() {
		_ = cmd.Wait()
		close(w.done)
	}()
	return w
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

func (w *workerProc) kill() {
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.done
}

func (w *workerProc) stop(t *testing.T) {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(time.Minute):
		w.kill()
		t.Errorf("worker %s did not stop on SIGTERM", w.id)
	}
}

// TestWorkerFailover: three worker processes run 300 tasks against a
// cloudsim with a fault plan while one of them is SIGKILLed every couple
// of seconds and restarted. Every task ends; those that failed did so by
// the injected faults; the fencing history shows no task written by two
// workers at once; cloudsim holds exactly what the succeeded tasks made.
func TestWorkerFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("the failover test runs for about a minute")
	}
	url, schema := pgtest.Schema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	storeURL := url + sep + "search_path=" + schema
	timing := cloudsim.FastTiming()
	timing.BuildSpawn, timing.VolumeCreate = 600*time.Millisecond, 400*time.Millisecond
	sim := simEnv(t, cloudsim.Config{Timing: &timing, Seed: 7, Faults: &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{
		cloudsim.OpVolumeCreate: {Error: 0.15},
		cloudsim.OpServerCreate: {Error: 0.1},
	}}})

	q, err := jobs.Open(ctx, jobs.Config{URL: storeURL, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	// 300 tasks: no-ops, volumes and servers; a third of the cloud tasks
	// make one attempt only, so that the injected faults fail some.
	n := 300
	if v := os.Getenv("OSTASK_FAILOVER_TASKS"); v != "" {
		fmt.Sscan(v, &n)
	}
	ids := make([]string, n)
	for i := range n {
		var nt jobs.NewTask
		switch i % 3 {
		case 0:
			nt = jobs.NewTask{Kind: "noop", Params: json.RawMessage(`{}`)}
		case 1:
			nt = jobs.NewTask{Kind: "volume.create", Params: json.RawMessage(fmt.Sprintf(`{"name":"fo-v-%d","size":1}`, i))}
		default:
			nt = jobs.NewTask{Kind: "server.create", Params: json.RawMessage(fmt.Sprintf(`{"name":"fo-s-%d","flavor":"1","image":%q,"network":"none"}`, i, cloudsim.CirrosImageID))}
		}
		nt.Project = cloudsim.DemoProjectID
		if i%9 >= 6 {
			nt.Options.Retries = 1
		}
		task, _, err := q.Create(ctx, nt)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = task.ID
	}

	args := []string{"--store", storeURL, "--os-cloud", cloudsim.DefaultCloudName, "--lease-ttl", "2s", "--max-losses", "20", "--concurrency", "12", "--log-level", "warn"}
	var mu sync.Mutex
	procs := make([]*workerProc, 3)
	kills := map[string]time.Time{} // worker id → when it was killed
	gen := 0
	for i := range procs {
		gen++
		procs[i] = startWorkerProc(t, fmt.Sprintf("w%d-%d", i, gen), args...)
	}
	stopKiller := make(chan struct{})
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stopKiller:
				return
			case <-time.After(2500 * time.Millisecond):
			}
			i := rng.IntN(len(procs))
			mu.Lock()
			p := procs[i]
			p.kill()
			kills[p.id] = time.Now()
			gen++
			procs[i] = startWorkerProc(t, fmt.Sprintf("w%d-%d", i, gen), args...)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range procs {
			p.stop(t)
			if t.Failed() {
				t.Logf("worker %s stderr:\n%s", p.id, tail(p.stderr.String(), 3000))
			}
		}
	}()

	// Wait until every task ended.
	waitUntil := time.Now().Add(150 * time.Second)
	var cursor int64 = -1
	for {
		_, cur, err := q.Changes(ctx, jobs.Filter{}, cursor)
		if err != nil {
			close(stopKiller)
			<-killerDone
			t.Fatal(err)
		}
		cursor = cur
		open := 0
		var openTasks []string
		for _, id := range ids {
			task, err := q.Get(ctx, id)
			if err != nil {
				close(stopKiller)
				<-killerDone
				t.Fatal(err)
			}
			if !task.Status.Final() {
				open++
				if len(openTasks) < 10 {
					openTasks = append(openTasks, fmt.Sprintf("%s %s %s worker=%q attempts=%d", task.ID, task.Kind, task.Status, task.Worker, task.Attempts))
				}
			}
		}
		if open == 0 {
			break
		}
		if time.Now().After(waitUntil) {
			close(stopKiller)
			<-killerDone
			t.Fatalf("%d tasks still open: %s", open, strings.Join(openTasks, "\n"))
		}
		wctx, wcancel := context.WithTimeout(ctx, time.Second)
		_ = q.WaitChanges(wctx, cursor)
		wcancel()
	}
	close(stopKiller)
	<-killerDone

	mu.Lock()
	killed := len(kills)
	killAt := maps(kills)
	mu.Unlock()
	statuses := map[jobs.Status]int{}
	var takeovers []time.Duration
	made := map[string]string{} // resource id → task
	names := map[string]int{}
	for i, id := range ids {
		task, err := q.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		statuses[task.Status]++
		switch task.Status {
		case jobs.Succeeded:
			for _, r := range task.Resources {
				made[r.ID] = id
			}
		case jobs.Reverted, jobs.Failed:
			if i%3 == 0 || task.Error == nil || !strings.Contains(task.Error.Message, "status") && !strings.Contains(task.Error.Message, "fault") && !strings.Contains(task.Error.Message, "rror") {
				t.Errorf("task %d (%s) %s without an injected fault: %+v", i, task.Kind, task.Status, task.Error)
			}
		default:
			t.Errorf("task %d ended %s", i, task.Status)
		}
		// Fencing: claims strictly increase, events never go back to an
		// older epoch, and each event's worker held its epoch.
		claims, err := q.Claims(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		holder := map[int64]string{}
		for j, c := range claims {
			holder[c.Epoch] = c.Worker
			if j > 0 {
				if c.Epoch <= claims[j-1].Epoch {
					t.Fatalf("task %s: claims %v", id, claims)
				}
				if at, ok := killAt[claims[j-1].Worker]; ok && c.Worker != claims[j-1].Worker && c.At.After(at) {
					takeovers = append(takeovers, c.At.Sub(at))
				}
			}
		}
		epochs, err := q.EventEpochs(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := q.Events(ctx, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var last int64
		for j := range epochs {
			if epochs[j] == 0 {
				continue // the queue's own events, and failures of a lease holder that did not run the flow
			}
			if epochs[j] < last {
				t.Fatalf("task %s: an event of epoch %d after one of epoch %d: two workers acted at once", id, epochs[j], last)
			}
			last = epochs[j]
			if epochs[j] > 0 && evs[j].Worker != "" && holder[epochs[j]] != evs[j].Worker {
				t.Fatalf("task %s: event %d by %s under epoch %d held by %s", id, evs[j].Seq, evs[j].Worker, epochs[j], holder[epochs[j]])
			}
		}
	}
	for _, s := range sim.Servers(false) {
		names[s.Name]++
		if _, ok := made[s.ID]; !ok {
			t.Errorf("leaked server %s %s %s", s.Name, s.ID, s.Status)
		}
	}
	for _, v := range sim.Volumes() {
		names[v.Name]++
		if _, ok := made[v.ID]; !ok {
			t.Errorf("leaked volume %s %s %s", v.Name, v.ID, v.Status)
		}
	}
	for name, c := range names {
		if c > 1 {
			t.Errorf("%d resources named %s", c, name)
		}
	}
	if len(made) != len(sim.Servers(false))+len(sim.Volumes()) {
		t.Errorf("succeeded tasks made %d resources, cloudsim holds %d servers and %d volumes", len(made), len(sim.Servers(false)), len(sim.Volumes()))
	}
	slices.Sort(takeovers)
	p := func(f float64) time.Duration {
		if len(takeovers) == 0 {
			return 0
		}
		return takeovers[min(len(takeovers)-1, int(f*float64(len(takeovers))))]
	}
	t.Logf("failover: %d tasks %v; %d workers SIGKILLed; %d takeovers, p50 %s, p99 %s, max %s",
		n, statuses, killed, len(takeovers), p(0.5).Round(time.Millisecond), p(0.99).Round(time.Millisecond), p(1).Round(time.Millisecond))
	if statuses[jobs.Succeeded] == 0 || killed == 0 {
		t.Fatalf("nothing was tested: %v, %d kills", statuses, killed)
	}
}

func maps(m map[string]time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestWorkerPoisonTask: a task that kills every worker running it at the
// same step (a child 'ostask worker' SIGKILLs itself there) is, after
// --max-losses losses, reverted by the next worker instead of being run
// again, and fails with the reason: nothing it made is left in the cloud.
// When its revert kills the workers too, --max-losses more losses later it
// fails without running anything, and its error names, by id, every
// resource it left.
func TestWorkerPoisonTask(t *testing.T) {
	for _, tc := range []struct {
		name    string
		crashAt string // OSTASK_TEST_CRASH_STEP of the killed workers
		killed  int    // workers killed before one ends the task
	}{
		{"reverted", "attach-volume-1", 2},
		{"revert-dies-too", "attach-volume-1,revert:create-volume-1", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timing := cloudsim.FastTiming()
			sim := simEnv(t, cloudsim.Config{Timing: &timing})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			db := filepath.Join(t.TempDir(), "q.db")
			q, err := jobs.Open(ctx, jobs.Config{URL: db, PollInterval: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			task, _, err := q.Create(ctx, jobs.NewTask{Kind: "server-with-volumes", Project: cloudsim.DemoProjectID,
				Params: json.RawMessage(`{"name":"poison","flavor":"1","image":"` + cloudsim.CirrosImageID + `","volumes":1,"network":"none"}`)})
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"--store", db, "--os-cloud", cloudsim.DefaultCloudName, "--lease-ttl", "1s", "--max-losses", "2", "--log-level", "warn"}
			// The attach starts once the server and the volume exist: each
			// killed worker leaves both made.
			for i := 1; i <= tc.killed; i++ {
				p := startWorkerProcEnv(t, fmt.Sprintf("w%d", i), []string{crashStepEnv + "=" + tc.crashAt}, args...)
				select {
				case <-p.done:
				case <-ctx.Done():
					p.kill()
					t.Fatalf("worker %d was not killed at its step: %s", i, p.stderr.String())
				}
				if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("worker %d ended %v, not by its SIGKILL: %s", i, p.cmd.ProcessState, p.stderr.String())
				}
				if got, err := q.Get(ctx, task.ID); err != nil || got.Status.Final() {
					t.Fatalf("after worker %d: %+v %v", i, got, err)
				}
			}
			last := startWorkerProcEnv(t, "last", []string{crashStepEnv + "=" + tc.crashAt}, args...)
			defer last.stop(t)
			var got jobs.Task
			for {
				if got, err = q.Get(ctx, task.ID); err != nil {
					t.Fatal(err)
				}
				if got.Status.Final() {
					break
				}
				if err := q.WaitEvents(ctx, task.ID, int64(1<<62)); err != nil && !errors.Is(err, context.DeadlineExceeded) {
					t.Fatal(err)
				} else if err != nil {
					t.Fatalf("task still %s: %s", got.Status, last.stderr.String())
				}
			}
			if got.Status != jobs.Failed || got.Error == nil || !strings.Contains(got.Error.Message, fmt.Sprintf("lost its worker %d times", tc.killed)) {
				t.Fatalf("poison task ended %s: %+v", got.Status, got.Error)
			}
			evs, err := q.Events(ctx, task.ID, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if end := evs[len(evs)-1]; end.To != string(jobs.Failed) || end.Error == nil || end.Error.Message != got.Error.Message {
				t.Fatalf("last event %+v, want the failure", end)
			}
			claims, err := q.Claims(ctx, task.ID)
			if err != nil {
				t.Fatal(err)
			}
			servers, volumes := sim.Servers(false), sim.Volumes()
			switch tc.name {
			case "reverted":
				// The third worker reverted what the first two made.
				if !strings.Contains(got.Error.Message, "reverted") || len(claims) != 3 || claims[2].Worker != "last" {
					t.Errorf("error %q, claims %+v", got.Error.Message, claims)
				}
				if len(servers)+len(volumes) != 0 {
					t.Errorf("leaked: servers %+v, volumes %+v", servers, volumes)
				}
			default:
				// The volume's revert never ran: the volume is left, and
				// named; so is anything else left (the server's revert may
				// have been cut short too).
				if len(volumes) != 1 || len(claims) != 4 {
					t.Errorf("volumes %+v, claims %+v", volumes, claims)
				}
				for _, v := range volumes {
					if !strings.Contains(got.Error.Message, v.ID) {
						t.Errorf("volume %s left, not named in %q", v.ID, got.Error.Message)
					}
				}
				for _, s := range servers {
					if !strings.Contains(got.Error.Message, s.ID) {
						t.Errorf("server %s left, not named in %q", s.ID, got.Error.Message)
					}
				}
			}
			t.Logf("%s: %s", got.Status, got.Error.Message)
		})
	}
}

// pgStoreURL makes a fresh PostgreSQL schema and returns a store URL whose
// connections use it, for worker processes, and the schema.
func pgStoreURL(t *testing.T, ctx context.Context) (string, string) {
	t.Helper()
	url, schema := pgtest.Schema(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema, schema
}

// TestWorkerPausedIsFenced: worker A is paused (SIGSTOP) in the middle of
// a task's step; its lease expires and worker B takes the task over under
// a new epoch and finishes it. Meanwhile River still holds A's ticket as
// running: River's view alone would let both work the task, and its
// rescuer would not step in for an hour; the lease and the epoch are what
// guard it. When A resumes (SIGCONT), its next write is refused (fenced):
// it stops acting on the task and writes no event, and the task keeps B's
// outcome; the fencing history shows no overlap.
func TestWorkerPausedIsFenced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	storeURL, _ := pgStoreURL(t, ctx)
	timing := cloudsim.FastTiming()
	timing.VolumeCreate = 4 * time.Second
	sim := simEnv(t, cloudsim.Config{Timing: &timing})
	q, err := jobs.Open(ctx, jobs.Config{URL: storeURL, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	conn, err := pgx.Connect(ctx, storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	task, _, err := q.Create(ctx, jobs.NewTask{Kind: "volume.create", Project: cloudsim.DemoProjectID, Params: json.RawMessage(`{"name":"paused","size":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--store", storeURL, "--os-cloud", cloudsim.DefaultCloudName, "--lease-ttl", "1s", "--log-level", "info"}
	a := startWorkerProc(t, "A", args...)
	defer a.stop(t)
	// A is in the step (creating the volume, which takes 4 s): pause it.
	var after int64
	for running := false; !running; {
		if err := q.WaitEvents(ctx, task.ID, after); err != nil {
			t.Fatal(err)
		}
		evs, err := q.Events(ctx, task.ID, after, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			after = ev.Seq
			running = running || ev.Step == "create-volume" && ev.To == "RUNNING" && ev.Worker == "A"
		}
	}
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := true
	defer func() {
		if paused {
			_ = a.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	b := startWorkerProc(t, "B", args...)
	defer b.stop(t)
	var done jobs.Task
	for {
		if done, err = q.Get(ctx, task.ID); err != nil {
			t.Fatal(err)
		}
		if done.Status.Final() {
			break
		}
		if err := q.WaitEvents(ctx, task.ID, 1<<62); err != nil {
			t.Fatalf("task still %s: %v\nB: %s", done.Status, err, b.stderr.String())
		}
	}
	if done.Status != jobs.Succeeded {
		t.Fatalf("B's outcome: %s %+v", done.Status, done.Error)
	}
	// River still has A's ticket running (A is paused, not dead).
	jobStates := func() []string {
		rs, err := conn.Query(ctx, `SELECT state FROM river_job WHERE args->>'task_id' = $1 ORDER BY id`, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		states, err := pgx.CollectRows(rs, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return states
	}
	if st := jobStates(); len(st) < 2 || st[0] != "running" {
		t.Fatalf("River's tickets of the task: %v (want A's still running)", st)
	}
	seqBefore := len(mustEvents(t, ctx, q, task.ID))
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	paused = false
	// A's next write is refused: it logs that it was fenced and gives its
	// ticket back to River done (observing another process: poll).
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(a.stderr.String(), "taken over by another worker") || jobStates()[0] == "running" {
		if time.Now().After(deadline) {
			t.Fatalf("A did not stop after it resumed: tickets %v\nA: %s", jobStates(), a.stderr.String())
		}
		time.Sleep(50 * time.Millisecond) // observing another process
	}
	got, err := q.Get(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	evs := mustEvents(t, ctx, q, task.ID)
	if got.Status != jobs.Succeeded || string(got.Result["volume"]) != string(done.Result["volume"]) || len(evs) != seqBefore {
		t.Fatalf("after A resumed: %s %v, %d events (was %d)", got.Status, got.Result, len(evs), seqBefore)
	}
	claims, err := q.Claims(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(claims) != 2 || claims[0].Worker != "A" || claims[1].Worker != "B" || claims[1].Epoch <= claims[0].Epoch {
		t.Fatalf("claims %+v", claims)
	}
	epochs, err := q.EventEpochs(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	var sawB bool
	for i, e := range epochs {
		if e == 0 {
			continue
		}
		if e < last {
			t.Fatalf("event %d of epoch %d after one of epoch %d: epochs %v", i+1, e, last, epochs)
		}
		last = e
		holder := claims[0].Worker
		if e == claims[1].Epoch {
			holder, sawB = claims[1].Worker, true
		}
		if evs[i].Worker != holder {
			t.Fatalf("event %d by %s under epoch %d", i+1, evs[i].Worker, e)
		}
		if sawB && evs[i].Worker == "A" {
			t.Fatalf("A wrote event %d after B's claim", i+1)
		}
	}
	if v := sim.Volumes(); len(v) != 1 || `"`+v[0].ID+`"` != string(got.Result["volume"]) {
		t.Fatalf("volumes %+v, result %s: want the one made, once", v, got.Result["volume"])
	}
}

func mustEvents(t *testing.T, ctx context.Context, q *jobs.Queue, id string) []jobs.Event {
	t.Helper()
	evs, err := q.Events(ctx, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestWorkerKeepsCredentialsOut: a worker process (debug logs) runs tasks
// that succeed, are refused by the cloud, fail on a fault, and outlive
// their Keystone token (the worker authenticates again with its
// password), on SQLite and on PostgreSQL. Neither the password, nor a
// token, nor a server's adminPass is in the worker's logs, the task
// records and events, or anywhere in the database (every SQLite file;
// every table of the PostgreSQL schema, as text).
func TestWorkerKeepsCredentialsOut(t *testing.T) {
	const password = "Worker-Secret-7f3a"
	for _, dbName := range []string{"sqlite", "postgres"} {
		t.Run(dbName, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			timing := cloudsim.FastTiming()
			sim := simEnv(t, cloudsim.Config{Timing: &timing, Password: password, Faults: &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
				{Op: cloudsim.OpVolumeCreate, Name: "faulty", Kind: cloudsim.FaultError},
			}}})
			var storeURL, schema string
			if dbName == "sqlite" {
				storeURL = filepath.Join(t.TempDir(), "q.db")
			} else {
				storeURL, schema = pgStoreURL(t, ctx)
			}
			q, err := jobs.Open(ctx, jobs.Config{URL: storeURL, PollInterval: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			w := startWorkerProc(t, "creds", "--store", storeURL, "--os-cloud", cloudsim.DefaultCloudName, "--log-level", "debug")
			var events bytes.Buffer
			runTasks := func(nts ...jobs.NewTask) []jobs.Task {
				var out []jobs.Task
				for _, nt := range nts {
					nt.Project = cloudsim.DemoProjectID
					task, _, err := q.Create(ctx, nt)
					if err != nil {
						t.Fatal(err)
					}
					for !task.Status.Final() {
						if err := q.WaitEvents(ctx, task.ID, 1<<62); err != nil {
							t.Fatalf("task %s: %v\n%s", task.Kind, err, w.stderr.String())
						}
						if task, err = q.Get(ctx, task.ID); err != nil {
							t.Fatal(err)
						}
					}
					evs, err := q.Events(ctx, task.ID, 0, 0)
					if err != nil {
						t.Fatal(err)
					}
					_ = json.NewEncoder(&events).Encode(task)
					_ = json.NewEncoder(&events).Encode(evs)
					out = append(out, task)
				}
				return out
			}
			server := `{"name":"cred","flavor":"1","image":"` + cloudsim.CirrosImageID + `","network":"none"}`
			first := runTasks(
				jobs.NewTask{Kind: "server.create", Params: json.RawMessage(server)},
				jobs.NewTask{Kind: "server.create", Params: json.RawMessage(`{"name":"refused","flavor":"nope","image":"` + cloudsim.CirrosImageID + `","network":"none"}`)},
				jobs.NewTask{Kind: "volume.create", Params: json.RawMessage(`{"name":"faulty","size":1}`), Options: jobs.Options{Retries: 1}},
			)
			if first[0].Status != jobs.Succeeded || first[1].Status != jobs.Reverted || first[2].Status != jobs.Reverted {
				t.Fatalf("tasks ended %s %s %s", first[0].Status, first[1].Status, first[2].Status)
			}
			// The worker's token expires: it authenticates again.
			sim.ExpireTokens()
			var srv string
			_ = json.Unmarshal(first[0].Result["server"], &srv)
			second := runTasks(jobs.NewTask{Kind: "server.delete", Params: json.RawMessage(`{"server":"` + srv + `"}`)})
			if second[0].Status != jobs.Succeeded {
				t.Fatalf("after the token expired: %s %+v", second[0].Status, second[0].Error)
			}
			w.stop(t)

			var stored bytes.Buffer
			if dbName == "sqlite" {
				files, _ := filepath.Glob(storeURL + "*")
				for _, f := range files {
					data, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					stored.Write(data)
				}
			} else {
				conn, err := pgx.Connect(ctx, storeURL)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(context.Background())
				rs, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1`, schema)
				if err != nil {
					t.Fatal(err)
				}
				tables, err := pgx.CollectRows(rs, pgx.RowTo[string])
				if err != nil || len(tables) < 5 {
					t.Fatalf("tables %v %v", tables, err)
				}
				for _, tb := range tables {
					id := pgx.Identifier{schema, tb}.Sanitize()
					rs, err := conn.Query(ctx, `SELECT t::text FROM `+id+` t`)
					if err != nil {
						t.Fatal(err)
					}
					rows, err := pgx.CollectRows(rs, pgx.RowTo[string])
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range rows {
						stored.WriteString(r + "\n")
					}
				}
			}
			logs := w.stderr.String()
			if !bytes.Contains(stored.Bytes(), []byte(first[0].ID)) || !strings.Contains(logs, "worker stopped") || !strings.Contains(events.String(), srv) {
				t.Fatalf("nothing was collected: %d bytes stored, logs %q", stored.Len(), tail(logs, 500))
			}
			for what, text := range map[string][]byte{"the worker's logs": []byte(logs), "tasks and events": events.Bytes(), "the store": stored.Bytes()} {
				for _, secret := range []string{password, "gAAAA", "adminpass"} {
					lower := bytes.ToLower(text)
					if i := bytes.Index(lower, bytes.ToLower([]byte(secret))); i >= 0 {
						t.Errorf("%s hold a credential (%s): …%s…", what, secret, text[max(0, i-120):min(len(text), i+60)])
					}
				}
			}
		})
	}
}
