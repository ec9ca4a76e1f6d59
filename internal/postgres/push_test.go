package postgres_test

import (
	"testing"

	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/postgres"
)

func TestPushStore(t *testing.T) {
	dbURL := postgres.DatabaseURL(t)
	chattest.TestPushStore(t, func(t testing.TB) chattest.PushBackend {
		return postgres.OpenTestStore(t, dbURL, postgres.NewSchema(t, dbURL))
	})
}
