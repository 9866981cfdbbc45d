package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/tasks"
)

// Defaults of WorkerConfig.
const (
	DefaultConcurrency     = 16
	DefaultLeaseTTL        = 10 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
	DefaultMaxLosses       = 3
	DefaultParallel        = 8
	DefaultEventDelay      = 100 * time.Millisecond
)

// maxJobAttempts bounds River's attempts of one ticket whose work fails
// (the flow cannot be built, the database is down): the last attempt
// fails the task with the reason.
const maxJobAttempts = 5

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	// ID names the worker in tasks, events and the fencing history
	// (default: host name, process id and a random suffix).
	ID string
	// Concurrency is how many tasks the worker runs at once.
	Concurrency int
	// LeaseTTL is how long a task's lease lasts unless renewed; the
	// worker renews it every LeaseTTL/3. A dead worker's tasks are taken
	// over about LeaseTTL + ReapInterval after its last renewal.
	LeaseTTL time.Duration
	// ReapInterval is how often the worker looks for expired leases
	// (default LeaseTTL/4).
	ReapInterval time.Duration
	// ShutdownTimeout bounds Run's return after its context is
	// cancelled: running tasks are suspended and handed back.
	ShutdownTimeout time.Duration
	// MaxLosses is how many times a task may lose its worker (lease
	// expired) before it is failed as a poison task: the next worker
	// reverts what the task did instead of running it again, and fails
	// it. A task that loses MaxLosses more workers while it is reverted is
	// failed without running anything, its error naming what it left.
	MaxLosses int
	// Parallel bounds the steps of one task run at once.
	Parallel int
	// StepHook, when set, is called in a step's goroutine just before
	// the step's own code runs: its Execute, or its Revert when revert is
	// set (not for a step the task's cancel, timeout or poison stops
	// before it starts). It exists for crash tests, which kill the
	// process at a given step, as a poison task would.
	StepHook func(task, step string, revert bool)
	// EventDelay is how long a task's step events may wait before they
	// are written, so that the events of quick steps share one write, and
	// the events of a task that ends meanwhile share its final write
	// (default DefaultEventDelay; negative: write at once). Followers of
	// the task's log see a step that late at most.
	EventDelay time.Duration
	// FetchPollInterval is how often River looks for new jobs when it is
	// not notified (default: 100ms on SQLite, River's default on
	// PostgreSQL, which notifies).
	FetchPollInterval time.Duration
}

// Worker runs tasks: a River client whose jobs are task tickets, a
// lease per running task, and a reaper of expired leases.
type Worker struct {
	q      *Queue
	cfg    WorkerConfig
	id     string
	log    *slog.Logger
	client riverClient

	mu       sync.Mutex
	stopping bool
	work     context.Context // cancelled to hand running tasks back
	stopWork context.CancelFunc
}

// NewWorker makes a worker on q.
func NewWorker(q *Queue, cfg WorkerConfig) (*Worker, error) {
	if cfg.ID == "" {
		host, _ := os.Hostname()
		var b [3]byte
		rand.Read(b[:])
		cfg.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.ReapInterval <= 0 {
		cfg.ReapInterval = cfg.LeaseTTL / 4
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.MaxLosses <= 0 {
		cfg.MaxLosses = DefaultMaxLosses
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = DefaultParallel
	}
	if cfg.EventDelay == 0 {
		cfg.EventDelay = DefaultEventDelay
	}
	w := &Worker{q: q, cfg: cfg, id: cfg.ID, log: q.log.With("worker", cfg.ID)}
	w.work, w.stopWork = context.WithCancel(context.Background())
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &ticketWorker{w: w}); err != nil {
		return nil, err
	}
	rc := &river.Config{
		ID:          cfg.ID,
		Logger:      slog.New(levelHandler{slog.LevelWarn, q.log.Handler()}),
		Queues:      map[string]river.QueueConfig{queueName: {MaxWorkers: cfg.Concurrency}},
		Workers:     workers,
		JobTimeout:  -1, // tasks have their own timeout
		MaxAttempts: maxJobAttempts,
		RetryPolicy: shortRetry{},
	}
	if cfg.FetchPollInterval > 0 {
		rc.FetchPollInterval = cfg.FetchPollInterval
	} else if q.db.name() == "sqlite" {
		rc.FetchPollInterval = 100 * time.Millisecond
	}
	rc.FetchCooldown = min(10*time.Millisecond, rc.FetchPollInterval)
	if rc.FetchPollInterval == 0 {
		rc.FetchCooldown = 10 * time.Millisecond
	}
	c, err := q.db.newClient(rc)
	if err != nil {
		return nil, fmt.Errorf("jobs: River client: %w", err)
	}
	w.client = c
	return w, nil
}

// ID returns the worker's name.
func (w *Worker) ID() string { return w.id }

// Run works until ctx is cancelled; then it stops claiming, suspends its
// running tasks and hands them back (another worker resumes them at
// once), and returns within ShutdownTimeout.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("jobs: start River: %w", err)
	}
	reapDone := make(chan struct{})
	reapCtx, stopReap := context.WithCancel(context.Background())
	go func() {
		defer close(reapDone)
		w.reaper(reapCtx)
	}()
	<-ctx.Done()
	w.log.Info("worker stopping: handing running tasks back")
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	stopCtx, cancel := context.WithTimeout(context.Background(), w.cfg.ShutdownTimeout)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- w.client.Stop(stopCtx) }()
	w.stopWork()
	err := <-stopped
	if err != nil {
		hard, cancelHard := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancelHard()
		err = errors.Join(err, w.client.StopAndCancel(hard))
	}
	stopReap()
	<-reapDone
	if err != nil {
		return fmt.Errorf("jobs: worker stop: %w", err)
	}
	return nil
}

