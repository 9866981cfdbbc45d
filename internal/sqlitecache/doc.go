// Package sqlitecache keeps prepared SQLite statements for reuse.
//
// modernc.org/sqlite parses every statement anew on each call: its
// connections answer ExecContext and QueryContext themselves, preparing
// and finalizing a statement each time. A [Connector] wraps the
// driver's connector so that database/sql prepares through the wrapper
// instead, and the wrapper keeps each connection's recently closed
// statements, by SQL text, to hand out again:
//
//	base, err := sqlite.NewConnector(dsn)
//	if err != nil {
//		return err
//	}
//	db := sql.OpenDB(sqlitecache.New(base, 0))
//
// A statement is used by one caller at a time: one asked for while its
// cached copy is out (its rows still open, say) is prepared anew. At most
// the given number of idle statements stay per connection, the least
// recently used going first, so statements whose text varies (IN lists,
// multi-row VALUES) cannot grow the cache without bound. Closing the
// connection finalizes them all.
package sqlitecache
