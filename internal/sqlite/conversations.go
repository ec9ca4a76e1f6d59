package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strconv"

	"github.com/natter-chat/natter/internal/chat"
)

const conversationColumns = `id, kind, title, created_by, created_at, last_seq`

func scanConversation(row scanner) (chat.Conversation, error) {
	var c chat.Conversation
	var created int64
	if err := row.Scan(&c.ID, &c.Kind, &c.Title, &c.CreatedBy, &created, &c.LastSeq); err != nil {
		return chat.Conversation{}, err
	}
	c.CreatedAt = fromMS(created)
	return c, nil
}

const memberColumns = `conv_id, user_id, role, joined_at, read_seq`

func scanMember(row scanner) (chat.Member, error) {
	var m chat.Member
	var joined int64
	if err := row.Scan(&m.Conv, &m.User, &m.Role, &joined, &m.ReadSeq); err != nil {
		return chat.Member{}, err
	}
	m.JoinedAt = fromMS(joined)
	return m, nil
}

// directKey is the value of conversations.direct_key for the pair of users:
// the same whichever of them starts the conversation.
func directKey(a, b chat.UserID) string {
	if a > b {
		a, b = b, a
	}
	return strconv.FormatInt(int64(a), 10) + ":" + strconv.FormatInt(int64(b), 10)
}

// CreateConversation implements chat.Store. c.LastSeq is ignored (a new
// conversation has no message) and each member's Conv is set to c.ID. A
// direct conversation needs exactly two distinct members
// (CodeInvalidArgument otherwise). One direct conversation per pair is the
// UNIQUE direct_key: an insert that hits it stores nothing and the existing
// conversation is read back in the same transaction. A member or creator
// that is no user gives CodeNotFound.
func (s *Store) CreateConversation(ctx context.Context, c chat.Conversation, members []chat.Member) (chat.Conversation, bool, error) {
	const op = "sqlite.CreateConversation"
	var key sql.NullString
	if c.Kind == chat.KindDirect {
		if len(members) != 2 || members[0].User == members[1].User {
			return chat.Conversation{}, false, newError(op, chat.CodeInvalidArgument, "a direct conversation has exactly two members")
		}
		key = sql.NullString{String: directKey(members[0].User, members[1].User), Valid: true}
	}
	c.LastSeq = 0

	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return chat.Conversation{}, false, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO conversations (id, kind, title, created_by, created_at, last_seq, direct_key, last_activity_at)
		VALUES (?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (direct_key) DO NOTHING`,
		int64(c.ID), string(c.Kind), c.Title, int64(c.CreatedBy), ms(c.CreatedAt), key, ms(c.CreatedAt))
	if err != nil {
		return chat.Conversation{}, false, classify(op, "the conversation", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return chat.Conversation{}, false, chat.Unavailable(op, err)
	} else if n == 0 {
		existing, err := scanConversation(tx.QueryRowContext(ctx,
			`SELECT `+conversationColumns+` FROM conversations WHERE direct_key = ?`, key))
		if err != nil {
			return chat.Conversation{}, false, chat.Unavailable(op, err)
		}
		return existing, false, nil
	}
	if _, err := insertMembers(ctx, tx, op, c.ID, members); err != nil {
		return chat.Conversation{}, false, err
	}
	if err := tx.Commit(); err != nil {
		return chat.Conversation{}, false, chat.Unavailable(op, err)
	}
	c.CreatedAt = fromMS(ms(c.CreatedAt))
	return c, true, nil
}

// insertMembers inserts members into conv within tx, skipping users who are
// members already, and returns those it inserted (Conv set, ReadSeq 0).
func insertMembers(ctx context.Context, tx *sql.Tx, op string, conv chat.ConversationID, members []chat.Member) ([]chat.Member, error) {
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO members (conv_id, user_id, role, joined_at, read_seq)
		VALUES (?, ?, ?, ?, 0) ON CONFLICT (conv_id, user_id) DO NOTHING`)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer stmt.Close()
	var added []chat.Member
	for _, m := range members {
		res, err := stmt.ExecContext(ctx, int64(conv), int64(m.User), string(m.Role), ms(m.JoinedAt))
		if err != nil {
			return nil, classify(op, "the member", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, chat.Unavailable(op, err)
		}
		if n > 0 {
			added = append(added, chat.Member{Conv: conv, User: m.User, Role: m.Role, JoinedAt: fromMS(ms(m.JoinedAt))})
		}
	}
	return added, nil
}

// GetConversation returns the conversation with id, or CodeNotFound.
func (s *Store) GetConversation(ctx context.Context, id chat.ConversationID) (chat.Conversation, error) {
	const op = "sqlite.GetConversation"
	c, err := scanConversation(s.r.QueryRowContext(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE id = ?`, int64(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Conversation{}, newError(op, chat.CodeNotFound, "conversation not found")
	}
	if err != nil {
		return chat.Conversation{}, chat.Unavailable(op, err)
	}
	return c, nil
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

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ListConversationIDs returns the ids of user's conversations in id order.
func (s *Store) ListConversationIDs(ctx context.Context, user chat.UserID) ([]chat.ConversationID, error) {
	const op = "sqlite.ListConversationIDs"
	rows, err := s.r.QueryContext(ctx, `SELECT conv_id FROM members WHERE user_id = ? ORDER BY conv_id`, int64(user))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	ids, err := collect(rows, func(row scanner) (id chat.ConversationID, err error) {
		err = row.Scan(&id)
		return id, err
	})
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return ids, nil
}

// ListConversations implements chat.Store: user's conversations ordered by
// last activity (the newest message's SentAt, else the creation time), newest
// first, then by id descending. Both queries run in one read transaction, so
// the summaries and their members come from one snapshot.
func (s *Store) ListConversations(ctx context.Context, user chat.UserID) ([]chat.ConversationSummary, error) {
	const op = "sqlite.ListConversations"
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer tx.Rollback()

	rows, err := tx.QueryContext(ctx, `SELECT c.id, c.kind, c.title, c.created_by, c.created_at, c.last_seq, m.read_seq,
			(SELECT count(*) FROM messages u WHERE u.conv_id = c.id AND u.seq > m.read_seq AND u.sender_id != m.user_id),
			l.id, l.sender_id, l.client_id, l.text, l.sent_at
		FROM members m
		JOIN conversations c ON c.id = m.conv_id
		LEFT JOIN messages l ON l.conv_id = c.id AND l.seq = c.last_seq
		WHERE m.user_id = ?
		ORDER BY c.last_activity_at DESC, c.id DESC`, int64(user))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	summaries, err := collect(rows, scanSummary)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	if len(summaries) == 0 {
		return summaries, nil
	}

	index := make(map[chat.ConversationID]int, len(summaries))
	for i := range summaries {
		index[summaries[i].ID] = i
	}
	rows, err = tx.QueryContext(ctx, `SELECT `+memberColumns+` FROM members
		WHERE conv_id IN (SELECT conv_id FROM members WHERE user_id = ?)
		ORDER BY conv_id, joined_at, user_id`, int64(user))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	members, err := collect(rows, scanMember)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	for _, m := range members {
		sum := &summaries[index[m.Conv]]
		sum.Members = append(sum.Members, m)
	}
	return summaries, nil
}

func scanSummary(row scanner) (chat.ConversationSummary, error) {
	var sum chat.ConversationSummary
	var created int64
	var lastID, lastSender, lastSent sql.NullInt64
	var lastClient, lastText sql.NullString
	if err := row.Scan(&sum.ID, &sum.Kind, &sum.Title, &sum.CreatedBy, &created, &sum.LastSeq, &sum.ReadSeq, &sum.Unread,
		&lastID, &lastSender, &lastClient, &lastText, &lastSent); err != nil {
		return chat.ConversationSummary{}, err
	}
	sum.CreatedAt = fromMS(created)
	if lastID.Valid {
		sum.LastMessage = &chat.Message{
			ID:       chat.MessageID(lastID.Int64),
			Conv:     sum.ID,
			Seq:      sum.LastSeq,
			Sender:   chat.UserID(lastSender.Int64),
			ClientID: lastClient.String,
			Text:     lastText.String,
			SentAt:   fromMS(lastSent.Int64),
		}
	}
	return sum, nil
}

// AddMembers implements chat.Store. An unknown conversation gives
// CodeNotFound, and so does a member that is no user.
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
	added, err := insertMembers(ctx, tx, op, conv, members)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return added, nil
}

// RemoveMember removes user from conv in one transaction, promoting a new
// owner when the last one leaves; CodeNotFound if not a member. The
// user's read watermark goes with the membership.
func (s *Store) RemoveMember(ctx context.Context, conv chat.ConversationID, user chat.UserID) ([]chat.Member, error) {
	const op = "sqlite.RemoveMember"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM members WHERE conv_id = ? AND user_id = ?`, int64(conv), int64(user))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, chat.Unavailable(op, err)
	} else if n == 0 {
		return nil, newError(op, chat.CodeNotFound, "not a member of the conversation")
	}
	// Promote the longest-standing admin, else member, if no owner is left.
	rows, err := tx.QueryContext(ctx, `UPDATE members SET role = 'owner'
		WHERE conv_id = ?1 AND NOT EXISTS (SELECT 1 FROM members WHERE conv_id = ?1 AND role = 'owner')
		AND user_id = (SELECT user_id FROM members WHERE conv_id = ?1
			ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, joined_at, user_id LIMIT 1)
		RETURNING `+memberColumns, int64(conv))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	var promoted []chat.Member
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			rows.Close()
			return nil, chat.Unavailable(op, err)
		}
		promoted = append(promoted, m)
	}
	if err := rows.Close(); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return promoted, nil
}

