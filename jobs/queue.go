package jobs

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/store/postgres"
	"github.com/ostask/ostask/store/sqlite"
	"github.com/ostask/ostask/tasks"
)

// Defaults of Config.
const (
	DefaultTaskTimeout  = time.Hour
	MaxTaskTimeout      = 7 * 24 * time.Hour
	MaxRetries          = 10
	DefaultGroupCommit  = 256
	DefaultPollInterval = 200 * time.Millisecond
)

// ErrNotReady: the database is unreachable or its migrations are not
// current (Ready).
var ErrNotReady = errors.New("jobs: not ready")

// ErrSchemaTooNew is matched by Open's error when the database's task
// tables were migrated by a newer ostask.
var ErrSchemaTooNew = errors.New("database schema newer than this binary")

// ErrClosed: the queue was closed.
var ErrClosed = errors.New("jobs: queue closed")

// queueName is River's queue of ostask's tasks.
const queueName = "ostask_tasks"

// River priorities (1 is worked first): a task handed back or taken over
// from a dead worker goes before the backlog of new tasks, so that a
// takeover does not wait for the queue to drain.
const (
	priorityResume = 1
	priorityNew    = 2
)

// taskArgs is the River job of a task: a ticket for a worker to take the
// task's lease and run or resume it. The task row is the truth; a task
// may have several tickets over its life (one per hand-over).
type taskArgs struct {
	TaskID string `json:"task_id"`
}

func (taskArgs) Kind() string { return "ostask_task" }

// Config configures a Queue.
type Config struct {
	// URL is the database: a SQLite file (PATH or sqlite:PATH) or
	// postgres://... The flow runs (package store) live in the same
	// database.
	URL string
	// Schema keeps the PostgreSQL tables in this schema (tests); "" uses
	// the connection's search path.
	Schema string
	Logger *slog.Logger
	// Registerer receives the queue's metrics (nil: none).
	Registerer prometheus.Registerer
	// Clouds resolves a project's cloud. When set, Create refuses a task
	// of a project it returns an error wrapping ErrNoCredentials for, and
	// returns its other errors (a *CloudUnavailableError when the cloud
	// cannot be reached now: the service answers 503). Workers need it;
	// they hand a task back when it fails for other reasons than
	// ErrNoCredentials.
	Clouds func(ctx context.Context, project string) (*ops.Cloud, error)
	// DefaultTimeout is a task's timeout when its options give none
	// (default DefaultTaskTimeout).
	DefaultTimeout time.Duration
	// DefaultRetries is the attempts of each operation when the options
	// give none (default tasks.DefaultRetries).
	DefaultRetries int
	// GroupCommit bounds how many concurrent Creates share a transaction
	// (default DefaultGroupCommit; 1: each alone).
	GroupCommit int
	// PollInterval is how often, while something waits (WaitEvents,
	// WaitChanges), the queue's watcher looks at the database for changes
	// made by other processes (default DefaultPollInterval).
	PollInterval time.Duration
	// StoreOptions are passed to the store of flow runs.
	StoreOptions []store.Option
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.URL == "" {
		return errors.New("jobs: Config.URL is empty")
	}
	if c.DefaultTimeout < 0 || c.DefaultTimeout > MaxTaskTimeout {
		return fmt.Errorf("jobs: Config.DefaultTimeout %s out of range", c.DefaultTimeout)
	}
	if c.DefaultRetries < 0 || c.DefaultRetries > MaxRetries {
		return fmt.Errorf("jobs: Config.DefaultRetries %d out of range", c.DefaultRetries)
	}
	return nil
}

