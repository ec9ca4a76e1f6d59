package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/internal/chat"
)

var _ chat.PeopleStore = (*Store)(nil)

// profileColumns are the columns scanProfile reads: users aliased u,
// left-joined to profiles aliased p.
const profileColumns = `u.id, u.username, u.created_at, coalesce(p.display_name, ''), coalesce(p.status_text, ''),
	coalesce(p.avatar, ''), p.updated_at, p.deleted_at`

const profileFrom = ` FROM users u LEFT JOIN profiles p ON p.user_id = u.id`

func scanProfile(row pgx.Row, extra ...any) (chat.Profile, error) {
	var p chat.Profile
	var updated, deleted *time.Time
	dest := append([]any{&p.User, &p.Username, &p.CreatedAt, &p.DisplayName, &p.StatusText, &p.Avatar, &updated, &deleted}, extra...)
	if err := row.Scan(dest...); err != nil {
		return chat.Profile{}, err
	}
	p.CreatedAt, p.UpdatedAt, p.DeletedAt = p.CreatedAt.UTC(), fromNull(updated), fromNull(deleted)
	if p.Deleted() {
		p.Username = ""
	}
	return p, nil
}

func scanProfileRow(row pgx.Row) (chat.Profile, error) { return scanProfile(row) }

// GetProfile implements chat.PeopleStore.
func (s *Store) GetProfile(ctx context.Context, id chat.UserID) (chat.Profile, error) {
	return getProfile(ctx, s.pool, "postgres.GetProfile", id, "")
}

