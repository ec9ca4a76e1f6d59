package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/internal/chat"
)

var _ chat.AttachmentTiers = (*Store)(nil)

// ListHotAttachments implements chat.AttachmentTiers.
func (s *Store) ListHotAttachments(ctx context.Context, cutoff time.Time, limit int) ([]chat.Attachment, error) {
	const op = "postgres.ListHotAttachments"
	return s.queryAttachments(ctx, op, `SELECT `+attachmentColumns+` FROM attachments
		WHERE tier = 'hot' AND state = 'ready' AND msg_id IS NOT NULL AND created_at < $1 ORDER BY created_at LIMIT $2`,
		ms(cutoff), max(limit, 1))
}

// GetAttachmentTier implements chat.AttachmentTiers.
func (s *Store) GetAttachmentTier(ctx context.Context, id chat.AttachmentID) (chat.BlobTier, error) {
	const op = "postgres.GetAttachmentTier"
	var tier string
	err := s.pool.QueryRow(ctx, `SELECT tier FROM attachments WHERE id = $1`, string(id)).Scan(&tier)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", attachmentNotFound(op)
	}
	if err != nil {
		return "", classify(op, "the attachment", err)
	}
	return chat.BlobTier(tier), nil
}

// SetAttachmentTier implements chat.AttachmentTiers.
func (s *Store) SetAttachmentTier(ctx context.Context, id chat.AttachmentID, tier chat.BlobTier) error {
	const op = "postgres.SetAttachmentTier"
	if tier != chat.TierHot && tier != chat.TierCold {
		return newError(op, chat.CodeInvalidArgument, "unknown blob tier")
	}
	return s.write(ctx, op, "the attachment", func(tx pgx.Tx) error {
		var state string
		err := tx.QueryRow(ctx, `UPDATE attachments SET tier = CASE WHEN state = 'ready' THEN $1 ELSE tier END
			WHERE id = $2 RETURNING state`, string(tier), string(id)).Scan(&state)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return attachmentNotFound(op)
		case err != nil:
			return err
		case state != string(chat.AttachmentReady):
			return newError(op, chat.CodeConflict, "the attachment is no longer ready")
		}
		return nil
	})
}