// Queue is the task queue: it creates tasks and reads them back. It
// implements the service's Backend. Workers (NewWorker) run the tasks.
type Queue struct {
	cfg  Config
	log  *slog.Logger
	db   database
	runs *store.DB
	// changed fires after every commit of this process that changes a
	// task; the watcher (watch) listens while waits wait.
	changed bcast
	watch   *watcher
	// stopWatch ends the watcher's context (Close).
	stopWatch context.CancelFunc
	// cancels wakes this process's running tasks to look for a cancel
	// request (others' are seen when the lease is renewed).
	cancels bcast
	creates chan *createReq
	writes  chan *writeReq // task writes of workers, group-committed
	done    chan struct{}
	wg      sync.WaitGroup
	metrics *metrics
	closeMu sync.Once
}

// Open opens the queue's database, applies the migrations (its own and
// River's) and starts the committer of Creates.
func Open(ctx context.Context, cfg Config) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultTimeout == 0 {
		cfg.DefaultTimeout = DefaultTaskTimeout
	}
	if cfg.DefaultRetries == 0 {
		cfg.DefaultRetries = tasks.DefaultRetries
	}
	if cfg.GroupCommit <= 0 {
		cfg.GroupCommit = DefaultGroupCommit
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	db, err := openDatabase(ctx, cfg.URL, cfg.Schema)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, db); err != nil {
		db.close()
		return nil, err
	}
	if err := db.migrateRiver(ctx); err != nil {
		db.close()
		return nil, fmt.Errorf("jobs: River migrations: %w", err)
	}
	if pg, ok := db.(*pgDB); ok {
		if err := pg.readBase(ctx); err != nil {
			db.close()
			return nil, fmt.Errorf("jobs: change base: %w", err)
		}
	}
	var runs *store.DB
	if db.name() == "postgres" {
		var popts []postgres.Option
		if cfg.Schema != "" {
			popts = append(popts, postgres.WithSchema(cfg.Schema))
		}
		runs, err = postgres.Open(ctx, cfg.URL, popts, cfg.StoreOptions...)
	} else {
		runs, err = sqlite.Open(ctx, strings.TrimPrefix(cfg.URL, "sqlite:"), cfg.StoreOptions...)
	}
	if err != nil {
		db.close()
		return nil, fmt.Errorf("jobs: store of flow runs: %w", err)
	}
	q := &Queue{cfg: cfg, log: cfg.Logger, db: db, runs: runs, creates: make(chan *createReq), writes: make(chan *writeReq), done: make(chan struct{})}
	q.metrics = newMetrics(q, cfg.Registerer)
	q.watch = newWatcher(q)
	wctx, stopWatch := context.WithCancel(context.Background())
	q.stopWatch = stopWatch // Close ends the watcher's statements
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		q.watch.run(wctx)
	}()
	writers := 1
	if db.name() == "postgres" {
		writers = 2
	}
	for range writers {
		q.wg.Add(1)
		go q.committer()
	}
	// Task writers: SQLite has one writer anyway; on PostgreSQL several
	// groups are written at once.
	groupWriters := 1
	if db.name() == "postgres" {
		groupWriters = 4
	}
	for range groupWriters {
		q.wg.Add(1)
		go q.writer()
	}
	return q, nil
}

// Close stops the queue and closes its database. Workers must be stopped
// first.
func (q *Queue) Close() error {
	q.closeMu.Do(func() {
		close(q.done)
		q.stopWatch()
		q.wg.Wait()
		q.runs.Close()
		q.db.close()
		q.metrics.unregister()
	})
	return nil
}

// Runs returns the store of flow runs (tests, tools).
func (q *Queue) Runs() *store.DB { return q.runs }

// Kinds lists the kinds of task, sorted by name.
func (q *Queue) Kinds() []Kind {
	out := make([]Kind, len(allKinds))
	for i, k := range allKinds {
		out[i] = k.public()
	}
	return out
}

// Ready reports whether the database answers and its migrations are
// current.
func (q *Queue) Ready(ctx context.Context) error {
	return schemaCurrent(ctx, q.db)
}

// bcast wakes every waiter when something changed in this process.
type bcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *bcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *bcast) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

