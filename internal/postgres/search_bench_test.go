package postgres_test

import (
	"testing"

	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/postgres"
)

// BenchmarkSearch measures message search over NATTER_BENCH_MESSAGES
// messages (default 20,000) in a fresh schema, built on every run; see
// chattest.BenchSearch.
func BenchmarkSearch(b *testing.B) {
	dbURL := postgres.DatabaseURL(b)
	s := postgres.OpenTestStore(b, dbURL, postgres.NewSchema(b, dbURL))
	chattest.BenchSearch(b, s, s)
}
