package chattest

import (
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// mustPosition returns the store's newest change position.
func mustPosition(t testing.TB, s chat.Store) int64 {
	t.Helper()
	pos, err := s.Position(t.Context())
	mustNot(t, "Position", err)
	return pos
}

// wantNoNewPosition fails t if the store handed out a position after pos;
// what names the write that should have changed nothing.
func wantNoNewPosition(t testing.TB, s chat.Store, what string, pos int64) {
	t.Helper()
	if got := mustPosition(t, s); got != pos {
		t.Errorf("%s changed nothing but moved the position from %d to %d", what, pos, got)
	}
}

// wantRaised fails t unless got is a new position after before.
func wantRaised(t testing.TB, what string, before, got int64) {
	t.Helper()
	if got <= before {
		t.Errorf("%s has Pos %d, want a new position after %d", what, got, before)
	}
}

// mustGetMessage returns message id of conv.
func mustGetMessage(t testing.TB, s chat.Store, conv chat.ConversationID, id chat.MessageID) chat.Message {
	t.Helper()
	m, err := s.GetMessage(t.Context(), conv, id)
	mustNot(t, "GetMessage", err)
	return m
}

// mustReact sets user's emoji on message id of conv and returns the message.
func mustReact(t testing.TB, s chat.Store, conv chat.ConversationID, id chat.MessageID, user chat.UserID, emoji string, on bool) chat.Message {
	t.Helper()
	m, err := s.SetReaction(t.Context(), conv, id, user, emoji, on)
	mustNot(t, "SetReaction", err)
	return m
}

// wantEverywhere fails t unless GetMessage and ListMessages both return m
// as it is.
func wantEverywhere(t testing.TB, s chat.Store, m chat.Message) {
	t.Helper()
	wantEqual(t, "GetMessage", m, mustGetMessage(t, s, m.Conv, m.ID))
	for _, listed := range listAll(t, s, m.Conv) {
		if listed.ID == m.ID {
			wantEqual(t, "ListMessages", m, listed)
			return
		}
	}
	t.Errorf("ListMessages lacks message %v", m.ID)
}

func actionTests() []storeMethod {
	return []storeMethod{
		{"GetMessage", getMessageTests()},
		{"EditMessage", editMessageTests()},
		{"DeleteMessage", deleteMessageTests()},
		{"SetReaction", setReactionTests()},
		{"UpdateDeliveredSeq", updateDeliveredSeqTests()},
		{"UpdateTitle", updateTitleTests()},
	}
}

// replyAndMentionTests are AppendMessages cases about ReplyTo and Mentions.
func replyAndMentionTests() []storeCase {
	return []storeCase{
		{"reply to a message of the conversation is stored", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			first := MustAppend(t, s, ids, c.ID, alice.ID, "question", At(0))
			reply := draft(ids, c.ID, alice.ID, "k1", "answer", time.Second)
			reply.ReplyTo = first.ID
			again := draft(ids, c.ID, alice.ID, "k2", "answer to the answer, same batch", time.Second)
			again.ReplyTo = reply.ID
			res := mustAppendBatch(t, s, reply, again)
			wantEqual(t, "results", []chat.AppendResult{{Message: stored(reply, 2)}, {Message: stored(again, 3)}}, res, ignorePos())
			wantEqual(t, "stored messages", []chat.Message{first, res[0].Message, res[1].Message}, listAll(t, s, c.ID))
		}},
		{"reply to no message of the conversation fails only its draft", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			other := MustCreateGroup(t, s, ids, alice.ID)
			elsewhere := MustAppend(t, s, ids, other.ID, alice.ID, "in another conversation", At(0))
			ok1 := draft(ids, c.ID, alice.ID, "k1", "one", 0)
			foreign := draft(ids, c.ID, alice.ID, "k2", "reply across conversations", 0)
			foreign.ReplyTo = elsewhere.ID
			ok2 := draft(ids, c.ID, alice.ID, "k3", "two", 0)
			unknown := draft(ids, c.ID, alice.ID, "k4", "reply to nothing", 0)
			unknown.ReplyTo = chat.MessageID(ids.NextID())
			ok3 := draft(ids, c.ID, alice.ID, "k5", "three", 0)
			res := mustAppendBatch(t, s, ok1, foreign, ok2, unknown, ok3)
			wantCode(t, res[1].Err, chat.CodeInvalidArgument)
			wantCode(t, res[3].Err, chat.CodeInvalidArgument)
			got := []chat.Message{res[0].Message, res[2].Message, res[4].Message}
			wantEqual(t, "stored messages", []chat.Message{stored(ok1, 1), stored(ok2, 2), stored(ok3, 3)}, got, ignorePos())
			wantEqual(t, "listed messages", got, listAll(t, s, c.ID))
			if got[1].Pos != got[0].Pos+1 || got[2].Pos != got[1].Pos+1 {
				t.Errorf("positions %d, %d, %d: the refused drafts took positions", got[0].Pos, got[1].Pos, got[2].Pos)
			}
		}},
		{"retry returns the original as it is now", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			d := draft(ids, c.ID, alice.ID, "k1", "first try", 0)
			original := mustAppendBatch(t, s, d)[0].Message
			_, err := s.EditMessage(t.Context(), c.ID, original.ID, "edited", nil, At(time.Hour))
			mustNot(t, "EditMessage", err)
			now := mustReact(t, s, c.ID, original.ID, alice.ID, "👍", true)
			pos := mustPosition(t, s)
			wantEqual(t, "retry", chat.AppendResult{Message: now, Duplicate: true}, mustAppendBatch(t, s, d)[0])
			wantNoNewPosition(t, s, "a retry", pos)
		}},
		{"mentions are stored and returned", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			carol := MustCreateUser(t, s, ids, "carol")
			c := MustCreateGroup(t, s, ids, alice.ID, bob.ID, carol.ID)
			d := draft(ids, c.ID, alice.ID, "k1", "@carol @bob look", 0)
			d.Mentions = []chat.UserID{carol.ID, bob.ID}
			plain := draft(ids, c.ID, alice.ID, "k2", "no one", 0)
			res := mustAppendBatch(t, s, d, plain)
			wantEqual(t, "results", []chat.AppendResult{{Message: stored(d, 1)}, {Message: stored(plain, 2)}}, res, ignorePos())
			wantEverywhere(t, s, res[0].Message)
			wantEverywhere(t, s, res[1].Message)
			sums, err := s.ListConversations(t.Context(), bob.ID)
			mustNot(t, "ListConversations", err)
			wantEqual(t, "last message", &res[1].Message, sums[0].LastMessage)
			retry := mustAppendBatch(t, s, d)[0]
			wantEqual(t, "retry", chat.AppendResult{Message: res[0].Message, Duplicate: true}, retry)
		}},
	}
}