// --- Create

type createReq struct {
	nt     NewTask
	kind   *kind
	params json.RawMessage
	acted  []Resource // the resources its parameters name
	opts   Options
	hash   string
	reply  chan createRes
}

type createRes struct {
	t        Task
	replayed bool
	err      error
}

// Create validates nt and stores the task and its River job in one
// transaction, shared with concurrent Creates (group commit); it returns
// once that transaction committed.
func (q *Queue) Create(ctx context.Context, nt NewTask) (Task, bool, error) {
	k, ok := lookupKind(nt.Kind)
	if !ok {
		return Task{}, false, fmt.Errorf("%w: %q", ErrUnknownKind, nt.Kind)
	}
	var fields []FieldError
	if nt.Project == "" {
		fields = append(fields, FieldError{Field: "project", Message: "the task's project is required"})
	}
	params, values, perrs := k.validate(nt.Params)
	fields = append(fields, perrs...)
	if len(perrs) == 0 {
		fields = append(fields, q.secretFields(params, values)...)
	}
	if t := time.Duration(nt.Options.Timeout); t < 0 || t > MaxTaskTimeout {
		fields = append(fields, FieldError{Field: "options.timeout", Message: fmt.Sprintf("must be between 0 and %s", MaxTaskTimeout)})
	} else if t > 0 && t < time.Second {
		fields = append(fields, FieldError{Field: "options.timeout", Message: "must be at least 1s"})
	}
	if nt.Options.Retries < 0 || nt.Options.Retries > MaxRetries {
		fields = append(fields, FieldError{Field: "options.retries", Message: fmt.Sprintf("must be between 0 and %d", MaxRetries)})
	}
	if len(nt.IdempotencyKey) > 255 {
		fields = append(fields, FieldError{Field: "idempotency_key", Message: "at most 255 characters"})
	} else if key, _ := json.Marshal(nt.IdempotencyKey); q.runs.HoldsSecret(key) {
		fields = append(fields, FieldError{Field: "idempotency_key", Message: secretMessage})
	}
	if len(fields) > 0 {
		return Task{}, false, &ValidationError{Fields: fields}
	}
	if q.cfg.Clouds != nil && k.name != "noop" {
		if _, err := q.cfg.Clouds(ctx, nt.Project); err != nil {
			if errors.Is(err, ErrNoCredentials) {
				return Task{}, false, err
			}
			return Task{}, false, fmt.Errorf("jobs: cloud of project %q: %w", nt.Project, err)
		}
	}
	opts, _ := json.Marshal(nt.Options)
	h := sha256.New()
	for _, part := range [][]byte{[]byte(k.name), params, opts} {
		h.Write(part)
		h.Write([]byte{0})
	}
	r := &createReq{nt: nt, kind: k, params: params, acted: k.acted(values), opts: nt.Options, hash: hex.EncodeToString(h.Sum(nil)), reply: make(chan createRes, 1)}
	select {
	case q.creates <- r:
	case <-ctx.Done():
		return Task{}, false, ctx.Err()
	case <-q.done:
		return Task{}, false, ErrClosed
	}
	// Once handed over, the request is committed or not whatever ctx
	// does: wait for the answer.
	res := <-r.reply
	return res.t, res.replayed, res.err
}

// secretMessage refuses a value that holds one of the service's cloud
// credentials. It never quotes the value.
const secretMessage = "contains one of the service's cloud credentials; stored, it would read \"[redacted]\" and the task would act with that: choose another value"

