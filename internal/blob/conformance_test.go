package blob_test

import (
	"testing"

	"github.com/natter-chat/natter/internal/blob"
	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
)

func TestDisk_Conformance(t *testing.T) {
	chattest.TestBlobStore(t, func(t testing.TB) chat.BlobStore {
		d, err := blob.OpenDisk(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	})
}
