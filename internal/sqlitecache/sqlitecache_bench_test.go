package sqlitecache

import (
	"database/sql"
	"path/filepath"
	"testing"

	"modernc.org/sqlite"
)

// BenchmarkQueryRow runs one indexed lookup, as the queue's statements
// are, with and without the cache.
func BenchmarkQueryRow(b *testing.B) {
	for _, cached := range []bool{false, true} {
		name := "uncached"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			base, err := sqlite.NewConnector(filepath.Join(b.TempDir(), "b.db") + "?_journal_mode=WAL")
			if err != nil {
				b.Fatal(err)
			}
			var db *sql.DB
			if cached {
				db = sql.OpenDB(New(base, 0))
			} else {
				db = sql.OpenDB(base)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			if _, err := db.Exec(`CREATE TABLE t (k INTEGER PRIMARY KEY, state TEXT NOT NULL, epoch INTEGER NOT NULL, v TEXT)`); err != nil {
				b.Fatal(err)
			}
			if _, err := db.Exec(`INSERT INTO t VALUES (1, 'running', 3, 'x')`); err != nil {
				b.Fatal(err)
			}
			const q = `SELECT v, epoch FROM t WHERE k = $1 AND state = $2 AND epoch >= $3`
			b.ResetTimer()
			for range b.N {
				var v string
				var e int
				if err := db.QueryRow(q, 1, "running", 2).Scan(&v, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
