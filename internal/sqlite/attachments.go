package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

var _ chat.AttachmentStore = (*Store)(nil)

// attachmentColumns are the columns scanAttachment reads.
const attachmentColumns = `id, conv_id, uploader_id, state, name, declared_type, content_type, size, received, parts,
	sha256, width, height, content_key, thumbnail_key, msg_id, idx, created_at, duration_ms, thumbnail_failed_at, thumbnail_error`

func scanAttachment(row scanner) (chat.Attachment, error) {
	var a chat.Attachment
	var parts string
	var msg, failed sql.NullInt64
	var created int64
	if err := row.Scan(&a.ID, &a.Conv, &a.Uploader, &a.State, &a.Name, &a.Declared, &a.ContentType, &a.Size, &a.Received, &parts,
		&a.SHA256, &a.Width, &a.Height, &a.ContentKey, &a.ThumbnailKey, &msg, &a.Index, &created, &a.DurationMS,
		&failed, &a.ThumbnailError); err != nil {
		return chat.Attachment{}, err
	}
	a.ThumbnailFailedAt = fromNullMS(failed)
	ps, err := chat.DecodeParts(parts)
	if err != nil {
		return chat.Attachment{}, fmt.Errorf("attachment %s: parts: %w", a.ID, err)
	}
	a.Parts, a.Message, a.CreatedAt = ps, chat.MessageID(msg.Int64), fromMS(created)
	return a, nil
}

func attachmentNotFound(op string) error {
	return newError(op, chat.CodeNotFound, "no such attachment")
}

// CreateAttachment implements chat.AttachmentStore.
func (s *Store) CreateAttachment(ctx context.Context, a chat.Attachment) error {
	const op = "sqlite.CreateAttachment"
	_, err := s.w.ExecContext(ctx, `INSERT INTO attachments (id, conv_id, uploader_id, state, name, declared_type, size, created_at)
		VALUES (?, ?, ?, 'uploading', ?, ?, ?, ?)`,
		string(a.ID), int64(a.Conv), int64(a.Uploader), a.Name, a.Declared, a.Size, ms(a.CreatedAt))
	if err != nil {
		return classify(op, "the attachment", err)
	}
	return nil
}

// GetAttachment implements chat.AttachmentStore.
func (s *Store) GetAttachment(ctx context.Context, id chat.AttachmentID) (chat.Attachment, error) {
	const op = "sqlite.GetAttachment"
	return getAttachment(ctx, s.r, op, id)
}

