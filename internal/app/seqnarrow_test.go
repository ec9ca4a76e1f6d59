package app_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
)

// A message that a node could not hand on in order makes only the clients
// of its conversation's members on that node reconnect. Node A, cut off
// from NATS, commits messages 1 to 3 of a brand-new group; node B first
// sees message 3 (a copy the test publishes), starts the group there once
// the sequencer's hold has passed, and then sees messages 1 and 2: too
// late to hand on (a burst of two misses). Bob, a member, is told to
// reconnect on both his devices on B (a WebSocket and an event stream),
// from a cursor below message 1, and after catching up has every message
// once, in order. Dave, on B in another conversation only, is told
// nothing and keeps receiving his messages live on the same connection.
func TestCluster_MissedMessageReconnectsOnlyItsMembers(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		bus := startTCPProxy(t, c.natsHostPort(t))
		a := c.start(t, busVia(bus))
		b := c.start(t)
		alice, _ := a.user(t, "alice")
		bob, bobID := b.user(t, "bob")
		erin, erinID := b.user(t, "erin")
		carol, _ := b.user(t, "carol")
		dave, daveID := b.user(t, "dave")
		group, err := alice.CreateGroup(ctxT(t), "reordered", []string{bobID, erinID})
		if err != nil {
			t.Fatal(err)
		}
		direct, err := carol.CreateDirect(ctxT(t), daveID)
		if err != nil {
			t.Fatal(err)
		}
		// Connected after the group exists, so the hub of B loads it with
		// bob's conversations whatever the order of the events.
		bobWS, bobIn := connect(t, bob)
		bobSSE, bobSSEIn := connectSSE(t, b.login(t, bob, "laptop"))
		daveWS, daveIn := connect(t, dave)
		if _, err := carol.Send(ctxT(t), direct.ID, "d1", "before"); err != nil {
			t.Fatal(err)
		}
		waitMessages(t, daveIn, "dave on B to get carol's first message", direct.ID, 1, 20*time.Second)

		// A's events now wait in its reconnect buffer, for good.
		bus.Cut()
		var sent []client.Message // by A, in seq order
		for _, id := range []string{"g1", "g2", "g3"} {
			r, err := alice.Send(ctxT(t), group.ID, id, "from A")
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, r.Message)
		}
		forge := rawBus(t, c)
		if err := forge.Publish(context.Background(), messageEvent(t, sent[2], 3)); err != nil {
			t.Fatal(err)
		}
		waitMessages(t, bobIn, "bob's WebSocket on B to get message 3 (B starts the group there)", group.ID, 1, 20*time.Second)
		waitMessages(t, bobSSEIn, "bob's event stream on B to get message 3", group.ID, 1, 20*time.Second)
		for seq := int64(1); seq <= 2; seq++ {
			if err := forge.Publish(context.Background(), messageEvent(t, sent[seq-1], seq)); err != nil {
				t.Fatal(err)
			}
		}

		// Bob's devices: a reconnect frame, then the end of the connection.
		for _, dev := range []struct {
			name string
			conn *client.Conn
			in   *inbox
		}{{"bob's WebSocket", bobWS, bobIn}, {"bob's event stream", bobSSE, bobSSEIn}} {
			waitFramesWithin(t, dev.in, 30*time.Second, dev.name+" on B to be told to reconnect", func(f client.ServerFrame) bool { return f.Type == client.TypeReconnect })
			select {
			case <-dev.conn.Done():
			case <-time.After(20 * time.Second):
				t.Fatalf("%s on B is still open 20s after its reconnect frame", dev.name)
			}
			frames := dev.in.frames()
			i := reconnectFrameIndex(frames)
			if code := dev.conn.CloseCode(); code != 1001 {
				t.Errorf("%s ended with close code %d, want 1001", dev.name, code)
			}
			if cursor := cursorOf(frames[:i]); cursor >= sent[0].Pos {
				t.Errorf("%s was given cursor %d before its reconnect frame, not below message 1 at %d", dev.name, cursor, sent[0].Pos)
			}
		}

		// Dave: nothing to catch up on, so no reconnect, and his
		// connection still carries carol's messages live.
		if _, err := carol.Send(ctxT(t), direct.ID, "d2", "after"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "dave's connection to get carol's second message, or end", func() bool {
			select {
			case <-daveWS.Done():
				return true
			default:
			}
			return len(liveMessages(daveIn, direct.ID)) >= 2
		})
		if reconnectFrameIndex(daveIn.frames()) >= 0 {
			t.Errorf("dave, in no conversation that missed a message, was told to reconnect")
		}
		if err := daveWS.Err(); err != nil {
			t.Fatalf("dave's connection ended: %v", err)
		}

		// Bob catches up from the cursor he saved, then hears the group
		// live again: every message once, in seq order.
		cursor := cursorOf(bobIn.frames())
		conn, in := connect(t, bob)
		changes, _ := syncStream(t, conn, cursor)
		have := make(map[int64]string) // seq -> message id, as a client keeps them
		for _, m := range liveMessages(bobIn, group.ID) {
			have[m.Seq] = m.ID
		}
		var caught []int64
		for _, ch := range changes {
			if m := ch.Message; m != nil && m.Conv == group.ID {
				caught = append(caught, m.Seq)
				have[m.Seq] = m.ID
			}
		}
		if !slices.Equal(caught, []int64{1, 2, 3}) {
			t.Errorf("bob's catch-up from cursor %d returned the group's messages %v, want [1 2 3]", cursor, caught)
		}
		m4, err := erin.Send(ctxT(t), group.ID, "g4", "from B")
		if err != nil {
			t.Fatal(err)
		}
		live := waitMessages(t, in, "bob's new connection to get message 4 live", group.ID, 1, 20*time.Second)
		checkLiveOrder(t, "bob's new connection", live)
		for _, m := range live {
			have[m.Seq] = m.ID
		}
		want := map[int64]string{1: sent[0].ID, 2: sent[1].ID, 3: sent[2].ID, 4: m4.Message.ID}
		if len(have) != len(want) {
			t.Errorf("bob has the group's messages %v, want %v", have, want)
		}
		for seq, id := range want {
			if have[seq] != id {
				t.Errorf("bob has message %s as seq %d, want %s", have[seq], seq, id)
			}
		}
	})
}
