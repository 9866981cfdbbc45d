package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ostask/ostask/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

//go:embed sql/*.sql
var queries embed.FS

var q = func() store.Statements {
	sub, err := fs.Sub(queries, "sql")
	if err != nil {
		panic(err)
	}
	st := store.LoadStatements(sub)
	if st.BatchWrite == "" { // optional for LoadStatements, the only write here
		panic("store/postgres: statement batch_write.sql is missing")
	}
	return st
}()

// Option configures the driver.
type Option func(*Driver)

// WithSchema keeps the tables in schema (created if missing) instead of
// the connection's default search path.
func WithSchema(schema string) Option { return func(d *Driver) { d.schema = schema } }

// WithMaxConns bounds the connection pool (default: pgxpool's).
func WithMaxConns(n int32) Option { return func(d *Driver) { d.maxConns = n } }

// DefaultGroupWriters is how many transactions of grouped writes (see
// store.WithGroupCommit) a DB sends at once unless WithGroupWriters says
// otherwise. With two, a group is executed while the previous one is
// being flushed, and two runs alone never wait for each other; more rarely
// helps, since the server flushes its log one flush at a time.
const DefaultGroupWriters = 2

// WithGroupWriters sets how many transactions of grouped writes are sent
// at once (default DefaultGroupWriters, at least 1, at most the pool's
// connections).
func WithGroupWriters(n int) Option { return func(d *Driver) { d.writers = n } }

// Driver is the PostgreSQL store.Driver over a pgx pool.
type Driver struct {
	pool     *pgxpool.Pool
	schema   string
	maxConns int32
	writers  int
}

var _ store.GroupDriver = (*Driver)(nil)

// NewDriver connects to the database at url (postgres://...).
func NewDriver(ctx context.Context, url string, opts ...Option) (*Driver, error) {
	d := &Driver{writers: DefaultGroupWriters}
	for _, o := range opts {
		o(d)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if d.maxConns > 0 {
		cfg.MaxConns = d.maxConns
	}
	d.writers = min(max(d.writers, 1), int(cfg.MaxConns))
	if d.schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = d.schema
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "ostask"
	}
	if d.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if d.schema != "" {
		if _, err := d.pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{d.schema}.Sanitize()); err != nil {
			d.pool.Close()
			return nil, fmt.Errorf("postgres: create schema %q: %w", d.schema, err)
		}
	}
	return d, nil
}

// Open connects to url with opts and applies the migrations.
func Open(ctx context.Context, url string, opts []Option, storeOpts ...store.Option) (*store.DB, error) {
	d, err := NewDriver(ctx, url, opts...)
	if err != nil {
		return nil, err
	}
	return store.New(ctx, d, storeOpts...)
}

// Pool returns the connection pool (tests, tools).
func (d *Driver) Pool() *pgxpool.Pool { return d.pool }

// Schema returns the schema given with WithSchema.
func (d *Driver) Schema() string { return d.schema }

// Name implements store.Driver.
func (d *Driver) Name() string { return "postgres" }

// Migrations implements store.Driver.
func (d *Driver) Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// Close implements store.Driver.
func (d *Driver) Close() error {
	d.pool.Close()
	return nil
}

// SchemaVersion implements store.Driver.
func (d *Driver) SchemaVersion(ctx context.Context) (int, error) {
	var exists bool
	if err := d.pool.QueryRow(ctx, q.SchemaExists).Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v int
	err := d.pool.QueryRow(ctx, q.SchemaVersion).Scan(&v)
	return v, err
}

// ApplyMigration implements store.Driver.
func (d *Driver) ApplyMigration(ctx context.Context, m store.Migration) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, q.SchemaLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, q.SchemaTable); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, q.SchemaVersion).Scan(&v); err != nil {
			return err
		}
		if v >= m.Version {
			return nil
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, q.SchemaInsert, m.Version, m.Name)
		return err
	})
}

