package jobs

import (
	"context"
	"testing"
	"time"
)

// The deadline_timeout migration gives a task queued before it (deadline
// 0, never claimed) its own timeout, as a create after it would.
func TestMigrationKeepsQueuedTimeouts(t *testing.T) {
	onEachDB(t, func(t *testing.T, q *Queue) {
		ctx := context.Background()
		own, _, err := q.Create(ctx, NewTask{Kind: "noop", Project: "p", Params: []byte(`{}`), Options: Options{Timeout: Duration(10 * time.Minute)}})
		if err != nil {
			t.Fatal(err)
		}
		plain := createNoops(t, q, 1)[0]
		// As before the migration: no deadline until the claim, and the
		// migration not applied yet.
		for _, s := range []string{`UPDATE ostask_tasks SET deadline = 0`,
			`DELETE FROM ostask_jobs_schema WHERE name LIKE '%deadline_timeout%'`} {
			if _, err := q.db.exec(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		if err := migrate(ctx, q.db); err != nil {
			t.Fatal(err)
		}
		deadline := func(id string) (d int64) {
			if err := q.db.queryRow(ctx, `SELECT deadline FROM ostask_tasks WHERE id = $1`, id).Scan(&d); err != nil {
				t.Fatal(err)
			}
			return d
		}
		if got, want := deadline(own.ID), -(10 * time.Minute).Nanoseconds(); got != want {
			t.Errorf("a queued task with a 10m timeout: deadline %d after the migration, want %d", got, want)
		}
		if got := deadline(plain); got != 0 {
			t.Errorf("a queued task without a timeout: deadline %d, want 0 (the worker's default)", got)
		}
	})
}