// secretFields names the parameters whose values hold a secret the store
// of flow runs redacts (StoreOptions' store.WithSecrets, Runs().AddSecrets):
// stored, such a value would come back as "[redacted]" on a resume and
// the task would act with that (a volume named "faulty[redacted]").
func (q *Queue) secretFields(params json.RawMessage, values map[string]any) []FieldError {
	if !q.runs.HoldsSecret(params) {
		return nil
	}
	var fields []FieldError
	for _, name := range slices.Sorted(maps.Keys(values)) {
		v, err := json.Marshal(values[name])
		if err != nil {
			continue // validated values always encode
		}
		k, _ := json.Marshal(name)
		if q.runs.HoldsSecret(v) || q.runs.HoldsSecret(k) {
			fields = append(fields, FieldError{Field: "params." + name, Message: secretMessage})
		}
	}
	if len(fields) == 0 { // a secret across values: not one field's
		fields = append(fields, FieldError{Field: "params", Message: secretMessage})
	}
	return fields
}

func (q *Queue) committer() {
	defer q.wg.Done()
	for {
		var first *createReq
		select {
		case first = <-q.creates:
		case <-q.done:
			return
		}
		batch := []*createReq{first}
	drain:
		for len(batch) < q.cfg.GroupCommit {
			select {
			case r := <-q.creates:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		q.commitCreates(batch)
	}
}

func (q *Queue) commitCreates(batch []*createReq) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := q.insertBatch(ctx, batch)
	if err != nil && len(batch) > 1 {
		// One request may have failed them all (a key taken by another
		// process meanwhile): each alone.
		for _, r := range batch {
			q.commitCreates([]*createReq{r})
		}
		return
	}
	for i, r := range batch {
		if err != nil {
			r.reply <- createRes{err: fmt.Errorf("jobs: create: %w", err)}
			continue
		}
		r.reply <- res[i]
	}
	if err == nil {
		q.changed.fire()
		q.metrics.created(len(batch))
	}
}

func (q *Queue) insertBatch(ctx context.Context, batch []*createReq) ([]createRes, error) {
	t, err := q.db.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer t.rollback(ctx)
	res := make([]createRes, len(batch))
	type keyed struct {
		i    int
		hash string
	}
	seen := map[[2]string]keyed{}
	var fresh []int
	for i, r := range batch {
		if r.nt.IdempotencyKey == "" {
			fresh = append(fresh, i)
			continue
		}
		key := [2]string{r.nt.Project, r.nt.IdempotencyKey}
		if prev, ok := seen[key]; ok {
			if prev.hash != r.hash {
				res[i] = createRes{err: ErrKeyReused}
			} else {
				res[i] = createRes{replayed: true, err: errReplayOf(prev.i)}
			}
			continue
		}
		old, err := scanTask(t.queryRow(ctx, qry("task_by_key"), r.nt.Project, r.nt.IdempotencyKey))
		switch {
		case errors.Is(err, ErrNotFound):
			seen[key] = keyed{i, r.hash}
			fresh = append(fresh, i)
		case err != nil:
			return nil, err
		case old.hash != r.hash:
			res[i] = createRes{err: ErrKeyReused}
		default:
			res[i] = createRes{t: old.Task, replayed: true}
		}
	}
	if len(fresh) > 0 {
		now := time.Now()
		ids := make([]string, len(fresh))
		ps := make([]river.InsertManyParams, len(fresh))
		for j := range fresh {
			u, err := uuid.NewV7()
			if err != nil {
				return nil, err
			}
			ids[j] = u.String()
			ps[j] = river.InsertManyParams{Args: taskArgs{TaskID: ids[j]}, InsertOpts: &river.InsertOpts{Queue: queueName, MaxAttempts: maxJobAttempts, Priority: priorityNew}}
		}
		jobIDs, err := q.db.insertJobs(ctx, t, ps)
		if err != nil {
			return nil, fmt.Errorf("insert River jobs: %w", err)
		}
		// The change numbers: on PostgreSQL the transaction's own, which
		// the insert reads itself (no round trip for it).
		var first, step int64
		changeCol := "$%d"
		if pg, ok := q.db.(*pgDB); ok {
			first, changeCol = pg.xidBase, "pg_current_xact_id()::text::bigint + $%d"
		} else if first, step, err = q.db.takeChanges(ctx, t, int64(len(fresh))); err != nil {
			return nil, err
		}
		// One statement per table for the whole group, not one per task.
		var taskArgs, eventArgs, resArgs []any
		var taskRows, eventRows, resRows []string
		for j, i := range fresh {
			r := batch[i]
			var key any
			if r.nt.IdempotencyKey != "" {
				key = r.nt.IdempotencyKey
			}
			opts, _ := json.Marshal(r.opts)
			n := len(taskArgs)
			taskRows = append(taskRows, fmt.Sprintf("($%d, $%d, $%d, 'queued', $%d, $%d, $%d, $%d, $%d, "+changeCol+", $%d, $%d, $%d, 1, $%d)",
				n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10, n+10, n+11, n+12))
			taskArgs = append(taskArgs, ids[j], r.nt.Project, r.kind.name, string(r.params), string(opts),
				key, r.hash, jobIDs[j], first+int64(j)*step, now.UnixNano(), 0, -int64(r.opts.Timeout))
			ev := Event{Seq: 1, TaskID: ids[j], Time: now.UTC(), To: string(Queued)}
			body, _ := json.Marshal(ev)
			eventRows = append(eventRows, fmt.Sprintf("($%d, 1, 0, $%d)", len(eventArgs)+1, len(eventArgs)+2))
			eventArgs = append(eventArgs, ids[j], string(body))
			for _, rs := range r.acted {
				resRows = append(resRows, fmt.Sprintf("($%d, $%d, $%d)", len(resArgs)+1, len(resArgs)+2, len(resArgs)+3))
				resArgs = append(resArgs, rs.Type, rs.ID, ids[j])
			}
			res[i] = createRes{t: Task{
				ID: ids[j], Kind: r.kind.name, Project: r.nt.Project, Status: Queued, Params: r.params, Options: r.opts,
				Resources: r.acted, CreatedAt: time.Unix(0, now.UnixNano()).UTC(), UpdatedAt: time.Unix(0, now.UnixNano()).UTC(),
			}}
		}
		// Held back: sent with the commit (a failure fails the commit).
		t.later(ctx, qry("task_insert")+strings.Join(taskRows, ", "), taskArgs...)
		t.later(ctx, qry("event_insert_many")+strings.Join(eventRows, ", "), eventArgs...)
		if len(resRows) > 0 {
			t.later(ctx, qry("resource_insert_many")+strings.Join(resRows, ", ")+" ON CONFLICT DO NOTHING", resArgs...)
		}
	}
	if err := t.commit(ctx); err != nil {
		return nil, err
	}
	for i := range res {
		var rp *replayOf
		if errors.As(res[i].err, &rp) {
			res[i] = createRes{t: res[rp.i].t, replayed: true}
		}
	}
	return res, nil
}

type replayOf struct{ i int }

func (r *replayOf) Error() string { return "replay" }

func errReplayOf(i int) error { return &replayOf{i} }

// --- reads

// taskRow is a task with the columns only the queue and workers read.
type taskRow struct {
	Task
	idemKey    *string
	hash       string
	jobID      int64
	losses     int
	epoch      int64
	leaseUntil int64
	events     int64
	change     int64
	deadline   int64
}

func nanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nanosPtr(n int64) *time.Time {
	if n == 0 {
		return nil
	}
	t := nanos(n)
	return &t
}

func scanTask(r row, extra ...any) (taskRow, error) {
	var tr taskRow
	var status, params, options string
	var result, resources, errText *string
	var done, total, attempts, losses, cancelReq int64
	var created, updated, started, finished int64
	err := r.Scan(append([]any{&tr.ID, &tr.Project, &tr.Kind, &status, &params, &options, &tr.idemKey, &tr.hash, &tr.jobID,
		&done, &total, &tr.Progress.Current, &result, &resources, &errText, &attempts, &losses, &tr.Worker,
		&tr.epoch, &tr.leaseUntil, &cancelReq, &tr.events, &tr.change, &tr.deadline, &created, &updated, &started, &finished}, extra...)...)
	if err != nil {
		if isNoRows(err) {
			return tr, ErrNotFound
		}
		return tr, err
	}
	tr.Status = Status(status)
	tr.Params = json.RawMessage(params)
	if err := json.Unmarshal([]byte(options), &tr.Options); err != nil {
		return tr, fmt.Errorf("jobs: task %s: options: %w", tr.ID, err)
	}
	tr.Progress.Done, tr.Progress.Total = int(done), int(total)
	if result != nil {
		if err := json.Unmarshal([]byte(*result), &tr.Result); err != nil {
			return tr, fmt.Errorf("jobs: task %s: result: %w", tr.ID, err)
		}
	}
	if resources != nil {
		if err := json.Unmarshal([]byte(*resources), &tr.Resources); err != nil {
			return tr, fmt.Errorf("jobs: task %s: resources: %w", tr.ID, err)
		}
	}
	if errText != nil {
		tr.Error = new(Error)
		if err := json.Unmarshal([]byte(*errText), tr.Error); err != nil {
			return tr, fmt.Errorf("jobs: task %s: error: %w", tr.ID, err)
		}
	}
	tr.Attempts, tr.losses = int(attempts), int(losses)
	tr.CancelRequested = cancelReq != 0
	tr.CreatedAt, tr.UpdatedAt = nanos(created), nanos(updated)
	tr.StartedAt, tr.FinishedAt = nanosPtr(started), nanosPtr(finished)
	return tr, nil
}

func isNoRows(err error) bool {
	return errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows)
}

