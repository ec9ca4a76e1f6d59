package postgres_test

import (
	"testing"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/postgres"
)

func TestAttachmentTiers(t *testing.T) {
	dbURL := postgres.DatabaseURL(t)
	chattest.TestAttachmentTiers(t, func(t testing.TB) chat.Store {
		return postgres.OpenTestStore(t, dbURL, postgres.NewSchema(t, dbURL))
	})
}
