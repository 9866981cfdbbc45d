package jobs_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"go.uber.org/goleak"

	"github.com/jackc/pgx/v5"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/store/postgres/pgtest"
	"github.com/ostask/ostask/tasks"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// pgx pools close their connections in the background.
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
	)
}

// databases runs fn on a fresh SQLite file and a fresh PostgreSQL schema.
func databases(t *testing.T, fn func(t *testing.T, cfg jobs.Config)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, jobs.Config{URL: filepath.Join(t.TempDir(), "ostask.db"), PollInterval: 20 * time.Millisecond})
	})
	t.Run("postgres", func(t *testing.T) {
		url, schema := pgtest.Schema(t)
		fn(t, jobs.Config{URL: url, Schema: schema, PollInterval: 20 * time.Millisecond})
	})
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, cfg jobs.Config) *jobs.Queue {
	t.Helper()
	q, err := jobs.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// startWorker runs a worker until the test ends.
func startWorker(t *testing.T, q *jobs.Queue, cfg jobs.WorkerConfig) *jobs.Worker {
	t.Helper()
	w, err := jobs.NewWorker(q, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	return w
}

// waitFinal waits until the task is final and returns it.
func waitFinal(t *testing.T, ctx context.Context, q *jobs.Queue, id string) jobs.Task {
	t.Helper()
	var after int64
	for {
		task, err := q.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if task.Status.Final() {
			return task
		}
		evs, err := q.Events(ctx, id, after, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 0 {
			after = evs[len(evs)-1].Seq
		}
		if err := q.WaitEvents(ctx, id, after); err != nil {
			t.Fatalf("task %s: %v (status %s)", id, err, task.Status)
		}
	}
}

func TestKinds(t *testing.T) {
	q := open(t, jobs.Config{URL: filepath.Join(t.TempDir(), "k.db")})
	var names []string
	for _, k := range q.Kinds() {
		names = append(names, k.Name)
		var doc map[string]any
		if err := json.Unmarshal(k.Schema, &doc); err != nil || doc["type"] != "object" {
			t.Errorf("%s: schema %s: %v", k.Name, k.Schema, err)
		}
	}
	want := []string{"boot-from-volume", "noop", "server-with-volumes", "server.create", "server.delete", "server.migrate",
		"server.resize", "server.snapshot", "snapshot-and-replace", "volume.attach", "volume.create", "volume.delete", "volume.detach"}
	if !slices.Equal(names, want) {
		t.Fatalf("kinds %v, want %v", names, want)
	}
}

func TestCreateValidates(t *testing.T) {
	databases(t, func(t *testing.T, cfg jobs.Config) {
		q := open(t, cfg)
		ctx := ctxT(t, time.Minute)
		_, _, err := q.Create(ctx, jobs.NewTask{Kind: "server.explode", Project: "p"})
		if !errors.Is(err, jobs.ErrUnknownKind) {
			t.Fatalf("unknown kind: %v", err)
		}
		for _, tc := range []struct {
			params string
			opts   jobs.Options
			fields []string
		}{
			{`{}`, jobs.Options{}, []string{"params.name", "params.flavor", "params.image"}},
			{`{"name":"a","flavor":"1","image":"x","colour":"red"}`, jobs.Options{}, []string{"params.colour"}},
			{`{"name":"","flavor":1,"image":"x"}`, jobs.Options{}, []string{"params.name", "params.flavor"}},
			{`{"name":"a","flavor":"1","image":"x"}`, jobs.Options{Retries: 99, Timeout: jobs.Duration(time.Millisecond)}, []string{"options.timeout", "options.retries"}},
			{`[1,2]`, jobs.Options{}, []string{"params"}},
			{`{"name":`, jobs.Options{}, []string{"params"}},
		} {
			_, _, err := q.Create(ctx, jobs.NewTask{Kind: "server.create", Project: "p", Params: json.RawMessage(tc.params), Options: tc.opts})
			var ve *jobs.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("%s: want a ValidationError, got %v", tc.params, err)
			}
			var got []string
			for _, f := range ve.Fields {
				if f.Message == "" {
					t.Errorf("%s: field %s without a message", tc.params, f.Field)
				}
				got = append(got, f.Field)
			}
			slices.Sort(got)
			got = slices.Compact(got)
			want := slices.Clone(tc.fields)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: fields %v (%v), want %v", tc.params, got, ve, want)
			}
		}
		p, err := q.List(ctx, jobs.Filter{})
		if err != nil || len(p.Tasks) != 0 {
			t.Fatalf("invalid requests stored tasks: %v %v", p.Tasks, err)
		}
	})
}

// A parameter holding a credential the store redacts is refused: stored,
// it would come back "[redacted]" on a resume, and the task would act
// with that. The answer names the field, never the secret.
func TestCreateRefusesSecrets(t *testing.T) {
	const password, token = "Proj-Passw0rd-7e1d", "gAAAAB-added-later-token"
	databases(t, func(t *testing.T, cfg jobs.Config) {
		cfg.StoreOptions = []store.Option{store.WithSecrets(password)}
		q := open(t, cfg)
		q.Runs().AddSecrets(token)
		ctx := ctxT(t, time.Minute)
		for _, tc := range []struct {
			kind, params, key string
			fields            []string
		}{
			{"volume.create", `{"name":"faulty` + password + `","size":1}`, "", []string{"params.name"}},
			{"server.create", `{"name":"a","flavor":"` + token + `","image":"` + password + `"}`, "", []string{"params.flavor", "params.image"}},
			{"noop", `{"note":"` + token + `"}`, "", []string{"params.note"}},
			{"noop", `{}`, "key-" + password, []string{"idempotency_key"}},
		} {
			_, _, err := q.Create(ctx, jobs.NewTask{Kind: tc.kind, Project: "p", Params: json.RawMessage(tc.params), IdempotencyKey: tc.key})
			var ve *jobs.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("%s %s: want a ValidationError, got %v", tc.kind, tc.params, err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Errorf("%s %s: fields %v, want %v", tc.kind, tc.params, got, tc.fields)
			}
			if msg := err.Error(); strings.Contains(msg, password) || strings.Contains(msg, token) {
				t.Errorf("the error quotes the secret: %s", msg)
			}
		}
		p, err := q.List(ctx, jobs.Filter{})
		if err != nil || len(p.Tasks) != 0 {
			t.Fatalf("refused requests stored tasks: %v %v", p.Tasks, err)
		}
		// A part of a secret, or a short one the store ignores, is fine.
		if _, _, err := q.Create(ctx, jobs.NewTask{Kind: "noop", Project: "p", Params: json.RawMessage(`{"note":"Proj-Passw0rd"}`)}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestIdempotencyKey(t *testing.T) {
	databases(t, func(t *testing.T, cfg jobs.Config) {
		q := open(t, cfg)
		ctx := ctxT(t, time.Minute)
		nt := jobs.NewTask{Kind: "noop", Project: "p", Params: json.RawMessage(`{"note":"a"}`), IdempotencyKey: "k1"}
		first, replayed, err := q.Create(ctx, nt)
		if err != nil || replayed {
			t.Fatal(err, replayed)
		}
		// Concurrent replays share commits with each other and one new task.
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := nt
				if i%2 == 1 {
					n = jobs.NewTask{Kind: "noop", Project: "p", Params: json.RawMessage(`{"note":"other"}`), IdempotencyKey: "k1"}
				}
				got, replayed, err := q.Create(ctx, n)
				switch {
				case i%2 == 1 && !errors.Is(err, jobs.ErrKeyReused):
					errs <- errors.New("other request with the key: " + errString(err))
				case i%2 == 0 && (err != nil || !replayed || got.ID != first.ID):
					errs <- errors.New("replay: " + errString(err))
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		// The same key in another project is another task.
		other, replayed, err := q.Create(ctx, jobs.NewTask{Kind: "noop", Project: "p2", Params: nt.Params, IdempotencyKey: "k1"})
		if err != nil || replayed || other.ID == first.ID {
			t.Fatalf("other project: %v %v %v", other.ID, replayed, err)
		}
		p, err := q.List(ctx, jobs.Filter{})
		if err != nil || len(p.Tasks) != 2 {
			t.Fatalf("want 2 tasks, got %d: %v", len(p.Tasks), err)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestNoopTasksRunAndList(t *testing.T) {
	databases(t, func(t *testing.T, cfg jobs.Config) {
		q := open(t, cfg)
		ctx := ctxT(t, 2*time.Minute)
		const n = 30
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				task, _, err := q.Create(ctx, jobs.NewTask{Kind: "noop", Project: "p", Params: json.RawMessage(`{}`)})
				if err != nil {
					t.Error(err)
					return
				}
				if task.Status != jobs.Queued {
					t.Errorf("new task %s", task.Status)
				}
				ids[i] = task.ID
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		_, cursor, err := q.Changes(ctx, jobs.Filter{}, 0)
		if err != nil || cursor == 0 {
			t.Fatal(cursor, err)
		}
		startWorker(t, q, jobs.WorkerConfig{ID: "w1"})
		for _, id := range ids {
			task := waitFinal(t, ctx, q, id)
			if task.Status != jobs.Succeeded || task.Progress.Done != 1 || task.Progress.Total != 1 || task.Attempts != 1 || task.FinishedAt == nil {
				t.Fatalf("task %+v", task)
			}
			checkNoopEvents(t, ctx, q, id)
			claims, err := q.Claims(ctx, id)
			if err != nil || len(claims) != 1 || claims[0].Worker != "w1" {
				t.Fatalf("claims %v %v", claims, err)
			}
		}
		// Every task changed after the first cursor. On PostgreSQL the
		// changes come up to the cluster's safe horizon, which another
		// open transaction (another test's, on the same server) holds
		// back for a while: follow them as a follower does.
		if err := q.WaitChanges(ctxT(t, time.Second), cursor); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for at := cursor; len(seen) < n; {
			changed, next, err := q.Changes(ctx, jobs.Filter{Status: jobs.Succeeded}, at)
			if err != nil {
				t.Fatal(err)
			}
			for _, task := range changed {
				if !slices.Contains(ids, task.ID) {
					t.Fatalf("changes: a task not made here: %s", task.ID)
				}
				seen[task.ID] = true
			}
			if len(seen) < n {
				if err := q.WaitChanges(ctx, next); err != nil {
					t.Fatalf("changes: %d of %d tasks: %v", len(seen), n, err)
				}
			}
			at = next
		}
		// Pages, newest first.
		var listed []string
		marker := ""
		for {
			p, err := q.List(ctx, jobs.Filter{Project: "p", Kind: "noop", Limit: 7, Marker: marker})
			if err != nil {
				t.Fatal(err)
			}
			for _, task := range p.Tasks {
				listed = append(listed, task.ID)
			}
			if p.Next == "" {
				break
			}
			marker = p.Next
		}
		want := slices.Clone(ids)
		slices.Sort(want)
		slices.Reverse(want)
		if !slices.Equal(listed, want) {
			t.Fatalf("listed %d tasks, want %d newest first", len(listed), len(want))
		}
		if _, err := q.List(ctx, jobs.Filter{Marker: "nope"}); !errors.Is(err, jobs.ErrBadMarker) {
			t.Fatalf("bad marker: %v", err)
		}
		if _, err := q.Cancel(ctx, ids[0]); !errors.Is(err, jobs.ErrFinished) {
			t.Fatalf("cancel of a finished task: %v", err)
		}
		g, err := q.Graph(ctx, ids[0])
		if err != nil || len(g.Nodes) != 1 || g.Nodes[0].State != "SUCCESS" {
			t.Fatalf("graph %+v %v", g, err)
		}
		if err := q.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCancelQueued(t *testing.T) {
	databases(t, func(t *testing.T, cfg jobs.Config) {
		q := open(t, cfg)
		ctx := ctxT(t, time.Minute)
		task, _, err := q.Create(ctx, jobs.NewTask{Kind: "noop", Project: "p"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := q.Cancel(ctx, task.ID)
		if err != nil || got.Status != jobs.Cancelled {
			t.Fatalf("cancel: %v %v", got.Status, err)
		}
		// A worker started later does not run it.
		startWorker(t, q, jobs.WorkerConfig{})
		other, _, err := q.Create(ctx, jobs.NewTask{Kind: "noop", Project: "p"})
		if err != nil {
			t.Fatal(err)
		}
		waitFinal(t, ctx, q, other.ID)
		got, err = q.Get(ctx, task.ID)
		if err != nil || got.Status != jobs.Cancelled || got.Attempts != 0 {
			t.Fatalf("cancelled task: %+v %v", got, err)
		}
		if _, err := q.Get(ctx, "nope"); !errors.Is(err, jobs.ErrNotFound) {
			t.Fatal(err)
		}
	})
}

// --- with a cloud

type simEnv struct {
	sim   *cloudsim.Sim
	cloud *ops.Cloud
}

func startSim(t *testing.T, plan *cloudsim.FaultPlan) *simEnv {
	return startSimConfig(t, cloudsim.Config{Faults: plan})
}

func startSimTiming(t *testing.T, timing *cloudsim.Timing) *simEnv {
	return startSimConfig(t, cloudsim.Config{Timing: timing})
}

func startSimConfig(t *testing.T, cfg cloudsim.Config) *simEnv {
	t.Helper()
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	cred := sim.DemoCredentials()
	auth := ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: cred.AuthURL, Username: cred.Username,
		Password: cred.Password, DomainName: cred.DomainName, TenantName: cred.ProjectName}}
	cloud, err := ops.Dial(ctx, auth, ops.Config{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond,
		RateLimit: 1000, Burst: 100, DefaultTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cloud.Close() })
	return &simEnv{sim: sim, cloud: cloud}
}

func (e *simEnv) clouds(ctx context.Context, project string) (*ops.Cloud, error) {
	if project != "demo" {
		return nil, jobs.ErrNoCredentials
	}
	return e.cloud, nil
}

func TestServerTasks(t *testing.T) {
	databases(t, func(t *testing.T, cfg jobs.Config) {
		e := startSim(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
			{Op: cloudsim.OpVolumeCreate, Kind: cloudsim.FaultError},
		}})
		cfg.Clouds = e.clouds
		q := open(t, cfg)
		ctx := ctxT(t, 2*time.Minute)
		if _, _, err := q.Create(ctx, jobs.NewTask{Kind: "server.create", Project: "nobody",
			Params: json.RawMessage(`{"name":"web","flavor":"1","image":"` + cloudsim.CirrosImageID + `","network":"none"}`)}); !errors.Is(err, jobs.ErrNoCredentials) {
			t.Fatalf("a project without credentials: %v", err)
		}
		startWorker(t, q, jobs.WorkerConfig{})
		task, _, err := q.Create(ctx, jobs.NewTask{Kind: "server.create", Project: "demo",
			Params: json.RawMessage(`{"name":"web","flavor":"1","image":"` + cloudsim.CirrosImageID + `","network":"none"}`)})
		if err != nil {
			t.Fatal(err)
		}
		task = waitFinal(t, ctx, q, task.ID)
		var server string
		if task.Status != jobs.Succeeded || json.Unmarshal(task.Result["server"], &server) != nil || server == "" {
			t.Fatalf("server.create: %+v", task)
		}
		if !slices.Contains(task.Resources, jobs.Resource{Type: "server", ID: server}) {
			t.Fatalf("resources %v", task.Resources)
		}
		p, err := q.List(ctx, jobs.Filter{Resource: "server/" + server})
		if err != nil || len(p.Tasks) != 1 || p.Tasks[0].ID != task.ID {
			t.Fatalf("resource history: %+v %v", p, err)
		}
		// A failed volume create (one attempt) reverts, with the cloud's fault.
		vt, _, err := q.Create(ctx, jobs.NewTask{Kind: "volume.create", Project: "demo", Params: json.RawMessage(`{"name":"v","size":1}`), Options: jobs.Options{Retries: 1}})
		if err != nil {
			t.Fatal(err)
		}
		vt = waitFinal(t, ctx, q, vt.ID)
		if vt.Status != jobs.Reverted || vt.Error == nil || vt.Error.Step != "create-volume" {
			t.Fatalf("failed volume.create: %+v %+v", vt, vt.Error)
		}
		if len(vt.Resources) == 0 {
			t.Fatalf("the failed create names no resource: %+v", vt)
		}
		fault, err := q.ResourceFault(ctx, "demo", vt.Resources[0].Type+"/"+vt.Resources[0].ID)
		if err != nil || fault.ID != vt.ID {
			t.Fatalf("fault: %v %v", fault.ID, err)
		}
		if vt.Error.Fault == "" {
			t.Errorf("the failed volume create has no fault: %+v", vt.Error)
		}
		// A request the cloud refuses: its own message, code and request id,
		// not gophercloud's text.
		bt, _, err := q.Create(ctx, jobs.NewTask{Kind: "server.create", Project: "demo",
			Params: json.RawMessage(`{"name":"bad","flavor":"nope","image":"` + cloudsim.CirrosImageID + `","network":"none"}`)})
		if err != nil {
			t.Fatal(err)
		}
		bt = waitFinal(t, ctx, q, bt.ID)
		if bt.Status != jobs.Reverted || bt.Error == nil || bt.Error.Code != 400 || !strings.Contains(bt.Error.Fault, "Flavor nope could not be found") ||
			bt.Error.RequestID == "" || strings.Contains(bt.Error.Message, "Expected HTTP response code") {
			t.Fatalf("a refused create: %s %+v", bt.Status, bt.Error)
		}
		// Delete what was made: nothing left.
		dt, _, err := q.Create(ctx, jobs.NewTask{Kind: "server.delete", Project: "demo", Params: json.RawMessage(`{"server":"` + server + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		if dt = waitFinal(t, ctx, q, dt.ID); dt.Status != jobs.Succeeded {
			t.Fatalf("server.delete: %+v", dt)
		}
		if s := e.sim.Servers(false); len(s) != 0 {
			t.Fatalf("servers left: %v", s)
		}
		if v := e.sim.Volumes(); len(v) != 0 {
			t.Fatalf("volumes left: %v", v)
		}
	})
}

func startSlowSim(t *testing.T) *simEnv {
	t.Helper()
	timing := cloudsim.FastTiming()
	timing.VolumeCreate = 3 * time.Second
	e := startSimTiming(t, &timing)
	return e
}

// A running task that is cancelled reverts what it did and ends
// cancelled; one that runs out of time reverts and ends reverted.
func TestCancelRunningAndTimeout(t *testing.T) {
	databases(t, func(t *testing.T, cfg jobs.Config) {
		e := startSlowSim(t)
		cfg.Clouds = e.clouds
		q := open(t, cfg)
		ctx := ctxT(t, 2*time.Minute)
		startWorker(t, q, jobs.WorkerConfig{LeaseTTL: 2 * time.Second})
		task, _, err := q.Create(ctx, jobs.NewTask{Kind: "volume.create", Project: "demo", Params: json.RawMessage(`{"name":"c","size":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		// Wait until the step runs, then cancel.
		waitEvent(t, ctx, q, task.ID, func(ev jobs.Event) bool { return ev.Step == "create-volume" && ev.To == "RUNNING" })
		if got, err := q.Cancel(ctx, task.ID); err != nil || !got.CancelRequested {
			t.Fatalf("cancel: %+v %v", got, err)
		}
		got := waitFinal(t, ctx, q, task.ID)
		if got.Status != jobs.Cancelled || got.Error == nil {
			t.Fatalf("cancelled task: %s %+v", got.Status, got.Error)
		}
		evs, _ := q.Events(ctx, task.ID, 0, 0)
		var sawReverting, cutShort bool
		for _, ev := range evs {
			sawReverting = sawReverting || ev.Step == "" && ev.To == "REVERTING"
			// The step stopped waiting for the volume: its revert
			// waited until the volume could be deleted.
			cutShort = cutShort || ev.Step == "create-volume" && ev.To == "FAILURE" && ev.Error != nil && strings.Contains(ev.Error.Message, "create-volume stopped")
		}
		if !sawReverting || !cutShort {
			t.Errorf("no reverting status, or the step was not cut short, in %+v", evs)
		}
		to, _, err := q.Create(ctx, jobs.NewTask{Kind: "volume.create", Project: "demo", Params: json.RawMessage(`{"name":"t","size":1}`),
			Options: jobs.Options{Timeout: jobs.Duration(time.Second)}})
		if err != nil {
			t.Fatal(err)
		}
		got = waitFinal(t, ctx, q, to.ID)
		if got.Status != jobs.Reverted || got.Error == nil || !strings.Contains(got.Error.Message, "timed out") {
			t.Fatalf("timed-out task: %+v %+v", got, got.Error)
		}
		if v := e.sim.Volumes(); len(v) != 0 {
			t.Fatalf("volumes left: %v", v)
		}
	})
}

// A worker that stops hands its running task back; another finishes it,
// under a new epoch.
func TestGracefulShutdownHandsBack(t *testing.T) {
	databases(t, func(t *testing.T, cfg jobs.Config) {
		e := startSlowSim(t)
		cfg.Clouds = e.clouds
		q := open(t, cfg)
		ctx := ctxT(t, 2*time.Minute)
		w1, err := jobs.NewWorker(q, jobs.WorkerConfig{ID: "first", ShutdownTimeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		wctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w1.Run(wctx) }()
		task, _, err := q.Create(ctx, jobs.NewTask{Kind: "volume.create", Project: "demo", Params: json.RawMessage(`{"name":"g","size":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		for {
			got, err := q.Get(ctx, task.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status == jobs.Running && got.Progress.Current != "" {
				break
			}
			if err := q.WaitEvents(ctx, task.ID, 0); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // observing another goroutine's progress through the database
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		startWorker(t, q, jobs.WorkerConfig{ID: "second"})
		got := waitFinal(t, ctx, q, task.ID)
		claims, err := q.Claims(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != jobs.Succeeded || len(claims) != 2 || claims[0].Worker != "first" || claims[1].Worker != "second" || claims[1].Epoch <= claims[0].Epoch {
			t.Fatalf("task %+v, claims %+v", got, claims)
		}
		if v := e.sim.Volumes(); len(v) != 1 {
			t.Fatalf("volumes: %v (want the one made, once)", v)
		}
	})
}

// A step that hangs in the cloud (a server that stays in BUILD) does not
// hold up a cancel or a timeout: the step is cut short, and the flow
// reverts (the server is deleted).
func TestCancelAndTimeoutCutAHungStepShort(t *testing.T) {
	databases(t, func(t *testing.T, cfg jobs.Config) {
		e := startSim(t, &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
			{Op: cloudsim.OpServerCreate, Name: "hung-c", Kind: cloudsim.FaultHang},
			{Op: cloudsim.OpServerCreate, Name: "hung-t", Kind: cloudsim.FaultHang},
		}})
		cfg.Clouds = e.clouds
		q := open(t, cfg)
		ctx := ctxT(t, 2*time.Minute)
		startWorker(t, q, jobs.WorkerConfig{})
		params := func(name string) json.RawMessage {
			return json.RawMessage(`{"name":"` + name + `","flavor":"1","image":"` + cloudsim.CirrosImageID + `","network":"none"}`)
		}
		task, _, err := q.Create(ctx, jobs.NewTask{Kind: "server.create", Project: "demo", Params: params("hung-c")})
		if err != nil {
			t.Fatal(err)
		}
		// Cancel once the server exists (in BUILD, for ever).
		for len(e.sim.Servers(false)) == 0 {
			if ctx.Err() != nil {
				t.Fatal("no server was created")
			}
			time.Sleep(10 * time.Millisecond) // observing the cloud the worker acts on
		}
		if _, err := q.Cancel(ctx, task.ID); err != nil {
			t.Fatal(err)
		}
		if got := waitFinal(t, ctx, q, task.ID); got.Status != jobs.Cancelled {
			t.Fatalf("cancelled task: %s %+v", got.Status, got.Error)
		}
		to, _, err := q.Create(ctx, jobs.NewTask{Kind: "server.create", Project: "demo", Params: params("hung-t"),
			Options: jobs.Options{Timeout: jobs.Duration(time.Second)}})
		if err != nil {
			t.Fatal(err)
		}
		if got := waitFinal(t, ctx, q, to.ID); got.Status != jobs.Reverted || got.Error == nil || !strings.Contains(got.Error.Message, "timed out") {
			t.Fatalf("timed-out task: %s %+v", got.Status, got.Error)
		}
		if s := e.sim.Servers(false); len(s) != 0 {
			t.Fatalf("servers left: %+v", s)
		}
	})
}

// A task whose flow run cannot be resumed (recorded by a flow version
// this worker does not have) is retried, then failed; since nothing can
// revert it, its error names each step it did not undo, with the
// resource id the step made, or else the idempotency key of what a step
// cut short may have made.
func TestUnrunnableFlowNamesWhatItLeft(t *testing.T) {
	databases(t, func(t *testing.T, cfg jobs.Config) {
		q := open(t, cfg)
		ctx := ctxT(t, 2*time.Minute)
		task, _, err := q.Create(ctx, jobs.NewTask{Kind: "noop", Project: "p"})
		if err != nil {
			t.Fatal(err)
		}
		run, err := q.Runs().Create(ctx, store.NewRun{ID: task.ID, Flow: "noop", Version: "0-gone", Owner: "an older worker"})
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			from flow.State
			rec  engine.AtomRecord
		}{
			{flow.StatePending, engine.AtomRecord{Name: "create-volume", State: flow.StateRunning}},
			{flow.StateRunning, engine.AtomRecord{Name: "create-volume", State: flow.StateSuccess, Result: "vol-left-1"}},
			{flow.StatePending, engine.AtomRecord{Name: "boot-server", State: flow.StateRunning}},
		} {
			if err := run.SaveAtom(ctx, step.from, step.rec); err != nil {
				t.Fatal(err)
			}
		}
		startWorker(t, q, jobs.WorkerConfig{})
		got := waitFinal(t, ctx, q, task.ID)
		if got.Status != jobs.Failed || got.Error == nil {
			t.Fatalf("task %s %+v", got.Status, got.Error)
		}
		for _, want := range []string{"cannot be run", "create-volume SUCCESS made vol-left-1", "boot-server RUNNING (key " + tasks.Key(task.ID, "boot-server") + ")"} {
			if !strings.Contains(got.Error.Message, want) {
				t.Errorf("error %q lacks %q", got.Error.Message, want)
			}
		}
	})
}

// waitEvent waits until the task's log holds an event for which match
// is true (failing the test when ctx ends first).
func waitEvent(t *testing.T, ctx context.Context, q *jobs.Queue, id string, match func(jobs.Event) bool) {
	t.Helper()
	var after int64
	for {
		if err := q.WaitEvents(ctx, id, after); err != nil {
			t.Fatalf("task %s: the event waited for never came: %v", id, err)
		}
		evs, err := q.Events(ctx, id, after, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			after = ev.Seq
			if match(ev) {
				return
			}
		}
	}
}

// again is cfg on a fresh database of the same kind.
func again(t *testing.T, cfg jobs.Config) jobs.Config {
	if cfg.Schema != "" {
		_, cfg.Schema = pgtest.Schema(t)
	} else {
		cfg.URL = filepath.Join(t.TempDir(), "ostask.db")
	}
	return cfg
}

// checkNoopEvents checks a succeeded no-op task's log: every transition,
// in order, numbered from 1 without a gap.
func checkNoopEvents(t *testing.T, ctx context.Context, q *jobs.Queue, id string) {
	t.Helper()
	evs, err := q.Events(ctx, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var tos []string
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event seqs %v", evs)
		}
		tos = append(tos, ev.Step+":"+ev.To)
	}
	want := []string{":queued", ":running", ":RUNNING", "noop:RUNNING", "noop:SUCCESS", ":SUCCESS", ":succeeded"}
	if !slices.Equal(tos, want) {
		t.Fatalf("events %v, want %v", tos, want)
	}
}

// TestEventDelay: a task's step events reach its log while a step runs
// (after at most EventDelay), and whether they are written on their own
// (EventDelay < 0), gathered, or with the task's final write (a delay
// longer than the task), the log is whole and in order.
func TestEventDelay(t *testing.T) {
	databases(t, func(t *testing.T, cfg jobs.Config) {
		ctx := ctxT(t, 2*time.Minute)
		check := func(t *testing.T, q *jobs.Queue, id string) {
			t.Helper()
			if task := waitFinal(t, ctx, q, id); task.Status != jobs.Succeeded {
				t.Fatalf("task %+v", task)
			}
			checkNoopEvents(t, ctx, q, id)
		}
		for _, delay := range []time.Duration{-1, time.Hour} {
			t.Run(fmt.Sprint(delay), func(t *testing.T) {
				q := open(t, again(t, cfg))
				startWorker(t, q, jobs.WorkerConfig{ID: "w", EventDelay: delay})
				var ids []string
				for range 5 {
					task, _, err := q.Create(ctx, jobs.NewTask{Kind: "noop", Project: "p", Params: json.RawMessage(`{}`)})
					if err != nil {
						t.Fatal(err)
					}
					ids = append(ids, task.ID)
				}
				for _, id := range ids {
					check(t, q, id)
				}
			})
		}
		t.Run("while a step runs", func(t *testing.T) {
			q := open(t, again(t, cfg))
			release := make(chan struct{})
			startWorker(t, q, jobs.WorkerConfig{ID: "w", EventDelay: 10 * time.Millisecond, StepHook: func(task, step string, revert bool) {
				select {
				case <-release:
				case <-ctx.Done():
				}
			}})
			task, _, err := q.Create(ctx, jobs.NewTask{Kind: "noop", Project: "p", Params: json.RawMessage(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			// The step is held until its RUNNING event is in the log.
			waitEvent(t, ctx, q, task.ID, func(ev jobs.Event) bool { return ev.Step == "noop" && ev.To == "RUNNING" })
			close(release)
			check(t, q, task.ID)
		})
	})
}

// TestHandBackBeforeTheRun: a worker that leased (and so first-claimed) a
// task but handed it back before making its flow run (its cloud could not
// be had) leaves a task the next attempt runs to its end: the claim of
// the lease has no run behind it, and the next holder's run gets a newer
// epoch than the task's.
func TestHandBackBeforeTheRun(t *testing.T) {
	databases(t, func(t *testing.T, cfg jobs.Config) {
		e := startSim(t, nil)
		var mu sync.Mutex
		failNext := false
		cfg.Clouds = func(ctx context.Context, project string) (*ops.Cloud, error) {
			mu.Lock()
			defer mu.Unlock()
			if failNext {
				failNext = false
				return nil, errors.New("keystone: connection refused (a transient failure)")
			}
			return e.clouds(ctx, project)
		}
		q := open(t, cfg)
		ctx := ctxT(t, 45*time.Second)
		task, _, err := q.Create(ctx, jobs.NewTask{Kind: "volume.create", Project: "demo", Params: json.RawMessage(`{"name":"v","size":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		failNext = true // the worker's first attempt
		mu.Unlock()
		// A lease that outlives the test: no reaper may rescue the task.
		startWorker(t, q, jobs.WorkerConfig{ID: "w", LeaseTTL: time.Hour})
		task = waitFinal(t, ctx, q, task.ID)
		if task.Status != jobs.Succeeded {
			t.Fatalf("after a hand-back before the run: %s %+v", task.Status, task.Error)
		}
		claims, err := q.Claims(ctx, task.ID)
		if err != nil || len(claims) < 2 {
			t.Fatalf("claims %+v %v: want the lease's claim and the run's", claims, err)
		}
		for i := 1; i < len(claims); i++ {
			if claims[i].Epoch <= claims[i-1].Epoch {
				t.Fatalf("claims %+v: epochs must rise", claims)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if failNext {
			t.Fatal("the worker never asked for the cloud")
		}
	})
}

// TestSchemaTooNew: a database migrated by a newer ostask is refused at
// Open, with a typed error, rather than misread.
func TestSchemaTooNew(t *testing.T) {
	databases(t, func(t *testing.T, cfg jobs.Config) {
		q, err := jobs.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		q.Close()
		const future = `INSERT INTO ostask_jobs_schema (version, name) VALUES (999, '0999_from_the_future.sql')`
		if cfg.Schema != "" {
			pc, err := pgx.ParseConfig(cfg.URL)
			if err != nil {
				t.Fatal(err)
			}
			pc.RuntimeParams["search_path"] = cfg.Schema
			conn, err := pgx.ConnectConfig(context.Background(), pc)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(context.Background(), future); err != nil {
				t.Fatal(err)
			}
		} else {
			db, err := sql.Open("sqlite", cfg.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(future); err != nil {
				t.Fatal(err)
			}
		}
		q, err = jobs.Open(context.Background(), cfg)
		if err == nil {
			q.Close()
			t.Fatal("a newer schema was opened")
		}
		if !errors.Is(err, jobs.ErrSchemaTooNew) || !strings.Contains(err.Error(), "999") {
			t.Fatalf("a newer schema: %v", err)
		}
	})
}
