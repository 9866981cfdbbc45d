package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func setCurrent(id, value string) func(ctx context.Context, t tx, change int64) error {
	return func(ctx context.Context, t tx, change int64) error {
		var got string
		return t.queryRow(ctx, `UPDATE ostask_tasks SET progress_current = $2, change = $3 WHERE id = $1 RETURNING id`, id, value, change).Scan(&got)
	}
}

// req is a write for the group writer.
func req(fn func(ctx context.Context, t tx, change int64) error) *writeReq {
	return &writeReq{fn: fn, done: make(chan error, 1)}
}

// progressCurrent reads a task's progress_current, which the group
// tests write.
func progressCurrent(t *testing.T, q *Queue) func(id string) string {
	return func(id string) string {
		t.Helper()
		tr, err := q.get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return tr.Progress.Current
	}
}

// TestGroupWrites: writes grouped in one transaction commit together; a
// write refused by its guard (no rows, nothing written) is left out with
// its error; a write that fails after writing fails only itself (the
// group is written again one by one).
func TestGroupWrites(t *testing.T) {
	onEachDB(t, func(t *testing.T, q *Queue) {
		ctx := context.Background()
		ids := createNoops(t, q, 3)
		current := progressCurrent(t, q)
		batch := []*writeReq{req(setCurrent(ids[0], "a")), req(setCurrent("no-such-task", "x")), req(setCurrent(ids[2], "c"))}
		errs, err := q.tryGroup(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if errs[0] != nil || errs[2] != nil || !isNoRows(errs[1]) {
			t.Fatalf("errors %v: want only the second refused", errs)
		}
		if current(ids[0]) != "a" || current(ids[2]) != "c" {
			t.Fatalf("the group's other writes were not committed")
		}
		boom := errors.New("boom")
		batch = []*writeReq{req(setCurrent(ids[0], "a2")), req(func(ctx context.Context, t tx, change int64) error {
			if err := setCurrent(ids[1], "half")(ctx, t, change); err != nil {
				return err
			}
			return boom
		}), req(setCurrent(ids[2], "c2"))}
		q.writeGroup(batch)
		for i, want := range []error{nil, boom, nil} {
			if got := <-batch[i].done; !errors.Is(got, want) {
				t.Fatalf("write %d: %v, want %v", i, got, want)
			}
		}
		if current(ids[0]) != "a2" || current(ids[1]) != "" || current(ids[2]) != "c2" {
			t.Fatalf("after a failed write: %q %q %q, want a2, nothing, c2", current(ids[0]), current(ids[1]), current(ids[2]))
		}
	})
}

// TestGroupHeldBack: statements held back (later, laterRow) are written
// with the group, in order with the others; a held-back guard that finds
// nothing, alone in its write, leaves that write out and the others
// commit; a held-back statement that fails, or a held-back guard that
// finds nothing with more of its write sent after it, fails only its own
// write, whose statements are all undone.
func TestGroupHeldBack(t *testing.T) {
	onEachDB(t, func(t *testing.T, q *Queue) {
		ctx := context.Background()
		ids := createNoops(t, q, 3)
		current := progressCurrent(t, q)
		const set = `UPDATE ostask_tasks SET progress_current = $2, change = $3 WHERE id = $1 RETURNING id`
		guard := func(id, value string, got *string) func(ctx context.Context, t tx, change int64) error {
			return func(ctx context.Context, t tx, change int64) error {
				t.laterRow(ctx, func(r row) error { return r.Scan(got) }, set, id, value, change)
				return nil
			}
		}
		var got0, got1 string
		batch := []*writeReq{
			req(guard(ids[0], "a", &got0)),
			req(guard("no-such-task", "x", &got1)),
			req(func(ctx context.Context, t tx, change int64) error {
				t.later(ctx, set, ids[1], "b1", change)
				var id string // a statement that answers sends what was held back with it
				if err := t.queryRow(ctx, set, ids[2], "c", change).Scan(&id); err != nil {
					return err
				}
				t.later(ctx, set, ids[1], "b2", change) // sent with the commit
				return nil
			}),
		}
		errs, err := q.tryGroup(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if errs[0] != nil || !refusal(errs[1]) || errs[2] != nil {
			t.Fatalf("errors %v: want only the second refused", errs)
		}
		if got0 != ids[0] {
			t.Fatalf("held-back guard scanned %q, want %q", got0, ids[0])
		}
		if current(ids[0]) != "a" || current(ids[1]) != "b2" || current(ids[2]) != "c" {
			t.Fatalf("after the group: %q %q %q, want a, b2, c", current(ids[0]), current(ids[1]), current(ids[2]))
		}

		// A held-back statement that fails: its write alone fails.
		batch = []*writeReq{
			req(setCurrent(ids[0], "a2")),
			req(func(ctx context.Context, t tx, change int64) error {
				t.later(ctx, set, ids[1], "half", change)
				t.later(ctx, `INSERT INTO ostask_task_events (task_id, seq, epoch, body) VALUES ($1, 1, 0, '{}')`, ids[1]) // seq 1 exists
				return nil
			}),
			req(setCurrent(ids[2], "c2")),
		}
		q.writeGroup(batch)
		for i, wantErr := range []bool{false, true, false} {
			if got := <-batch[i].done; (got != nil) != wantErr {
				t.Fatalf("write %d: %v, want an error: %v", i, got, wantErr)
			}
		}
		if current(ids[0]) != "a2" || current(ids[1]) != "b2" || current(ids[2]) != "c2" {
			t.Fatalf("after a failed held-back statement: %q %q %q, want a2, b2 (unchanged), c2", current(ids[0]), current(ids[1]), current(ids[2]))
		}

		// A held-back guard finding nothing, followed by more of its
		// write: the write fails whole.
		batch = []*writeReq{
			req(func(ctx context.Context, t tx, change int64) error {
				var id string
				t.laterRow(ctx, func(r row) error { return r.Scan(&id) }, set, "no-such-task", "x", change)
				t.later(ctx, set, ids[1], "after-guard", change)
				return nil
			}),
			req(setCurrent(ids[0], "a3")),
		}
		q.writeGroup(batch)
		if err := <-batch[0].done; err == nil || !isNoRows(err) {
			t.Fatalf("a refused guard with more after it: %v, want a failure wrapping no rows", err)
		}
		if err := <-batch[1].done; err != nil {
			t.Fatal(err)
		}
		if current(ids[1]) != "b2" || current(ids[0]) != "a3" {
			t.Fatalf("after a refused guard with more after it: %q %q, want b2 (undone), a3", current(ids[1]), current(ids[0]))
		}
	})
}

// TestStatementTemplates: the statements built from another's text (its
// name in braces) are whole, valid statements: PostgreSQL prepares each,
// and the text they take has no comment left in it (a "--" would end the
// statement's line early).
func TestStatementTemplates(t *testing.T) {
	q := openPG(t)
	ctx := context.Background()
	n := 0
	for name, text := range queries {
		if !strings.HasPrefix(name, "pg/") {
			continue
		}
		n++
		if _, err := q.db.exec(ctx, fmt.Sprintf("PREPARE tmpl_%d AS %s", n, text)); err != nil {
			t.Errorf("statement %s does not prepare: %v", name, err)
		}
	}
	for _, base := range []string{"task_lease", "task_finish"} {
		if strings.Contains(stripComments(queries[base]), "--") {
			t.Errorf("%s kept a comment", base)
		}
	}
	if n < 2 {
		t.Fatalf("%d pg/ statements prepared, want the lease's and the finish's", n)
	}
}
