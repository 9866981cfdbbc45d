package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/retry"
)

// Retry defaults for database operations: about 10 s of patience in all,
// enough for a PostgreSQL restart or a busy SQLite file, never endless.
const (
	DefaultRetryAttempts = 8
	DefaultRetryInitial  = 50 * time.Millisecond
	DefaultRetryMax      = 3 * time.Second
)

// DefaultRetryPolicy is the backoff of database operations that fail with
// a retryable error.
func DefaultRetryPolicy() retry.Policy {
	return retry.Policy{MaxAttempts: DefaultRetryAttempts, Initial: DefaultRetryInitial,
		Max: DefaultRetryMax, Multiplier: 2, Jitter: 0.2}
}

type config struct {
	hook    func(WriteStage)
	now     func() time.Time
	policy  retry.Policy
	sleep   retry.SleepFunc
	owner   string
	secrets []string
	group   int
}

// Option configures a DB.
type Option func(*config)

// WithClock sets the time source of created/updated times and atom timings.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithRetryPolicy sets the backoff of operations that fail with a
// retryable error (default: DefaultRetryPolicy).
func WithRetryPolicy(p retry.Policy) Option { return func(c *config) { c.policy = p } }

// WithRetrySleep replaces the wait between retries (tests).
func WithRetrySleep(fn retry.SleepFunc) Option { return func(c *config) { c.sleep = fn } }

// WithOwner names this process in the runs it creates or acquires without
// an explicit owner (default: host name and process id).
func WithOwner(owner string) Option { return func(c *config) { c.owner = owner } }

// WriteStage is a point of a run's write, for WithWriteHook.
type WriteStage uint8

// Stages of a write.
const (
	BeforeWrite WriteStage = iota + 1 // nothing of it sent yet
	InsideWrite                       // the statements ran, the commit has not
	AfterWrite                        // committed, not yet returned to the engine
)

// WithWriteHook calls fn at each stage of every write of a Run handle. It
// exists for crash tests, which kill the process at each stage of each
// write in turn.
func WithWriteHook(fn func(WriteStage)) Option { return func(c *config) { c.hook = fn } }

// WithSecrets registers secret values that must never be written; see
// DB.AddSecrets.
func WithSecrets(secrets ...string) Option {
	return func(c *config) { c.secrets = append(c.secrets, secrets...) }
}

// DB is a database of flow runs: a catalogue (Create, Get, List, Show,
// Delete) and fenced handles on single runs (Create, Acquire) that
// implement engine.Storage. It is safe for concurrent use.
type DB struct {
	d        Driver
	cfg      config
	redact   redactor
	from, to int
	closed   atomic.Bool
	group    *committer // nil: every write alone
}

