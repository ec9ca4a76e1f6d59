package chattest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// TestAttachmentStore runs the chat.AttachmentStore conformance suite.
// open must return a fresh, empty store that also implements
// chat.AttachmentStore and close it when t ends; it is called once per
// subtest, from parallel subtests.
func TestAttachmentStore(t *testing.T, open func(t testing.TB) chat.Store) {
	for _, c := range attachmentCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			as, ok := s.(chat.AttachmentStore)
			if !ok {
				t.Fatalf("%T does not implement chat.AttachmentStore", s)
			}
			c.test(t, attachmentFixture{s, as, NewIDs()})
		})
	}
}

type attachmentFixture struct {
	s   chat.Store
	as  chat.AttachmentStore
	ids *IDs
}

type attachmentCase struct {
	name string
	test func(t *testing.T, f attachmentFixture)
}

// upload stores an attachment of uploader for conv created at created.
func (f attachmentFixture) upload(t testing.TB, conv chat.ConversationID, uploader chat.UserID, created time.Time) chat.Attachment {
	t.Helper()
	a := chat.Attachment{ID: chat.AttachmentID(fmt.Sprintf("att%d", f.ids.NextID())), Conv: conv, Uploader: uploader,
		Name: "photo.jpg", Declared: "image/jpeg", Size: 30, CreatedAt: created}
	mustNot(t, "CreateAttachment", f.as.CreateAttachment(t.Context(), a))
	return a
}

// ready stores an attachment and finishes it as a ready JPEG.
func (f attachmentFixture) ready(t testing.TB, conv chat.ConversationID, uploader chat.UserID, created time.Time) chat.Attachment {
	t.Helper()
	a := f.upload(t, conv, uploader, created)
	a.State, a.ContentType, a.Size, a.SHA256, a.Width, a.Height, a.ContentKey = chat.AttachmentReady, "image/jpeg", 25, "ab12", 64, 48, "att/"+string(a.ID)+"/content"
	got, err := f.as.FinishAttachment(t.Context(), a)
	mustNot(t, "FinishAttachment", err)
	return got
}

// group makes two users and a group of both.
func (f attachmentFixture) group(t testing.TB) (alice, bob chat.User, conv chat.Conversation) {
	t.Helper()
	alice, bob = MustCreateUser(t, f.s, f.ids, "alice"), MustCreateUser(t, f.s, f.ids, "bob")
	return alice, bob, MustCreateGroup(t, f.s, f.ids, alice.ID, bob.ID)
}

