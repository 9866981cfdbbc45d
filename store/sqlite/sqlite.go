package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

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
	return store.LoadStatements(sub)
}()

// Durability is when a commit returns.
type Durability int

const (
	// Full: a commit is on disk (fsync of the write-ahead log) before it
	// returns; it survives a power loss. The default.
	Full Durability = iota
	// RelaxedNoPowerLossSafety (synchronous=NORMAL) returns before the
	// fsync: a commit survives a crash of the process, not of the machine
	// or its power. It is several times faster.
	RelaxedNoPowerLossSafety
)

// DefaultBusyTimeout is how long a statement waits for another process's
// write lock before failing with SQLITE_BUSY (which the store retries).
const DefaultBusyTimeout = 5 * time.Second

// Option configures the driver.
type Option func(*Driver)

// WithDurability sets when commits return (default Full).
func WithDurability(d Durability) Option { return func(dr *Driver) { dr.durability = d } }

// WithBusyTimeout sets how long a statement waits for a lock.
func WithBusyTimeout(d time.Duration) Option { return func(dr *Driver) { dr.busy = d } }

// Driver is the SQLite store.Driver: one file in WAL mode, one writing
// connection (writes queue in the process rather than spin on the file
// lock) and a pool of reading ones.
type Driver struct {
	path       string
	durability Durability
	busy       time.Duration
	w, r       *sql.DB

	// The statements of every write, prepared once on the writing
	// connection: parsing them again for each write costs more than the
	// write itself in the relaxed mode.
	prepMu   sync.Mutex
	prepared *writeStmts
}

type writeStmts struct{ create, run, fence, insert, update, state *sql.Stmt }

// stmts prepares the write statements on first use (after the migrations
// made their tables).
func (d *Driver) stmts(ctx context.Context) (*writeStmts, error) {
	d.prepMu.Lock()
	defer d.prepMu.Unlock()
	if d.prepared != nil {
		return d.prepared, nil
	}
	ws := &writeStmts{}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{{&ws.create, q.RunInsert}, {&ws.run, q.RunWrite}, {&ws.fence, q.RunFence}, {&ws.insert, q.AtomInsert}, {&ws.update, q.AtomUpdate}, {&ws.state, q.AtomState}} {
		st, err := d.w.PrepareContext(ctx, p.q)
		if err != nil {
			ws.close()
			return nil, err
		}
		*p.dst = st
	}
	d.prepared = ws
	return ws, nil
}

func (ws *writeStmts) close() {
	for _, st := range []*sql.Stmt{ws.create, ws.run, ws.fence, ws.insert, ws.update, ws.state} {
		if st != nil {
			st.Close()
		}
	}
}

var _ store.GroupDriver = (*Driver)(nil)

// ErrBadPath is returned for a database path SQLite cannot take.
var ErrBadPath = errors.New("sqlite: bad database path")