// UpdateMemberRole implements chat.Store.
func (s *Store) UpdateMemberRole(ctx context.Context, conv chat.ConversationID, user chat.UserID, role chat.Role) (chat.Member, error) {
	const op = "sqlite.UpdateMemberRole"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return chat.Member{}, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	m, err := scanMember(tx.QueryRowContext(ctx, `UPDATE members SET role = ? WHERE conv_id = ? AND user_id = ? RETURNING `+memberColumns,
		string(role), int64(conv), int64(user)))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Member{}, newError(op, chat.CodeNotFound, "not a member of the conversation")
	}
	if err != nil {
		return chat.Member{}, chat.Unavailable(op, err)
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
	return m, nil
}

// UpdateReadSeq implements chat.Store in one statement: the watermark
// becomes max(old, min(seq, last_seq)). A non-member gives CodeNotFound.
func (s *Store) UpdateReadSeq(ctx context.Context, conv chat.ConversationID, user chat.UserID, seq int64) (chat.Member, error) {
	const op = "sqlite.UpdateReadSeq"
	m, err := scanMember(s.w.QueryRowContext(ctx, `UPDATE members
		SET read_seq = max(read_seq, min(?, (SELECT last_seq FROM conversations WHERE id = members.conv_id)))
		WHERE conv_id = ? AND user_id = ?
		RETURNING `+memberColumns, seq, int64(conv), int64(user)))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Member{}, newError(op, chat.CodeNotFound, "not a member of the conversation")
	}
	if err != nil {
		return chat.Member{}, chat.Unavailable(op, err)
	}
	return m, nil
}
