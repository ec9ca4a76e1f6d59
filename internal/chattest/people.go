package chattest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/natter-chat/natter/internal/chat"
)

// TestPeopleStore runs the chat.PeopleStore conformance suite. open must
// return a fresh, empty store that also implements chat.PeopleStore, as
// for TestStore.
func TestPeopleStore(t *testing.T, open func(t testing.TB) chat.Store) {
	methods := []peopleMethod{profileTests(), profileSearchTests(), relationTests(), directPeerTests(), sentTests(), deleteAccountTests()}
	for _, m := range methods {
		t.Run(m.method, func(t *testing.T) {
			t.Parallel()
			for _, c := range m.cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					s := open(t)
					ps, ok := s.(chat.PeopleStore)
					if !ok {
						t.Fatalf("%T does not implement chat.PeopleStore", s)
					}
					c.test(t, s, ps, NewIDs())
				})
			}
		})
	}
}

type peopleMethod struct {
	method string
	cases  []peopleCase
}

type peopleCase struct {
	name string
	test func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs)
}

func ptr[T any](v T) *T { return &v }

func usernames(ps []chat.Profile) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Username)
	}
	return out
}

func profileTests() peopleMethod {
	return peopleMethod{"Profile", []peopleCase{
		{"a new user has an empty profile", func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs) {
			u := MustCreateUser(t, s, ids, "alice")
			p, err := ps.GetProfile(t.Context(), u.ID)
			mustNot(t, "GetProfile", err)
			wantEqual(t, "profile", chat.Profile{User: u.ID, Username: "alice", CreatedAt: At(0)}, p)
		}},
		{"an avatar must be the user's own stored avatar", func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs) {
			u := MustCreateUser(t, s, ids, "alice")
			v := MustCreateUser(t, s, ids, "victor")
			_, err := ps.UpdateProfile(t.Context(), u.ID, chat.ProfileChange{Avatar: ptr("never-uploaded")}, At(time.Minute))
			wantCode(t, err, chat.CodeNotFound)
			wearTestAvatar(t, ps, v.ID, "victors")
			_, err = ps.UpdateProfile(t.Context(), u.ID, chat.ProfileChange{Avatar: ptr("victors")}, At(time.Minute))
			wantCode(t, err, chat.CodeNotFound)
			wearTestAvatar(t, ps, u.ID, "alices")
			got, err := ps.UpdateProfile(t.Context(), u.ID, chat.ProfileChange{Avatar: ptr("alices")}, At(2*time.Minute))
			mustNot(t, "UpdateProfile", err)
			if got.Avatar != "alices" {
				t.Errorf("avatar = %q, want alices", got.Avatar)
			}
		}},
		{"unknown user is not found", func(t *testing.T, _ chat.Store, ps chat.PeopleStore, _ *IDs) {
			_, err := ps.GetProfile(t.Context(), 404)
			wantCode(t, err, chat.CodeNotFound)
			_, err = ps.UpdateProfile(t.Context(), 404, chat.ProfileChange{StatusText: ptr("x")}, At(time.Minute))
			wantCode(t, err, chat.CodeNotFound)
		}},
		{"partial updates keep the other fields", func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs) {
			u := MustCreateUser(t, s, ids, "alice")
			wearTestAvatar(t, ps, u.ID, "att-1")
			_, err := ps.UpdateProfile(t.Context(), u.ID, chat.ProfileChange{DisplayName: ptr("Alice A."), Avatar: ptr("att-1")}, At(time.Minute))
			mustNot(t, "UpdateProfile", err)
			got, err := ps.UpdateProfile(t.Context(), u.ID, chat.ProfileChange{StatusText: ptr("on holiday")}, At(2*time.Minute))
			mustNot(t, "UpdateProfile", err)
			want := chat.Profile{User: u.ID, Username: "alice", DisplayName: "Alice A.", StatusText: "on holiday", Avatar: "att-1",
				CreatedAt: At(0), UpdatedAt: At(2 * time.Minute)}
			wantEqual(t, "returned profile", want, got)
			stored, err := ps.GetProfile(t.Context(), u.ID)
			mustNot(t, "GetProfile", err)
			wantEqual(t, "stored profile", want, stored)
			got, err = ps.UpdateProfile(t.Context(), u.ID, chat.ProfileChange{Avatar: ptr("")}, At(3*time.Minute))
			mustNot(t, "UpdateProfile", err)
			if got.Avatar != "" || got.DisplayName != "Alice A." {
				t.Errorf("after clearing the avatar: %+v", got)
			}
		}},
		{"ListProfiles returns the existing ones", func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs) {
			a := MustCreateUser(t, s, ids, "alice")
			b := MustCreateUser(t, s, ids, "bob")
			_, err := ps.UpdateProfile(t.Context(), b.ID, chat.ProfileChange{DisplayName: ptr("Bobby")}, At(time.Minute))
			mustNot(t, "UpdateProfile", err)
			got, err := ps.ListProfiles(t.Context(), []chat.UserID{b.ID, 999, a.ID})
			mustNot(t, "ListProfiles", err)
			names := map[chat.UserID]string{}
			for _, p := range got {
				names[p.User] = p.Username + "/" + p.DisplayName
			}
			wantEqual(t, "profiles", map[chat.UserID]string{a.ID: "alice/", b.ID: "bob/Bobby"}, names)
		}},
	}}
}