// Get returns a task; ErrNotFound when there is none.
func (q *Queue) Get(ctx context.Context, id string) (Task, error) {
	tr, err := q.get(ctx, id)
	return tr.Task, err
}

func (q *Queue) get(ctx context.Context, id string) (taskRow, error) {
	return scanTask(q.db.queryRow(ctx, qry("task_get"), id))
}

func collect(rs rows, err error) ([]taskRow, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []taskRow
	for rs.Next() {
		tr, err := scanTask(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, tr)
	}
	return out, rs.Err()
}

// List returns a page of tasks matching f, newest first.
func (q *Queue) List(ctx context.Context, f Filter) (Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	if f.Status != "" {
		if _, err := ParseStatus(string(f.Status)); err != nil {
			return Page{}, err
		}
	}
	if f.Marker != "" {
		var one int
		if err := q.db.queryRow(ctx, qry("task_exists"), f.Marker).Scan(&one); err != nil {
			if isNoRows(err) {
				return Page{}, fmt.Errorf("%w: %q", ErrBadMarker, f.Marker)
			}
			return Page{}, err
		}
	}
	var trs []taskRow
	var err error
	if f.Resource != "" {
		typ, id, ok := strings.Cut(f.Resource, "/")
		if !ok {
			typ, id = "", f.Resource
		}
		trs, err = collect(q.db.query(ctx, qry("task_list_resource"), f.Project, f.Kind, string(f.Status), f.Marker, limit+1, typ, id))
	} else {
		trs, err = collect(q.db.query(ctx, qry("task_list"), f.Project, f.Kind, string(f.Status), f.Marker, limit+1))
	}
	if err != nil {
		return Page{}, fmt.Errorf("jobs: list: %w", err)
	}
	p := Page{Tasks: []Task{}}
	for i, tr := range trs {
		if i == limit {
			p.Next = trs[limit-1].ID
			break
		}
		p.Tasks = append(p.Tasks, tr.Task)
	}
	return p, nil
}

