package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/goleak"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/store/postgres"
	"github.com/ostask/ostask/store/postgres/pgtest"
	"github.com/ostask/ostask/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func driverOf(db *store.DB) *postgres.Driver { return db.Driver().(*postgres.Driver) }

func harness() storetest.Harness {
	return storetest.Harness{
		Open: func(t *testing.T, opts ...store.Option) *store.DB { return pgtest.Open(t, opts...) },
		Reopen: func(t *testing.T, db *store.DB, opts ...store.Option) (*store.DB, error) {
			d := driverOf(db)
			return pgtest.OpenSchema(t, d.Pool().Config().ConnString(), d.Schema(), opts...)
		},
		Exec: func(t *testing.T, db *store.DB, query string) {
			t.Helper()
			if _, err := driverOf(db).Pool().Exec(context.Background(), query); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		},
		Dump: func(t *testing.T, db *store.DB) []byte {
			t.Helper()
			var out []byte
			for _, table := range []string{"ostask_runs", "ostask_atoms", "ostask_schema"} {
				var s string
				q := "SELECT COALESCE(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM " + pgx.Identifier{table}.Sanitize() + " t"
				if err := driverOf(db).Pool().QueryRow(context.Background(), q).Scan(&s); err != nil {
					t.Fatal(err)
				}
				out = append(out, s...)
			}
			return out
		},
	}
}

func TestConformance(t *testing.T) { storetest.DB(t, harness()) }

// A database made by schema version 1 (atoms with a foreign key to their
// run) moves to version 2 on open: the key goes, the rows stay, and
// deleting a run still removes its atoms.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Open(t)
	pool := driverOf(db).Pool()
	run, err := db.Create(ctx, store.NewRun{ID: "old", Flow: "f"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.SaveAtom(ctx, flow.StatePending, engine.AtomRecord{Name: "a", State: flow.StateRunning}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"ALTER TABLE ostask_atoms ADD CONSTRAINT ostask_atoms_run_id_fkey FOREIGN KEY (run_id) REFERENCES ostask_runs (id) ON DELETE CASCADE",
		"DELETE FROM ostask_schema WHERE version > 1",
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	again, err := pgtest.OpenSchema(t, pool.Config().ConnString(), driverOf(db).Schema())
	if err != nil {
		t.Fatal(err)
	}
	if from, to := again.Migrated(); from != 1 || to != 2 {
		t.Fatalf("migrated %d -> %d, want 1 -> 2", from, to)
	}
	var keys int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'ostask_atoms'::regclass AND contype = 'f'").Scan(&keys); err != nil || keys != 0 {
		t.Fatalf("%d foreign keys left (%v)", keys, err)
	}
	if _, atoms, err := again.Show(ctx, "old"); err != nil || len(atoms) != 1 || atoms[0].State != flow.StateRunning {
		t.Fatalf("after the migration: %+v %v", atoms, err)
	}
	if err := again.Delete(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM ostask_atoms").Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d atoms left after Delete (%v)", left, err)
	}
}

func TestGroupWriters(t *testing.T) {
	url, schema := pgtest.Schema(t)
	tests := []struct {
		name string
		opts []postgres.Option
		want int
	}{
		{"default", nil, postgres.DefaultGroupWriters},
		{"at least one", []postgres.Option{postgres.WithGroupWriters(0)}, 1},
		{"at most the pool", []postgres.Option{postgres.WithGroupWriters(10), postgres.WithMaxConns(3)}, 3},
		{"as asked", []postgres.Option{postgres.WithGroupWriters(3)}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := postgres.NewDriver(context.Background(), url, append(tc.opts, postgres.WithSchema(schema))...)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if got := d.GroupWriters(); got != tc.want {
				t.Fatalf("GroupWriters = %d, want %d", got, tc.want)
			}
		})
	}
}

// A statement that the server refuses (not a guard) names its batch, and
// the group writes nothing.
func TestGroupStatementError(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Open(t)
	d := driverOf(db)
	for _, id := range []string{"a", "b"} {
		if _, err := db.Create(ctx, store.NewRun{ID: id, Flow: "f"}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	write := func(id, result string) *store.Batch {
		return &store.Batch{Run: id, Epoch: 1, Now: now, Atoms: []store.AtomWrite{
			{From: "PENDING", Row: store.AtomRow{Name: "x", State: "SUCCESS", Result: []byte(result)}}}}
	}
	err := d.ApplyGroup(ctx, []*store.Batch{write("a", `1`), write("b", `{not json`)})
	var be *store.BatchError
	var pe *pgconn.PgError
	if !errors.As(err, &be) || be.Index != 1 || !errors.As(be.Err, &pe) || pe.Code != "22P02" {
		t.Fatalf("ApplyGroup = %v, want a *BatchError for batch 1 with the server's invalid_text_representation", err)
	}
	if _, atoms, err := db.Show(ctx, "a"); err != nil || len(atoms) != 0 {
		t.Fatalf("run a: %+v %v: the failed group wrote", atoms, err)
	}
}

// A batch is one statement whatever its atoms, the same text for all: a
// group of K batches executes K statements, prepared once per connection.
func TestOneStatementPerBatch(t *testing.T) {
	ctx := context.Background()
	url, schema := pgtest.Schema(t)
	db, err := postgres.Open(ctx, url, []postgres.Option{postgres.WithSchema(schema), postgres.WithMaxConns(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d := driverOf(db)
	ids := []string{"a", "b", "c", "d"}
	for _, id := range ids {
		if _, err := db.Create(ctx, store.NewRun{ID: id, Flow: "f"}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	write := func(id string, atoms int) *store.Batch {
		b := &store.Batch{Run: id, Epoch: 1, Now: now, FlowFrom: "PENDING", FlowTo: "RUNNING"}
		for i := range atoms {
			b.Atoms = append(b.Atoms, store.AtomWrite{From: "PENDING", Row: store.AtomRow{Name: fmt.Sprint("x", i), State: "RUNNING"}, Start: true})
		}
		return b
	}
	if err := d.ApplyGroup(ctx, []*store.Batch{write("a", 0), write("b", 1), write("c", 5)}); err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(ctx, write("d", 2)); err != nil {
		t.Fatal(err)
	}
	// pg_prepared_statements is the session's: the pool's one connection.
	rows, err := d.Pool().Query(ctx, `SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements
		WHERE statement ~ '(INSERT|UPDATE)' AND statement ~ 'ostask_(runs|atoms)'`)
	if err != nil {
		t.Fatal(err)
	}
	execs := map[string]int64{}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		execs[s] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var writes, creates int64
	for s, n := range execs {
		switch {
		case strings.Contains(s, "WITH r AS"):
			writes += n
		case strings.HasPrefix(s, "INSERT INTO ostask_runs"):
			creates += n
		default:
			t.Errorf("another write statement, executed %d times: %s", n, s)
		}
	}
	if len(execs) != 2 || writes != 4 || creates != int64(len(ids)) {
		t.Fatalf("%d write texts, %d batch executions (want 4), %d creations (want %d)", len(execs), writes, creates, len(ids))
	}
	for _, id := range ids {
		if info, err := db.Get(ctx, id); err != nil || info.State != flow.StateRunning {
			t.Fatalf("%s: %+v %v", id, info, err)
		}
	}
}
