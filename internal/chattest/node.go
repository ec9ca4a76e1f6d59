package chattest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/auth"
	"github.com/natter-chat/natter/internal/wsapi"
)

// Node is a real Natter node (SQLite in Dir, in-process bus) listening on
// a loopback port, for end-to-end tests.
type Node struct {
	URL  string
	Dir  string
	Stop func() // graceful shutdown; also run by t.Cleanup
}

// StartNode runs a node until the test ends. dir "" means a fresh temp
// dir; mutate, if given, adjusts the config first. Password hashing is
// made cheap so tests stay fast (production uses OWASP's parameters), and
// rate limits are off unless mutate sets them.
func StartNode(t testing.TB, dir string, mutate ...func(*app.Config)) *Node {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := app.Config{
		Addr: "127.0.0.1:0", DataDir: dir, DrainJitter: 50 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Hasher: auth.HasherOptions{Memory: 64, Time: 1},
		// Tests flood on purpose; the rate limits have tests of their own.
		SendRate: -1, RESTRate: -1, WS: wsapi.Options{FrameRate: 1e6},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("app.New: %v", err)
	}
	if err := a.Listen(); err != nil {
		cancel()
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	n := &Node{URL: "http://" + a.Addr(), Dir: dir}
	n.Stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("node stopped with error: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("node did not stop within 30s")
			}
		})
	}
	t.Cleanup(n.Stop)
	return n
}
