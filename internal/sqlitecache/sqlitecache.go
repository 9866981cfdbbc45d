package sqlitecache

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
)

// DefaultSize is the number of idle statements a connection keeps when
// New is given no positive size: room for every statement of the jobs
// queue and of River's SQLite driver, with some to spare.
const DefaultSize = 128

// Connector is a driver.Connector whose connections keep prepared
// statements for reuse. It is safe for concurrent use, as database/sql
// requires; each connection, like any driver.Conn, is used by one
// goroutine at a time.
type Connector struct {
	base driver.Connector
	size int
}

// New wraps base (a modernc.org/sqlite connector) so that each
// connection keeps up to size idle prepared statements (DefaultSize when
// size <= 0).
func New(base driver.Connector, size int) *Connector {
	if size <= 0 {
		size = DefaultSize
	}
	return &Connector{base: base, size: size}
}

// Connect opens a connection through the wrapped connector.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &conn{dc: dc, size: c.size, idle: map[string]*stmt{}}, nil
}

// Driver returns the wrapped connector's driver.
func (c *Connector) Driver() driver.Driver { return c.base.Driver() }

// Close closes the wrapped connector if it has a Close method;
// sql.DB.Close calls it.
func (c *Connector) Close() error {
	if cl, ok := c.base.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// conn wraps a driver connection. It deliberately has no ExecContext or
// QueryContext (nor Exec or Query): database/sql then prepares every
// statement through PrepareContext, where the cache sits.
//
// Invariants: idle holds exactly the statements on the list head..tail
// (most recently closed first), one per SQL text, none of them out; a
// statement handed to a caller is out until its Close; after Close of
// the connection, idle is empty and closed is set.
type conn struct {
	dc         driver.Conn
	size       int
	idle       map[string]*stmt
	head, tail *stmt
	closed     bool
	// prepares counts the statements prepared on dc, for the tests.
	prepares int
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
)

// Unwrap returns the wrapped connection: modernc.org/sqlite's helpers
// that take a *sql.Conn (sqlite.Limit) look through it this way.
func (c *conn) Unwrap() driver.Conn { return c.dc }

// Prepare is PrepareContext without a context.
func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext hands out the idle statement for query if there is
// one, else prepares a new one.
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if s := c.idle[query]; s != nil {
		c.take(s)
		s.out = true
		return s, nil
	}
	var ds driver.Stmt
	var err error
	if p, ok := c.dc.(driver.ConnPrepareContext); ok {
		ds, err = p.PrepareContext(ctx, query)
	} else if err = ctx.Err(); err == nil {
		ds, err = c.dc.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	c.prepares++
	return &stmt{c: c, query: query, ds: ds, out: true}, nil
}

// Close finalizes the idle statements and closes the connection.
// database/sql closes every statement it prepared on a connection
// before the connection itself.
func (c *conn) Close() error {
	c.closed = true
	var errs []error
	for s := c.head; s != nil; {
		next := s.next
		if err := s.ds.Close(); err != nil {
			errs = append(errs, err)
		}
		s.prev, s.next = nil, nil
		s = next
	}
	c.head, c.tail = nil, nil
	clear(c.idle)
	if err := c.dc.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Begin starts a transaction.
//
// Deprecated: database/sql calls BeginTx.
func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// errTxOptions is the answer to non-default transaction options on a
// connection that cannot take them.
var errTxOptions = errors.New("sqlitecache: the driver takes no transaction options")

// BeginTx starts a transaction on the wrapped connection.
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.dc.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	if opts != (driver.TxOptions{}) {
		return nil, errTxOptions
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.dc.Begin() //nolint:staticcheck // the driver has nothing else
}

// ResetSession forwards to the wrapped connection.
func (c *conn) ResetSession(ctx context.Context) error {
	if r, ok := c.dc.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

// IsValid forwards to the wrapped connection.
func (c *conn) IsValid() bool {
	if v, ok := c.dc.(driver.Validator); ok {
		return v.IsValid()
	}
	return !c.closed
}

// Ping forwards to the wrapped connection.
func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.dc.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// CheckNamedValue forwards to the wrapped connection; ErrSkip lets
// database/sql convert the value as it would for the connection alone.
func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := c.dc.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// take unlinks s from the idle list.
func (c *conn) take(s *stmt) {
	delete(c.idle, s.query)
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		c.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		c.tail = s.prev
	}
	s.prev, s.next = nil, nil
}

// park puts s at the head of the idle list, finalizing the least
// recently used statement if that makes one too many.
func (c *conn) park(s *stmt) error {
	c.idle[s.query] = s
	s.next = c.head
	if c.head != nil {
		c.head.prev = s
	}
	c.head = s
	if c.tail == nil {
		c.tail = s
	}
	if len(c.idle) <= c.size {
		return nil
	}
	old := c.tail
	c.take(old)
	return old.ds.Close()
}

// stmt is a prepared statement of a conn; its Close parks it on the
// conn for reuse. modernc.org/sqlite resets a statement after each
// Exec and when the rows of a Query close, keeping it prepared, so a
// parked statement is ready to run again.
type stmt struct {
	c     *conn
	query string
	ds    driver.Stmt
	// out: handed to a caller and not closed since.
	out        bool
	prev, next *stmt
}

var (
	_ driver.Stmt             = (*stmt)(nil)
	_ driver.StmtExecContext  = (*stmt)(nil)
	_ driver.StmtQueryContext = (*stmt)(nil)
)

// Close gives the statement back to its connection, which keeps it
// unless the connection is closed or already keeps one for the same
// text; a statement not kept is finalized.
func (s *stmt) Close() error {
	if !s.out {
		return nil
	}
	s.out = false
	if s.c.closed || s.c.idle[s.query] != nil {
		return s.ds.Close()
	}
	return s.c.park(s)
}

// NumInput forwards to the wrapped statement.
func (s *stmt) NumInput() int { return s.ds.NumInput() }

// Exec forwards to the wrapped statement.
//
// Deprecated: database/sql calls ExecContext.
func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ds.Exec(args) //nolint:staticcheck // forwarded as is
}

// Query forwards to the wrapped statement.
//
// Deprecated: database/sql calls QueryContext.
func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.ds.Query(args) //nolint:staticcheck // forwarded as is
}

// ExecContext forwards to the wrapped statement.
func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if e, ok := s.ds.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	vs, err := values(ctx, args)
	if err != nil {
		return nil, err
	}
	return s.ds.Exec(vs) //nolint:staticcheck // the driver has nothing else
}

// QueryContext forwards to the wrapped statement.
func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if q, ok := s.ds.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	vs, err := values(ctx, args)
	if err != nil {
		return nil, err
	}
	return s.ds.Query(vs) //nolint:staticcheck // the driver has nothing else
}

// errNamed is the answer to a named argument for a statement that
// takes none.
var errNamed = errors.New("sqlitecache: the driver takes no named arguments")

func values(ctx context.Context, args []driver.NamedValue) ([]driver.Value, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	vs := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, errNamed
		}
		vs[i] = a.Value
	}
	return vs, nil
}