// text passes a JSON column: nil is NULL.
func text(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

func tstz(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func scanRun(s pgx.Row) (store.RunRow, error) {
	var r store.RunRow
	err := s.Scan(&r.ID, &r.Flow, &r.Version, &r.Params, &r.State, &r.Owner, &r.Epoch, &r.Seq, &r.Created, &r.Updated)
	r.Created, r.Updated = r.Created.UTC(), r.Updated.UTC()
	return r, err
}

// GetRun implements store.Driver.
func (d *Driver) GetRun(ctx context.Context, id string) (store.RunRow, error) {
	r, err := scanRun(d.pool.QueryRow(ctx, q.RunGet, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, store.ErrNotFound
	}
	return r, err
}

// ListRuns implements store.Driver.
func (d *Driver) ListRuns(ctx context.Context, f store.RunFilter) ([]store.RunRow, error) {
	var limit any
	if f.Limit > 0 {
		limit = f.Limit
	}
	rows, err := d.pool.Query(ctx, q.RunList, f.Flow, f.State, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.RunRow
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ClaimRun implements store.Driver.
func (d *Driver) ClaimRun(ctx context.Context, id, owner string, now time.Time) (store.RunRow, error) {
	r, err := scanRun(d.pool.QueryRow(ctx, q.RunClaim, id, owner, now))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, store.ErrNotFound
	}
	return r, err
}

// DeleteRun implements store.Driver: the run row, then its atoms (no
// foreign key cascades; see migration 0002), in one round trip and one
// implicit transaction.
func (d *Driver) DeleteRun(ctx context.Context, id string) error {
	var batch pgx.Batch
	batch.Queue(q.RunDelete, id)
	batch.Queue(q.AtomDelete, id)
	res := d.pool.SendBatch(ctx, &batch)
	tag, err := res.Exec()
	if err == nil {
		_, err = res.Exec()
	}
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// LoadAtoms implements store.Driver.
func (d *Driver) LoadAtoms(ctx context.Context, id string) ([]store.AtomRow, error) {
	rows, err := d.pool.Query(ctx, q.AtomList, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AtomRow
	for rows.Next() {
		var a store.AtomRow
		var started, finished pgtype.Timestamptz
		if err := rows.Scan(&a.Name, &a.Version, &a.State, &a.Attempts, &a.Result, &a.Failure, &a.RevertFailure,
			&a.History, &a.Decision, &started, &finished, &a.Updated); err != nil {
			return nil, err
		}
		a.Started, a.Finished, a.Updated = tstz(started), tstz(finished), a.Updated.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// Apply implements store.Driver: the whole write is one statement (see
// batch_write.sql), one round trip, one implicit transaction. A guard that
// finds nothing fails it with division_by_zero; what the guard missed is
// read afterwards, for the error.
func (d *Driver) Apply(ctx context.Context, b *store.Batch) error {
	if b.BeforeCommit != nil {
		b.BeforeCommit()
	}
	_, err := d.send(ctx, []*store.Batch{b})
	return d.explain(ctx, b, err)
}

// ApplyGroup implements store.GroupDriver: one statement per batch, all
// in one pipeline, one implicit transaction, one round trip. The first
// statement that fails aborts it all; when it is a guard, or an error
// that no retry clears, the batch it belongs to is named.
func (d *Driver) ApplyGroup(ctx context.Context, bs []*store.Batch) error {
	for _, b := range bs {
		if b.BeforeCommit != nil {
			b.BeforeCommit()
		}
	}
	i, err := d.send(ctx, bs)
	if i < 0 || ctx.Err() != nil || d.Retryable(err) {
		return err
	}
	return &store.BatchError{Index: i, Err: d.explain(ctx, bs[i], err)}
}

// GroupWriters implements store.GroupDriver.
func (d *Driver) GroupWriters() int { return d.writers }

// atomColumns are a batch's atom writes as the parallel arrays of
// batch_write.sql; never nil (a nil slice would be a NULL array).
type atomColumns struct {
	name, version, state, decision, from []string
	result, failure, revertFailure, hist []pgtype.Text
	start, finish                        []bool
}

func nullText(b []byte) pgtype.Text { return pgtype.Text{String: string(b), Valid: b != nil} }

func columns(ws []store.AtomWrite) *atomColumns {
	n := len(ws)
	c := &atomColumns{name: make([]string, n), version: make([]string, n), state: make([]string, n),
		decision: make([]string, n), from: make([]string, n), result: make([]pgtype.Text, n),
		failure: make([]pgtype.Text, n), revertFailure: make([]pgtype.Text, n), hist: make([]pgtype.Text, n),
		start: make([]bool, n), finish: make([]bool, n)}
	for i := range ws {
		w, r := &ws[i], &ws[i].Row
		c.name[i], c.version[i], c.state[i], c.decision[i], c.from[i] = r.Name, r.Version, r.State, r.Decision, w.From
		c.result[i], c.failure[i], c.revertFailure[i], c.hist[i] =
			nullText(r.Result), nullText(r.Failure), nullText(r.RevertFailure), nullText(r.History)
		c.start[i], c.finish[i] = w.Start, w.Finish
	}
	return c
}

// send writes bs in one pipeline, one statement each. When a statement
// fails on the server it returns the batch it belongs to; otherwise -1.
func (d *Driver) send(ctx context.Context, bs []*store.Batch) (batch int, err error) {
	var p pgx.Batch
	for _, b := range bs {
		if r := b.Create; r != nil {
			p.Queue(q.RunInsert, r.ID, r.Flow, r.Version, string(r.Params), r.State, r.Owner,
				r.Epoch, r.Seq, r.Created, r.Updated)
			continue
		}
		c := columns(b.Atoms)
		p.Queue(q.BatchWrite, b.Now, b.FlowTo, text(b.Params), b.Run, b.Epoch, b.Seq, b.FlowFrom,
			c.name, c.version, c.state, c.result, c.failure, c.revertFailure, c.hist, c.decision,
			c.start, c.finish, c.from)
	}
	res := d.pool.SendBatch(ctx, &p)
	batch = -1
	for i := range bs {
		if _, err = res.Exec(); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) {
				batch = i
			}
			break
		}
	}
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	return batch, err
}

// explain turns the failure of a batch's guards (division_by_zero, see
// batch_write.sql) into what they missed, read afterwards: a
// *store.RunMismatch when the run row is not as the batch expects it
// (gone, another epoch or sequence, another flow state), else an
// *store.AtomMismatch for the first atom not in the state its write
// expects; and the failed insert of a creation into store.ErrExists.
//
// Only the run's owner changes its atoms, under the fence, so when the run
// row still matches, the atoms are as the failed statement found them.
// Should everything match anyway, err is returned as it is.
func (d *Driver) explain(ctx context.Context, b *store.Batch, err error) error {
	var pe *pgconn.PgError
	if b.Create != nil && errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return store.ErrExists
	}
	if !errors.As(err, &pe) || pe.Code != "22012" || b.Create != nil {
		return err
	}
	m := &store.RunMismatch{Found: true}
	ferr := d.pool.QueryRow(ctx, q.RunFence, b.Run).Scan(&m.Epoch, &m.Seq, &m.State, &m.Owner)
	if errors.Is(ferr, pgx.ErrNoRows) {
		m.Found = false
		return m
	} else if ferr != nil {
		return ferr
	}
	if m.Epoch != b.Epoch || m.Seq != b.Seq || (b.FlowFrom != "" && m.State != b.FlowFrom) {
		return m
	}
	if len(b.Atoms) == 0 {
		return err
	}
	rows, lerr := d.LoadAtoms(ctx, b.Run)
	if lerr != nil {
		return lerr
	}
	stored := make(map[string]string, len(rows))
	for _, r := range rows {
		stored[r.Name] = r.State
	}
	for _, w := range b.Atoms {
		st, found := stored[w.Row.Name]
		switch {
		case !found && w.From == "PENDING":
		case !found:
			return &store.AtomMismatch{Atom: w.Row.Name}
		case st != w.From:
			return &store.AtomMismatch{Atom: w.Row.Name, Found: true, State: st}
		}
	}
	return err
}

// Retryable implements store.Driver: an error from the server is worth
// another attempt when the server is shutting down or starting, the
// connection broke, a lock or serialization conflict can clear, or the
// disk is full; an error that never reached a server (refused or broken
// connection) is always worth one.
func (d *Driver) Retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var rm *store.RunMismatch
	var am *store.AtomMismatch
	if errors.As(err, &rm) || errors.As(err, &am) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code[:2] == "08", // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // shutdown, crash, starting
			pe.Code == "40001", pe.Code == "40P01", pe.Code == "55P03", // serialization, deadlock, lock
			pe.Code == "53100", pe.Code == "53300", // disk full, too many connections
			pe.Code == "58000", pe.Code == "58030": // system and I/O errors
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
