package store

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// ParseMigrations reads the migrations of fsys: files NNNN_name.sql at the
// root, numbered 1, 2, 3... without gaps. Anything else at the root is an
// error, so a misnamed file cannot be skipped silently.
func ParseMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if e.IsDir() || !ok || err != nil || v < 1 || path.Ext(name) != ".sql" {
			return nil, fmt.Errorf("store: migrations: %q is not NNNN_name.sql", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("store: migrations: %w", err)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("store: migrations: %q: expected version %d", m.Name, i+1)
		}
	}
	return out, nil
}

// migrate brings the database to the newest migration, refusing a
// database whose schema is newer than the newest migration known.
func migrate(ctx context.Context, d Driver) (from, to int, err error) {
	ms, err := ParseMigrations(d.Migrations())
	if err != nil {
		return 0, 0, err
	}
	from, err = d.SchemaVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("store: schema version: %w", err)
	}
	if from > len(ms) {
		return from, from, &SchemaError{Database: from, Known: len(ms)}
	}
	for _, m := range ms[from:] {
		if err := d.ApplyMigration(ctx, m); err != nil {
			return from, m.Version - 1, fmt.Errorf("store: migration %s: %w", m.Name, err)
		}
	}
	// A newer binary may have migrated between our read and our writes.
	to, err = d.SchemaVersion(ctx)
	if err != nil {
		return from, 0, fmt.Errorf("store: schema version: %w", err)
	}
	if to > len(ms) {
		return from, to, &SchemaError{Database: to, Known: len(ms)}
	}
	return from, to, nil
}
