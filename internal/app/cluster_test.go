package app_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
)

func TestCluster_EventsReachEveryDeviceOnEveryNode(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		a, b, cn := c.start(t), c.start(t), c.start(t)
		alice, _ := a.user(t, "alice")
		bob, bobID := b.user(t, "bob")
		carol, carolID := cn.user(t, "carol")
		dave, daveID := b.user(t, "dave")
		aliceC := cn.login(t, alice, "tablet")
		bobC := cn.login(t, bob, "laptop")

		aA, aAin := connect(t, alice)
		_, aCin := connect(t, aliceC)
		bB, bBin := connect(t, bob)
		_, bCin := connect(t, bobC)
		cC, cCin := connect(t, carol)
		_, dBin := connect(t, dave)

		// Conversations created on A reach their members' devices on B and C.
		direct, err := alice.CreateDirect(ctxT(t), bobID)
		if err != nil {
			t.Fatal(err)
		}
		group, err := alice.CreateGroup(ctxT(t), "trio", []string{bobID, carolID})
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range []*inbox{bBin, bCin} {
			for _, conv := range []string{direct.ID, group.ID} {
				waitFrames(t, in, client.TypeConversation, 1, func(f client.ServerFrame) bool { return f.Conversation.ID == conv })
			}
		}
		waitFrames(t, cCin, client.TypeConversation, 1, func(f client.ServerFrame) bool { return f.Conversation.ID == group.ID })

		// Messages sent on A reach every other device, each once, in order.
		const perConv = 10
		var acked []client.Message
		for i := range perConv {
			for _, conv := range []string{direct.ID, group.ID} {
				m, _, err := aA.Send(ctxT(t), conv, fmt.Sprintf("a-%s-%d", conv, i), fmt.Sprintf("message %d", i))
				if err != nil {
					t.Fatal(err)
				}
				acked = append(acked, m)
			}
		}
		wantDevice := func(who string, in *inbox, convs ...string) {
			t.Helper()
			for _, conv := range convs {
				got := waitMessages(t, in, who+" to receive alice's messages", conv, perConv, 20*time.Second)
				for i, m := range got {
					if i >= perConv || m.Seq != int64(i+1) || m.ClientID != fmt.Sprintf("a-%s-%d", conv, i) {
						t.Errorf("%s: live message %d of %s is seq %d (%s), want seq %d, each once, in order", who, i, conv, m.Seq, m.ClientID, i+1)
						break
					}
				}
			}
		}
		wantDevice("bob on B", bBin, direct.ID, group.ID)
		wantDevice("bob on C", bCin, direct.ID, group.ID)
		wantDevice("alice on C", aCin, direct.ID, group.ID)
		wantDevice("carol on C", cCin, group.ID)
		for _, m := range acked {
			if got := nodeOfID(t, m.ID); got != nodeOfID(t, acked[0].ID) {
				t.Fatalf("messages sent on one node carry node ids %d and %d", nodeOfID(t, acked[0].ID), got)
			}
		}

		// Bob acts on B: a reply, an edit, a reaction and a deletion reach A.
		first := acked[1] // alice's first group message
		reply, _, err := bB.Reply(ctxT(t), group.ID, "b-reply", "a reply from B", first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bB.Edit(ctxT(t), group.ID, reply.ID, "an edited reply from B"); err != nil {
			t.Fatal(err)
		}
		if _, err := bB.React(ctxT(t), group.ID, first.ID, "👍", true); err != nil {
			t.Fatal(err)
		}
		if _, err := bB.Delete(ctxT(t), group.ID, reply.ID); err != nil {
			t.Fatal(err)
		}
		got := waitMessages(t, aAin, "alice on A to get bob's reply", group.ID, 1, 20*time.Second)
		if got[0].ID != reply.ID || got[0].ReplyTo != first.ID || got[0].Text != "a reply from B" {
			t.Errorf("alice on A got %+v, want bob's reply to %s", got[0], first.ID)
		}
		for _, ok := range []func(m client.Message) bool{
			func(m client.Message) bool {
				return m.ID == reply.ID && m.Text == "an edited reply from B" && m.EditedAt != nil
			}, // the edit
			func(m client.Message) bool {
				return m.ID == first.ID && len(m.Reactions) == 1 && m.Reactions[0].Emoji == "👍"
			}, // the reaction
			func(m client.Message) bool { return m.ID == reply.ID && m.Deleted && m.Text == "" }, // the deletion
		} {
			waitFrames(t, aAin, client.TypeMessageUpdated, 1, func(f client.ServerFrame) bool { return ok(updatedMsg(t, f)) })
		}

		// Carol types on C: alice sees it on A.
		if err := cC.Typing(ctxT(t), group.ID, true); err != nil {
			t.Fatal(err)
		}
		waitFrames(t, aAin, client.TypeTyping, 1, func(f client.ServerFrame) bool {
			return f.User == carolID && f.Conv == group.ID && f.State == "start"
		})

		// Bob reads on B: alice on A and bob's other device on C hear it,
		// and bob's unread count is cleared on every node.
		if _, err := bB.MarkRead(ctxT(t), direct.ID, perConv); err != nil {
			t.Fatal(err)
		}
		for _, in := range []*inbox{aAin, bCin} {
			waitFrames(t, in, client.TypeReceipt, 1, func(f client.ServerFrame) bool {
				return f.User == bobID && f.Conv == direct.ID && f.ReadSeq == perConv
			})
		}
		conv, err := bobC.Conversation(ctxT(t), direct.ID)
		if err != nil || conv.Unread != 0 || conv.ReadSeq != perConv {
			t.Fatalf("bob's direct conversation seen on C after reading on B: unread %d, read_seq %d (%v); want 0 and %d", conv.Unread, conv.ReadSeq, err, perConv)
		}

		// Conversation events reach every node.
		if _, err := alice.Rename(ctxT(t), group.ID, "renamed on A"); err != nil {
			t.Fatal(err)
		}
		for _, in := range []*inbox{bBin, bCin, cCin, aCin} {
			waitFrames(t, in, client.TypeConversationUpdated, 1, func(f client.ServerFrame) bool { return f.Conversation.Title == "renamed on A" })
		}
		if _, err := alice.AddMembers(ctxT(t), group.ID, []string{daveID}); err != nil {
			t.Fatal(err)
		}
		waitFrames(t, dBin, client.TypeConversation, 1, func(f client.ServerFrame) bool { return f.Conversation.ID == group.ID })
		for _, in := range []*inbox{aAin, bCin, cCin} {
			waitFrames(t, in, client.TypeMemberAdded, 1, func(f client.ServerFrame) bool { return slices.Contains(f.Users, daveID) })
		}
		if _, err := alice.Send(ctxT(t), group.ID, "for-dave", "welcome dave"); err != nil {
			t.Fatal(err)
		}
		waitMessages(t, dBin, "dave on B to get a message after joining", group.ID, 1, 20*time.Second)
		if err := alice.RemoveMember(ctxT(t), group.ID, daveID); err != nil {
			t.Fatal(err)
		}
		for _, in := range []*inbox{aAin, bBin, cCin, dBin} {
			waitFrames(t, in, client.TypeMemberGone, 1, func(f client.ServerFrame) bool { return slices.Contains(f.Users, daveID) })
		}

		// Dave, removed on A while connected to B, gets nothing more of the
		// group: a message to him in another conversation, sent after the
		// group's, orders the check.
		removedAt := len(dBin.frames())
		if _, err := alice.Send(ctxT(t), group.ID, "after-dave", "dave is gone"); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Rename(ctxT(t), group.ID, "without dave"); err != nil {
			t.Fatal(err)
		}
		waitFrames(t, bBin, client.TypeConversationUpdated, 1, func(f client.ServerFrame) bool { return f.Conversation.Title == "without dave" })
		toDave, err := alice.CreateDirect(ctxT(t), daveID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Send(ctxT(t), toDave.ID, "sentinel", "sentinel"); err != nil {
			t.Fatal(err)
		}
		waitMessages(t, dBin, "dave to get the sentinel", toDave.ID, 1, 20*time.Second)
		for _, f := range dBin.frames()[removedAt:] {
			if f.Conv == group.ID || (f.Conversation != nil && f.Conversation.ID == group.ID) {
				t.Errorf("dave got a %s frame of the group after his removal", f.Type)
			}
			if m, _ := f.Msg(); m != nil && m.Conv == group.ID {
				t.Errorf("dave got a %s frame with message %q of the group after his removal", f.Type, m.ClientID)
			}
		}
		if _, err := dave.History(ctxT(t), group.ID, client.HistoryQuery{}); client.ErrorCode(err) != "not_found" {
			t.Errorf("dave reading the group's history after his removal: %v, want not_found", err)
		}

		// Finally, no device got any message twice, and the sending
		// connection got none of its own sends.
		if err := aA.Ping(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		for who, in := range map[string]*inbox{"alice on A": aAin, "alice on C": aCin, "bob on B": bBin, "bob on C": bCin, "carol on C": cCin, "dave on B": dBin} {
			for _, conv := range []string{direct.ID, group.ID} {
				checkLiveOrder(t, who+" in "+conv, liveMessages(in, conv))
			}
		}
		for _, conv := range []string{direct.ID, group.ID} {
			for _, m := range liveMessages(aAin, conv) {
				if strings.HasPrefix(m.ClientID, "a-") {
					t.Errorf("alice's sending connection got a message frame for %q, which it sent (the ack is its copy)", m.ClientID)
				}
			}
		}
	})
}

func TestCluster_ConcurrentSendersOnEveryNodeGetGapFreeOrderedSeqs(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		const perSender = 100
		nodes := []*node{c.start(t), c.start(t), c.start(t)}
		owner, _ := nodes[0].user(t, "owner")
		senders := make([]*client.Client, len(nodes))
		ids := make([]string, len(nodes))
		for i, n := range nodes {
			senders[i], ids[i] = n.user(t, fmt.Sprintf("sender%d_", i))
		}
		conv, err := owner.CreateGroup(ctxT(t), "busy", ids)
		if err != nil {
			t.Fatal(err)
		}
		// Listeners: the owner on every node, and each sender's other
		// device on the next node; each sender's own connection hears the
		// other senders.
		type listener struct {
			who    string
			in     *inbox
			sender int // index of the sender whose sends it does not get, or -1
		}
		var listeners []listener
		conns := make([]*client.Conn, len(nodes))
		for i, n := range nodes {
			watcher := client.New(n.URL, client.Options{})
			watcher.SetTokens(owner.Tokens())
			_, in := connect(t, watcher)
			listeners = append(listeners, listener{fmt.Sprintf("owner on node %d", i), in, -1})
			other := nodes[(i+1)%len(nodes)].login(t, senders[i], "other")
			_, in = connect(t, other)
			listeners = append(listeners, listener{fmt.Sprintf("sender %d's other device on node %d", i, (i+1)%len(nodes)), in, -1})
			var sin *inbox
			conns[i], sin = connect(t, senders[i])
			listeners = append(listeners, listener{fmt.Sprintf("sender %d on node %d", i, i), sin, i})
		}
		// One message first, heard everywhere, so that every node's
		// sequencer follows the group from seq 1: a node that sees a brand
		// new group's seq 2 before its seq 1 starts it at 2 once Hold has
		// passed, and a later seq 1 then makes it tell its clients to
		// reconnect (safe, but this test's connections do not redial).
		if _, err := owner.Send(ctxT(t), conv.ID, "warm-up", "first"); err != nil {
			t.Fatal(err)
		}
		for _, l := range listeners {
			waitMessages(t, l.in, l.who+" to hear the first message", conv.ID, 1, 20*time.Second)
		}

		acked := make([][]client.Message, len(nodes))
		var wg sync.WaitGroup
		errs := make(chan error, len(nodes))
		for i, conn := range conns {
			wg.Go(func() {
				for j := range perSender {
					m, dup, err := conn.Send(ctxT(t), conv.ID, fmt.Sprintf("s%d-%d", i, j), fmt.Sprintf("message %d from node %d", j, i))
					if err != nil || dup {
						errs <- fmt.Errorf("sender %d, message %d: duplicate %v, %w", i, j, dup, err)
						return
					}
					acked[i] = append(acked[i], m)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}

		// History: seq 1..301 without gaps or duplicates, and each sender's
		// messages in the order it sent them.
		all := historyAfter(t, owner, conv.ID, 0)
		const total = 3*perSender + 1 // and the warm-up
		if len(all) != total {
			t.Fatalf("history has %d messages, want %d", len(all), total)
		}
		lastOf := make(map[string]int)
		for i, m := range all {
			if m.Seq != int64(i+1) {
				t.Fatalf("history message %d has seq %d: a gap or a duplicate", i, m.Seq)
			}
			if i == 0 && m.ClientID == "warm-up" {
				continue
			}
			var s, j int
			if _, err := fmt.Sscanf(m.ClientID, "s%d-%d", &s, &j); err != nil {
				t.Fatalf("unexpected client id %q", m.ClientID)
			}
			if prev, ok := lastOf[m.Sender]; ok && j != prev+1 {
				t.Fatalf("sender %d's message %d has seq %d right after its message %d: sends of one connection out of order", s, j, m.Seq, prev)
			}
			lastOf[m.Sender] = j
		}
		for i := range acked {
			for j, m := range acked[i] {
				if h := all[m.Seq-1]; h.ID != m.ID || h.ClientID != fmt.Sprintf("s%d-%d", i, j) {
					t.Fatalf("acked %s as seq %d, history has %s there", m.ClientID, m.Seq, h.ClientID)
				}
			}
		}

		// Live: every listener hears every message it should (all but its
		// own connection's sends) once, in strictly increasing seq order.
		deadline := time.Now().Add(20 * time.Second)
		for _, l := range listeners {
			want := total
			if l.sender >= 0 {
				want -= perSender
			}
			got, ok := awaitMessages(l.in, conv.ID, want, time.Until(deadline))
			if !ok {
				t.Errorf("%s heard %s", l.who, describeMissing(got, all, ids, l.sender))
			}
			checkLiveOrder(t, l.who, got)
			for _, m := range got {
				if l.sender >= 0 && m.Sender == ids[l.sender] {
					t.Errorf("%s heard its own send %s", l.who, m.ClientID)
				}
			}
		}
	})
}

func TestCluster_SameClientIDOnTwoNodesStoresOneMessage(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		const rounds = 20
		a, b := c.start(t), c.start(t)
		alice, _ := a.user(t, "alice")
		_, bobID := a.user(t, "bob")
		conv, err := alice.CreateDirect(ctxT(t), bobID)
		if err != nil {
			t.Fatal(err)
		}
		onA, _ := connect(t, alice)
		onB, _ := connect(t, b.login(t, alice, "phone"))
		for r := range rounds {
			id := fmt.Sprintf("retry-%d", r)
			var res [2]client.Message
			var dup [2]bool
			var errs [2]error
			var wg sync.WaitGroup
			for i, conn := range []*client.Conn{onA, onB} {
				wg.Go(func() { res[i], dup[i], errs[i] = conn.Send(ctxT(t), conv.ID, id, "sent twice at once") })
			}
			wg.Wait()
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("round %d: sends failed: %v, %v", r, errs[0], errs[1])
			}
			if res[0].ID != res[1].ID || res[0].Seq != res[1].Seq || res[0].Seq != int64(r+1) {
				t.Fatalf("round %d: acks differ: A %s seq %d, B %s seq %d; want one message at seq %d", r, res[0].ID, res[0].Seq, res[1].ID, res[1].Seq, r+1)
			}
			if dup[0] == dup[1] {
				t.Fatalf("round %d: duplicate flags %v and %v, want exactly one original", r, dup[0], dup[1])
			}
		}
		if got := historyAfter(t, alice, conv.ID, 0); len(got) != rounds {
			t.Fatalf("history has %d messages after %d rounds of double sends, want %d", len(got), rounds, rounds)
		}
	})
}

