package chattest

import (
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// TestAvatarStore runs the chat.AvatarStore and chat.UserAttachments
// conformance suite. open must return a fresh, empty store that also
// implements chat.AttachmentStore, chat.AvatarStore and
// chat.UserAttachments and close it when t ends; it is called once per
// subtest, from parallel subtests.
func TestAvatarStore(t *testing.T, open func(t testing.TB) chat.Store) {
	type stores struct {
		attachmentFixture
		av chat.AvatarStore
		ua chat.UserAttachments
	}
	avatar := func(user chat.UserID, id string) chat.Avatar {
		return chat.Avatar{ID: id, User: user, ContentType: "image/png", Size: 1234, SHA256: "ab" + id, Side: 512,
			ContentKey: "avatar/" + id + "/image", ThumbnailKey: "avatar/" + id + "/thumbnail", ThumbnailSize: 99,
			ThumbnailSHA256: "cd" + id, CreatedAt: At(time.Minute)}
	}
	cases := []struct {
		name string
		test func(t *testing.T, f stores)
	}{
		{"an avatar is put, read, replaced and deleted", func(t *testing.T, f stores) {
			ctx := t.Context()
			alice, _, _ := f.group(t)
			_, err := f.av.GetAvatar(ctx, alice.ID)
			wantCode(t, err, chat.CodeNotFound)
			first := avatar(alice.ID, "first")
			_, replaced, err := f.av.PutAvatar(ctx, first)
			mustNot(t, "PutAvatar", err)
			if replaced {
				t.Fatal("the first avatar replaced something")
			}
			got, err := f.av.GetAvatar(ctx, alice.ID)
			mustNot(t, "GetAvatar", err)
			wantEqual(t, "avatar", first, got)
			second := avatar(alice.ID, "second")
			old, replaced, err := f.av.PutAvatar(ctx, second)
			mustNot(t, "PutAvatar(second)", err)
			if !replaced {
				t.Fatal("the second avatar replaced nothing")
			}
			wantEqual(t, "replaced avatar", first, old)
			got, _ = f.av.GetAvatar(ctx, alice.ID)
			wantEqual(t, "avatar after the replacement", second, got)
			gone, err := f.av.DeleteAvatar(ctx, alice.ID)
			mustNot(t, "DeleteAvatar", err)
			wantEqual(t, "deleted avatar", second, gone)
			_, err = f.av.GetAvatar(ctx, alice.ID)
			wantCode(t, err, chat.CodeNotFound)
			_, err = f.av.DeleteAvatar(ctx, alice.ID)
			wantCode(t, err, chat.CodeNotFound)
		}},
		{"an avatar needs a known user and an id of its own", func(t *testing.T, f stores) {
			ctx := t.Context()
			alice, bob, _ := f.group(t)
			_, _, err := f.av.PutAvatar(ctx, avatar(999_999_999, "nobody's"))
			wantCode(t, err, chat.CodeNotFound)
			_, _, err = f.av.PutAvatar(ctx, avatar(alice.ID, "taken"))
			mustNot(t, "PutAvatar", err)
			_, _, err = f.av.PutAvatar(ctx, avatar(bob.ID, "taken"))
			wantCode(t, err, chat.CodeConflict)
			if _, err := f.av.GetAvatar(ctx, bob.ID); !chat.IsCode(err, chat.CodeNotFound) {
				t.Fatalf("a refused avatar was stored: %v", err)
			}
		}},
		{"a user's attachments are listed in id order, without deleted ones or others'", func(t *testing.T, f stores) {
			ctx := t.Context()
			alice, bob, conv := f.group(t)
			unsent := f.ready(t, conv.ID, alice.ID, At(time.Second))
			sent := f.ready(t, conv.ID, alice.ID, At(time.Second))
			f.upload(t, conv.ID, alice.ID, At(time.Second)) // still uploading
			onDeleted := f.ready(t, conv.ID, alice.ID, At(time.Second))
			f.ready(t, conv.ID, bob.ID, At(time.Second))
			m := MustAppend(t, f.s, f.ids, conv.ID, alice.ID, "kept", At(2*time.Second))
			_, err := f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "", m.ID, []chat.AttachmentID{sent.ID})
			mustNot(t, "ClaimAttachments", err)
			d := MustAppend(t, f.s, f.ids, conv.ID, alice.ID, "deleted", At(3*time.Second))
			_, err = f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "", d.ID, []chat.AttachmentID{onDeleted.ID})
			mustNot(t, "ClaimAttachments", err)
			_, err = f.s.DeleteMessage(ctx, conv.ID, d.ID, At(4*time.Second)) // not released (yet)
			mustNot(t, "DeleteMessage", err)

			want := []chat.AttachmentID{unsent.ID, sent.ID}
			slices.Sort(want)
			got, err := f.ua.ListUserAttachments(ctx, alice.ID, "", 10)
			mustNot(t, "ListUserAttachments", err)
			wantEqual(t, "alice's attachments", want, attachmentIDs(got))
			first, err := f.ua.ListUserAttachments(ctx, alice.ID, "", 1)
			mustNot(t, "ListUserAttachments(limit 1)", err)
			rest, err := f.ua.ListUserAttachments(ctx, alice.ID, first[0].ID, 10)
			mustNot(t, "ListUserAttachments(after)", err)
			wantEqual(t, "pages", want, append(attachmentIDs(first), attachmentIDs(rest)...))
			if got[slices.Index(attachmentIDs(got), sent.ID)].Message != m.ID {
				t.Fatal("a listed attachment lacks its message")
			}
		}},
		{"releasing a user's attachments spares those a live message carries", func(t *testing.T, f stores) {
			ctx := t.Context()
			alice, bob, conv := f.group(t)
			unsent := f.ready(t, conv.ID, alice.ID, At(time.Second))
			uploading := f.upload(t, conv.ID, alice.ID, At(time.Second))
			carried := f.ready(t, conv.ID, alice.ID, At(time.Second))
			tombstoned := f.ready(t, conv.ID, alice.ID, At(time.Second))
			bobs := f.ready(t, conv.ID, bob.ID, At(time.Second))
			m := MustAppend(t, f.s, f.ids, conv.ID, alice.ID, "kept", At(2*time.Second))
			_, err := f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "", m.ID, []chat.AttachmentID{carried.ID})
			mustNot(t, "ClaimAttachments", err)
			d := MustAppend(t, f.s, f.ids, conv.ID, alice.ID, "deleted", At(3*time.Second))
			_, err = f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "", d.ID, []chat.AttachmentID{tombstoned.ID})
			mustNot(t, "ClaimAttachments", err)
			_, err = f.s.DeleteMessage(ctx, conv.ID, d.ID, At(4*time.Second))
			mustNot(t, "DeleteMessage", err)

			n, err := f.ua.ReleaseUserAttachments(ctx, alice.ID)
			mustNot(t, "ReleaseUserAttachments", err)
			if n != 3 {
				t.Fatalf("released %d, want 3 (unsent, uploading, tombstoned)", n)
			}
			for id, want := range map[chat.AttachmentID]chat.AttachmentState{
				unsent.ID: chat.AttachmentDeleted, uploading.ID: chat.AttachmentDeleted, tombstoned.ID: chat.AttachmentDeleted,
				carried.ID: chat.AttachmentReady, bobs.ID: chat.AttachmentReady,
			} {
				if a, err := f.as.GetAttachment(ctx, id); err != nil || a.State != want {
					t.Errorf("%s: %q, %v; want %q", id, a.State, err, want)
				}
			}
			if n, err := f.ua.ReleaseUserAttachments(ctx, alice.ID); err != nil || n != 0 {
				t.Fatalf("releasing again: %d, %v", n, err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			as, ok1 := s.(chat.AttachmentStore)
			av, ok2 := s.(chat.AvatarStore)
			ua, ok3 := s.(chat.UserAttachments)
			if !ok1 || !ok2 || !ok3 {
				t.Fatalf("%T does not implement chat.AttachmentStore, chat.AvatarStore and chat.UserAttachments", s)
			}
			c.test(t, stores{attachmentFixture{s, as, NewIDs()}, av, ua})
		})
	}
}
