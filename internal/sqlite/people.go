package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

var _ chat.PeopleStore = (*Store)(nil)

// profileColumns are the columns scanProfile reads: users aliased u,
// left-joined to profiles aliased p.
const profileColumns = `u.id, u.username, u.created_at, coalesce(p.display_name, ''), coalesce(p.status_text, ''),
	coalesce(p.avatar, ''), p.updated_at, p.deleted_at`

const profileFrom = ` FROM users u LEFT JOIN profiles p ON p.user_id = u.id`

func scanProfile(row scanner) (chat.Profile, error) {
	var p chat.Profile
	var created int64
	var updated, deleted sql.NullInt64
	if err := row.Scan(&p.User, &p.Username, &created, &p.DisplayName, &p.StatusText, &p.Avatar, &updated, &deleted); err != nil {
		return chat.Profile{}, err
	}
	p.CreatedAt, p.UpdatedAt, p.DeletedAt = fromMS(created), fromNullMS(updated), fromNullMS(deleted)
	if p.Deleted() {
		p.Username = ""
	}
	return p, nil
}

// GetProfile implements chat.PeopleStore.
func (s *Store) GetProfile(ctx context.Context, id chat.UserID) (chat.Profile, error) {
	return getProfile(ctx, s.r, "sqlite.GetProfile", id)
}

