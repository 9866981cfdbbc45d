package sqlite_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/retry"
	"github.com/ostask/ostask/store"
	ostasksqlite "github.com/ostask/ostask/store/sqlite"
)

// diskFullMarker in a database path makes its connections refuse to grow
// the file (PRAGMA max_page_count), as a full disk would.
const diskFullMarker = "disk-is-full"

func init() {
	sqlite.RegisterConnectionHook(func(conn sqlite.ExecQuerierContext, dsn string) error {
		if !strings.Contains(dsn, diskFullMarker) {
			return nil
		}
		rows, err := conn.QueryContext(context.Background(), "PRAGMA page_count", nil)
		if err != nil {
			return err
		}
		vals := make([]driver.Value, 1)
		err = rows.Next(vals)
		rows.Close()
		if err != nil {
			return err
		}
		_, err = conn.ExecContext(context.Background(), "PRAGMA max_page_count = "+strconv.FormatInt(vals[0].(int64), 10), nil)
		return err
	})
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

var fastPolicy = retry.Policy{MaxAttempts: 4, Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1}

func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return -1
}

// A write lock another process holds longer than the busy timeout is
// retried; once it is released, the write goes through.
func TestLockedByAnotherProcess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ostask.db")
	if db, err := open(t, path); err != nil {
		t.Fatal(err)
	} else {
		db.Close()
	}
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	for _, release := range []bool{true, false} {
		name := map[bool]string{true: "released", false: "never released"}[release]
		t.Run(name, func(t *testing.T) {
			waits := 0
			sleep := func(ctx context.Context, d time.Duration) error {
				waits++
				if release && waits == 2 {
					if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
						t.Error(err)
					}
				}
				return nil
			}
			d, err := ostasksqlite.NewDriver(path, ostasksqlite.WithBusyTimeout(time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			db, err := store.New(ctx, d, store.WithRetryPolicy(fastPolicy), store.WithRetrySleep(sleep))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			run, err := db.Create(ctx, store.NewRun{ID: name, Flow: "f"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
				t.Fatal(err)
			}
			err = run.SaveFlow(ctx, flow.StatePending, flow.StateRunning)
			if release {
				if err != nil || waits < 2 {
					t.Fatalf("SaveFlow = %v after %d waits", err, waits)
				}
				return
			}
			defer conn.ExecContext(ctx, "ROLLBACK")
			var ue *store.UnavailableError
			if !errors.As(err, &ue) || ue.Attempts != fastPolicy.MaxAttempts || sqliteCode(err) != sqlite3.SQLITE_BUSY {
				t.Fatalf("SaveFlow = %v, want an *UnavailableError after %d attempts of SQLITE_BUSY", err, fastPolicy.MaxAttempts)
			}
		})
	}
}

// A full disk stops the writer with a typed error after bounded retries;
// nothing is half-written and, with space again, the run resumes.
func TestDiskFull(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), diskFullMarker)
	path := filepath.Join(dir, "ostask.db")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Create the database with room to grow, through a path without the marker.
	roomy := filepath.Join(t.TempDir(), "roomy.db")
	db, err := open(t, roomy)
	if err != nil {
		t.Fatal(err)
	}
	run, err := db.Create(ctx, store.NewRun{ID: "full", Flow: "f"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.SaveAtom(ctx, flow.StatePending, engine.AtomRecord{Name: "a", State: flow.StateRunning}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := copyFile(roomy, path); err != nil {
		t.Fatal(err)
	}

	d, err := ostasksqlite.NewDriver(path)
	if err != nil {
		t.Fatal(err)
	}
	full, err := store.New(ctx, d, store.WithRetryPolicy(fastPolicy), store.WithRetrySleep(func(context.Context, time.Duration) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	owner, err := full.Acquire(ctx, "full", "")
	if err == nil {
		err = owner.SaveAtom(ctx, flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateSuccess,
			Result: strings.Repeat("x", 256<<10)})
	}
	var ue *store.UnavailableError
	if !errors.As(err, &ue) || sqliteCode(err) != sqlite3.SQLITE_FULL {
		t.Fatalf("write on a full disk = %v, want an *UnavailableError with SQLITE_FULL", err)
	}
	full.Close()

	// With space again (a path without the marker), the run resumes.
	moved := filepath.Join(t.TempDir(), "moved.db")
	if err := copyFile(path, moved); err != nil {
		t.Fatal(err)
	}
	again, err := open(t, moved)
	if err != nil {
		t.Fatal(err)
	}
	r, err := again.Acquire(ctx, "full", "")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Load(ctx)
	if err != nil || snap.Atoms["a"].State != flow.StateRunning {
		t.Fatalf("after the failure: %+v %v", snap.Atoms["a"], err)
	}
	if err := r.SaveAtom(ctx, flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateSuccess,
		Result: strings.Repeat("x", 256<<10)}); err != nil {
		t.Fatal(err)
	}
}
