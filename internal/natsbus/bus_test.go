package natsbus

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/natstest"
)

// newBus returns a bus on a connection of its own (a node).
func (env *testEnv) newBus(t *testing.T, opts Options) *Bus {
	t.Helper()
	opts.Prefix = env.prefix
	b, err := New(env.connect(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// collect subscribes to b and returns the channel of received events.
func collect(t *testing.T, b *Bus, size int) <-chan chat.Event {
	t.Helper()
	got := make(chan chat.Event, size)
	cancel, err := b.Subscribe(context.Background(), func(e chat.Event) { got <- e })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return got
}

// receive returns the next event from got, failing after 10s.
func receive(t *testing.T, got <-chan chat.Event, what string) chat.Event {
	t.Helper()
	select {
	case e := <-got:
		return e
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never arrived", what)
		return chat.Event{}
	}
}

func TestBus_EveryNodeReceivesEveryEventInPublishOrder(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		a, b := env.newBus(t, Options{}), env.newBus(t, Options{})
		const n = 1000
		got := []<-chan chat.Event{collect(t, a, n), collect(t, b, n)}
		ctx := context.Background()
		for i := int64(1); i <= n; i++ {
			if err := a.Publish(ctx, chat.Event{Kind: chat.EventReceipt, Conv: 42, Pos: i}); err != nil {
				t.Fatal(err)
			}
		}
		for node, ch := range got {
			for want := int64(1); want <= n; want++ {
				if e := receive(t, ch, "event"); e.Pos != want || e.Conv != 42 {
					t.Fatalf("node %d: got event %d of conversation %d, want %d of 42", node, e.Pos, e.Conv, want)
				}
			}
		}
		// Events travel the other way too, and user events reach everyone.
		revoked := chat.Event{Kind: chat.EventSessionRevoked, Users: []chat.UserID{7}, Session: 9}
		if err := b.Publish(ctx, revoked); err != nil {
			t.Fatal(err)
		}
		for node, ch := range got {
			if diff := cmp.Diff(revoked, receive(t, ch, "session_revoked")); diff != "" {
				t.Errorf("node %d (-want +got):\n%s", node, diff)
			}
		}
		for name, bus := range map[string]*Bus{"a": a, "b": b} {
			// The count goes up once the handler has returned, a moment
			// after the test received the event.
			waitUntil(t, 10*time.Second, "node "+name+" to count every event delivered", func() bool { return bus.Stats().Delivered >= n+1 })
			if s := bus.Stats(); s.Dropped != 0 || s.DecodeErrors != 0 || s.Delivered != n+1 {
				t.Errorf("node %s: %+v, want %d delivered and nothing lost", name, s, n+1)
			}
		}
	})
}

// fullEvent returns an event with every field set, down to the entities it
// carries, so that a field the encoding loses shows up in a diff.
func fullEvent(t *testing.T) chat.Event {
	at := time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)
	e := chat.Event{
		Kind: chat.EventMessageUpdated, Conv: 7, Session: 3, Typing: true, Pos: 99, Origin: 1 << 62,
		Users: []chat.UserID{1, 2},
		Message: &chat.Message{ID: 11, Conv: 7, Seq: 5, Sender: 1, ClientID: "c-1", Text: "héllo 👋", SentAt: at,
			ReplyTo: 10, Mentions: []chat.UserID{2}, EditedAt: at.Add(time.Second), DeletedAt: at.Add(2 * time.Second),
			Reactions: []chat.Reaction{{Emoji: "👍", Users: []chat.UserID{1, 2}}}, Pos: 98,
			Attachments: []chat.Attachment{{ID: "a1b2", Conv: 7, Uploader: 1, State: chat.AttachmentReady, Name: "cat.jpg",
				Declared: "image/jpeg", ContentType: "image/jpeg", Size: 1234, Received: 1234,
				Parts: []chat.Part{{Start: 0, End: 1234, Key: "p1"}}, SHA256: "abcd", Width: 640, Height: 480,
				ContentKey: "c1", ThumbnailKey: "t1", Message: 11, Index: 1, CreatedAt: at, DurationMS: 1500}}},
		Conversation: &chat.Conversation{ID: 7, Kind: chat.KindGroup, Title: "t", CreatedBy: 1, CreatedAt: at, LastSeq: 5, Pos: 97},
		Member:       &chat.Member{Conv: 7, User: 2, Role: chat.RoleAdmin, JoinedAt: at, ReadSeq: 4, DeliveredSeq: 5, Pos: 96},
		Profile: &chat.Profile{User: 2, Username: "bo", DisplayName: "Bo", StatusText: "here", Avatar: "a1b2",
			CreatedAt: at, UpdatedAt: at.Add(time.Second), DeletedAt: at.Add(2 * time.Second)},
		Setting: &chat.SettingChange{What: chat.SettingBlock, Conv: 7, Level: chat.NotifyMentions, User: 2, On: true,
			Push: chat.PushSettings{HideText: true}},
	}
	var check func(path string, v reflect.Value)
	check = func(path string, v reflect.Value) {
		if v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct || v.Type() == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.IsExported() && v.Field(i).IsZero() {
				t.Fatalf("fullEvent leaves %s.%s zero: set it so the test checks its encoding", path, f.Name)
			}
			check(path+"."+f.Name, v.Field(i))
		}
	}
	check("Event", reflect.ValueOf(e))
	return e
}