func TestCluster_NodesStartedAtOnceMintDistinctNodeIDs(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		const count = 5
		nodes := make([]*node, count)
		var wg sync.WaitGroup
		for i := range nodes {
			// StartNode fails the test on error; a failed start leaves nil.
			wg.Go(func() { nodes[i] = c.start(t) })
		}
		wg.Wait()
		for i, n := range nodes {
			if n == nil {
				t.Fatalf("node %d did not start", i)
			}
		}
		owner, _ := nodes[0].user(t, "owner")
		byNode := make(map[int64]int)
		for i, n := range nodes {
			u, id := n.user(t, "member")
			conv, err := u.CreateDirect(ctxT(t), mustMe(t, owner).ID)
			if err != nil {
				t.Fatal(err)
			}
			m, err := u.Send(ctxT(t), conv.ID, "hello", "made here")
			if err != nil {
				t.Fatal(err)
			}
			node := nodeOfID(t, m.Message.ID)
			if other := nodeOfID(t, id); other != node {
				t.Errorf("node %d made user id with node id %d but message id with %d", i, other, node)
			}
			if prev, ok := byNode[node]; ok {
				t.Errorf("nodes %d and %d both mint ids with node id %d", prev, i, node)
			}
			byNode[node] = i
		}
		t.Logf("node ids: %v", byNode)
	})
}

