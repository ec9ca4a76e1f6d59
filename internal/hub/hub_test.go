package hub

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// testConn is a hub.Conn that records the frames delivered to it.
type testConn struct {
	user chat.UserID
	id   int64

	mu     sync.Mutex
	frames [][]byte
}

func (c *testConn) User() chat.UserID       { return c.user }
func (c *testConn) ID() int64               { return c.id }
func (c *testConn) Session() chat.SessionID { return 1 }
func (c *testConn) Revoke()                 {}

func (c *testConn) Deliver(frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames = append(c.frames, frame)
}

// messageIDs returns the ids of the messages delivered to c, in order.
func (c *testConn) messageIDs(t testing.TB) []string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for _, f := range c.frames {
		var m struct {
			Type    string `json:"type"`
			Message struct {
				ID string `json:"id"`
			} `json:"message"`
		}
		if err := json.Unmarshal(f, &m); err != nil {
			t.Fatalf("frame %q is not JSON: %v", f, err)
		}
		if m.Type == "message" {
			ids = append(ids, m.Message.ID)
		}
	}
	return ids
}

// blockingLoader is a Loader whose calls each wait for a result the test
// hands over, so that a test controls when a user's load ends and how.
type blockingLoader struct {
	calls   chan chat.UserID // a call began
	results chan loadResult  // what the waiting call returns
}

type loadResult struct {
	ids []chat.ConversationID
	err error
}

func newBlockingLoader() *blockingLoader {
	return &blockingLoader{calls: make(chan chat.UserID, 16), results: make(chan loadResult)}
}

func (l *blockingLoader) load(ctx context.Context, user chat.UserID) ([]chat.ConversationID, error) {
	l.calls <- user
	select {
	case r := <-l.results:
		return r.ids, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// awaitCall waits for the next call of the loader.
func (l *blockingLoader) awaitCall(t testing.TB) {
	t.Helper()
	select {
	case <-l.calls:
	case <-time.After(20 * time.Second):
		t.Fatal("the hub never loaded the user's conversations")
	}
}

// finish ends the waiting call with r.
func (l *blockingLoader) finish(t testing.TB, r loadResult) {
	t.Helper()
	select {
	case l.results <- r:
	case <-time.After(20 * time.Second):
		t.Fatal("no load was waiting to finish")
	}
}

type registered struct {
	unregister func()
	err        error
}

// registerAsync runs Register in a goroutine and reports its outcome.
func registerAsync(ctx context.Context, h *Hub, c Conn) <-chan registered {
	done := make(chan registered, 1)
	go func() {
		unregister, err := h.Register(ctx, c)
		done <- registered{unregister, err}
	}()
	return done
}

func awaitRegistered(t testing.TB, done <-chan registered) registered {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("Register did not return")
	}
	return registered{}
}

// awaitConns waits until the hub counts n connections (a Register counts
// its connection before it loads or waits for a load).
func awaitConns(t testing.TB, h *Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for h.Conns() != n {
		if time.Now().After(deadline) {
			t.Fatalf("the hub has %d connections, want %d", h.Conns(), n)
		}
		time.Sleep(time.Millisecond) // poll interval
	}
}

func messageEvent(conv chat.ConversationID, id chat.MessageID, pos int64) chat.Event {
	return chat.Event{Kind: chat.EventMessage, Conv: conv, Message: &chat.Message{
		ID: id, Conv: conv, Seq: pos, Sender: 99, Text: "hi", SentAt: time.Unix(1, 0), Pos: pos}}
}

// A device that connects while the user's first device is still loading
// the user's conversations is not ready (its client would sync and then
// miss the live events of conversations the hub does not know yet): its
// Register waits for the load, and from its return on it gets every
// message of those conversations.
func TestHub_RegisterWaitsForTheUsersConversationsToLoad(t *testing.T) {
	const (
		alice chat.UserID         = 7
		conv  chat.ConversationID = 42
	)
	l := newBlockingLoader()
	h := New(l.load, Options{})
	first := &testConn{user: alice, id: 1}
	firstDone := registerAsync(t.Context(), h, first)
	l.awaitCall(t)

	// A second device whose client gives up while the load goes on is
	// not registered: it was never ready.
	ctx, cancel := context.WithCancel(t.Context())
	impatient := registerAsync(ctx, h, &testConn{user: alice, id: 2})
	awaitConns(t, h, 2)
	cancel()
	if r := awaitRegistered(t, impatient); r.err == nil {
		r.unregister()
		t.Fatal("Register returned before the user's conversations were loaded")
	} else if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Register given up while loading: %v, want context.Canceled", r.err)
	}
	awaitConns(t, h, 1)

	second := &testConn{user: alice, id: 3}
	secondDone := registerAsync(t.Context(), h, second)
	awaitConns(t, h, 2)
	// While loading, alice may be a member of any conversation: a
	// missed message of conv must reach her devices' connections too
	// (they already get frames, and may keep their cursors).
	if got := h.ConnsIn(conv); len(got) != 2 {
		t.Errorf("ConnsIn(conv) during the load = %d connections, want both of alice's", len(got))
	}
	l.finish(t, loadResult{ids: []chat.ConversationID{conv}})
	for _, done := range []<-chan registered{firstDone, secondDone} {
		r := awaitRegistered(t, done)
		if r.err != nil {
			t.Fatalf("Register: %v", r.err)
		}
		t.Cleanup(r.unregister)
	}
	select {
	case <-l.calls:
		t.Error("the second device loaded the conversations again")
	default:
	}

	h.Handle(messageEvent(conv, 1001, 10))
	for _, c := range []*testConn{first, second} {
		if got := c.messageIDs(t); !slices.Equal(got, []string{"1001"}) {
			t.Errorf("connection %d got messages %v, want [1001]", c.id, got)
		}
	}
	if got := h.ConnsIn(conv); len(got) != 2 {
		t.Errorf("ConnsIn(conv) = %d connections, want both devices", len(got))
	}
}

