package chattest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// TestAvatarStore runs the chat.AvatarStore and chat.UserAttachments
// conformance suite. open must return a fresh, empty store that also
// implements chat.AttachmentStore, chat.AvatarStore, chat.UserAttachments
// and chat.PeopleStore and close it when t ends; it is called once per
// subtest, from parallel subtests.
func TestAvatarStore(t *testing.T, open func(t testing.TB) chat.Store) {
	type stores struct {
		attachmentFixture
		av     chat.AvatarStore
		ua     chat.UserAttachments
		people chat.PeopleStore
	}
	avatar := func(user chat.UserID, id string) chat.Avatar {
		return chat.Avatar{ID: id, User: user, ContentType: "image/png", Size: 1234, SHA256: "ab" + id, Side: 512,
			ContentKey: "avatar/" + id + "/image", ThumbnailKey: "avatar/" + id + "/thumbnail", ThumbnailSize: 99,
			ThumbnailSHA256: "cd" + id, CreatedAt: At(time.Minute)}
	}
	// wantProfile checks that the stored profile of user is want.
	wantProfile := func(t *testing.T, people chat.PeopleStore, user chat.UserID, want chat.Profile) {
		t.Helper()
		got, err := people.GetProfile(t.Context(), user)
		mustNot(t, "GetProfile", err)
		wantEqual(t, "stored profile", want, got)
	}
	cases := []struct {
		name string
		test func(t *testing.T, f stores)
	}{
		{"an avatar is put, read, replaced and deleted, and the profile wears it meanwhile", func(t *testing.T, f stores) {
			ctx := t.Context()
			alice, _, _ := f.group(t)
			_, err := f.av.GetAvatar(ctx, alice.ID)
			wantCode(t, err, chat.CodeNotFound)
			first := avatar(alice.ID, "first")
			ch, err := f.av.PutAvatar(ctx, first)
			mustNot(t, "PutAvatar", err)
			if ch.Old != nil || !ch.ProfileChanged || ch.Profile.Avatar != "first" || !ch.Profile.UpdatedAt.Equal(first.CreatedAt) {
				t.Fatalf("first put: %+v, want no old avatar and a profile wearing first, updated at %v", ch, first.CreatedAt)
			}
			wantProfile(t, f.people, alice.ID, ch.Profile)
			got, err := f.av.GetAvatar(ctx, alice.ID)
			mustNot(t, "GetAvatar", err)
			wantEqual(t, "avatar", first, got)
			second := avatar(alice.ID, "second")
			second.CreatedAt = At(2 * time.Minute)
			ch, err = f.av.PutAvatar(ctx, second)
			mustNot(t, "PutAvatar(second)", err)
			if ch.Old == nil || ch.Profile.Avatar != "second" {
				t.Fatalf("second put: %+v, want first replaced and a profile wearing second", ch)
			}
			wantEqual(t, "replaced avatar", first, *ch.Old)
			wantProfile(t, f.people, alice.ID, ch.Profile)
			got, _ = f.av.GetAvatar(ctx, alice.ID)
			wantEqual(t, "avatar after the replacement", second, got)
			ch, err = f.av.DeleteAvatar(ctx, alice.ID, At(3*time.Minute))
			mustNot(t, "DeleteAvatar", err)
			if ch.Old == nil || !ch.ProfileChanged || ch.Profile.Avatar != "" || !ch.Profile.UpdatedAt.Equal(At(3*time.Minute)) {
				t.Fatalf("delete: %+v, want second deleted and taken off the profile", ch)
			}
			wantEqual(t, "deleted avatar", second, *ch.Old)
			wantProfile(t, f.people, alice.ID, ch.Profile)
			_, err = f.av.GetAvatar(ctx, alice.ID)
			wantCode(t, err, chat.CodeNotFound)
			ch, err = f.av.DeleteAvatar(ctx, alice.ID, At(4*time.Minute))
			mustNot(t, "DeleteAvatar(none)", err)
			if ch.Old != nil || ch.ProfileChanged || ch.Profile.Avatar != "" || !ch.Profile.UpdatedAt.Equal(At(3*time.Minute)) {
				t.Fatalf("deleting when there is none: %+v, want nothing changed", ch)
			}
		}},
		{"deleting an avatar the profile does not wear leaves the profile alone", func(t *testing.T, f stores) {
			ctx := t.Context()
			alice, _, _ := f.group(t)
			_, err := f.av.PutAvatar(ctx, avatar(alice.ID, "kept"))
			mustNot(t, "PutAvatar", err)
			none := ""
			off, err := f.people.UpdateProfile(ctx, alice.ID, chat.ProfileChange{Avatar: &none}, At(2*time.Minute))
			mustNot(t, "UpdateProfile", err)
			ch, err := f.av.DeleteAvatar(ctx, alice.ID, At(3*time.Minute))
			mustNot(t, "DeleteAvatar", err)
			if ch.Old == nil || ch.Old.ID != "kept" || ch.ProfileChanged {
				t.Fatalf("delete: %+v, want kept deleted and the profile unchanged", ch)
			}
			wantEqual(t, "profile", off, ch.Profile)
		}},
		{"an avatar needs a known, live user and an id of its own", func(t *testing.T, f stores) {
			ctx := t.Context()
			alice, bob, _ := f.group(t)
			_, err := f.av.PutAvatar(ctx, avatar(999_999_999, "nobody's"))
			wantCode(t, err, chat.CodeNotFound)
			_, err = f.av.DeleteAvatar(ctx, 999_999_999, At(time.Minute))
			wantCode(t, err, chat.CodeNotFound)
			_, err = f.av.PutAvatar(ctx, avatar(alice.ID, "taken"))
			mustNot(t, "PutAvatar", err)
			_, err = f.av.PutAvatar(ctx, avatar(bob.ID, "taken"))
			wantCode(t, err, chat.CodeConflict)
			if _, err := f.av.GetAvatar(ctx, bob.ID); !chat.IsCode(err, chat.CodeNotFound) {
				t.Fatalf("a refused avatar was stored: %v", err)
			}
			if p, _ := f.people.GetProfile(ctx, bob.ID); p.Avatar != "" {
				t.Fatalf("a refused avatar is worn: %+v", p)
			}
			// A deleted account gets no avatar, and loses the one it had.
			_, err = f.av.PutAvatar(ctx, avatar(bob.ID, "bob's"))
			mustNot(t, "PutAvatar(bob)", err)
			_, err = f.people.DeleteAccount(ctx, bob.ID, "x", At(2*time.Minute))
			mustNot(t, "DeleteAccount", err)
			_, err = f.av.PutAvatar(ctx, avatar(bob.ID, "after"))
			wantCode(t, err, chat.CodeNotFound)
			ch, err := f.av.DeleteAvatar(ctx, bob.ID, At(3*time.Minute))
			mustNot(t, "DeleteAvatar(deleted account)", err)
			if ch.Old == nil || ch.Old.ID != "bob's" || ch.ProfileChanged || !ch.Profile.Deleted() {
				t.Fatalf("deleting a deleted account's avatar: %+v", ch)
			}
		}},
		{"concurrent puts and deletes leave the profile wearing the stored avatar and report every one they remove", func(t *testing.T, f stores) {
			ctx := t.Context()
			alice, _, _ := f.group(t)
			const n = 16
			var mu sync.Mutex
			put, removed := map[string]bool{}, map[string]int{}
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					var ch chat.AvatarChange
					var err error
					if i%4 == 3 {
						ch, err = f.av.DeleteAvatar(ctx, alice.ID, At(time.Duration(i)*time.Second))
					} else {
						id := fmt.Sprintf("a%d", i)
						ch, err = f.av.PutAvatar(ctx, avatar(alice.ID, id))
						mu.Lock()
						put[id] = err == nil
						mu.Unlock()
					}
					if err != nil {
						t.Errorf("operation %d: %v", i, err)
						return
					}
					if ch.Old != nil {
						mu.Lock()
						removed[ch.Old.ID]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			p, err := f.people.GetProfile(ctx, alice.ID)
			mustNot(t, "GetProfile", err)
			stored, err := f.av.GetAvatar(ctx, alice.ID)
			switch {
			case chat.IsCode(err, chat.CodeNotFound):
				if p.Avatar != "" {
					t.Fatalf("the profile wears %q, but no avatar is stored", p.Avatar)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if p.Avatar != stored.ID {
					t.Fatalf("the profile wears %q, but the stored avatar is %q", p.Avatar, stored.ID)
				}
				removed[stored.ID]++ // still there: not lost either
			}
			for id, ok := range put {
				if ok && removed[id] != 1 {
					t.Errorf("avatar %s was reported removed, or is stored, %d times; want once", id, removed[id])
				}
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
			people, ok4 := s.(chat.PeopleStore)
			if !ok1 || !ok2 || !ok3 || !ok4 {
				t.Fatalf("%T does not implement chat.AttachmentStore, chat.AvatarStore, chat.UserAttachments and chat.PeopleStore", s)
			}
			c.test(t, stores{attachmentFixture{s, as, NewIDs()}, av, ua, people})
		})
	}
}