// shortRetry retries a failed ticket after a second or two: what failed
// it is a database hiccup or a flow that cannot be built, which the last
// attempt turns into a failed task.
type shortRetry struct{}

func (shortRetry) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(time.Duration(min(job.Attempt, 4)) * 500 * time.Millisecond)
}

// levelHandler drops River's records below a level.
type levelHandler struct {
	min slog.Level
	slog.Handler
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

type ticketWorker struct {
	river.WorkerDefaults[taskArgs]
	w *Worker
}

func (t *ticketWorker) Work(ctx context.Context, job *river.Job[taskArgs]) error {
	return t.w.runTask(ctx, job.Args.TaskID, job.Attempt >= job.MaxAttempts)
}

// --- one task

// run is one worker's hold on one task.
type run struct {
	w       *Worker
	tr      taskRow
	kind    *kind
	epoch   int64
	gate    *gate
	nodes   map[string]flow.Node
	states  map[string]flow.State
	total   int
	current string
	res     []Resource
	resSeen map[Resource]bool
	fenced  chan struct{}
	fenceMu sync.Once
	mu      sync.Mutex // serialises the run's writes

	// The run's event writes, recorded in order by its recorder
	// goroutine while the flow goes on.
	recMu   sync.Mutex
	pending []eventWrite
	recWake chan struct{} // capacity 1
}

// eventWrite is one event of a run with the task's status and progress
// as they were when it happened.
type eventWrite struct {
	ev        Event
	status    Status
	done      int
	total     int
	current   string
	resources string
	newRes    []Resource
	eng       *engine.Engine
}

func (w *Worker) now() time.Time { return time.Now() }

// runTask takes the task's lease and runs or resumes its flow. It
// returns nil when the ticket is done with (the task ran, ended, was
// handed back, or someone else holds it), an error to have River try the
// ticket again.
func (w *Worker) runTask(ctx context.Context, id string, lastAttempt bool) error {
	q := w.q
	var tr taskRow
	// claimed: the lease claimed the task too (its first claim), with
	// epoch 1; its deadline is then claimDeadline.
	var claimed bool
	var claimDeadline int64
	err := q.inGroup(ctx, func(ctx context.Context, t tx, change int64) error {
		now := w.now()
		if q.db.name() == "postgres" {
			// One statement, held back: the leases of a group go in one
			// round trip, with the claims they make.
			body := mustJSON(Event{TaskID: id, Time: now.UTC(), From: string(Queued), To: string(Running), Attempt: 1, Worker: w.id})
			t.laterRow(ctx, func(r row) (err error) {
				tr, err = scanTask(r, &claimed)
				claimDeadline = tr.deadline
				return err
			}, qry("pg/task_lease"), id, w.id, now.Add(w.cfg.LeaseTTL).UnixNano(), now.UnixNano(), change,
				now.Add(w.q.cfg.DefaultTimeout).UnixNano(), string(body))
			return nil
		}
		var err error
		tr, err = scanTask(t.queryRow(ctx, qry("task_lease"), id, w.id, now.Add(w.cfg.LeaseTTL).UnixNano(), now.UnixNano(), change,
			now.Add(w.q.cfg.DefaultTimeout).UnixNano()))
		if err != nil {
			return err
		}
		claimed = tr.epoch == 1 && tr.Attempts == 1 && tr.StartedAt != nil && tr.StartedAt.UnixNano() == now.UnixNano()
		if !claimed {
			return nil
		}
		claimDeadline = tr.deadline
		t.later(ctx, qry("claim_insert"), id, 1, w.id, now.UnixNano())
		return insertEvent(ctx, t, Event{Seq: tr.events, TaskID: id, Time: now.UTC(), From: string(Queued), To: string(tr.Status),
			Attempt: tr.Attempts, Worker: w.id}, 1)
	})
	if errors.Is(err, ErrNotFound) {
		return nil // final, or held by a live worker
	}
	if err != nil {
		return fmt.Errorf("jobs: lease %s: %w", id, err)
	}
	q.changed.fire()
	if tr.losses >= 2*w.cfg.MaxLosses {
		return w.failHeld(ctx, tr, fmt.Sprintf("the task lost its worker %d times, %d of them while what it did was reverted (a poison task?); not run again",
			tr.losses, tr.losses-w.cfg.MaxLosses))
	}
	// A poison task is reverted rather than run again: the gate fails its
	// steps before they start.
	var poison error
	if tr.losses >= w.cfg.MaxLosses {
		poison = &poisonError{losses: tr.losses}
	}
	k, ok := lookupKind(tr.Kind)
	if !ok {
		return w.failHeld(ctx, tr, fmt.Sprintf("this worker does not know the kind %q", tr.Kind))
	}
	values, err := k.values(tr.Params)
	if err != nil {
		return w.failHeld(ctx, tr, "bad parameters: "+err.Error())
	}
	var cloud *ops.Cloud
	if k.name != "noop" {
		if q.cfg.Clouds == nil {
			return w.failHeld(ctx, tr, "the worker has no clouds configured")
		}
		cloud, err = q.cfg.Clouds(ctx, tr.Project)
		if errors.Is(err, ErrNoCredentials) {
			return w.failHeld(ctx, tr, err.Error())
		}
		if err != nil {
			return w.handBack(ctx, tr, fmt.Errorf("jobs: cloud of %s: %w", tr.Project, err), lastAttempt)
		}
		q.metrics.cloud(tr.Project, cloud)
	}
	r := &run{w: w, tr: tr, kind: k, gate: newGate(), states: map[string]flow.State{}, resSeen: map[Resource]bool{}, fenced: make(chan struct{}), recWake: make(chan struct{}, 1)}
	if hook := w.cfg.StepHook; hook != nil {
		r.gate.hook = func(step string, revert bool) { hook(id, step, revert) }
	}
	for _, rs := range tr.Resources {
		r.addResource(rs)
	}
	opts := []tasks.Option{tasks.WithRetries(q.cfg.DefaultRetries)}
	if tr.Options.Retries > 0 {
		opts = []tasks.Option{tasks.WithRetries(tr.Options.Retries)}
	}
	var built *flow.Flow
	reg := &store.Registry{}
	if err := reg.Register(k.name, KindsVersion, func(params map[string]json.RawMessage) (*flow.Flow, map[string]any, error) {
		vals, err := k.values(mustJSON(params))
		if err != nil {
			return nil, nil, err
		}
		vals[tasks.RunID] = id
		f, err := k.build(cloud, vals, opts)
		if err != nil {
			return nil, nil, err
		}
		built = gateFlow(f, r.gate)
		return built, vals, nil
	}); err != nil {
		return err
	}
	eopts := []engine.Option{engine.Parallel(w.cfg.Parallel), engine.WithListener(engine.ListenerFunc(r.onEvent)), engine.WithLogger(w.log)}
	var e *engine.Engine
	var sr *store.Run
	fresh := false // the run was made here: every atom is pending
	// A task never claimed has no run yet, most likely: start it without
	// looking first (a run left by a worker that died before its claim
	// exists: ErrExists, resumed).
	startErr := store.ErrNotFound
	if (tr.Attempts > 0 && !claimed) || poison != nil {
		_, startErr = q.runs.Get(ctx, id)
	}
	if err := startErr; errors.Is(err, store.ErrNotFound) {
		if poison != nil {
			return w.failHeld(ctx, tr, poison.Error()+" before its flow started; not run again")
		}
		values[tasks.RunID] = id
		e, sr, err = q.runs.Start(ctx, reg, store.NewRun{ID: id, Flow: k.name, Version: KindsVersion, Params: values, Owner: w.id}, eopts...)
		fresh = err == nil
		if errors.Is(err, store.ErrExists) {
			e, sr, err = q.runs.Resume(ctx, reg, id, w.id, eopts...)
		}
		if err != nil {
			return w.buildFailed(ctx, tr, err, lastAttempt)
		}
	} else if err != nil {
		return w.handBack(ctx, tr, err, lastAttempt)
	} else {
		if e, sr, err = q.runs.Resume(ctx, reg, id, w.id, eopts...); err != nil {
			return w.buildFailed(ctx, tr, err, lastAttempt)
		}
	}
	if sr.Epoch() <= tr.epoch && !(claimed && sr.Epoch() == 1) {
		// An earlier lease claimed the task with this epoch and handed it
		// back before it made the run: the run needs a newer one.
		if e, sr, err = q.runs.Resume(ctx, reg, id, w.id, eopts...); err != nil {
			return w.buildFailed(ctx, tr, err, lastAttempt)
		}
		fresh = false
	}
	r.epoch = sr.Epoch()
	r.nodes = map[string]flow.Node{}
	for _, n := range e.Compiled().Nodes() {
		if n.Kind != flow.NodeJoin {
			r.nodes[n.Name] = n
			r.total++
		}
	}
	if fresh {
		// Nothing to read back.
	} else if _, atoms, err := q.runs.Show(ctx, id); err == nil {
		for _, a := range atoms {
			r.states[a.Name] = a.State
		}
	}
	// The claim: the epoch the run was acquired with becomes the task's
	// (done with the lease when that claimed epoch 1 and the run was
	// made with it).
	status, deadline, cancelReq := string(tr.Status), claimDeadline, int64(0)
	if tr.CancelRequested {
		cancelReq = 1
	}
	if !claimed || r.epoch != 1 {
		err := w.claim(ctx, r, tr, &status, &deadline, &cancelReq)
		if isNoRows(err) {
			return nil // a newer epoch took it meanwhile
		}
		if err != nil {
			return w.handBack(ctx, tr, fmt.Errorf("jobs: claim %s: %w", id, err), lastAttempt)
		}
	}
	q.changed.fire()
	if r.tr.Attempts == 1 {
		q.metrics.queueLatency.Observe(time.Since(tr.CreatedAt).Seconds())
	}
	r.tr.Status = Status(status)
	if poison != nil {
		w.log.Warn("poison task: reverting what it did instead of running it again", "task", id, "losses", tr.losses)
		r.gate.fire(poison)
	}
	if cancelReq != 0 {
		r.gate.fire(ErrCancelled)
	}
	runCtx, cancelRun := context.WithCancel(w.work)
	defer cancelRun()
	if d := time.Until(nanos(deadline)); d > 0 {
		t := time.AfterFunc(d, func() { r.gate.fire(ErrTaskTimeout) })
		defer t.Stop()
	} else {
		r.gate.fire(ErrTaskTimeout)
	}
	keepDone := make(chan struct{})
	keepStop := make(chan struct{})
	go func() {
		defer close(keepDone)
		r.keepLease(keepStop, cancelRun)
	}()
	recDone := make(chan struct{})
	recStop := make(chan struct{})
	var left []eventWrite
	go func() {
		defer close(recDone)
		left = r.recorder(recStop)
	}()
	runErr := e.Run(runCtx)
	close(recStop)
	<-recDone // the events not written yet are in left, in order
	close(keepStop)
	<-keepDone
	return r.finish(ctx, e, runErr, lastAttempt, left)
}

// timeout is how long the task may run, from its options or the queue's
// default.
func (w *Worker) timeout(tr taskRow) time.Duration {
	if t := time.Duration(tr.Options.Timeout); t > 0 {
		return t
	}
	return w.q.cfg.DefaultTimeout
}

// claim makes the epoch r's run was acquired with the task's, with its
// history and event; it sets the task's status, deadline and whether a
// cancel was asked as they are after the claim.
func (w *Worker) claim(ctx context.Context, r *run, tr taskRow, status *string, deadline, cancelReq *int64) error {
	id := tr.ID
	return w.q.inGroup(ctx, func(ctx context.Context, t tx, change int64) error {
		now := w.now()
		var seq, attempts, started int64
		err := t.queryRow(ctx, qry("task_claim"), id, w.id, r.epoch, now.UnixNano(), now.Add(w.timeout(tr)).UnixNano(), change).
			Scan(&seq, status, &started, deadline, &attempts, cancelReq)
		if err != nil {
			return err
		}
		t.later(ctx, qry("claim_insert"), id, r.epoch, w.id, now.UnixNano())
		r.tr.Attempts = int(attempts)
		ev := Event{Seq: seq, TaskID: id, Time: now.UTC(), From: string(tr.Status), To: *status, Attempt: int(attempts), Worker: w.id}
		return insertEvent(ctx, t, ev, r.epoch)
	})
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func insertEvent(ctx context.Context, t tx, ev Event, epoch int64) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	t.later(ctx, qry("event_insert"), ev.TaskID, ev.Seq, epoch, string(body))
	return nil
}

// keepLease renews the lease until stop; a lost lease (fenced) cancels
// the run, a cancel request fires the gate.
func (r *run) keepLease(stop <-chan struct{}, cancelRun context.CancelFunc) {
	w := r.w
	tick := time.NewTicker(w.cfg.LeaseTTL / 3)
	defer tick.Stop()
	for {
		wake := w.q.cancels.wait()
		select {
		case <-stop:
			return
		case <-tick.C:
			var cancelReq int64
			ctx, cancel := context.WithTimeout(context.Background(), w.cfg.LeaseTTL/3)
			err := w.q.db.queryRow(ctx, qry("task_renew"), r.tr.ID, r.epoch, w.now().Add(w.cfg.LeaseTTL).UnixNano(), w.id).Scan(&cancelReq)
			cancel()
			switch {
			case isNoRows(err):
				w.log.Warn("lease lost: another worker took the task", "task", r.tr.ID, "epoch", r.epoch)
				r.fence()
				cancelRun()
				return
			case err != nil:
				w.log.Warn("lease renewal failed", "task", r.tr.ID, "err", err)
			case cancelReq != 0:
				r.gate.fire(ErrCancelled)
			}
		case <-wake:
			if r.gate.fired() != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), w.cfg.LeaseTTL/3)
			tr, err := w.q.get(ctx, r.tr.ID)
			cancel()
			if err == nil && tr.CancelRequested {
				r.gate.fire(ErrCancelled)
			}
		}
	}
}

