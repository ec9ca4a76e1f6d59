package push_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/jobs"
	"github.com/natter-chat/natter/internal/push"
)

// heldJobs is the in-process runner with two additions: it records every
// job queued, and it holds every job until release is closed, so that a
// test can change things between planning and delivery.
type heldJobs struct {
	*jobs.Memory
	release chan struct{}

	mu     sync.Mutex
	queued [][]byte
}

func newHeldJobs() *heldJobs {
	return &heldJobs{Memory: jobs.NewMemory(jobs.MemoryOptions{}), release: make(chan struct{})}
}

func (h *heldJobs) Enqueue(ctx context.Context, kind string, payload []byte) error {
	h.mu.Lock()
	h.queued = append(h.queued, payload)
	h.mu.Unlock()
	return h.Memory.Enqueue(ctx, kind, payload)
}

func (h *heldJobs) Handle(kind string, fn jobs.Handler, opts jobs.Options) {
	h.Memory.Handle(kind, func(ctx context.Context, payload []byte) error {
		select {
		case <-h.release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return fn(ctx, payload)
	}, opts)
}

// jobs returns the payloads queued so far.
func (h *heldJobs) jobs() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.queued...)
}

// runHeld starts a dispatcher on f whose deliveries go through h (run
// until the test ends).
func (f *fixture) runHeld(t *testing.T, h *heldJobs, sender push.Sender, o *outcomes, mutate func(*push.Options)) *push.Dispatcher {
	t.Helper()
	d := f.run(t, sender, o, func(opts *push.Options) {
		opts.Jobs = h
		opts.Senders[chat.PushWebPush] = sender
		if mutate != nil {
			mutate(opts)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

func TestDispatcher_QueuesOnlyIDs(t *testing.T) {
	f := newFixture(t)
	p256dh := make([]byte, 65)
	p256dh[0] = 4
	for i := 1; i < len(p256dh); i++ {
		p256dh[i] = byte(0xA0 + i%16)
	}
	auth := []byte("auth-secret-0123")
	endpoint := "https://push.example/send/capability-7f3a9c"
	web, err := f.store.CreatePushSubscription(t.Context(), chat.PushSubscription{
		ID: chat.PushSubscriptionID(f.ids.NextID()), User: f.bob.ID, Session: f.sess, Kind: chat.PushWebPush,
		Endpoint: endpoint, P256dh: p256dh, Auth: auth, CreatedAt: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	h := newHeldJobs()
	sender := &fakeSender{answers: []error{nil}, calls: make(chan struct{}, 10)}
	o := &outcomes{n: map[string]int{}}
	d := f.runHeld(t, h, sender, o, nil)
	m := f.send(t, d, f.conv.ID, "the door code is 4711")
	waitFor(t, "two queued deliveries (APNs and Web Push)", func() bool { return len(h.jobs()) == 2 })

	secrets := map[string]string{
		"the message text": "4711", "the sender's name": f.ann.Username, "the conversation title": f.conv.Title,
		"the Web Push endpoint": "capability-7f3a9c", "the APNs token": f.sub.Endpoint,
		"p256dh (raw)": string(p256dh[1:]), "p256dh (base64)": base64.StdEncoding.EncodeToString(p256dh),
		"p256dh (base64url)": base64.RawURLEncoding.EncodeToString(p256dh),
		"auth (raw)":         string(auth), "auth (base64)": base64.StdEncoding.EncodeToString(auth),
		"auth (base64url)": base64.RawURLEncoding.EncodeToString(auth),
	}
	for _, job := range h.jobs() {
		for what, secret := range secrets {
			if strings.Contains(string(job), secret) {
				t.Errorf("a queued delivery holds %s (%q): %s", what, secret, job)
			}
		}
		var fields map[string]any
		if err := json.Unmarshal(job, &fields); err != nil {
			t.Fatalf("a queued delivery is not JSON: %s", job)
		}
		want := map[string]any{"user": f.bob.ID.String(), "conv": f.conv.ID.String(), "message": m.ID.String(), "count": 1.0}
		for k, v := range want {
			if fields[k] != v {
				t.Errorf("queued delivery %s: %q = %v, want %v", job, k, fields[k], v)
			}
		}
		if id := fields["subscription"]; id != web.ID.String() && id != f.sub.ID.String() {
			t.Errorf("queued delivery %s names subscription %v, want %s or %s", job, id, web.ID, f.sub.ID)
		}
	}

	close(h.release)
	waitFor(t, "both deliveries", func() bool { return o.get("sent") == 2 })
	sender.mu.Lock()
	defer sender.mu.Unlock()
	want := push.Payload{Conv: f.conv.ID.String(), Title: "group", Body: "ann: the door code is 4711", Count: 1, MessageID: m.ID.String()}
	for _, got := range sender.got {
		if got != want {
			t.Errorf("delivered %+v, want %+v (read from the store at delivery)", got, want)
		}
	}
}

// TestDispatcher_ReadsAtDelivery changes things after a delivery was
// queued and before it runs.
func TestDispatcher_ReadsAtDelivery(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, f *fixture, m chat.Message)
		result string        // the outcome counted
		want   *push.Payload // what the device gets (nil: nothing)
	}{
		{"a subscription deleted since is dropped quietly", func(t *testing.T, f *fixture, _ chat.Message) {
			mustDo(t, f.store.DeletePushSubscription(t.Context(), f.bob.ID, f.sub.ID))
		}, "gone", nil},
		{"a subscription whose session ended since is dropped quietly", func(t *testing.T, f *fixture, _ chat.Message) {
			mustDo(t, f.store.RevokeSession(t.Context(), f.bob.ID, f.sess, time.Now()))
		}, "gone", nil},
		{"a member removed since gets nothing", func(t *testing.T, f *fixture, _ chat.Message) {
			_, err := f.store.RemoveMember(t.Context(), f.conv.ID, f.bob.ID)
			mustDo(t, err)
		}, "skipped", nil},
		{"a conversation muted since gives nothing", func(t *testing.T, f *fixture, _ chat.Message) {
			mustDo(t, f.store.SetNotifyLevel(t.Context(), f.conv.ID, f.bob.ID, chat.NotifyNone))
		}, "skipped", nil},
		{"a message deleted since is not notified", func(t *testing.T, f *fixture, m chat.Message) {
			_, err := f.store.DeleteMessage(t.Context(), m.Conv, m.ID, time.Now())
			mustDo(t, err)
		}, "skipped", nil},
		{"hide_text set since leaves the text out", func(t *testing.T, f *fixture, _ chat.Message) {
			mustDo(t, f.store.UpdatePushSettings(t.Context(), f.bob.ID, chat.PushSettings{HideText: true}))
		}, "sent", &push.Payload{Title: "group"}},
		{"an edit and a rename since are what the notification says", func(t *testing.T, f *fixture, m chat.Message) {
			_, err := f.store.EditMessage(t.Context(), m.Conv, m.ID, "meet at eleven", nil, time.Now())
			mustDo(t, err)
			_, err = f.store.UpdateTitle(t.Context(), m.Conv, "weekend")
			mustDo(t, err)
		}, "sent", &push.Payload{Title: "weekend", Body: "ann: meet at eleven"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			h := newHeldJobs()
			sender := &fakeSender{answers: []error{nil}, calls: make(chan struct{}, 10)}
			o := &outcomes{n: map[string]int{}}
			d := f.runHeld(t, h, sender, o, nil)
			m := f.send(t, d, f.conv.ID, "meet at ten")
			waitFor(t, "the queued delivery", func() bool { return len(h.jobs()) == 1 })
			c.change(t, f, m)
			close(h.release)
			waitFor(t, "the outcome "+c.result, func() bool { return o.get(c.result) == 1 })
			sender.mu.Lock()
			defer sender.mu.Unlock()
			switch {
			case c.want == nil && len(sender.got) != 0:
				t.Fatalf("the device got %+v; want nothing", sender.got)
			case c.want != nil:
				want := *c.want
				want.Conv, want.Count, want.MessageID = f.conv.ID.String(), 1, m.ID.String()
				if len(sender.got) != 1 || sender.got[0] != want {
					t.Fatalf("the device got %+v; want %+v", sender.got, want)
				}
			}
		})
	}
}

func TestDispatcher_SummaryOfADeletedMessageHasNoText(t *testing.T) {
	f := newFixture(t)
	h := newHeldJobs()
	sender := &fakeSender{answers: []error{nil}, calls: make(chan struct{}, 10)}
	o := &outcomes{n: map[string]int{}}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	d := f.runHeld(t, h, sender, o, func(opts *push.Options) { opts.Now = clock; opts.FlushEvery = time.Millisecond; opts.Workers = 1 })
	first := f.send(t, d, f.conv.ID, "one")
	f.send(t, d, f.conv.ID, "two")
	last := f.send(t, d, f.conv.ID, "three, regretted")
	f.send(t, d, f.other.ID, "sentinel") // one worker: once it is queued, the burst was folded
	waitFor(t, "the first notification and the sentinel's", func() bool { return len(h.jobs()) == 2 })
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()
	waitFor(t, "the summary", func() bool { return len(h.jobs()) == 3 })
	if _, err := f.store.DeleteMessage(t.Context(), last.Conv, last.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	close(h.release)
	waitFor(t, "three deliveries", func() bool { return o.get("sent") == 3 })
	sender.mu.Lock()
	defer sender.mu.Unlock()
	var summary *push.Payload
	for i, p := range sender.got {
		if p.MessageID == last.ID.String() {
			summary = &sender.got[i]
		} else if p.MessageID == first.ID.String() && p.Body != "ann: one" {
			t.Errorf("the first notification %+v; want its text", p)
		}
	}
	want := push.Payload{Conv: f.conv.ID.String(), Title: "group", Count: 2, MessageID: last.ID.String()}
	if summary == nil || *summary != want {
		t.Fatalf("the summary is %+v (all: %+v); want %+v, without the deleted text", summary, sender.got, want)
	}
}

func TestDispatcher_DeliversLegacyJobsByTheirIDs(t *testing.T) {
	f := newFixture(t)
	h := newHeldJobs()
	close(h.release)
	sender := &fakeSender{answers: []error{nil}, calls: make(chan struct{}, 10)}
	o := &outcomes{n: map[string]int{}}
	f.runHeld(t, h, sender, o, nil)
	m := chattest.MustAppend(t, f.store, f.ids, f.conv.ID, f.ann.ID, "fresh text", chattest.At(0))
	// The form queued before deliveries held only ids: the whole
	// subscription and a finished payload (here stale).
	legacy := fmt.Sprintf(`{"sub":{"ID":%d,"User":%d,"Session":%d,"Kind":"apns","Endpoint":%q,"P256dh":null,"Auth":null,`+
		`"CreatedAt":"2025-01-01T00:00:00Z","LastSuccess":"0001-01-01T00:00:00Z"},`+
		`"payload":{"conv":"%d","title":"old title","body":"ann: stale text","count":1,"message_id":"%d"}}`,
		f.sub.ID, f.bob.ID, f.sess, f.sub.Endpoint, f.conv.ID, m.ID)
	if err := h.Enqueue(t.Context(), push.JobDeliver, []byte(legacy)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delivery", func() bool { return o.get("sent") == 1 })
	sender.mu.Lock()
	defer sender.mu.Unlock()
	want := push.Payload{Conv: f.conv.ID.String(), Title: "group", Body: "ann: fresh text", Count: 1, MessageID: m.ID.String()}
	if len(sender.got) != 1 || sender.got[0] != want {
		t.Fatalf("a legacy job delivered %+v; want %+v (read from the store)", sender.got, want)
	}
}

func TestDispatcher_RefusesMalformedJobs(t *testing.T) {
	f := newFixture(t)
	h := newHeldJobs()
	close(h.release)
	sender := &fakeSender{answers: []error{nil}, calls: make(chan struct{}, 10)}
	o := &outcomes{n: map[string]int{}}
	f.runHeld(t, h, sender, o, nil)
	bad := []string{`not json`, `{}`, `{"subscription":"1","user":"2","conv":"3","message":"4","count":0}`, `{"subscription":"x"}`}
	for _, job := range bad {
		if err := h.Enqueue(t.Context(), push.JobDeliver, []byte(job)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the dead letters", func() bool { _, n := h.DeadLetters(); return n == len(bad) })
	if len(sender.calls) != 0 {
		t.Fatalf("a malformed job was delivered")
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
