package app_test

import (
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/natter-chat/natter/client"
)

func TestSend_ReachesEveryDeviceOfEveryMember(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	a1, a1in := connect(t, alice)
	_, a2in := connect(t, alice) // alice's second device
	_, b1in := connect(t, bob)
	_, b2in := connect(t, bob)

	msg, dup, err := a1.Send(ctxT(t), conv.ID, "c-1", "hello everyone")
	if err != nil || dup {
		t.Fatalf("send: %v (duplicate %v)", err, dup)
	}
	if msg.Seq != 1 || msg.Text != "hello everyone" || msg.Conv != conv.ID || msg.ClientID != "c-1" {
		t.Fatalf("ack carries %+v", msg)
	}
	for name, in := range map[string]*inbox{"alice's other device": a2in, "bob's phone": b1in, "bob's laptop": b2in} {
		got := in.waitFor(t, name+" to receive the message", func(ms []client.Message) bool { return len(ms) >= 1 })
		if got[0].ID != msg.ID || got[0].Seq != 1 || got[0].Text != "hello everyone" {
			t.Errorf("%s received %+v, want the acked message %+v", name, got[0], msg)
		}
	}
	// The sending connection has the message in its ack and gets no echo:
	// a ping round trip after the deliveries above proves nothing is queued.
	if err := a1.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := framesOf(a1in, client.TypeMessage); len(got) != 0 {
		t.Errorf("the sending connection got %d message frames, want none: the ack is its copy", len(got))
	}
}

