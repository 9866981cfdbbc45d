package service

import (
	"context"

	"github.com/ostask/ostask/jobs"
)

// Backend is what the service needs of the task queue; *jobs.Queue
// implements it, servicetest.Backend is an in-memory one for tests.
type Backend interface {
	Kinds() []jobs.Kind
	// Create validates (kind known, params against the kind's JSON Schema,
	// options) and stores the task row and its job in one transaction;
	// it returns only after commit. replayed is true when the idempotency
	// key (per project) found an earlier identical request. Errors:
	// jobs.ErrUnknownKind, *jobs.ValidationError, jobs.ErrKeyReused,
	// jobs.ErrNoCredentials; anything else is a 5xx.
	Create(ctx context.Context, nt jobs.NewTask) (t jobs.Task, replayed bool, err error)
	// Get returns a task of any project, or jobs.ErrNotFound.
	Get(ctx context.Context, id string) (jobs.Task, error)
	// List returns a page of tasks, newest first; jobs.ErrBadMarker for a
	// marker that names no task.
	List(ctx context.Context, f jobs.Filter) (jobs.Page, error)
	// Events returns a task's events with Seq > after (at most limit; 0:
	// all), oldest first.
	Events(ctx context.Context, id string, after int64, limit int) ([]jobs.Event, error)
	// WaitEvents returns when the task has events with Seq > after, or is
	// final, or ctx ends (then ctx.Err()). It works across processes.
	WaitEvents(ctx context.Context, id string, after int64) error
	// Changes returns the tasks matching f that changed after cursor,
	// oldest change first (each task once, as it is now; at most f.Limit
	// when it is set), and the cursor to ask from next: the newest change
	// considered, matching or not. A negative cursor asks for no tasks and
	// the current cursor: where a follower starts.
	Changes(ctx context.Context, f jobs.Filter, after int64) ([]jobs.Task, int64, error)
	// WaitChanges returns when something changed after cursor, or ctx
	// ends (then ctx.Err()).
	WaitChanges(ctx context.Context, after int64) error
	// Cancel asks a queued or running task to stop; a running one reverts
	// what it did. jobs.ErrFinished when it already ended.
	Cancel(ctx context.Context, id string) (jobs.Task, error)
	Graph(ctx context.Context, id string) (jobs.Graph, error)
	// ResourceFault returns the newest failed or reverted task that made
	// or acted on resource ("type/id"), of project ("": any);
	// jobs.ErrNotFound if none.
	ResourceFault(ctx context.Context, project, resource string) (jobs.Task, error)
	// Ready reports whether the database is reachable and its migrations
	// current.
	Ready(ctx context.Context) error
}
