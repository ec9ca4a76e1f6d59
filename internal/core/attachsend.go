package core

import (
	"context"

	"github.com/natter-chat/natter/internal/chat"
)

// Outgoing is a message to send. Attachments are ids of the sender's
// ready uploads to Conv that no message carries yet (at most
// chat.MaxAttachmentsPerMessage); with attachments, Text may be empty.
type Outgoing struct {
	Conv        chat.ConversationID
	ClientID    string
	Text        string
	ReplyTo     chat.MessageID
	Attachments []chat.AttachmentID
}

// claimAttachments gives the attachments ids to d's message before it is
// queued: a message is never stored without the files it was sent with.
// A claim whose message is then not stored (the append failed) is free
// again for the next send; a retried send (same client id) finds the
// attachments with the message it retries. An attachment is sent once:
// reusing one in another message is a conflict.
func (s *Service) claimAttachments(ctx context.Context, d chat.Draft, ids []chat.AttachmentID) ([]chat.Attachment, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if s.attach == nil {
		return nil, errAttachmentsOff
	}
	if len(ids) > chat.MaxAttachmentsPerMessage {
		return nil, chat.Errorf(chat.CodeInvalidArgument, "a message carries at most %d attachments", chat.MaxAttachmentsPerMessage)
	}
	seen := make(map[chat.AttachmentID]bool, len(ids))
	for _, id := range ids {
		if !ValidAttachmentID(string(id)) {
			return nil, chat.Errorf(chat.CodeInvalidArgument, "attachments must be attachment ids")
		}
		if seen[id] {
			return nil, chat.Errorf(chat.CodeInvalidArgument, "an attachment is listed twice")
		}
		seen[id] = true
	}
	return s.attach.store.ClaimAttachments(ctx, d.Conv, d.Sender, d.ClientID, d.ID, ids)
}

// fillAttachments sets the Attachments of msgs that are not deleted from
// the AttachmentStore, with one query. A failure is logged and leaves
// them empty: the message itself is still worth delivering.
func (s *Service) fillAttachments(ctx context.Context, msgs ...*chat.Message) {
	if s.attach == nil || len(msgs) == 0 {
		return
	}
	ids := make([]chat.MessageID, 0, len(msgs))
	for _, m := range msgs {
		if m.DeletedAt.IsZero() {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	byMsg, err := s.attach.store.ListMessageAttachments(ctx, ids)
	if err != nil {
		s.log.Warn("cannot load attachments", "err", err)
		return
	}
	for _, m := range msgs {
		if m.DeletedAt.IsZero() {
			m.Attachments = byMsg[m.ID]
		}
	}
}

// fillMessages is fillAttachments for a slice of messages.
func (s *Service) fillMessages(ctx context.Context, msgs []chat.Message) {
	ptrs := make([]*chat.Message, len(msgs))
	for i := range msgs {
		ptrs[i] = &msgs[i]
	}
	s.fillAttachments(ctx, ptrs...)
}

// releaseAttachments marks the attachments of a deleted message deleted,
// so that downloads stop at once and the sweep removes them. A failure is
// logged: the sweep finds a tombstone's attachments on its own, later.
func (s *Service) releaseAttachments(ctx context.Context, m chat.Message) {
	if s.attach == nil || m.DeletedAt.IsZero() {
		return
	}
	if _, err := s.attach.store.ReleaseMessageAttachments(ctx, m.ID); err != nil {
		s.log.Warn("cannot release a deleted message's attachments", "conv", m.Conv, "err", err)
	}
}

// AttachmentIDs converts the attachment ids of a request (checked when
// sent).
func AttachmentIDs(ids []string) []chat.AttachmentID {
	if len(ids) == 0 {
		return nil
	}
	out := make([]chat.AttachmentID, len(ids))
	for i, id := range ids {
		out[i] = chat.AttachmentID(id)
	}
	return out
}
