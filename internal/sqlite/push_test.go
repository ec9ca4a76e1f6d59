package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/natter-chat/natter/internal/chattest"
)

func TestPushStore(t *testing.T) {
	chattest.TestPushStore(t, func(t testing.TB) chattest.PushBackend {
		return openAt(t, filepath.Join(t.TempDir(), "natter.db"))
	})
}