func TestBus_EncodesEveryFieldAndUsesTheDocumentedSubjects(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		a := env.newBus(t, Options{})
		raw := env.connect(t)
		conv, err := raw.SubscribeSync(env.prefix + ".conv.7")
		if err != nil {
			t.Fatal(err)
		}
		user, err := raw.SubscribeSync(env.prefix + ".user.5")
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.Flush(); err != nil {
			t.Fatal(err)
		}
		got := collect(t, env.newBus(t, Options{}), 10)

		want := fullEvent(t)
		if err := a.Publish(context.Background(), want); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, receive(t, got, "the event")); diff != "" {
			t.Errorf("received event (-want +got):\n%s", diff)
		}
		if _, err := conv.NextMsg(5 * time.Second); err != nil {
			t.Errorf("nothing on %s.conv.7: %v", env.prefix, err)
		}
		if err := a.Publish(context.Background(), chat.Event{Kind: chat.EventSessionRevoked, Users: []chat.UserID{5}, Session: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := user.NextMsg(5 * time.Second); err != nil {
			t.Errorf("nothing on %s.user.5: %v", env.prefix, err)
		}
	})
}

func TestBus_PublishRejectsEventWithoutConversationOrUser(t *testing.T) {
	env := newEnv(t, natstest.Start(t), false)
	b := env.newBus(t, Options{})
	err := b.Publish(context.Background(), chat.Event{Kind: chat.EventSessionRevoked})
	if chat.ErrorCode(err) != chat.CodeInvalidArgument {
		t.Errorf("Publish = %v, want %s", err, chat.CodeInvalidArgument)
	}
}

func TestNew_RejectsBadOptions(t *testing.T) {
	nc := newEnv(t, natstest.Start(t), false).connect(t)
	tests := []struct {
		name string
		opts Options
	}{
		{"prefix with a dot", Options{Prefix: "a.b"}},
		{"prefix with a wildcard", Options{Prefix: "*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(nc, tt.opts); chat.ErrorCode(err) != chat.CodeInvalidArgument {
				t.Errorf("New = %v, want %s", err, chat.CodeInvalidArgument)
			}
		})
	}
	if _, err := New(nil, Options{}); chat.ErrorCode(err) != chat.CodeInvalidArgument {
		t.Errorf("New(nil) = %v, want %s", err, chat.CodeInvalidArgument)
	}
}

func TestBus_CancelStopsDelivery(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		b := env.newBus(t, Options{})
		var calls atomic.Int64
		cancel, err := b.Subscribe(context.Background(), func(chat.Event) { calls.Add(1) })
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		cancel() // idempotent
		witness := collect(t, env.newBus(t, Options{}), 10)
		if err := b.Publish(context.Background(), chat.Event{Kind: chat.EventTyping, Conv: 1, Users: []chat.UserID{1}}); err != nil {
			t.Fatal(err)
		}
		receive(t, witness, "the event at another subscriber")
		if n := calls.Load(); n != 0 {
			t.Errorf("handler called %d times after cancel returned", n)
		}
	})
}

