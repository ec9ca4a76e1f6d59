package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/internal/chat"
)

var (
	_ chat.AvatarStore     = (*Store)(nil)
	_ chat.UserAttachments = (*Store)(nil)
)

const avatarColumns = `id, user_id, content_type, size, sha256, side, content_key,
	thumbnail_key, thumbnail_size, thumbnail_sha256, created_at`

func scanAvatar(row pgx.Row) (chat.Avatar, error) {
	var a chat.Avatar
	err := row.Scan(&a.ID, &a.User, &a.ContentType, &a.Size, &a.SHA256, &a.Side, &a.ContentKey,
		&a.ThumbnailKey, &a.ThumbnailSize, &a.ThumbnailSHA256, &a.CreatedAt)
	a.CreatedAt = a.CreatedAt.UTC()
	return a, err
}

func noAvatar(op string) error { return newError(op, chat.CodeNotFound, "this user has no avatar") }

// PutAvatar implements chat.AvatarStore: the avatar row and the
// profile's avatar change in one transaction, under the lock of the
// user's row that every profile write takes (see lockProfile).
func (s *Store) PutAvatar(ctx context.Context, a chat.Avatar) (chat.AvatarChange, error) {
	const op = "postgres.PutAvatar"
	var ch chat.AvatarChange
	err := s.write(ctx, op, "the avatar", func(tx pgx.Tx) error {
		ch = chat.AvatarChange{}
		p, err := lockProfile(ctx, tx, op, a.User)
		if err != nil {
			return err
		}
		if p.Deleted() {
			return newError(op, chat.CodeNotFound, "user not found")
		}
		prev, err := scanAvatar(tx.QueryRow(ctx, `SELECT `+avatarColumns+` FROM avatars WHERE user_id = $1 FOR UPDATE`, int64(a.User)))
		switch {
		case err == nil:
			ch.Old = &prev
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO avatars (`+avatarColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
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
		p.Avatar, p.UpdatedAt = a.ID, ms(a.CreatedAt)
		ch.Profile, ch.ProfileChanged = p, true
		return nil
	})
	if err != nil {
		return chat.AvatarChange{}, err
	}
	return ch, nil
}

// lockProfile locks user's row, as UpdateProfile does, so that writes of
// one profile take turns, and then reads the profile in a statement of its
// own: it sees what the previous holder of the lock committed.
func lockProfile(ctx context.Context, tx pgx.Tx, op string, user chat.UserID) (chat.Profile, error) {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, int64(user)).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Profile{}, newError(op, chat.CodeNotFound, "user not found")
	}
	if err != nil {
		return chat.Profile{}, err
	}
	return getProfile(ctx, tx, op, user, "")
}

// wearAvatar sets the avatar user's profile wears ("" for none), creating
// the profile row if the user never changed their profile.
func wearAvatar(ctx context.Context, tx pgx.Tx, user chat.UserID, id string, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO profiles (user_id, avatar, updated_at) VALUES ($1, nullif($2, ''), $3)
		ON CONFLICT (user_id) DO UPDATE SET avatar = excluded.avatar, updated_at = excluded.updated_at`, int64(user), id, ms(at))
	return err
}

// GetAvatar implements chat.AvatarStore.
func (s *Store) GetAvatar(ctx context.Context, user chat.UserID) (chat.Avatar, error) {
	const op = "postgres.GetAvatar"
	a, err := scanAvatar(s.pool.QueryRow(ctx, `SELECT `+avatarColumns+` FROM avatars WHERE user_id = $1`, int64(user)))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Avatar{}, noAvatar(op)
	}
	if err != nil {
		return chat.Avatar{}, classify(op, "the avatar", err)
	}
	return a, nil
}

// DeleteAvatar implements chat.AvatarStore in one transaction, under the
// lock of the user's row (see lockProfile).
func (s *Store) DeleteAvatar(ctx context.Context, user chat.UserID, at time.Time) (chat.AvatarChange, error) {
	const op = "postgres.DeleteAvatar"
	var ch chat.AvatarChange
	err := s.write(ctx, op, "the avatar", func(tx pgx.Tx) error {
		ch = chat.AvatarChange{}
		p, err := lockProfile(ctx, tx, op, user)
		if err != nil {
			return err
		}
		old, err := scanAvatar(tx.QueryRow(ctx, `DELETE FROM avatars WHERE user_id = $1 RETURNING `+avatarColumns, int64(user)))
		switch {
		case err == nil:
			ch.Old = &old
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if p.Avatar != "" && !p.Deleted() {
			if err := wearAvatar(ctx, tx, user, "", at); err != nil {
				return err
			}
			p.Avatar, p.UpdatedAt = "", ms(at)
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
	const op = "postgres.ListUserAttachments"
	return s.queryAttachments(ctx, op, `SELECT `+attachmentColumns+` FROM attachments a
		WHERE a.uploader_id = $1 AND a.id > $2 AND a.state = 'ready'
		  AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = a.msg_id AND m.deleted_at IS NOT NULL)
		ORDER BY a.id LIMIT $3`, int64(user), string(after), min(max(limit, 1), chat.MaxPageSize))
}

// ReleaseUserAttachments implements chat.UserAttachments.
func (s *Store) ReleaseUserAttachments(ctx context.Context, user chat.UserID) (int, error) {
	const op = "postgres.ReleaseUserAttachments"
	tag, err := s.pool.Exec(ctx, `UPDATE attachments a SET state = 'deleted'
		WHERE a.uploader_id = $1 AND a.state IN ('uploading', 'ready')
		  AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = a.msg_id AND m.deleted_at IS NULL)`, int64(user))
	if err != nil {
		return 0, classify(op, "the attachment", err)
	}
	return int(tag.RowsAffected()), nil
}
