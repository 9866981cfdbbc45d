// Package sqlite is the embedded store of flow runs: one SQLite file
// (modernc.org/sqlite, pure Go) in WAL mode, every commit on disk before it
// returns unless RelaxedNoPowerLossSafety is asked for.
//
//	db, err := sqlite.Open(ctx, filepath.Join(stateDir, "ostask.db"))
//	run, err := db.Create(ctx, store.NewRun{ID: id, Flow: "boot-from-volume", Version: "1"})
//	e, err := engine.New(f, engine.WithStorage(run))
//
// Migrations (migrations/*.sql) are applied when the file is opened; SQL
// statements live in sql/*.sql.
package sqlite