// New opens a DB over a driver, applying the driver's migrations. It fails
// with a *SchemaError when the database is newer than the migrations, and
// closes the driver on any error.
func New(ctx context.Context, d Driver, opts ...Option) (*DB, error) {
	cfg := config{now: time.Now, policy: DefaultRetryPolicy(), group: DefaultGroupCommit}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.policy.Validate(); err != nil {
		d.Close()
		return nil, err
	}
	if cfg.owner == "" {
		host, _ := os.Hostname()
		cfg.owner = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	db := &DB{d: d, cfg: cfg}
	db.redact.add(cfg.secrets...)
	err := db.retry(ctx, "migrate", "", func(ctx context.Context) error {
		var err error
		db.from, db.to, err = migrate(ctx, d)
		return err
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	if gd, ok := d.(GroupDriver); ok && cfg.group > 1 {
		db.group = newCommitter(gd, cfg.group)
	}
	return db, nil
}

// Driver returns the driver the DB runs on.
func (db *DB) Driver() Driver { return db.d }

// Migrated returns the schema version found at open and the version now.
func (db *DB) Migrated() (from, to int) { return db.from, db.to }

// AddSecrets registers secret values (shorter than MinSecretLen: ignored)
// that are replaced by Redacted in everything written from now on.
func (db *DB) AddSecrets(secrets ...string) { db.redact.add(secrets...) }

// HoldsSecret reports whether writing doc, a JSON document, would replace
// a registered secret in it by Redacted: whether what comes back would
// differ from what went in. Callers refuse such input (a task parameter
// named after a password) rather than store it mangled. Secret keys (see
// SecretKey) are not considered: only registered values.
func (db *DB) HoldsSecret(doc []byte) bool { return db.redact.holds(doc) }

// Close closes the database. Handles of runs fail afterwards; writes
// waiting to share a commit fail with ErrClosed.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return nil
	}
	if db.group != nil {
		db.group.close()
	}
	return db.d.Close()
}

// write writes one run's batch (or creation): with the writes of other
// runs when a committer shares commits, else alone.
func (db *DB) write(ctx context.Context, b *Batch) error {
	if db.group != nil {
		return db.group.write(ctx, b)
	}
	return db.d.Apply(ctx, b)
}

func (db *DB) now() time.Time { return db.cfg.now().UTC().Truncate(time.Microsecond) }

// retry runs fn under the retry policy; errors the driver does not deem
// retryable stop at once.
func (db *DB) retry(ctx context.Context, op, run string, fn func(ctx context.Context) error) error {
	if db.closed.Load() {
		return ErrClosed
	}
	attempts := 0
	opts := []retry.Option{}
	if db.cfg.sleep != nil {
		opts = append(opts, retry.WithSleep(db.cfg.sleep))
	}
	err := retry.Do(ctx, db.cfg.policy, func(ctx context.Context, attempt int) error {
		attempts = attempt
		err := fn(ctx)
		if err != nil && !db.d.Retryable(err) {
			return retry.Permanent(err)
		}
		return err
	}, opts...)
	return db.retryError(op, run, attempts, err)
}

func (db *DB) retryError(op, run string, attempts int, err error) error {
	if err == nil {
		return nil
	}
	var pe *retry.PermanentError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var ex *retry.ExhaustedError
	if errors.As(err, &ex) {
		return &UnavailableError{Op: op, Run: run, Attempts: attempts, Err: ex.Last()}
	}
	// The context ended while retrying.
	return &UnavailableError{Op: op, Run: run, Attempts: attempts, Err: err}
}

// RunInfo is a run in the catalogue.
type RunInfo struct {
	ID      string
	Flow    string // the flow's registered name
	Version string // the flow's registered version
	// Params are the run's initial store values, as JSON.
	Params  map[string]json.RawMessage
	State   flow.State
	Owner   string
	Epoch   int64
	Created time.Time
	Updated time.Time
}

// AtomInfo is an atom of a run, for display.
type AtomInfo struct {
	Name          string
	Version       string
	State         flow.State
	Attempts      int // times it entered RUNNING
	Started       time.Time
	Finished      time.Time
	Updated       time.Time
	Result        json.RawMessage
	Failure       *flow.Failure
	RevertFailure *flow.Failure
	History       flow.History
	Decision      flow.Decision // a retry controller's decision not yet carried out
}

// NewRun describes a run to create.
type NewRun struct {
	ID      string
	Flow    string
	Version string
	Params  map[string]any // the initial store values
	Owner   string         // default: the DB's owner
}

// Create records a new run, PENDING, owned by the caller with epoch 1, and
// returns its handle. ErrExists when the id is taken.
func (db *DB) Create(ctx context.Context, nr NewRun) (*Run, error) {
	p, err := db.encodeParams(nr)
	if err != nil {
		return nil, err
	}
	return db.create(ctx, nr, p)
}

// encodeParams encodes a new run's params as Create writes them.
func (db *DB) encodeParams(nr NewRun) ([]byte, error) {
	if nr.ID == "" || nr.Flow == "" {
		return nil, fmt.Errorf("store: create: %w: run id and flow name are required", ErrBadRun)
	}
	params := nr.Params
	if params == nil {
		params = map[string]any{}
	}
	return db.encode(nr.ID, "", "params", params)
}

// create is Create with the params encoded (p from encodeParams).
func (db *DB) create(ctx context.Context, nr NewRun, p []byte) (*Run, error) {
	owner := nr.Owner
	if owner == "" {
		owner = db.cfg.owner
	}
	now := db.now()
	row := RunRow{ID: nr.ID, Flow: nr.Flow, Version: nr.Version, Params: p, State: flow.StatePending.String(),
		Owner: owner, Epoch: 1, Created: now, Updated: now}
	b := &Batch{Run: nr.ID, Create: &row}
	unknown := false // an attempt failed in a way that may hide its commit
	err := db.retry(ctx, "create", nr.ID, func(ctx context.Context) error {
		err := db.write(ctx, b)
		if errors.Is(err, ErrExists) && unknown {
			mine, gerr := db.createdAs(ctx, &row)
			if gerr != nil {
				return gerr // not known yet whose it is: ask again, not ErrExists
			}
			if mine {
				return nil
			}
		}
		if err != nil && db.d.Retryable(err) {
			unknown = true
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: create run %q: %w", nr.ID, err)
	}
	return &Run{db: db, id: nr.ID, epoch: 1, created: &row}, nil
}

// createdAs reports whether the stored run is row as written by an
// earlier attempt of the same Create whose answer was lost: same owner,
// creation time, flow and params, never written since. A failed read is
// its error: it tells nothing of whose the run is.
func (db *DB) createdAs(ctx context.Context, row *RunRow) (bool, error) {
	got, err := db.d.GetRun(ctx, row.ID)
	if err != nil {
		return false, err
	}
	return got.Epoch == row.Epoch && got.Seq == row.Seq && got.Owner == row.Owner &&
		got.Created.Equal(row.Created) && got.Flow == row.Flow && got.Version == row.Version &&
		got.State == row.State && string(got.Params) == string(row.Params), nil
}

// ErrBadRun is matched by the errors of invalid NewRun values.
var ErrBadRun = errors.New("store: invalid run")

// Acquire takes the run's ownership for owner (empty: the DB's owner) with
// a new, higher epoch and returns its handle. The previous owner's
// handle fails with a *FencedError on its next write.
func (db *DB) Acquire(ctx context.Context, id, owner string) (*Run, error) {
	if owner == "" {
		owner = db.cfg.owner
	}
	var row RunRow
	err := db.retry(ctx, "acquire", id, func(ctx context.Context) error {
		var err error
		row, err = db.d.ClaimRun(ctx, id, owner, db.now())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: acquire run %q: %w", id, err)
	}
	if _, err := decodeRun(&row); err != nil {
		return nil, err
	}
	return &Run{db: db, id: id, epoch: row.Epoch, seq: row.Seq}, nil
}

// Get returns a run of the catalogue.
func (db *DB) Get(ctx context.Context, id string) (RunInfo, error) {
	var row RunRow
	err := db.retry(ctx, "get", id, func(ctx context.Context) error {
		var err error
		row, err = db.d.GetRun(ctx, id)
		return err
	})
	if err != nil {
		return RunInfo{}, fmt.Errorf("store: get run %q: %w", id, err)
	}
	return decodeRun(&row)
}

// List returns the runs matching f, newest first.
func (db *DB) List(ctx context.Context, f RunFilter) ([]RunInfo, error) {
	var rows []RunRow
	err := db.retry(ctx, "list", "", func(ctx context.Context) error {
		var err error
		rows, err = db.d.ListRuns(ctx, f)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list runs: %w", err)
	}
	out := make([]RunInfo, 0, len(rows))
	for i := range rows {
		info, err := decodeRun(&rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// Show returns a run and its atoms, sorted by name.
func (db *DB) Show(ctx context.Context, id string) (RunInfo, []AtomInfo, error) {
	info, err := db.Get(ctx, id)
	if err != nil {
		return RunInfo{}, nil, err
	}
	atoms, err := db.atoms(ctx, id)
	return info, atoms, err
}

func (db *DB) atoms(ctx context.Context, id string) ([]AtomInfo, error) {
	var rows []AtomRow
	err := db.retry(ctx, "load", id, func(ctx context.Context) error {
		var err error
		rows, err = db.d.LoadAtoms(ctx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: load atoms of run %q: %w", id, err)
	}
	out := make([]AtomInfo, 0, len(rows))
	for i := range rows {
		a, err := decodeAtom(id, &rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b AtomInfo) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// Delete removes a run and its atoms.
func (db *DB) Delete(ctx context.Context, id string) error {
	if err := db.retry(ctx, "delete", id, func(ctx context.Context) error { return db.d.DeleteRun(ctx, id) }); err != nil {
		return fmt.Errorf("store: delete run %q: %w", id, err)
	}
	return nil
}