func TestCluster_PresenceAcrossNodes(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		busProxy := startTCPProxy(t, c.natsHostPort(t))
		a, b := c.start(t), c.start(t)
		dying := c.start(t, busVia(busProxy))
		alice, _ := a.user(t, "alice")
		bob, bobID := b.user(t, "bob")
		carol, carolID := dying.user(t, "carol")
		for _, id := range []string{bobID, carolID} {
			if _, err := alice.CreateDirect(ctxT(t), id); err != nil {
				t.Fatal(err)
			}
		}
		_, aliceIn := connect(t, alice)
		presenceOf(t, alice, bobID, "offline")

		// Bob comes online on B: alice on A hears it and can ask.
		bobConn, _ := connect(t, bob)
		waitFrames(t, aliceIn, client.TypePresence, 1, func(f client.ServerFrame) bool { return f.User == bobID && f.Status == "online" })
		if status, body := rawRequest(t, "GET", a.URL+"/v1/users/"+bobID+"/presence", alice.Tokens().AccessToken, ""); status != 200 || !strings.Contains(body, `"status":"online"`) {
			t.Fatalf("GET /v1/users/{bob}/presence on A: %d %s, want online", status, body)
		}

		// Bob's device closes: offline on A after the grace period.
		closed := time.Now()
		_ = bobConn.Close()
		waitFrames(t, aliceIn, client.TypePresence, 1, func(f client.ServerFrame) bool {
			return f.User == bobID && f.Status == "offline" && f.LastSeen != nil
		})
		if took := time.Since(closed); took < clusterPresenceGrace {
			t.Errorf("bob went offline %v after his device closed, before the %v grace period", took, clusterPresenceGrace)
		}
		if status, body := rawRequest(t, "GET", a.URL+"/v1/users/"+bobID+"/presence", alice.Tokens().AccessToken, ""); status != 200 || !strings.Contains(body, `"status":"offline"`) {
			t.Fatalf("GET /v1/users/{bob}/presence on A: %d %s, want offline", status, body)
		}

		// Carol is online on a node that then loses NATS without any
		// cleanup: her key ages out and A says offline within the TTL and
		// grace (plus slack for a busy machine).
		_, _ = connect(t, carol)
		waitFrames(t, aliceIn, client.TypePresence, 1, func(f client.ServerFrame) bool { return f.User == carolID && f.Status == "online" })
		cut := time.Now()
		busProxy.Cut()
		limit := clusterPresenceTTL + clusterPresenceGrace + 5*time.Second
		waitFramesWithin(t, aliceIn, limit, "carol to go offline on A after her node lost NATS", func(f client.ServerFrame) bool {
			return f.User == carolID && f.Status == "offline"
		})
		t.Logf("carol went offline on A %v after her node was cut off (TTL %v, grace %v)", time.Since(cut).Round(time.Millisecond), clusterPresenceTTL, clusterPresenceGrace)
		presenceOf(t, alice, carolID, "offline")
		busProxy.Restore() // so that the node shuts down without waiting on NATS
	})
}

