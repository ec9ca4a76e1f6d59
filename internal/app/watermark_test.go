package app_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/natsbus"
)

// Tests of the cluster's sync cursor: live frames carry a cursor that never
// passes a change the node has not handed to its clients, whatever happens
// to the node that made it (see cluster.go and cursor.go).

// observer is bob on a node, watching it: his connection records every
// frame, and carol, on the same node, has a direct conversation with him
// (ticks) whose messages keep frames, and their cursors, coming to him.
type observer struct {
	bob   *client.Client
	bobID string
	carol *client.Client
	ticks string
	conn  *client.Conn // bob's, after connect
	in    *inbox
	chat  *client.Conn // carol's, after connect: pass it to chatter
}

// newObserver registers bob and carol on n and makes their conversation.
func newObserver(t *testing.T, n *node) *observer {
	t.Helper()
	o := &observer{}
	o.bob, o.bobID = n.user(t, "bob")
	o.carol, _ = n.user(t, "carol")
	ticks, err := o.carol.CreateDirect(ctxT(t), o.bobID)
	if err != nil {
		t.Fatal(err)
	}
	o.ticks = ticks.ID
	return o
}

// connect opens bob's and carol's connections.
func (o *observer) connect(t *testing.T) {
	t.Helper()
	o.conn, o.in = connect(t, o.bob)
	o.chat, _ = connect(t, o.carol)
}

// leaseTTL sets a node's id lease TTL (all nodes of a cluster use the same).
func leaseTTL(d time.Duration) func(*app.Config) {
	return func(cfg *app.Config) { cfg.NodeLeaseTTL = d }
}