func (r *run) fence() { r.fenceMu.Do(func() { close(r.fenced) }) }

func (r *run) isFenced() bool {
	select {
	case <-r.fenced:
		return true
	default:
		return false
	}
}

func (r *run) addResource(rs Resource) bool {
	if rs.ID == "" || r.resSeen[rs] {
		return false
	}
	r.resSeen[rs] = true
	r.res = append(r.res, rs)
	return true
}

func (r *run) progress() (done int) {
	for name := range r.nodes {
		switch r.states[name] {
		case flow.StateSuccess, flow.StateIgnore:
			done++
		}
	}
	return done
}

// onEvent records one transition of the flow as an event, with the
// task's status and progress, under the run's epoch.
func (r *run) onEvent(ev engine.Event) {
	if r.isFenced() {
		return
	}
	w := r.w
	var newRes []Resource
	status := r.tr.Status
	var evErr *Error
	if ev.Atom != "" {
		r.states[ev.Atom] = ev.To
		switch ev.To {
		case flow.StateRunning, flow.StateReverting:
			r.current = ev.Atom
		default:
			if r.current == ev.Atom {
				r.current = ""
			}
		}
		if ev.From == flow.StateRunning {
			w.q.metrics.stepDuration.WithLabelValues(r.kind.name, ev.To.String()).Observe(ev.Elapsed.Seconds())
		}
		if ev.To == flow.StateSuccess {
			if n, ok := r.nodes[ev.Atom]; ok && len(n.Provides) == 1 {
				if typ := resourceOf(n.Provides[0]); typ != "" {
					if id, ok := asString(ev.Result); ok && r.addResource(Resource{Type: typ, ID: id}) {
						newRes = append(newRes, Resource{Type: typ, ID: id})
					}
				}
			}
		}
		if ev.Failure != nil {
			evErr = failureError(ev.Failure)
			if rs, ok := failedResource(ev.Failure); ok && r.addResource(rs) {
				newRes = append(newRes, rs)
			}
		}
	} else {
		switch ev.To {
		case flow.StateRunning:
			if status == Queued {
				status = Running
			}
		case flow.StateReverting:
			status = Reverting
		}
	}
	r.tr.Status = status
	out := Event{TaskID: r.tr.ID, Time: ev.Time.UTC(), Step: ev.Atom, From: ev.From.String(), To: ev.To.String(),
		Elapsed: Duration(ev.Elapsed), Error: evErr, Attempt: r.tr.Attempts, Worker: w.id}
	if ev.To == flow.StateSuccess && ev.Atom != "" && ev.Result != nil {
		if b, err := json.Marshal(ev.Result); err == nil && len(b) < 64<<10 {
			out.Result = b
		}
	}
	resources, _ := json.Marshal(r.res)
	r.recMu.Lock()
	r.pending = append(r.pending, eventWrite{ev: out, status: status, done: r.progress(), total: r.total, current: r.current,
		resources: string(resources), newRes: newRes, eng: ev.Engine})
	r.recMu.Unlock()
	select {
	case r.recWake <- struct{}{}:
	default:
	}
}

