package natsbus

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// idleWatch is a subscription under test with the PublisherIdle it was
// given, and a bus on another connection that probes it.
type idleWatch struct {
	j     *journal
	sub   *Bus
	probe *Bus
	n     int64 // the Pos of the probe's last event
}

func newIdleWatch(t *testing.T, env *testEnv, idle time.Duration) *idleWatch {
	t.Helper()
	w := &idleWatch{j: &journal{}, n: 1000}
	w.sub = env.newBus(t, Options{PublisherIdle: idle, OnLoss: func(n int) { w.j.add(fmt.Sprintf("loss %d", n)) }})
	cancel, err := w.sub.Subscribe(context.Background(), func(e chat.Event) { w.j.add(fmt.Sprintf("event %d", e.Pos)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	w.probe = env.newBus(t, Options{})
	return w
}

// publish publishes the event at pos from pub and returns what the
// subscription recorded from then on, up to and including that event.
func (w *idleWatch) publish(t *testing.T, pub *Bus, pos int64) []string {
	t.Helper()
	from := len(w.j.snapshot())
	if err := pub.Publish(context.Background(), chat.Event{Kind: chat.EventReceipt, Conv: 1, Pos: pos}); err != nil {
		t.Fatal(err)
	}
	return w.until(t, from, fmt.Sprintf("event %d", pos))
}

// until waits for entry in the journal after index from and returns the
// entries from from to it.
func (w *idleWatch) until(t *testing.T, from int, entry string) []string {
	t.Helper()
	var got []string
	waitUntil(t, 20*time.Second, entry+" to be handed on", func() bool {
		got = w.j.snapshot()[from:]
		return slices.Contains(got, entry)
	})
	return got[:slices.Index(got, entry)+1]
}

// remembers reports whether the subscription still knows where pub's
// sequence stands. It sends, on the probe's connection, the notice a node
// sends after its own reconnect, in pub's name: a subscription ignores it
// from a publisher whose sequence it follows (losses show there as gaps),
// and reports a loss otherwise. An event of the probe follows on the same
// connection, so once that is handed on the notice has been handled.
func (w *idleWatch) remembers(t *testing.T, pub *Bus) bool {
	t.Helper()
	from := len(w.j.snapshot())
	if err := w.probe.nc.Publish(w.sub.controlLost, []byte(pub.id)); err != nil {
		t.Fatal(err)
	}
	w.n++
	if err := w.probe.Publish(context.Background(), chat.Event{Kind: chat.EventReceipt, Conv: 1, Pos: w.n}); err != nil {
		t.Fatal(err)
	}
	got := w.until(t, from, fmt.Sprintf("event %d", w.n))
	return !slices.Contains(got, "loss 0")
}

// A publisher that falls silent for less than PublisherIdle (several of
// the subscription's sweeps pass meanwhile) is still followed: when it
// comes back after losing a message, the loss is reported before its next
// message is handed on. In a cluster the app sets PublisherIdle to at
// least twice the node id lease TTL, the longest a live node can be away.
func TestBus_PublisherSilentLessThanIdleIsStillGapChecked(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		w := newIdleWatch(t, env, time.Minute)
		pub := env.newBus(t, Options{})
		if got := w.publish(t, pub, 1); !slices.Equal(got, []string{"event 1"}) {
			t.Fatalf("the first event gave %v", got)
		}
		pub.ReportLoss() // its next message is lost on the way
		// The silence under test, not a wait for an event: the
		// subscription sweeps its publishers every lossCheckInterval.
		time.Sleep(3 * lossCheckInterval)
		if !w.remembers(t, pub) {
			t.Fatalf("the subscription forgot a publisher silent for %v, with PublisherIdle %v", 3*lossCheckInterval, time.Minute)
		}
		if got := w.publish(t, pub, 2); !slices.Equal(got, []string{"loss 0", "event 2"}) {
			t.Errorf("the publisher's return after a lost message gave %v, want the loss reported before its event", got)
		}
		if g := w.sub.Stats().Gaps; g != 1 {
			t.Errorf("Stats().Gaps = %d, want 1", g)
		}
	})
}

// A publisher silent for longer than PublisherIdle is forgotten, and not
// before: its return is taken as a first message, so a message it lost
// while away goes unseen (the documented cost of forgetting). In a cluster
// this cannot hide a change: a node that cannot refresh its node id lease
// stops itself before the lease expires, and one silent for its lease TTL
// is treated as gone by the others, whose clients are told to reconnect
// and catch up (see the app's cursorClock). PublisherIdle, at least twice
// that TTL, only bounds what a subscription remembers of dead publishers.
// Once heard again, the publisher is followed afresh.
func TestBus_PublisherSilentLongerThanIdleIsForgotten(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		const idle = 2 * lossCheckInterval
		w := newIdleWatch(t, env, idle)
		pub := env.newBus(t, Options{})
		start := time.Now()
		if got := w.publish(t, pub, 1); !slices.Equal(got, []string{"event 1"}) {
			t.Fatalf("the first event gave %v", got)
		}
		pub.ReportLoss() // its next message is lost on the way

		deadline := time.Now().Add(idle + 20*time.Second)
		for w.remembers(t, pub) {
			if time.Now().After(deadline) {
				t.Fatalf("the subscription still follows a publisher silent for %v, with PublisherIdle %v", time.Since(start), idle)
			}
			<-time.After(100 * time.Millisecond) // polling interval, not a wait for an event
		}
		if silent := time.Since(start); silent < idle {
			t.Fatalf("the subscription forgot a publisher silent for %v, less than PublisherIdle %v", silent, idle)
		}

		if got := w.publish(t, pub, 2); !slices.Equal(got, []string{"event 2"}) {
			t.Errorf("the forgotten publisher's return gave %v, want its event alone (the gap is no longer seen)", got)
		}
		if g := w.sub.Stats().Gaps; g != 0 {
			t.Errorf("Stats().Gaps = %d, want 0", g)
		}
		pub.ReportLoss()
		if got := w.publish(t, pub, 3); !slices.Equal(got, []string{"loss 0", "event 3"}) {
			t.Errorf("a loss after the return gave %v, want it reported before the next event", got)
		}
	})
}
