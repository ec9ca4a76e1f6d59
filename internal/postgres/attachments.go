package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/internal/chat"
)

var _ chat.AttachmentStore = (*Store)(nil)

// attachmentColumns are the columns scanAttachment reads.
const attachmentColumns = `id, conv_id, uploader_id, state, name, declared_type, content_type, size, received, parts,
	sha256, width, height, content_key, thumbnail_key, msg_id, idx, created_at, duration_ms, thumbnail_failed_at, thumbnail_error`

func scanAttachment(row pgx.Row) (chat.Attachment, error) {
	var a chat.Attachment
	var parts string
	var msg *int64
	var failed *time.Time
	if err := row.Scan(&a.ID, &a.Conv, &a.Uploader, &a.State, &a.Name, &a.Declared, &a.ContentType, &a.Size, &a.Received, &parts,
		&a.SHA256, &a.Width, &a.Height, &a.ContentKey, &a.ThumbnailKey, &msg, &a.Index, &a.CreatedAt, &a.DurationMS,
		&failed, &a.ThumbnailError); err != nil {
		return chat.Attachment{}, err
	}
	a.ThumbnailFailedAt = fromNull(failed)
	ps, err := chat.DecodeParts(parts)
	if err != nil {
		return chat.Attachment{}, fmt.Errorf("attachment %s: parts: %w", a.ID, err)
	}
	a.Parts = ps
	if msg != nil {
		a.Message = chat.MessageID(*msg)
	}
	a.CreatedAt = a.CreatedAt.UTC()
	return a, nil
}

func attachmentNotFound(op string) error {
	return newError(op, chat.CodeNotFound, "no such attachment")
}

// CreateAttachment implements chat.AttachmentStore.
func (s *Store) CreateAttachment(ctx context.Context, a chat.Attachment) error {
	const op = "postgres.CreateAttachment"
	return s.write(ctx, op, "the attachment", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO attachments (id, conv_id, uploader_id, state, name, declared_type, size, created_at)
			VALUES ($1, $2, $3, 'uploading', $4, $5, $6, $7)`,
			string(a.ID), int64(a.Conv), int64(a.Uploader), a.Name, a.Declared, a.Size, ms(a.CreatedAt))
		return err
	})
}

// GetAttachment implements chat.AttachmentStore.
func (s *Store) GetAttachment(ctx context.Context, id chat.AttachmentID) (chat.Attachment, error) {
	const op = "postgres.GetAttachment"
	a, err := scanAttachment(s.pool.QueryRow(ctx, `SELECT `+attachmentColumns+` FROM attachments WHERE id = $1`, string(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Attachment{}, attachmentNotFound(op)
	}
	if err != nil {
		return chat.Attachment{}, classify(op, "the attachment", err)
	}
	return a, nil
}

// lockAttachment reads the attachment id inside tx and locks its row.
func lockAttachment(ctx context.Context, tx pgx.Tx, op string, id chat.AttachmentID) (chat.Attachment, error) {
	a, err := scanAttachment(tx.QueryRow(ctx, `SELECT `+attachmentColumns+` FROM attachments WHERE id = $1 FOR UPDATE`, string(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Attachment{}, attachmentNotFound(op)
	}
	return a, err
}

// AddPart implements chat.AttachmentStore.
func (s *Store) AddPart(ctx context.Context, id chat.AttachmentID, p chat.Part) (chat.Attachment, error) {
	const op = "postgres.AddPart"
	var a chat.Attachment
	err := s.write(ctx, op, "the attachment", func(tx pgx.Tx) error {
		var err error
		if a, err = lockAttachment(ctx, tx, op, id); err != nil {
			return err
		}
		if a.State != chat.AttachmentUploading || a.Received != p.Start || p.End <= p.Start || p.End > a.Size {
			return newError(op, chat.CodeConflict, "the upload is not at this offset")
		}
		a.Parts, a.Received = append(a.Parts, p), p.End
		_, err = tx.Exec(ctx, `UPDATE attachments SET received = $1, parts = $2 WHERE id = $3`, a.Received, chat.EncodeParts(a.Parts), string(id))
		return err
	})
	return a, err
}

// FinishAttachment implements chat.AttachmentStore.
func (s *Store) FinishAttachment(ctx context.Context, done chat.Attachment) (chat.Attachment, error) {
	const op = "postgres.FinishAttachment"
	var a chat.Attachment
	err := s.write(ctx, op, "the attachment", func(tx pgx.Tx) error {
		old, err := lockAttachment(ctx, tx, op, done.ID)
		if err != nil {
			return err
		}
		if old.State != chat.AttachmentUploading {
			return newError(op, chat.CodeConflict, "the upload is already finished")
		}
		if done.State != chat.AttachmentReady && done.State != chat.AttachmentRejected {
			return newError(op, chat.CodeInvalidArgument, "an upload finishes ready or rejected")
		}
		a, err = scanAttachment(tx.QueryRow(ctx, `UPDATE attachments SET state = $1, content_type = $2, size = $3, received = $3, parts = '[]',
			sha256 = $4, width = $5, height = $6, content_key = $7, duration_ms = $9 WHERE id = $8 RETURNING `+attachmentColumns,
			string(done.State), done.ContentType, done.Size, done.SHA256, done.Width, done.Height, done.ContentKey, string(done.ID), done.DurationMS))
		return err
	})
	return a, err
}

// SetThumbnail implements chat.AttachmentStore.
func (s *Store) SetThumbnail(ctx context.Context, id chat.AttachmentID, key string) error {
	const op = "postgres.SetThumbnail"
	return s.write(ctx, op, "the attachment", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE attachments SET thumbnail_key = $1, thumbnail_failed_at = NULL, thumbnail_error = ''
			WHERE id = $2 AND state = 'ready'`, key, string(id))
		if err == nil && tag.RowsAffected() == 0 {
			return attachmentNotFound(op)
		}
		return err
	})
}

