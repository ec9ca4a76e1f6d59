package chattest

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/natter-chat/natter/internal/chat"
)

// directDraft returns a new direct conversation between a and b, started
// by a at at, and its two owners.
func directDraft(ids *IDs, a, b chat.UserID, at time.Time) (chat.Conversation, []chat.Member) {
	c := chat.Conversation{ID: chat.ConversationID(ids.NextID()), Kind: chat.KindDirect, CreatedBy: a, CreatedAt: at}
	return c, []chat.Member{
		{Conv: c.ID, User: a, Role: chat.RoleOwner, JoinedAt: at},
		{Conv: c.ID, User: b, Role: chat.RoleOwner, JoinedAt: at},
	}
}

// mustCreateGroupAt stores a group created at at by owner, with others as
// plain members, and returns it.
func mustCreateGroupAt(t testing.TB, s chat.Store, ids *IDs, at time.Time, owner chat.UserID, others ...chat.UserID) chat.Conversation {
	t.Helper()
	c := chat.Conversation{ID: chat.ConversationID(ids.NextID()), Kind: chat.KindGroup, Title: "group", CreatedBy: owner, CreatedAt: at}
	members := []chat.Member{{User: owner, Role: chat.RoleOwner, JoinedAt: at}}
	for _, u := range others {
		members = append(members, chat.Member{User: u, Role: chat.RoleMember, JoinedAt: at})
	}
	c, created, err := s.CreateConversation(t.Context(), c, members)
	mustNot(t, "CreateConversation", err)
	if !created {
		t.Fatalf("CreateConversation(group) reported created == false")
	}
	return c
}

func conversationTests() []storeMethod {
	return []storeMethod{
		{"CreateConversation", createConversationTests()},
		{"GetConversation", []storeCase{
			{"unknown id is not found", func(t *testing.T, s chat.Store, ids *IDs) {
				_, err := s.GetConversation(t.Context(), chat.ConversationID(ids.NextID()))
				wantCode(t, err, chat.CodeNotFound)
			}},
		}},
		{"ListConversationIDs", []storeCase{
			{"lists the user's conversations only", func(t *testing.T, s chat.Store, ids *IDs) {
				alice := MustCreateUser(t, s, ids, "alice")
				bob := MustCreateUser(t, s, ids, "bob")
				carol := MustCreateUser(t, s, ids, "carol")
				g1 := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
				g2 := MustCreateGroup(t, s, ids, carol.ID, alice.ID)
				MustCreateGroup(t, s, ids, bob.ID, carol.ID)
				got, err := s.ListConversationIDs(t.Context(), alice.ID)
				mustNot(t, "ListConversationIDs", err)
				wantEqual(t, "ListConversationIDs", []chat.ConversationID{g1.ID, g2.ID}, got,
					cmpopts.SortSlices(func(a, b chat.ConversationID) bool { return a < b }))
			}},
		}},
		{"ListConversations", listConversationsTests()},
	}
}

func createConversationTests() []storeCase {
	return []storeCase{
		{"direct conversation is created once per pair", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			c, members := directDraft(ids, alice.ID, bob.ID, At(0))
			first, created, err := s.CreateConversation(t.Context(), c, members)
			mustNot(t, "CreateConversation", err)
			if !created {
				t.Fatalf("first CreateConversation reported created == false")
			}
			wantEqual(t, "created conversation", c, first, ignorePos())

			again, members := directDraft(ids, bob.ID, alice.ID, At(time.Hour))
			got, created, err := s.CreateConversation(t.Context(), again, members)
			mustNot(t, "CreateConversation again", err)
			if created {
				t.Errorf("second CreateConversation reported created == true")
			}
			wantEqual(t, "existing conversation", first, got)
			_, err = s.GetConversation(t.Context(), again.ID)
			wantCode(t, err, chat.CodeNotFound)
			stored, err := s.GetConversation(t.Context(), first.ID)
			mustNot(t, "GetConversation", err)
			wantEqual(t, "GetConversation", first, stored)
		}},
		{"concurrent creates of one pair give one conversation", testConcurrentDirectCreates},
		{"group stores its members and roles", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			carol := MustCreateUser(t, s, ids, "carol")
			c := chat.Conversation{ID: chat.ConversationID(ids.NextID()), Kind: chat.KindGroup, Title: "plans", CreatedBy: alice.ID, CreatedAt: At(0)}
			got, created, err := s.CreateConversation(t.Context(), c, []chat.Member{
				{User: alice.ID, Role: chat.RoleOwner, JoinedAt: At(time.Minute)},
				{User: carol.ID, Role: chat.RoleMember, JoinedAt: At(0)},
				{User: bob.ID, Role: chat.RoleAdmin, JoinedAt: At(0)},
			})
			mustNot(t, "CreateConversation", err)
			if !created {
				t.Errorf("CreateConversation(group) reported created == false")
			}
			wantEqual(t, "created conversation", c, got, ignorePos())
			stored, err := s.GetConversation(t.Context(), c.ID)
			mustNot(t, "GetConversation", err)
			wantEqual(t, "GetConversation", got, stored)

			members, err := s.ListMembers(t.Context(), c.ID)
			mustNot(t, "ListMembers", err)
			wantEqual(t, "members, by join time then user id", []chat.Member{
				{Conv: c.ID, User: bob.ID, Role: chat.RoleAdmin, JoinedAt: At(0)},
				{Conv: c.ID, User: carol.ID, Role: chat.RoleMember, JoinedAt: At(0)},
				{Conv: c.ID, User: alice.ID, Role: chat.RoleOwner, JoinedAt: At(time.Minute)},
			}, members, ignorePos())
		}},
	}
}