func profileSearchTests() peopleMethod {
	return peopleMethod{"SearchProfiles", []peopleCase{
		{"username or display-name prefix, in username order, paged", func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs) {
			for _, n := range []string{"zed", "anna", "bob", "carl", "annie"} {
				MustCreateUser(t, s, ids, n)
			}
			set := func(name, display string) {
				u, _, err := s.GetUserByUsername(t.Context(), name)
				mustNot(t, "GetUserByUsername", err)
				_, err = ps.UpdateProfile(t.Context(), u.ID, chat.ProfileChange{DisplayName: ptr(display)}, At(time.Minute))
				mustNot(t, "UpdateProfile", err)
			}
			set("zed", "Annabel Zed")
			set("bob", "Élodie Ann") // matches "elo", not "ann": prefixes only
			set("carl", "anne-marie")
			page, err := ps.SearchProfiles(t.Context(), "ann", "", 3)
			mustNot(t, "SearchProfiles", err)
			wantEqual(t, "first page", []string{"anna", "annie", "carl"}, usernames(page))
			page, err = ps.SearchProfiles(t.Context(), "ann", "carl", 3)
			mustNot(t, "SearchProfiles", err)
			wantEqual(t, "second page", []string{"zed"}, usernames(page))
			page, err = ps.SearchProfiles(t.Context(), chat.FoldName("ÉLO"), "", 10)
			mustNot(t, "SearchProfiles", err)
			wantEqual(t, "accent-folded match", []string{"bob"}, usernames(page))
			if len(page) == 1 && page[0].DisplayName != "Élodie Ann" {
				t.Errorf("display name = %q, want it as set", page[0].DisplayName)
			}
		}},
		{"wildcards are literal and deleted accounts are not found", func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs) {
			MustCreateUser(t, s, ids, "a_b")
			MustCreateUser(t, s, ids, "axb")
			gone := MustCreateUser(t, s, ids, "a_c")
			_, err := ps.DeleteAccount(t.Context(), gone.ID, "x", At(time.Minute))
			mustNot(t, "DeleteAccount", err)
			page, err := ps.SearchProfiles(t.Context(), "a_", "", 10)
			mustNot(t, "SearchProfiles", err)
			wantEqual(t, "matches", []string{"a_b"}, usernames(page))
			page, err = ps.SearchProfiles(t.Context(), "deleted", "", 10)
			mustNot(t, "SearchProfiles", err)
			wantEqual(t, "matches for the stored name of a deleted account", []string{}, usernames(page))
		}},
	}}
}