// chatter makes frames flow to the other members of conv: a send on conn
// every 50ms until the returned stop is called or the connection ends
// (told to reconnect, for one).
func chatter(t *testing.T, conn *client.Conn, conv, prefix string) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond): // pacing, not a wait for an event
			}
			if _, _, err := conn.Send(ctxT(t), conv, fmt.Sprintf("%s-%d", prefix, i), "tick"); err != nil {
				t.Logf("chatter stops after %d sends: %v", i, err)
				return
			}
		}
	})
	var once sync.Once
	stop = func() { once.Do(func() { close(done); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// reconnectFrameIndex returns the index of the first reconnect frame in
// frames, or -1.
func reconnectFrameIndex(frames []client.ServerFrame) int {
	return slices.IndexFunc(frames, func(f client.ServerFrame) bool { return f.Type == client.TypeReconnect })
}

// cursorOf returns the highest cursor among frames (the client's rule).
func cursorOf(frames []client.ServerFrame) int64 {
	var cursor int64
	for _, f := range frames {
		if f.Type != "changes" && f.Type != client.TypeError {
			cursor = max(cursor, f.Cursor)
		}
	}
	return cursor
}

// Hole (a): node A, cut off from NATS, keeps committing (its events wait in
// its reconnect buffer) and dies before it reconnects, so those events
// never reach node B. B's clients, connected throughout and saving the
// cursors of their frames, must still end up with every change A
// committed: B tells them to reconnect once A's lease is gone, and their
// cursors never passed A's changes.
func TestCluster_NodeKilledWithUnpublishedChanges(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		const ttl = 8 * time.Second
		bus := startTCPProxy(t, c.natsHostPort(t))
		a := c.start(t, busVia(bus), leaseTTL(ttl))
		b := c.start(t, leaseTTL(ttl))
		alice, _ := a.user(t, "alice")
		o := newObserver(t, b)
		group, err := alice.CreateGroup(ctxT(t), "before the cut", []string{o.bobID})
		if err != nil {
			t.Fatal(err)
		}
		o.connect(t)
		_, cursor := syncStream(t, o.conn, 0)
		first, err := alice.Send(ctxT(t), group.ID, "first", "before the cut")
		if err != nil {
			t.Fatal(err)
		}
		waitMessages(t, o.in, "bob on B to get alice's message from A", group.ID, 1, 20*time.Second)

		// Carol's messages keep frames (and cursors) coming to bob on B.
		stopChatter := chatter(t, o.chat, o.ticks, "tick")
		bus.Cut()
		edited, err := alice.Edit(ctxT(t), group.ID, first.Message.ID, "edited while cut off")
		if err != nil {
			t.Fatal(err)
		}
		reacted, err := alice.React(ctxT(t), group.ID, first.Message.ID, "🔥", true)
		if err != nil {
			t.Fatal(err)
		}
		renamed, err := alice.Rename(ctxT(t), group.ID, "renamed while cut off")
		if err != nil {
			t.Fatal(err)
		}
		sent, err := alice.Send(ctxT(t), group.ID, "during", "sent while cut off")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("A committed while cut off at positions %d, %d, %d, %d", edited.Pos, reacted.Pos, renamed.Pos, sent.Message.Pos)
		a.stop() // its NATS link is still cut: the buffered events are dropped with the connection

		// B must tell bob to reconnect once A's lease is gone.
		deadline := time.Now().Add(ttl + 30*time.Second)
		var frames []client.ServerFrame
		told := false
		for time.Now().Before(deadline) {
			frames = o.in.frames()
			if i := reconnectFrameIndex(frames); i >= 0 {
				frames, told = frames[:i], true
				break
			}
			<-time.After(50 * time.Millisecond) // polling interval
		}
		stopChatter()
		if !told {
			t.Errorf("bob on B was never told to reconnect (%d frames in %v after A died)", len(frames), ttl+30*time.Second)
		}
		saved := max(cursor, cursorOf(frames))

		// Bob catches up from the cursor he saved: every change A made while
		// cut off is there.
		again, _ := connect(t, o.bob)
		changes, _ := syncStream(t, again, saved)
		var gotEdit, gotRename, gotSend bool
		for _, ch := range changes {
			switch {
			case ch.Message != nil && ch.Message.ID == first.Message.ID:
				gotEdit = ch.Message.Text == "edited while cut off" && len(ch.Message.Reactions) == 1 && ch.Message.Reactions[0].Emoji == "🔥"
			case ch.Message != nil && ch.Message.ClientID == "during":
				gotSend = true
			case ch.Conversation != nil && ch.Conversation.ID == group.ID:
				gotRename = ch.Conversation.Title == "renamed while cut off"
			}
		}
		if !gotEdit || !gotRename || !gotSend {
			t.Errorf("bob's sync from his saved cursor %d (%d changes): edit and reaction %v, rename %v, message %v; want all of A's changes (positions %d..%d)",
				saved, len(changes), gotEdit, gotRename, gotSend, edited.Pos, sent.Message.Pos)
		}
	})
}

// While node A is cut off from NATS and keeps committing, the frames that
// node B's clients get never carry a cursor at or past A's changes, however
// long that lasts (the cursor used to pass them after --cursor-lag); when
// A is back, B's clients catch up and get them.
func TestCluster_CursorNeverPassesAChangeNotYetReceived(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		bus := startTCPProxy(t, c.natsHostPort(t))
		a := c.start(t, busVia(bus))
		b := c.start(t)
		alice, _ := a.user(t, "alice")
		o := newObserver(t, b)
		direct, err := alice.CreateDirect(ctxT(t), o.bobID)
		if err != nil {
			t.Fatal(err)
		}
		o.connect(t)
		_, cursor := syncStream(t, o.conn, 0)
		first, err := alice.Send(ctxT(t), direct.ID, "first", "before the cut")
		if err != nil {
			t.Fatal(err)
		}
		waitMessages(t, o.in, "bob on B to get alice's message from A", direct.ID, 1, 20*time.Second)
		// A's watermark covering its message reaches B within an interval
		// or so: until then B's cursor stays below it, rightly. Wait for
		// frames that show it, so that "the cursor moves on after the cut"
		// below is about the cut.
		stopWarmup := chatter(t, o.chat, o.ticks, "warmup")
		eventually(t, 30*time.Second, "bob's frames to carry a cursor at alice's first message", func() bool {
			return slices.ContainsFunc(o.in.frames(), func(f client.ServerFrame) bool { return f.Cursor >= first.Message.Pos })
		})
		stopWarmup()

		bus.Cut()
		held, err := alice.Send(ctxT(t), direct.ID, "held", "while cut off")
		if err != nil {
			t.Fatal(err)
		}
		cut := len(o.in.frames())
		stopChatter := chatter(t, o.chat, o.ticks, "tick")
		// 60 frames at 50ms apart: longer than the 2s cursor lag of old.
		eventually(t, 30*time.Second, "60 of carol's messages to reach bob", func() bool {
			n := 0
			for _, m := range liveMessages(o.in, o.ticks) {
				if strings.HasPrefix(m.ClientID, "tick-") {
					n++
				}
			}
			return n >= 60
		})
		stopChatter()
		after := o.in.frames()[cut:]
		moved := false
		for _, f := range after {
			if f.Cursor >= held.Message.Pos {
				t.Fatalf("bob on B got a %s frame with cursor %d, at or past A's change at %d, which B never received", f.Type, f.Cursor, held.Message.Pos)
			}
			moved = moved || f.Cursor > 0
		}
		if !moved {
			t.Fatalf("none of the %d frames after the cut carried a cursor", len(after))
		}
		for _, m := range liveMessages(o.in, direct.ID) {
			if m.ClientID == "held" {
				t.Fatalf("bob got %q live although A's NATS link is cut", m.ClientID)
			}
		}

		// A is back: its buffered event reaches bob late, and no frame
		// carries a cursor past it before it; or, if some of A's events were
		// lost on the way, bob is told to reconnect and his saved cursor
		// gets him A's change.
		bus.Restore()
		eventually(t, 30*time.Second, "bob on B to get A's change live or be told to reconnect", func() bool {
			frames := o.in.frames()
			return reconnectFrameIndex(frames) >= 0 || slices.ContainsFunc(liveMessages(o.in, direct.ID), func(m client.Message) bool { return m.ClientID == "held" })
		})
		frames := o.in.frames()
		if i := reconnectFrameIndex(frames); i >= 0 {
			frames = frames[:i]
		}
		for _, f := range frames {
			if m, _ := f.Msg(); m != nil && m.ClientID == "held" {
				break
			}
			if f.Cursor >= held.Message.Pos {
				t.Fatalf("bob on B got a %s frame with cursor %d before A's change at %d", f.Type, f.Cursor, held.Message.Pos)
			}
		}
		if reconnectFrameIndex(o.in.frames()) >= 0 {
			saved := max(cursor, cursorOf(frames))
			again, _ := connect(t, o.bob)
			changes, _ := syncStream(t, again, saved)
			if !slices.ContainsFunc(changes, func(ch client.Change) bool { return ch.Message != nil && ch.Message.ClientID == "held" }) {
				t.Errorf("bob's sync from his saved cursor %d lacks A's message at %d", saved, held.Message.Pos)
			}
		}
	})
}