// recorder writes the run's events in order until stop, then returns
// those it has not written, for the task's last write. The events
// waiting at one moment (after EventDelay, to let quick steps gather) go
// in one write, shared with other tasks' writes (inGroup), so the flow
// does not wait for its log: the engine's own store has recorded each
// transition before it was announced. A write refused by the epoch guard
// fences the run: the engine is suspended and nothing more is written.
func (r *run) recorder(stop <-chan struct{}) []eventWrite {
	var delay *time.Timer
	if d := r.w.cfg.EventDelay; d > 0 {
		delay = time.NewTimer(d)
		delay.Stop()
		defer delay.Stop()
	}
	for {
		select {
		case <-r.recWake:
		case <-stop:
			return r.take()
		}
		if delay != nil {
			delay.Reset(r.w.cfg.EventDelay)
			select {
			case <-delay.C:
			case <-stop:
				return r.take()
			}
		}
		if evs := r.take(); len(evs) > 0 && !r.isFenced() {
			r.writeEvents(evs)
		}
	}
}

// take returns the events waiting to be written and forgets them.
func (r *run) take() []eventWrite {
	r.recMu.Lock()
	defer r.recMu.Unlock()
	evs := r.pending
	r.pending = nil
	return evs
}

func (r *run) writeEvents(evs []eventWrite) {
	w := r.w
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One update of the task (its state after the last event; n more
	// events) and one insert of the events, whatever their number.
	last := evs[len(evs)-1]
	var newRes []Resource
	for _, e := range evs {
		newRes = append(newRes, e.newRes...)
	}
	err := w.q.inGroup(ctx, func(ctx context.Context, t tx, change int64) error {
		var seq int64
		err := t.queryRow(ctx, qry("task_update"), r.tr.ID, r.epoch, string(last.status), last.done, last.total, last.current,
			last.resources, time.Now().UnixNano(), change, len(evs), w.id).Scan(&seq)
		if err != nil {
			return err
		}
		if len(newRes) > 0 {
			var rows []string
			var args []any
			for _, rs := range newRes {
				rows = append(rows, fmt.Sprintf("($%d, $%d, $%d)", len(args)+1, len(args)+2, len(args)+3))
				args = append(args, rs.Type, rs.ID, r.tr.ID)
			}
			t.later(ctx, qry("resource_insert_many")+strings.Join(rows, ", ")+" ON CONFLICT DO NOTHING", args...)
		}
		return r.insertEvents(ctx, t, evs, seq)
	})
	if isNoRows(err) {
		w.log.Warn("fenced: another worker holds the task", "task", r.tr.ID, "epoch", r.epoch)
		r.fence()
		evs[0].eng.Suspend()
		return
	}
	if err != nil {
		w.log.Warn("events not recorded", "task", r.tr.ID, "events", len(evs), "err", err)
		return
	}
	w.q.changed.fire()
}

// insertEvents holds back the insert of evs, in one statement; last is
// the sequence number of the last of them.
func (r *run) insertEvents(ctx context.Context, t tx, evs []eventWrite, last int64) error {
	if len(evs) == 0 {
		return nil
	}
	rows := make([]string, 0, len(evs))
	args := make([]any, 0, 4*len(evs))
	for i, e := range evs {
		e.ev.Seq = last - int64(len(evs)-1-i)
		body, err := json.Marshal(e.ev)
		if err != nil {
			return err
		}
		rows = append(rows, fmt.Sprintf("($%d, $%d, $%d, $%d)", len(args)+1, len(args)+2, len(args)+3, len(args)+4))
		args = append(args, r.tr.ID, e.ev.Seq, r.epoch, string(body))
	}
	t.later(ctx, qry("event_insert_many")+strings.Join(rows, ", "), args...)
	return nil
}

func asString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.RawMessage:
		var s string
		err := json.Unmarshal(x, &s)
		return s, err == nil
	}
	return "", false
}

