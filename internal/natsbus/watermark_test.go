package natsbus

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/natstest"
)

// journal records, in order, what a subscription handed on.
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, s)
}

func (j *journal) snapshot() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.entries...)
}

// subscribeJournal subscribes a bus of its own that records events,
// watermarks and losses in one journal.
func subscribeJournal(t *testing.T, env *testEnv) *journal {
	t.Helper()
	j := &journal{}
	b := env.newBus(t, Options{
		OnWatermark: func(w Watermark) { j.add(fmt.Sprintf("mark %d %s %d %v", w.Node, w.Holder, w.Pos, w.Final)) },
		OnLoss:      func(n int) { j.add(fmt.Sprintf("loss %d", n)) },
	})
	cancel, err := b.Subscribe(context.Background(), func(e chat.Event) { j.add(fmt.Sprintf("event %d", e.Pos)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return j
}

// A node's watermarks reach every subscription in order with its events:
// whatever was published before a watermark has been handed on when the
// watermark is.
func TestBus_WatermarksArriveInOrderWithEvents(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		j := subscribeJournal(t, env)
		pub := env.newBus(t, Options{})
		ctx := context.Background()
		var want []string
		for i := int64(1); i <= 300; i++ {
			if err := pub.Publish(ctx, chat.Event{Kind: chat.EventReceipt, Conv: 1, Pos: i}); err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprintf("event %d", i))
			if i%30 == 0 {
				if err := pub.PublishWatermark(ctx, Watermark{Node: 4, Holder: "h", Pos: i}); err != nil {
					t.Fatal(err)
				}
				want = append(want, fmt.Sprintf("mark 4 h %d false", i))
			}
		}
		if err := pub.PublishWatermark(ctx, Watermark{Node: 4, Holder: "h", Final: true}); err != nil {
			t.Fatal(err)
		}
		want = append(want, "mark 4 h 0 true")
		waitUntil(t, 10*time.Second, "everything to arrive", func() bool { return len(j.snapshot()) >= len(want) })
		got := j.snapshot()
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("entry %d is %q, want %q (nothing lost, nothing reordered)", i, got[i], want[i])
			}
		}
		if len(got) != len(want) {
			t.Errorf("%d entries, want %d: %v", len(got), len(want), got[len(want):])
		}
	})
}

// An event that could not be handed to NATS still uses up its number, so
// that every subscription reports the loss before it hands on the
// publisher's next message (here, a watermark that would vouch for the
// lost event). A watermark that could not be sent uses up none.
func TestBus_LostPublishIsReportedBeforeTheNextMessage(t *testing.T) {
	env := newEnv(t, natstest.Start(t), false)
	j := subscribeJournal(t, env)
	pub := env.newBus(t, Options{})
	ctx := context.Background()
	if err := pub.Publish(ctx, chat.Event{Kind: chat.EventReceipt, Conv: 1, Pos: 1}); err != nil {
		t.Fatal(err)
	}
	if err := pub.send("", []byte(`{"Kind":"receipt"}`), false); err == nil { // a watermark NATS refused
		t.Fatal("publishing on an empty subject succeeded")
	}
	if err := pub.PublishWatermark(ctx, Watermark{Node: 1, Holder: "h", Pos: 1}); err != nil {
		t.Fatal(err)
	}
	if err := pub.send("", []byte(`{"Kind":"receipt"}`), true); err == nil { // an event NATS refused
		t.Fatal("publishing on an empty subject succeeded")
	}
	if err := pub.PublishWatermark(ctx, Watermark{Node: 1, Holder: "h", Pos: 2}); err != nil {
		t.Fatal(err)
	}
	want := []string{"event 1", "mark 1 h 1 false", "loss 0", "mark 1 h 2 false"}
	waitUntil(t, 10*time.Second, "everything to arrive", func() bool { return len(j.snapshot()) >= len(want) })
	got := j.snapshot()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("journal %v, want %v", got, want)
		}
	}
	if pub.Stats().Gaps != 0 {
		t.Errorf("the publisher counted gaps")
	}
}