// A node that stops cleanly says goodbye after its last event: the other
// nodes' cursors move on at once (not after its lease TTL), and no client
// of theirs is told to reconnect.
func TestCluster_CleanShutdownReleasesTheCursorWithoutReconnects(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		a, b := c.start(t), c.start(t) // leases of 2 minutes
		alice, _ := a.user(t, "alice")
		o := newObserver(t, b)
		direct, err := alice.CreateDirect(ctxT(t), o.bobID)
		if err != nil {
			t.Fatal(err)
		}
		o.connect(t)
		if _, err := alice.Send(ctxT(t), direct.ID, "last", "before A stops"); err != nil {
			t.Fatal(err)
		}
		a.stop()
		waitMessages(t, o.in, "bob on B to get A's last message", direct.ID, 1, 20*time.Second)

		after, _, err := o.chat.Send(ctxT(t), o.ticks, "after", "A is gone")
		if err != nil {
			t.Fatal(err)
		}
		chatter(t, o.chat, o.ticks, "tick")
		eventually(t, 30*time.Second, "bob's cursor to pass a change made after A stopped", func() bool {
			return cursorOf(o.in.frames()) >= after.Pos
		})
		if i := reconnectFrameIndex(o.in.frames()); i >= 0 {
			t.Errorf("bob on B was told to reconnect after a clean shutdown of A")
		}
		select {
		case <-o.conn.Done():
			t.Errorf("bob's connection to B ended: %v", o.conn.Err())
		default:
		}
	})
}

// A node that joins holds the cursor only until its first watermark: the
// cursor of the frames other nodes push never goes down, keeps moving, and
// passes the new node's changes.
func TestCluster_JoiningNodeNeverLowersTheCursor(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		_, b := c.start(t), c.start(t)
		o := newObserver(t, b)
		o.connect(t)
		chatter(t, o.chat, o.ticks, "tick")
		eventually(t, 20*time.Second, "bob's frames to carry a cursor", func() bool { return cursorOf(o.in.frames()) > 0 })

		cn := c.start(t)
		dave, _ := cn.user(t, "dave")
		direct, err := dave.CreateDirect(ctxT(t), o.bobID)
		if err != nil {
			t.Fatal(err)
		}
		fromC, err := dave.Send(ctxT(t), direct.ID, "from-c", "from the new node")
		if err != nil {
			t.Fatal(err)
		}
		waitMessages(t, o.in, "bob on B to get dave's message from C", direct.ID, 1, 20*time.Second)
		eventually(t, 30*time.Second, "bob's cursor to pass the message made on C", func() bool {
			return cursorOf(o.in.frames()) >= fromC.Message.Pos
		})
		var last int64
		for i, f := range o.in.frames() {
			if f.Type == client.TypeReconnect {
				t.Fatalf("bob was told to reconnect (frame %d)", i)
			}
			if f.Cursor == 0 {
				continue
			}
			if f.Cursor < last {
				t.Fatalf("frame %d (%s) carries cursor %d after %d: the cursor went down", i, f.Type, f.Cursor, last)
			}
			last = f.Cursor
		}
	})
}

