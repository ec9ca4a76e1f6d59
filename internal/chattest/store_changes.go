package chattest

import (
	"fmt"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

func changeTests() []storeMethod {
	return []storeMethod{
		{"Position", []storeCase{
			{"fresh store is at 0", func(t *testing.T, s chat.Store, _ *IDs) {
				wantEqual(t, "Position", int64(0), mustPosition(t, s))
			}},
			{"every kind of write takes new positions", testPositionsIncrease},
			{"writes that change nothing take none", testNoOpWrites},
		}},
		{"ListChanges", listChangesTests()},
		{"CountChanges", []storeCase{
			{"counts what ListChanges returns, up to max", testCountChanges},
		}},
	}
}

// positions checks that each write hands out positions after all before
// it, and that Position follows.
type positions struct {
	t    testing.TB
	s    chat.Store
	last int64
	seen map[int64]string
}

// next fails t unless pos is new and after every position seen; what
// names the write.
func (p *positions) next(what string, pos int64) {
	p.t.Helper()
	if pos <= p.last {
		p.t.Errorf("%s has Pos %d, not after %d", what, pos, p.last)
	}
	if other, ok := p.seen[pos]; ok {
		p.t.Errorf("%s has Pos %d, as %s has", what, pos, other)
	}
	p.seen[pos], p.last = what, pos
}

// settled fails t unless Position is the last position seen.
func (p *positions) settled(what string) {
	p.t.Helper()
	if got := mustPosition(p.t, p.s); got != p.last {
		p.t.Errorf("after %s, Position is %d, want %d", what, got, p.last)
	}
}

func testPositionsIncrease(t *testing.T, s chat.Store, ids *IDs) {
	p := &positions{t: t, s: s, seen: map[int64]string{}}
	alice := MustCreateUser(t, s, ids, "alice")
	bob := MustCreateUser(t, s, ids, "bob")
	carol := MustCreateUser(t, s, ids, "carol")
	c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
	p.next("created conversation", c.Pos)
	members, err := s.ListMembers(t.Context(), c.ID)
	mustNot(t, "ListMembers", err)
	for _, m := range members {
		p.next(fmt.Sprintf("created member %v", m.User), m.Pos)
	}
	p.settled("CreateConversation")
	added, err := s.AddMembers(t.Context(), c.ID, []chat.Member{{User: carol.ID, Role: chat.RoleAdmin, JoinedAt: At(time.Minute)}})
	mustNot(t, "AddMembers", err)
	p.next("added member", added[0].Pos)
	p.settled("AddMembers")
	res := mustAppendBatch(t, s, draft(ids, c.ID, bob.ID, "k1", "one", 0), draft(ids, c.ID, bob.ID, "k2", "two", 0), draft(ids, c.ID, bob.ID, "k3", "three", 0))
	for i, r := range res {
		p.next(fmt.Sprintf("appended message %d", i), r.Message.Pos)
	}
	p.settled("AppendMessages")
	m, err := s.EditMessage(t.Context(), c.ID, res[0].Message.ID, "uno", nil, At(time.Hour))
	mustNot(t, "EditMessage", err)
	p.next("edited message", m.Pos)
	p.settled("EditMessage")
	p.next("reaction added", mustReact(t, s, c.ID, res[1].Message.ID, alice.ID, "👍", true).Pos)
	p.settled("SetReaction on")
	p.next("reaction removed", mustReact(t, s, c.ID, res[1].Message.ID, alice.ID, "👍", false).Pos)
	p.settled("SetReaction off")
	m, err = s.DeleteMessage(t.Context(), c.ID, res[2].Message.ID, At(time.Hour))
	mustNot(t, "DeleteMessage", err)
	p.next("deleted message", m.Pos)
	p.settled("DeleteMessage")
	member, err := s.UpdateReadSeq(t.Context(), c.ID, bob.ID, 2)
	mustNot(t, "UpdateReadSeq", err)
	p.next("read watermark", member.Pos)
	p.settled("UpdateReadSeq")
	member, err = s.UpdateDeliveredSeq(t.Context(), c.ID, bob.ID, 3)
	mustNot(t, "UpdateDeliveredSeq", err)
	p.next("delivered watermark", member.Pos)
	p.settled("UpdateDeliveredSeq")
	member, err = s.UpdateMemberRole(t.Context(), c.ID, bob.ID, chat.RoleAdmin)
	mustNot(t, "UpdateMemberRole", err)
	p.next("role", member.Pos)
	p.settled("UpdateMemberRole")
	conv, err := s.UpdateTitle(t.Context(), c.ID, "renamed")
	mustNot(t, "UpdateTitle", err)
	p.next("title", conv.Pos)
	p.settled("UpdateTitle")

	before := p.last
	promoted, err := s.RemoveMember(t.Context(), c.ID, alice.ID)
	mustNot(t, "RemoveMember", err)
	if len(promoted) != 1 {
		t.Fatalf("removing the only owner promoted %v, want one member", promoted)
	}
	changes, err := s.ListChanges(t.Context(), alice.ID, before, 10)
	mustNot(t, "ListChanges", err)
	if len(changes.Changes) != 1 || changes.Changes[0].Kind != chat.ChangeMemberLeft {
		t.Fatalf("the removed owner's changes: %+v, want their member_left record", changes.Changes)
	}
	departed, promotedPos := changes.Changes[0].Pos, promoted[0].Pos
	if departed <= before || promotedPos <= before || departed == promotedPos || max(departed, promotedPos) != mustPosition(t, s) {
		t.Errorf("removal after %d gave the departure Pos %d and the promotion Pos %d, want two new positions ending at Position (%d)",
			before, departed, promotedPos, mustPosition(t, s))
	}
}

func testNoOpWrites(t *testing.T, s chat.Store, ids *IDs) {
	alice := MustCreateUser(t, s, ids, "alice")
	bob := MustCreateUser(t, s, ids, "bob")
	direct, members := directDraft(ids, alice.ID, bob.ID, At(0))
	_, _, err := s.CreateConversation(t.Context(), direct, members)
	mustNot(t, "CreateConversation", err)
	c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
	d := draft(ids, c.ID, bob.ID, "k1", "hi", 0)
	mustAppendBatch(t, s, d)
	_, err = s.UpdateReadSeq(t.Context(), c.ID, alice.ID, 1)
	mustNot(t, "UpdateReadSeq", err)
	pos := mustPosition(t, s)

	again, members := directDraft(ids, bob.ID, alice.ID, At(time.Hour))
	_, _, err = s.CreateConversation(t.Context(), again, members)
	mustNot(t, "CreateConversation of an existing direct conversation", err)
	_, err = s.AddMembers(t.Context(), c.ID, []chat.Member{{User: bob.ID, Role: chat.RoleMember, JoinedAt: At(time.Hour)}})
	mustNot(t, "AddMembers of a member", err)
	if r := mustAppendBatch(t, s, d)[0]; !r.Duplicate {
		t.Errorf("retry gave %+v, want a duplicate", r)
	}
	for _, seq := range []int64{0, 1} {
		m, err := s.UpdateReadSeq(t.Context(), c.ID, alice.ID, seq)
		mustNot(t, "UpdateReadSeq", err)
		wantEqual(t, "UpdateReadSeq that does not move", pos, m.Pos)
	}
	_, err = s.UpdateDeliveredSeq(t.Context(), c.ID, alice.ID, 0)
	mustNot(t, "UpdateDeliveredSeq", err)
	_, err = s.UpdateMemberRole(t.Context(), c.ID, bob.ID, chat.RoleMember)
	mustNot(t, "UpdateMemberRole to the same role", err)
	_, err = s.UpdateTitle(t.Context(), c.ID, c.Title)
	mustNot(t, "UpdateTitle to the same title", err)
	wantNoNewPosition(t, s, "writes that change nothing", pos)

	refused := draft(ids, c.ID, bob.ID, "k2", "reply to nothing", 0)
	refused.ReplyTo = chat.MessageID(ids.NextID())
	wantCode(t, mustAppendBatch(t, s, refused, draft(ids, chat.ConversationID(ids.NextID()), bob.ID, "k3", "lost", 0))[0].Err, chat.CodeInvalidArgument)
	_, err = s.UpdateMemberRole(t.Context(), c.ID, alice.ID, chat.RoleMember)
	wantCode(t, err, chat.CodeConflict)
	wantNoNewPosition(t, s, "refused writes", pos)
}

func listChangesTests() []storeCase {
	return []storeCase{
		{"a member sees each change of their conversations once, at its latest position", testChangesOfMember},
		{"pages over 1,000 mixed writes have no gap and no duplicate", testMixedSync},
		{"a stranger sees nothing", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			stranger := MustCreateUser(t, s, ids, "mallory")
			c := MustCreateGroup(t, s, ids, alice.ID)
			MustAppend(t, s, ids, c.ID, alice.ID, "hi", At(0))
			for _, after := range []int64{0, 2} {
				got, err := s.ListChanges(t.Context(), stranger.ID, after, 10)
				mustNot(t, "ListChanges", err)
				wantEqual(t, "stranger's changes", chat.Changes{Cursor: after}, got)
			}
		}},
		{"a removed member sees their departure and nothing later", testChangesOfRemoved},
		{"a member added again sees their new membership", testChangesOfReadded},
		{"HasMore tells whether changes follow the page", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			cursor := mustPosition(t, s)
			msgs := newMessages(t, s, ids, c.ID, alice.ID, 5)
			for _, step := range []struct {
				limit int
				more  bool
			}{{4, true}, {5, false}, {6, false}} {
				got, err := s.ListChanges(t.Context(), alice.ID, cursor, step.limit)
				mustNot(t, "ListChanges", err)
				n := min(step.limit, len(msgs))
				if len(got.Changes) != n || got.HasMore != step.more || got.Cursor != msgs[n-1].Pos {
					t.Errorf("5 messages with limit %d gave %d changes, HasMore %v, Cursor %d; want %d, %v and %d",
						step.limit, len(got.Changes), got.HasMore, got.Cursor, n, step.more, msgs[n-1].Pos)
				}
			}
		}},
		{"limit is clamped to 1..MaxPageSize", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			newMessages(t, s, ids, c.ID, alice.ID, chat.MaxPageSize+1)
			for _, step := range []struct{ limit, want int }{{0, 1}, {-1, 1}, {chat.MaxPageSize + 5, chat.MaxPageSize}} {
				got, err := s.ListChanges(t.Context(), alice.ID, 0, step.limit)
				mustNot(t, "ListChanges", err)
				if len(got.Changes) != step.want || !got.HasMore || got.Cursor != got.Changes[len(got.Changes)-1].Pos {
					t.Errorf("limit %d gave %d changes, HasMore %v, Cursor %d; want %d, more, and the last one's position",
						step.limit, len(got.Changes), got.HasMore, got.Cursor, step.want)
				}
			}
		}},
	}
}

