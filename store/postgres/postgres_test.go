package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

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
