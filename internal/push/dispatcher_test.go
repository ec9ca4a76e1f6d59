package push_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/membus"
	"github.com/natter-chat/natter/internal/push"
	"github.com/natter-chat/natter/internal/sqlite"
)

// fakeSender answers from a script, then with the last answer.
type fakeSender struct {
	mu      sync.Mutex
	answers []error
	got     []push.Payload
	calls   chan struct{}
}

func (f *fakeSender) Send(_ context.Context, _ chat.PushSubscription, p push.Payload) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, p)
	err := f.answers[0]
	if len(f.answers) > 1 {
		f.answers = f.answers[1:]
	}
	f.calls <- struct{}{}
	return err
}

// outcomes counts Observe results.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) observe(_ chat.PushKind, result string) {
	o.mu.Lock()
	o.n[result]++
	o.mu.Unlock()
}

func (o *outcomes) get(result string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[result]
}

// fixture is a store with ann and bob in a group; bob has an APNs
// subscription and nobody is connected.
type fixture struct {
	store *sqlite.Store
	conv  chat.Conversation
	other chat.Conversation // a second group of ann and bob
	ann   chat.User
	bob   chat.User
	sess  chat.SessionID // bob's
	sub   chat.PushSubscription
	ids   *chattest.IDs
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "natter.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := &fixture{store: s, ids: chattest.NewIDs()}
	f.ann = chattest.MustCreateUser(t, s, f.ids, "ann")
	f.bob = chattest.MustCreateUser(t, s, f.ids, "bob")
	sess := chat.Session{ID: chat.SessionID(f.ids.NextID()), User: f.bob.ID, CreatedAt: time.Now(), LastUsedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateSession(t.Context(), sess, "h"); err != nil {
		t.Fatal(err)
	}
	f.sess = sess.ID
	f.conv = chattest.MustCreateGroup(t, s, f.ids, f.ann.ID, f.bob.ID)
	f.other = chattest.MustCreateGroup(t, s, f.ids, f.ann.ID, f.bob.ID)
	f.sub, err = s.CreatePushSubscription(t.Context(), chat.PushSubscription{
		ID: chat.PushSubscriptionID(f.ids.NextID()), User: f.bob.ID, Session: sess.ID, Kind: chat.PushAPNs, Endpoint: "aabb", CreatedAt: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// run starts a dispatcher with sender for APNs and returns it.
func (f *fixture) run(t *testing.T, sender push.Sender, o *outcomes, mutate func(*push.Options)) *push.Dispatcher {
	t.Helper()
	presence := membus.NewPresence(membus.PresenceOptions{})
	t.Cleanup(presence.Close)
	opts := push.Options{
		Store: f.store, Push: f.store, Presence: presence, Senders: map[chat.PushKind]push.Sender{chat.PushAPNs: sender},
		RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, MaxAttempts: 3, Observe: o.observe,
	}
	if mutate != nil {
		mutate(&opts)
	}
	d := push.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

func (f *fixture) send(t *testing.T, d *push.Dispatcher, conv chat.ConversationID, text string) chat.Message {
	t.Helper()
	m := chattest.MustAppend(t, f.store, f.ids, conv, f.ann.ID, text, chattest.At(0))
	d.Notify(chat.Event{Kind: chat.EventMessage, Conv: m.Conv, Message: &m})
	return m
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestDispatcher_RetriesTransientFailures(t *testing.T) {
	t.Run("a delivery that fails twice then succeeds is sent and recorded", func(t *testing.T) {
		f := newFixture(t)
		retry := &push.RetryError{Err: errors.New("503")}
		sender := &fakeSender{answers: []error{retry, retry, nil}, calls: make(chan struct{}, 10)}
		o := &outcomes{n: map[string]int{}}
		d := f.run(t, sender, o, nil)
		f.send(t, d, f.conv.ID, "hello")
		waitFor(t, "the delivery", func() bool { return o.get("sent") == 1 })
		if o.get("retry") != 2 || len(sender.calls) != 3 {
			t.Errorf("retries %d, calls %d; want 2 and 3", o.get("retry"), len(sender.calls))
		}
		waitFor(t, "last_success", func() bool {
			subs, _ := f.store.ListPushSubscriptions(t.Context(), f.bob.ID)
			return len(subs) == 1 && !subs[0].LastSuccess.IsZero()
		})
	})
	t.Run("a delivery that keeps failing is dropped after MaxAttempts", func(t *testing.T) {
		f := newFixture(t)
		sender := &fakeSender{answers: []error{&push.RetryError{Err: errors.New("429")}}, calls: make(chan struct{}, 10)}
		o := &outcomes{n: map[string]int{}}
		d := f.run(t, sender, o, nil)
		f.send(t, d, f.conv.ID, "hello")
		waitFor(t, "the drop", func() bool { return o.get("failed") == 1 })
		if o.get("retry") != 2 || len(sender.calls) != 3 {
			t.Errorf("retries %d, calls %d; want 2 and 3", o.get("retry"), len(sender.calls))
		}
	})
	t.Run("a permanent failure is not retried", func(t *testing.T) {
		f := newFixture(t)
		sender := &fakeSender{answers: []error{errors.New("400 PayloadTooLarge")}, calls: make(chan struct{}, 10)}
		o := &outcomes{n: map[string]int{}}
		d := f.run(t, sender, o, nil)
		f.send(t, d, f.conv.ID, "hello")
		waitFor(t, "the drop", func() bool { return o.get("failed") == 1 })
		if o.get("retry") != 0 || len(sender.calls) != 1 {
			t.Errorf("retries %d, calls %d; want 0 and 1", o.get("retry"), len(sender.calls))
		}
	})
}

func TestDispatcher_DeletesGoneSubscriptions(t *testing.T) {
	f := newFixture(t)
	sender := &fakeSender{answers: []error{push.ErrGone}, calls: make(chan struct{}, 10)}
	o := &outcomes{n: map[string]int{}}
	d := f.run(t, sender, o, nil)
	f.send(t, d, f.conv.ID, "hello")
	waitFor(t, "the deletion", func() bool {
		subs, err := f.store.ListPushSubscriptions(t.Context(), f.bob.ID)
		return err == nil && len(subs) == 0
	})
	if o.get("gone") != 1 {
		t.Errorf("gone counted %d times, want 1", o.get("gone"))
	}
}

func TestDispatcher_CollapsesBurstsIntoASummary(t *testing.T) {
	f := newFixture(t)
	sender := &fakeSender{answers: []error{nil}, calls: make(chan struct{}, 10)}
	o := &outcomes{n: map[string]int{}}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	// One worker takes messages in order: once the sentinel's notification
	// is out, every message of the burst has been looked at.
	d := f.run(t, sender, o, func(opts *push.Options) { opts.Now = clock; opts.FlushEvery = time.Millisecond; opts.Workers = 1 })
	var last chat.Message
	for i := range 5 {
		last = f.send(t, d, f.conv.ID, "burst "+string(rune('a'+i)))
	}
	sentinel := f.send(t, d, f.other.ID, "elsewhere")
	waitFor(t, "the sentinel's notification", func() bool { return o.get("sent") == 2 })
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()
	waitFor(t, "the summary", func() bool { return o.get("sent") == 3 })
	sender.mu.Lock()
	defer sender.mu.Unlock()
	first, other, summary := sender.got[0], sender.got[1], sender.got[2]
	if first.Count != 1 || first.Body != "ann: burst a" || first.Title != "group" {
		t.Errorf("first notification %+v", first)
	}
	if other.MessageID != sentinel.ID.String() {
		t.Errorf("second notification %+v; want the sentinel's (the burst gave more than one within the interval)", other)
	}
	if summary.Count != 4 || summary.MessageID != last.ID.String() || summary.Body != "ann: burst e" {
		t.Errorf("summary %+v; want count 4 for the newest message %s", summary, last.ID)
	}
}