func getMessageTests() []storeCase {
	return []storeCase{
		{"returns the message", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			m := MustAppend(t, s, ids, c.ID, alice.ID, "hi", At(0))
			wantEqual(t, "GetMessage", m, mustGetMessage(t, s, c.ID, m.ID))
		}},
		{"message of another conversation is not found", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			other := MustCreateGroup(t, s, ids, alice.ID)
			m := MustAppend(t, s, ids, other.ID, alice.ID, "hi", At(0))
			_, err := s.GetMessage(t.Context(), c.ID, m.ID)
			wantCode(t, err, chat.CodeNotFound)
			_, err = s.GetMessage(t.Context(), c.ID, chat.MessageID(ids.NextID()))
			wantCode(t, err, chat.CodeNotFound)
		}},
	}
}

func editMessageTests() []storeCase {
	return []storeCase{
		{"replaces text and mentions and sets EditedAt", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			carol := MustCreateUser(t, s, ids, "carol")
			c := MustCreateGroup(t, s, ids, alice.ID, bob.ID, carol.ID)
			d := draft(ids, c.ID, alice.ID, "k1", "hi @bob", 0)
			d.Mentions = []chat.UserID{bob.ID}
			m := mustAppendBatch(t, s, d)[0].Message
			m = mustReact(t, s, c.ID, m.ID, bob.ID, "👍", true)
			got, err := s.EditMessage(t.Context(), c.ID, m.ID, "hi @carol", []chat.UserID{carol.ID}, At(time.Hour))
			mustNot(t, "EditMessage", err)
			want := m
			want.Text, want.Mentions, want.EditedAt = "hi @carol", []chat.UserID{carol.ID}, At(time.Hour)
			wantEqual(t, "edited message (reactions kept)", want, got, ignorePos())
			wantRaised(t, "edited message", m.Pos, got.Pos)
			wantEverywhere(t, s, got)

			got, err = s.EditMessage(t.Context(), c.ID, m.ID, "hi all", nil, At(2*time.Hour))
			mustNot(t, "EditMessage again", err)
			want.Text, want.Mentions, want.EditedAt = "hi all", nil, At(2*time.Hour)
			wantEqual(t, "edited again, mentions dropped", want, got, ignorePos())
			wantEverywhere(t, s, got)
		}},
		{"deleted message cannot be edited", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			m := MustAppend(t, s, ids, c.ID, alice.ID, "hi", At(0))
			tomb, err := s.DeleteMessage(t.Context(), c.ID, m.ID, At(time.Minute))
			mustNot(t, "DeleteMessage", err)
			_, err = s.EditMessage(t.Context(), c.ID, m.ID, "back", nil, At(time.Hour))
			wantCode(t, err, chat.CodeConflict)
			wantEverywhere(t, s, tomb)
		}},
		{"unknown message is not found", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			other := MustCreateGroup(t, s, ids, alice.ID)
			m := MustAppend(t, s, ids, other.ID, alice.ID, "hi", At(0))
			_, err := s.EditMessage(t.Context(), c.ID, chat.MessageID(ids.NextID()), "x", nil, At(time.Hour))
			wantCode(t, err, chat.CodeNotFound)
			_, err = s.EditMessage(t.Context(), c.ID, m.ID, "x", nil, At(time.Hour))
			wantCode(t, err, chat.CodeNotFound)
			wantEverywhere(t, s, m)
		}},
	}
}

