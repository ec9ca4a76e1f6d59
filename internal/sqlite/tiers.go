package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

var _ chat.AttachmentTiers = (*Store)(nil)

// ListHotAttachments implements chat.AttachmentTiers.
func (s *Store) ListHotAttachments(ctx context.Context, cutoff time.Time, limit int) ([]chat.Attachment, error) {
	const op = "sqlite.ListHotAttachments"
	rows, err := s.r.QueryContext(ctx, `SELECT `+attachmentColumns+` FROM attachments
		WHERE tier = 'hot' AND state = 'ready' AND msg_id IS NOT NULL AND created_at < ? ORDER BY created_at LIMIT ?`,
		ms(cutoff), max(limit, 1))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	out, err := collect(rows, scanAttachment)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}

// GetAttachmentTier implements chat.AttachmentTiers.
func (s *Store) GetAttachmentTier(ctx context.Context, id chat.AttachmentID) (chat.BlobTier, error) {
	const op = "sqlite.GetAttachmentTier"
	var tier string
	err := s.r.QueryRowContext(ctx, `SELECT tier FROM attachments WHERE id = ?`, string(id)).Scan(&tier)
	if errors.Is(err, sql.ErrNoRows) {
		return "", attachmentNotFound(op)
	}
	if err != nil {
		return "", chat.Unavailable(op, err)
	}
	return chat.BlobTier(tier), nil
}

// SetAttachmentTier implements chat.AttachmentTiers.
func (s *Store) SetAttachmentTier(ctx context.Context, id chat.AttachmentID, tier chat.BlobTier) error {
	const op = "sqlite.SetAttachmentTier"
	if tier != chat.TierHot && tier != chat.TierCold {
		return newError(op, chat.CodeInvalidArgument, "unknown blob tier")
	}
	var state string
	err := s.w.QueryRowContext(ctx, `UPDATE attachments SET tier = CASE WHEN state = 'ready' THEN ? ELSE tier END
		WHERE id = ? RETURNING state`, string(tier), string(id)).Scan(&state)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return attachmentNotFound(op)
	case err != nil:
		return chat.Unavailable(op, err)
	case state != string(chat.AttachmentReady):
		return newError(op, chat.CodeConflict, "the attachment is no longer ready")
	}
	return nil
}
