package membus

import (
	"context"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

func TestBus_DeliversInOrderToEverySubscriber(t *testing.T) {
	b := New(0)
	const n = 1000
	got := [2]chan int64{make(chan int64, n), make(chan int64, n)}
	for i := range got {
		cancel, err := b.Subscribe(context.Background(), func(e chat.Event) { got[i] <- e.Pos })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cancel)
	}
	for i := int64(1); i <= n; i++ {
		if err := b.Publish(context.Background(), chat.Event{Kind: chat.EventReceipt, Pos: i}); err != nil {
			t.Fatal(err)
		}
	}
	for s := range got {
		for want := int64(1); want <= n; want++ {
			select {
			case v := <-got[s]:
				if v != want {
					t.Fatalf("subscriber %d got %d, want %d", s, v, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("subscriber %d: event %d never arrived", s, want)
			}
		}
	}
}

func TestBus_FullSubscriberDropsInsteadOfBlocking(t *testing.T) {
	b := New(4)
	release := make(chan struct{})
	cancel, err := b.Subscribe(context.Background(), func(chat.Event) { <-release })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { close(release); cancel() }()
	for range 100 { // must return although the handler is stuck
		_ = b.Publish(context.Background(), chat.Event{})
	}
	if b.Dropped() == 0 {
		t.Fatal("expected drops for a stuck subscriber")
	}
}

func TestBus_CancelStopsDelivery(t *testing.T) {
	b := New(0)
	calls := make(chan struct{}, 10)
	cancel, _ := b.Subscribe(context.Background(), func(chat.Event) { calls <- struct{}{} })
	cancel()
	_ = b.Publish(context.Background(), chat.Event{})
	if len(calls) != 0 {
		t.Fatal("handler called after cancel returned")
	}
}