func deleteMessageTests() []storeCase {
	return []storeCase{
		{"leaves a tombstone without text, mentions or reactions", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
			d := draft(ids, c.ID, alice.ID, "k1", "secret @bob", 0)
			d.Mentions = []chat.UserID{bob.ID}
			m := mustAppendBatch(t, s, d)[0].Message
			m = mustReact(t, s, c.ID, m.ID, bob.ID, "👍", true)
			got, err := s.DeleteMessage(t.Context(), c.ID, m.ID, At(time.Hour))
			mustNot(t, "DeleteMessage", err)
			want := chat.Message{ID: m.ID, Conv: c.ID, Seq: 1, Sender: alice.ID, ClientID: "k1", SentAt: m.SentAt, DeletedAt: At(time.Hour)}
			wantEqual(t, "tombstone", want, got, ignorePos())
			wantRaised(t, "tombstone", m.Pos, got.Pos)
			wantEverywhere(t, s, got)
			sums, err := s.ListConversations(t.Context(), bob.ID)
			mustNot(t, "ListConversations", err)
			wantEqual(t, "last message", &got, sums[0].LastMessage)
		}},
		{"deleting twice returns the tombstone unchanged", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			m := MustAppend(t, s, ids, c.ID, alice.ID, "oops", At(0))
			first, err := s.DeleteMessage(t.Context(), c.ID, m.ID, At(time.Hour))
			mustNot(t, "DeleteMessage", err)
			pos := mustPosition(t, s)
			again, err := s.DeleteMessage(t.Context(), c.ID, m.ID, At(2*time.Hour))
			mustNot(t, "DeleteMessage again", err)
			wantEqual(t, "second delete", first, again)
			wantNoNewPosition(t, s, "a second delete", pos)
		}},
		{"unknown message is not found", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			other := MustCreateGroup(t, s, ids, alice.ID)
			m := MustAppend(t, s, ids, other.ID, alice.ID, "hi", At(0))
			_, err := s.DeleteMessage(t.Context(), c.ID, chat.MessageID(ids.NextID()), At(time.Hour))
			wantCode(t, err, chat.CodeNotFound)
			_, err = s.DeleteMessage(t.Context(), c.ID, m.ID, At(time.Hour))
			wantCode(t, err, chat.CodeNotFound)
			wantEverywhere(t, s, m)
		}},
	}
}