// getProfile reads a profile; lock, if not empty, is a locking clause.
func getProfile(ctx context.Context, q querier, op string, id chat.UserID, lock string) (chat.Profile, error) {
	p, err := scanProfile(q.QueryRow(ctx, `SELECT `+profileColumns+profileFrom+` WHERE u.id = $1`+lock, int64(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Profile{}, newError(op, chat.CodeNotFound, "user not found")
	}
	if err != nil {
		return chat.Profile{}, chat.Unavailable(op, err)
	}
	return p, nil
}

// ListProfiles implements chat.PeopleStore, ordered by id.
func (s *Store) ListProfiles(ctx context.Context, ids []chat.UserID) ([]chat.Profile, error) {
	const op = "postgres.ListProfiles"
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+profileColumns+profileFrom+` WHERE u.id = ANY($1) ORDER BY u.id`, int64s(ids))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	out, err := collect(rows, scanProfileRow)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}

// UpdateProfile implements chat.PeopleStore. The users row is locked so
// that an update cannot race an account deletion.
func (s *Store) UpdateProfile(ctx context.Context, id chat.UserID, change chat.ProfileChange, at time.Time) (chat.Profile, error) {
	const op = "postgres.UpdateProfile"
	var p chat.Profile
	err := s.write(ctx, op, "the profile", func(tx pgx.Tx) error {
		var err error
		if p, err = lockProfile(ctx, tx, op, id); err != nil {
			return err
		}
		if p.Deleted() {
			return newError(op, chat.CodeNotFound, "user not found")
		}
		if change.DisplayName != nil {
			p.DisplayName = *change.DisplayName
		}
		if change.StatusText != nil {
			p.StatusText = *change.StatusText
		}
		if change.Avatar != nil && *change.Avatar != "" {
			// Checked here, under the user's row lock that PutAvatar and
			// DeleteAvatar take too: a check before the transaction could
			// pass for an avatar another node replaces meanwhile.
			var ok bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM avatars WHERE user_id = $1 AND id = $2)`, int64(id), *change.Avatar).Scan(&ok); err != nil {
				return err
			}
			if !ok {
				return newError(op, chat.CodeNotFound, "avatar must be the id of the avatar you uploaded (POST /v1/users/me/avatar)")
			}
		}
		if change.Avatar != nil {
			p.Avatar = *change.Avatar
		}
		p.UpdatedAt = ms(at)
		_, err = tx.Exec(ctx, `INSERT INTO profiles (user_id, display_name, name_key, status_text, avatar, updated_at)
			VALUES ($1, $2, $3, $4, nullif($5, ''), $6)
			ON CONFLICT (user_id) DO UPDATE SET display_name = $2, name_key = $3, status_text = $4, avatar = nullif($5, ''), updated_at = $6`,
			int64(id), p.DisplayName, chat.FoldName(p.DisplayName), p.StatusText, p.Avatar, p.UpdatedAt)
		return err
	})
	if err != nil {
		return chat.Profile{}, err
	}
	return p, nil
}

// SearchProfiles implements chat.PeopleStore with range scans of the
// username and display-name indexes (both byte-ordered, COLLATE "C").
func (s *Store) SearchProfiles(ctx context.Context, prefix, after string, limit int) ([]chat.Profile, error) {
	const op = "postgres.SearchProfiles"
	limit = min(max(limit, 1), chat.MaxPageSize)
	rows, err := s.pool.Query(ctx, `SELECT `+profileColumns+profileFrom+`
		WHERE u.username > $1 AND p.deleted_at IS NULL
		AND ((u.username >= $2 AND u.username < $3) OR (p.name_key >= $2 AND p.name_key < $3))
		ORDER BY u.username LIMIT $4`, after, prefix, prefix+"\U0010FFFF", limit)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	out, err := collect(rows, scanProfileRow)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}

// liveUser is true for an existing account that was not deleted.
const liveUser = `EXISTS (SELECT 1 FROM users u LEFT JOIN profiles p ON p.user_id = u.id WHERE u.id = $1 AND p.deleted_at IS NULL)`

// SetRelation implements chat.PeopleStore.
func (s *Store) SetRelation(ctx context.Context, owner, other chat.UserID, rel chat.Relation, on bool, at time.Time) (bool, error) {
	const op = "postgres.SetRelation"
	if !on {
		tag, err := s.pool.Exec(ctx, `DELETE FROM relations WHERE owner_id = $1 AND kind = $2 AND other_id = $3`,
			int64(owner), string(rel), int64(other))
		if err != nil {
			return false, classify(op, "the relation", err)
		}
		return tag.RowsAffected() > 0, nil
	}
	var changed bool
	err := s.write(ctx, op, "the relation", func(tx pgx.Tx) error {
		var live bool
		// Share-lock the user so that a concurrent deletion either sees
		// this mark and removes it or makes this one fail.
		err := tx.QueryRow(ctx, `SELECT p.deleted_at IS NULL FROM users u LEFT JOIN profiles p ON p.user_id = u.id
			WHERE u.id = $1 FOR SHARE OF u`, int64(other)).Scan(&live)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && !live) {
			return newError(op, chat.CodeNotFound, "user not found")
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO relations (owner_id, kind, other_id, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, int64(owner), string(rel), int64(other), ms(at))
		changed = err == nil && tag.RowsAffected() > 0
		return err
	})
	return changed, err
}

// ListRelations implements chat.PeopleStore.
func (s *Store) ListRelations(ctx context.Context, owner chat.UserID, rel chat.Relation, limit int) ([]chat.Related, error) {
	const op = "postgres.ListRelations"
	rows, err := s.pool.Query(ctx, `SELECT `+profileColumns+`, r.created_at FROM relations r
		JOIN users u ON u.id = r.other_id LEFT JOIN profiles p ON p.user_id = u.id
		WHERE r.owner_id = $1 AND r.kind = $2 ORDER BY r.created_at, r.other_id LIMIT $3`,
		int64(owner), string(rel), max(limit, 1))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	out, err := collect(rows, func(row pgx.Row) (chat.Related, error) {
		var r chat.Related
		var err error
		r.Profile, err = scanProfile(row, &r.Since)
		r.Since = r.Since.UTC()
		return r, err
	})
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}

// CountRelations implements chat.PeopleStore.
func (s *Store) CountRelations(ctx context.Context, owner chat.UserID, rel chat.Relation) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM relations WHERE owner_id = $1 AND kind = $2`, int64(owner), string(rel)).Scan(&n)
	if err != nil {
		return 0, chat.Unavailable("postgres.CountRelations", err)
	}
	return n, nil
}

// Blocked implements chat.PeopleStore.
func (s *Store) Blocked(ctx context.Context, blocker, user chat.UserID) (bool, error) {
	var b bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM relations WHERE owner_id = $1 AND kind = 'block' AND other_id = $2)`,
		int64(blocker), int64(user)).Scan(&b)
	if err != nil {
		return false, chat.Unavailable("postgres.Blocked", err)
	}
	return b, nil
}

// GetDirectPeer implements chat.PeopleStore in one statement.
func (s *Store) GetDirectPeer(ctx context.Context, conv chat.ConversationID, sender chat.UserID) (chat.DirectPeer, error) {
	const op = "postgres.GetDirectPeer"
	var kind string
	var peer *int64
	var blocked bool
	err := s.pool.QueryRow(ctx, `SELECT c.kind, m.user_id, m.user_id IS NOT NULL AND EXISTS (SELECT 1 FROM relations r
			WHERE r.owner_id = m.user_id AND r.kind = 'block' AND r.other_id = $2)
		FROM conversations c LEFT JOIN members m ON c.kind = 'direct' AND m.conv_id = c.id AND m.user_id <> $2
		WHERE c.id = $1 LIMIT 1`, int64(conv), int64(sender)).Scan(&kind, &peer, &blocked)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.DirectPeer{}, newError(op, chat.CodeNotFound, "conversation not found")
	}
	if err != nil {
		return chat.DirectPeer{}, chat.Unavailable(op, err)
	}
	if chat.Kind(kind) != chat.KindDirect {
		return chat.DirectPeer{}, nil
	}
	d := chat.DirectPeer{Direct: true, Blocked: blocked}
	if peer != nil {
		d.Peer = chat.UserID(*peer)
	}
	return d, nil
}

// ListSentMessages implements chat.PeopleStore.
func (s *Store) ListSentMessages(ctx context.Context, sender chat.UserID, after chat.SentCursor, limit int) ([]chat.Message, error) {
	const op = "postgres.ListSentMessages"
	limit = min(max(limit, 1), chat.MaxPageSize)
	rows, err := s.pool.Query(ctx, `SELECT `+messageColumns+` FROM messages m`+withReactions+`
		WHERE m.sender_id = $1 AND (m.conv_id, m.seq) > ($2, $3) AND m.deleted_at IS NULL
		ORDER BY m.conv_id, m.seq LIMIT $4`, int64(sender), int64(after.Conv), after.Seq, limit)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	out, err := collect(rows, scanMessage)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}

// TombstoneSent implements chat.PeopleStore. The messages are locked
// first and the positions taken last (see takePositions).
func (s *Store) TombstoneSent(ctx context.Context, sender chat.UserID, at time.Time, limit int) ([]chat.Message, error) {
	const op = "postgres.TombstoneSent"
	limit = min(max(limit, 1), chat.MaxPageSize)
	var msgs []chat.Message
	err := s.write(ctx, op, "the messages", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+messageColumns+` FROM messages m`+withReactions+`
			WHERE m.sender_id = $1 AND m.deleted_at IS NULL ORDER BY m.conv_id, m.seq LIMIT $2 FOR NO KEY UPDATE OF m`,
			int64(sender), limit)
		if err != nil {
			return err
		}
		if msgs, err = collect(rows, scanMessage); err != nil || len(msgs) == 0 {
			return err
		}
		ids := make([]int64, len(msgs))
		for i, m := range msgs {
			ids[i] = int64(m.ID)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM reactions WHERE message_id = ANY($1)`, ids); err != nil {
			return err
		}
		first, err := takePositions(ctx, tx, len(msgs))
		if err != nil {
			return err
		}
		poss := make([]int64, len(msgs))
		for i := range msgs {
			m := &msgs[i]
			m.Text, m.Mentions, m.Reactions, m.DeletedAt, m.Pos = "", nil, nil, ms(at), first+int64(i)
			poss[i] = m.Pos
		}
		_, err = tx.Exec(ctx, `UPDATE messages SET text = '', mentions = NULL, deleted_at = $2, pos = v.pos
			FROM unnest($1::bigint[], $3::bigint[]) AS v (id, pos) WHERE messages.id = v.id`, ids, ms(at), poss)
		return err
	})
	if err != nil {
		return nil, err
	}
	return msgs, nil
}

