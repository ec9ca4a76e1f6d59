package app_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/push"
)

// pushService is a fake Web Push service: it records what each endpoint
// (path) receives, decrypted with the subscriber's keys, and answers with
// the status set for the path (201 by default).
type pushService struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	keys     map[string]*pushDevice // by path
	received map[string][]push.Payload
	raw      map[string][]string // decrypted bodies, verbatim
	status   map[string]int      // hangUp: close the connection without an answer
	changed  chan struct{}
}

// hangUp as a pushService status closes the connection unanswered.
const hangUp = -1

// pushDevice is a browser's subscription keys.
type pushDevice struct {
	key  *ecdh.PrivateKey
	auth []byte
}

func newPushService(t *testing.T) *pushService {
	s := &pushService{t: t, keys: map[string]*pushDevice{}, received: map[string][]push.Payload{}, raw: map[string][]string{},
		status: map[string]int{}, changed: make(chan struct{}, 1)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *pushService) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	dev, status := s.keys[r.URL.Path], s.status[r.URL.Path]
	s.mu.Unlock()
	if dev == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if status == hangUp {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "vapid t=") || r.Header.Get("Content-Encoding") != "aes128gcm" || r.Header.Get("TTL") == "" {
		s.t.Errorf("push request headers %v", r.Header)
	}
	plain, err := push.Decrypt(body, dev.key, dev.auth)
	if err != nil {
		s.t.Errorf("the push body does not decrypt with the subscription's key: %v", err)
	}
	var p push.Payload
	if err := json.Unmarshal(plain, &p); err != nil {
		s.t.Errorf("the decrypted payload is not JSON: %v", err)
	}
	s.mu.Lock()
	s.received[r.URL.Path] = append(s.received[r.URL.Path], p)
	s.raw[r.URL.Path] = append(s.raw[r.URL.Path], string(plain))
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	if status == 0 {
		status = http.StatusCreated
	}
	w.WriteHeader(status)
}

// secrets returns what must never be queued or logged: every endpoint
// and key subscribed so far.
func (s *pushService) secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for path, dev := range s.keys {
		out = append(out, s.srv.URL+path, base64.RawURLEncoding.EncodeToString(dev.key.PublicKey().Bytes()),
			base64.RawURLEncoding.EncodeToString(dev.auth), base64.StdEncoding.EncodeToString(dev.auth))
	}
	return out
}

// subscribe makes a device at path and subscribes c's session with it.
func (s *pushService) subscribe(t *testing.T, c *client.Client, path string) client.PushSubscription {
	t.Helper()
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dev := &pushDevice{key: key, auth: make([]byte, 16)}
	rand.Read(dev.auth)
	s.mu.Lock()
	s.keys[path] = dev
	s.mu.Unlock()
	sub, err := c.SubscribePush(ctxT(t), client.PushSubscribeRequest{
		Endpoint: s.srv.URL + path,
		Keys: &client.PushKeys{
			P256dh: base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()),
			Auth:   base64.RawURLEncoding.EncodeToString(dev.auth),
		},
	})
	if err != nil {
		t.Fatalf("subscribe %s: %v", path, err)
	}
	return sub
}

// notes returns what path received about conv.
func (s *pushService) notes(path, conv string) []push.Payload {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []push.Payload
	for _, p := range s.received[path] {
		if p.Conv == conv {
			out = append(out, p)
		}
	}
	return out
}

// waitNotes waits until path received n notifications about conv.
func (s *pushService) waitNotes(t *testing.T, path, conv string, n int) []push.Payload {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if got := s.notes(path, conv); len(got) >= n {
			return got
		}
		select {
		case <-s.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %d notifications about conversation %s at %s; have %v", n, conv, path, s.notes(path, conv))
		}
	}
}

// pushConfig gives a node's push dispatcher one worker, so that messages
// are handled in commit order: once a notification about a later message
// arrived, an earlier message that should have produced none has been
// handled.
func pushConfig(c *app.Config) {
	c.Push = app.PushConfig{AllowHTTP: true, Workers: 1, Collapse: time.Hour, RetryBase: time.Millisecond}
}

// pushNode is an embedded-mode node with pushConfig.
func pushNode(t *testing.T, mutate ...func(*app.Config)) *node {
	return startNode(t, "", append([]func(*app.Config){pushConfig, func(c *app.Config) { c.PresenceGrace = 10 * time.Millisecond }}, mutate...)...)
}