// testChangesOfMember makes changes of every kind in a conversation bob is
// in and one he is not: from 0 he sees exactly the current state of his,
// and from a cursor exactly what changed after it.
func testChangesOfMember(t *testing.T, s chat.Store, ids *IDs) {
	alice := MustCreateUser(t, s, ids, "alice")
	bob := MustCreateUser(t, s, ids, "bob")
	carol := MustCreateUser(t, s, ids, "carol")
	c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
	other := MustCreateGroup(t, s, ids, carol.ID)
	msgs := newMessages(t, s, ids, c.ID, alice.ID, 3)
	MustAppend(t, s, ids, other.ID, carol.ID, "elsewhere", At(0))
	cursor := mustPosition(t, s)
	_, err := s.EditMessage(t.Context(), c.ID, msgs[0].ID, "edited", nil, At(time.Hour))
	mustNot(t, "EditMessage", err)
	mustReact(t, s, c.ID, msgs[1].ID, bob.ID, "👍", true)
	_, err = s.UpdateReadSeq(t.Context(), c.ID, bob.ID, 3)
	mustNot(t, "UpdateReadSeq", err)
	_, err = s.UpdateTitle(t.Context(), c.ID, "renamed")
	mustNot(t, "UpdateTitle", err)
	_, err = s.UpdateTitle(t.Context(), other.ID, "not bob's")
	mustNot(t, "UpdateTitle", err)
	_, err = s.DeleteMessage(t.Context(), c.ID, msgs[0].ID, At(2*time.Hour))
	mustNot(t, "DeleteMessage", err)
	mustReact(t, s, c.ID, msgs[1].ID, alice.ID, "🎉", true)

	want := currentState(t, s, bob.ID, nil).changes()
	got, err := s.ListChanges(t.Context(), bob.ID, 0, chat.MaxPageSize)
	mustNot(t, "ListChanges", err)
	wantEqual(t, "bob's changes from 0", chat.Changes{Changes: want, Cursor: want[len(want)-1].Pos}, got)

	var after []chat.Change
	for _, c := range want {
		if c.Pos > cursor {
			after = append(after, c)
		}
	}
	if len(after) != 4 {
		t.Errorf("bob has %d changes after the cursor, want 4: two messages, his membership and the conversation", len(after))
	}
	got, err = s.ListChanges(t.Context(), bob.ID, cursor, chat.MaxPageSize)
	mustNot(t, "ListChanges", err)
	wantEqual(t, "bob's changes after the cursor", chat.Changes{Changes: after, Cursor: want[len(want)-1].Pos}, got)
	got, err = s.ListChanges(t.Context(), bob.ID, cursor, 3)
	mustNot(t, "ListChanges", err)
	wantEqual(t, "a page of 3", chat.Changes{Changes: after[:3], Cursor: after[2].Pos, HasMore: true}, got)
}

