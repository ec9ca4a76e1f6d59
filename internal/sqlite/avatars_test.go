package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
)

func TestAvatarStore(t *testing.T) {
	chattest.TestAvatarStore(t, func(t testing.TB) chat.Store {
		return openAt(t, filepath.Join(t.TempDir(), "natter.db"))
	})
}
