package chattest

import (
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

func memberTests() []storeMethod {
	return []storeMethod{
		{"GetMember", []storeCase{
			{"returns the membership", func(t *testing.T, s chat.Store, ids *IDs) {
				alice := MustCreateUser(t, s, ids, "alice")
				bob := MustCreateUser(t, s, ids, "bob")
				c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
				got, err := s.GetMember(t.Context(), c.ID, bob.ID)
				mustNot(t, "GetMember", err)
				wantEqual(t, "GetMember", chat.Member{Conv: c.ID, User: bob.ID, Role: chat.RoleMember, JoinedAt: At(0)}, got, ignorePos())
			}},
			{"stranger is not found", func(t *testing.T, s chat.Store, ids *IDs) {
				alice := MustCreateUser(t, s, ids, "alice")
				stranger := MustCreateUser(t, s, ids, "mallory")
				c := MustCreateGroup(t, s, ids, alice.ID)
				_, err := s.GetMember(t.Context(), c.ID, stranger.ID)
				wantCode(t, err, chat.CodeNotFound)
			}},
		}},
		{"ListMembers", []storeCase{
			{"unknown conversation has no members", func(t *testing.T, s chat.Store, ids *IDs) {
				got, err := s.ListMembers(t.Context(), chat.ConversationID(ids.NextID()))
				mustNot(t, "ListMembers", err)
				if len(got) != 0 {
					t.Fatalf("ListMembers = %v, want none", got)
				}
			}},
		}},
		{"AddMembers", addMembersTests()},
		{"RemoveMember", []storeCase{
			{"removes the member", func(t *testing.T, s chat.Store, ids *IDs) {
				alice := MustCreateUser(t, s, ids, "alice")
				bob := MustCreateUser(t, s, ids, "bob")
				c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
				promoted, err := s.RemoveMember(t.Context(), c.ID, bob.ID)
				mustNot(t, "RemoveMember", err)
				if len(promoted) != 0 {
					t.Errorf("removing a plain member promoted %v", promoted)
				}
				_, err = s.GetMember(t.Context(), c.ID, bob.ID)
				wantCode(t, err, chat.CodeNotFound)
				members, err := s.ListMembers(t.Context(), c.ID)
				mustNot(t, "ListMembers", err)
				wantEqual(t, "members", []chat.Member{{Conv: c.ID, User: alice.ID, Role: chat.RoleOwner, JoinedAt: At(0)}}, members, ignorePos())
				convs, err := s.ListConversationIDs(t.Context(), bob.ID)
				mustNot(t, "ListConversationIDs", err)
				if len(convs) != 0 {
					t.Errorf("removed member still lists %v", convs)
				}
			}},
			{"non-member is not found", func(t *testing.T, s chat.Store, ids *IDs) {
				alice := MustCreateUser(t, s, ids, "alice")
				bob := MustCreateUser(t, s, ids, "bob")
				c := MustCreateGroup(t, s, ids, alice.ID)
				_, err := s.RemoveMember(t.Context(), c.ID, bob.ID)
				wantCode(t, err, chat.CodeNotFound)
			}},
			{"last owner leaving promotes the longest-standing admin", func(t *testing.T, s chat.Store, ids *IDs) {
				alice := MustCreateUser(t, s, ids, "alice")
				bob := MustCreateUser(t, s, ids, "bob")
				carol := MustCreateUser(t, s, ids, "carol")
				c := MustCreateGroup(t, s, ids, alice.ID, bob.ID, carol.ID)
				_, err := s.UpdateMemberRole(t.Context(), c.ID, carol.ID, chat.RoleAdmin)
				mustNot(t, "UpdateMemberRole", err)
				promoted, err := s.RemoveMember(t.Context(), c.ID, alice.ID)
				mustNot(t, "RemoveMember", err)
				if len(promoted) != 1 || promoted[0].User != carol.ID || promoted[0].Role != chat.RoleOwner {
					t.Fatalf("promoted %v, want carol (the admin) as owner", promoted)
				}
				promoted, err = s.RemoveMember(t.Context(), c.ID, carol.ID)
				mustNot(t, "RemoveMember", err)
				if len(promoted) != 1 || promoted[0].User != bob.ID {
					t.Fatalf("promoted %v, want bob (the only member left)", promoted)
				}
				promoted, err = s.RemoveMember(t.Context(), c.ID, bob.ID)
				mustNot(t, "RemoveMember", err)
				if len(promoted) != 0 {
					t.Fatalf("an empty conversation promoted %v", promoted)
				}
			}},
		}},
		{"UpdateMemberRole", []storeCase{
			{"changes the role", func(t *testing.T, s chat.Store, ids *IDs) {
				alice := MustCreateUser(t, s, ids, "alice")
				bob := MustCreateUser(t, s, ids, "bob")
				c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
				m, err := s.UpdateMemberRole(t.Context(), c.ID, bob.ID, chat.RoleAdmin)
				mustNot(t, "UpdateMemberRole", err)
				got, err := s.GetMember(t.Context(), c.ID, bob.ID)
				mustNot(t, "GetMember", err)
				wantEqual(t, "updated member", m, got)
				wantEqual(t, "role", chat.RoleAdmin, got.Role)
			}},
			{"the last owner cannot be demoted", func(t *testing.T, s chat.Store, ids *IDs) {
				alice := MustCreateUser(t, s, ids, "alice")
				bob := MustCreateUser(t, s, ids, "bob")
				c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
				_, err := s.UpdateMemberRole(t.Context(), c.ID, alice.ID, chat.RoleMember)
				wantCode(t, err, chat.CodeConflict)
				got, _ := s.GetMember(t.Context(), c.ID, alice.ID)
				wantEqual(t, "role after refused demotion", chat.RoleOwner, got.Role)
			}},
			{"a non-member is not found", func(t *testing.T, s chat.Store, ids *IDs) {
				alice := MustCreateUser(t, s, ids, "alice")
				bob := MustCreateUser(t, s, ids, "bob")
				c := MustCreateGroup(t, s, ids, alice.ID)
				_, err := s.UpdateMemberRole(t.Context(), c.ID, bob.ID, chat.RoleAdmin)
				wantCode(t, err, chat.CodeNotFound)
			}},
		}},
		{"UpdateReadSeq", updateReadSeqTests()},
	}
}

func addMembersTests() []storeCase {
	return []storeCase{
		{"adds only users who are not members", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			carol := MustCreateUser(t, s, ids, "carol")
			c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
			added, err := s.AddMembers(t.Context(), c.ID, []chat.Member{
				{User: bob.ID, Role: chat.RoleAdmin, JoinedAt: At(time.Minute)},
				{User: carol.ID, Role: chat.RoleMember, JoinedAt: At(time.Minute)},
			})
			mustNot(t, "AddMembers", err)
			newcomer := chat.Member{Conv: c.ID, User: carol.ID, Role: chat.RoleMember, JoinedAt: At(time.Minute)}
			wantEqual(t, "added", []chat.Member{newcomer}, added, ignorePos())
			members, err := s.ListMembers(t.Context(), c.ID)
			mustNot(t, "ListMembers", err)
			wantEqual(t, "members (bob's role unchanged)", []chat.Member{
				{Conv: c.ID, User: alice.ID, Role: chat.RoleOwner, JoinedAt: At(0)},
				{Conv: c.ID, User: bob.ID, Role: chat.RoleMember, JoinedAt: At(0)},
				added[0],
			}, members, ignorePos())
		}},
		{"adding members again adds none", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			c := MustCreateGroup(t, s, ids, alice.ID)
			add := []chat.Member{{User: bob.ID, Role: chat.RoleMember, JoinedAt: At(time.Minute)}}
			_, err := s.AddMembers(t.Context(), c.ID, add)
			mustNot(t, "AddMembers", err)
			added, err := s.AddMembers(t.Context(), c.ID, add)
			mustNot(t, "AddMembers again", err)
			if len(added) != 0 {
				t.Errorf("AddMembers again added %v, want none", added)
			}
		}},
		{"unknown conversation is not found", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			_, err := s.AddMembers(t.Context(), chat.ConversationID(ids.NextID()),
				[]chat.Member{{User: alice.ID, Role: chat.RoleMember, JoinedAt: At(0)}})
			wantCode(t, err, chat.CodeNotFound)
		}},
	}
}