func relationTests() peopleMethod {
	return peopleMethod{"Relations", []peopleCase{
		{"marks are idempotent, listed oldest first and counted", func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs) {
			a := MustCreateUser(t, s, ids, "alice")
			b := MustCreateUser(t, s, ids, "bob")
			c := MustCreateUser(t, s, ids, "carol")
			for i, o := range []chat.UserID{c.ID, b.ID, c.ID} {
				changed, err := ps.SetRelation(t.Context(), a.ID, o, chat.RelationContact, true, At(time.Duration(i)*time.Minute))
				mustNot(t, "SetRelation", err)
				if changed != (i < 2) {
					t.Errorf("mark %d: changed = %v", i, changed)
				}
			}
			list, err := ps.ListRelations(t.Context(), a.ID, chat.RelationContact, 10)
			mustNot(t, "ListRelations", err)
			if len(list) != 2 || list[0].Profile.Username != "carol" || list[1].Profile.Username != "bob" || !list[1].Since.Equal(At(time.Minute)) {
				t.Errorf("contacts = %+v, want carol then bob (since 1m)", list)
			}
			blocks, err := ps.ListRelations(t.Context(), a.ID, chat.RelationBlock, 10)
			mustNot(t, "ListRelations", err)
			wantEqual(t, "blocks", []chat.Related{}, blocks)
			n, err := ps.CountRelations(t.Context(), a.ID, chat.RelationContact)
			mustNot(t, "CountRelations", err)
			if n != 2 {
				t.Errorf("count = %d, want 2", n)
			}
			changed, err := ps.SetRelation(t.Context(), a.ID, b.ID, chat.RelationContact, false, At(time.Hour))
			mustNot(t, "SetRelation off", err)
			again, err := ps.SetRelation(t.Context(), a.ID, b.ID, chat.RelationContact, false, At(time.Hour))
			mustNot(t, "SetRelation off again", err)
			if !changed || again {
				t.Errorf("unmark changed = %v, again = %v; want true, false", changed, again)
			}
		}},
		{"blocks are one-way", func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs) {
			a := MustCreateUser(t, s, ids, "alice")
			b := MustCreateUser(t, s, ids, "bob")
			_, err := ps.SetRelation(t.Context(), a.ID, b.ID, chat.RelationBlock, true, At(0))
			mustNot(t, "SetRelation", err)
			ab, err := ps.Blocked(t.Context(), a.ID, b.ID)
			mustNot(t, "Blocked", err)
			ba, err := ps.Blocked(t.Context(), b.ID, a.ID)
			mustNot(t, "Blocked", err)
			if !ab || ba {
				t.Errorf("Blocked(a,b) = %v, Blocked(b,a) = %v; want true, false", ab, ba)
			}
		}},
		{"marking an unknown or deleted user is not found", func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs) {
			a := MustCreateUser(t, s, ids, "alice")
			gone := MustCreateUser(t, s, ids, "gone")
			_, err := ps.DeleteAccount(t.Context(), gone.ID, "x", At(0))
			mustNot(t, "DeleteAccount", err)
			_, err = ps.SetRelation(t.Context(), a.ID, 999, chat.RelationBlock, true, At(0))
			wantCode(t, err, chat.CodeNotFound)
			_, err = ps.SetRelation(t.Context(), a.ID, gone.ID, chat.RelationContact, true, At(0))
			wantCode(t, err, chat.CodeNotFound)
		}},
	}}
}

