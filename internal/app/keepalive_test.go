package app_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
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

// A client that floods pings and never reads must not grow the server's
// memory: at most one pong per connection waits to be written (RFC 6455
// lets a server answer only the latest ping). Each ping used to queue a
// pong of its own behind the stalled write, and a few million pings took
// gigabytes.
func TestWS_PingFloodDoesNotGrowTheWriteQueue(t *testing.T) {
	n := startNode(t, "", func(c *app.Config) {
		c.WS.WriteTimeout = time.Minute // the stalled write stays stalled while the pings come in
	})
	alice, _ := n.user(t, "alice")
	addr := strings.TrimPrefix(n.URL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A small receive buffer: the server's writes stall at once, as they
	// do for a client that does not read.
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET /v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
		addr, alice.Tokens().AccessToken)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", res, err)
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	// Pings with the largest payload a control frame may carry (125
	// bytes; masked with a zero key), for 8 seconds, and nothing read.
	ping := append([]byte{0x89, 0x80 | 125, 0, 0, 0, 0}, bytes.Repeat([]byte("p"), 125)...)
	chunk := bytes.Repeat(ping, 1000)
	sent := 0
	stop := time.Now().Add(8 * time.Second)
	for time.Now().Before(stop) {
		_ = c.SetWriteDeadline(stop)
		if _, err := c.Write(chunk); err != nil {
			break
		}
		sent += 1000
	}
	// The heap at its highest while the server works through them.
	var peak uint64
	for range 8 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapInuse)
		time.Sleep(250 * time.Millisecond)
	}
	grew := int64(peak) - int64(base.HeapInuse)
	t.Logf("%d pings sent; heap in use %d MB, at most %d MB after", sent, base.HeapInuse>>20, peak>>20)
	if grew > 32<<20 {
		t.Errorf("a ping flood of %d pings grew the heap by %d MB; want the pongs owed bounded per connection", sent, grew>>20)
	}
}
