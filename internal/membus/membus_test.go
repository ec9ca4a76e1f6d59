package membus

import (
	"context"
	"sync/atomic"
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

func TestBus_FullSubscriberWaitsThenDropsOnlyWhenThePublisherGivesUp(t *testing.T) {
	b := New(4)
	release := make(chan struct{})
	got := make(chan chat.Event, 100)
	cancel, err := b.Subscribe(context.Background(), func(e chat.Event) { <-release; got <- e })
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	// A publisher whose context ends gives up on the stuck subscriber.
	ctx, stop := context.WithCancel(context.Background())
	stop()
	for range 10 {
		_ = b.Publish(ctx, chat.Event{})
	}
	if b.Dropped() == 0 {
		t.Fatal("a publisher with a done context waited for a stuck subscriber")
	}
	// A patient publisher loses nothing once the subscriber moves again.
	close(release)
	for len(got) > 0 {
		<-got
	}
	before := b.Dropped()
	for i := int64(1); i <= 50; i++ {
		_ = b.Publish(context.Background(), chat.Event{Pos: i})
	}
	for i := int64(1); i <= 50; {
		e := <-got
		if e.Pos == 0 {
			continue // left over from the first part
		}
		if e.Pos != i {
			t.Fatalf("got event %d, want %d", e.Pos, i)
		}
		i++
	}
	if b.Dropped() != before {
		t.Fatal("a patient publisher's events were dropped")
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

func TestBus_OnDropReportsTheDroppedEventBeforePublishReturns(t *testing.T) {
	var reported []chat.Event // only the publishing goroutine writes it
	b := NewBus(BusOptions{QueueSize: 1, OnDrop: func(e chat.Event) { reported = append(reported, e) }})
	release := make(chan struct{})
	got := make(chan int64, 10)
	cancel, err := b.Subscribe(context.Background(), func(e chat.Event) { <-release; got <- e.Pos })
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	defer close(release)
	// The handler holds event 1; event 2 fills the queue of one (a patient
	// publisher waits for the handler to take event 1 first).
	for pos := int64(1); pos <= 2; pos++ {
		if err := b.Publish(context.Background(), chat.Event{Kind: chat.EventReceipt, Pos: pos}); err != nil {
			t.Fatal(err)
		}
	}
	if len(reported) != 0 {
		t.Fatalf("events that reached the queue were reported dropped: %v", reported)
	}
	// A publisher that gives up drops event 3, and has reported it by the
	// time Publish returns, before it can publish anything else.
	ctx, stop := context.WithCancel(context.Background())
	stop()
	if err := b.Publish(ctx, chat.Event{Kind: chat.EventReceipt, Pos: 3}); err != nil {
		t.Fatal(err)
	}
	if len(reported) != 1 || reported[0].Pos != 3 {
		t.Fatalf("reported %v when Publish returned, want event 3", reported)
	}
	if b.Dropped() != 1 {
		t.Fatalf("Dropped = %d, want 1", b.Dropped())
	}
}

func TestBus_ReportLossReachesOnDropBeforeItReturns(t *testing.T) {
	var reported atomic.Int64 // OnDrop calls so far
	var last atomic.Pointer[chat.Event]
	b := NewBus(BusOptions{OnDrop: func(e chat.Event) { last.Store(&e); reported.Add(1) }})
	// The subscriber notes how many losses had been reported when each
	// event reached it.
	seen := make(chan int64, 10)
	cancel, err := b.Subscribe(context.Background(), func(chat.Event) { seen <- reported.Load() })
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()

	b.ReportLoss()
	if n := reported.Load(); n != 1 {
		t.Fatalf("OnDrop was called %d times when ReportLoss returned, want once", n)
	}
	if e := last.Load(); e.Pos != 0 || e.Kind != "" {
		t.Fatalf("ReportLoss reported %+v, want an empty event (no position)", *e)
	}
	if err := b.Publish(context.Background(), chat.Event{Kind: chat.EventReceipt, Pos: 7}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-seen:
		if n != 1 {
			t.Fatalf("the event published after ReportLoss reached the subscriber with %d losses reported, want 1", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the event published after ReportLoss never arrived")
	}
	if d := b.Dropped(); d != 0 {
		t.Fatalf("Dropped = %d after ReportLoss, want 0 (the bus itself lost nothing)", d)
	}
}

func TestBus_ReportLossWithoutOnDropDoesNothing(t *testing.T) {
	b := New(0)
	b.ReportLoss()
	if d := b.Dropped(); d != 0 {
		t.Fatalf("Dropped = %d, want 0", d)
	}
}
