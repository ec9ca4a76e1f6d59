package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/postgres"
)

// BenchmarkSearch measures message search over NATTER_BENCH_MESSAGES
// messages (default 20,000); see chattest.BenchSearch. The corpus is
// stored with COPY (postgres.CopyMessages) and indexed by core's indexer.
// NATTER_BENCH_SCHEMA, if set, is the schema to use and keep (created if
// absent): a later run with the same NATTER_BENCH_MESSAGES reuses its
// corpus and index instead of building them again (a million messages
// take minutes to build); drop it with DROP SCHEMA ... CASCADE. Without
// it, the corpus is built in a fresh schema that is dropped afterwards.
func BenchmarkSearch(b *testing.B) {
	dbURL := postgres.DatabaseURL(b)
	schema := os.Getenv("NATTER_BENCH_SCHEMA")
	if schema == "" {
		schema = postgres.NewSchema(b, dbURL)
	}
	s := postgres.OpenTestStore(b, dbURL, schema)
	chattest.BenchSearchWith(b, s, s, chattest.BenchSearchOptions{
		Append: func(ctx context.Context, drafts []chat.Draft) error {
			return postgres.CopyMessages(ctx, s, drafts)
		},
		AppendBatch: 20_000,
		Indexed: func(context.Context) error {
			postgres.QueryAdmin(b, dbURL, schema, `ANALYZE`) // as autovacuum would, after a bulk load
			return nil
		},
	})
}