func setReactionTests() []storeCase {
	return []storeCase{
		{"groups users by emoji in the order they reacted", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			carol := MustCreateUser(t, s, ids, "carol")
			c := MustCreateGroup(t, s, ids, alice.ID, bob.ID, carol.ID)
			m := MustAppend(t, s, ids, c.ID, alice.ID, "hi", At(0))
			var got chat.Message
			for _, r := range []struct {
				user  chat.UserID
				emoji string
			}{{carol.ID, "👍"}, {alice.ID, "👍"}, {alice.ID, "❤️"}, {bob.ID, "👍"}} {
				before := got.Pos
				got = mustReact(t, s, c.ID, m.ID, r.user, r.emoji, true)
				wantRaised(t, "message after a new reaction", max(before, m.Pos), got.Pos)
			}
			want := m
			want.Reactions = []chat.Reaction{{Emoji: "❤️", Users: []chat.UserID{alice.ID}}, {Emoji: "👍", Users: []chat.UserID{carol.ID, alice.ID, bob.ID}}}
			wantEqual(t, "reactions, by emoji", want, got, ignorePos())
			wantEverywhere(t, s, got)
		}},
		{"adding twice and removing an absent reaction change nothing", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
			m := MustAppend(t, s, ids, c.ID, alice.ID, "hi", At(0))
			first := mustReact(t, s, c.ID, m.ID, bob.ID, "👍", true)
			pos := mustPosition(t, s)
			wantEqual(t, "adding again", first, mustReact(t, s, c.ID, m.ID, bob.ID, "👍", true))
			wantEqual(t, "removing an absent reaction", first, mustReact(t, s, c.ID, m.ID, alice.ID, "👍", false))
			wantEqual(t, "removing another emoji", first, mustReact(t, s, c.ID, m.ID, bob.ID, "🎉", false))
			wantNoNewPosition(t, s, "SetReaction", pos)
		}},
		{"removing takes the user off the emoji", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
			m := MustAppend(t, s, ids, c.ID, alice.ID, "hi", At(0))
			mustReact(t, s, c.ID, m.ID, bob.ID, "👍", true)
			mustReact(t, s, c.ID, m.ID, alice.ID, "👍", true)
			both := mustReact(t, s, c.ID, m.ID, bob.ID, "🎉", true)
			got := mustReact(t, s, c.ID, m.ID, bob.ID, "👍", false)
			want := m
			want.Reactions = []chat.Reaction{{Emoji: "🎉", Users: []chat.UserID{bob.ID}}, {Emoji: "👍", Users: []chat.UserID{alice.ID}}}
			wantEqual(t, "after removing bob's 👍", want, got, ignorePos())
			wantRaised(t, "message after a removed reaction", both.Pos, got.Pos)
			got = mustReact(t, s, c.ID, m.ID, bob.ID, "🎉", false)
			want.Reactions = []chat.Reaction{{Emoji: "👍", Users: []chat.UserID{alice.ID}}}
			wantEqual(t, "after removing the only 🎉", want, got, ignorePos())
			wantEverywhere(t, s, got)
		}},
		{"deleted message cannot be reacted to", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			m := MustAppend(t, s, ids, c.ID, alice.ID, "hi", At(0))
			mustReact(t, s, c.ID, m.ID, alice.ID, "👍", true)
			tomb, err := s.DeleteMessage(t.Context(), c.ID, m.ID, At(time.Hour))
			mustNot(t, "DeleteMessage", err)
			for _, on := range []bool{true, false} {
				_, err = s.SetReaction(t.Context(), c.ID, m.ID, alice.ID, "👍", on)
				wantCode(t, err, chat.CodeConflict)
			}
			wantEverywhere(t, s, tomb)
		}},
		{"unknown message is not found", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			other := MustCreateGroup(t, s, ids, alice.ID)
			m := MustAppend(t, s, ids, other.ID, alice.ID, "hi", At(0))
			_, err := s.SetReaction(t.Context(), c.ID, chat.MessageID(ids.NextID()), alice.ID, "👍", true)
			wantCode(t, err, chat.CodeNotFound)
			_, err = s.SetReaction(t.Context(), c.ID, m.ID, alice.ID, "👍", true)
			wantCode(t, err, chat.CodeNotFound)
			wantEverywhere(t, s, m)
		}},
	}
}