func TestCluster_DrainedClientsReconnectToAnotherNodeAndCatchUp(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		a, b, cn := c.start(t), c.start(t), c.start(t)
		alice, _ := cn.user(t, "alice")
		bob, bobID := a.user(t, "bob")
		carol, carolID := a.user(t, "carol")
		group, err := alice.CreateGroup(ctxT(t), "drain", []string{bobID, carolID})
		if err != nil {
			t.Fatal(err)
		}
		sender, _ := connect(t, alice) // on C
		type device struct {
			name   string
			c      *client.Client
			conn   *client.Conn
			in     *inbox
			cursor int64 // sync stream cursor: the highest cursor pushed frames carried
		}
		devices := []*device{{name: "bob", c: bob}, {name: "carol", c: carol}}
		for _, d := range devices {
			d.conn, d.in = connect(t, d.c)
			_, d.cursor = syncStream(t, d.conn, 0)
		}

		// Alice sends from C without pause while A drains.
		var (
			mu    sync.Mutex
			acked []client.Message
			wg    sync.WaitGroup
		)
		stop := make(chan struct{})
		wg.Go(func() {
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				m, _, err := sender.Send(ctxT(t), group.ID, fmt.Sprintf("d-%d", j), fmt.Sprintf("message %d", j))
				if err != nil {
					t.Errorf("send on C failed while A drained: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, m)
				mu.Unlock()
			}
		})
		ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
		for _, d := range devices {
			waitMessages(t, d.in, d.name+" to get messages live on A", group.ID, 10, 20*time.Second)
		}
		a.stop()
		for _, d := range devices {
			select {
			case <-d.conn.Done():
			case <-time.After(10 * time.Second):
				t.Fatalf("%s's connection to A still open after A stopped", d.name)
			}
			if code := d.conn.CloseCode(); code != 1001 {
				t.Errorf("%s's connection closed with %d (%v), want 1001", d.name, code, d.conn.Err())
			}
			// The reconnect frame comes before the close, so once it is in
			// the inbox, so is everything the connection delivered.
			f := waitFramesWithin(t, d.in, 10*time.Second, d.name+"'s reconnect frame", func(f client.ServerFrame) bool { return f.Type == client.TypeReconnect })
			if f.AfterMS < 0 || time.Duration(f.AfterMS)*time.Millisecond >= 50*time.Millisecond {
				t.Errorf("%s was told to reconnect after %dms, want within the 50ms drain jitter", d.name, f.AfterMS)
			}
			d.cursor = max(d.cursor, highestCursor(d.in))
		}
		after := ackedCount()
		eventually(t, 20*time.Second, "more sends on C after A stopped", func() bool { return ackedCount() >= after+20 })
		close(stop)
		wg.Wait()
		history := historyAfter(t, alice, group.ID, 0)
		for i, m := range history {
			if m.Seq != int64(i+1) {
				t.Fatalf("history message %d has seq %d", i, m.Seq)
			}
		}
		mu.Lock()
		for _, m := range acked {
			if m.Seq > int64(len(history)) || history[m.Seq-1].ID != m.ID {
				t.Errorf("acknowledged %s (seq %d) is not in history", m.ClientID, m.Seq)
			}
		}
		mu.Unlock()

		// Each device reconnects to B and catches up from its cursor:
		// what it had live plus what the sync stream gives is exactly the
		// history, with nothing twice.
		for _, d := range devices {
			again := client.New(b.URL, client.Options{})
			again.SetTokens(d.c.Tokens())
			conn, _ := connect(t, again)
			changes, _ := syncStream(t, conn, d.cursor)
			overlap := 0
			defer func() {
				t.Logf("%s: %d messages came both live and in the sync stream after cursor %d", d.name, overlap, d.cursor)
			}()
			have := make(map[int64]bool)
			for _, m := range liveMessages(d.in, group.ID) {
				have[m.Seq] = true
			}
			contiguous := int64(0)
			for have[contiguous+1] {
				contiguous++
			}
			for _, ch := range changes {
				if ch.Kind != "message" || ch.Message == nil || ch.Message.Conv != group.ID {
					continue
				}
				if ch.Pos <= d.cursor {
					t.Errorf("%s: the sync stream after cursor %d gave pos %d", d.name, d.cursor, ch.Pos)
				}
				if have[ch.Message.Seq] {
					overlap++ // came live too: the cursor lags the newest commits by design
				}
				have[ch.Message.Seq] = true
			}
			for _, m := range history {
				if !have[m.Seq] {
					t.Errorf("%s: seq %d (%s) neither came live nor in the sync stream after cursor %d: lost", d.name, m.Seq, m.ClientID, d.cursor)
				}
			}
			// Per conversation, from the last seq held without a gap.
			missed, err := conn.CatchUp(ctxT(t), group.ID, contiguous)
			if err != nil {
				t.Fatal(err)
			}
			if len(missed) != len(history)-int(contiguous) {
				t.Errorf("%s: catch-up after seq %d gave %d messages, want %d", d.name, contiguous, len(missed), len(history)-int(contiguous))
			}
			for i, m := range missed {
				if m.Seq != contiguous+int64(i)+1 {
					t.Errorf("%s: catch-up message %d has seq %d, want %d", d.name, i, m.Seq, contiguous+int64(i)+1)
					break
				}
			}
			t.Logf("%s had %d messages live on A, caught up %d on B", d.name, contiguous, len(missed))
		}
	})
}