// Events returns a task's events with Seq > after, at most limit (0:
// all).
func (q *Queue) Events(ctx context.Context, id string, after int64, limit int) ([]Event, error) {
	if _, err := q.get(ctx, id); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 1 << 30
	}
	rs, err := q.db.query(ctx, qry("event_list"), id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("jobs: events: %w", err)
	}
	defer rs.Close()
	out := []Event{}
	for rs.Next() {
		var seq int64
		var body string
		if err := rs.Scan(&seq, &body); err != nil {
			return nil, err
		}
		var ev Event
		if err := json.Unmarshal([]byte(body), &ev); err != nil {
			return nil, fmt.Errorf("jobs: task %s: event: %w", id, err)
		}
		ev.Seq = seq
		out = append(out, ev)
	}
	return out, rs.Err()
}

// WaitEvents returns when the task has events with Seq > after, or is
// final, or ctx ends (ctx.Err()). Changes made in this process wake it
// at once (within a few milliseconds); others are seen within
// Config.PollInterval. It reads the task once, then again only when the
// queue's watcher saw the task change.
func (q *Queue) WaitEvents(ctx context.Context, id string, after int64) error {
	for {
		w := &waiter{task: id}
		q.watch.add(w) // before the read: a change it misses wakes w
		var events int64
		var status string
		err := q.db.queryRow(ctx, qry("task_wait"), id).Scan(&events, &status)
		if err != nil || events > after || Status(status).Final() {
			q.watch.remove(w)
			switch {
			case err == nil:
				return nil
			case ctx.Err() != nil:
				return ctx.Err()
			case isNoRows(err):
				return ErrNotFound
			}
			return err
		}
		if err := q.watch.wait(ctx, w); err != nil {
			return err
		}
	}
}

