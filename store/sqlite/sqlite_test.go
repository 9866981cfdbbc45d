package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/store/sqlite"
	"github.com/ostask/ostask/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, path string, opts ...store.Option) (*store.DB, error) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, opts...)
	if err == nil {
		t.Cleanup(func() { db.Close() })
	}
	return db, err
}

func fresh(t *testing.T, opts ...store.Option) *store.DB {
	t.Helper()
	db, err := open(t, filepath.Join(t.TempDir(), "ostask.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func pathOf(db *store.DB) string { return db.Driver().(*sqlite.Driver).Path() }

func harness() storetest.Harness {
	return storetest.Harness{
		Open: fresh,
		Reopen: func(t *testing.T, db *store.DB, opts ...store.Option) (*store.DB, error) {
			return open(t, pathOf(db), opts...)
		},
		Exec: func(t *testing.T, db *store.DB, query string) {
			t.Helper()
			raw, err := sql.Open("sqlite", pathOf(db))
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if _, err := raw.Exec(query); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		},
		Dump: func(t *testing.T, db *store.DB) []byte {
			t.Helper()
			var all []byte
			// Not -shm: it indexes the WAL and readers move their marks in it.
			for _, suffix := range []string{"", "-wal", "-journal"} {
				b, err := os.ReadFile(pathOf(db) + suffix)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			return all
		},
	}
}

func TestConformance(t *testing.T) { storetest.DB(t, harness()) }

func TestMemoryConformance(t *testing.T) {
	storetest.Storage(t, func(t *testing.T) engine.Storage { return engine.NewMemory() })
}

func TestFilePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "ostask")
	if _, err := open(t, filepath.Join(dir, "ostask.db")); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "ostask.db"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
}

func TestBadPath(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "a.db?mode=ro"} {
		if _, err := sqlite.NewDriver(p); !errors.Is(err, sqlite.ErrBadPath) {
			t.Errorf("NewDriver(%q) = %v", p, err)
		}
	}
}