func getAttachment(ctx context.Context, q querier, op string, id chat.AttachmentID) (chat.Attachment, error) {
	a, err := scanAttachment(q.QueryRowContext(ctx, `SELECT `+attachmentColumns+` FROM attachments WHERE id = ?`, string(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Attachment{}, attachmentNotFound(op)
	}
	if err != nil {
		return chat.Attachment{}, chat.Unavailable(op, err)
	}
	return a, nil
}

// inTx runs fn in a write transaction and commits it. fn's *chat.Error
// passes through; anything else is classified.
func (s *Store) inTx(ctx context.Context, op, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return classify(op, what, err)
	}
	if err := tx.Commit(); err != nil {
		return chat.Unavailable(op, err)
	}
	return nil
}

// AddPart implements chat.AttachmentStore.
func (s *Store) AddPart(ctx context.Context, id chat.AttachmentID, p chat.Part) (chat.Attachment, error) {
	const op = "sqlite.AddPart"
	var a chat.Attachment
	err := s.inTx(ctx, op, "the attachment", func(tx *sql.Tx) error {
		var err error
		if a, err = getAttachment(ctx, tx, op, id); err != nil {
			return err
		}
		if a.State != chat.AttachmentUploading || a.Received != p.Start || p.End <= p.Start || p.End > a.Size {
			return newError(op, chat.CodeConflict, "the upload is not at this offset")
		}
		a.Parts, a.Received = append(a.Parts, p), p.End
		_, err = tx.ExecContext(ctx, `UPDATE attachments SET received = ?, parts = ? WHERE id = ?`, a.Received, chat.EncodeParts(a.Parts), string(id))
		return err
	})
	return a, err
}

// FinishAttachment implements chat.AttachmentStore.
func (s *Store) FinishAttachment(ctx context.Context, done chat.Attachment) (chat.Attachment, error) {
	const op = "sqlite.FinishAttachment"
	var a chat.Attachment
	err := s.inTx(ctx, op, "the attachment", func(tx *sql.Tx) error {
		var err error
		if a, err = getAttachment(ctx, tx, op, done.ID); err != nil {
			return err
		}
		if a.State != chat.AttachmentUploading {
			return newError(op, chat.CodeConflict, "the upload is already finished")
		}
		if done.State != chat.AttachmentReady && done.State != chat.AttachmentRejected {
			return newError(op, chat.CodeInvalidArgument, "an upload finishes ready or rejected")
		}
		_, err = tx.ExecContext(ctx, `UPDATE attachments SET state = ?, content_type = ?, size = ?, received = ?, parts = '[]',
			sha256 = ?, width = ?, height = ?, content_key = ?, duration_ms = ? WHERE id = ?`,
			string(done.State), done.ContentType, done.Size, done.Size, done.SHA256, done.Width, done.Height, done.ContentKey, done.DurationMS, string(done.ID))
		if err != nil {
			return err
		}
		a, err = getAttachment(ctx, tx, op, done.ID)
		return err
	})
	return a, err
}

// SetThumbnail implements chat.AttachmentStore.
func (s *Store) SetThumbnail(ctx context.Context, id chat.AttachmentID, key string) error {
	const op = "sqlite.SetThumbnail"
	res, err := s.w.ExecContext(ctx, `UPDATE attachments SET thumbnail_key = ?, thumbnail_failed_at = NULL, thumbnail_error = ''
		WHERE id = ? AND state = 'ready'`, key, string(id))
	if err != nil {
		return chat.Unavailable(op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return attachmentNotFound(op)
	}
	return nil
}

// SetThumbnailFailed implements chat.AttachmentStore.
func (s *Store) SetThumbnailFailed(ctx context.Context, id chat.AttachmentID, reason string, at time.Time) error {
	const op = "sqlite.SetThumbnailFailed"
	return s.inTx(ctx, op, "the attachment", func(tx *sql.Tx) error {
		a, err := getAttachment(ctx, tx, op, id)
		switch {
		case err != nil:
			return err
		case a.State != chat.AttachmentReady:
			return attachmentNotFound(op)
		case a.ThumbnailKey != "":
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE attachments SET thumbnail_failed_at = ?, thumbnail_error = ? WHERE id = ?`,
			ms(at), reason, string(id))
		return err
	})
}

// ClaimAttachments implements chat.AttachmentStore in one transaction.
func (s *Store) ClaimAttachments(ctx context.Context, conv chat.ConversationID, uploader chat.UserID, clientID string, msg chat.MessageID, ids []chat.AttachmentID) ([]chat.Attachment, error) {
	const op = "sqlite.ClaimAttachments"
	var out []chat.Attachment
	err := s.inTx(ctx, op, "the attachment", func(tx *sql.Tx) error {
		out = out[:0]
		var retried sql.NullInt64 // the stored message this send retries, if any
		if clientID != "" {
			err := tx.QueryRowContext(ctx, `SELECT id FROM messages WHERE conv_id = ? AND sender_id = ? AND client_id = ?`,
				int64(conv), int64(uploader), clientID).Scan(&retried)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		now := ms(s.now())
		for i, id := range ids {
			a, err := getAttachment(ctx, tx, op, id)
			if err != nil {
				return err
			}
			if err := chat.Claimable(op, a, conv, uploader); err != nil {
				return err
			}
			if a.Message != 0 && a.Message != msg {
				if retried.Valid && int64(a.Message) == retried.Int64 {
					out = append(out, a) // a retry: the stored message keeps it
					continue
				}
				var exists int
				err := tx.QueryRowContext(ctx, `SELECT 1 FROM messages WHERE id = ?`, int64(a.Message)).Scan(&exists)
				if err == nil {
					return newError(op, chat.CodeConflict, "an attachment was already sent with another message")
				}
				if !errors.Is(err, sql.ErrNoRows) {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE attachments SET msg_id = ?, idx = ?, claimed_at = ? WHERE id = ?`,
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

// ListMessageAttachments implements chat.AttachmentStore.
func (s *Store) ListMessageAttachments(ctx context.Context, msgs []chat.MessageID) (map[chat.MessageID][]chat.Attachment, error) {
	const op = "sqlite.ListMessageAttachments"
	if len(msgs) == 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+attachmentColumns+` FROM attachments
		WHERE msg_id IN (SELECT value FROM json_each(?)) AND state = 'ready' ORDER BY msg_id, idx`, idArray(msgs))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	list, err := collect(rows, scanAttachment)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	out := make(map[chat.MessageID][]chat.Attachment)
	for _, a := range list {
		out[a.Message] = append(out[a.Message], a)
	}
	return out, nil
}

// ReleaseMessageAttachments implements chat.AttachmentStore.
func (s *Store) ReleaseMessageAttachments(ctx context.Context, msg chat.MessageID) ([]chat.Attachment, error) {
	const op = "sqlite.ReleaseMessageAttachments"
	var out []chat.Attachment
	err := s.inTx(ctx, op, "the attachment", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE attachments SET state = 'deleted' WHERE msg_id = ? AND state = 'ready'
			RETURNING `+attachmentColumns, int64(msg))
		if err != nil {
			return err
		}
		out, err = collect(rows, scanAttachment)
		return err
	})
	return out, err
}

// ListGarbage implements chat.AttachmentStore.
func (s *Store) ListGarbage(ctx context.Context, cutoff time.Time, limit int) ([]chat.Attachment, error) {
	const op = "sqlite.ListGarbage"
	rows, err := s.r.QueryContext(ctx, `SELECT `+attachmentColumns+` FROM attachments a
		WHERE a.state IN ('deleted', 'rejected')
		   OR (coalesce(a.claimed_at, a.created_at) < ?1
		       AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = a.msg_id AND m.deleted_at IS NULL))
		ORDER BY a.created_at LIMIT ?2`, ms(cutoff), max(limit, 1))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	out, err := collect(rows, scanAttachment)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}

// ListMissingThumbnails implements chat.AttachmentStore.
func (s *Store) ListMissingThumbnails(ctx context.Context, limit int) ([]chat.Attachment, error) {
	const op = "sqlite.ListMissingThumbnails"
	rows, err := s.r.QueryContext(ctx, `SELECT `+attachmentColumns+` FROM attachments
		WHERE state = 'ready' AND thumbnail_key = '' AND thumbnail_failed_at IS NULL AND content_type LIKE 'image/%'
		ORDER BY created_at LIMIT ?`, max(limit, 1))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	out, err := collect(rows, scanAttachment)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}

// DeleteAttachment implements chat.AttachmentStore.
func (s *Store) DeleteAttachment(ctx context.Context, id chat.AttachmentID) error {
	const op = "sqlite.DeleteAttachment"
	if _, err := s.w.ExecContext(ctx, `DELETE FROM attachments WHERE id = ?`, string(id)); err != nil {
		return chat.Unavailable(op, err)
	}
	return nil
}