func directPeerTests() peopleMethod {
	return peopleMethod{"GetDirectPeer", []peopleCase{
		{"direct conversation names the peer and whether they block the sender", func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs) {
			a := MustCreateUser(t, s, ids, "alice")
			b := MustCreateUser(t, s, ids, "bob")
			c := chat.Conversation{ID: chat.ConversationID(ids.NextID()), Kind: chat.KindDirect, CreatedBy: a.ID, CreatedAt: At(0)}
			c, _, err := s.CreateConversation(t.Context(), c, []chat.Member{{User: a.ID, Role: chat.RoleOwner, JoinedAt: At(0)}, {User: b.ID, Role: chat.RoleOwner, JoinedAt: At(0)}})
			mustNot(t, "CreateConversation", err)
			_, err = ps.SetRelation(t.Context(), b.ID, a.ID, chat.RelationBlock, true, At(0))
			mustNot(t, "SetRelation", err)
			got, err := ps.GetDirectPeer(t.Context(), c.ID, a.ID)
			mustNot(t, "GetDirectPeer", err)
			wantEqual(t, "as seen by alice", chat.DirectPeer{Direct: true, Peer: b.ID, Blocked: true}, got)
			got, err = ps.GetDirectPeer(t.Context(), c.ID, b.ID)
			mustNot(t, "GetDirectPeer", err)
			wantEqual(t, "as seen by bob", chat.DirectPeer{Direct: true, Peer: a.ID}, got)
			_, err = s.RemoveMember(t.Context(), c.ID, b.ID)
			mustNot(t, "RemoveMember", err)
			got, err = ps.GetDirectPeer(t.Context(), c.ID, a.ID)
			mustNot(t, "GetDirectPeer", err)
			wantEqual(t, "after bob left", chat.DirectPeer{Direct: true}, got)
		}},
		{"group is not direct; unknown conversation is not found", func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs) {
			a := MustCreateUser(t, s, ids, "alice")
			b := MustCreateUser(t, s, ids, "bob")
			g := MustCreateGroup(t, s, ids, a.ID, b.ID)
			_, err := ps.SetRelation(t.Context(), b.ID, a.ID, chat.RelationBlock, true, At(0))
			mustNot(t, "SetRelation", err)
			got, err := ps.GetDirectPeer(t.Context(), g.ID, a.ID)
			mustNot(t, "GetDirectPeer", err)
			wantEqual(t, "group", chat.DirectPeer{}, got)
			_, err = ps.GetDirectPeer(t.Context(), 999, a.ID)
			wantCode(t, err, chat.CodeNotFound)
		}},
	}}
}

func sentTests() peopleMethod {
	return peopleMethod{"SentMessages", []peopleCase{
		{"lists the sender's messages by conversation and seq, paged", func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs) {
			a := MustCreateUser(t, s, ids, "alice")
			b := MustCreateUser(t, s, ids, "bob")
			g1 := MustCreateGroup(t, s, ids, a.ID, b.ID)
			g2 := MustCreateGroup(t, s, ids, b.ID, a.ID)
			m1 := MustAppend(t, s, ids, g2.ID, a.ID, "one", At(time.Minute))
			MustAppend(t, s, ids, g1.ID, b.ID, "not mine", At(time.Minute))
			m2 := MustAppend(t, s, ids, g1.ID, a.ID, "two", At(time.Minute))
			m3 := MustAppend(t, s, ids, g1.ID, a.ID, "three", At(time.Minute))
			gone := MustAppend(t, s, ids, g1.ID, a.ID, "deleted", At(time.Minute))
			_, err := s.DeleteMessage(t.Context(), g1.ID, gone.ID, At(time.Hour))
			mustNot(t, "DeleteMessage", err)
			var got []chat.MessageID
			var cur chat.SentCursor
			for range 5 {
				page, err := ps.ListSentMessages(t.Context(), a.ID, cur, 2)
				mustNot(t, "ListSentMessages", err)
				if len(page) == 0 {
					break
				}
				for _, m := range page {
					got = append(got, m.ID)
				}
				last := page[len(page)-1]
				cur = chat.SentCursor{Conv: last.Conv, Seq: last.Seq}
			}
			wantEqual(t, "messages", []chat.MessageID{m2.ID, m3.ID, m1.ID}, got) // g1 < g2: ids are increasing
		}},
		{"TombstoneSent erases the sender's messages with new positions", func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs) {
			a := MustCreateUser(t, s, ids, "alice")
			b := MustCreateUser(t, s, ids, "bob")
			g := MustCreateGroup(t, s, ids, a.ID, b.ID)
			mine1 := MustAppend(t, s, ids, g.ID, a.ID, "one @bob", At(time.Minute))
			theirs := MustAppend(t, s, ids, g.ID, b.ID, "two", At(time.Minute))
			mine2 := MustAppend(t, s, ids, g.ID, a.ID, "three", At(time.Minute))
			_, err := s.SetReaction(t.Context(), g.ID, mine1.ID, b.ID, "👍", true)
			mustNot(t, "SetReaction", err)
			before, err := s.Position(t.Context())
			mustNot(t, "Position", err)
			page, err := ps.TombstoneSent(t.Context(), a.ID, At(time.Hour), 1)
			mustNot(t, "TombstoneSent", err)
			rest, err := ps.TombstoneSent(t.Context(), a.ID, At(time.Hour), 10)
			mustNot(t, "TombstoneSent", err)
			none, err := ps.TombstoneSent(t.Context(), a.ID, At(time.Hour), 10)
			mustNot(t, "TombstoneSent", err)
			if len(page) != 1 || len(rest) != 1 || len(none) != 0 {
				t.Fatalf("pages of %d, %d and %d tombstones, want 1, 1, 0", len(page), len(rest), len(none))
			}
			for i, m := range append(page, rest...) {
				stored, err := s.GetMessage(t.Context(), g.ID, m.ID)
				mustNot(t, "GetMessage", err)
				if stored.Text != "" || len(stored.Reactions) != 0 || len(stored.Mentions) != 0 || !stored.DeletedAt.Equal(At(time.Hour)) {
					t.Errorf("stored tombstone %d = %+v", i, stored)
				}
				if stored.Pos != m.Pos || m.Pos != before+int64(i)+1 {
					t.Errorf("tombstone %d: pos %d (stored %d), want %d", i, m.Pos, stored.Pos, before+int64(i)+1)
				}
			}
			if page[0].ID != mine1.ID || rest[0].ID != mine2.ID || page[0].Seq != mine1.Seq {
				t.Errorf("tombstoned %v then %v, want %v then %v", page[0].ID, rest[0].ID, mine1.ID, mine2.ID)
			}
			kept, err := s.GetMessage(t.Context(), g.ID, theirs.ID)
			mustNot(t, "GetMessage", err)
			if kept.Text != "two" || !kept.DeletedAt.IsZero() {
				t.Errorf("another sender's message changed: %+v", kept)
			}
		}},
	}}
}

