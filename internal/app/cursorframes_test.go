package app_test

import (
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
)

// On one node, every pushed frame about a stored change carries the sync
// cursor to save, which is the change's own position there (frames arrive
// in position order); acks carry none.
func TestFrames_CarryTheSyncCursor(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	_, in := connect(t, bob)
	aconn, _ := connect(t, alice)
	m, _, err := aconn.Send(ctxT(t), conv.ID, "c-1", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aconn.MarkRead(ctxT(t), conv.ID, m.Seq); err != nil {
		t.Fatal(err)
	}
	var msg, receipt *client.ServerFrame
	deadline := time.Now().Add(20 * time.Second)
	for (msg == nil || receipt == nil) && time.Now().Before(deadline) {
		for _, f := range in.frames() {
			switch f.Type {
			case client.TypeMessage:
				msg = &f
			case client.TypeReceipt:
				receipt = &f
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if msg == nil || receipt == nil {
		t.Fatalf("bob got message %v, receipt %v", msg, receipt)
	}
	if got, _ := msg.Msg(); got == nil || msg.Cursor != got.Pos || msg.Cursor != m.Pos {
		t.Errorf("message frame cursor %d, want the message's pos %d", msg.Cursor, m.Pos)
	}
	if receipt.Cursor != receipt.Pos || receipt.Cursor <= msg.Cursor {
		t.Errorf("receipt frame cursor %d (pos %d), want its pos, above the message's %d", receipt.Cursor, receipt.Pos, msg.Cursor)
	}
}