// failedResource names the resource a failed operation acted on.
func failedResource(f *flow.Failure) (Resource, bool) {
	if f == nil || f.Err == nil {
		return Resource{}, false
	}
	var fe *ops.FaultError
	var te *ops.TimeoutError
	var de *ops.DeletedError
	var rb *ops.RolledBackError
	switch {
	case errors.As(f.Err, &fe):
		return Resource{Type: string(fe.Kind), ID: fe.ID}, fe.ID != ""
	case errors.As(f.Err, &te):
		return Resource{Type: string(te.Kind), ID: te.ID}, te.ID != ""
	case errors.As(f.Err, &de):
		return Resource{Type: string(de.Kind), ID: de.ID}, de.ID != ""
	case errors.As(f.Err, &rb):
		return Resource{Type: string(rb.Kind), ID: rb.ID}, rb.ID != ""
	}
	return Resource{}, false
}

// failureError is a step's failure as the task's error: the cloud's
// fault and request id when the failure carries them (only in the process
// that saw it fail; a resumed run has the message).
func failureError(f *flow.Failure) *Error {
	e := &Error{Message: f.Message, Step: f.Atom, Details: &ErrorDetails{Raw: f.Type + ": " + f.Message, Stack: f.Stack}}
	if f.Err != nil {
		var fe *ops.FaultError
		var rb *ops.RolledBackError
		if errors.As(f.Err, &fe) {
			e.Fault, e.Code, e.RequestID = fe.Message, fe.Code, fe.RequestID
			if fe.Details != "" {
				e.Details.Raw += "\n" + fe.Details
			}
		} else if errors.As(f.Err, &rb) {
			e.RequestID = rb.RequestID
			e.Details.Raw += "\n" + fmt.Sprint(rb.Events)
		} else if aes := ops.APIErrors(f.Err); len(aes) > 0 {
			// The cloud refused a request: its own message, not
			// gophercloud's text with the whole body after the URL.
			ae := aes[len(aes)-1].APIError
			e.Message = ops.Describe(f.Err)
			e.Fault, e.Code, e.RequestID = ae.Message, ae.Code, ae.RequestID
		}
		if e.RequestID != "" {
			e.Details.RequestIDs = []string{e.RequestID}
		}
	}
	return e
}

