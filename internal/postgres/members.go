package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/internal/chat"
)

const memberColumns = `conv_id, user_id, role, joined_at, read_seq, delivered_seq, pos`

// scanMember scans memberColumns.
func scanMember(row pgx.Row) (chat.Member, error) { return scanMemberWith(row) }

// scanMemberWith scans memberColumns, then the columns after them into
// extra.
func scanMemberWith(row pgx.Row, extra ...any) (chat.Member, error) {
	var m chat.Member
	dest := append([]any{&m.Conv, &m.User, &m.Role, &m.JoinedAt, &m.ReadSeq, &m.DeliveredSeq, &m.Pos}, extra...)
	if err := row.Scan(dest...); err != nil {
		return chat.Member{}, err
	}
	m.JoinedAt = m.JoinedAt.UTC()
	return m, nil
}

// insertMembers inserts members, who must not be members of conv yet, into
// conv within tx, with positions first, first+1, ... in order, and returns
// them as stored (Conv set, watermarks 0).
func insertMembers(ctx context.Context, tx pgx.Tx, conv chat.ConversationID, members []chat.Member, first int64) ([]chat.Member, error) {
	users := make([]int64, len(members))
	roles := make([]string, len(members))
	joined := make([]time.Time, len(members))
	out := make([]chat.Member, len(members))
	for i, m := range members {
		users[i], roles[i], joined[i] = int64(m.User), string(m.Role), ms(m.JoinedAt)
		out[i] = chat.Member{Conv: conv, User: m.User, Role: m.Role, JoinedAt: joined[i], Pos: first + int64(i)}
	}
	_, err := tx.Exec(ctx, `INSERT INTO members (conv_id, user_id, role, joined_at, read_seq, delivered_seq, pos)
		SELECT $1, v.user_id, v.role, v.joined_at, 0, 0, $5 + v.n - 1
		FROM unnest($2::bigint[], $3::text[], $4::timestamptz[]) WITH ORDINALITY AS v(user_id, role, joined_at, n)`,
		int64(conv), users, roles, joined, first)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetMember returns user's membership of conv, or CodeNotFound.
func (s *Store) GetMember(ctx context.Context, conv chat.ConversationID, user chat.UserID) (chat.Member, error) {
	const op = "postgres.GetMember"
	m, err := scanMember(s.pool.QueryRow(ctx, `SELECT `+memberColumns+` FROM members WHERE conv_id = $1 AND user_id = $2`,
		int64(conv), int64(user)))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Member{}, newError(op, chat.CodeNotFound, "not a member of the conversation")
	}
	if err != nil {
		return chat.Member{}, classify(op, "the member", err)
	}
	return m, nil
}

// ListMembers returns conv's members ordered by join time then user id;
// none for an unknown conversation.
func (s *Store) ListMembers(ctx context.Context, conv chat.ConversationID) ([]chat.Member, error) {
	const op = "postgres.ListMembers"
	rows, err := s.pool.Query(ctx, `SELECT `+memberColumns+` FROM members WHERE conv_id = $1 ORDER BY joined_at, user_id`, int64(conv))
	if err != nil {
		return nil, classify(op, "the members", err)
	}
	members, err := collect(rows, scanMember)
	if err != nil {
		return nil, classify(op, "the members", err)
	}
	return members, nil
}

