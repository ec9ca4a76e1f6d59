package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/natter-chat/natter/internal/chat"
)

const memberColumns = `conv_id, user_id, role, joined_at, read_seq, delivered_seq, pos`

// scanMember scans memberColumns.
func scanMember(row scanner) (chat.Member, error) { return scanMemberWith(row) }

// scanMemberWith scans memberColumns, then the columns after them into
// extra.
func scanMemberWith(row scanner, extra ...any) (chat.Member, error) {
	var m chat.Member
	var joined int64
	dest := append([]any{&m.Conv, &m.User, &m.Role, &joined, &m.ReadSeq, &m.DeliveredSeq, &m.Pos}, extra...)
	if err := row.Scan(dest...); err != nil {
		return chat.Member{}, err
	}
	m.JoinedAt = fromMS(joined)
	return m, nil
}

// insertMembers inserts members into conv within tx, skipping users who are
// members already, and returns those it inserted (Conv set, watermarks 0),
// each with the next position of pos.
func insertMembers(ctx context.Context, tx *sql.Tx, op string, pos *counter, conv chat.ConversationID, members []chat.Member) ([]chat.Member, error) {
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO members (conv_id, user_id, role, joined_at, read_seq, delivered_seq, pos)
		VALUES (?, ?, ?, ?, 0, 0, ?) ON CONFLICT (conv_id, user_id) DO NOTHING`)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer stmt.Close()
	var added []chat.Member
	for _, m := range members {
		res, err := stmt.ExecContext(ctx, int64(conv), int64(m.User), string(m.Role), ms(m.JoinedAt), pos.peek())
		if err != nil {
			return nil, classify(op, "the member", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, chat.Unavailable(op, err)
		}
		if n > 0 {
			added = append(added, chat.Member{Conv: conv, User: m.User, Role: m.Role, JoinedAt: fromMS(ms(m.JoinedAt)), Pos: pos.take()})
		}
	}
	return added, nil
}

// GetMember returns user's membership of conv, or CodeNotFound.
func (s *Store) GetMember(ctx context.Context, conv chat.ConversationID, user chat.UserID) (chat.Member, error) {
	const op = "sqlite.GetMember"
	m, err := scanMember(s.r.QueryRowContext(ctx, `SELECT `+memberColumns+` FROM members WHERE conv_id = ? AND user_id = ?`,
		int64(conv), int64(user)))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Member{}, newError(op, chat.CodeNotFound, "not a member of the conversation")
	}
	if err != nil {
		return chat.Member{}, chat.Unavailable(op, err)
	}
	return m, nil
}

// ListMembers returns conv's members ordered by join time then user id;
// none for an unknown conversation.
func (s *Store) ListMembers(ctx context.Context, conv chat.ConversationID) ([]chat.Member, error) {
	const op = "sqlite.ListMembers"
	rows, err := s.r.QueryContext(ctx, `SELECT `+memberColumns+` FROM members WHERE conv_id = ? ORDER BY joined_at, user_id`, int64(conv))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	members, err := collect(rows, scanMember)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return members, nil
}

// AddMembers implements chat.Store: each member added takes the next
// change position, in order, and drops the user's member_left record of
// conv. An unknown conversation gives CodeNotFound, and so does a member
// that is no user.
func (s *Store) AddMembers(ctx context.Context, conv chat.ConversationID, members []chat.Member) ([]chat.Member, error) {
	const op = "sqlite.AddMembers"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	var exists int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM conversations WHERE id = ?`, int64(conv)).Scan(&exists)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, newError(op, chat.CodeNotFound, "conversation not found")
	}
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	pos, err := s.readCounter(ctx, tx)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	added, err := insertMembers(ctx, tx, op, pos, conv, members)
	if err != nil {
		return nil, err
	}
	if len(added) > 0 {
		users := make([]chat.UserID, len(added))
		for i, m := range added {
			users[i] = m.User
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM departed_members
			WHERE conv_id = ? AND user_id IN (SELECT value FROM json_each(?))`, int64(conv), idArray(users)); err != nil {
			return nil, chat.Unavailable(op, err)
		}
	}
	if err := pos.save(ctx); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return added, nil
}

// RemoveMember removes user from conv in one transaction, promoting a new
// owner when the last one leaves; CodeNotFound if not a member. The
// membership's last state is kept as its member_left record (left at
// Options.Now), which takes the next change position; a promoted member
// takes the one after.
func (s *Store) RemoveMember(ctx context.Context, conv chat.ConversationID, user chat.UserID) ([]chat.Member, error) {
	const op = "sqlite.RemoveMember"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	gone, err := scanMember(tx.QueryRowContext(ctx, `DELETE FROM members WHERE conv_id = ? AND user_id = ? RETURNING `+memberColumns,
		int64(conv), int64(user)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, newError(op, chat.CodeNotFound, "not a member of the conversation")
	}
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	pos, err := s.readCounter(ctx, tx)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO departed_members
		(conv_id, user_id, role, joined_at, read_seq, delivered_seq, left_at, pos) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		int64(conv), int64(user), string(gone.Role), ms(gone.JoinedAt), gone.ReadSeq, gone.DeliveredSeq, ms(s.now()), pos.take()); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	// Promote the longest-standing admin, else member, if no owner is left.
	rows, err := tx.QueryContext(ctx, `UPDATE members SET role = 'owner', pos = ?2
		WHERE conv_id = ?1 AND NOT EXISTS (SELECT 1 FROM members WHERE conv_id = ?1 AND role = 'owner')
		AND user_id = (SELECT user_id FROM members WHERE conv_id = ?1
			ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, joined_at, user_id LIMIT 1)
		RETURNING `+memberColumns, int64(conv), pos.peek())
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	promoted, err := collect(rows, scanMember)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	if len(promoted) > 0 {
		pos.take() // the statement promotes at most one member
	}
	if err := pos.save(ctx); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return promoted, nil
}

// UpdateMemberRole implements chat.Store. Setting the role a member
// already has changes nothing and takes no change position. An invalid
// role gives CodeInvalidArgument.
func (s *Store) UpdateMemberRole(ctx context.Context, conv chat.ConversationID, user chat.UserID, role chat.Role) (chat.Member, error) {
	const op = "sqlite.UpdateMemberRole"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return chat.Member{}, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	m, err := scanMember(tx.QueryRowContext(ctx, `SELECT `+memberColumns+` FROM members WHERE conv_id = ? AND user_id = ?`,
		int64(conv), int64(user)))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Member{}, newError(op, chat.CodeNotFound, "not a member of the conversation")
	}
	if err != nil {
		return chat.Member{}, chat.Unavailable(op, err)
	}
	if m.Role == role {
		return m, nil
	}
	pos, err := s.nextPos(ctx, tx)
	if err != nil {
		return chat.Member{}, chat.Unavailable(op, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE members SET role = ?, pos = ? WHERE conv_id = ? AND user_id = ?`,
		string(role), pos, int64(conv), int64(user)); err != nil {
		return chat.Member{}, classify(op, "the member", err)
	}
	var owners int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM members WHERE conv_id = ? AND role = 'owner'`, int64(conv)).Scan(&owners); err != nil {
		return chat.Member{}, chat.Unavailable(op, err)
	}
	if owners == 0 {
		return chat.Member{}, newError(op, chat.CodeConflict, "the conversation's last owner cannot be demoted")
	}
	if err := tx.Commit(); err != nil {
		return chat.Member{}, chat.Unavailable(op, err)
	}
	m.Role, m.Pos = role, pos
	return m, nil
}

// UpdateReadSeq implements chat.Store: the watermark becomes max(old,
// min(seq, last_seq)). Only a watermark that moves takes a change
// position; otherwise the member is returned as it was. A non-member gives
// CodeNotFound.
func (s *Store) UpdateReadSeq(ctx context.Context, conv chat.ConversationID, user chat.UserID, seq int64) (chat.Member, error) {
	return s.raiseWatermark(ctx, "sqlite.UpdateReadSeq", readWatermark, conv, user, seq)
}

// UpdateDeliveredSeq implements chat.Store like UpdateReadSeq, for the
// delivered watermark. The two watermarks are independent: neither moves
// the other.
func (s *Store) UpdateDeliveredSeq(ctx context.Context, conv chat.ConversationID, user chat.UserID, seq int64) (chat.Member, error) {
	return s.raiseWatermark(ctx, "sqlite.UpdateDeliveredSeq", deliveredWatermark, conv, user, seq)
}

// watermark names one of a member's watermark columns.
type watermark string

const (
	readWatermark      watermark = "read_seq"
	deliveredWatermark watermark = "delivered_seq"
)

// raiseWatermark sets user's column in conv to max(old, min(seq, last_seq)).
func (s *Store) raiseWatermark(ctx context.Context, op string, column watermark, conv chat.ConversationID, user chat.UserID, seq int64) (chat.Member, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return chat.Member{}, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	var last int64
	m, err := scanMemberWith(tx.QueryRowContext(ctx, `SELECT `+memberColumns+`,
			(SELECT last_seq FROM conversations WHERE id = members.conv_id)
		FROM members WHERE conv_id = ? AND user_id = ?`, int64(conv), int64(user)), &last)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Member{}, newError(op, chat.CodeNotFound, "not a member of the conversation")
	}
	if err != nil {
		return chat.Member{}, chat.Unavailable(op, err)
	}
	field := &m.ReadSeq
	if column == deliveredWatermark {
		field = &m.DeliveredSeq
	}
	target := max(*field, min(seq, last))
	if target == *field {
		return m, nil
	}
	pos, err := s.nextPos(ctx, tx)
	if err != nil {
		return chat.Member{}, chat.Unavailable(op, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE members SET `+string(column)+` = ?, pos = ? WHERE conv_id = ? AND user_id = ?`,
		target, pos, int64(conv), int64(user)); err != nil {
		return chat.Member{}, chat.Unavailable(op, err)
	}
	if err := tx.Commit(); err != nil {
		return chat.Member{}, chat.Unavailable(op, err)
	}
	*field, m.Pos = target, pos
	return m, nil
}
