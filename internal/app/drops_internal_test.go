package app

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/auth"
	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/hub"
	"github.com/natter-chat/natter/internal/wsapi"
)

// frameLog records the frames one connection is pushed.
type frameLog struct {
	mu     sync.Mutex
	frames []client.ServerFrame
}

func (l *frameLog) add(f client.ServerFrame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frames = append(l.frames, f)
}

func (l *frameLog) all() []client.ServerFrame {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.frames)
}

// waitMessage waits for the message frame of message id and returns it.
func (l *frameLog) waitMessage(t *testing.T, id string) client.ServerFrame {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, f := range l.all() {
			if m, _ := f.Msg(); f.Type == client.TypeMessage && m != nil && m.ID == id {
				return f
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the message frame of %s never came", id)
	return client.ServerFrame{}
}

// When the in-process bus drops an event on its way to the hub (its queue
// stayed full for the publisher's whole 30 s), no frame that a connected
// client receives carries a cursor at or past the dropped change: the
// client is told to reconnect, and a sync from the highest cursor it saw
// returns the change. Once it has been told, cursors move on again.
func TestBusDrop_NoFrameCursorPassesTheDroppedChange(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the node's 30 s publish timeout")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The hub's subscription queues one event; once stalled, the gate holds
	// the next event the hub gets until release, and it notes the position
	// of every event that reached the hub.
	var (
		mu      sync.Mutex
		stalled bool
		reached []int64
	)
	release := make(chan struct{})
	gate := func(e chat.Event) {
		mu.Lock()
		reached = append(reached, hub.EventPos(e))
		wait := stalled
		mu.Unlock()
		if wait {
			<-release
		}
	}
	a, err := New(ctx, Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), DrainJitter: 20 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Hasher: auth.HasherOptions{Memory: 64, Time: 1}, SendRate: -1, RESTRate: -1,
		WS:      wsapi.Options{FrameRate: 1e6},
		busTest: &busTest{queueSize: 1, gate: gate},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	released := false
	defer func() {
		if !released {
			close(release)
		}
		stop()
		if err := <-done; err != nil {
			t.Errorf("node stopped with error: %v", err)
		}
	}()

	url := "http://" + a.Addr()
	// No request timeout: a send whose event the bus drops is answered
	// only after the 30 s the node waits for the stalled hub.
	alice := client.New(url, client.Options{HTTPClient: &http.Client{}})
	if _, err := alice.Register(ctx, "alice", "a long enough passphrase"); err != nil {
		t.Fatal(err)
	}
	bob := client.New(url, client.Options{})
	reg, err := bob.Register(ctx, "bob", "a long enough passphrase")
	if err != nil {
		t.Fatal(err)
	}
	conv, err := alice.CreateDirect(ctx, reg.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	var before frameLog
	conn, err := bob.Connect(ctx, client.ConnOptions{Transport: client.TransportWebSocket, OnEvent: before.add, EventBuffer: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(text string) client.Message {
		t.Helper()
		res, err := alice.Send(ctx, conv.ID, text, text)
		if err != nil {
			t.Fatalf("send %s: %v", text, err)
		}
		return res.Message
	}
	before.waitMessage(t, send("m0").ID)

	// Stall the hub: m1 is held by the gate, m2 fills the queue, and m3's
	// send returns once the node gave up waiting and dropped its event.
	mu.Lock()
	stalled = true
	mu.Unlock()
	sent := []client.Message{send("m1"), send("m2"), send("m3")}
	// Then the hub moves again and more changes come at once, while the
	// drop is fresh: a reconnect that came late would let bob see them.
	mu.Lock()
	stalled = false
	mu.Unlock()
	close(release)
	released = true
	sent = append(sent, send("m4"))

	// The hub gets events in publish order: once it has m4, it has had
	// every earlier event that was not dropped.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		ok := slices.Contains(reached, sent[3].Pos)
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hub never got m4")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	dropped := int64(0)
	for _, m := range sent {
		if !slices.Contains(reached, m.Pos) && (dropped == 0 || m.Pos < dropped) {
			dropped = m.Pos
		}
	}
	mu.Unlock()
	if dropped == 0 {
		t.Fatal("the stalled hub's bus dropped nothing")
	}
	var droppedMsg client.Message
	for _, m := range sent {
		if m.Pos == dropped {
			droppedMsg = m
		}
	}

	// The reconnect frame is the last one before the connection closes.
	deadline = time.Now().Add(20 * time.Second)
	for !slices.ContainsFunc(before.all(), func(f client.ServerFrame) bool { return f.Type == client.TypeReconnect }) {
		if time.Now().After(deadline) {
			t.Fatal("bob was not told to reconnect after the bus dropped an event")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var highest int64
	for _, f := range before.all() {
		if f.Cursor >= dropped {
			t.Errorf("bob got a %s frame with cursor %d, at or past the dropped change at %d", f.Type, f.Cursor, dropped)
		}
		highest = max(highest, f.Cursor)
	}
	// Resuming from the highest cursor bob saw returns the dropped change.
	found := false
	for cursor, more := highest, true; more && !found; {
		page, err := bob.Changes(ctx, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range page.Changes {
			found = found || ch.Message != nil && ch.Message.ID == droppedMsg.ID
		}
		cursor, more = page.Cursor, page.HasMore
	}
	if !found {
		t.Fatalf("a sync from bob's highest cursor %d misses the dropped change at %d", highest, dropped)
	}

	// Everyone was told: the hold lifts, and a frame carries its own
	// position again.
	var after frameLog
	conn2, err := bob.Connect(ctx, client.ConnOptions{Transport: client.TransportWebSocket, OnEvent: after.add, EventBuffer: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	deadline = time.Now().Add(20 * time.Second)
	for i := 5; ; i++ {
		m := send(fmt.Sprintf("m%d", i))
		f := after.waitMessage(t, m.ID)
		if f.Cursor == m.Pos {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("frames still carry cursor %d (message at %d) after everyone was told to reconnect", f.Cursor, m.Pos)
		}
	}
}

func TestDropHold_HoldsBelowTheDropUntilThawed(t *testing.T) {
	msg := func(pos int64) chat.Event {
		return chat.Event{Kind: chat.EventMessage, Message: &chat.Message{Pos: pos}}
	}
	h := newDropHold()
	if got := h.cursor(msg(5)); got != 5 {
		t.Fatalf("cursor without a drop = %d, want the event's own 5", got)
	}
	h.drop(msg(8))
	seen := h.dropped()
	for _, c := range []struct{ pos, want int64 }{{6, 6}, {7, 7}, {9, 7}, {20, 7}} {
		if got := h.cursor(msg(c.pos)); got != c.want {
			t.Errorf("after a drop at 8: cursor of an event at %d = %d, want %d", c.pos, got, c.want)
		}
	}
	select {
	case <-h.wake:
	default:
		t.Fatal("a drop did not wake the watcher")
	}
	// A later drop, while the first one's reconnect is under way, keeps
	// the lowest hold and is not lifted by the first one's thaw.
	h.drop(msg(12))
	if h.thaw(seen) {
		t.Fatal("a thaw lifted the hold of a drop that came after its reconnect began")
	}
	if got := h.cursor(msg(21)); got != 7 {
		t.Fatalf("after two drops: cursor = %d, want 7", got)
	}
	// The second drop's wake-up is still pending (the watcher would have
	// taken it before dropped); the thaw covers it, so no second reconnect.
	if !h.thaw(h.dropped()) {
		t.Fatal("thaw after the last drop's reconnect did not lift the hold")
	}
	select {
	case <-h.wake:
		t.Fatal("a wake-up for a drop whose reconnect went out is still pending: every client would reconnect twice")
	default:
	}
	if got := h.cursor(msg(22)); got != 22 {
		t.Fatalf("after thaw: cursor = %d, want the event's own 22", got)
	}
	// An event without a position (a removal, a revocation) holds the
	// cursor at the highest one given so far.
	h.drop(chat.Event{Kind: chat.EventMemberRemoved})
	if got := h.cursor(msg(30)); got != 22 {
		t.Fatalf("after a drop without position: cursor = %d, want 22", got)
	}
	// Before any frame, such a drop gives no cursor (0), never 1.
	h2 := newDropHold()
	h2.drop(chat.Event{Kind: chat.EventSessionRevoked})
	if got := h2.cursor(msg(3)); got != 0 {
		t.Fatalf("drop before any frame: cursor = %d, want 0", got)
	}
}
