package jobs

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func setCurrent(id, value string) func(ctx context.Context, t tx, change int64) error {
	return func(ctx context.Context, t tx, change int64) error {
		var got string
		return t.queryRow(ctx, `UPDATE ostask_tasks SET progress_current = $2, change = $3 WHERE id = $1 RETURNING id`, id, value, change).Scan(&got)
	}
}

// TestGroupWrites: writes grouped in one transaction commit together; a
// write refused by its guard (no rows, nothing written) is left out with
// its error; a write that fails after writing fails only itself (the
// group is written again one by one).
func TestGroupWrites(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			var q *Queue
			if name == "postgres" {
				q = openPG(t)
			} else {
				var err error
				q, err = Open(context.Background(), Config{URL: filepath.Join(t.TempDir(), "q.db"), PollInterval: 20 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { q.Close() })
			}
			ctx := context.Background()
			ids := createNoops(t, q, 3)
			current := func(id string) string {
				tr, err := q.get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				return tr.Progress.Current
			}
			req := func(fn func(ctx context.Context, t tx, change int64) error) *writeReq {
				return &writeReq{fn: fn, done: make(chan error, 1)}
			}
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
}
