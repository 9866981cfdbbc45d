// Package jobs is the task queue of ostask's service: tasks as durable
// records with an event log, run by workers on River
// (github.com/riverqueue/river). A task's row and its River job are
// inserted in one transaction; a worker runs the task's flow through the
// durable store under a lease and a fencing epoch, and a dead worker's
// tasks are resumed by another.
//
//	q, err := jobs.Open(ctx, jobs.Config{URL: "ostask.db", Clouds: resolve})
//	t, replayed, err := q.Create(ctx, jobs.NewTask{Kind: "server.create", Project: p, Params: params})
//	w, err := jobs.NewWorker(q, jobs.WorkerConfig{})
//	err = w.Run(ctx) // until ctx is cancelled; running tasks are handed back
//
// The task row is the truth; a River job is a ticket to take the task's
// lease. A worker holding the lease acquires the flow run (store.Acquire:
// a new epoch fences the previous holder), records the epoch in the task
// and the fencing history (Claims), renews the lease while it runs, and
// writes every step transition as an event guarded by its epoch. A task's
// first lease claims it too (epoch 1, the epoch of the run made next), in
// the same statement on PostgreSQL. Step events wait WorkerConfig.EventDelay
// so that quick steps share a write, and those still waiting when the
// flow ends go with the task's final write. A reaper in every worker gives
// a task whose lease expired a new ticket; River's JobRetry cannot, since
// it leaves running jobs (the dead worker's) alone.
//
// Writes of many tasks ready at the same moment share one transaction
// (group commit, for creates and for workers' writes); on PostgreSQL the
// statements of a group whose answers nobody waits for are sent in one
// pipeline with the commit. Change numbers follow commit order for
// Changes: on SQLite from a counter row, on PostgreSQL from the writing
// transaction's id, read up to the safe horizon (see migration 0002).
// types.go holds the types shared with the REST service and its clients.
package jobs
