package chattest

import (
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// TestAttachmentTiers runs the chat.AttachmentTiers conformance suite.
// open must return a fresh, empty store that also implements
// chat.AttachmentStore and chat.AttachmentTiers and close it when t ends;
// it is called once per subtest, from parallel subtests.
func TestAttachmentTiers(t *testing.T, open func(t testing.TB) chat.Store) {
	cases := []struct {
		name string
		test func(t *testing.T, f attachmentFixture, ts chat.AttachmentTiers)
	}{
		{"a new attachment is hot and an absent one not found", func(t *testing.T, f attachmentFixture, ts chat.AttachmentTiers) {
			alice, _, conv := f.group(t)
			a := f.upload(t, conv.ID, alice.ID, At(time.Second))
			if got, err := ts.GetAttachmentTier(t.Context(), a.ID); err != nil || got != chat.TierHot {
				t.Fatalf("GetAttachmentTier = %q, %v; want hot", got, err)
			}
			if _, err := ts.GetAttachmentTier(t.Context(), "absent"); !chat.IsCode(err, chat.CodeNotFound) {
				t.Fatalf("GetAttachmentTier(absent) = %v, want not_found", err)
			}
		}},
		{"only old, claimed, ready, hot attachments are listed, oldest first", func(t *testing.T, f attachmentFixture, ts chat.AttachmentTiers) {
			ctx := t.Context()
			alice, _, conv := f.group(t)
			claim := func(as ...chat.Attachment) {
				t.Helper()
				for _, a := range as {
					_, err := f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "", chat.MessageID(f.ids.NextID()), []chat.AttachmentID{a.ID})
					mustNot(t, "ClaimAttachments", err)
				}
			}
			newer := f.ready(t, conv.ID, alice.ID, At(3*time.Second))
			older := f.ready(t, conv.ID, alice.ID, At(2*time.Second))
			unsent := f.ready(t, conv.ID, alice.ID, At(time.Second))
			f.upload(t, conv.ID, alice.ID, At(time.Second)) // still uploading
			young := f.ready(t, conv.ID, alice.ID, At(time.Hour))
			moved := f.ready(t, conv.ID, alice.ID, At(time.Second))
			gone := f.ready(t, conv.ID, alice.ID, At(time.Second))
			claim(newer, older, young, moved, gone)
			mustNot(t, "SetAttachmentTier", ts.SetAttachmentTier(ctx, moved.ID, chat.TierCold))
			goneMsg, err := f.as.GetAttachment(ctx, gone.ID)
			mustNot(t, "GetAttachment", err)
			_, err = f.as.ReleaseMessageAttachments(ctx, goneMsg.Message)
			mustNot(t, "ReleaseMessageAttachments", err)

			got, err := ts.ListHotAttachments(ctx, At(time.Minute), 10)
			mustNot(t, "ListHotAttachments", err)
			if ids, want := attachmentIDs(got), []chat.AttachmentID{older.ID, newer.ID}; !slices.Equal(ids, want) {
				t.Fatalf("ListHotAttachments = %v, want %v (unsent %s)", ids, want, unsent.ID)
			}
			if got[0].ContentKey != older.ContentKey || got[0].SHA256 != older.SHA256 || got[0].Size != older.Size {
				t.Fatalf("listed attachment %+v lacks what a move checks (want %+v)", got[0], older)
			}
			got, err = ts.ListHotAttachments(ctx, At(time.Minute), 1)
			mustNot(t, "ListHotAttachments", err)
			if ids := attachmentIDs(got); !slices.Equal(ids, []chat.AttachmentID{older.ID}) {
				t.Fatalf("ListHotAttachments limit 1 = %v", ids)
			}
		}},
		{"the tier moves only while the attachment is ready", func(t *testing.T, f attachmentFixture, ts chat.AttachmentTiers) {
			ctx := t.Context()
			alice, _, conv := f.group(t)
			a := f.ready(t, conv.ID, alice.ID, At(time.Second))
			mustNot(t, "SetAttachmentTier cold", ts.SetAttachmentTier(ctx, a.ID, chat.TierCold))
			if got, err := ts.GetAttachmentTier(ctx, a.ID); err != nil || got != chat.TierCold {
				t.Fatalf("after the move: %q, %v; want cold", got, err)
			}
			mustNot(t, "SetAttachmentTier hot", ts.SetAttachmentTier(ctx, a.ID, chat.TierHot))
			if got, _ := ts.GetAttachmentTier(ctx, a.ID); got != chat.TierHot {
				t.Fatalf("after moving back: %q, want hot", got)
			}
			up := f.upload(t, conv.ID, alice.ID, At(time.Second))
			if err := ts.SetAttachmentTier(ctx, up.ID, chat.TierCold); !chat.IsCode(err, chat.CodeConflict) {
				t.Fatalf("SetAttachmentTier(uploading) = %v, want conflict", err)
			}
			msg := chat.MessageID(f.ids.NextID())
			_, err := f.as.ClaimAttachments(ctx, conv.ID, alice.ID, "", msg, []chat.AttachmentID{a.ID})
			mustNot(t, "ClaimAttachments", err)
			_, err = f.as.ReleaseMessageAttachments(ctx, msg)
			mustNot(t, "ReleaseMessageAttachments", err)
			if err := ts.SetAttachmentTier(ctx, a.ID, chat.TierCold); !chat.IsCode(err, chat.CodeConflict) {
				t.Fatalf("SetAttachmentTier(deleted) = %v, want conflict", err)
			}
			if got, _ := ts.GetAttachmentTier(ctx, a.ID); got != chat.TierHot {
				t.Fatalf("a refused move changed the tier to %q", got)
			}
			if err := ts.SetAttachmentTier(ctx, "absent", chat.TierCold); !chat.IsCode(err, chat.CodeNotFound) {
				t.Fatalf("SetAttachmentTier(absent) = %v, want not_found", err)
			}
			if err := ts.SetAttachmentTier(ctx, up.ID, "lukewarm"); !chat.IsCode(err, chat.CodeInvalidArgument) {
				t.Fatalf("SetAttachmentTier(lukewarm) = %v, want invalid_argument", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			as, ok := s.(chat.AttachmentStore)
			ts, ok2 := s.(chat.AttachmentTiers)
			if !ok || !ok2 {
				t.Fatalf("%T does not implement chat.AttachmentStore and chat.AttachmentTiers", s)
			}
			c.test(t, attachmentFixture{s, as, NewIDs()}, ts)
		})
	}
}
