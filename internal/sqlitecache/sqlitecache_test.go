package sqlitecache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

func dsn(t *testing.T) string {
	return filepath.Join(t.TempDir(), "t.db") + "?_busy_timeout=10000&_journal_mode=WAL&_txlock=immediate"
}

// open opens a database through a cache of size over base (a modernc
// connector when nil), with one connection unless told otherwise.
func open(t *testing.T, base driver.Connector, size int) *sql.DB {
	t.Helper()
	if base == nil {
		var err error
		if base, err = sqlite.NewConnector(dsn(t)); err != nil {
			t.Fatal(err)
		}
	}
	db := sql.OpenDB(New(base, size))
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// state reports, for the pool's one connection, how many statements it
// prepared and the texts of its idle ones, most recent first.
func state(t *testing.T, db *sql.DB) (prepares int, idle []string) {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Raw(func(dc any) error {
		cn := dc.(*conn)
		prepares = cn.prepares
		for s := cn.head; s != nil; s = s.next {
			idle = append(idle, s.query)
		}
		if len(idle) != len(cn.idle) {
			return fmt.Errorf("%d statements on the list, %d in the map", len(idle), len(cn.idle))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return prepares, idle
}

func TestReuse(t *testing.T) {
	db := open(t, nil, 0)
	p0, _ := state(t, db)
	for i := range 10 {
		if _, err := db.Exec(`INSERT INTO t (k, v) VALUES ($1, $2)`, i, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
		var v string
		if err := db.QueryRow(`SELECT v FROM t WHERE k = $1`, i).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprint("v", i); v != want {
			t.Fatalf("row %d: got %q, want %q", i, v, want)
		}
	}
	// An argument bound before must not stay bound: text the previous
	// run bound is freed, and the next run binds afresh.
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t WHERE v LIKE $1`, "v%").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM t WHERE v LIKE $1`, "v1%").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("count of v1%%: got %d, want 1", n)
	}
	p, idle := state(t, db)
	if p-p0 != 3 {
		t.Fatalf("prepared %d statements for 3 texts run 22 times", p-p0)
	}
	if len(idle) != 4 { // with the CREATE TABLE
		t.Fatalf("idle statements: %q", idle)
	}
}

func TestNestedUseOfOpenStatement(t *testing.T) {
	db := open(t, nil, 0)
	for i := range 3 {
		if _, err := db.Exec(`INSERT INTO t (k, v) VALUES ($1, 'x')`, i); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const q = `SELECT k FROM t WHERE k >= $1 ORDER BY k`
	outer, err := c.QueryContext(ctx, q, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for outer.Next() {
		var k int
		if err := outer.Scan(&k); err != nil {
			t.Fatal(err)
		}
		// The same text while outer's statement is out: it must be
		// prepared anew, or it would reset outer's rows.
		inner, err := c.QueryContext(ctx, q, k)
		if err != nil {
			t.Fatal(err)
		}
		var ks []int
		for inner.Next() {
			var k2 int
			if err := inner.Scan(&k2); err != nil {
				t.Fatal(err)
			}
			ks = append(ks, k2)
		}
		if err := inner.Err(); err != nil {
			t.Fatal(err)
		}
		inner.Close()
		got = append(got, fmt.Sprint(k, ks))
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	outer.Close()
	c.Close()
	if want := "0 [0 1 2]; 1 [1 2]; 2 [2]"; strings.Join(got, "; ") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, "; "), want)
	}
	p, idle := state(t, db)
	n := 0
	for _, s := range idle {
		if s == q {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d idle copies of the query, want 1: %q", n, idle)
	}
	var k int
	if err := db.QueryRow(q, 2).Scan(&k); err != nil || k != 2 {
		t.Fatalf("got %d, %v", k, err)
	}
	if p2, _ := state(t, db); p2 != p {
		t.Fatalf("prepared %d statements for a cached text", p2-p)
	}
}

func TestErrors(t *testing.T) {
	db := open(t, nil, 0)
	const ins = `INSERT INTO t (k, v) VALUES ($1, $2)`
	if _, err := db.Exec(ins, 1, "a"); err != nil {
		t.Fatal(err)
	}
	p0, _ := state(t, db)
	for range 3 {
		if _, err := db.Exec(ins, 1, "b"); err == nil {
			t.Fatal("duplicate key inserted")
		}
	}
	if _, err := db.Exec(ins, 2, "b"); err != nil {
		t.Fatalf("insert after failed ones: %v", err)
	}
	// An error while stepping a query.
	const abs = `SELECT abs($1)`
	var n int64
	if err := db.QueryRow(abs, int64(math.MinInt64)).Scan(&n); err == nil {
		t.Fatal("abs of MinInt64 succeeded")
	}
	if err := db.QueryRow(abs, -5).Scan(&n); err != nil || n != 5 {
		t.Fatalf("abs(-5) after a failure: %d, %v", n, err)
	}
	// A statement that does not prepare is neither counted nor kept.
	if _, err := db.Exec(`SELEC 1`); err == nil {
		t.Fatal("syntax error accepted")
	}
	// Missing argument: refused by the driver at bind time.
	if _, err := db.Exec(ins, 3); err == nil {
		t.Fatal("insert with a missing argument succeeded")
	}
	if _, err := db.Exec(ins, 3, "c"); err != nil {
		t.Fatalf("insert after a missing argument: %v", err)
	}
	p, idle := state(t, db)
	if p != p0+1 {
		t.Fatalf("prepared %d statements, want 1 (abs)", p-p0)
	}
	for _, s := range idle {
		if s == `SELEC 1` {
			t.Fatal("a statement that failed to prepare is kept")
		}
	}
	var vs []string
	rows, err := db.Query(`SELECT v FROM t ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v string
		rows.Scan(&v)
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(vs, ","); got != "a,b,c" {
		t.Fatalf("rows: %s", got)
	}
}

func TestCanceledContext(t *testing.T) {
	db := open(t, nil, 0)
	const q = `SELECT count(*) FROM t`
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.QueryRowContext(ctx, q).Scan(&n); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled query: %v", err)
	}
	c.Close()
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("query after a canceled one: %v", err)
	}
}

func TestTransactions(t *testing.T) {
	db := open(t, nil, 0)
	const ins = `INSERT INTO t (k, v) VALUES ($1, 'x')`
	const cnt = `SELECT count(*) FROM t`
	if _, err := db.Exec(ins, 1); err != nil {
		t.Fatal(err)
	}
	p0, _ := state(t, db)
	for i, commit := range []bool{false, true} {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ins, 10+i); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx.QueryRow(cnt).Scan(&n); err != nil || n != 2 {
			t.Fatalf("count in transaction %d: %d, %v", i, n, err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRow(cnt).Scan(&n); err != nil || n != 2 {
		t.Fatalf("count after rollback and commit: %d, %v", n, err)
	}
	if p, _ := state(t, db); p != p0+1 {
		t.Fatalf("prepared %d statements, want 1 (count)", p-p0)
	}
	// A read-only transaction: the options reach the driver.
	tx, err := db.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only transaction: %v", err)
	}
	tx.Rollback()
}

func TestConcurrentConnections(t *testing.T) {
	db := open(t, nil, 0)
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	const workers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k := w*each + i
				if _, err := db.Exec(`INSERT INTO t (k, v) VALUES ($1, $2)`, k, fmt.Sprint(k)); err != nil {
					errs <- err
					return
				}
				var v string
				if err := db.QueryRow(`SELECT v FROM t WHERE k = $1`, k).Scan(&v); err != nil {
					errs <- err
					return
				}
				if v != fmt.Sprint(k) {
					errs <- fmt.Errorf("row %d: %q", k, v)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != workers*each {
		t.Fatalf("count: %d, %v", n, err)
	}
}

func TestEvictionBound(t *testing.T) {
	const size = 4
	db := open(t, nil, size)
	text := func(i int) string {
		return `SELECT count(*) FROM t WHERE k IN (` + strings.Repeat("?,", i) + `?)`
	}
	for i := range 20 {
		args := make([]any, i+1)
		for j := range args {
			args[j] = j
		}
		var n int
		if err := db.QueryRow(text(i), args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if _, idle := state(t, db); len(idle) > size {
			t.Fatalf("%d idle statements, bound %d", len(idle), size)
		}
	}
	p, idle := state(t, db)
	if want := []string{text(19), text(18), text(17), text(16)}; strings.Join(idle, "\n") != strings.Join(want, "\n") {
		t.Fatalf("idle: %q", idle)
	}
	// The oldest kept text runs without a prepare and becomes the
	// newest; an evicted one needs a prepare and evicts the oldest.
	args := make([]any, 17)
	for j := range args {
		args[j] = j
	}
	var n int
	if err := db.QueryRow(text(16), args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if p2, _ := state(t, db); p2 != p {
		t.Fatalf("kept text: %d prepares, want 0", p2-p)
	}
	if err := db.QueryRow(text(0), 0).Scan(&n); err != nil {
		t.Fatal(err)
	}
	p3, idle := state(t, db)
	if p3 != p+1 {
		t.Fatalf("evicted text: %d prepares, want 1", p3-p)
	}
	if want := []string{text(0), text(16), text(19), text(18)}; strings.Join(idle, "\n") != strings.Join(want, "\n") {
		t.Fatalf("idle: %q", idle)
	}
}

// counting wraps a connector to count the statements its connections
// hold prepared (not yet closed), to check that none leak. Its
// connections and statements implement only the required methods, so
// the cache's fallbacks for a plainer driver run too.
type counting struct {
	driver.Connector
	live atomic.Int64
}

func (c *counting) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: dc, n: &c.live}, nil
}

type countingConn struct {
	driver.Conn
	n *atomic.Int64
}

func (c *countingConn) Prepare(q string) (driver.Stmt, error) {
	s, err := c.Conn.Prepare(q)
	if err != nil {
		return nil, err
	}
	c.n.Add(1)
	return &countingStmt{Stmt: s, n: c.n}, nil
}

type countingStmt struct {
	driver.Stmt
	n *atomic.Int64
}

func (s *countingStmt) Close() error {
	s.n.Add(-1)
	return s.Stmt.Close()
}

func TestCloseFinalizes(t *testing.T) {
	base, err := sqlite.NewConnector(dsn(t))
	if err != nil {
		t.Fatal(err)
	}
	cb := &counting{Connector: base}
	const size = 3
	db := open(t, cb, size)
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	for i := range 10 {
		if _, err := db.Exec(fmt.Sprintf(`INSERT INTO t (k, v) VALUES (%d, 'x')`, i)); err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query(`SELECT k FROM t`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
		}
		rows.Close()
	}
	// Hold two connections so that both have statements.
	ctx := context.Background()
	c1, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*sql.Conn{c1, c2} {
		var n int
		if err := c.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 10 {
			t.Fatalf("count: %d, %v", n, err)
		}
	}
	c1.Close()
	c2.Close()
	if n := cb.live.Load(); n < 1 || n > 2*size {
		t.Fatalf("%d statements prepared and open, want 1 to %d", n, 2*size)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := cb.live.Load(); n != 0 {
		t.Fatalf("%d statements left open after Close", n)
	}
}

func TestForwarding(t *testing.T) {
	db := open(t, nil, 0)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// sqlite.Limit reaches modernc's connection through Unwrap.
	if _, err := sqlite.Limit(c, sqlite3.SQLITE_LIMIT_LENGTH, -1); err != nil {
		t.Fatalf("Limit through the cache: %v", err)
	}
	// Named arguments still reach the driver.
	var v string
	if err := c.QueryRowContext(context.Background(), `SELECT :a || :b`, sql.Named("a", "x"), sql.Named("b", "y")).Scan(&v); err != nil || v != "xy" {
		t.Fatalf("named arguments: %q, %v", v, err)
	}
}
