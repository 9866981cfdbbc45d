// Package postgres is the store of flow runs for several machines:
// PostgreSQL through a pgx pool. Runs resume on any machine; fencing epochs
// keep a paused owner from writing over the one that took its run.
//
//	db, err := postgres.Open(ctx, "postgres://ostask@db/ostask", nil)
//	run, err := db.Acquire(ctx, id, "") // a new epoch: the previous owner is fenced
//	e, err := engine.New(f, engine.WithStorage(run))
//
// A write is one pipeline: one round trip, one implicit transaction. The
// writes of several runs ready at the same moment go in one pipeline and
// one transaction (group commit, see store.WithGroupCommit); at most
// WithGroupWriters such transactions are in flight at once.
//
// Migrations (migrations/*.sql) are applied when the database is opened;
// SQL statements live in sql/*.sql.
package postgres