func testChangesOfRemoved(t *testing.T, s chat.Store, ids *IDs) {
	alice := MustCreateUser(t, s, ids, "alice")
	bob := MustCreateUser(t, s, ids, "bob")
	c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
	msgs := newMessages(t, s, ids, c.ID, alice.ID, 3)
	last, err := s.UpdateReadSeq(t.Context(), c.ID, bob.ID, 2)
	mustNot(t, "UpdateReadSeq", err)
	last, err = s.UpdateDeliveredSeq(t.Context(), c.ID, bob.ID, 3)
	mustNot(t, "UpdateDeliveredSeq", err)
	cursor := mustPosition(t, s)
	_, err = s.RemoveMember(t.Context(), c.ID, bob.ID)
	mustNot(t, "RemoveMember", err)
	MustAppend(t, s, ids, c.ID, alice.ID, "after bob left", At(time.Hour))
	mustReact(t, s, c.ID, msgs[0].ID, alice.ID, "👍", true)
	_, err = s.UpdateTitle(t.Context(), c.ID, "without bob")
	mustNot(t, "UpdateTitle", err)

	for _, after := range []int64{0, cursor} {
		got, err := s.ListChanges(t.Context(), bob.ID, after, 10)
		mustNot(t, "ListChanges", err)
		if len(got.Changes) != 1 || got.Changes[0].Kind != chat.ChangeMemberLeft || got.HasMore {
			t.Fatalf("bob's changes after %d: %+v, want his member_left record alone", after, got)
		}
		wantEqual(t, "bob's member_left record", last, *got.Changes[0].Member, ignorePos())
		wantRaised(t, "bob's member_left record", cursor, got.Changes[0].Pos)
		n, err := s.CountChanges(t.Context(), bob.ID, after, 10)
		mustNot(t, "CountChanges", err)
		wantEqual(t, "CountChanges", 1, n)
	}
	got, err := s.ListChanges(t.Context(), alice.ID, cursor, 10)
	mustNot(t, "ListChanges", err)
	var left []chat.Member
	for _, c := range got.Changes {
		if c.Kind == chat.ChangeMemberLeft {
			left = append(left, *c.Member)
		}
	}
	wantEqual(t, "member_left records alice sees", []chat.Member{last}, left, ignorePos())
}

