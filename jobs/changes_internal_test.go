package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ostask/ostask/store/postgres/pgtest"
)

// testConfig is a queue's configuration on a fresh database of its
// own: "postgres" (a schema) or "sqlite" (a file).
func testConfig(tb testing.TB, db string, poll time.Duration) Config {
	tb.Helper()
	cfg := Config{PollInterval: poll}
	if db == "postgres" {
		cfg.URL, cfg.Schema = pgtest.Schema(tb)
	} else {
		cfg.URL = "sqlite:" + filepath.Join(tb.TempDir(), "q.db")
	}
	return cfg
}

// openTest opens a queue on a fresh database (see testConfig), closed
// at the test's end.
func openTest(t *testing.T, db string) *Queue {
	t.Helper()
	q, err := Open(context.Background(), testConfig(t, db, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func openPG(t *testing.T) *Queue { return openTest(t, "postgres") }

// onEachDB runs test on a fresh queue of each database, as a subtest
// named for it.
func onEachDB(t *testing.T, test func(t *testing.T, q *Queue)) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) { test(t, openTest(t, db)) })
	}
}

// mark writes a task's progress_current as one change, in the
// transaction inTx gives; hold, when set, runs before the commit.
func mark(ctx context.Context, q *Queue, id, value string, hold func(change int64)) error {
	return q.inTx(ctx, func(t tx, change int64) error {
		if _, err := t.exec(ctx, `UPDATE ostask_tasks SET progress_current = $2, change = $3 WHERE id = $1`, id, value, change); err != nil {
			return err
		}
		if hold != nil {
			hold(change)
		}
		return nil
	})
}

func createNoops(t *testing.T, q *Queue, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		task, _, err := q.Create(context.Background(), NewTask{Kind: "noop", Project: "p", Params: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = task.ID
	}
	return ids
}

// TestChangesWaitForEarlierNumbers: on PostgreSQL change numbers are not
// taken in commit order, so a transaction with a lower number may commit
// after one with a higher number. A follower must not move its cursor
// past the open one, and must see it once it commits.
func TestChangesWaitForEarlierNumbers(t *testing.T) {
	q := openPG(t)
	ctx := context.Background()
	ids := createNoops(t, q, 2)
	a, b := ids[0], ids[1]
	_, cursor, err := q.Changes(ctx, Filter{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	held, release, done := make(chan int64), make(chan struct{}), make(chan error, 1)
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	defer unhold() // a failing test lets the transaction end before Close
	go func() {
		done <- mark(ctx, q, a, "slow", func(change int64) {
			held <- change
			<-release
		})
	}()
	aChange := <-held
	if err := mark(ctx, q, b, "fast", nil); err != nil {
		t.Fatal(err)
	}
	got, next, err := q.Changes(ctx, Filter{}, cursor)
	if err != nil {
		t.Fatal(err)
	}
	if next >= aChange {
		t.Fatalf("cursor moved to %d, past the open transaction's change %d", next, aChange)
	}
	for _, task := range got {
		if task.ID == b {
			t.Fatalf("the later change of %s was given before the open earlier one", b)
		}
	}
	unhold()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	deadline := time.Now().Add(30 * time.Second)
	for seen[a] != "slow" || seen[b] != "fast" {
		if time.Now().After(deadline) {
			t.Fatalf("after the commit the follower saw %v", seen)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		err := q.WaitChanges(wctx, next)
		cancel()
		if err != nil && wctx.Err() == nil {
			t.Fatal(err)
		}
		got, next, err = q.Changes(ctx, Filter{}, next)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range got {
			seen[task.ID] = task.Progress.Current
		}
	}
}

// TestChangesConcurrentWriters: writers commit changes in random order
// while a follower pages through Changes with a small limit (tasks share
// change numbers); the follower ends up with every task's last write.
func TestChangesConcurrentWriters(t *testing.T) {
	q := openPG(t)
	ctx := context.Background()
	const writers, rounds = 8, 6
	ids := createNoops(t, q, 40)
	_, cursor, err := q.Changes(ctx, Filter{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				// Several tasks in one transaction: one change number.
				var mine []string
				for _, id := range ids {
					if rand.IntN(4) == 0 {
						mine = append(mine, id)
					}
				}
				value := fmt.Sprintf("w%d-r%d", w, r)
				err := q.inTx(ctx, func(t tx, change int64) error {
					for _, id := range mine {
						if _, err := t.exec(ctx, `UPDATE ostask_tasks SET progress_current = $2, change = $3 WHERE id = $1`, id, value, change); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				// An open transaction with a lower number than later
				// commits of other writers.
				if err := mark(ctx, q, ids[rand.IntN(len(ids))], "", func(int64) { time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond) }); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	writing := make(chan struct{})
	go func() {
		wg.Wait()
		close(writing)
	}()
	seen := map[string]string{}
	follow := func() {
		got, next, err := q.Changes(ctx, Filter{Limit: 7}, cursor)
		if err != nil {
			t.Fatal(err)
		}
		if next < cursor {
			t.Fatalf("cursor went back from %d to %d", cursor, next)
		}
		cursor = next
		for _, task := range got {
			seen[task.ID] = task.Progress.Current
		}
	}
loop:
	for {
		select {
		case <-writing:
			break loop
		default:
			follow()
		}
	}
	// Drain: the writes are committed; the horizon reaches them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		follow()
		ok := true
		for _, id := range ids {
			task, err := q.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if seen[id] != task.Progress.Current {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the follower missed changes: saw %v", seen)
		}
	}
}

// TestIdleInTransactionBounded: a queue's PostgreSQL sessions end a
// transaction left idle (a paused worker's) after IdleInTransactionTimeout,
// since an open transaction holds back every follower's change horizon.
func TestIdleInTransactionBounded(t *testing.T) {
	q := openPG(t)
	pg, ok := q.db.(*pgDB)
	if !ok {
		t.Fatalf("the queue's database is %T, not PostgreSQL", q.db)
	}
	var got string
	if err := pg.pool.QueryRow(context.Background(), "SHOW idle_in_transaction_session_timeout").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "1min" {
		t.Fatalf("idle_in_transaction_session_timeout = %q, want 1min (IdleInTransactionTimeout)", got)
	}
}