func updateReadSeqTests() []storeCase {
	return []storeCase{
		{"raises the watermark and never lowers it", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			for range 5 {
				MustAppend(t, s, ids, c.ID, alice.ID, "hi", At(time.Minute))
			}
			for _, step := range []struct{ seq, want int64 }{{3, 3}, {2, 3}, {0, 3}, {5, 5}} {
				m, err := s.UpdateReadSeq(t.Context(), c.ID, alice.ID, step.seq)
				mustNot(t, "UpdateReadSeq", err)
				if m.ReadSeq != step.want {
					t.Errorf("UpdateReadSeq(%d) gave ReadSeq %d, want %d", step.seq, m.ReadSeq, step.want)
				}
			}
			m, err := s.GetMember(t.Context(), c.ID, alice.ID)
			mustNot(t, "GetMember", err)
			wantEqual(t, "stored member", chat.Member{Conv: c.ID, User: alice.ID, Role: chat.RoleOwner, JoinedAt: At(0), ReadSeq: 5}, m, ignorePos())
		}},
		{"clamps to the last seq", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
			MustAppend(t, s, ids, c.ID, bob.ID, "one", At(time.Minute))
			MustAppend(t, s, ids, c.ID, bob.ID, "two", At(time.Minute))
			m, err := s.UpdateReadSeq(t.Context(), c.ID, alice.ID, 100)
			mustNot(t, "UpdateReadSeq", err)
			if m.ReadSeq != 2 {
				t.Fatalf("UpdateReadSeq(100) gave ReadSeq %d, want 2 (the last seq)", m.ReadSeq)
			}
			MustAppend(t, s, ids, c.ID, bob.ID, "three", At(2*time.Minute))
			sums, err := s.ListConversations(t.Context(), alice.ID)
			mustNot(t, "ListConversations", err)
			if len(sums) != 1 || sums[0].ReadSeq != 2 || sums[0].Unread != 1 {
				t.Fatalf("after a new message: summaries %+v, want one with ReadSeq 2 and Unread 1", sums)
			}
		}},
		{"non-member is not found", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			c := MustCreateGroup(t, s, ids, alice.ID)
			_, err := s.UpdateReadSeq(t.Context(), c.ID, bob.ID, 1)
			wantCode(t, err, chat.CodeNotFound)
		}},
	}
}