// changesLimit bounds one answer of Changes.
const changesLimit = 500

// Changes returns the tasks matching f changed after the cursor, oldest
// change first, and the new cursor; a negative cursor returns no tasks
// and the current cursor. The cursor only moves up to the database's
// safe horizon (every change numbered up to it has committed or never
// will), so nothing committed later with a lower number is missed.
// Several tasks may share a change number (one transaction on
// PostgreSQL): a page never ends within one.
func (q *Queue) Changes(ctx context.Context, f Filter, after int64) ([]Task, int64, error) {
	cur, err := q.db.horizon(ctx)
	if err != nil {
		return nil, after, err
	}
	if after < 0 {
		return []Task{}, cur, nil // where a follower starts
	}
	if cur <= after {
		return []Task{}, after, nil
	}
	limit := changesLimit
	if f.Limit > 0 {
		limit = min(f.Limit, MaxLimit)
	}
	trs, err := collect(q.db.query(ctx, qry("task_changes"), after, f.Project, f.Kind, string(f.Status), limit, cur))
	if err != nil {
		return nil, after, fmt.Errorf("jobs: changes: %w", err)
	}
	if len(trs) == limit {
		last := trs[len(trs)-1].change
		if trs[0].change == last {
			// One change number fills the page: take all of it.
			trs, err = collect(q.db.query(ctx, qry("task_changes"), last-1, f.Project, f.Kind, string(f.Status), 1<<30, last))
			if err != nil {
				return nil, after, fmt.Errorf("jobs: changes: %w", err)
			}
		} else {
			// Leave the last number's tasks for the next page.
			for trs[len(trs)-1].change == last {
				trs = trs[:len(trs)-1]
			}
			last--
		}
		cur = last
	}
	out := make([]Task, len(trs))
	for i, tr := range trs {
		out[i] = tr.Task
	}
	if f.Resource != "" {
		out = filterResource(out, f.Resource)
	}
	return out, cur, nil
}

