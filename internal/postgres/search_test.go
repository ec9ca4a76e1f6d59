package postgres_test

import (
	"testing"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/postgres"
)

func TestSearchIndex(t *testing.T) {
	dbURL := postgres.DatabaseURL(t)
	chattest.TestSearchIndex(t, func(t testing.TB) (chat.Store, chat.SearchIndex) {
		s := postgres.OpenTestStore(t, dbURL, postgres.NewSchema(t, dbURL))
		return s, s
	})
}
