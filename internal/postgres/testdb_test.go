package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The helpers in this file are exported for the package's external tests
// (package postgres_test), which run the conformance suite.

// DatabaseURL returns NATTER_TEST_POSTGRES_URL, or skips t when it is not
// set, saying how to run the test.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("NATTER_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("set NATTER_TEST_POSTGRES_URL to run the PostgreSQL tests, e.g. " +
			"NATTER_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test ./internal/postgres/")
	}
	return url
}

// NewSchemaName returns a fresh schema name, t_<random>, and drops the
// schema (if it was created) when t ends, after the cleanups registered
// later, such as closing the stores that use it.
func NewSchemaName(t testing.TB, url string) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := execAdmin(ctx, url, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

// NewSchema creates a fresh, empty schema (see NewSchemaName) and returns
// its name.
func NewSchema(t testing.TB, url string) string {
	t.Helper()
	schema := NewSchemaName(t, url)
	if err := execAdmin(t.Context(), url, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	return schema
}

// OpenTestStore opens a Store on schema with a small pool and closes it
// when t ends.
func OpenTestStore(t testing.TB, url, schema string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url, Options{Schema: schema, MaxConns: 4})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// execAdmin runs sql on a connection of its own, outside any store.
func execAdmin(ctx context.Context, url, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// QueryAdmin runs query in schema on a connection of its own, outside any
// store, and returns the rows' values.
func QueryAdmin(t testing.TB, url, schema, query string, args ...any) [][]any {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatalf("parsing the URL: %v", err)
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([]any, error) { return row.Values() })
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}