// jobTap is a node's JobGate for push deliveries: it records each job's
// payload as the runner hands it over (for JetStream, the stored bytes)
// and, while held, keeps it waiting.
type jobTap struct {
	mu   sync.Mutex
	jobs [][]byte
	hold chan struct{} // non-nil: deliveries wait until it is closed
}

func (j *jobTap) gate(ctx context.Context, kind string, payload []byte) error {
	if kind != push.JobDeliver {
		return nil
	}
	j.mu.Lock()
	j.jobs = append(j.jobs, payload)
	hold := j.hold
	j.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (j *jobTap) config(c *app.Config) { c.JobGate = j.gate }

// holdAll holds deliveries until the returned release is called (once
// or more).
func (j *jobTap) holdAll() (release func()) {
	hold := make(chan struct{})
	j.mu.Lock()
	j.hold = hold
	j.mu.Unlock()
	return sync.OnceFunc(func() {
		j.mu.Lock()
		j.hold = nil
		j.mu.Unlock()
		close(hold)
	})
}

// taken returns the payloads handed over so far.
func (j *jobTap) taken() [][]byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([][]byte(nil), j.jobs...)
}

// TestPush_EndToEnd runs in embedded mode (SQLite, in-process jobs) and
// in cluster mode (PostgreSQL, JetStream jobs) when PostgreSQL is set up.
func TestPush_EndToEnd(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		tap := &jobTap{}
		testPushEndToEnd(t, pushNode(t, tap.config), tap)
	})
	t.Run("cluster", func(t *testing.T) {
		eachNATS(t, func(t *testing.T, c *cluster) {
			deleteJobStreams(t, c)
			tap := &jobTap{}
			testPushEndToEnd(t, c.start(t, pushConfig, tap.config), tap)
		})
	})
}

