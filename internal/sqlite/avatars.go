package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

var (
	_ chat.AvatarStore     = (*Store)(nil)
	_ chat.UserAttachments = (*Store)(nil)
)

const avatarColumns = `id, user_id, content_type, size, sha256, side, content_key,
	thumbnail_key, thumbnail_size, thumbnail_sha256, created_at`

func scanAvatar(row scanner) (chat.Avatar, error) {
	var a chat.Avatar
	var created int64
	err := row.Scan(&a.ID, &a.User, &a.ContentType, &a.Size, &a.SHA256, &a.Side, &a.ContentKey,
		&a.ThumbnailKey, &a.ThumbnailSize, &a.ThumbnailSHA256, &created)
	a.CreatedAt = fromMS(created)
	return a, err
}

func getAvatar(ctx context.Context, q querier, op string, user chat.UserID) (chat.Avatar, error) {
	a, err := scanAvatar(q.QueryRowContext(ctx, `SELECT `+avatarColumns+` FROM avatars WHERE user_id = ?`, int64(user)))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Avatar{}, newError(op, chat.CodeNotFound, "this user has no avatar")
	}
	if err != nil {
		return chat.Avatar{}, chat.Unavailable(op, err)
	}
	return a, nil
}

// PutAvatar implements chat.AvatarStore: the avatar row and the
// profile's avatar change in one transaction (the store's one writer
// makes puts and deletes take turns).
func (s *Store) PutAvatar(ctx context.Context, a chat.Avatar) (chat.AvatarChange, error) {
	const op = "sqlite.PutAvatar"
	var ch chat.AvatarChange
	err := s.inTx(ctx, op, "the avatar", func(tx *sql.Tx) error {
		p, err := getProfile(ctx, tx, op, a.User)
		if err != nil {
			return err
		}
		if p.Deleted() {
			return newError(op, chat.CodeNotFound, "user not found")
		}
		prev, err := getAvatar(ctx, tx, op, a.User)
		switch {
		case err == nil:
			ch.Old = &prev
		case !chat.IsCode(err, chat.CodeNotFound):
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO avatars (`+avatarColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (user_id) DO UPDATE SET id = excluded.id, content_type = excluded.content_type, size = excluded.size,
				sha256 = excluded.sha256, side = excluded.side, content_key = excluded.content_key,
				thumbnail_key = excluded.thumbnail_key, thumbnail_size = excluded.thumbnail_size,
				thumbnail_sha256 = excluded.thumbnail_sha256, created_at = excluded.created_at`,
			a.ID, int64(a.User), a.ContentType, a.Size, a.SHA256, a.Side, a.ContentKey,
			a.ThumbnailKey, a.ThumbnailSize, a.ThumbnailSHA256, ms(a.CreatedAt))
		if err != nil {
			return err
		}
		if err := wearAvatar(ctx, tx, a.User, a.ID, a.CreatedAt); err != nil {
			return err
		}
		p.Avatar, p.UpdatedAt = a.ID, fromMS(ms(a.CreatedAt))
		ch.Profile, ch.ProfileChanged = p, true
		return nil
	})
	if err != nil {
		return chat.AvatarChange{}, err
	}
	return ch, nil
}

// wearAvatar sets the avatar user's profile wears ("" for none), creating
// the profile row if the user never changed their profile.
func wearAvatar(ctx context.Context, tx *sql.Tx, user chat.UserID, id string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO profiles (user_id, avatar, updated_at) VALUES (?1, nullif(?2, ''), ?3)
		ON CONFLICT (user_id) DO UPDATE SET avatar = nullif(?2, ''), updated_at = ?3`, int64(user), id, ms(at))
	return err
}

// GetAvatar implements chat.AvatarStore.
func (s *Store) GetAvatar(ctx context.Context, user chat.UserID) (chat.Avatar, error) {
	return getAvatar(ctx, s.r, "sqlite.GetAvatar", user)
}

// DeleteAvatar implements chat.AvatarStore in one transaction.
func (s *Store) DeleteAvatar(ctx context.Context, user chat.UserID, at time.Time) (chat.AvatarChange, error) {
	const op = "sqlite.DeleteAvatar"
	var ch chat.AvatarChange
	err := s.inTx(ctx, op, "the avatar", func(tx *sql.Tx) error {
		p, err := getProfile(ctx, tx, op, user)
		if err != nil {
			return err
		}
		old, err := scanAvatar(tx.QueryRowContext(ctx, `DELETE FROM avatars WHERE user_id = ? RETURNING `+avatarColumns, int64(user)))
		switch {
		case err == nil:
			ch.Old = &old
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if p.Avatar != "" && !p.Deleted() {
			if err := wearAvatar(ctx, tx, user, "", at); err != nil {
				return err
			}
			p.Avatar, p.UpdatedAt = "", fromMS(ms(at))
			ch.ProfileChanged = true
		}
		ch.Profile = p
		return nil
	})
	if err != nil {
		return chat.AvatarChange{}, err
	}
	return ch, nil
}

// ListUserAttachments implements chat.UserAttachments.
func (s *Store) ListUserAttachments(ctx context.Context, user chat.UserID, after chat.AttachmentID, limit int) ([]chat.Attachment, error) {
	const op = "sqlite.ListUserAttachments"
	rows, err := s.r.QueryContext(ctx, `SELECT `+attachmentColumns+` FROM attachments a
		WHERE a.uploader_id = ?1 AND a.id > ?2 AND a.state = 'ready'
		  AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = a.msg_id AND m.deleted_at IS NOT NULL)
		ORDER BY a.id LIMIT ?3`, int64(user), string(after), min(max(limit, 1), chat.MaxPageSize))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	out, err := collect(rows, scanAttachment)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}

// ReleaseUserAttachments implements chat.UserAttachments.
func (s *Store) ReleaseUserAttachments(ctx context.Context, user chat.UserID) (int, error) {
	const op = "sqlite.ReleaseUserAttachments"
	res, err := s.w.ExecContext(ctx, `UPDATE attachments SET state = 'deleted'
		WHERE uploader_id = ? AND state IN ('uploading', 'ready')
		  AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = attachments.msg_id AND m.deleted_at IS NULL)`, int64(user))
	if err != nil {
		return 0, chat.Unavailable(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, chat.Unavailable(op, err)
	}
	return int(n), nil
}