// finish records how the run ended.
// finish makes the task's last write of this hold: its final state, or
// its hand-back. left are the step events not written yet; they go with
// the final write, or before the hand-back.
func (r *run) finish(ctx context.Context, e *engine.Engine, runErr error, lastAttempt bool, left []eventWrite) error {
	w := r.w
	if r.isFenced() || errors.Is(runErr, store.ErrFenced) {
		w.log.Info("task taken over by another worker", "task", r.tr.ID, "epoch", r.epoch)
		return nil
	}
	flushLeft := func() {
		if len(left) > 0 {
			r.writeEvents(left)
		}
	}
	var status Status
	var taskErr *Error
	var fe *engine.FlowError
	switch {
	case runErr == nil:
		status = Succeeded
	case errors.Is(runErr, engine.ErrSuspended):
		flushLeft()
		return w.handBack(ctx, r.tr, nil, false)
	case errors.As(runErr, &fe) && fe.State == flow.StateReverted:
		status = Reverted
		switch reason := r.gate.fired(); {
		case errors.Is(reason, ErrCancelled):
			status = Cancelled
		case errors.Is(reason, ErrPoison):
			status = Failed // reverted, but failed for what it did to its workers
		}
		taskErr = flowError(fe, r.gate.fired())
	case errors.As(runErr, &fe) && fe.State == flow.StateRevertFailure:
		status = Failed
		taskErr = flowError(fe, r.gate.fired())
		if left := w.leftovers(ctx, r.tr.ID); left != "" {
			taskErr.Message += "; " + left
			taskErr.Details.Raw += "\n" + left
		}
	default:
		// The engine could not record (the database): let another try.
		flushLeft()
		return w.handBack(ctx, r.tr, runErr, lastAttempt)
	}
	var result map[string]json.RawMessage
	if status == Succeeded {
		result = map[string]json.RawMessage{}
		for name, v := range e.FetchAll() {
			if !r.provides(name) {
				continue
			}
			b, err := json.Marshal(v)
			if err == nil {
				result[name] = b
			}
			if typ := resourceOf(name); typ != "" {
				if id, ok := asString(v); ok {
					r.addResource(Resource{Type: typ, ID: id})
				}
			}
		}
	}
	return r.writeFinal(ctx, status, result, taskErr, left)
}

func (r *run) provides(name string) bool {
	for _, n := range r.nodes {
		for _, p := range n.Provides {
			if p == name {
				return true
			}
		}
	}
	return false
}

