package jobs

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"modernc.org/sqlite"

	"github.com/ostask/ostask/internal/sqlitecache"
	"github.com/ostask/ostask/store"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

//go:embed sql/*.sql sql/pg/*.sql
var sqlFiles embed.FS

// queries holds the statements of sql/*.sql by file name (without .sql).
// Both databases run the same text: numbered parameters ($1) and Unix
// nanosecond times work in SQLite and PostgreSQL alike; only the
// migrations differ, and sql/pg/*.sql ("pg/name"): statements only
// PostgreSQL can run (data-modifying WITH), which fold several of a
// write's statements into one.
var queries = func() map[string]string {
	m := map[string]string{}
	for _, dir := range []string{"sql", "sql/pg"} {
		ents, err := fs.ReadDir(sqlFiles, dir)
		if err != nil {
			panic(err)
		}
		prefix := strings.TrimPrefix(strings.TrimPrefix(dir, "sql"), "/")
		if prefix != "" {
			prefix += "/"
		}
		for _, e := range ents {
			if e.IsDir() {
				continue
			}
			b, err := sqlFiles.ReadFile(dir + "/" + e.Name())
			if err != nil {
				panic(err)
			}
			m[prefix+strings.TrimSuffix(e.Name(), ".sql")] = string(b)
		}
	}
	// {{name}} stands for statement name without its comments.
	for k, v := range m {
		for {
			i := strings.Index(v, "{{")
			if i < 0 {
				break
			}
			j := strings.Index(v[i:], "}}")
			if j < 0 {
				panic("jobs: unclosed {{ in statement " + k)
			}
			base, ok := m[v[i+2:i+j]]
			if !ok {
				panic("jobs: statement " + k + " names no statement " + v[i+2:i+j])
			}
			v = v[:i] + stripComments(base) + v[i+j+2:]
		}
		m[k] = v
	}
	return m
}()

// stripComments drops a statement's comment lines and trailing space.
func stripComments(q string) string {
	var b strings.Builder
	for _, l := range strings.Split(q, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			b.WriteString(l)
			b.WriteString("\n")
		}
	}
	return strings.TrimRight(b.String(), " \t\n")
}

func qry(name string) string {
	s, ok := queries[name]
	if !ok {
		panic("jobs: no statement " + name)
	}
	return s
}

// row scans one row; rows iterates.
type row interface{ Scan(dst ...any) error }

type rows interface {
	Next() bool
	Scan(dst ...any) error
	Err() error
	Close()
}

// querier is what both a pool and a transaction do, on either database.
type querier interface {
	exec(ctx context.Context, q string, args ...any) (int64, error)
	query(ctx context.Context, q string, args ...any) (rows, error)
	queryRow(ctx context.Context, q string, args ...any) row
}

type tx interface {
	querier
	// later runs a statement whose answer nobody waits for. PostgreSQL
	// sends it with the transaction's next statement or its commit (one
	// round trip for many); SQLite runs it at once. Its error fails the
	// transaction: a later statement or the commit returns it.
	later(ctx context.Context, q string, args ...any)
	// laterRow is later for a statement returning one row, given to scan
	// when it arrives; an error scan returns fails the transaction as a
	// failed statement would.
	laterRow(ctx context.Context, scan func(row) error, q string, args ...any)
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
}

// database is one of the two databases with the River client that goes
// with it.
type database interface {
	querier
	name() string
	begin(ctx context.Context) (tx, error)
	// insertJobs inserts River jobs in t.
	insertJobs(ctx context.Context, t tx, ps []river.InsertManyParams) ([]int64, error)
	// newClient makes a River client on this database (insert-only when
	// cfg has no workers).
	newClient(cfg *river.Config) (riverClient, error)
	migrateRiver(ctx context.Context) error
	// riverCurrent reports whether River's migrations are all applied.
	riverCurrent(ctx context.Context) error
	// uniqueViolation reports whether err is a unique constraint failure.
	uniqueViolation(err error) bool
	// takeChanges gives the change numbers of n task writes in t: the
	// i-th is first + i*step. SQLite takes them from the counter row
	// (one writer at a time: numbers follow commit order); PostgreSQL
	// gives every write of t the same number, from t's transaction id
	// (step 0), and takes no lock.
	takeChanges(ctx context.Context, t tx, n int64) (first, step int64, err error)
	// horizon is the safe change cursor: every change numbered up to it
	// is committed (or rolled back) for good; any later commit has a
	// greater number.
	horizon(ctx context.Context) (int64, error)
	close()
}

