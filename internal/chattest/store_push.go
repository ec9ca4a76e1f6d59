package chattest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/natter-chat/natter/internal/chat"
)

// PushBackend is a store that keeps push subscriptions too.
type PushBackend interface {
	chat.Store
	chat.PushStore
}

// TestPushStore runs the chat.PushStore conformance suite. open must
// return a fresh, empty store and close it when t ends.
func TestPushStore(t *testing.T, open func(t testing.TB) PushBackend) {
	cases := []struct {
		name string
		test func(t *testing.T, s PushBackend, ids *IDs)
	}{
		{"CreatePushSubscription/stores and lists a subscription", func(t *testing.T, s PushBackend, ids *IDs) {
			u, sess := pushUser(t, s, ids, "ann")
			want := webpushSub(ids, u.ID, sess, "https://push.example/a")
			got, err := s.CreatePushSubscription(t.Context(), want)
			mustNot(t, "CreatePushSubscription", err)
			wantEqual(t, "created", want, got)
			list, err := s.ListPushSubscriptions(t.Context(), u.ID)
			mustNot(t, "ListPushSubscriptions", err)
			wantEqual(t, "listed", []chat.PushSubscription{want}, list)
		}},
		{"CreatePushSubscription/an endpoint subscribed again moves to the new user", func(t *testing.T, s PushBackend, ids *IDs) {
			ann, annSess := pushUser(t, s, ids, "ann")
			bob, bobSess := pushUser(t, s, ids, "bob")
			first, err := s.CreatePushSubscription(t.Context(), webpushSub(ids, ann.ID, annSess, "https://push.example/shared"))
			mustNot(t, "CreatePushSubscription(ann)", err)
			again := webpushSub(ids, bob.ID, bobSess, "https://push.example/shared")
			again.CreatedAt = At(time.Minute)
			got, err := s.CreatePushSubscription(t.Context(), again)
			mustNot(t, "CreatePushSubscription(bob)", err)
			again.ID = first.ID
			wantEqual(t, "moved", again, got)
			annList, err := s.ListPushSubscriptions(t.Context(), ann.ID)
			mustNot(t, "ListPushSubscriptions(ann)", err)
			wantEqual(t, "ann's subscriptions", []chat.PushSubscription(nil), annList)
		}},
		{"HasPushSubscriptions/true only while a subscription exists", func(t *testing.T, s PushBackend, ids *IDs) {
			has := func() bool {
				exists, err := s.HasPushSubscriptions(t.Context())
				mustNot(t, "HasPushSubscriptions", err)
				return exists
			}
			if has() {
				t.Fatal("a fresh store reports subscriptions")
			}
			u, sess := pushUser(t, s, ids, "ann")
			sub, err := s.CreatePushSubscription(t.Context(), webpushSub(ids, u.ID, sess, "https://push.example/h"))
			mustNot(t, "CreatePushSubscription", err)
			if !has() {
				t.Fatal("a store with a subscription reports none")
			}
			mustNot(t, "DeletePushSubscription", s.DeletePushSubscription(t.Context(), u.ID, sub.ID))
			if has() {
				t.Fatal("a store whose only subscription was deleted reports one")
			}
		}},
		{"CreatePushSubscription/unknown session is not_found", func(t *testing.T, s PushBackend, ids *IDs) {
			u, _ := pushUser(t, s, ids, "ann")
			_, err := s.CreatePushSubscription(t.Context(), webpushSub(ids, u.ID, chat.SessionID(999999), "https://push.example/x"))
			wantCode(t, err, chat.CodeNotFound)
		}},
		{"DeletePushSubscription/only the owner deletes it", func(t *testing.T, s PushBackend, ids *IDs) {
			ann, annSess := pushUser(t, s, ids, "ann")
			bob, _ := pushUser(t, s, ids, "bob")
			sub, err := s.CreatePushSubscription(t.Context(), apnsSub(ids, ann.ID, annSess, "aa11"))
			mustNot(t, "CreatePushSubscription", err)
			wantCode(t, s.DeletePushSubscription(t.Context(), bob.ID, sub.ID), chat.CodeNotFound)
			mustNot(t, "DeletePushSubscription", s.DeletePushSubscription(t.Context(), ann.ID, sub.ID))
			wantCode(t, s.DeletePushSubscription(t.Context(), ann.ID, sub.ID), chat.CodeNotFound)
		}},
		{"MarkPushSuccess/records the time", func(t *testing.T, s PushBackend, ids *IDs) {
			u, sess := pushUser(t, s, ids, "ann")
			sub, err := s.CreatePushSubscription(t.Context(), apnsSub(ids, u.ID, sess, "bb22"))
			mustNot(t, "CreatePushSubscription", err)
			mustNot(t, "MarkPushSuccess", s.MarkPushSuccess(t.Context(), sub.ID, At(time.Hour)))
			mustNot(t, "MarkPushSuccess(unknown)", s.MarkPushSuccess(t.Context(), 424242, At(time.Hour)))
			list, err := s.ListPushSubscriptions(t.Context(), u.ID)
			mustNot(t, "ListPushSubscriptions", err)
			if len(list) != 1 || !list[0].LastSuccess.Equal(At(time.Hour)) {
				t.Fatalf("after MarkPushSuccess: %+v", list)
			}
		}},
		{"PushSettings/default then updated", func(t *testing.T, s PushBackend, ids *IDs) {
			u, _ := pushUser(t, s, ids, "ann")
			got, err := s.GetPushSettings(t.Context(), u.ID)
			mustNot(t, "GetPushSettings", err)
			wantEqual(t, "default", chat.PushSettings{}, got)
			mustNot(t, "UpdatePushSettings", s.UpdatePushSettings(t.Context(), u.ID, chat.PushSettings{HideText: true}))
			got, err = s.GetPushSettings(t.Context(), u.ID)
			mustNot(t, "GetPushSettings", err)
			wantEqual(t, "updated", chat.PushSettings{HideText: true}, got)
		}},
		{"NotifyLevel/default all, set, back to all", func(t *testing.T, s PushBackend, ids *IDs) {
			u, _ := pushUser(t, s, ids, "ann")
			c := MustCreateGroup(t, s, ids, u.ID)
			for _, level := range []chat.NotifyLevel{chat.NotifyAll, chat.NotifyMentions, chat.NotifyNone, chat.NotifyAll} {
				mustNot(t, "SetNotifyLevel", s.SetNotifyLevel(t.Context(), c.ID, u.ID, level))
				got, err := s.GetNotifyLevel(t.Context(), c.ID, u.ID)
				mustNot(t, "GetNotifyLevel", err)
				if got != level {
					t.Fatalf("level = %q, want %q", got, level)
				}
			}
		}},
		{"ListNotifyLevels/the member's levels other than all, in the conversations they are in now", func(t *testing.T, s PushBackend, ids *IDs) {
			ann, _ := pushUser(t, s, ids, "ann")
			bob, _ := pushUser(t, s, ids, "bob")
			muted := MustCreateGroup(t, s, ids, bob.ID, ann.ID)
			mentions := MustCreateGroup(t, s, ids, ann.ID, bob.ID)
			reset := MustCreateGroup(t, s, ids, ann.ID)
			left := MustCreateGroup(t, s, ids, bob.ID, ann.ID)
			MustCreateGroup(t, s, ids, ann.ID) // never set: all
			list := func(user chat.UserID) []chat.ConvNotifyLevel {
				t.Helper()
				got, err := s.ListNotifyLevels(t.Context(), user)
				mustNot(t, "ListNotifyLevels", err)
				return got
			}
			wantEqual(t, "levels before any is set", []chat.ConvNotifyLevel(nil), list(ann.ID))
			for _, set := range []struct {
				conv  chat.ConversationID
				user  chat.UserID
				level chat.NotifyLevel
			}{
				{muted.ID, ann.ID, chat.NotifyNone},
				{mentions.ID, ann.ID, chat.NotifyMentions},
				{reset.ID, ann.ID, chat.NotifyMentions},
				{reset.ID, ann.ID, chat.NotifyAll},
				{left.ID, ann.ID, chat.NotifyNone},
				{mentions.ID, bob.ID, chat.NotifyNone},
			} {
				mustNot(t, "SetNotifyLevel", s.SetNotifyLevel(t.Context(), set.conv, set.user, set.level))
			}
			_, err := s.RemoveMember(t.Context(), left.ID, ann.ID)
			mustNot(t, "RemoveMember", err)
			wantEqual(t, "ann's levels", []chat.ConvNotifyLevel{
				{Conv: muted.ID, Level: chat.NotifyNone},
				{Conv: mentions.ID, Level: chat.NotifyMentions},
			}, list(ann.ID))
			wantEqual(t, "bob's levels", []chat.ConvNotifyLevel{{Conv: mentions.ID, Level: chat.NotifyNone}}, list(bob.ID))

			// The level of a conversation left is kept, and listed again on return.
			_, err = s.AddMembers(t.Context(), left.ID, []chat.Member{{User: ann.ID, Role: chat.RoleMember, JoinedAt: At(time.Minute)}})
			mustNot(t, "AddMembers", err)
			wantEqual(t, "ann's levels after she came back", []chat.ConvNotifyLevel{
				{Conv: muted.ID, Level: chat.NotifyNone},
				{Conv: mentions.ID, Level: chat.NotifyMentions},
				{Conv: left.ID, Level: chat.NotifyNone},
			}, list(ann.ID))
		}},
		{"ListPushRecipients/joins levels and settings and skips revoked sessions", func(t *testing.T, s PushBackend, ids *IDs) {
			ann, annSess := pushUser(t, s, ids, "ann")
			bob, bobSess := pushUser(t, s, ids, "bob")
			cat, catSess := pushUser(t, s, ids, "cat")
			dan, _ := pushUser(t, s, ids, "dan") // no subscription
			c := MustCreateGroup(t, s, ids, ann.ID, bob.ID, cat.ID, dan.ID)
			annSub, _ := s.CreatePushSubscription(t.Context(), webpushSub(ids, ann.ID, annSess, "https://push.example/ann"))
			bobSub, _ := s.CreatePushSubscription(t.Context(), apnsSub(ids, bob.ID, bobSess, "cc33"))
			_, err := s.CreatePushSubscription(t.Context(), apnsSub(ids, cat.ID, catSess, "dd44"))
			mustNot(t, "CreatePushSubscription", err)
			mustNot(t, "RevokeSession", s.RevokeSession(t.Context(), cat.ID, catSess, At(time.Minute)))
			mustNot(t, "SetNotifyLevel", s.SetNotifyLevel(t.Context(), c.ID, bob.ID, chat.NotifyMentions))
			mustNot(t, "UpdatePushSettings", s.UpdatePushSettings(t.Context(), ann.ID, chat.PushSettings{HideText: true}))
			got, err := s.ListPushRecipients(t.Context(), c.ID, []chat.UserID{ann.ID, bob.ID, cat.ID, dan.ID}, At(2*time.Minute))
			mustNot(t, "ListPushRecipients", err)
			want := []chat.PushRecipient{
				{User: ann.ID, Level: chat.NotifyAll, Settings: chat.PushSettings{HideText: true}, Subscriptions: []chat.PushSubscription{annSub}},
				{User: bob.ID, Level: chat.NotifyMentions, Subscriptions: []chat.PushSubscription{bobSub}},
			}
			wantEqual(t, "recipients", want, got, cmpopts.SortSlices(func(a, b chat.PushRecipient) bool { return a.User < b.User }))
		}},
		{"GetPushDelivery/reads the subscription, the member's standing and the message as they are now", func(t *testing.T, s PushBackend, ids *IDs) {
			ann, _ := pushUser(t, s, ids, "ann")
			bob, bobSess := pushUser(t, s, ids, "bob")
			c := MustCreateGroup(t, s, ids, ann.ID, bob.ID)
			sub, err := s.CreatePushSubscription(t.Context(), webpushSub(ids, bob.ID, bobSess, "https://push.example/bob"))
			mustNot(t, "CreatePushSubscription", err)
			m := MustAppend(t, s, ids, c.ID, ann.ID, "see you at ten", At(time.Second))
			_, err = s.EditMessage(t.Context(), c.ID, m.ID, "see you at eleven", nil, At(2*time.Second))
			mustNot(t, "EditMessage", err)
			_, err = s.UpdateTitle(t.Context(), c.ID, "renamed")
			mustNot(t, "UpdateTitle", err)
			mustNot(t, "SetNotifyLevel", s.SetNotifyLevel(t.Context(), c.ID, bob.ID, chat.NotifyMentions))
			mustNot(t, "UpdatePushSettings", s.UpdatePushSettings(t.Context(), bob.ID, chat.PushSettings{HideText: true}))
			got, err := s.GetPushDelivery(t.Context(), bob.ID, sub.ID, c.ID, m.ID, At(time.Minute))
			mustNot(t, "GetPushDelivery", err)
			want := chat.PushDelivery{
				Subscription: sub, Settings: chat.PushSettings{HideText: true}, Member: true, Level: chat.NotifyMentions,
				ConvKind: chat.KindGroup, Title: "renamed",
				Message: &chat.Message{ID: m.ID, Conv: c.ID, Seq: m.Seq, Sender: ann.ID, Text: "see you at eleven",
					SentAt: m.SentAt, EditedAt: At(2 * time.Second)},
				SenderName: ann.Username,
			}
			wantEqual(t, "delivery", want, got)
		}},
		{"GetPushDelivery/a deleted message is a tombstone, an unknown one nil", func(t *testing.T, s PushBackend, ids *IDs) {
			ann, _ := pushUser(t, s, ids, "ann")
			bob, bobSess := pushUser(t, s, ids, "bob")
			c := MustCreateGroup(t, s, ids, ann.ID, bob.ID)
			elsewhere := MustCreateGroup(t, s, ids, ann.ID, bob.ID)
			sub, err := s.CreatePushSubscription(t.Context(), apnsSub(ids, bob.ID, bobSess, "ee55"))
			mustNot(t, "CreatePushSubscription", err)
			m := MustAppend(t, s, ids, c.ID, ann.ID, "oops, wrong chat", At(time.Second))
			other := MustAppend(t, s, ids, elsewhere.ID, ann.ID, "in the other group", At(time.Second))
			_, err = s.DeleteMessage(t.Context(), c.ID, m.ID, At(2*time.Second))
			mustNot(t, "DeleteMessage", err)
			got, err := s.GetPushDelivery(t.Context(), bob.ID, sub.ID, c.ID, m.ID, At(time.Minute))
			mustNot(t, "GetPushDelivery", err)
			if got.Message == nil || got.Message.Text != "" || !got.Message.DeletedAt.Equal(At(2*time.Second)) {
				t.Fatalf("a deleted message reads as %+v; want a tombstone without text", got.Message)
			}
			for _, id := range []chat.MessageID{other.ID, chat.MessageID(ids.NextID())} {
				got, err = s.GetPushDelivery(t.Context(), bob.ID, sub.ID, c.ID, id, At(time.Minute))
				mustNot(t, "GetPushDelivery", err)
				if got.Message != nil || !got.Member || got.Title != "group" {
					t.Fatalf("message %d, not of the conversation, reads as %+v (member %v, title %q); want nil", id, got.Message, got.Member, got.Title)
				}
			}
		}},
		{"GetPushDelivery/a removed member is no longer a member", func(t *testing.T, s PushBackend, ids *IDs) {
			ann, _ := pushUser(t, s, ids, "ann")
			bob, bobSess := pushUser(t, s, ids, "bob")
			c := MustCreateGroup(t, s, ids, ann.ID, bob.ID)
			sub, err := s.CreatePushSubscription(t.Context(), apnsSub(ids, bob.ID, bobSess, "ff66"))
			mustNot(t, "CreatePushSubscription", err)
			m := MustAppend(t, s, ids, c.ID, ann.ID, "bye bob", At(time.Second))
			_, err = s.RemoveMember(t.Context(), c.ID, bob.ID)
			mustNot(t, "RemoveMember", err)
			got, err := s.GetPushDelivery(t.Context(), bob.ID, sub.ID, c.ID, m.ID, At(time.Minute))
			mustNot(t, "GetPushDelivery", err)
			if got.Member {
				t.Fatalf("a removed member reads as a member: %+v", got)
			}
		}},
		{"GetPushDelivery/not_found once the subscription is deleted, moved or its session ended", func(t *testing.T, s PushBackend, ids *IDs) {
			ann, annSess := pushUser(t, s, ids, "ann")
			bob, bobSess := pushUser(t, s, ids, "bob")
			cat, catSess := pushUser(t, s, ids, "cat")
			c := MustCreateGroup(t, s, ids, ann.ID, bob.ID, cat.ID)
			m := MustAppend(t, s, ids, c.ID, ann.ID, "hello", At(time.Second))
			get := func(user chat.UserID, id chat.PushSubscriptionID) error {
				_, err := s.GetPushDelivery(t.Context(), user, id, c.ID, m.ID, At(time.Minute))
				return err
			}
			deleted, err := s.CreatePushSubscription(t.Context(), apnsSub(ids, ann.ID, annSess, "a1a1"))
			mustNot(t, "CreatePushSubscription", err)
			mustNot(t, "DeletePushSubscription", s.DeletePushSubscription(t.Context(), ann.ID, deleted.ID))
			wantCode(t, get(ann.ID, deleted.ID), chat.CodeNotFound)

			moved, err := s.CreatePushSubscription(t.Context(), webpushSub(ids, bob.ID, bobSess, "https://push.example/shared"))
			mustNot(t, "CreatePushSubscription(bob)", err)
			wantCode(t, get(ann.ID, moved.ID), chat.CodeNotFound) // another user's
			mustNot(t, "GetPushDelivery(bob)", get(bob.ID, moved.ID))
			_, err = s.CreatePushSubscription(t.Context(), webpushSub(ids, cat.ID, catSess, "https://push.example/shared"))
			mustNot(t, "CreatePushSubscription(cat)", err)
			wantCode(t, get(bob.ID, moved.ID), chat.CodeNotFound)
			mustNot(t, "GetPushDelivery(cat)", get(cat.ID, moved.ID))

			revoked, err := s.CreatePushSubscription(t.Context(), apnsSub(ids, ann.ID, annSess, "b2b2"))
			mustNot(t, "CreatePushSubscription", err)
			mustNot(t, "GetPushDelivery(live)", get(ann.ID, revoked.ID))
			mustNot(t, "RevokeSession", s.RevokeSession(t.Context(), ann.ID, annSess, At(30*time.Second)))
			wantCode(t, get(ann.ID, revoked.ID), chat.CodeNotFound)
		}},
		{"VAPIDKey/the first candidate is kept", func(t *testing.T, s PushBackend, _ *IDs) {
			first, err := s.VAPIDKey(t.Context(), []byte("first"))
			mustNot(t, "VAPIDKey", err)
			second, err := s.VAPIDKey(t.Context(), []byte("second"))
			mustNot(t, "VAPIDKey", err)
			if string(first) != "first" || string(second) != "first" {
				t.Fatalf("VAPIDKey gave %q then %q, want first twice", first, second)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, open(t), NewIDs())
		})
	}
}

