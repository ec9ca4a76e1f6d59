package app_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/natter-chat/natter/client"
)

// framesOf returns the pushed frames of type typ an inbox has seen.
func framesOf(in *inbox, typ string) []client.ServerFrame {
	var out []client.ServerFrame
	for _, f := range in.frames() {
		if f.Type == typ {
			out = append(out, f)
		}
	}
	return out
}

// waitFrames polls until in has seen n frames of typ matching ok.
func waitFrames(t testing.TB, in *inbox, typ string, n int, ok func(client.ServerFrame) bool) []client.ServerFrame {
	t.Helper()
	var got []client.ServerFrame
	in.waitFor(t, fmt.Sprintf("%d %s frames", n, typ), func([]client.Message) bool {
		got = got[:0]
		for _, f := range framesOf(in, typ) {
			if ok == nil || ok(f) {
				got = append(got, f)
			}
		}
		return len(got) >= n
	})
	return got
}

func updatedMsg(t testing.TB, f client.ServerFrame) client.Message {
	t.Helper()
	m, err := f.Msg()
	if err != nil || m == nil {
		t.Fatalf("%s frame without a message: %v", f.Type, err)
	}
	return *m
}

func TestActions_EditDeleteReactReplyMention(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	carol, carolID := n.user(t, "carol")
	dave, _ := n.user(t, "dave")
	bobName := mustMe(t, bob).Username
	conv, err := alice.CreateGroup(ctxT(t), "team", []string{bobID, carolID})
	if err != nil {
		t.Fatal(err)
	}
	aws, _ := connect(t, alice)
	_, bob1 := connect(t, bob)
	_, bob2 := connect(t, bob)

	// A mention is resolved to the member's id; a non-member's name is not.
	hello, _, err := aws.Send(ctxT(t), conv.ID, "m1", fmt.Sprintf("hi @%s and @%s", bobName, mustMe(t, dave).Username))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hello.Mentions, []string{bobID}) {
		t.Fatalf("mentions = %v, want only bob (%s): dave is not a member", hello.Mentions, bobID)
	}
	// Bob replies.
	reply, err := bob.SendReply(ctxT(t), conv.ID, "r1", "hello to you", hello.ID)
	if err != nil || reply.Message.ReplyTo != hello.ID {
		t.Fatalf("reply = %+v, %v; want reply_to %s", reply.Message, err, hello.ID)
	}
	// Replying to a message of another conversation is refused.
	other, _ := alice.CreateDirect(ctxT(t), carolID)
	elsewhere, _ := alice.Send(ctxT(t), other.ID, "x1", "elsewhere")
	if _, err := bob.SendReply(ctxT(t), conv.ID, "r2", "bad reply", elsewhere.Message.ID); client.ErrorCode(err) != "invalid_argument" {
		t.Fatalf("reply to a message of another conversation: %v, want invalid_argument", err)
	}

	// Only the sender edits; the edit reaches bob's devices with edited_at.
	if _, err := carol.Edit(ctxT(t), conv.ID, hello.ID, "hijacked"); client.ErrorCode(err) != "forbidden" {
		t.Fatalf("carol editing alice's message: %v, want forbidden", err)
	}
	edited, err := aws.Edit(ctxT(t), conv.ID, hello.ID, "hi everyone")
	if err != nil || edited.Text != "hi everyone" || edited.EditedAt == nil || len(edited.Mentions) != 0 {
		t.Fatalf("edit = %+v, %v", edited, err)
	}
	for _, in := range []*inbox{bob1, bob2} {
		got := waitFrames(t, in, client.TypeMessageUpdated, 1, func(f client.ServerFrame) bool { return updatedMsg(t, f).Text == "hi everyone" })
		if m := updatedMsg(t, got[0]); m.EditedAt == nil || m.Pos != edited.Pos {
			t.Errorf("bob's device saw %+v, want the edit at pos %d", m, edited.Pos)
		}
	}

	// Reactions: emoji only, grouped per emoji, removable.
	for _, bad := range []string{"abc", "👍👍👍👍👍👍👍👍👍", "<b>", ""} {
		if _, err := bob.React(ctxT(t), conv.ID, hello.ID, bad, true); client.ErrorCode(err) != "invalid_argument" && client.ErrorCode(err) != "not_found" {
			t.Errorf("reaction %q: %v, want invalid_argument", bad, err)
		}
	}
	if _, err := bob.React(ctxT(t), conv.ID, hello.ID, "👍", true); err != nil {
		t.Fatal(err)
	}
	reacted, err := carol.React(ctxT(t), conv.ID, hello.ID, "👍", true)
	if err != nil || len(reacted.Reactions) != 1 || reacted.Reactions[0].Count != 2 {
		t.Fatalf("after two 👍: %+v, %v", reacted.Reactions, err)
	}
	unreacted, err := carol.React(ctxT(t), conv.ID, hello.ID, "👍", false)
	if err != nil || unreacted.Reactions[0].Count != 1 || unreacted.Reactions[0].Users[0] != bobID {
		t.Fatalf("after carol's removal: %+v, %v", unreacted.Reactions, err)
	}

	// Strangers see nothing; unknown ids are not found.
	if _, err := dave.Edit(ctxT(t), conv.ID, hello.ID, "x"); client.ErrorCode(err) != "not_found" {
		t.Errorf("a stranger editing: %v, want not_found", err)
	}
	if _, err := dave.React(ctxT(t), conv.ID, hello.ID, "👍", true); client.ErrorCode(err) != "not_found" {
		t.Errorf("a stranger reacting: %v, want not_found", err)
	}
	if _, err := alice.Edit(ctxT(t), conv.ID, "123456789", "x"); client.ErrorCode(err) != "not_found" {
		t.Errorf("editing an unknown message: %v, want not_found", err)
	}

	// Deletion: a plain member cannot delete others'; the owner can; the
	// tombstone keeps its seq and loses its text everywhere.
	if _, err := bob.Delete(ctxT(t), conv.ID, hello.ID); client.ErrorCode(err) != "forbidden" {
		t.Fatalf("bob deleting alice's message: %v, want forbidden", err)
	}
	gone, err := alice.Delete(ctxT(t), conv.ID, reply.Message.ID)
	if err != nil || !gone.Deleted || gone.Text != "" || gone.Seq != reply.Message.Seq {
		t.Fatalf("owner deleting bob's reply: %+v, %v", gone, err)
	}
	if _, err := bob.Edit(ctxT(t), conv.ID, reply.Message.ID, "resurrect"); client.ErrorCode(err) != "conflict" {
		t.Errorf("editing a deleted message: %v, want conflict", err)
	}
	page, err := carol.History(ctxT(t), conv.ID, client.HistoryQuery{Forward: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 2 || page.Messages[0].Text != "hi everyone" || page.Messages[0].EditedAt == nil ||
		!page.Messages[1].Deleted || page.Messages[1].Text != "" || page.Messages[0].Reactions[0].Emoji != "👍" {
		t.Fatalf("history after the actions: %+v", page.Messages)
	}
	waitFrames(t, bob1, client.TypeMessageUpdated, 1, func(f client.ServerFrame) bool { return updatedMsg(t, f).Deleted })
}

func mustMe(t testing.TB, c *client.Client) client.User {
	t.Helper()
	u, err := c.Me(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestReceipts_ReadOnOneDeviceClearsUnreadOnTheOthers(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	_, aliceIn := connect(t, alice)
	phone, _ := connect(t, bob)
	_, laptop := connect(t, bob)
	var last client.MessageResponse
	for i := range 3 {
		if last, err = alice.Send(ctxT(t), conv.ID, fmt.Sprint(i), "news"); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := phone.MarkDelivered(ctxT(t), conv.ID, 3); err != nil || d != 3 {
		t.Fatalf("delivered: %d, %v", d, err)
	}
	if _, err := phone.MarkRead(ctxT(t), conv.ID, 2); err != nil {
		t.Fatal(err)
	}
	// The laptop hears it at once; so does the sender.
	for _, in := range []*inbox{laptop, aliceIn} {
		waitFrames(t, in, client.TypeReceipt, 1, func(f client.ServerFrame) bool { return f.User == bobID && f.ReadSeq == 2 })
	}
	list, _ := bob.Conversations(ctxT(t))
	if list[0].Unread != 1 {
		t.Fatalf("bob's unread after reading to 2 of 3: %d, want 1", list[0].Unread)
	}
	r, err := alice.Receipts(ctxT(t), conv.ID, last.Message.ID)
	if err != nil || r.ReadCount != 0 || r.DeliveredCount != 1 || r.DeliveredTo[0] != bobID {
		t.Fatalf("receipts of message 3: %+v, %v; want delivered to bob, read by nobody", r, err)
	}
	if _, err := phone.MarkRead(ctxT(t), conv.ID, 3); err != nil {
		t.Fatal(err)
	}
	r, _ = alice.Receipts(ctxT(t), conv.ID, last.Message.ID)
	if r.ReadCount != 1 || r.ReadBy[0] != bobID {
		t.Fatalf("receipts after bob read all: %+v", r)
	}
	list, _ = bob.Conversations(ctxT(t))
	if list[0].Unread != 0 {
		t.Fatalf("bob's unread after reading all: %d", list[0].Unread)
	}
	// Watermarks never go down, and a repeated read announces nothing.
	before := len(framesOf(laptop, client.TypeReceipt))
	if rs, _ := phone.MarkRead(ctxT(t), conv.ID, 1); rs != 3 {
		t.Fatalf("read watermark went down to %d", rs)
	}
	// Events reach a connection in publish order: once a later message has
	// arrived, a receipt for the no-op read would have arrived before it.
	if _, err := alice.Send(ctxT(t), conv.ID, "sentinel", "sentinel"); err != nil {
		t.Fatal(err)
	}
	laptop.waitFor(t, "the sentinel", func(ms []client.Message) bool { return len(ms) > 0 && ms[len(ms)-1].ClientID == "sentinel" })
	if got := len(framesOf(laptop, client.TypeReceipt)); got != before {
		t.Fatalf("a read that moved nothing was announced (%d receipts, had %d)", got, before)
	}
}

func TestTyping_ThrottledAndNeverStored(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	stranger, _ := n.user(t, "stranger")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	aws, _ := connect(t, alice)
	_, aliceOther := connect(t, alice)
	bws, bin := connect(t, bob)
	for range 5 { // a client repeating "start" while its user types
		if err := aws.Typing(ctxT(t), conv.ID, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := aws.Typing(ctxT(t), conv.ID, false); err != nil {
		t.Fatal(err)
	}
	got := waitFrames(t, bin, client.TypeTyping, 2, nil)
	if got[0].State != "start" || got[0].ExpiresMS <= 0 || got[1].State != "stop" {
		t.Fatalf("bob saw %+v, want one start (with an expiry) then one stop", got)
	}
	if err := bws.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if starts := len(framesOf(bin, client.TypeTyping)); starts != 2 {
		t.Fatalf("bob got %d typing frames for 5 starts and a stop within the throttle interval, want 2", starts)
	}
	if len(framesOf(aliceOther, client.TypeTyping)) != 0 {
		t.Fatal("alice's own other device was told that she types")
	}
	sws, _ := connect(t, stranger)
	if err := sws.Typing(ctxT(t), conv.ID, true); client.ErrorCode(err) != "not_found" {
		t.Fatalf("a stranger typing: %v, want not_found", err)
	}
	if err := aws.Typing(ctxT(t), conv.ID+"x", true); client.ErrorCode(err) != "invalid_argument" {
		t.Fatalf("typing in a malformed conversation id: %v, want invalid_argument", err)
	}
	page, _ := bob.History(ctxT(t), conv.ID, client.HistoryQuery{})
	if len(page.Messages) != 0 || strings.Contains(fmt.Sprint(page), "typing") {
		t.Fatalf("typing left a trace in history: %+v", page)
	}
}

func TestConversationEvents_ReachEveryAffectedDevice(t *testing.T) {
	n := startNode(t, "")
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	carol, carolID := n.user(t, "carol")
	_, aliceIn := connect(t, alice)
	_, bobIn := connect(t, bob)
	_, carolIn := connect(t, carol)

	conv, err := alice.CreateGroup(ctxT(t), "first", []string{bobID})
	if err != nil {
		t.Fatal(err)
	}
	waitFrames(t, bobIn, client.TypeConversation, 1, func(f client.ServerFrame) bool { return f.Conversation.ID == conv.ID })
	if _, err := alice.Rename(ctxT(t), conv.ID, "second"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Rename(ctxT(t), conv.ID, "mine"); client.ErrorCode(err) != "forbidden" {
		t.Fatalf("a plain member renaming: %v, want forbidden", err)
	}
	waitFrames(t, bobIn, client.TypeConversationUpdated, 1, func(f client.ServerFrame) bool { return f.Conversation.Title == "second" })
	if _, err := alice.AddMembers(ctxT(t), conv.ID, []string{carolID}); err != nil {
		t.Fatal(err)
	}
	waitFrames(t, carolIn, client.TypeConversation, 1, func(f client.ServerFrame) bool { return f.Conversation.ID == conv.ID })
	waitFrames(t, bobIn, client.TypeMemberAdded, 1, func(f client.ServerFrame) bool { return slices.Contains(f.Users, carolID) })
	if _, err := alice.SetRole(ctxT(t), conv.ID, bobID, "admin"); err != nil {
		t.Fatal(err)
	}
	waitFrames(t, carolIn, client.TypeRoleChanged, 1, func(f client.ServerFrame) bool { return f.User == bobID && f.Role == "admin" })
	if err := carol.RemoveMember(ctxT(t), conv.ID, carolID); err != nil { // carol leaves
		t.Fatal(err)
	}
	for _, in := range []*inbox{aliceIn, bobIn, carolIn} {
		waitFrames(t, in, client.TypeMemberGone, 1, func(f client.ServerFrame) bool { return slices.Contains(f.Users, carolID) })
	}
	// After leaving, carol hears nothing more of the group.
	if _, err := alice.Rename(ctxT(t), conv.ID, "third"); err != nil {
		t.Fatal(err)
	}
	waitFrames(t, bobIn, client.TypeConversationUpdated, 1, func(f client.ServerFrame) bool { return f.Conversation.Title == "third" })
	direct, _ := alice.CreateDirect(ctxT(t), carolID)
	if _, err := alice.Send(ctxT(t), direct.ID, "sentinel", "sentinel"); err != nil {
		t.Fatal(err)
	}
	carolIn.waitFor(t, "the sentinel", func(ms []client.Message) bool { return len(ms) > 0 })
	for _, f := range framesOf(carolIn, client.TypeConversationUpdated) {
		if f.Conversation.Title == "third" {
			t.Fatal("carol heard a rename after she left")
		}
	}
}