// riverClient is the part of a River client the queue uses, whatever
// its transaction type.
type riverClient interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Stopped() <-chan struct{}
	insertMany(ctx context.Context, t tx, ps []river.InsertManyParams) ([]int64, error)
	JobCancel(ctx context.Context, id int64) (*rivertype.JobRow, error)
}

// openDatabase opens url: postgres:// or postgresql:// for PostgreSQL
// (schema, when set, holds the tables), anything else a SQLite file
// (PATH or sqlite:PATH).
func openDatabase(ctx context.Context, url, schema string) (database, error) {
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		return openPostgres(ctx, url, schema)
	}
	return openSQLite(strings.TrimPrefix(url, "sqlite:"))
}

// --- SQLite

type sqliteDB struct {
	db     *sql.DB
	driver *riversqlite.Driver
	client *river.Client[*sql.Tx] // the insert-only client
}

func openSQLite(path string) (*sqliteDB, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("jobs: bad SQLite path %q", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	f.Close()
	dsn := path + "?_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate"
	base, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	// modernc.org/sqlite parses each statement on every call; the cache
	// keeps them prepared, for the queue's statements and River's alike.
	db := sql.OpenDB(sqlitecache.New(base, 0))
	// One connection: SQLite has one writer, River's SQLite driver asks
	// for it, and nothing here holds a transaction while it queries the
	// pool.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	d := &sqliteDB{db: db, driver: riversqlite.New(db)}
	if d.client, err = river.NewClient(d.driver, &river.Config{}); err != nil {
		db.Close()
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return d, nil
}

func (d *sqliteDB) name() string { return "sqlite" }
func (d *sqliteDB) close()       { d.db.Close() }

func (d *sqliteDB) exec(ctx context.Context, q string, args ...any) (int64, error) {
	return sqlExec(ctx, d.db, q, args...)
}
func (d *sqliteDB) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}
func (d *sqliteDB) queryRow(ctx context.Context, q string, args ...any) row {
	return d.db.QueryRowContext(ctx, q, args...)
}

func (d *sqliteDB) begin(ctx context.Context) (tx, error) {
	t, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &sqlTx{tx: t}, nil
}

func (d *sqliteDB) insertJobs(ctx context.Context, t tx, ps []river.InsertManyParams) ([]int64, error) {
	return insertMany(ctx, d.client, t.(*sqlTx).tx, ps)
}

func (d *sqliteDB) newClient(cfg *river.Config) (riverClient, error) {
	c, err := river.NewClient(d.driver, cfg)
	if err != nil {
		return nil, err
	}
	return &client[*sql.Tx]{Client: c, unwrap: func(t tx) *sql.Tx { return t.(*sqlTx).tx }}, nil
}

func (d *sqliteDB) migrateRiver(ctx context.Context) error {
	m, err := rivermigrate.New(d.driver, nil)
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

func (d *sqliteDB) riverCurrent(ctx context.Context) error {
	m, err := rivermigrate.New(d.driver, nil)
	if err != nil {
		return err
	}
	return riverCurrent(ctx, m.ExistingVersions, m.AllVersions)
}

func (d *sqliteDB) uniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func (d *sqliteDB) takeChanges(ctx context.Context, t tx, n int64) (int64, int64, error) {
	var last int64
	if err := t.queryRow(ctx, qry("change_take"), n).Scan(&last); err != nil {
		return 0, 0, err
	}
	return last - n + 1, 1, nil
}

func (d *sqliteDB) horizon(ctx context.Context) (int64, error) {
	var cur int64
	err := d.queryRow(ctx, qry("change_current")).Scan(&cur)
	return cur, err
}

type sqlTx struct {
	tx  *sql.Tx
	err error // the first failure of a later statement
}

func (t *sqlTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	return sqlExec(ctx, t.tx, q, args...)
}
func (t *sqlTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}
func (t *sqlTx) queryRow(ctx context.Context, q string, args ...any) row {
	return t.tx.QueryRowContext(ctx, q, args...)
}
func (t *sqlTx) later(ctx context.Context, q string, args ...any) {
	if t.err == nil {
		_, t.err = sqlExec(ctx, t.tx, q, args...)
	}
}
func (t *sqlTx) laterRow(ctx context.Context, scan func(row) error, q string, args ...any) {
	if t.err == nil {
		t.err = scan(t.tx.QueryRowContext(ctx, q, args...))
	}
}
func (t *sqlTx) commit(context.Context) error {
	if t.err != nil {
		return t.err
	}
	return t.tx.Commit()
}
func (t *sqlTx) rollback(context.Context) error { return t.tx.Rollback() }

type sqlExecer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func sqlExec(ctx context.Context, e sqlExecer, q string, args ...any) (int64, error) {
	res, err := e.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

// --- PostgreSQL

type pgDB struct {
	pool   *pgxpool.Pool
	driver *riverpgxv5.Driver
	client *river.Client[pgx.Tx]
	// xidBase is added to transaction ids to make change numbers
	// (migration 0002); read once after the migrations.
	xidBase int64
}

// DefaultPoolConns is the PostgreSQL pool size of a queue when the URL
// sets none (pool_max_conns): workers run many tasks at once and River
// shares the pool; pgxpool's default (4 on a small machine) made them
// queue for connections.
const DefaultPoolConns = 24

// IdleInTransactionTimeout bounds how long PostgreSQL keeps a queue's
// transaction open while its process does nothing in it (a worker paused
// or stuck mid-transaction): the live list's change horizon is the
// cluster's oldest open transaction, so such a transaction would hold the
// list back until it ended. The queue's transactions are short; the
// server ends the session after this long (a URL's own
// idle_in_transaction_session_timeout wins).
const IdleInTransactionTimeout = time.Minute

const idleInTxParam = "idle_in_transaction_session_timeout"

func openPostgres(ctx context.Context, url, schema string) (*pgDB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	if schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "ostask-jobs"
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultPoolConns
	}
	if cfg.ConnConfig.RuntimeParams[idleInTxParam] == "" {
		cfg.ConnConfig.RuntimeParams[idleInTxParam] = strconv.FormatInt(IdleInTransactionTimeout.Milliseconds(), 10)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	if schema != "" {
		if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			pool.Close()
			return nil, fmt.Errorf("jobs: create schema %q: %w", schema, err)
		}
	}
	d := &pgDB{pool: pool, driver: riverpgxv5.New(pool)}
	if d.client, err = river.NewClient(d.driver, &river.Config{}); err != nil {
		pool.Close()
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return d, nil
}

func (d *pgDB) name() string { return "postgres" }
func (d *pgDB) close()       { d.pool.Close() }

func (d *pgDB) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := d.pool.Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}
func (d *pgDB) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := d.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgRows{r}, nil
}
func (d *pgDB) queryRow(ctx context.Context, q string, args ...any) row {
	return d.pool.QueryRow(ctx, q, args...)
}

func (d *pgDB) begin(ctx context.Context) (tx, error) {
	t, err := d.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &pgTx{tx: t}, nil
}

func (d *pgDB) insertJobs(ctx context.Context, t tx, ps []river.InsertManyParams) ([]int64, error) {
	return insertMany(ctx, d.client, t.(*pgTx).tx, ps)
}

func (d *pgDB) newClient(cfg *river.Config) (riverClient, error) {
	c, err := river.NewClient(d.driver, cfg)
	if err != nil {
		return nil, err
	}
	return &client[pgx.Tx]{Client: c, unwrap: func(t tx) pgx.Tx { return t.(*pgTx).tx }}, nil
}

func (d *pgDB) migrateRiver(ctx context.Context) error {
	m, err := rivermigrate.New(d.driver, nil)
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

func (d *pgDB) riverCurrent(ctx context.Context) error {
	m, err := rivermigrate.New(d.driver, nil)
	if err != nil {
		return err
	}
	return riverCurrent(ctx, m.ExistingVersions, m.AllVersions)
}

func (d *pgDB) uniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func (d *pgDB) readBase(ctx context.Context) error {
	return d.pool.QueryRow(ctx, `SELECT value FROM ostask_counters WHERE name = 'xid_base'`).Scan(&d.xidBase)
}

func (d *pgDB) takeChanges(ctx context.Context, t tx, n int64) (int64, int64, error) {
	var c int64
	err := t.queryRow(ctx, `SELECT pg_current_xact_id()::text::bigint + $1`, d.xidBase).Scan(&c)
	return c, 0, err
}

// pgHorizon is the safe cursor in the statement's own snapshot.
const pgHorizon = `(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint + $1 - 1)`

func (d *pgDB) horizon(ctx context.Context) (int64, error) {
	var h int64
	err := d.pool.QueryRow(ctx, `SELECT `+pgHorizon, d.xidBase).Scan(&h)
	return h, err
}

// pgTx is a PostgreSQL transaction that holds back the statements sent
// with later until the next statement that must answer, or the commit,
// and sends them together with it as one pipeline: a group of task
// writes costs a few round trips, not one per statement.
type pgTx struct {
	tx      pgx.Tx
	pending []pgLater
	err     error // a later statement failed: the transaction is lost
}

// pgLater is one statement held back; scan is nil for an exec.
type pgLater struct {
	sql  string
	args []any
	scan func(row) error
}

func (t *pgTx) later(_ context.Context, q string, args ...any) {
	t.pending = append(t.pending, pgLater{sql: q, args: args})
}

func (t *pgTx) laterRow(_ context.Context, scan func(row) error, q string, args ...any) {
	t.pending = append(t.pending, pgLater{sql: q, args: args, scan: scan})
}

// send sends what is held back, then (when q is not empty) q, in one
// pipeline, and reads the answers of what was held back. The caller
// reads q's answer from the results and closes them; with no q, send
// closes them itself.
func (t *pgTx) send(ctx context.Context, q string, args []any) (pgx.BatchResults, error) {
	if t.err != nil {
		return nil, t.err
	}
	var b pgx.Batch
	for _, p := range t.pending {
		b.Queue(p.sql, p.args...)
	}
	if q != "" {
		b.Queue(q, args...)
	}
	pending := t.pending
	t.pending = nil
	br := t.tx.SendBatch(ctx, &b)
	for _, p := range pending {
		var err error
		if p.scan == nil {
			_, err = br.Exec()
		} else if err = p.scan(br.QueryRow()); isNoRows(err) {
			err = fmt.Errorf("jobs: a held-back statement found no row: %w", err)
		}
		if err != nil {
			br.Close()
			t.err = err
			return nil, err
		}
	}
	if q == "" {
		if err := br.Close(); err != nil {
			t.err = err
			return nil, err
		}
		return nil, nil
	}
	return br, nil
}

func (t *pgTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	if len(t.pending) == 0 && t.err == nil {
		tag, err := t.tx.Exec(ctx, q, args...)
		return tag.RowsAffected(), err
	}
	br, err := t.send(ctx, q, args)
	if err != nil {
		return 0, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag.RowsAffected(), err
}

func (t *pgTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	if len(t.pending) > 0 || t.err != nil {
		if _, err := t.send(ctx, "", nil); err != nil {
			return nil, err
		}
	}
	r, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgRows{r}, nil
}

func (t *pgTx) queryRow(ctx context.Context, q string, args ...any) row {
	if len(t.pending) == 0 && t.err == nil {
		return t.tx.QueryRow(ctx, q, args...)
	}
	br, err := t.send(ctx, q, args)
	if err != nil {
		return errRow{err}
	}
	return &batchRow{br: br}
}

func (t *pgTx) commit(ctx context.Context) error {
	if len(t.pending) > 0 || t.err != nil {
		if _, err := t.send(ctx, "", nil); err != nil {
			return err
		}
	}
	return t.tx.Commit(ctx)
}

func (t *pgTx) rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

// batchRow is the answer of a pipeline's last statement, one row.
type batchRow struct{ br pgx.BatchResults }

func (r *batchRow) Scan(dst ...any) error {
	err := r.br.QueryRow().Scan(dst...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

// errRow is a row that could not be had.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type pgRows struct{ pgx.Rows }

// --- River, either database

type client[TTx any] struct {
	*river.Client[TTx]
	unwrap func(tx) TTx
}

func (c *client[TTx]) insertMany(ctx context.Context, t tx, ps []river.InsertManyParams) ([]int64, error) {
	return insertMany(ctx, c.Client, c.unwrap(t), ps)
}

func insertMany[TTx any](ctx context.Context, c *river.Client[TTx], t TTx, ps []river.InsertManyParams) ([]int64, error) {
	res, err := c.InsertManyTx(ctx, t, ps)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(res))
	for i, r := range res {
		ids[i] = r.Job.ID
	}
	return ids, nil
}

func riverCurrent(ctx context.Context, existing func(context.Context) ([]rivermigrate.Migration, error), all func() []rivermigrate.Migration) error {
	have, err := existing(ctx)
	if err != nil {
		return err
	}
	want := all()
	if len(want) == 0 {
		return nil
	}
	top := want[len(want)-1].Version
	for _, m := range have {
		if m.Version == top {
			return nil
		}
	}
	return fmt.Errorf("%w: River's migrations are not current (want version %d)", ErrNotReady, top)
}

// --- our migrations

// migrate applies jobs' own migrations, recorded in ostask_jobs_schema.
func migrate(ctx context.Context, d database) error {
	sub, err := fs.Sub(migrationFiles, "migrations/"+d.name())
	if err != nil {
		return err
	}
	ms, err := store.ParseMigrations(sub)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := applyMigration(ctx, d, m); err != nil {
			return fmt.Errorf("jobs: migration %s: %w", m.Name, err)
		}
	}
	// A newer binary's schema may mean what this one would misread.
	var v int
	if err := d.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM ostask_jobs_schema`).Scan(&v); err != nil {
		return err
	}
	if known := ms[len(ms)-1].Version; v > known {
		return fmt.Errorf("jobs: %w: the task tables are at version %d, this binary knows up to %d: run a newer ostask", ErrSchemaTooNew, v, known)
	}
	return nil
}

const schemaTable = `CREATE TABLE IF NOT EXISTS ostask_jobs_schema (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL)`

func applyMigration(ctx context.Context, d database, m store.Migration) error {
	t, err := d.begin(ctx)
	if err != nil {
		return err
	}
	defer t.rollback(ctx)
	if d.name() == "postgres" {
		// Serialise concurrent openers.
		if _, err := t.exec(ctx, `SELECT pg_advisory_xact_lock(4242017)`); err != nil {
			return err
		}
	}
	if _, err := t.exec(ctx, schemaTable); err != nil {
		return err
	}
	var v int
	if err := t.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM ostask_jobs_schema`).Scan(&v); err != nil {
		return err
	}
	if v >= m.Version {
		return t.commit(ctx)
	}
	if _, err := t.exec(ctx, m.SQL); err != nil {
		return err
	}
	if strings.HasSuffix(m.Name, "_deadline_timeout.sql") {
		if err := backfillTimeouts(ctx, t); err != nil {
			return err
		}
	}
	if _, err := t.exec(ctx, `INSERT INTO ostask_jobs_schema (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
		return err
	}
	return t.commit(ctx)
}

// backfillTimeouts completes the deadline_timeout migration: a task
// queued before it and never claimed keeps its own timeout, which from
// then on its row holds (minus the timeout in its deadline) for the
// first claim to turn into a time; the options are JSON with Go's
// duration text, which SQL does not read.
func backfillTimeouts(ctx context.Context, t tx) error {
	rs, err := t.query(ctx, `SELECT id, options FROM ostask_tasks WHERE epoch = 0 AND deadline = 0 AND options LIKE '%"timeout"%'`)
	if err != nil {
		return err
	}
	type fill struct {
		id      string
		timeout time.Duration
	}
	var fills []fill
	for rs.Next() {
		var id, options string
		if err := rs.Scan(&id, &options); err != nil {
			rs.Close()
			return err
		}
		var o Options
		if json.Unmarshal([]byte(options), &o) == nil && o.Timeout > 0 {
			fills = append(fills, fill{id, time.Duration(o.Timeout)})
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return err
	}
	for _, f := range fills {
		if _, err := t.exec(ctx, `UPDATE ostask_tasks SET deadline = $1 WHERE id = $2 AND epoch = 0 AND deadline = 0`,
			-f.timeout.Nanoseconds(), f.id); err != nil {
			return err
		}
	}
	return nil
}

// schemaCurrent reports whether every migration is applied.
func schemaCurrent(ctx context.Context, d database) error {
	sub, _ := fs.Sub(migrationFiles, "migrations/"+d.name())
	ms, err := store.ParseMigrations(sub)
	if err != nil {
		return err
	}
	var v int
	if err := d.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM ostask_jobs_schema`).Scan(&v); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	if want := ms[len(ms)-1].Version; v < want {
		return fmt.Errorf("%w: schema version %d, want %d", ErrNotReady, v, want)
	}
	return d.riverCurrent(ctx)
}
