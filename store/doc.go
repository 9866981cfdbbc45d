// Package store records flow runs durably: a catalogue of runs (id, flow
// name and version, parameters, state, owner, times) and, for each run, a
// fenced handle that implements engine.Storage. Databases plug in as
// drivers (store/sqlite, store/postgres); store/storetest is the suite
// every driver passes.
//
//	db, err := sqlite.Open(ctx, path)               // migrations applied
//	run, err := db.Create(ctx, store.NewRun{ID: id, Flow: "boot-from-volume", Version: "1"})
//	e, err := engine.New(f, engine.WithStorage(run))
//	// after a crash, in another process:
//	run, err = db.Acquire(ctx, id, "")              // new epoch: the old owner is fenced
//
// Every write is one transaction guarded by the epoch its handle holds
// and by the states it expects; a lost race is a *FencedError or a
// *ConflictError, never a silent overwrite. Writes of different runs that
// are ready at the same moment share one transaction (group commit, see
// WithGroupCommit): each still returns only when its own batch is
// durable, and a batch that fails its guards fails alone. Values are written as JSON
// with secrets removed and come back as json.RawMessage. Database
// failures are retried with backoff a bounded number of times, then
// reported as *UnavailableError.
package store