// SetThumbnailFailed implements chat.AttachmentStore.
func (s *Store) SetThumbnailFailed(ctx context.Context, id chat.AttachmentID, reason string, at time.Time) error {
	const op = "postgres.SetThumbnailFailed"
	return s.write(ctx, op, "the attachment", func(tx pgx.Tx) error {
		a, err := lockAttachment(ctx, tx, op, id)
		switch {
		case err != nil:
			return err
		case a.State != chat.AttachmentReady:
			return attachmentNotFound(op)
		case a.ThumbnailKey != "":
			return errUnchanged
		}
		_, err = tx.Exec(ctx, `UPDATE attachments SET thumbnail_failed_at = $1, thumbnail_error = $2 WHERE id = $3`,
			ms(at), reason, string(id))
		return err
	})
}

// ClaimAttachments implements chat.AttachmentStore in one transaction;
// the rows are locked in the order given.
func (s *Store) ClaimAttachments(ctx context.Context, conv chat.ConversationID, uploader chat.UserID, clientID string, msg chat.MessageID, ids []chat.AttachmentID) ([]chat.Attachment, error) {
	const op = "postgres.ClaimAttachments"
	var out []chat.Attachment
	err := s.write(ctx, op, "the attachment", func(tx pgx.Tx) error {
		out = nil
		var retried *int64 // the stored message this send retries, if any
		if clientID != "" {
			err := tx.QueryRow(ctx, `SELECT id FROM messages WHERE conv_id = $1 AND sender_id = $2 AND client_id = $3`,
				int64(conv), int64(uploader), clientID).Scan(&retried)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		now := ms(s.now())
		for i, id := range ids {
			a, err := lockAttachment(ctx, tx, op, id)
			if err != nil {
				return err
			}
			if err := chat.Claimable(op, a, conv, uploader); err != nil {
				return err
			}
			if a.Message != 0 && a.Message != msg {
				if retried != nil && int64(a.Message) == *retried {
					out = append(out, a) // a retry: the stored message keeps it
					continue
				}
				var exists bool
				if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM messages WHERE id = $1)`, int64(a.Message)).Scan(&exists); err != nil {
					return err
				}
				if exists {
					return newError(op, chat.CodeConflict, "an attachment was already sent with another message")
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE attachments SET msg_id = $1, idx = $2, claimed_at = $3 WHERE id = $4`,
				int64(msg), i, now, string(id)); err != nil {
				return err
			}
			a.Message, a.Index = msg, i
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// queryAttachments runs query and scans every row.
func (s *Store) queryAttachments(ctx context.Context, op, query string, args ...any) ([]chat.Attachment, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, classify(op, "the attachment", err)
	}
	out, err := collect(rows, scanAttachment)
	if err != nil {
		return nil, classify(op, "the attachment", err)
	}
	return out, nil
}

// ListMessageAttachments implements chat.AttachmentStore.
func (s *Store) ListMessageAttachments(ctx context.Context, msgs []chat.MessageID) (map[chat.MessageID][]chat.Attachment, error) {
	const op = "postgres.ListMessageAttachments"
	if len(msgs) == 0 {
		return nil, nil
	}
	list, err := s.queryAttachments(ctx, op, `SELECT `+attachmentColumns+` FROM attachments
		WHERE msg_id = ANY($1) AND state = 'ready' ORDER BY msg_id, idx`, int64s(msgs))
	if err != nil {
		return nil, err
	}
	out := make(map[chat.MessageID][]chat.Attachment)
	for _, a := range list {
		out[a.Message] = append(out[a.Message], a)
	}
	return out, nil
}

// ReleaseMessageAttachments implements chat.AttachmentStore.
func (s *Store) ReleaseMessageAttachments(ctx context.Context, msg chat.MessageID) ([]chat.Attachment, error) {
	const op = "postgres.ReleaseMessageAttachments"
	return s.queryAttachments(ctx, op, `UPDATE attachments SET state = 'deleted' WHERE msg_id = $1 AND state = 'ready'
		RETURNING `+attachmentColumns, int64(msg))
}

// ListGarbage implements chat.AttachmentStore.
func (s *Store) ListGarbage(ctx context.Context, cutoff time.Time, limit int) ([]chat.Attachment, error) {
	const op = "postgres.ListGarbage"
	return s.queryAttachments(ctx, op, `SELECT `+attachmentColumns+` FROM attachments a
		WHERE a.state IN ('deleted', 'rejected')
		   OR (coalesce(a.claimed_at, a.created_at) < $1
		       AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = a.msg_id AND m.deleted_at IS NULL))
		ORDER BY a.created_at LIMIT $2`, ms(cutoff), max(limit, 1))
}

// ListMissingThumbnails implements chat.AttachmentStore.
func (s *Store) ListMissingThumbnails(ctx context.Context, limit int) ([]chat.Attachment, error) {
	const op = "postgres.ListMissingThumbnails"
	return s.queryAttachments(ctx, op, `SELECT `+attachmentColumns+` FROM attachments
		WHERE state = 'ready' AND thumbnail_key = '' AND thumbnail_failed_at IS NULL AND content_type LIKE 'image/%'
		ORDER BY created_at LIMIT $1`, max(limit, 1))
}

// DeleteAttachment implements chat.AttachmentStore.
func (s *Store) DeleteAttachment(ctx context.Context, id chat.AttachmentID) error {
	const op = "postgres.DeleteAttachment"
	return s.write(ctx, op, "the attachment", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM attachments WHERE id = $1`, string(id))
		return err
	})
}