// NewDriver opens (creating it, mode 0600, and its directory, mode 0700)
// the database file at path.
func NewDriver(path string, opts ...Option) (*Driver, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("%w: %q", ErrBadPath, path)
	}
	d := &Driver{path: path, busy: DefaultBusyTimeout}
	for _, o := range opts {
		o(d)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// Created here so that it is private from the start: the store holds
	// what the cloud holds.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	f.Close()
	sync := "FULL"
	if d.durability == RelaxedNoPowerLossSafety {
		sync = "NORMAL"
	}
	dsn := fmt.Sprintf("%s?_busy_timeout=%d&_journal_mode=WAL&_synchronous=%s&_foreign_keys=1&_txlock=immediate",
		path, d.busy.Milliseconds(), sync)
	if d.w, err = sql.Open("sqlite", dsn); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	d.w.SetMaxOpenConns(1)
	d.w.SetMaxIdleConns(1)
	d.w.SetConnMaxLifetime(0)
	if d.r, err = sql.Open("sqlite", dsn+"&_query_only=1"); err != nil {
		d.w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	d.r.SetMaxOpenConns(4)
	d.r.SetMaxIdleConns(4)
	return d, nil
}

// Open opens the database at path with the default options and applies
// its migrations.
func Open(ctx context.Context, path string, opts ...store.Option) (*store.DB, error) {
	d, err := NewDriver(path)
	if err != nil {
		return nil, err
	}
	return store.New(ctx, d, opts...)
}

// Path returns the database file.
func (d *Driver) Path() string { return d.path }

// Name implements store.Driver.
func (d *Driver) Name() string { return "sqlite" }

// Migrations implements store.Driver.
func (d *Driver) Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// Close implements store.Driver.
func (d *Driver) Close() error {
	d.prepMu.Lock()
	if d.prepared != nil {
		d.prepared.close()
		d.prepared = nil
	}
	d.prepMu.Unlock()
	return errors.Join(d.r.Close(), d.w.Close())
}

// SchemaVersion implements store.Driver.
func (d *Driver) SchemaVersion(ctx context.Context) (int, error) {
	var n int
	if err := d.r.QueryRowContext(ctx, q.SchemaExists).Scan(&n); err != nil || n == 0 {
		return 0, err
	}
	var v int
	err := d.r.QueryRowContext(ctx, q.SchemaVersion).Scan(&v)
	return v, err
}

// ApplyMigration implements store.Driver. BEGIN IMMEDIATE takes the write
// lock first, so a concurrent opener waits and then finds it applied.
func (d *Driver) ApplyMigration(ctx context.Context, m store.Migration) error {
	return d.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, q.SchemaTable); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRowContext(ctx, q.SchemaVersion).Scan(&v); err != nil {
			return err
		}
		if v >= m.Version {
			return nil
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, q.SchemaInsert, m.Version, m.Name, time.Now().UnixNano())
		return err
	})
}

func (d *Driver) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// text passes a JSON column: nil is NULL.
func text(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

func bit(b bool) int {
	if b {
		return 1
	}
	return 0
}

type scanner interface{ Scan(dest ...any) error }

func scanRun(s scanner) (store.RunRow, error) {
	var r store.RunRow
	var params string
	var created, updated sql.NullInt64
	err := s.Scan(&r.ID, &r.Flow, &r.Version, &params, &r.State, &r.Owner, &r.Epoch, &r.Seq, &created, &updated)
	r.Params = []byte(params)
	r.Created, r.Updated = fromNanos(created), fromNanos(updated)
	return r, err
}

// GetRun implements store.Driver.
func (d *Driver) GetRun(ctx context.Context, id string) (store.RunRow, error) {
	r, err := scanRun(d.r.QueryRowContext(ctx, q.RunGet, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, store.ErrNotFound
	}
	return r, err
}

// ListRuns implements store.Driver.
func (d *Driver) ListRuns(ctx context.Context, f store.RunFilter) ([]store.RunRow, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = -1
	}
	rows, err := d.r.QueryContext(ctx, q.RunList, f.Flow, f.State, limit)
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
	var r store.RunRow
	err := d.tx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = scanRun(tx.QueryRowContext(ctx, q.RunClaim, id, owner, now.UnixNano()))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return r, store.ErrNotFound
	}
	return r, err
}

