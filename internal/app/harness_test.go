package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/chattest"
)

// node is a running Natter server on a loopback port with its own data dir.
type node struct {
	URL  string
	Dir  string
	stop func()
}

// startNode runs a real node until the test ends (see chattest.StartNode).
func startNode(t testing.TB, dir string, mutate ...func(*app.Config)) *node {
	t.Helper()
	n := chattest.StartNode(t, dir, mutate...)
	return &node{URL: n.URL, Dir: n.Dir, stop: n.Stop}
}

var userSeq atomic.Int64

// user registers a fresh account and returns its client and id.
func (n *node) user(t testing.TB, prefix string) (*client.Client, string) {
	t.Helper()
	c := client.New(n.URL, client.Options{})
	name := fmt.Sprintf("%s%d", prefix, userSeq.Add(1))
	res, err := c.Register(ctxT(t), name, "a long enough passphrase")
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return c, res.User.ID
}

// ctxT returns a context that ends with the test or after a minute.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// inbox collects the message frames a connection receives.
type inbox struct {
	mu   sync.Mutex
	msgs []client.Message
	all  []client.ServerFrame
	ch   chan struct{}
}

func newInbox() *inbox { return &inbox{ch: make(chan struct{}, 1)} }

func (b *inbox) onEvent(f client.ServerFrame) {
	b.mu.Lock()
	b.all = append(b.all, f)
	if f.Type == client.TypeMessage {
		if m, err := f.Msg(); err == nil && m != nil {
			b.msgs = append(b.msgs, *m)
		}
	}
	b.mu.Unlock()
	select {
	case b.ch <- struct{}{}:
	default:
	}
}

// waitFor polls until cond holds over the received messages or fails the
// test after a deadline.
func (b *inbox) waitFor(t testing.TB, what string, cond func([]client.Message) bool) []client.Message {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		b.mu.Lock()
		msgs := append([]client.Message(nil), b.msgs...)
		b.mu.Unlock()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-b.ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; have %d messages", what, len(msgs))
		}
	}
}

func (b *inbox) frames() []client.ServerFrame {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]client.ServerFrame(nil), b.all...)
}

// connect opens a WebSocket for c that records pushed frames in an inbox.
func connect(t testing.TB, c *client.Client) (*client.Conn, *inbox) {
	t.Helper()
	in := newInbox()
	conn, err := c.Connect(ctxT(t), client.ConnOptions{OnEvent: in.onEvent, EventBuffer: 1 << 16, Transport: client.TransportWebSocket})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, in
}

// rawRequest sends an HTTP request with an optional bearer token and
// returns the status and body.
func rawRequest(t testing.TB, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return res.StatusCode, sb.String()
}