func updateDeliveredSeqTests() []storeCase {
	return []storeCase{
		{"raises the watermark, never lowers it and clamps it to the last seq", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
			for range 5 {
				MustAppend(t, s, ids, c.ID, alice.ID, "hi", At(time.Minute))
			}
			for _, step := range []struct{ seq, want int64 }{{3, 3}, {2, 3}, {0, 3}, {100, 5}} {
				m, err := s.UpdateDeliveredSeq(t.Context(), c.ID, bob.ID, step.seq)
				mustNot(t, "UpdateDeliveredSeq", err)
				if m.DeliveredSeq != step.want || m.ReadSeq != 0 {
					t.Errorf("UpdateDeliveredSeq(%d) gave DeliveredSeq %d and ReadSeq %d, want %d and 0", step.seq, m.DeliveredSeq, m.ReadSeq, step.want)
				}
			}
			m, err := s.GetMember(t.Context(), c.ID, bob.ID)
			mustNot(t, "GetMember", err)
			wantEqual(t, "stored member", chat.Member{Conv: c.ID, User: bob.ID, Role: chat.RoleMember, JoinedAt: At(0), DeliveredSeq: 5}, m, ignorePos())
			m, err = s.UpdateReadSeq(t.Context(), c.ID, bob.ID, 2)
			mustNot(t, "UpdateReadSeq", err)
			wantEqual(t, "after reading up to 2", chat.Member{Conv: c.ID, User: bob.ID, Role: chat.RoleMember, JoinedAt: At(0), ReadSeq: 2, DeliveredSeq: 5}, m, ignorePos())
			members, err := s.ListMembers(t.Context(), c.ID)
			mustNot(t, "ListMembers", err)
			wantEqual(t, "listed bob", m, members[1])
		}},
		{"non-member is not found", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			c := MustCreateGroup(t, s, ids, alice.ID)
			_, err := s.UpdateDeliveredSeq(t.Context(), c.ID, bob.ID, 1)
			wantCode(t, err, chat.CodeNotFound)
		}},
	}
}

func updateTitleTests() []storeCase {
	return []storeCase{
		{"sets the title", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			MustAppend(t, s, ids, c.ID, alice.ID, "hi", At(0))
			before := mustPosition(t, s)
			got, err := s.UpdateTitle(t.Context(), c.ID, "plans")
			mustNot(t, "UpdateTitle", err)
			want := c
			want.Title, want.LastSeq = "plans", 1
			wantEqual(t, "renamed", want, got, ignorePos())
			wantRaised(t, "renamed conversation", before, got.Pos)
			stored, err := s.GetConversation(t.Context(), c.ID)
			mustNot(t, "GetConversation", err)
			wantEqual(t, "GetConversation", got, stored)
		}},
		{"unknown conversation is not found", func(t *testing.T, s chat.Store, ids *IDs) {
			_, err := s.UpdateTitle(t.Context(), chat.ConversationID(ids.NextID()), "plans")
			wantCode(t, err, chat.CodeNotFound)
		}},
	}
}