// DeleteRun implements store.Driver.
func (d *Driver) DeleteRun(ctx context.Context, id string) error {
	res, err := d.w.ExecContext(ctx, q.RunDelete, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// LoadAtoms implements store.Driver.
func (d *Driver) LoadAtoms(ctx context.Context, id string) ([]store.AtomRow, error) {
	rows, err := d.r.QueryContext(ctx, q.AtomList, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AtomRow
	for rows.Next() {
		var a store.AtomRow
		var result, failure, rfail, hist sql.NullString
		var started, finished, updated sql.NullInt64
		if err := rows.Scan(&a.Name, &a.Version, &a.State, &a.Attempts, &result, &failure, &rfail, &hist, &a.Decision,
			&started, &finished, &updated); err != nil {
			return nil, err
		}
		a.Result, a.Failure, a.RevertFailure, a.History = nullBytes(result), nullBytes(failure), nullBytes(rfail), nullBytes(hist)
		a.Started, a.Finished, a.Updated = fromNanos(started), fromNanos(finished), fromNanos(updated)
		out = append(out, a)
	}
	return out, rows.Err()
}

func nullBytes(s sql.NullString) []byte {
	if !s.Valid {
		return nil
	}
	return []byte(s.String)
}

// Apply implements store.Driver.
func (d *Driver) Apply(ctx context.Context, b *store.Batch) error {
	ws, err := d.stmts(ctx)
	if err != nil {
		return err
	}
	return d.tx(ctx, func(tx *sql.Tx) error {
		if err := d.write(ctx, tx, ws, b); err != nil {
			return err
		}
		if b.BeforeCommit != nil {
			b.BeforeCommit()
		}
		return nil
	})
}

// ApplyGroup implements store.GroupDriver: the batches one after the
// other in one transaction. A batch's guard that finds nothing, or a
// statement of its that fails for good, rolls the whole transaction back
// and names the batch; a failure that may clear (a lock, a full disk, an
// I/O error) or a context that ended concerns them all.
func (d *Driver) ApplyGroup(ctx context.Context, bs []*store.Batch) error {
	ws, err := d.stmts(ctx)
	if err != nil {
		return err
	}
	return d.tx(ctx, func(tx *sql.Tx) error {
		for i, b := range bs {
			if err := d.write(ctx, tx, ws, b); err != nil {
				if ctx.Err() != nil || d.Retryable(err) {
					return err
				}
				return &store.BatchError{Index: i, Err: err}
			}
		}
		for _, b := range bs {
			if b.BeforeCommit != nil {
				b.BeforeCommit()
			}
		}
		return nil
	})
}

// GroupWriters implements store.GroupDriver: one writing connection.
func (d *Driver) GroupWriters() int { return 1 }

// write runs the statements of one batch in tx.
func (d *Driver) write(ctx context.Context, tx *sql.Tx, ws *writeStmts, b *store.Batch) error {
	if r := b.Create; r != nil {
		_, err := tx.StmtContext(ctx, ws.create).ExecContext(ctx, r.ID, r.Flow, r.Version, string(r.Params), r.State, r.Owner,
			r.Epoch, r.Seq, r.Created.UnixNano(), r.Updated.UnixNano())
		if code(err) == sqlite3.SQLITE_CONSTRAINT {
			return store.ErrExists
		}
		return err
	}
	now := b.Now.UnixNano()
	res, err := tx.StmtContext(ctx, ws.run).ExecContext(ctx, now, b.FlowTo, text(b.Params), b.Run, b.Epoch, b.Seq, b.FlowFrom)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		m := &store.RunMismatch{Found: true}
		err := tx.StmtContext(ctx, ws.fence).QueryRowContext(ctx, b.Run).Scan(&m.Epoch, &m.Seq, &m.State, &m.Owner)
		if errors.Is(err, sql.ErrNoRows) {
			m.Found = false
		} else if err != nil {
			return err
		}
		return m
	}
	for i := range b.Atoms {
		w := &b.Atoms[i]
		stmt := ws.update
		if w.From == "PENDING" {
			stmt = ws.insert
		}
		r := &w.Row
		res, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, b.Run, r.Name, r.Version, r.State, text(r.Result), text(r.Failure),
			text(r.RevertFailure), text(r.History), bit(w.Start), bit(w.Finish), now, w.From, r.Decision)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			m := &store.AtomMismatch{Atom: r.Name, Found: true}
			err := tx.StmtContext(ctx, ws.state).QueryRowContext(ctx, b.Run, r.Name).Scan(&m.State)
			if errors.Is(err, sql.ErrNoRows) {
				m.Found = false
			} else if err != nil {
				return err
			}
			return m
		}
	}
	return nil
}

func code(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return -1
}

// Retryable implements store.Driver: a lock held too long by another
// process, a full disk, an I/O error, a dropped connection.
func (d *Driver) Retryable(err error) bool {
	if errors.Is(err, driver.ErrBadConn) {
		return true
	}
	switch code(err) {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_CANTOPEN:
		return true
	}
	return false
}