// AddMembers implements chat.Store under the conversation's row lock: each
// member added takes the next change position, in order, and drops the
// user's member_left record of conv; a user listed twice is added once. An
// unknown conversation gives CodeNotFound, and so does a member that is no
// user.
func (s *Store) AddMembers(ctx context.Context, conv chat.ConversationID, members []chat.Member) ([]chat.Member, error) {
	const op = "postgres.AddMembers"
	var added []chat.Member
	err := s.write(ctx, op, "the member", func(tx pgx.Tx) error {
		added = nil
		if _, err := lockConversation(ctx, tx, conv); errors.Is(err, pgx.ErrNoRows) {
			return newError(op, chat.CodeNotFound, "conversation not found")
		} else if err != nil {
			return err
		}
		candidates := distinctMembers(members)
		rows, err := tx.Query(ctx, `SELECT user_id FROM members WHERE conv_id = $1 AND user_id = ANY($2)`,
			int64(conv), int64s(userIDs(candidates)))
		if err != nil {
			return err
		}
		already, err := pgx.CollectRows(rows, pgx.RowTo[chat.UserID])
		if err != nil {
			return err
		}
		var fresh []chat.Member
		for _, m := range candidates {
			if !contains(already, m.User) {
				fresh = append(fresh, m)
			}
		}
		if len(fresh) == 0 {
			return errUnchanged
		}
		first, err := takePositions(ctx, tx, len(fresh))
		if err != nil {
			return err
		}
		if added, err = insertMembers(ctx, tx, conv, fresh, first); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM departed_members WHERE conv_id = $1 AND user_id = ANY($2)`,
			int64(conv), int64s(userIDs(fresh)))
		return err
	})
	if err != nil {
		return nil, err
	}
	return added, nil
}

// userIDs returns the users of members.
func userIDs(members []chat.Member) []chat.UserID {
	out := make([]chat.UserID, len(members))
	for i, m := range members {
		out[i] = m.User
	}
	return out
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// RemoveMember removes user from conv in one transaction under the
// conversation's row lock, promoting a new owner when the last one leaves;
// CodeNotFound if not a member. The membership's last state is kept as its
// member_left record (left at Options.Now), which takes the next change
// position; a promoted member takes the one after.
func (s *Store) RemoveMember(ctx context.Context, conv chat.ConversationID, user chat.UserID) ([]chat.Member, error) {
	const op = "postgres.RemoveMember"
	notMember := newError(op, chat.CodeNotFound, "not a member of the conversation")
	var promoted []chat.Member
	err := s.write(ctx, op, "the member", func(tx pgx.Tx) error {
		promoted = nil
		if _, err := lockConversation(ctx, tx, conv); errors.Is(err, pgx.ErrNoRows) {
			return notMember
		} else if err != nil {
			return err
		}
		gone, err := scanMember(tx.QueryRow(ctx, `DELETE FROM members WHERE conv_id = $1 AND user_id = $2 RETURNING `+memberColumns,
			int64(conv), int64(user)))
		if errors.Is(err, pgx.ErrNoRows) {
			return notMember
		} else if err != nil {
			return err
		}
		// The longest-standing admin, else member, if no owner is left;
		// locked now, as the positions must be the last lock taken.
		heir, err := scanMember(tx.QueryRow(ctx, `SELECT `+memberColumns+` FROM members
			WHERE conv_id = $1 AND NOT EXISTS (SELECT 1 FROM members o WHERE o.conv_id = $1 AND o.role = 'owner')
			ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, joined_at, user_id LIMIT 1
			FOR NO KEY UPDATE`, int64(conv)))
		promote := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		n := 1
		if promote {
			n = 2
		}
		first, err := takePositions(ctx, tx, n)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO departed_members (conv_id, user_id, role, joined_at, read_seq, delivered_seq, left_at, pos)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (conv_id, user_id) DO UPDATE SET role = excluded.role, joined_at = excluded.joined_at,
				read_seq = excluded.read_seq, delivered_seq = excluded.delivered_seq, left_at = excluded.left_at, pos = excluded.pos`,
			int64(conv), int64(user), string(gone.Role), gone.JoinedAt, gone.ReadSeq, gone.DeliveredSeq, ms(s.now()), first); err != nil {
			return err
		}
		if !promote {
			return nil
		}
		heir.Role, heir.Pos = chat.RoleOwner, first+1
		promoted = []chat.Member{heir}
		_, err = tx.Exec(ctx, `UPDATE members SET role = 'owner', pos = $3 WHERE conv_id = $1 AND user_id = $2`,
			int64(conv), int64(heir.User), heir.Pos)
		return err
	})
	if err != nil {
		return nil, err
	}
	return promoted, nil
}

// UpdateMemberRole implements chat.Store under the conversation's row
// lock, so two nodes demoting the last two owners at once cannot leave the
// conversation without one. Setting the role a member already has changes
// nothing and takes no change position. An invalid role gives
// CodeInvalidArgument.
func (s *Store) UpdateMemberRole(ctx context.Context, conv chat.ConversationID, user chat.UserID, role chat.Role) (chat.Member, error) {
	const op = "postgres.UpdateMemberRole"
	notMember := newError(op, chat.CodeNotFound, "not a member of the conversation")
	var m chat.Member
	err := s.write(ctx, op, "the member", func(tx pgx.Tx) error {
		if _, err := lockConversation(ctx, tx, conv); errors.Is(err, pgx.ErrNoRows) {
			return notMember
		} else if err != nil {
			return err
		}
		var err error
		m, err = scanMember(tx.QueryRow(ctx, `SELECT `+memberColumns+` FROM members WHERE conv_id = $1 AND user_id = $2 FOR NO KEY UPDATE`,
			int64(conv), int64(user)))
		if errors.Is(err, pgx.ErrNoRows) {
			return notMember
		} else if err != nil {
			return err
		}
		if m.Role == role {
			return errUnchanged
		}
		if m.Role == chat.RoleOwner {
			var others int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM members WHERE conv_id = $1 AND role = 'owner' AND user_id <> $2`,
				int64(conv), int64(user)).Scan(&others); err != nil {
				return err
			}
			if others == 0 {
				return newError(op, chat.CodeConflict, "the conversation's last owner cannot be demoted")
			}
		}
		pos, err := takePositions(ctx, tx, 1)
		if err != nil {
			return err
		}
		m.Role, m.Pos = role, pos
		_, err = tx.Exec(ctx, `UPDATE members SET role = $3, pos = $4 WHERE conv_id = $1 AND user_id = $2`,
			int64(conv), int64(user), string(role), pos)
		return err
	})
	if err != nil {
		return chat.Member{}, err
	}
	return m, nil
}