func TestCluster_NodeCutOffFromPostgreSQL(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		pg := startTCPProxy(t, c.pgHostPort(t))
		a := c.start(t, c.storeVia(t, pg))
		b := c.start(t)
		alice, _ := a.user(t, "alice")
		bob, bobID := b.user(t, "bob")
		conv, err := alice.CreateDirect(ctxT(t), bobID)
		if err != nil {
			t.Fatal(err)
		}
		dev := newRedialing(t, alice)
		_, bobIn := connect(t, bob)
		if st := readyz(t, a); st != 200 {
			t.Fatalf("/readyz on A before the cut: %d", st)
		}

		// A background sender on A runs into the cut: what it was told
		// was stored must be; what failed has an unknown fate.
		var (
			mu      sync.Mutex
			acked   = make(map[string]client.Message)
			unknown = make(map[string]string) // client id -> error code
			wg      sync.WaitGroup
		)
		stop := make(chan struct{})
		wg.Go(func() {
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("bg-%d", j)
				m, _, _, err := dev.send(conv.ID, id, "background")
				mu.Lock()
				if err != nil {
					unknown[id] = client.ErrorCode(err)
				} else {
					acked[id] = m
				}
				mu.Unlock()
				if err != nil {
					<-time.After(20 * time.Millisecond) // pace retries of a failing store
				}
			}
		})
		eventually(t, 20*time.Second, "20 background sends acked", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 20 })
		pg.Cut()
		eventually(t, 20*time.Second, "/readyz on the node cut off from PostgreSQL to turn 503", func() bool { return readyz(t, a) == 503 })
		if st := readyz(t, b); st != 200 {
			t.Errorf("/readyz on the other node is %d, want 200", st)
		}

		// While cut, sends on A fail with the retryable code, over the
		// WebSocket and over REST, and none is stored or announced.
		var refused []string
		for k := range 3 {
			id := fmt.Sprintf("cut-ws-%d", k)
			if _, _, _, err := dev.send(conv.ID, id, "while cut"); client.ErrorCode(err) != "unavailable" {
				t.Errorf("WebSocket send while the store is unreachable: %v, want code unavailable", err)
			}
			refused = append(refused, id)
			id = fmt.Sprintf("cut-rest-%d", k)
			var e *client.Error
			if _, err := alice.Send(ctxT(t), conv.ID, id, "while cut"); !errors.As(err, &e) || e.Code != "unavailable" || e.Status != 503 {
				t.Errorf("REST send while the store is unreachable: %v, want 503 unavailable", err)
			}
			refused = append(refused, id)
		}
		close(stop)
		wg.Wait()
		mu.Lock()
		for id, code := range unknown {
			if code != "unavailable" {
				t.Errorf("background send %s failed with code %q, want unavailable", id, code)
			}
		}
		t.Logf("background: %d acked before the cut, %d failed during it", len(acked), len(unknown))
		mu.Unlock()
		stored := byClientID(t, historyAfter(t, bob, conv.ID, 0)) // read through B
		for _, id := range refused {
			if m, ok := stored[id]; ok {
				t.Errorf("%s was refused with unavailable while the store was unreachable, yet stored as seq %d", id, m.Seq)
			}
		}
		for _, m := range liveMessages(bobIn, conv.ID) {
			if slices.Contains(refused, m.ClientID) {
				t.Errorf("bob was told live of %s, which was never stored", m.ClientID)
			}
		}

		// Restored: A is ready and stores sends again within a bounded time.
		pg.Restore()
		eventually(t, 20*time.Second, "/readyz on A to be 200 again", func() bool { return readyz(t, a) == 200 })
		eventually(t, 20*time.Second, "a send on A to succeed again", func() bool {
			_, _, _, err := dev.send(conv.ID, "probe", "back") // same client id: stored at most once
			return err == nil
		})
		// Every send whose fate was unknown is retried with its client id.
		// One refused while cut is stored now for the first time, unless the
		// server ended the connection under an attempt (a commit whose answer
		// was lost during the cut makes every client reconnect and catch up),
		// in which case that attempt may have stored it.
		for _, id := range refused {
			m, dup, cut, err := dev.send(conv.ID, id, "while cut")
			if err != nil || (dup && !cut) {
				t.Errorf("retrying %s after the restore: duplicate %v (connection ended under an attempt: %v), %v; want a first store", id, dup, cut, err)
			}
			acked[id] = m
		}
		for id := range unknown {
			m, _, _, err := dev.send(conv.ID, id, "background")
			if err != nil {
				t.Fatalf("retrying %s: %v", id, err)
			}
			acked[id] = m
		}
		final := historyAfter(t, bob, conv.ID, 0)
		seen := make(map[string]bool)
		for i, m := range final {
			if m.Seq != int64(i+1) {
				t.Fatalf("history message %d has seq %d: a gap", i, m.Seq)
			}
			if seen[m.ClientID] {
				t.Errorf("%s is stored twice", m.ClientID)
			}
			seen[m.ClientID] = true
			if want, ok := acked[m.ClientID]; m.ClientID != "probe" && (!ok || want.ID != m.ID || want.Seq != m.Seq) {
				t.Errorf("history holds %s as %s seq %d; acknowledged as %+v (%v)", m.ClientID, m.ID, m.Seq, want, ok)
			}
		}
		for id := range acked {
			if !seen[id] {
				t.Errorf("acknowledged %s is not in history", id)
			}
		}
	})
}