// DeleteAccount implements chat.PeopleStore.
func (s *Store) DeleteAccount(ctx context.Context, user chat.UserID, passwordHash string, at time.Time) (chat.DeletedAccount, error) {
	const op = "postgres.DeleteAccount"
	var done chat.DeletedAccount
	err := s.write(ctx, op, "the account", func(tx pgx.Tx) error {
		done = chat.DeletedAccount{}
		p, err := lockProfile(ctx, tx, op, user)
		if err != nil || p.Deleted() {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL RETURNING id`, ms(at), int64(user))
		if err != nil {
			return err
		}
		if done.Revoked, err = pgx.CollectRows(rows, pgx.RowTo[chat.SessionID]); err != nil {
			return err
		}
		// Others' marks of the user go first, so that their owners can be
		// told.
		rows, err = tx.Query(ctx, `DELETE FROM relations WHERE other_id = $1 RETURNING owner_id, kind`, int64(user))
		if err != nil {
			return err
		}
		if done.Unmarked, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (m chat.Mark, err error) {
			return m, row.Scan(&m.Owner, &m.Rel)
		}); err != nil {
			return err
		}
		batch := &pgx.Batch{}
		batch.Queue(`UPDATE users SET username = $1, password_hash = $2 WHERE id = $3`, chat.DeletedUsername(user), passwordHash, int64(user))
		batch.Queue(`INSERT INTO profiles (user_id, updated_at, deleted_at) VALUES ($1, $2, $2)
			ON CONFLICT (user_id) DO UPDATE SET display_name = '', name_key = '', status_text = '', avatar = NULL, updated_at = $2, deleted_at = $2`,
			int64(user), ms(at))
		batch.Queue(`DELETE FROM relations WHERE owner_id = $1`, int64(user))
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		return chat.DeletedAccount{}, err
	}
	return done, nil
}
