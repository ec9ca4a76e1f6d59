package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
)

func TestSearchIndex(t *testing.T) {
	chattest.TestSearchIndex(t, func(t testing.TB) (chat.Store, chat.SearchIndex) {
		s := openAt(t, filepath.Join(t.TempDir(), "natter.db"))
		return s, s
	})
}
