package chattest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresSchema returns NATTER_TEST_POSTGRES_URL and a fresh schema name
// in it that starts with prefix; the schema is dropped when t ends (after
// the stores and nodes that t's other cleanups close). Without the
// variable it skips t, saying how to run it.
func PostgresSchema(t testing.TB, prefix string) (url, schema string) {
	t.Helper()
	url = os.Getenv("NATTER_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("this test needs PostgreSQL: set NATTER_TEST_POSTGRES_URL, e.g. " +
			"NATTER_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema = prefix + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return url, schema
}
