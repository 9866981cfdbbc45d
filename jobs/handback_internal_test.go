package jobs

import (
	"context"
	"testing"
	"time"
)

// A hand-back whose release finds the task taken over by another worker
// writes nothing: no new River ticket for a task another worker holds.
func TestHandBackTakenOver(t *testing.T) {
	onEachDB(t, func(t *testing.T, q *Queue) {
		ctx := context.Background()
		id := createNoops(t, q, 1)[0]
		w, err := NewWorker(q, WorkerConfig{ID: "me"})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := q.get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.db.exec(ctx, `UPDATE ostask_tasks SET worker = 'other', lease_until = $1 WHERE id = $2`,
			time.Now().Add(time.Hour).UnixNano(), id); err != nil {
			t.Fatal(err)
		}
		jobs := func() (n int) {
			if err := q.db.queryRow(ctx, `SELECT count(*) FROM river_job`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := jobs()
		if err := w.handBack(ctx, tr, nil, false); err != nil {
			t.Fatal(err)
		}
		after, err := q.get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if n := jobs(); n != before || after.Worker != "other" {
			t.Fatalf("after the hand-back: %d River jobs (was %d), worker %q; want nothing written", n, before, after.Worker)
		}
	})
}