func testChangesOfReadded(t *testing.T, s chat.Store, ids *IDs) {
	alice := MustCreateUser(t, s, ids, "alice")
	bob := MustCreateUser(t, s, ids, "bob")
	c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
	MustAppend(t, s, ids, c.ID, alice.ID, "before", At(0))
	_, err := s.RemoveMember(t.Context(), c.ID, bob.ID)
	mustNot(t, "RemoveMember", err)
	cursor := mustPosition(t, s)
	added, err := s.AddMembers(t.Context(), c.ID, []chat.Member{{User: bob.ID, Role: chat.RoleMember, JoinedAt: At(time.Hour)}})
	mustNot(t, "AddMembers", err)

	for _, after := range []int64{0, cursor} {
		r := newReplica()
		_, all := syncChanges(t, s, bob.ID, after, 10, r)
		if got, ok := r.members[memberKey{c.ID, bob.ID}]; !ok {
			t.Errorf("bob's changes after %d lack his new membership", after)
		} else {
			wantEqual(t, "bob's new membership", added[0], got)
		}
		for _, c := range all {
			if c.Kind == chat.ChangeMemberLeft {
				t.Errorf("bob's changes after %d hold the member_left record %+v of a membership that exists again", after, *c.Member)
			}
		}
	}
	got, err := s.ListChanges(t.Context(), alice.ID, cursor, 10)
	mustNot(t, "ListChanges", err)
	wantEqual(t, "alice's changes after bob's removal", chat.Changes{
		Changes: []chat.Change{{Pos: added[0].Pos, Kind: chat.ChangeMember, Member: &added[0]}},
		Cursor:  added[0].Pos,
	}, got)
}