func attachmentIDs(as []chat.Attachment) []chat.AttachmentID {
	out := []chat.AttachmentID{}
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

func attachmentCases() []attachmentCase {
	return []attachmentCase{
		{"created attachment reads back uploading", func(t *testing.T, f attachmentFixture) {
			alice, _, conv := f.group(t)
			a := f.upload(t, conv.ID, alice.ID, At(time.Second))
			got, err := f.as.GetAttachment(t.Context(), a.ID)
			mustNot(t, "GetAttachment", err)
			a.State = chat.AttachmentUploading
			wantEqual(t, "attachment", a, got)
			wantCode(t, f.as.CreateAttachment(t.Context(), a), chat.CodeConflict)
			_, err = f.as.GetAttachment(t.Context(), "absent")
			wantCode(t, err, chat.CodeNotFound)
			a.ID, a.Conv = "other", 999_999
			wantCode(t, f.as.CreateAttachment(t.Context(), a), chat.CodeNotFound)
		}},
		{"parts must be contiguous and within the size", func(t *testing.T, f attachmentFixture) {
			alice, _, conv := f.group(t)
			a := f.upload(t, conv.ID, alice.ID, At(0))
			ctx := t.Context()
			_, err := f.as.AddPart(ctx, a.ID, chat.Part{Start: 5, End: 10, Key: "k5"})
			wantCode(t, err, chat.CodeConflict)
			got, err := f.as.AddPart(ctx, a.ID, chat.Part{Start: 0, End: 10, Key: "k0"})
			mustNot(t, "AddPart", err)
			if got.Received != 10 {
				t.Fatalf("Received = %d, want 10", got.Received)
			}
			_, err = f.as.AddPart(ctx, a.ID, chat.Part{Start: 0, End: 10, Key: "again"})
			wantCode(t, err, chat.CodeConflict)
			_, err = f.as.AddPart(ctx, a.ID, chat.Part{Start: 10, End: 31, Key: "past"})
			wantCode(t, err, chat.CodeConflict)
			_, err = f.as.AddPart(ctx, a.ID, chat.Part{Start: 10, End: 30, Key: "k10"})
			mustNot(t, "AddPart", err)
			got, err = f.as.GetAttachment(ctx, a.ID)
			mustNot(t, "GetAttachment", err)
			wantEqual(t, "parts", []chat.Part{{Start: 0, End: 10, Key: "k0"}, {Start: 10, End: 30, Key: "k10"}}, got.Parts)
			_, err = f.as.AddPart(ctx, "absent", chat.Part{Start: 0, End: 1})
			wantCode(t, err, chat.CodeNotFound)
		}},
		{"finish records the outcome once and drops the parts", func(t *testing.T, f attachmentFixture) {
			alice, _, conv := f.group(t)
			a := f.upload(t, conv.ID, alice.ID, At(0))
			_, err := f.as.AddPart(t.Context(), a.ID, chat.Part{Start: 0, End: 30, Key: "k0"})
			mustNot(t, "AddPart", err)
			done := a
			done.State, done.ContentType, done.Size, done.SHA256, done.Width, done.Height, done.ContentKey = chat.AttachmentReady, "image/png", 20, "ff00", 3, 2, "c"
			got, err := f.as.FinishAttachment(t.Context(), done)
			mustNot(t, "FinishAttachment", err)
			done.Received, done.Parts = 20, nil
			wantEqual(t, "finished", done, got)
			_, err = f.as.FinishAttachment(t.Context(), done)
			wantCode(t, err, chat.CodeConflict)

			b := f.upload(t, conv.ID, alice.ID, At(0))
			b.State = chat.AttachmentRejected
			got, err = f.as.FinishAttachment(t.Context(), b)
			mustNot(t, "FinishAttachment(rejected)", err)
			if got.State != chat.AttachmentRejected {
				t.Fatalf("state %q, want rejected", got.State)
			}
		}},
		{"claim gives ready uploads to a message in order", func(t *testing.T, f attachmentFixture) {
			alice, _, conv := f.group(t)
			a1, a2 := f.ready(t, conv.ID, alice.ID, At(0)), f.ready(t, conv.ID, alice.ID, At(0))
			m := MustAppend(t, f.s, f.ids, conv.ID, alice.ID, "look", At(time.Second))
			got, err := f.as.ClaimAttachments(t.Context(), conv.ID, alice.ID, "", m.ID, []chat.AttachmentID{a2.ID, a1.ID})
			mustNot(t, "ClaimAttachments", err)
			wantEqual(t, "claimed", []chat.AttachmentID{a2.ID, a1.ID}, attachmentIDs(got))
			byMsg, err := f.as.ListMessageAttachments(t.Context(), []chat.MessageID{m.ID, 12345})
			mustNot(t, "ListMessageAttachments", err)
			wantEqual(t, "listed", []chat.AttachmentID{a2.ID, a1.ID}, attachmentIDs(byMsg[m.ID]))
			if byMsg[m.ID][0].Message != m.ID || byMsg[m.ID][1].Index != 1 {
				t.Fatalf("listed attachments carry message %d index %d", byMsg[m.ID][0].Message, byMsg[m.ID][1].Index)
			}
			if len(byMsg) != 1 {
				t.Fatalf("listed %d messages, want 1", len(byMsg))
			}
		}},
		{"claim refuses others' uploads, other conversations and unready ones, all or none", func(t *testing.T, f attachmentFixture) {
			alice, bob, conv := f.group(t)
			other := MustCreateGroup(t, f.s, f.ids, alice.ID)
			mine := f.ready(t, conv.ID, alice.ID, At(0))
			bobs := f.ready(t, conv.ID, bob.ID, At(0))
			elsewhere := f.ready(t, other.ID, alice.ID, At(0))
			uploading := f.upload(t, conv.ID, alice.ID, At(0))
			msg := chat.MessageID(f.ids.NextID())
			ctx := t.Context()
			for _, c := range []struct {
				id   chat.AttachmentID
				code chat.Code
			}{{bobs.ID, chat.CodeNotFound}, {elsewhere.ID, chat.CodeNotFound}, {uploading.ID, chat.CodeConflict}, {"absent", chat.CodeNotFound}} {
				_, err := f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "", msg, []chat.AttachmentID{mine.ID, c.id})
				wantCode(t, err, c.code)
			}
			got, err := f.as.GetAttachment(ctx, mine.ID)
			mustNot(t, "GetAttachment", err)
			if got.Message != 0 {
				t.Fatalf("a refused claim left %s claimed by %d", mine.ID, got.Message)
			}
		}},
		{"an attachment belongs to one message; a retry keeps it", func(t *testing.T, f attachmentFixture) {
			alice, _, conv := f.group(t)
			a := f.ready(t, conv.ID, alice.ID, At(0))
			ctx := t.Context()
			m := MustAppend(t, f.s, f.ids, conv.ID, alice.ID, "first", At(time.Second))
			_, err := f.as.ClaimAttachments(ctx, conv.ID, alice.ID, m.ClientID, m.ID, []chat.AttachmentID{a.ID})
			mustNot(t, "ClaimAttachments", err)
			_, err = f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "another send", chat.MessageID(f.ids.NextID()), []chat.AttachmentID{a.ID})
			wantCode(t, err, chat.CodeConflict)
			retry := chat.MessageID(f.ids.NextID())
			got, err := f.as.ClaimAttachments(ctx, conv.ID, alice.ID, m.ClientID, retry, []chat.AttachmentID{a.ID})
			mustNot(t, "ClaimAttachments(retry)", err)
			if got[0].Message != m.ID {
				t.Fatalf("a retry moved the attachment to %d, want it kept by %d", got[0].Message, m.ID)
			}
		}},
		{"a claim by a message that was never stored is free again", func(t *testing.T, f attachmentFixture) {
			alice, _, conv := f.group(t)
			a := f.ready(t, conv.ID, alice.ID, At(0))
			ctx := t.Context()
			_, err := f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "k", chat.MessageID(f.ids.NextID()), []chat.AttachmentID{a.ID})
			mustNot(t, "ClaimAttachments", err)
			m := MustAppend(t, f.s, f.ids, conv.ID, alice.ID, "second try", At(time.Second))
			_, err = f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "k2", m.ID, []chat.AttachmentID{a.ID})
			mustNot(t, "ClaimAttachments(after a lost message)", err)
		}},
		{"release marks a message's attachments deleted", func(t *testing.T, f attachmentFixture) {
			alice, _, conv := f.group(t)
			a := f.ready(t, conv.ID, alice.ID, At(0))
			m := MustAppend(t, f.s, f.ids, conv.ID, alice.ID, "x", At(time.Second))
			ctx := t.Context()
			_, err := f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "", m.ID, []chat.AttachmentID{a.ID})
			mustNot(t, "ClaimAttachments", err)
			released, err := f.as.ReleaseMessageAttachments(ctx, m.ID)
			mustNot(t, "ReleaseMessageAttachments", err)
			wantEqual(t, "released", []chat.AttachmentID{a.ID}, attachmentIDs(released))
			byMsg, err := f.as.ListMessageAttachments(ctx, []chat.MessageID{m.ID})
			mustNot(t, "ListMessageAttachments", err)
			if len(byMsg[m.ID]) != 0 {
				t.Fatalf("a released attachment is still listed")
			}
			got, _ := f.as.GetAttachment(ctx, a.ID)
			if got.State != chat.AttachmentDeleted {
				t.Fatalf("state %q, want deleted", got.State)
			}
			_, err = f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "", chat.MessageID(f.ids.NextID()), []chat.AttachmentID{a.ID})
			wantCode(t, err, chat.CodeConflict)
		}},
		{"garbage is deleted, rejected and old unsent uploads", func(t *testing.T, f attachmentFixture) {
			alice, _, conv := f.group(t)
			ctx := t.Context()
			young := f.ready(t, conv.ID, alice.ID, time.Now())
			old := f.ready(t, conv.ID, alice.ID, At(0))
			sent := f.ready(t, conv.ID, alice.ID, At(0))
			m := MustAppend(t, f.s, f.ids, conv.ID, alice.ID, "kept", At(time.Second))
			_, err := f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "", m.ID, []chat.AttachmentID{sent.ID})
			mustNot(t, "ClaimAttachments", err)
			gone := f.ready(t, conv.ID, alice.ID, time.Now())
			m2 := MustAppend(t, f.s, f.ids, conv.ID, alice.ID, "deleted", At(2*time.Second))
			_, err = f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "", m2.ID, []chat.AttachmentID{gone.ID})
			mustNot(t, "ClaimAttachments", err)
			_, err = f.as.ReleaseMessageAttachments(ctx, m2.ID)
			mustNot(t, "ReleaseMessageAttachments", err)
			rejected := f.upload(t, conv.ID, alice.ID, time.Now())
			rejected.State = chat.AttachmentRejected
			_, err = f.as.FinishAttachment(ctx, rejected)
			mustNot(t, "FinishAttachment", err)

			garbage, err := f.as.ListGarbage(ctx, time.Now().Add(-time.Hour), 100)
			mustNot(t, "ListGarbage", err)
			got := attachmentIDs(garbage)
			slices.Sort(got)
			want := []chat.AttachmentID{old.ID, gone.ID, rejected.ID}
			slices.Sort(want)
			wantEqual(t, "garbage", want, got)
			_ = young
			mustNot(t, "DeleteAttachment", f.as.DeleteAttachment(ctx, old.ID))
			mustNot(t, "DeleteAttachment(again)", f.as.DeleteAttachment(ctx, old.ID))
			_, err = f.as.GetAttachment(ctx, old.ID)
			wantCode(t, err, chat.CodeNotFound)
		}},
		{"a tombstoned message's attachments become garbage after the grace period", func(t *testing.T, f attachmentFixture) {
			alice, _, conv := f.group(t)
			ctx := t.Context()
			a := f.ready(t, conv.ID, alice.ID, At(0))
			m := MustAppend(t, f.s, f.ids, conv.ID, alice.ID, "x", At(time.Second))
			_, err := f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "", m.ID, []chat.AttachmentID{a.ID})
			mustNot(t, "ClaimAttachments", err)
			_, err = f.s.DeleteMessage(ctx, conv.ID, m.ID, At(time.Minute))
			mustNot(t, "DeleteMessage", err)
			garbage, err := f.as.ListGarbage(ctx, time.Now().Add(time.Hour), 100)
			mustNot(t, "ListGarbage", err)
			wantEqual(t, "garbage", []chat.AttachmentID{a.ID}, attachmentIDs(garbage))
		}},
		{"missing thumbnails are listed until set", func(t *testing.T, f attachmentFixture) {
			alice, _, conv := f.group(t)
			ctx := t.Context()
			img := f.ready(t, conv.ID, alice.ID, At(0))
			pdf := f.upload(t, conv.ID, alice.ID, At(time.Second))
			pdf.State, pdf.ContentType, pdf.ContentKey = chat.AttachmentReady, "application/pdf", "c"
			_, err := f.as.FinishAttachment(ctx, pdf)
			mustNot(t, "FinishAttachment", err)
			missing, err := f.as.ListMissingThumbnails(ctx, 10)
			mustNot(t, "ListMissingThumbnails", err)
			wantEqual(t, "missing", []chat.AttachmentID{img.ID}, attachmentIDs(missing))
			mustNot(t, "SetThumbnail", f.as.SetThumbnail(ctx, img.ID, "t"))
			missing, err = f.as.ListMissingThumbnails(ctx, 10)
			mustNot(t, "ListMissingThumbnails", err)
			wantEqual(t, "missing after SetThumbnail", []chat.AttachmentID{}, attachmentIDs(missing))
			got, _ := f.as.GetAttachment(ctx, img.ID)
			if got.ThumbnailKey != "t" {
				t.Fatalf("ThumbnailKey %q, want t", got.ThumbnailKey)
			}
			wantCode(t, f.as.SetThumbnail(ctx, "absent", "t"), chat.CodeNotFound)
		}},
		{"an image whose thumbnail failed for good is no longer listed as missing", func(t *testing.T, f attachmentFixture) {
			alice, _, conv := f.group(t)
			ctx := t.Context()
			broken := f.ready(t, conv.ID, alice.ID, At(0))
			fine := f.ready(t, conv.ID, alice.ID, At(time.Second))
			if !broken.ThumbnailFailedAt.IsZero() || broken.ThumbnailError != "" {
				t.Fatalf("a new attachment has a thumbnail failure: %+v", broken)
			}
			mustNot(t, "SetThumbnailFailed", f.as.SetThumbnailFailed(ctx, broken.ID, "png: invalid format", At(time.Minute)))
			got, err := f.as.GetAttachment(ctx, broken.ID)
			mustNot(t, "GetAttachment", err)
			if !got.ThumbnailFailedAt.Equal(At(time.Minute)) || got.ThumbnailError != "png: invalid format" ||
				got.State != chat.AttachmentReady || got.ContentKey != broken.ContentKey || got.ThumbnailKey != "" {
				t.Fatalf("after SetThumbnailFailed: %+v, want a ready attachment that failed at %v", got, At(time.Minute))
			}
			missing, err := f.as.ListMissingThumbnails(ctx, 10)
			mustNot(t, "ListMissingThumbnails", err)
			wantEqual(t, "missing", []chat.AttachmentID{fine.ID}, attachmentIDs(missing))

			// Messages carry the failure.
			m := MustAppend(t, f.s, f.ids, conv.ID, alice.ID, "look", At(2*time.Second))
			_, err = f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "", m.ID, []chat.AttachmentID{broken.ID})
			mustNot(t, "ClaimAttachments", err)
			carried, err := f.as.ListMessageAttachments(ctx, []chat.MessageID{m.ID})
			mustNot(t, "ListMessageAttachments", err)
			if as := carried[m.ID]; len(as) != 1 || as[0].ThumbnailFailedAt.IsZero() {
				t.Fatalf("the message carries %+v, want the attachment with its failure", as)
			}

			// An image with a thumbnail keeps it; SetThumbnail clears a failure.
			mustNot(t, "SetThumbnail", f.as.SetThumbnail(ctx, fine.ID, "t"))
			mustNot(t, "SetThumbnailFailed(with a thumbnail)", f.as.SetThumbnailFailed(ctx, fine.ID, "late", At(time.Minute)))
			if got, _ := f.as.GetAttachment(ctx, fine.ID); got.ThumbnailKey != "t" || !got.ThumbnailFailedAt.IsZero() || got.ThumbnailError != "" {
				t.Fatalf("an image with a thumbnail was marked failed: %+v", got)
			}
			mustNot(t, "SetThumbnail(broken)", f.as.SetThumbnail(ctx, broken.ID, "t2"))
			if got, _ := f.as.GetAttachment(ctx, broken.ID); got.ThumbnailKey != "t2" || !got.ThumbnailFailedAt.IsZero() || got.ThumbnailError != "" {
				t.Fatalf("SetThumbnail left the failure: %+v", got)
			}

			// Only ready attachments can fail.
			wantCode(t, f.as.SetThumbnailFailed(ctx, "absent", "x", At(time.Minute)), chat.CodeNotFound)
			uploading := f.upload(t, conv.ID, alice.ID, At(3*time.Second))
			wantCode(t, f.as.SetThumbnailFailed(ctx, uploading.ID, "x", At(time.Minute)), chat.CodeNotFound)
			_, err = f.as.ReleaseMessageAttachments(ctx, m.ID)
			mustNot(t, "ReleaseMessageAttachments", err)
			wantCode(t, f.as.SetThumbnailFailed(ctx, broken.ID, "x", At(time.Minute)), chat.CodeNotFound)
		}},
	}
}
