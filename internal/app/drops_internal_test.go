package app

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/auth"
	"github.com/natter-chat/natter/internal/wsapi"
)

// TestWatchDrops_InProcessBusDropMakesClientsReconnect checks the wiring
// from a drop counted by the in-process bus to the node's clients: each
// is told to reconnect (so that it catches up from its cursor), and a
// counter that stands still tells nobody anything. The drop itself is
// counted by membus (tested there); here the counter is driven by the
// test, since the node's hub never stalls long enough to drop for real.
func TestWatchDrops_InProcessBusDropMakesClientsReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := New(ctx, Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), DrainJitter: 20 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Hasher: auth.HasherOptions{Memory: 64, Time: 1}, SendRate: -1, RESTRate: -1, WS: wsapi.Options{FrameRate: 1e6},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("node stopped with error: %v", err)
		}
	}()

	url := "http://" + a.Addr()
	alice := client.New(url, client.Options{})
	if _, err := alice.Register(ctx, "alice", "a long enough passphrase"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reconnects int
	got := make(chan struct{}, 1)
	conn, err := alice.Connect(ctx, client.ConnOptions{Transport: client.TransportWebSocket, OnEvent: func(f client.ServerFrame) {
		if f.Type == client.TypeReconnect {
			mu.Lock()
			reconnects++
			mu.Unlock()
			select {
			case got <- struct{}{}:
			default:
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	var dropped atomic.Int64
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		a.watchDrops(watchCtx, func() float64 { return float64(dropped.Load()) })
	}()
	defer func() { stopWatch(); <-watched }()

	// A counter that does not move: two ticks pass without a reconnect.
	select {
	case <-got:
		t.Fatal("told to reconnect although nothing was dropped")
	case <-time.After(2500 * time.Millisecond):
	}
	dropped.Add(3)
	select {
	case <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("a dropped event did not make the client reconnect")
	}
	mu.Lock()
	n := reconnects
	mu.Unlock()
	if n != 1 {
		t.Fatalf("reconnect frames = %d, want 1", n)
	}
}