// testCountChanges checks CountChanges against ListChanges from several
// cursors and with several caps.
func testCountChanges(t *testing.T, s chat.Store, ids *IDs) {
	alice := MustCreateUser(t, s, ids, "alice")
	bob := MustCreateUser(t, s, ids, "bob")
	stranger := MustCreateUser(t, s, ids, "mallory")
	c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
	msgs := newMessages(t, s, ids, c.ID, alice.ID, 5)
	_, err := s.RemoveMember(t.Context(), c.ID, bob.ID)
	mustNot(t, "RemoveMember", err)
	mustReact(t, s, c.ID, msgs[4].ID, alice.ID, "👍", true)
	_, err = s.UpdateTitle(t.Context(), c.ID, "renamed")
	mustNot(t, "UpdateTitle", err)
	_, all := syncChanges(t, s, alice.ID, 0, chat.MaxPageSize, newReplica())
	for _, after := range []int64{0, all[3].Pos, all[len(all)-1].Pos} {
		n := 0
		for _, c := range all {
			if c.Pos > after {
				n++
			}
		}
		for _, atMost := range []int{0, 1, 3, n, 1000} {
			got, err := s.CountChanges(t.Context(), alice.ID, after, atMost)
			mustNot(t, "CountChanges", err)
			if want := min(n, max(atMost, 0)); got != want {
				t.Errorf("CountChanges(after %d, max %d) = %d, want %d", after, atMost, got, want)
			}
		}
	}
	got, err := s.CountChanges(t.Context(), stranger.ID, 0, 10)
	mustNot(t, "CountChanges", err)
	wantEqual(t, "stranger's count", 0, got)
}