func testPushEndToEnd(t *testing.T, n *node, tap *jobTap) {
	svc := newPushService(t)
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	carol, carolID := n.user(t, "carol") // the sentinel: always offline, never muted
	svc.subscribe(t, bob, "/bob")
	svc.subscribe(t, carol, "/carol")
	me, err := bob.Me(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	group := func(title string) string {
		t.Helper()
		c, err := alice.CreateGroup(ctxT(t), title, []string{bobID, carolID})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	send := func(conv, text string) client.Message {
		t.Helper()
		res, err := alice.Send(ctxT(t), conv, fmt.Sprintf("c%d", time.Now().UnixNano()), text)
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		return res.Message
	}
	// settled waits until carol heard of conv's message: every earlier
	// message has then been handled.
	settled := func(conv string, n int) { t.Helper(); svc.waitNotes(t, "/carol", conv, n) }

	t.Run("an offline member gets one notification that decrypts to the message", func(t *testing.T) {
		conv := group("trip")
		m := send(conv, "hello bob")
		got := svc.waitNotes(t, "/bob", conv, 1)
		want := push.Payload{Conv: conv, Title: "trip", Body: aliceName(t, alice) + ": hello bob", Count: 1, MessageID: m.ID}
		if len(got) != 1 || got[0] != want {
			t.Fatalf("bob got %+v, want exactly %+v", got, want)
		}
	})

	t.Run("a burst gives one notification within the interval", func(t *testing.T) {
		conv := group("burst")
		for i := range 5 {
			send(conv, fmt.Sprintf("burst %d", i))
		}
		sentinel := group("after the burst")
		send(sentinel, "done")
		settled(sentinel, 1)
		if got := svc.notes("/bob", conv); len(got) != 1 || got[0].Body == "" || got[0].Count != 1 {
			t.Fatalf("bob got %+v for a burst of 5; want one notification", got)
		}
	})

	t.Run("a muted conversation gives none", func(t *testing.T) {
		conv := group("muted")
		if err := bob.SetNotificationLevel(ctxT(t), conv, "none"); err != nil {
			t.Fatal(err)
		}
		send(conv, "you will not hear of this")
		settled(conv, 1)
		if got := svc.notes("/bob", conv); len(got) != 0 {
			t.Fatalf("bob muted the conversation but got %+v", got)
		}
	})

	t.Run("mentions mode notifies only of mentions", func(t *testing.T) {
		conv := group("mentions")
		if err := bob.SetNotificationLevel(ctxT(t), conv, "mentions"); err != nil {
			t.Fatal(err)
		}
		send(conv, "nothing for bob")
		settled(conv, 1)
		if got := svc.notes("/bob", conv); len(got) != 0 {
			t.Fatalf("bob (mentions only) got %+v for a message without a mention", got)
		}
		m := send(conv, "look @"+me.Username)
		if got := svc.waitNotes(t, "/bob", conv, 1); got[0].MessageID != m.ID {
			t.Fatalf("bob got %+v, want the mention %s", got, m.ID)
		}
	})

	t.Run("hide_text leaves the text out of the payload", func(t *testing.T) {
		if err := bob.SetPushSettings(ctxT(t), true); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = bob.SetPushSettings(ctxT(t), false) })
		conv := group("private")
		send(conv, "the secret is 42")
		got := svc.waitNotes(t, "/bob", conv, 1)
		svc.mu.Lock()
		raw := svc.raw["/bob"][len(svc.raw["/bob"])-1]
		svc.mu.Unlock()
		if got[0].Body != "" || strings.Contains(raw, "secret") || got[0].Title != "private" {
			t.Fatalf("with hide_text bob got %+v (%s)", got[0], raw)
		}
	})

	t.Run("an online member gets none", func(t *testing.T) {
		conn, _ := connect(t, bob)
		waitPresence(t, alice, bobID, "online")
		conv := group("online")
		send(conv, "bob is here")
		settled(conv, 1)
		if got := svc.notes("/bob", conv); len(got) != 0 {
			t.Fatalf("bob is online but got %+v", got)
		}
		_ = conn.Close()
		waitPresence(t, alice, bobID, "offline")
	})

	t.Run("a member removed before the delivery gets nothing", func(t *testing.T) {
		conv := group("removal")
		release := tap.holdAll()
		defer release()
		held := len(tap.taken())
		send(conv, "bob has left by now")
		deadline := time.Now().Add(20 * time.Second)
		for len(tap.taken()) == held { // bob's delivery is queued first (lower user id) and now waits
			if time.Now().After(deadline) {
				t.Fatal("no delivery was queued")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := alice.RemoveMember(ctxT(t), conv, bobID); err != nil {
			t.Fatal(err)
		}
		release()
		settled(conv, 1)
		if got := svc.notes("/bob", conv); len(got) != 0 {
			t.Fatalf("bob was removed before the delivery but got %+v", got)
		}
	})

	t.Run("queued deliveries hold no keys, endpoints or text", func(t *testing.T) {
		jobs := tap.taken()
		if len(jobs) == 0 {
			t.Fatal("no delivery went through the job runner")
		}
		forbidden := append(svc.secrets(), "hello bob", "the secret is 42", "look @"+me.Username, "trip", "\"endpoint\"", "\"body\"")
		for _, job := range jobs {
			for _, s := range forbidden {
				if strings.Contains(string(job), s) {
					t.Errorf("a queued delivery contains %q: %s", s, job)
				}
			}
			var ids struct{ Subscription, User, Conv, Message string }
			if err := json.Unmarshal(job, &ids); err != nil || ids.Subscription == "" || ids.User == "" || ids.Conv == "" || ids.Message == "" {
				t.Errorf("a queued delivery is not JSON with ids (%v): %s", err, job)
			}
		}
	})
}

func aliceName(t *testing.T, c *client.Client) string {
	t.Helper()
	u, err := c.Me(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

func waitPresence(t *testing.T, c *client.Client, user, status string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ps, err := c.Presence(ctxT(t), user)
		if err == nil && len(ps) == 1 && ps[0].Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("user %s never became %s: %v %v", user, status, ps, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPush_GoneSubscriptionIsRemoved(t *testing.T) {
	n := pushNode(t)
	svc := newPushService(t)
	alice, _ := n.user(t, "alice")
	dave, daveID := n.user(t, "dave")
	svc.subscribe(t, dave, "/dave")
	svc.mu.Lock()
	svc.status["/dave"] = http.StatusGone
	svc.mu.Unlock()
	conv, err := alice.CreateDirect(ctxT(t), daveID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctxT(t), conv.ID, "c1", "are you there?"); err != nil {
		t.Fatal(err)
	}
	svc.waitNotes(t, "/dave", conv.ID, 1)
	deadline := time.Now().Add(20 * time.Second)
	for {
		subs, err := dave.PushSubscriptions(ctxT(t))
		if err == nil && len(subs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscription answered 410 but is still listed: %+v %v", subs, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPush_DeadLettersHoldNoSecrets lets a delivery use up its attempts
// in cluster mode and reads its dead letter from JetStream, where it is
// kept for days: neither the job nor its error may name the endpoint,
// the keys or the text.
func TestPush_DeadLettersHoldNoSecrets(t *testing.T) {
	eachNATS(t, func(t *testing.T, c *cluster) {
		deleteJobStreams(t, c)
		n := c.start(t, pushConfig)
		svc := newPushService(t)
		alice, _ := n.user(t, "alice")
		dora, doraID := n.user(t, "dora")
		svc.subscribe(t, dora, "/capability-5e1d")
		svc.mu.Lock()
		svc.status["/capability-5e1d"] = hangUp
		svc.mu.Unlock()
		conv, err := alice.CreateDirect(ctxT(t), doraID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Send(ctxT(t), conv.ID, "c1", "the vault opens at noon"); err != nil {
			t.Fatal(err)
		}

		nc, err := nats.Connect(c.natsURL)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		var dead *jetstream.RawStreamMsg
		deadline := time.Now().Add(30 * time.Second)
		for dead == nil {
			stream, err := js.Stream(ctxT(t), c.name+"_dlq")
			if err == nil {
				dead, _ = stream.GetLastMsgForSubject(ctxT(t), c.name+"_dlq."+push.JobDeliver)
			}
			if dead == nil && time.Now().After(deadline) {
				t.Fatal("the failing delivery never reached the dead letter stream")
			}
			time.Sleep(20 * time.Millisecond)
		}
		all := string(dead.Data)
		for k, v := range dead.Header {
			all += "\n" + k + ": " + strings.Join(v, ",")
		}
		for _, s := range append(svc.secrets(), "capability-5e1d", "vault") {
			if strings.Contains(all, s) {
				t.Errorf("the dead letter contains %q:\n%s", s, all)
			}
		}
		var ids struct{ Subscription, User, Conv, Message string }
		if err := json.Unmarshal(dead.Data, &ids); err != nil || ids.User != doraID || ids.Conv != conv.ID {
			t.Errorf("the dead letter is not JSON with dora's and the conversation's ids (%v): %s", err, dead.Data)
		}
		if dead.Header.Get("Natter-Job-Error") == "" {
			t.Errorf("the dead letter has no error header:\n%s", all)
		}
	})
}

func TestPush_Endpoints(t *testing.T) {
	n := pushNode(t)
	svc := newPushService(t)
	alice, _ := n.user(t, "alice")
	mallory, _ := n.user(t, "mallory")
	sub := svc.subscribe(t, alice, "/alice")
	token := alice.Tokens().AccessToken

	t.Run("the VAPID key is a P-256 public key", func(t *testing.T) {
		key, err := alice.VAPIDPublicKey(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(key)
		if _, perr := ecdh.P256().NewPublicKey(raw); err != nil || perr != nil {
			t.Fatalf("vapid key %q: %v %v", key, err, perr)
		}
	})
	t.Run("listing shows the subscription without its keys", func(t *testing.T) {
		subs, err := alice.PushSubscriptions(ctxT(t))
		if err != nil || len(subs) != 1 || subs[0].ID != sub.ID || !subs[0].Current || subs[0].Kind != "webpush" {
			t.Fatalf("subscriptions %+v, %v", subs, err)
		}
		status, body := rawRequest(t, "GET", n.URL+"/v1/push/subscriptions", token, "")
		if status != 200 || strings.Contains(body, "p256dh") || strings.Contains(body, "auth\"") {
			t.Fatalf("GET subscriptions: %d %s", status, body)
		}
	})
	t.Run("another user cannot delete it", func(t *testing.T) {
		err := mallory.UnsubscribePush(ctxT(t), sub.ID)
		if ce, ok := errors.AsType[*client.Error](err); !ok || ce.Code != "not_found" {
			t.Fatalf("mallory deleting alice's subscription: %v", err)
		}
		if subs, _ := alice.PushSubscriptions(ctxT(t)); len(subs) != 1 {
			t.Fatalf("alice's subscription is gone after mallory's attempt")
		}
	})
	t.Run("a non-member cannot set a level in a conversation", func(t *testing.T) {
		conv, err := alice.CreateGroup(ctxT(t), "closed", nil)
		if err != nil {
			t.Fatal(err)
		}
		err = mallory.SetNotificationLevel(ctxT(t), conv.ID, "none")
		if ce, ok := errors.AsType[*client.Error](err); !ok || ce.Code != "not_found" {
			t.Fatalf("mallory setting a level in alice's group: %v", err)
		}
		if err := alice.SetNotificationLevel(ctxT(t), conv.ID, "mentions"); err != nil {
			t.Fatalf("alice: %v", err)
		}
		status, body := rawRequest(t, "GET", n.URL+"/v1/conversations/"+conv.ID+"/notifications", token, "")
		if status != 200 || !strings.Contains(body, `"mentions"`) {
			t.Fatalf("GET level: %d %s", status, body)
		}
	})
	t.Run("bad input is refused with a code", func(t *testing.T) {
		p256 := base64.RawURLEncoding.EncodeToString(mustKey(t).PublicKey().Bytes())
		auth := base64.RawURLEncoding.EncodeToString(make([]byte, 16))
		for _, c := range []struct {
			path, body string
			status     int
			code       string
		}{
			{"/v1/push/subscriptions", `{"endpoint":"http://push.example.com/x","keys":{"p256dh":"` + p256 + `","auth":"` + auth + `"}}`, 400, "invalid_argument"},
			{"/v1/push/subscriptions", `{"endpoint":"https://10.0.0.1/x","keys":{"p256dh":"` + p256 + `","auth":"` + auth + `"}}`, 400, "invalid_argument"},
			{"/v1/push/subscriptions", `{"endpoint":"https://push.example.com/x","keys":{"p256dh":"AAAA","auth":"` + auth + `"}}`, 400, "invalid_argument"},
			{"/v1/push/subscriptions", `{"endpoint":"https://push.example.com/x","keys":{"p256dh":"` + p256 + `","auth":"AAAA"}}`, 400, "invalid_argument"},
			{"/v1/push/subscriptions", `{"endpoint":"https://push.example.com/` + strings.Repeat("a", 2100) + `","keys":{"p256dh":"` + p256 + `","auth":"` + auth + `"}}`, 413, "too_large"},
			{"/v1/push/subscriptions", `{"kind":"apns","token":"` + strings.Repeat("ab", 32) + `"}`, 400, "push_not_configured"},
			{"/v1/push/subscriptions", `{"kind":"fcm","token":"abc"}`, 400, "push_not_configured"},
			{"/v1/push/subscriptions", `{"kind":"apns","token":"not hex"}`, 400, "invalid_argument"},
			{"/v1/push/subscriptions", `{"kind":"carrier-pigeon","token":"x"}`, 400, "invalid_argument"},
			{"/v1/push/subscriptions", `{"endpoint":5}`, 400, "invalid_json"},
		} {
			status, body := rawRequest(t, "POST", n.URL+c.path, token, c.body)
			if status != c.status || !strings.Contains(body, `"code":"`+c.code+`"`) {
				t.Errorf("POST %.80s: %d %s; want %d %s", c.body, status, body, c.status, c.code)
			}
		}
		for _, c := range []struct{ method, path, body, code string }{
			{"PUT", "/v1/me/push-settings", `{"hide_text":"yes"}`, "invalid_json"},
			{"DELETE", "/v1/push/subscriptions/abc", ``, "invalid_argument"},
			{"PUT", "/v1/conversations/1/notifications", `{"level":"loud"}`, "invalid_argument"},
		} {
			status, body := rawRequest(t, c.method, n.URL+c.path, token, c.body)
			if status != 400 || !strings.Contains(body, `"code":"`+c.code+`"`) {
				t.Errorf("%s %s: %d %s; want 400 %s", c.method, c.path, status, body, c.code)
			}
		}
		if status, _ := rawRequest(t, "GET", n.URL+"/v1/push/subscriptions", "", ""); status != 401 {
			t.Errorf("GET subscriptions without a token: %d, want 401", status)
		}
	})
	t.Run("the owner deletes it", func(t *testing.T) {
		if err := alice.UnsubscribePush(ctxT(t), sub.ID); err != nil {
			t.Fatal(err)
		}
		if subs, _ := alice.PushSubscriptions(ctxT(t)); len(subs) != 0 {
			t.Fatalf("still listed: %+v", subs)
		}
	})
}

func mustKey(t *testing.T) *ecdh.PrivateKey {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