func TestSend_RetryWithSameClientIDNeverDuplicates(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	_, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := connect(t, alice)
	first, dup, err := ws.Send(ctxT(t), conv.ID, "retry-me", "once only")
	if err != nil || dup {
		t.Fatalf("first send: %v dup=%v", err, dup)
	}
	again, dup, err := ws.Send(ctxT(t), conv.ID, "retry-me", "once only")
	if err != nil || !dup || again.ID != first.ID || again.Seq != first.Seq {
		t.Fatalf("WebSocket retry = %+v dup=%v err=%v; want the original %+v marked duplicate", again, dup, err, first)
	}
	rest, err := alice.Send(ctxT(t), conv.ID, "retry-me", "once only")
	if err != nil || !rest.Duplicate || rest.Message.ID != first.ID {
		t.Fatalf("REST retry = %+v err=%v; want the original", rest, err)
	}
	page, err := alice.History(ctxT(t), conv.ID, client.HistoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 1 {
		t.Fatalf("history has %d messages after three sends of one client_id, want 1", len(page.Messages))
	}
}

func TestSend_ConcurrentSendersGetGapFreeOrderedSeqs(t *testing.T) {
	const senders, perSender = 20, 100
	n := startNode(t, "")
	owner, _ := n.user(t, "owner")
	clients := make([]*client.Client, senders)
	ids := make([]string, senders)
	for i := range clients {
		clients[i], ids[i] = n.user(t, "sender")
	}
	conv, err := owner.CreateGroup(ctxT(t), "busy room", ids)
	if err != nil {
		t.Fatal(err)
	}
	_, watcher := connect(t, owner)

	var wg sync.WaitGroup
	acked := make(chan client.Message, senders*perSender)
	errs := make(chan error, senders*perSender)
	for i, c := range clients {
		conn, _ := connect(t, c)
		wg.Go(func() {
			for j := range perSender {
				m, _, err := conn.Send(ctxT(t), conv.ID, fmt.Sprintf("s%d-%d", i, j), fmt.Sprintf("message %d from sender %d", j, i))
				if err != nil {
					errs <- err
					return
				}
				acked <- m
			}
		})
	}
	wg.Wait()
	close(errs)
	close(acked)
	for err := range errs {
		t.Fatalf("send failed: %v", err)
	}
	seen := make(map[int64]string)
	for m := range acked {
		if prev, ok := seen[m.Seq]; ok {
			t.Fatalf("seq %d acked twice (%s and %s)", m.Seq, prev, m.ClientID)
		}
		seen[m.Seq] = m.ClientID
	}
	for s := int64(1); s <= senders*perSender; s++ {
		if _, ok := seen[s]; !ok {
			t.Fatalf("seq %d missing among %d acks", s, len(seen))
		}
	}
	// The watcher saw all of them live, in seq order.
	got := watcher.waitFor(t, "all messages live", func(ms []client.Message) bool { return len(ms) >= senders*perSender })
	for i, m := range got {
		if m.Seq != int64(i+1) {
			t.Fatalf("live message %d has seq %d: delivered out of order", i, m.Seq)
		}
	}
	// And history agrees.
	all := historyAfter(t, owner, conv.ID, 0)
	if len(all) != senders*perSender {
		t.Fatalf("history has %d messages, want %d", len(all), senders*perSender)
	}
}

// historyAfter pages forward through a conversation's history.
func historyAfter(t testing.TB, c *client.Client, conv string, after int64) []client.Message {
	t.Helper()
	var out []client.Message
	for {
		page, err := c.History(ctxT(t), conv, client.HistoryQuery{After: after, Forward: true, Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Messages...)
		if !page.HasMore {
			return out
		}
		after = page.Messages[len(page.Messages)-1].Seq
	}
}

func TestCatchUp_AfterDisconnectGivesExactlyTheMissedMessages(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	aws, _ := connect(t, alice)
	bws, bin := connect(t, bob)
	for i := range 10 {
		if _, _, err := aws.Send(ctxT(t), conv.ID, fmt.Sprintf("before-%d", i), "before"); err != nil {
			t.Fatal(err)
		}
	}
	seen := bin.waitFor(t, "the first ten", func(ms []client.Message) bool { return len(ms) >= 10 })
	last := seen[len(seen)-1].Seq
	_ = bws.Close()

	for i := range 250 { // more than one sync page
		if _, _, err := aws.Send(ctxT(t), conv.ID, fmt.Sprintf("missed-%d", i), fmt.Sprintf("missed %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	bws2, _ := connect(t, bob)
	missed, err := bws2.CatchUp(ctxT(t), conv.ID, last)
	if err != nil {
		t.Fatal(err)
	}
	if len(missed) != 250 {
		t.Fatalf("caught up %d messages, want 250", len(missed))
	}
	for i, m := range missed {
		if m.Seq != last+int64(i)+1 || m.ClientID != fmt.Sprintf("missed-%d", i) {
			t.Fatalf("catch-up message %d is seq %d (%s): gap, duplicate or reorder", i, m.Seq, m.ClientID)
		}
	}
	// REST gives the same answer.
	viaREST := historyAfter(t, bob, conv.ID, last)
	if len(viaREST) != 250 || viaREST[0].Seq != last+1 {
		t.Fatalf("REST catch-up gave %d messages starting at %d", len(viaREST), viaREST[0].Seq)
	}
}

func TestConversationList_ShowsLastMessageAndUnreadFromWatermark(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := alice.Send(ctxT(t), conv.ID, fmt.Sprint(i), fmt.Sprintf("text %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	list, err := bob.Conversations(ctxT(t))
	if err != nil || len(list) != 1 {
		t.Fatalf("bob's list: %v %v", list, err)
	}
	if list[0].Unread != 5 || list[0].LastMessage == nil || list[0].LastMessage.Text != "text 4" {
		t.Fatalf("bob sees unread=%d last=%+v, want 5 and text 4", list[0].Unread, list[0].LastMessage)
	}
	if _, err := bob.MarkRead(ctxT(t), conv.ID, 3); err != nil {
		t.Fatal(err)
	}
	list, _ = bob.Conversations(ctxT(t))
	if list[0].Unread != 2 || list[0].ReadSeq != 3 {
		t.Fatalf("after reading to 3: unread=%d read_seq=%d, want 2 and 3", list[0].Unread, list[0].ReadSeq)
	}
	aliceList, _ := alice.Conversations(ctxT(t))
	if aliceList[0].Unread != 0 {
		t.Fatalf("alice's own messages count as unread for her: %d", aliceList[0].Unread)
	}
}

func TestDirect_CreatingTwiceReturnsTheSameConversation(t *testing.T) {
	n := startNode(t, "")
	alice, aliceID := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	c1, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := bob.CreateDirect(ctxT(t), aliceID)
	if err != nil {
		t.Fatal(err)
	}
	if c1.ID != c2.ID {
		t.Fatalf("two direct conversations for one pair: %s and %s", c1.ID, c2.ID)
	}
	status, _ := rawRequest(t, "POST", n.URL+"/v1/conversations", alice.Tokens().AccessToken, fmt.Sprintf(`{"kind":"direct","members":[%q]}`, bobID))
	if status != 200 {
		t.Fatalf("repeated direct create gave %d, want 200", status)
	}
}

func TestGroup_MembershipRoles(t *testing.T) {
	n := startNode(t, "")
	owner, _ := n.user(t, "owner")
	member, memberID := n.user(t, "member")
	_, otherID := n.user(t, "other")
	_, thirdID := n.user(t, "third")
	conv, err := owner.CreateGroup(ctxT(t), "team", []string{memberID, otherID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := member.AddMembers(ctxT(t), conv.ID, []string{thirdID}); client.ErrorCode(err) != "forbidden" {
		t.Fatalf("a plain member adding someone: %v, want forbidden", err)
	}
	if err := member.RemoveMember(ctxT(t), conv.ID, otherID); client.ErrorCode(err) != "forbidden" {
		t.Fatalf("a plain member removing someone: %v, want forbidden", err)
	}
	got, err := owner.AddMembers(ctxT(t), conv.ID, []string{thirdID})
	if err != nil || len(got.Members) != 4 {
		t.Fatalf("owner adds: %v, %d members", err, len(got.Members))
	}
	if err := member.RemoveMember(ctxT(t), conv.ID, memberID); err != nil {
		t.Fatalf("leaving: %v", err)
	}
	if _, err := member.Conversation(ctxT(t), conv.ID); client.ErrorCode(err) != "not_found" {
		t.Fatalf("after leaving, the conversation is %v, want not_found", err)
	}
	if err := owner.RemoveMember(ctxT(t), conv.ID, otherID); err != nil {
		t.Fatalf("owner removes: %v", err)
	}
	// An admin may add and remove members but not change roles.
	if _, err := owner.SetRole(ctxT(t), conv.ID, thirdID, "admin"); err != nil {
		t.Fatalf("owner makes an admin: %v", err)
	}
	if _, err := member.SetRole(ctxT(t), conv.ID, thirdID, "owner"); client.ErrorCode(err) != "not_found" {
		t.Fatalf("a former member changing roles: %v, want not_found", err)
	}
	final, _ := owner.Conversation(ctxT(t), conv.ID)
	var names []string
	for _, m := range final.Members {
		names = append(names, m.User)
	}
	sort.Strings(names)
	if len(names) != 2 {
		t.Fatalf("members after changes: %v", names)
	}
}