// An event that Publish gives up on before sending (its context ended, or
// it cannot be encoded) is a committed change the subscribers will not
// get: it shows as a gap before the next message too.
func TestBus_EventNotSentIsReportedBeforeTheNextMessage(t *testing.T) {
	env := newEnv(t, natstest.Start(t), false)
	j := subscribeJournal(t, env)
	pub := env.newBus(t, Options{})
	ctx := context.Background()
	if err := pub.Publish(ctx, chat.Event{Kind: chat.EventReceipt, Conv: 1, Pos: 1}); err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := pub.Publish(done, chat.Event{Kind: chat.EventReceipt, Conv: 1, Pos: 2}); err == nil {
		t.Fatal("publishing with an ended context succeeded")
	}
	if err := pub.Publish(ctx, chat.Event{Kind: chat.EventReceipt}); err == nil { // neither conversation nor user
		t.Fatal("publishing an event without a subject succeeded")
	}
	if err := pub.PublishWatermark(ctx, Watermark{Node: 1, Holder: "h", Pos: 3}); err != nil {
		t.Fatal(err)
	}
	want := []string{"event 1", "loss 0", "mark 1 h 3 false"}
	waitUntil(t, 10*time.Second, "everything to arrive", func() bool { return len(j.snapshot()) >= len(want) })
	got := j.snapshot()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("journal %v, want %v", got, want)
		}
	}
}

// A watermark is never buffered for later: while the connection is not up,
// PublishWatermark fails with unavailable.
func TestBus_PublishWatermarkNeedsTheConnection(t *testing.T) {
	env := newEnv(t, natstest.Start(t), false)
	nc := env.connect(t)
	b, err := New(nc, Options{Prefix: env.prefix})
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := b.PublishWatermark(context.Background(), Watermark{Node: 1, Holder: "h", Pos: 1}); chat.ErrorCode(err) != chat.CodeUnavailable {
		t.Errorf("PublishWatermark on a closed connection = %v, want unavailable", err)
	}
}

// Node leases as WatchNodes sees them: the existing ones before it
// returns, then refreshes, new ones and releases, each with its holder.
func TestWatchNodes_ReportsLeasesAndReleases(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		first, err := AcquireNodeID(leaseCtx(t), env.connect(t), LeaseOptions{Bucket: env.bucket, Want: 3, TTL: 3 * time.Second, Refresh: time.Second / 2})
		if err != nil {
			t.Fatal(err)
		}
		defer first.Close()
		var mu sync.Mutex
		var changes []NodeChange
		w, err := WatchNodes(leaseCtx(t), env.connect(t), NodeWatchOptions{Bucket: env.bucket, OnChange: func(ch NodeChange) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, ch)
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		has := func(want NodeChange) func() bool {
			return func() bool {
				mu.Lock()
				defer mu.Unlock()
				for _, ch := range changes {
					if ch == want {
						return true
					}
				}
				return false
			}
		}
		if !has(NodeChange{Node: 3, Holder: first.Holder()})() {
			t.Fatalf("the existing lease was not reported before WatchNodes returned: %v", changes)
		}
		if w.TTL() != 3*time.Second {
			t.Errorf("TTL() = %v, want the bucket's 3s", w.TTL())
		}
		mu.Lock()
		n := len(changes)
		mu.Unlock()
		waitUntil(t, 10*time.Second, "a refresh of the lease", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(changes) > n
		})
		second, err := AcquireNodeID(leaseCtx(t), env.connect(t), LeaseOptions{Bucket: env.bucket, Want: 9, TTL: 3 * time.Second, Refresh: time.Second / 2})
		if err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 10*time.Second, "the new lease", has(NodeChange{Node: 9, Holder: second.Holder()}))
		second.Close()
		waitUntil(t, 10*time.Second, "the release", has(NodeChange{Node: 9, Released: true}))
	})
}