func TestBus_ContextDoneEndsSubscription(t *testing.T) {
	env := newEnv(t, natstest.Start(t), false)
	nc := env.connect(t)
	b, err := New(nc, Options{Prefix: env.prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	cancel, err := b.Subscribe(ctx, func(chat.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	if n, s := nc.NumSubscriptions(), b.Stats().Subscriptions; n != 1 || s != 1 {
		t.Fatalf("%d NATS subscriptions, Stats says %d; want 1", n, s)
	}
	stop()
	waitUntil(t, 5*time.Second, "the NATS subscription outlived its context", func() bool {
		return nc.NumSubscriptions() == 0 && b.Stats().Subscriptions == 0
	})
	if _, err := b.Subscribe(ctx, func(chat.Event) {}); err == nil {
		t.Error("Subscribe with a done context succeeded")
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestBus_SlowSubscriberLossIsCountedLoggedAndReported(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		var logs syncBuffer
		var reported atomic.Int64
		slowConsumer := make(chan struct{}, 1)
		nc := env.connect(t, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				select {
				case slowConsumer <- struct{}{}:
				default:
				}
			}
		}))
		slow, err := New(nc, Options{
			Prefix:    env.prefix,
			QueueSize: 8,
			Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
			OnLoss:    func(n int) { reported.Add(int64(n)) },
		})
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		got := make(chan chat.Event, 1000)
		cancel, err := slow.Subscribe(context.Background(), func(e chat.Event) { <-release; got <- e })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cancel)
		t.Cleanup(func() {
			select {
			case <-release:
			default:
				close(release)
			}
		})

		pub := env.newBus(t, Options{})
		const n = 200
		for i := int64(1); i <= n; i++ {
			if err := pub.Publish(context.Background(), chat.Event{Kind: chat.EventReceipt, Conv: 1, Pos: i}); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-slowConsumer: // NATS dropped events while the handler was stuck
		case <-time.After(10 * time.Second):
			t.Fatal("NATS never declared the stuck subscriber a slow consumer")
		}
		close(release)
		// The loss is reported once the handler returns; what was not
		// dropped arrives, in order, and the counts add up.
		waitUntil(t, 10*time.Second, "the loss was never reported", func() bool { return reported.Load() > 0 })
		waitUntil(t, 10*time.Second, "delivered + dropped never reached the published count", func() bool {
			s := slow.Stats()
			return s.Delivered+s.Dropped == n
		})
		if s := slow.Stats(); s.Dropped != reported.Load() {
			t.Errorf("Stats().Dropped = %d, OnLoss reported %d", s.Dropped, reported.Load())
		}
		var last int64
		for len(got) > 0 {
			e := <-got
			if e.Pos <= last {
				t.Fatalf("event %d after %d", e.Pos, last)
			}
			last = e.Pos
		}
		if !strings.Contains(logs.String(), "dropped") {
			t.Errorf("no warning logged; logs:\n%s", logs.String())
		}
	})
}

// A node whose connection came back tells the others: what it published
// while away was dropped or is sent late, so their clients must catch up
// too. It does not react to its own notice.
func TestBus_ReconnectedNodeTellsTheOthers(t *testing.T) {
	eachServer(t, false, func(t *testing.T, env *testEnv) {
		var lossA, lossB atomic.Int64
		ncA := env.connect(t, nats.ReconnectWait(10*time.Millisecond))
		a, err := New(ncA, Options{Prefix: env.prefix, OnLoss: func(int) { lossA.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		b := env.newBus(t, Options{OnLoss: func(int) { lossB.Add(1) }})
		for _, bus := range []*Bus{a, b} {
			cancel, err := bus.Subscribe(context.Background(), func(chat.Event) {})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cancel)
		}
		if err := ncA.ForceReconnect(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 10*time.Second, "node B to hear of node A's reconnect", func() bool { return lossB.Load() > 0 })
		time.Sleep(2 * lossCheckInterval) // room for A to (wrongly) react to its own notice
		if n := lossA.Load(); n != 1 {
			t.Errorf("node A reported %d losses, want 1 (its own reconnect, not its notice)", n)
		}
		if n := lossB.Load(); n != 1 {
			t.Errorf("node B reported %d losses, want 1", n)
		}
	})
}