func getProfile(ctx context.Context, q querier, op string, id chat.UserID) (chat.Profile, error) {
	p, err := scanProfile(q.QueryRowContext(ctx, `SELECT `+profileColumns+profileFrom+` WHERE u.id = ?`, int64(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Profile{}, newError(op, chat.CodeNotFound, "user not found")
	}
	if err != nil {
		return chat.Profile{}, chat.Unavailable(op, err)
	}
	return p, nil
}

// ListProfiles implements chat.PeopleStore, ordered by id.
func (s *Store) ListProfiles(ctx context.Context, ids []chat.UserID) ([]chat.Profile, error) {
	const op = "sqlite.ListProfiles"
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := queryAll(ctx, s.r, `SELECT `+profileColumns+profileFrom+`
		WHERE u.id IN (SELECT value FROM json_each(?)) ORDER BY u.id`, []any{idArray(ids)}, scanProfile)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}

// UpdateProfile implements chat.PeopleStore.
func (s *Store) UpdateProfile(ctx context.Context, id chat.UserID, change chat.ProfileChange, at time.Time) (chat.Profile, error) {
	const op = "sqlite.UpdateProfile"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return chat.Profile{}, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	p, err := getProfile(ctx, tx, op, id)
	if err != nil {
		return chat.Profile{}, err
	}
	if p.Deleted() {
		return chat.Profile{}, newError(op, chat.CodeNotFound, "user not found")
	}
	if change.DisplayName != nil {
		p.DisplayName = *change.DisplayName
	}
	if change.StatusText != nil {
		p.StatusText = *change.StatusText
	}
	if change.Avatar != nil && *change.Avatar != "" {
		if err := ownAvatar(ctx, tx, op, id, *change.Avatar); err != nil {
			return chat.Profile{}, err
		}
	}
	if change.Avatar != nil {
		p.Avatar = *change.Avatar
	}
	p.UpdatedAt = fromMS(ms(at))
	if _, err := tx.ExecContext(ctx, `INSERT INTO profiles (user_id, display_name, name_key, status_text, avatar, updated_at)
		VALUES (?1, ?2, ?3, ?4, nullif(?5, ''), ?6)
		ON CONFLICT (user_id) DO UPDATE SET display_name = ?2, name_key = ?3, status_text = ?4, avatar = nullif(?5, ''), updated_at = ?6`,
		int64(id), p.DisplayName, chat.FoldName(p.DisplayName), p.StatusText, p.Avatar, ms(at)); err != nil {
		return chat.Profile{}, chat.Unavailable(op, err)
	}
	if err := tx.Commit(); err != nil {
		return chat.Profile{}, chat.Unavailable(op, err)
	}
	return p, nil
}

// SearchProfiles implements chat.PeopleStore with two range scans, of the
// username index and of the display-name index.
func (s *Store) SearchProfiles(ctx context.Context, prefix, after string, limit int) ([]chat.Profile, error) {
	const op = "sqlite.SearchProfiles"
	limit = min(max(limit, 1), chat.MaxPageSize)
	end := prefix + "\U0010FFFF"
	out, err := queryAll(ctx, s.r, `SELECT `+profileColumns+profileFrom+`
		WHERE u.username > ?1 AND p.deleted_at IS NULL
		AND ((u.username >= ?2 AND u.username < ?3) OR (p.name_key >= ?2 AND p.name_key < ?3))
		ORDER BY u.username LIMIT ?4`, []any{after, prefix, end, limit}, scanProfile)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}

// SetRelation implements chat.PeopleStore.
func (s *Store) SetRelation(ctx context.Context, owner, other chat.UserID, rel chat.Relation, on bool, at time.Time) (bool, error) {
	const op = "sqlite.SetRelation"
	var res sql.Result
	var err error
	if on {
		res, err = s.w.ExecContext(ctx, `INSERT INTO relations (owner_id, kind, other_id, created_at)
			SELECT ?1, ?2, u.id, ?4 FROM users u LEFT JOIN profiles p ON p.user_id = u.id
			WHERE u.id = ?3 AND p.deleted_at IS NULL
			ON CONFLICT DO NOTHING`, int64(owner), string(rel), int64(other), ms(at))
	} else {
		res, err = s.w.ExecContext(ctx, `DELETE FROM relations WHERE owner_id = ? AND kind = ? AND other_id = ?`,
			int64(owner), string(rel), int64(other))
	}
	if err != nil {
		return false, classify(op, "the relation", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, chat.Unavailable(op, err)
	}
	if n == 0 && on {
		// Nothing inserted: already marked, or no such live user.
		var live bool
		err := s.w.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users u LEFT JOIN profiles p ON p.user_id = u.id
			WHERE u.id = ? AND p.deleted_at IS NULL)`, int64(other)).Scan(&live)
		if err != nil {
			return false, chat.Unavailable(op, err)
		}
		if !live {
			return false, newError(op, chat.CodeNotFound, "user not found")
		}
	}
	return n > 0, nil
}

// ListRelations implements chat.PeopleStore.
func (s *Store) ListRelations(ctx context.Context, owner chat.UserID, rel chat.Relation, limit int) ([]chat.Related, error) {
	const op = "sqlite.ListRelations"
	out, err := queryAll(ctx, s.r, `SELECT `+profileColumns+`, r.created_at FROM relations r
		JOIN users u ON u.id = r.other_id LEFT JOIN profiles p ON p.user_id = u.id
		WHERE r.owner_id = ? AND r.kind = ? ORDER BY r.created_at, r.other_id LIMIT ?`,
		[]any{int64(owner), string(rel), max(limit, 1)}, func(row scanner) (chat.Related, error) {
			var r chat.Related
			var created int64
			var since int64
			var updated, deleted sql.NullInt64
			p := &r.Profile
			if err := row.Scan(&p.User, &p.Username, &created, &p.DisplayName, &p.StatusText, &p.Avatar, &updated, &deleted, &since); err != nil {
				return r, err
			}
			p.CreatedAt, p.UpdatedAt, p.DeletedAt, r.Since = fromMS(created), fromNullMS(updated), fromNullMS(deleted), fromMS(since)
			return r, nil
		})
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}

// CountRelations implements chat.PeopleStore.
func (s *Store) CountRelations(ctx context.Context, owner chat.UserID, rel chat.Relation) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM relations WHERE owner_id = ? AND kind = ?`, int64(owner), string(rel)).Scan(&n)
	if err != nil {
		return 0, chat.Unavailable("sqlite.CountRelations", err)
	}
	return n, nil
}

// Blocked implements chat.PeopleStore.
func (s *Store) Blocked(ctx context.Context, blocker, user chat.UserID) (bool, error) {
	var b bool
	err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM relations WHERE owner_id = ? AND kind = 'block' AND other_id = ?)`,
		int64(blocker), int64(user)).Scan(&b)
	if err != nil {
		return false, chat.Unavailable("sqlite.Blocked", err)
	}
	return b, nil
}

// GetDirectPeer implements chat.PeopleStore in one statement.
func (s *Store) GetDirectPeer(ctx context.Context, conv chat.ConversationID, sender chat.UserID) (chat.DirectPeer, error) {
	const op = "sqlite.GetDirectPeer"
	var kind string
	var peer sql.NullInt64
	var blocked bool
	err := s.r.QueryRowContext(ctx, `SELECT c.kind, m.user_id, m.user_id IS NOT NULL AND EXISTS (SELECT 1 FROM relations r
			WHERE r.owner_id = m.user_id AND r.kind = 'block' AND r.other_id = ?2)
		FROM conversations c LEFT JOIN members m ON c.kind = 'direct' AND m.conv_id = c.id AND m.user_id <> ?2
		WHERE c.id = ?1 LIMIT 1`, int64(conv), int64(sender)).Scan(&kind, &peer, &blocked)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.DirectPeer{}, newError(op, chat.CodeNotFound, "conversation not found")
	}
	if err != nil {
		return chat.DirectPeer{}, chat.Unavailable(op, err)
	}
	if chat.Kind(kind) != chat.KindDirect {
		return chat.DirectPeer{}, nil
	}
	return chat.DirectPeer{Direct: true, Peer: chat.UserID(peer.Int64), Blocked: blocked}, nil
}

// DeleteAccount implements chat.PeopleStore.
func (s *Store) DeleteAccount(ctx context.Context, user chat.UserID, passwordHash string, at time.Time) (chat.DeletedAccount, error) {
	const op = "sqlite.DeleteAccount"
	var done chat.DeletedAccount
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return done, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	p, err := getProfile(ctx, tx, op, user)
	if err != nil || p.Deleted() {
		return done, err
	}
	revoked, err := queryAll(ctx, tx, `UPDATE sessions SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL RETURNING id`,
		[]any{ms(at), int64(user)}, func(row scanner) (id chat.SessionID, err error) { return id, row.Scan(&id) })
	if err != nil {
		return done, chat.Unavailable(op, err)
	}
	// Others' marks of the user go first, so that their owners can be told.
	unmarked, err := queryAll(ctx, tx, `DELETE FROM relations WHERE other_id = ? RETURNING owner_id, kind`,
		[]any{int64(user)}, func(row scanner) (m chat.Mark, err error) { return m, row.Scan(&m.Owner, &m.Rel) })
	if err != nil {
		return done, chat.Unavailable(op, err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE users SET username = ?, password_hash = ? WHERE id = ?`, []any{chat.DeletedUsername(user), passwordHash, int64(user)}},
		{`INSERT INTO profiles (user_id, updated_at, deleted_at) VALUES (?1, ?2, ?2)
			ON CONFLICT (user_id) DO UPDATE SET display_name = '', name_key = '', status_text = '', avatar = NULL, updated_at = ?2, deleted_at = ?2`,
			[]any{int64(user), ms(at)}},
		{`DELETE FROM relations WHERE owner_id = ?`, []any{int64(user)}},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return done, chat.Unavailable(op, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return done, chat.Unavailable(op, err)
	}
	return chat.DeletedAccount{Revoked: revoked, Unmarked: unmarked}, nil
}

// ownAvatar fails not_found unless id is user's stored avatar. It runs in
// the write transaction that sets the profile, so that no avatar change
// can come in between.
func ownAvatar(ctx context.Context, tx *sql.Tx, op string, user chat.UserID, id string) error {
	var ok bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM avatars WHERE user_id = ? AND id = ?)`, int64(user), id).Scan(&ok); err != nil {
		return chat.Unavailable(op, err)
	}
	if !ok {
		return newError(op, chat.CodeNotFound, "avatar must be the id of the avatar you uploaded (POST /v1/users/me/avatar)")
	}
	return nil
}
