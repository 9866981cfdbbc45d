// Package pgtest gives tests a fresh PostgreSQL schema each: the server of
// OSTASK_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/test).
// Outside CI an unreachable server skips the test with a message; with
// CI=true it fails it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/store/postgres"
)

// DefaultURL is the test server when OSTASK_TEST_POSTGRES is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL returns the test server's URL, after checking that it answers.
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("OSTASK_TEST_POSTGRES")
	if url == "" {
		url = DefaultURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s is unreachable (required in CI): %v", url, err)
		}
		t.Skipf("PostgreSQL at %s is unreachable, skipping (set OSTASK_TEST_POSTGRES): %v", url, err)
	}
	conn.Close(ctx)
	return url
}

// Schema creates a uniquely named schema, dropped when t ends, and returns
// the server's URL and the schema's name.
func Schema(t testing.TB) (url, schema string) {
	t.Helper()
	url = URL(t)
	var b [6]byte
	rand.Read(b[:])
	schema = "ostask_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return url, schema
}

// Open returns a DB in a fresh schema, closed when t ends.
func Open(t testing.TB, opts ...store.Option) *store.DB {
	t.Helper()
	url, schema := Schema(t)
	db, err := OpenSchema(t, url, schema, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// OpenSchema opens a DB on an existing schema, closed when t ends.
func OpenSchema(t testing.TB, url, schema string, opts ...store.Option) (*store.DB, error) {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, []postgres.Option{postgres.WithSchema(schema)}, opts...)
	if err == nil {
		t.Cleanup(func() { db.Close() })
	}
	return db, err
}