// redialing is one device of a user that does what a real client does
// when the server ends its connection (code 1001 after a change was lost
// on the way, say): it connects again and retries the request the close
// cut off, with the same client id.
type redialing struct {
	t    testing.TB
	c    *client.Client
	mu   sync.Mutex
	conn *client.Conn
}

func newRedialing(t testing.TB, c *client.Client) *redialing {
	conn, _ := connect(t, c)
	return &redialing{t: t, c: c, conn: conn}
}

// send sends until the server answers (or a dial fails, which it returns):
// cut says that the connection ended under some attempt, so that the
// message may have been stored by it and the answer be a duplicate.
func (r *redialing) send(conv, id, text string) (m client.Message, dup, cut bool, err error) {
	for range 10 {
		var conn *client.Conn
		if conn, err = r.current(); err != nil {
			return client.Message{}, false, cut, err
		}
		m, dup, err = conn.Send(ctxT(r.t), conv, id, text)
		if !errors.Is(err, client.ErrClosed) {
			return m, dup, cut, err
		}
		r.t.Logf("%s: the server ended the connection (code %d); reconnecting", id, conn.CloseCode())
		cut = true
	}
	return m, dup, cut, err
}

// current returns the open connection, dialing a new one when the last
// has ended.
func (r *redialing) current() (*client.Conn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.conn.Done():
	default:
		return r.conn, nil
	}
	conn, err := r.c.Connect(ctxT(r.t), client.ConnOptions{Transport: client.TransportWebSocket})
	if err != nil {
		return nil, err
	}
	r.t.Cleanup(func() { _ = conn.Close() })
	r.conn = conn
	return conn, nil
}