// testConcurrentDirectCreates has 10 goroutines create the direct
// conversation of one pair at once: exactly one must create it, and all must
// get that one back.
func testConcurrentDirectCreates(t *testing.T, s chat.Store, ids *IDs) {
	alice := MustCreateUser(t, s, ids, "alice")
	bob := MustCreateUser(t, s, ids, "bob")
	type outcome struct {
		conv    chat.Conversation
		created bool
		err     error
	}
	outcomes := make([]outcome, 10)
	var wg sync.WaitGroup
	for i := range outcomes {
		c, members := directDraft(ids, alice.ID, bob.ID, At(time.Duration(i)*time.Second))
		wg.Go(func() {
			o := &outcomes[i]
			o.conv, o.created, o.err = s.CreateConversation(t.Context(), c, members)
		})
	}
	wg.Wait()
	var winners []chat.Conversation
	for i, o := range outcomes {
		mustNot(t, "CreateConversation", o.err)
		if o.created {
			winners = append(winners, o.conv)
		}
		if o.conv.ID != outcomes[0].conv.ID {
			t.Errorf("create %d returned conversation %v, create 0 returned %v", i, o.conv.ID, outcomes[0].conv.ID)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d creates reported created == true, want 1", len(winners))
	}
	got, err := s.ListConversationIDs(t.Context(), alice.ID)
	mustNot(t, "ListConversationIDs", err)
	wantEqual(t, "alice's conversations", []chat.ConversationID{winners[0].ID}, got)
}

func listConversationsTests() []storeCase {
	return []storeCase{
		{"most recent activity comes first", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c1 := mustCreateGroupAt(t, s, ids, At(1*time.Minute), alice.ID)
			c2 := mustCreateGroupAt(t, s, ids, At(2*time.Minute), alice.ID)
			c3 := mustCreateGroupAt(t, s, ids, At(3*time.Minute), alice.ID)
			order := func() []chat.ConversationID {
				t.Helper()
				sums, err := s.ListConversations(t.Context(), alice.ID)
				mustNot(t, "ListConversations", err)
				var got []chat.ConversationID
				for _, sum := range sums {
					got = append(got, sum.ID)
				}
				return got
			}
			wantEqual(t, "order by creation", []chat.ConversationID{c3.ID, c2.ID, c1.ID}, order())
			MustAppend(t, s, ids, c1.ID, alice.ID, "hi", At(4*time.Minute))
			wantEqual(t, "order after a message in c1", []chat.ConversationID{c1.ID, c3.ID, c2.ID}, order())
			MustAppend(t, s, ids, c2.ID, alice.ID, "hi", At(5*time.Minute))
			wantEqual(t, "order after a message in c2", []chat.ConversationID{c2.ID, c1.ID, c3.ID}, order())
		}},
		{"summary carries members, last message and unread count", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			c := MustCreateGroup(t, s, ids, alice.ID, bob.ID)
			for i := range 3 {
				MustAppend(t, s, ids, c.ID, bob.ID, "from bob", At(time.Duration(i+1)*time.Minute))
			}
			last := MustAppend(t, s, ids, c.ID, alice.ID, "from alice", At(4*time.Minute))
			c.LastSeq = 4
			members := []chat.Member{
				{Conv: c.ID, User: alice.ID, Role: chat.RoleOwner, JoinedAt: At(0)},
				{Conv: c.ID, User: bob.ID, Role: chat.RoleMember, JoinedAt: At(0)},
			}
			summary := func(user chat.UserID) chat.ConversationSummary {
				t.Helper()
				sums, err := s.ListConversations(t.Context(), user)
				mustNot(t, "ListConversations", err)
				if len(sums) != 1 {
					t.Fatalf("ListConversations returned %d summaries, want 1", len(sums))
				}
				return sums[0]
			}
			want := chat.ConversationSummary{Conversation: c, Members: members, LastMessage: &last, Unread: 3}
			wantEqual(t, "alice's summary (own message not unread)", want, summary(alice.ID), ignorePos())
			want.Unread = 1
			wantEqual(t, "bob's summary", want, summary(bob.ID), ignorePos())

			_, err := s.UpdateReadSeq(t.Context(), c.ID, alice.ID, 2)
			mustNot(t, "UpdateReadSeq", err)
			members[0].ReadSeq = 2
			want = chat.ConversationSummary{Conversation: c, Members: members, LastMessage: &last, ReadSeq: 2, Unread: 1}
			wantEqual(t, "alice's summary after reading up to 2", want, summary(alice.ID), ignorePos())
		}},
		{"conversation without messages has no last message", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			c := MustCreateGroup(t, s, ids, alice.ID)
			got, err := s.ListConversations(t.Context(), alice.ID)
			mustNot(t, "ListConversations", err)
			wantEqual(t, "ListConversations", []chat.ConversationSummary{{
				Conversation: c,
				Members:      []chat.Member{{Conv: c.ID, User: alice.ID, Role: chat.RoleOwner, JoinedAt: At(0)}},
			}}, got, ignorePos())
		}},
		{"user without conversations gets none", func(t *testing.T, s chat.Store, ids *IDs) {
			alice := MustCreateUser(t, s, ids, "alice")
			bob := MustCreateUser(t, s, ids, "bob")
			MustCreateGroup(t, s, ids, bob.ID)
			got, err := s.ListConversations(t.Context(), alice.ID)
			mustNot(t, "ListConversations", err)
			if len(got) != 0 {
				t.Fatalf("ListConversations = %v, want none", got)
			}
		}},
	}
}