func flowError(fe *engine.FlowError, reason error) *Error {
	var e *Error
	if len(fe.Failures) > 0 {
		e = failureError(fe.Failures[0])
		for _, f := range fe.Failures[1:] {
			e.Details.Raw += "\n" + f.Atom + ": " + f.Message
		}
	} else {
		e = &Error{Message: fe.Error()}
	}
	switch {
	case errors.Is(reason, ErrCancelled):
		e.Message = "cancelled: " + e.Message
	case errors.Is(reason, ErrTaskTimeout):
		e.Message = "timed out: " + e.Message
	case errors.Is(reason, ErrPoison):
		e.Message = reason.Error() + ": what it did was reverted rather than run again"
	}
	for _, f := range fe.RevertFailures {
		e.Details.Raw += "\nrevert " + f.Atom + ": " + f.Message
	}
	if fe.State == flow.StateRevertFailure && len(fe.RevertFailures) > 0 {
		e.Message += "; and the revert failed: " + fe.RevertFailures[0].Message
	}
	return e
}

func (r *run) writeFinal(ctx context.Context, status Status, result map[string]json.RawMessage, taskErr *Error, left []eventWrite) error {
	w := r.w
	ctx = context.WithoutCancel(ctx)
	var resultText, errText any
	if result != nil {
		resultText = string(mustJSON(result))
	}
	if taskErr != nil {
		errText = string(mustJSON(taskErr))
	}
	resources := string(mustJSON(r.res))
	now := time.Now()
	last := Event{TaskID: r.tr.ID, Time: now.UTC(), From: string(r.tr.Status), To: string(status), Error: taskErr, Attempt: r.tr.Attempts, Worker: w.id}
	err := w.q.inGroup(ctx, func(ctx context.Context, t tx, change int64) error {
		if w.q.db.name() == "postgres" {
			// One statement, held back: numbered by the database.
			bodies := make([]string, 0, len(left)+1)
			for _, e := range left {
				bodies = append(bodies, string(mustJSON(e.ev)))
			}
			bodies = append(bodies, string(mustJSON(last)))
			types, ids := make([]string, len(r.res)), make([]string, len(r.res))
			for i, rs := range r.res {
				types[i], ids[i] = rs.Type, rs.ID
			}
			t.laterRow(ctx, func(r row) error {
				var n int64
				return r.Scan(&n)
			}, qry("pg/task_finish"), r.tr.ID, r.epoch, string(status), r.progress(), r.total,
				resources, resultText, errText, now.UnixNano(), change, len(bodies), w.id, bodies, types, ids)
			return nil
		}
		var seq int64
		if err := t.queryRow(ctx, qry("task_finish"), r.tr.ID, r.epoch, string(status), r.progress(), r.total,
			resources, resultText, errText, now.UnixNano(), change, 1+len(left), w.id).Scan(&seq); err != nil {
			return err
		}
		for _, rs := range r.res {
			t.later(ctx, qry("resource_insert"), rs.Type, rs.ID, r.tr.ID)
		}
		// The step events left and the task's own last one, in one insert.
		return r.insertEvents(ctx, t, append(slices.Clip(left), eventWrite{ev: last}), seq)
	})
	if isNoRows(err) {
		return nil // fenced at the last moment: the new holder finishes it
	}
	if err != nil {
		return fmt.Errorf("jobs: finish %s: %w", r.tr.ID, err)
	}
	w.q.changed.fire()
	w.q.metrics.finished(string(status))
	return nil
}

// failHeld fails a task this worker leased but cannot run.
func (w *Worker) failHeld(ctx context.Context, tr taskRow, reason string) error {
	e := &Error{Message: reason}
	if left := w.leftovers(ctx, tr.ID); left != "" {
		e.Message += "; " + left
		e.Details = &ErrorDetails{Raw: left}
	}
	w.log.Warn("task failed without running", "task", tr.ID, "reason", e.Message)
	now := time.Now()
	err := w.q.inGroup(ctx, func(ctx context.Context, t tx, change int64) error {
		var seq int64
		if err := t.queryRow(ctx, qry("task_fail_unclaimed"), tr.ID, w.id, string(mustJSON(e)), now.UnixNano(), change).Scan(&seq); err != nil {
			return err
		}
		// Epoch 0: the worker holds the lease, not the flow run.
		return insertEvent(ctx, t, Event{Seq: seq, TaskID: tr.ID, Time: now.UTC(), From: string(tr.Status), To: string(Failed), Error: e, Worker: w.id}, 0)
	})
	if isNoRows(err) {
		return nil
	}
	if err == nil {
		w.q.changed.fire()
		w.q.metrics.finished(string(Failed))
	}
	return err
}

// poisonError is the gate's reason for a task that lost its worker
// MaxLosses times (ErrPoison).
type poisonError struct{ losses int }

func (e *poisonError) Error() string {
	return fmt.Sprintf("the task lost its worker %d times (a poison task?)", e.losses)
}

func (e *poisonError) Is(target error) bool { return target == ErrPoison }