// pushUser creates a user with one live session.
func pushUser(t testing.TB, s chat.Store, ids *IDs, name string) (chat.User, chat.SessionID) {
	t.Helper()
	u := MustCreateUser(t, s, ids, name)
	sess := chat.Session{ID: chat.SessionID(ids.NextID()), User: u.ID, CreatedAt: At(0), LastUsedAt: At(0), ExpiresAt: At(24 * time.Hour)}
	if err := s.CreateSession(t.Context(), sess, "refresh:"+name); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return u, sess.ID
}

func webpushSub(ids *IDs, user chat.UserID, sess chat.SessionID, endpoint string) chat.PushSubscription {
	p256dh := make([]byte, 65)
	p256dh[0] = 4
	return chat.PushSubscription{
		ID: chat.PushSubscriptionID(ids.NextID()), User: user, Session: sess, Kind: chat.PushWebPush, Endpoint: endpoint,
		P256dh: p256dh, Auth: []byte("0123456789abcdef"), CreatedAt: At(0),
	}
}

func apnsSub(ids *IDs, user chat.UserID, sess chat.SessionID, token string) chat.PushSubscription {
	return chat.PushSubscription{ID: chat.PushSubscriptionID(ids.NextID()), User: user, Session: sess, Kind: chat.PushAPNs, Endpoint: token, CreatedAt: At(0)}
}