func TestCluster_NodeCutOffFromNATS(t *testing.T) {
	t.Parallel()
	eachNATS(t, func(t *testing.T, c *cluster) {
		bus := startTCPProxy(t, c.natsHostPort(t))
		a := c.start(t, busVia(bus))
		b, cn := c.start(t), c.start(t)
		alice, _ := a.user(t, "alice")
		bob, bobID := b.user(t, "bob")
		conv, err := alice.CreateDirect(ctxT(t), bobID)
		if err != nil {
			t.Fatal(err)
		}
		conn, connIn := connect(t, alice)
		other, otherIn := connect(t, a.login(t, alice, "tablet")) // another client of the cut node
		bobConn, bobIn := connect(t, bob)
		for i := range 5 {
			if _, _, err := conn.Send(ctxT(t), conv.ID, fmt.Sprintf("before-%d", i), "before"); err != nil {
				t.Fatal(err)
			}
		}
		waitMessages(t, bobIn, "bob on B to get A's messages live", conv.ID, 5, 20*time.Second)

		bus.Cut()
		// Sends on A are still stored and acknowledged, and A stays ready:
		// NATS alone being away must not take nodes out of service.
		for i := range 10 {
			if _, _, err := conn.Send(ctxT(t), conv.ID, fmt.Sprintf("cut-%d", i), "while NATS is away"); err != nil {
				t.Fatalf("send on A while its NATS link is cut: %v", err)
			}
		}
		if st := readyz(t, a); st != 200 {
			t.Errorf("/readyz on a node that lost only NATS is %d, want 200", st)
		}
		// B's bus works: a message of bob's sent on C reaches B. What A sent
		// meanwhile cannot have come over NATS; B may fill the gap from the
		// store (its sequencer does), but then in order and once.
		if _, err := cn.login(t, bob, "laptop").Send(ctxT(t), conv.ID, "barrier", "from C"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "bob on B to get the barrier sent on C", func() bool {
			return slices.ContainsFunc(liveMessages(bobIn, conv.ID), func(m client.Message) bool { return m.ClientID == "barrier" })
		})
		filled := 0
		for _, m := range liveMessages(bobIn, conv.ID) {
			if strings.HasPrefix(m.ClientID, "cut-") {
				filled++
			}
		}
		t.Logf("bob on B got %d of the 10 messages sent on A during the cut live, from the store, before the barrier", filled)
		checkLiveOrder(t, "bob on B", liveMessages(bobIn, conv.ID))
		history := historyAfter(t, bob, conv.ID, 0)
		if len(history) != 16 {
			t.Fatalf("history read on B has %d messages, want 16 (5 before, 10 during the cut, the barrier)", len(history))
		}

		// NATS is back: A's clients are told to reconnect (they missed
		// events). The other nodes' clients are told only if some of A's
		// events were lost on the way (a gap in A's sequence): the events
		// A buffered arrive late but in order, and B's cursor never passed
		// them (it waits for A's watermarks). Either way bob catches up
		// with nothing lost.
		bus.Restore()
		for name, cl := range map[string]struct {
			conn *client.Conn
			in   *inbox
		}{"alice's sending device": {conn, connIn}, "alice's other device": {other, otherIn}} {
			waitFramesWithin(t, cl.in, 20*time.Second, name+" to be told to reconnect", func(f client.ServerFrame) bool { return f.Type == client.TypeReconnect })
			select {
			case <-cl.conn.Done():
			case <-time.After(10 * time.Second):
				t.Errorf("%s still connected 10s after its reconnect frame", name)
			}
		}
		t.Logf("bob on B told to reconnect: %v", reconnectFrameIndex(bobIn.frames()) >= 0)
		_ = bobConn.Close()
		checkLiveOrder(t, "bob on B", liveMessages(bobIn, conv.ID))
		bobConn, bobIn = connect(t, bob)
		missed, err := bobConn.CatchUp(ctxT(t), conv.ID, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(missed) != 11 {
			t.Errorf("bob's catch-up after seq 5 gave %d messages, want 11", len(missed))
		}
		for i, m := range missed {
			if m.Seq != int64(6+i) || m.ID != history[5+i].ID {
				t.Errorf("catch-up message %d is seq %d, want %d", i, m.Seq, 6+i)
			}
		}
		checkLiveOrder(t, "bob on B", liveMessages(bobIn, conv.ID))
		// And live delivery from A works again. B may still tell bob to
		// reconnect (when one of A's watermarks was lost in the cut, B sees
		// the gap only at A's next message): bob then redials, and the next
		// message must reach him live.
		for k := 0; ; k++ {
			id := fmt.Sprintf("after-%d", k)
			if _, err := alice.Send(ctxT(t), conv.ID, id, "NATS is back"); err != nil {
				t.Fatal(err)
			}
			heard := func() bool {
				return slices.ContainsFunc(liveMessages(bobIn, conv.ID), func(m client.Message) bool { return m.ClientID == id })
			}
			deadline := time.Now().Add(20 * time.Second)
			for !heard() && time.Now().Before(deadline) && bobConn.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
			if heard() {
				break
			}
			if bobConn.Err() == nil || k == 2 {
				t.Fatalf("bob on B did not get %s, sent on A after NATS came back (connection: %v)", id, bobConn.Err())
			}
			t.Logf("bob's connection ended (%v) before %s arrived; redialing", bobConn.Err(), id)
			bobConn, bobIn = connect(t, bob)
		}
	})
}
