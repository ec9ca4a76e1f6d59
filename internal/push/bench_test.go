package push_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/membus"
	"github.com/natter-chat/natter/internal/push"
	"github.com/natter-chat/natter/internal/sqlite"
)

// benchPayload is a typical notification: a short group message.
var benchPayload = push.Payload{Conv: "184467440737095516", Title: "Weekend plans", Body: "ann: Shall we meet at the station at ten? Bring the tickets.", Count: 1, MessageID: "184467440737095517"}

// browserKeys returns a subscriber's P-256 public key and auth secret.
func browserKeys(b *testing.B) (p256dh, auth []byte) {
	b.Helper()
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	auth = make([]byte, 16)
	rand.Read(auth)
	return key.PublicKey().Bytes(), auth
}

// acceptingService is a push service that accepts every notification
// (201 Created) after reading its body.
func acceptingService(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, _ := io.Copy(io.Discard, r.Body); n == 0 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func newWebPush(b *testing.B) *push.WebPush {
	b.Helper()
	raw, err := push.NewVAPIDKey()
	if err != nil {
		b.Fatal(err)
	}
	v, err := push.NewVAPID(raw, "mailto:ops@example.org")
	if err != nil {
		b.Fatal(err)
	}
	return push.NewWebPush(v, push.WebPushOptions{Client: push.NewClient(true)})
}

// BenchmarkEncrypt measures the RFC 8291 encryption of one notification:
// an ephemeral P-256 key, ECDH, HKDF and AES-128-GCM.
func BenchmarkEncrypt(b *testing.B) {
	p256dh, auth := browserKeys(b)
	plain := []byte(`{"conv":"184467440737095516","title":"Weekend plans","body":"ann: Shall we meet at the station at ten?","count":1,"message_id":"184467440737095517"}`)
	for b.Loop() {
		if _, err := push.Encrypt(plain, p256dh, auth); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "encryptions/s")
}

// BenchmarkVAPID measures the ES256-signed JWT of one request.
func BenchmarkVAPID(b *testing.B) {
	raw, _ := push.NewVAPIDKey()
	v, err := push.NewVAPID(raw, "mailto:ops@example.org")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for b.Loop() {
		if _, err := v.Authorization("https://push.example.net/send/abc", now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWebPush_Send measures one sender delivering notifications one
// after another to a local push service: encryption, VAPID signature and
// an HTTP round trip over loopback (kept-alive connection).
func BenchmarkWebPush_Send(b *testing.B) {
	srv := acceptingService(b)
	wp := newWebPush(b)
	p256dh, auth := browserKeys(b)
	sub := chat.PushSubscription{Kind: chat.PushWebPush, Endpoint: srv.URL + "/push/1", P256dh: p256dh, Auth: auth}
	for b.Loop() {
		if err := wp.Send(b.Context(), sub, benchPayload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notifications/s")
}

// BenchmarkDispatcher_WebPush measures the whole path of a notification:
// each of b.N messages in a group goes to the Dispatcher, which plans it
// (members, presence, levels and subscriptions from a real SQLite store)
// and queues one delivery per away member; each delivery reads its
// subscription, the member's standing and the message from the store and
// sends one Web Push notification (real RFC 8291 encryption and VAPID
// signing) to a local push service that accepts them. The result is notifications/s: b.N × recipients over the time
// until the last one was accepted. Messages are fed only as fast as the
// delivery queue drains, so nothing is dropped.
func BenchmarkDispatcher_WebPush(b *testing.B) {
	for _, m := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("recipients=%d", m), func(b *testing.B) { benchDispatcher(b, m) })
	}
}

// benchQueue is the Dispatcher's queue size in the benchmark (its
// default).
const benchQueue = 4096

func benchDispatcher(b *testing.B, recipients int) {
	srv := acceptingService(b)
	store, convs, sender := pushFixture(b, srv.URL, recipients)
	presence := membus.NewPresence(membus.PresenceOptions{})
	b.Cleanup(presence.Close)

	var sent, bad atomic.Int64
	progress := make(chan struct{}, 1)
	d := push.New(push.Options{
		Store: store, Push: store, Presence: presence,
		Senders: map[chat.PushKind]push.Sender{chat.PushWebPush: newWebPush(b)},
		// A window shorter than any gap between two messages: every
		// message notifies every recipient.
		Collapse:  time.Nanosecond,
		QueueSize: benchQueue,
		Observe: func(_ chat.PushKind, result string) {
			if result == "sent" {
				sent.Add(1)
			} else {
				bad.Add(1)
			}
			select {
			case progress <- struct{}{}:
			default:
			}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { d.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	// waitSent waits until at least n notifications were accepted.
	waitSent := func(n int64) {
		last, stalled := sent.Load(), time.Now()
		for sent.Load() < n {
			if bad.Load() > 0 {
				b.Fatalf("%d notifications were not delivered", bad.Load())
			}
			select {
			case <-progress:
			case <-time.After(10 * time.Millisecond):
			}
			if now := sent.Load(); now != last {
				last, stalled = now, time.Now()
			} else if time.Since(stalled) > 30*time.Second {
				b.Fatalf("%d of %d notifications accepted, none in the last 30s", now, n)
			}
		}
	}
	// Deliveries read their message from the store: store them first.
	msgs := appendMessages(b, store, convs, sender, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		// Keep at most one message's worth of room free in the queue.
		waitSent(int64(i*recipients - (benchQueue - recipients)))
		d.Notify(chat.Event{Kind: chat.EventMessage, Conv: msgs[i].Conv, Message: &msgs[i]})
	}
	waitSent(int64(b.N * recipients))
	elapsed := time.Since(start)
	b.StopTimer()
	if bad.Load() > 0 {
		b.Fatalf("%d notifications were not delivered", bad.Load())
	}
	b.ReportMetric(float64(b.N*recipients)/elapsed.Seconds(), "notifications/s")
}

// appendMessages stores n messages of sender, to convs in turn, in
// batches (one commit each), and returns them in order.
func appendMessages(b *testing.B, s *sqlite.Store, convs []chat.ConversationID, sender chat.UserID, n int) []chat.Message {
	b.Helper()
	ids := chattest.NewIDs()
	out := make([]chat.Message, 0, n)
	for len(out) < n {
		drafts := make([]chat.Draft, min(500, n-len(out)))
		for i := range drafts {
			id := chat.MessageID(1<<40 + ids.NextID())
			drafts[i] = chat.Draft{ID: id, Conv: convs[(len(out)+i)%len(convs)], Sender: sender, ClientID: id.String(),
				Text: "Shall we meet at the station at ten? Bring the tickets.", SentAt: time.Now()}
		}
		res, err := s.AppendMessages(b.Context(), drafts)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
			out = append(out, r.Message)
		}
	}
	return out
}

// benchConvs is how many groups of the same members the messages go to,
// in turn. Messages are planned by several workers at once; two messages
// of one conversation planned out of order would be folded into one
// notification by the collapse window, so consecutive messages go to
// different groups.
const benchConvs = 64

// pushFixture stores benchConvs groups of a sender and the same n
// recipients in a fresh SQLite store; each recipient has a live session
// with one Web Push subscription to service.
func pushFixture(b *testing.B, service string, n int) (*sqlite.Store, []chat.ConversationID, chat.UserID) {
	b.Helper()
	ctx := b.Context()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "natter.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ids := chattest.NewIDs()
	sender := chattest.MustCreateUser(b, s, ids, "sender")
	users := make([]chat.UserID, n)
	now := time.Now()
	for i := range users {
		u := chattest.MustCreateUser(b, s, ids, fmt.Sprintf("r%d", i))
		users[i] = u.ID
		sess := chat.Session{ID: chat.SessionID(ids.NextID()), User: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
		if err := s.CreateSession(ctx, sess, fmt.Sprintf("h%d", i)); err != nil {
			b.Fatal(err)
		}
		p256dh, auth := browserKeys(b)
		_, err := s.CreatePushSubscription(ctx, chat.PushSubscription{
			ID: chat.PushSubscriptionID(ids.NextID()), User: u.ID, Session: sess.ID, Kind: chat.PushWebPush,
			Endpoint: fmt.Sprintf("%s/push/%d", service, i), P256dh: p256dh, Auth: auth, CreatedAt: now,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	convs := make([]chat.ConversationID, benchConvs)
	for i := range convs {
		convs[i] = chattest.MustCreateGroup(b, s, ids, sender.ID, users...).ID
	}
	return s, convs, sender.ID
}
