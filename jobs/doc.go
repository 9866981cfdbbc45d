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
// writes every step transition as an event guarded by its epoch. A reaper
// in every worker gives a task whose lease expired a new ticket; River's
// JobRetry cannot, since it leaves running jobs (the dead worker's) alone.
// Change numbers are taken from one counter row in each writing
// transaction, so they follow commit order (Changes misses nothing).
// types.go holds the types shared with the REST service and its clients.
package jobs