// When the first device's load fails (its client went away, the store
// was down), a device waiting for that load loads the conversations
// itself instead of being left ready without them.
func TestHub_RegisterWaitingForAFailedLoadLoadsItself(t *testing.T) {
	const (
		alice chat.UserID         = 7
		conv  chat.ConversationID = 42
	)
	l := newBlockingLoader()
	h := New(l.load, Options{})
	firstDone := registerAsync(t.Context(), h, &testConn{user: alice, id: 1})
	l.awaitCall(t)
	second := &testConn{user: alice, id: 2}
	secondDone := registerAsync(t.Context(), h, second)
	awaitConns(t, h, 2)

	l.finish(t, loadResult{err: errors.New("store unavailable")})
	if r := awaitRegistered(t, firstDone); r.err == nil {
		r.unregister()
		t.Fatal("Register succeeded although its load failed")
	}
	l.awaitCall(t) // the waiting device's own load
	l.finish(t, loadResult{ids: []chat.ConversationID{conv}})
	r := awaitRegistered(t, secondDone)
	if r.err != nil {
		t.Fatalf("Register after the other device's failed load: %v", r.err)
	}
	t.Cleanup(r.unregister)
	if n := h.Conns(); n != 1 {
		t.Errorf("Conns() = %d, want 1 (the failed device is not registered)", n)
	}
	h.Handle(messageEvent(conv, 1001, 10))
	if got := second.messageIDs(t); !slices.Equal(got, []string{"1001"}) {
		t.Errorf("the second device got messages %v, want [1001]", got)
	}
}

// Once a user's last connection is gone the hub forgets them, and their
// next connection loads their conversations afresh (they may have
// changed meanwhile).
func TestHub_LastUnregisterForgetsTheUser(t *testing.T) {
	const alice chat.UserID = 7
	l := newBlockingLoader()
	h := New(l.load, Options{})
	done := registerAsync(t.Context(), h, &testConn{user: alice, id: 1})
	l.awaitCall(t)
	l.finish(t, loadResult{ids: []chat.ConversationID{42}})
	r := awaitRegistered(t, done)
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.unregister()
	if got := h.ConnsIn(42); len(got) != 0 {
		t.Errorf("ConnsIn after the last unregister = %d connections, want none", len(got))
	}

	next := &testConn{user: alice, id: 2}
	done = registerAsync(t.Context(), h, next)
	l.awaitCall(t)
	l.finish(t, loadResult{ids: []chat.ConversationID{43}})
	if r = awaitRegistered(t, done); r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(r.unregister)
	h.Handle(messageEvent(42, 1001, 10))
	h.Handle(messageEvent(43, 1002, 11))
	if got := next.messageIDs(t); !slices.Equal(got, []string{"1002"}) {
		t.Errorf("after a fresh load the connection got messages %v, want [1002] (only the conversation it is in now)", got)
	}
}