// leftovers says what a task's flow run did and did not undo, for a task
// that fails without (completely) reverting: every step neither pending,
// skipped nor reverted, with the resource id it returned, or else the
// idempotency key the cloud's resources of that step carry (a step cut
// short made them without returning their ids). "" when the run did
// nothing.
func (w *Worker) leftovers(ctx context.Context, id string) string {
	_, atoms, err := w.q.runs.Show(context.WithoutCancel(ctx), id)
	if errors.Is(err, store.ErrNotFound) {
		return ""
	}
	if err != nil {
		return "what it did in the cloud is unknown: " + err.Error()
	}
	var steps []string
	for _, a := range atoms {
		switch a.State {
		case flow.StatePending, flow.StateIgnore, flow.StateReverted:
			continue
		}
		s := a.Name + " " + a.State.String()
		if rid, ok := asString(a.Result); ok && rid != "" {
			s += " made " + rid
		} else {
			s += " (key " + tasks.Key(id, a.Name) + ")"
		}
		steps = append(steps, s)
	}
	if len(steps) == 0 {
		return ""
	}
	return "not reverted, what these steps did may be left in the cloud: " + strings.Join(steps, ", ")
}

// buildFailed handles a flow that cannot be built or resumed: retried
// by River a few times (another worker may know the kind), then failed.
func (w *Worker) buildFailed(ctx context.Context, tr taskRow, err error, lastAttempt bool) error {
	if lastAttempt || errors.Is(err, tasks.ErrBadParams) {
		return w.failHeld(ctx, tr, "the task's flow cannot be run: "+err.Error())
	}
	return w.handBack(ctx, tr, err, false)
}

// handBack releases the lease with a new ticket, so that a worker takes
// the task again at once (shutdown, a passing failure). With cause set,
// it returns cause so that River counts the attempt; on the last one
// the task fails.
func (w *Worker) handBack(ctx context.Context, tr taskRow, cause error, lastAttempt bool) error {
	ctx = context.WithoutCancel(ctx)
	if cause != nil && lastAttempt {
		return w.failHeld(ctx, tr, cause.Error())
	}
	if cause != nil {
		// River retries this ticket; just release the lease.
		_ = w.q.inTx(ctx, func(t tx, change int64) error {
			_, err := t.exec(ctx, qry("task_release"), tr.ID, w.id, tr.jobID, time.Now().UnixNano(), change)
			return err
		})
		return cause
	}
	err := w.q.inTx(ctx, func(t tx, change int64) error {
		ids, err := w.q.db.insertJobs(ctx, t, []river.InsertManyParams{{Args: taskArgs{TaskID: tr.ID}, InsertOpts: &river.InsertOpts{Queue: queueName, MaxAttempts: maxJobAttempts, Priority: priorityResume}}})
		if err != nil {
			return err
		}
		n, err := t.exec(ctx, qry("task_release"), tr.ID, w.id, ids[0], time.Now().UnixNano(), change)
		if err == nil && n == 0 {
			return errTakenOver // rolls the ticket back: the task is another worker's now
		}
		return err
	})
	if errors.Is(err, errTakenOver) {
		w.log.Info("task taken over by another worker before its hand-back", "task", tr.ID)
		return nil
	}
	if err != nil {
		w.log.Warn("hand back failed; the lease will expire", "task", tr.ID, "err", err)
		return nil
	}
	w.log.Info("task handed back", "task", tr.ID)
	w.q.changed.fire()
	return nil
}

// errTakenOver aborts a hand-back whose release found the task held by
// another worker.
var errTakenOver = errors.New("jobs: the task was taken over")

// --- the reaper

func (w *Worker) reaper(ctx context.Context) {
	tick := time.NewTicker(w.cfg.ReapInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n, err := w.reap(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("reaper", "err", err)
		} else if n > 0 {
			w.log.Info("tasks of lost workers re-queued", "tasks", n)
		}
	}
}

// reap re-queues tasks whose lease expired: a new River ticket, in the
// transaction that releases the lease (guarded by what was seen, so that
// two reapers re-queue a task once). River's JobRetry cannot do it: it
// leaves running jobs alone, and the dead worker's job is running.
func (w *Worker) reap(ctx context.Context) (int, error) {
	now := time.Now()
	rs, err := w.q.db.query(ctx, qry("task_expired"), now.UnixNano(), now.Add(-w.cfg.LeaseTTL).UnixNano(), 100)
	if err != nil {
		return 0, err
	}
	type exp struct {
		id     string
		job    int64
		worker string
	}
	var found []exp
	for rs.Next() {
		var e exp
		if err := rs.Scan(&e.id, &e.job, &e.worker); err != nil {
			rs.Close()
			return 0, err
		}
		found = append(found, e)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, e := range found {
		loss := 0
		if e.worker != "" {
			loss = 1
		}
		err := w.q.inTx(ctx, func(t tx, change int64) error {
			ids, err := w.q.db.insertJobs(ctx, t, []river.InsertManyParams{{Args: taskArgs{TaskID: e.id}, InsertOpts: &river.InsertOpts{Queue: queueName, MaxAttempts: maxJobAttempts, Priority: priorityResume}}})
			if err != nil {
				return err
			}
			var got string
			return t.queryRow(ctx, qry("task_requeue"), e.id, now.UnixNano(), ids[0], change, loss, e.job, time.Now().UnixNano()).Scan(&got)
		})
		if isNoRows(err) {
			continue
		}
		if err != nil {
			return n, err
		}
		w.log.Info("re-queued a task whose worker stopped renewing its lease", "task", e.id, "lost_worker", e.worker)
		n++
	}
	if n > 0 {
		w.q.changed.fire()
	}
	return n, nil
}
