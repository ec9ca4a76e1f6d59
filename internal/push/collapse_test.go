package push

import (
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

func TestCollapser(t *testing.T) {
	c := newCollapser(30 * time.Second)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	msg := func(seq int64) chat.Message { return chat.Message{ID: chat.MessageID(100 + seq), Conv: 1, Seq: seq} }
	if n, ok := c.admit(7, msg(1), t0); !ok || n != 1 {
		t.Fatalf("first message: %d, %v; want sent with count 1", n, ok)
	}
	for i := range int64(4) {
		if _, ok := c.admit(7, msg(2+i), t0.Add(time.Duration(i+1)*time.Second)); ok {
			t.Fatalf("message %d inside the window was sent", 2+i)
		}
	}
	if n, ok := c.admit(8, msg(2), t0.Add(time.Second)); !ok || n != 1 {
		t.Fatalf("another user's first message: %d, %v", n, ok)
	}
	if got := c.due(t0.Add(29 * time.Second)); len(got) != 0 {
		t.Fatalf("due before the window ended: %+v", got)
	}
	got := c.due(t0.Add(30 * time.Second))
	if len(got) != 1 || got[0].user != 7 || got[0].count != 4 || got[0].last.Seq != 5 {
		t.Fatalf("due at the end of the window = %+v; want user 7's summary of 4 ending at seq 5", got)
	}
	// The summary opened a new window: a message in it is folded.
	if _, ok := c.admit(7, msg(6), t0.Add(45*time.Second)); ok {
		t.Fatalf("a message in the summary's window was sent")
	}
	// A message after that window ended, before due ran, carries the fold.
	if n, ok := c.admit(7, msg(7), t0.Add(61*time.Second)); !ok || n != 2 {
		t.Fatalf("message after the window: %d, %v; want sent with count 2", n, ok)
	}
	if got := c.due(t0.Add(200 * time.Second)); len(got) != 0 {
		t.Fatalf("windows with nothing folded gave summaries: %+v", got)
	}
	if len(c.windows) != 0 {
		t.Fatalf("%d windows kept after they ended empty", len(c.windows))
	}
}
