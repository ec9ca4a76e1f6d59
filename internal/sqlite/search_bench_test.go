package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/natter-chat/natter/internal/chattest"
)

// BenchmarkSearch measures message search over NATTER_BENCH_MESSAGES
// messages (default 20,000); see chattest.BenchSearch. NATTER_BENCH_DB,
// if set, is the database file to use and keep: a later run with the
// same NATTER_BENCH_MESSAGES reuses its corpus and index instead of
// building them again (a million messages take minutes to build).
func BenchmarkSearch(b *testing.B) {
	path := os.Getenv("NATTER_BENCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "natter.db")
	}
	s := openAt(b, path)
	chattest.BenchSearch(b, s, s)
}