func deleteAccountTests() peopleMethod {
	return peopleMethod{"DeleteAccount", []peopleCase{
		{"revokes sessions, erases the profile, frees the username", func(t *testing.T, s chat.Store, ps chat.PeopleStore, ids *IDs) {
			a := MustCreateUser(t, s, ids, "alice")
			b := MustCreateUser(t, s, ids, "bob")
			c := MustCreateUser(t, s, ids, "carol")
			var live []chat.SessionID
			for i := range 2 {
				sess := chat.Session{ID: chat.SessionID(ids.NextID()), User: a.ID, CreatedAt: At(0), LastUsedAt: At(0), ExpiresAt: At(time.Hour)}
				mustNot(t, "CreateSession", s.CreateSession(t.Context(), sess, "h"+sess.ID.String()))
				live = append(live, sess.ID)
				if i == 0 {
					mustNot(t, "RevokeSession", s.RevokeSession(t.Context(), a.ID, sess.ID, At(time.Second)))
				}
			}
			wearTestAvatar(t, ps, a.ID, "att")
			_, err := ps.UpdateProfile(t.Context(), a.ID, chat.ProfileChange{DisplayName: ptr("Alice"), StatusText: ptr("hi"), Avatar: ptr("att")}, At(time.Minute))
			mustNot(t, "UpdateProfile", err)
			_, err = ps.SetRelation(t.Context(), a.ID, b.ID, chat.RelationContact, true, At(0))
			mustNot(t, "SetRelation", err)
			for _, m := range []struct {
				owner, other chat.UserID
				rel          chat.Relation
			}{
				{b.ID, a.ID, chat.RelationBlock},
				{c.ID, a.ID, chat.RelationContact},
				{c.ID, a.ID, chat.RelationBlock},
				{c.ID, b.ID, chat.RelationContact}, // not of alice: stays
				{a.ID, c.ID, chat.RelationBlock},
			} {
				_, err = ps.SetRelation(t.Context(), m.owner, m.other, m.rel, true, At(0))
				mustNot(t, "SetRelation", err)
			}

			done, err := ps.DeleteAccount(t.Context(), a.ID, "replaced", At(time.Hour))
			mustNot(t, "DeleteAccount", err)
			wantEqual(t, "revoked sessions", []chat.SessionID{live[1]}, done.Revoked)
			// Only others' marks of alice are reported: their owners' devices
			// must drop them; alice's own marks concern nobody now.
			wantEqual(t, "removed marks of others", []chat.Mark{{Owner: b.ID, Rel: chat.RelationBlock}, {Owner: c.ID, Rel: chat.RelationBlock}, {Owner: c.ID, Rel: chat.RelationContact}}, done.Unmarked,
				cmpopts.SortSlices(func(x, y chat.Mark) bool { return x.Owner < y.Owner || x.Owner == y.Owner && x.Rel < y.Rel }))
			sess, err := s.GetSession(t.Context(), live[1])
			mustNot(t, "GetSession", err)
			if sess.RevokedAt.IsZero() {
				t.Error("the live session was not revoked")
			}
			p, err := ps.GetProfile(t.Context(), a.ID)
			mustNot(t, "GetProfile", err)
			wantEqual(t, "profile", chat.Profile{User: a.ID, CreatedAt: At(0), UpdatedAt: At(time.Hour), DeletedAt: At(time.Hour)}, p)
			_, _, err = s.GetUserByUsername(t.Context(), "alice")
			wantCode(t, err, chat.CodeNotFound)
			MustCreateUser(t, s, ids, "alice") // the name is free again
			_, hash, err := s.GetUserByUsername(t.Context(), chat.DeletedUsername(a.ID))
			mustNot(t, "GetUserByUsername(deleted)", err)
			if hash != "replaced" {
				t.Errorf("password hash = %q, want the replacement", hash)
			}
			for owner, want := range map[chat.UserID]int{a.ID: 0, b.ID: 0, c.ID: 1} {
				n, err := ps.CountRelations(t.Context(), owner, chat.RelationContact)
				mustNot(t, "CountRelations", err)
				m, err := ps.CountRelations(t.Context(), owner, chat.RelationBlock)
				mustNot(t, "CountRelations", err)
				if n+m != want {
					t.Errorf("user %v keeps %d marks, want %d", owner, n+m, want)
				}
			}
			_, err = ps.UpdateProfile(t.Context(), a.ID, chat.ProfileChange{StatusText: ptr("back")}, At(2*time.Hour))
			wantCode(t, err, chat.CodeNotFound)
			again, err := ps.DeleteAccount(t.Context(), a.ID, "other", At(2*time.Hour))
			mustNot(t, "DeleteAccount again", err)
			wantEqual(t, "deleting again", chat.DeletedAccount{}, again)
		}},
		{"unknown user is not found", func(t *testing.T, _ chat.Store, ps chat.PeopleStore, _ *IDs) {
			_, err := ps.DeleteAccount(t.Context(), 404, "x", At(0))
			wantCode(t, err, chat.CodeNotFound)
		}},
	}}
}

// wearTestAvatar stores an avatar with id for user (through the store's
// AvatarStore, which also makes it the profile's avatar).
func wearTestAvatar(t *testing.T, ps chat.PeopleStore, user chat.UserID, id string) {
	t.Helper()
	av, ok := ps.(chat.AvatarStore)
	if !ok {
		t.Skip("the store keeps no avatars")
	}
	_, err := av.PutAvatar(t.Context(), chat.Avatar{ID: id, User: user, ContentType: "image/png", Size: 1, SHA256: "ab", Side: 512,
		ContentKey: "avatar/" + id + "/image", ThumbnailKey: "avatar/" + id + "/thumbnail", ThumbnailSize: 1,
		ThumbnailSHA256: "cd", CreatedAt: At(0)})
	mustNot(t, "PutAvatar", err)
}