// rawBus is a bus on a connection of the test's own, to forge what nodes
// publish.
func rawBus(t *testing.T, c *cluster) *natsbus.Bus {
	t.Helper()
	nc, err := nats.Connect(c.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	b, err := natsbus.New(nc, natsbus.Options{Prefix: c.name})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// messageEvent is the bus event of m with seq replaced.
func messageEvent(t *testing.T, m client.Message, seq int64) chat.Event {
	t.Helper()
	num := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("id %q: %v", s, err)
		}
		return n
	}
	msg := &chat.Message{ID: chat.MessageID(num(m.ID)), Conv: chat.ConversationID(num(m.Conv)), Seq: seq, Sender: chat.UserID(num(m.Sender)),
		ClientID: m.ClientID, Text: m.Text, SentAt: m.SentAt, Pos: m.Pos}
	return chat.Event{Kind: chat.EventMessage, Conv: msg.Conv, Message: msg, Pos: m.Pos}
}

// leaseHolder returns who holds node's id lease in the cluster.
func leaseHolder(t *testing.T, c *cluster, node int64) string {
	t.Helper()
	nc, err := nats.Connect(c.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctxT(t), c.name+"_nodes")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctxT(t), "node."+strconv.FormatInt(node, 10))
	if err != nil {
		t.Fatal(err)
	}
	return string(e.Value())
}

// The sequencer's Floor reaches the frames: node C's message 3 arrives at
// node B while message 2 is missing, and then a watermark of C says both
// were published (message 2 was lost on the way). Until B has fetched
// message 2 and handed both on, bob's frames carry a cursor below message
// 2; only then does the cursor move past them.
func TestCluster_FrameCursorStaysBelowAMessageTheSequencerWaitsFor(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		bus := startTCPProxy(t, c.natsHostPort(t))
		cn := c.start(t, busVia(bus))
		b := c.start(t)
		alice, _ := cn.user(t, "alice")
		o := newObserver(t, b)
		direct, err := alice.CreateDirect(ctxT(t), o.bobID)
		if err != nil {
			t.Fatal(err)
		}
		o.connect(t)
		first, err := alice.Send(ctxT(t), direct.ID, "m1", "one")
		if err != nil {
			t.Fatal(err)
		}
		waitMessages(t, o.in, "bob on B to get message 1 from C", direct.ID, 1, 20*time.Second)

		bus.Cut() // C's own events now wait in its reconnect buffer
		m2, err := alice.Send(ctxT(t), direct.ID, "m2", "two")
		if err != nil {
			t.Fatal(err)
		}
		m3, err := alice.Send(ctxT(t), direct.ID, "m3", "three")
		if err != nil {
			t.Fatal(err)
		}
		node := nodeOfID(t, first.Message.ID)
		forge := rawBus(t, c)
		ctx := context.Background()
		if err := forge.Publish(ctx, messageEvent(t, m3.Message, 3)); err != nil {
			t.Fatal(err)
		}
		if err := forge.PublishWatermark(ctx, natsbus.Watermark{Node: node, Holder: leaseHolder(t, c, node), Pos: m3.Message.Pos}); err != nil {
			t.Fatal(err)
		}
		got := waitMessages(t, o.in, "bob on B to get messages 2 and 3 (2 fetched from the store)", direct.ID, 3, 20*time.Second)
		checkLiveOrder(t, "bob on B", got)
		for _, f := range o.in.frames() {
			if m, _ := f.Msg(); m != nil && m.Conv == direct.ID && m.Seq >= 2 && f.Cursor >= m2.Message.Pos {
				t.Errorf("the frame of message %d carries cursor %d, not below message 2 at %d, which B was still waiting for", m.Seq, f.Cursor, m2.Message.Pos)
			}
		}
		// Then the cursor moves on (C's watermark vouches for both).
		chatter(t, o.chat, o.ticks, "tick")
		eventually(t, 30*time.Second, "bob's cursor to pass message 3 once it was handed on", func() bool {
			return cursorOf(o.in.frames()) >= m3.Message.Pos
		})
	})
}

// A message whose predecessor is in no store (a forged gap the sequencer
// cannot fill) makes the node tell its clients to reconnect and catch up.
func TestCluster_UnfillableGapMakesClientsReconnect(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		a, b := c.start(t), c.start(t)
		alice, _ := a.user(t, "alice")
		bob, bobID := b.user(t, "bob")
		direct, err := alice.CreateDirect(ctxT(t), bobID)
		if err != nil {
			t.Fatal(err)
		}
		_, bobIn := connect(t, bob)
		first, err := alice.Send(ctxT(t), direct.ID, "m1", "one")
		if err != nil {
			t.Fatal(err)
		}
		waitMessages(t, bobIn, "bob on B to get message 1", direct.ID, 1, 20*time.Second)
		if err := rawBus(t, c).Publish(context.Background(), messageEvent(t, first.Message, 3)); err != nil {
			t.Fatal(err)
		}
		waitFramesWithin(t, bobIn, 30*time.Second, "bob on B to be told to reconnect", func(f client.ServerFrame) bool { return f.Type == client.TypeReconnect })
	})
}
