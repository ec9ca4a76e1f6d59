package app_test

import (
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/app"
)

// A connection that got a frame and then stays quiet for longer than the
// write timeout must stay open: the server's pings (and its pongs to the
// client's pings) are writes of their own, each with a fresh deadline.
// They used to inherit the last frame's deadline, so the first ping after
// it had passed failed and ended the connection (a browser tab left idle
// lost its connection every ~20 s).
func TestWS_QuietConnectionOutlivesTheWriteTimeout(t *testing.T) {
	n := startNode(t, "", func(c *app.Config) {
		c.WS.WriteTimeout = 300 * time.Millisecond
		c.WS.PingInterval = 100 * time.Millisecond
	})
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	conn, in := connect(t, bob)
	if _, err := alice.Send(ctxT(t), conv.ID, "hello", "hi"); err != nil {
		t.Fatal(err)
	}
	waitMessages(t, in, "bob to get alice's message", conv.ID, 1, 20*time.Second)

	// Quiet for ten write timeouts (the condition under test, not a wait
	// for something): about thirty pings go out meanwhile.
	time.Sleep(3 * time.Second)
	if err := conn.Err(); err != nil {
		t.Fatalf("a quiet connection ended %v after its last frame: %v", 3*time.Second, err)
	}
	if err := conn.Ping(ctxT(t)); err != nil {
		t.Fatalf("ping over the quiet connection: %v", err)
	}
	if _, _, err := conn.Send(ctxT(t), conv.ID, "reply", "still here"); err != nil {
		t.Fatalf("send over the quiet connection: %v", err)
	}
	if code := conn.CloseCode(); code != 0 {
		t.Errorf("close code %d on a connection that should be open", code)
	}
}