func filterResource(ts []Task, res string) []Task {
	typ, id, ok := strings.Cut(res, "/")
	if !ok {
		typ, id = "", res
	}
	out := ts[:0]
	for _, t := range ts {
		for _, r := range t.Resources {
			if r.ID == id && (typ == "" || r.Type == typ) {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// WaitChanges returns when a task changed after the cursor, or ctx ends
// (ctx.Err()). Changes made in this process wake it at once (within a
// few milliseconds); others are seen within Config.PollInterval. It reads
// nothing itself: the queue's watcher looks for every waiter.
func (q *Queue) WaitChanges(ctx context.Context, after int64) error {
	w := &waiter{after: after}
	if q.watch.add(w) {
		return nil
	}
	return q.watch.wait(ctx, w)
}

// Cancel asks a task to stop. A queued task is cancelled at once; a
// running one is reverted by its worker (reverting, then cancelled).
// ErrFinished when it already ended.
func (q *Queue) Cancel(ctx context.Context, id string) (Task, error) {
	err := q.inTx(ctx, func(t tx, change int64) error {
		now := time.Now().UnixNano()
		var seq int64
		err := t.queryRow(ctx, qry("task_cancel_queued"), id, change, now).Scan(&seq)
		if err == nil {
			body, _ := json.Marshal(Event{Seq: seq, TaskID: id, Time: nanos(now), From: string(Queued), To: string(Cancelled)})
			_, err = t.exec(ctx, qry("event_insert"), id, seq, 0, string(body))
			return err
		}
		if !isNoRows(err) {
			return err
		}
		n, err := t.exec(ctx, qry("task_cancel_running"), id, change, now)
		if err != nil {
			return err
		}
		if n == 0 {
			tr, err := scanTask(t.queryRow(ctx, qry("task_get"), id))
			if err != nil {
				return err
			}
			if tr.Status.Final() {
				return ErrFinished
			}
			return fmt.Errorf("jobs: cancel %s: the task changed meanwhile", id)
		}
		return nil
	})
	if err != nil {
		return Task{}, err
	}
	q.changed.fire()
	q.cancels.fire()
	return q.Get(ctx, id)
}

// inTx runs fn in a transaction with a fresh change number.
func (q *Queue) inTx(ctx context.Context, fn func(t tx, change int64) error) error {
	t, err := q.db.begin(ctx)
	if err != nil {
		return err
	}
	defer t.rollback(ctx)
	change, _, err := q.db.takeChanges(ctx, t, 1)
	if err != nil {
		return err
	}
	if err := fn(t, change); err != nil {
		return err
	}
	return t.commit(ctx)
}

// ResourceFault returns the newest failed or reverted task of the project
// ("" any) that made or acted on the resource ("type/id").
func (q *Queue) ResourceFault(ctx context.Context, project, resource string) (Task, error) {
	typ, id, ok := strings.Cut(resource, "/")
	if !ok || typ == "" || id == "" {
		return Task{}, fmt.Errorf("%w: resource %q is not type/id", ErrNotFound, resource)
	}
	tr, err := scanTask(q.db.queryRow(ctx, qry("task_fault"), project, typ, id))
	return tr.Task, err
}

// Claim is one entry of a task's fencing history: a worker took the
// task's flow run with a new epoch.
type Claim struct {
	Epoch  int64
	Worker string
	At     time.Time
}

// Claims returns a task's fencing history, by epoch.
func (q *Queue) Claims(ctx context.Context, id string) ([]Claim, error) {
	rs, err := q.db.query(ctx, qry("claim_list"), id)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []Claim
	for rs.Next() {
		var c Claim
		var at int64
		if err := rs.Scan(&c.Epoch, &c.Worker, &at); err != nil {
			return nil, err
		}
		c.At = nanos(at)
		out = append(out, c)
	}
	return out, rs.Err()
}

// EventEpochs returns the epoch each event of a task was written under,
// by sequence (0 for the queue's own), for fencing checks.
func (q *Queue) EventEpochs(ctx context.Context, id string) ([]int64, error) {
	rs, err := q.db.query(ctx, qry("event_epochs"), id)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []int64
	for rs.Next() {
		var e int64
		if err := rs.Scan(&e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rs.Err()
}
