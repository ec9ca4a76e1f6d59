package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strconv"

	"github.com/natter-chat/natter/internal/chat"
)

const conversationColumns = `id, kind, title, created_by, created_at, last_seq, pos`

func scanConversation(row scanner) (chat.Conversation, error) {
	var c chat.Conversation
	var created int64
	if err := row.Scan(&c.ID, &c.Kind, &c.Title, &c.CreatedBy, &created, &c.LastSeq, &c.Pos); err != nil {
		return chat.Conversation{}, err
	}
	c.CreatedAt = fromMS(created)
	return c, nil
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
// that is no user gives CodeNotFound. A new conversation takes a change
// position, and then each member one, in order; an existing direct
// conversation takes none.
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
	pos, err := s.readCounter(ctx, tx)
	if err != nil {
		return chat.Conversation{}, false, chat.Unavailable(op, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO conversations (id, kind, title, created_by, created_at, last_seq, direct_key, last_activity_at, pos)
		VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (direct_key) DO NOTHING`,
		int64(c.ID), string(c.Kind), c.Title, int64(c.CreatedBy), ms(c.CreatedAt), key, ms(c.CreatedAt), pos.peek())
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
	c.Pos = pos.take()
	if _, err := insertMembers(ctx, tx, op, pos, c.ID, members); err != nil {
		return chat.Conversation{}, false, err
	}
	if err := pos.save(ctx); err != nil {
		return chat.Conversation{}, false, chat.Unavailable(op, err)
	}
	if err := tx.Commit(); err != nil {
		return chat.Conversation{}, false, chat.Unavailable(op, err)
	}
	c.CreatedAt = fromMS(ms(c.CreatedAt))
	return c, true, nil
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
// first, then by id descending. All queries run in one read transaction, so
// the summaries, their last messages and members come from one snapshot.
func (s *Store) ListConversations(ctx context.Context, user chat.UserID) ([]chat.ConversationSummary, error) {
	const op = "sqlite.ListConversations"
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer tx.Rollback()

	rows, err := tx.QueryContext(ctx, `SELECT c.id, c.kind, c.title, c.created_by, c.created_at, c.last_seq, c.pos, me.read_seq,
			(SELECT count(*) FROM messages u WHERE u.conv_id = c.id AND u.seq > me.read_seq AND u.sender_id != me.user_id)
		FROM members me
		JOIN conversations c ON c.id = me.conv_id
		WHERE me.user_id = ?
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
	index := make(map[chat.ConversationID]*chat.ConversationSummary, len(summaries))
	for i := range summaries {
		index[summaries[i].ID] = &summaries[i]
	}
	if err := attachLastMessages(ctx, tx, user, index); err != nil {
		return nil, chat.Unavailable(op, err)
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
		sum := index[m.Conv]
		sum.Members = append(sum.Members, m)
	}
	return summaries, nil
}

func scanSummary(row scanner) (chat.ConversationSummary, error) {
	var sum chat.ConversationSummary
	var created int64
	if err := row.Scan(&sum.ID, &sum.Kind, &sum.Title, &sum.CreatedBy, &created, &sum.LastSeq, &sum.Pos,
		&sum.ReadSeq, &sum.Unread); err != nil {
		return chat.ConversationSummary{}, err
	}
	sum.CreatedAt = fromMS(created)
	return sum, nil
}

// attachLastMessages sets the LastMessage of the summaries of user's
// conversations, with their reactions.
func attachLastMessages(ctx context.Context, tx *sql.Tx, user chat.UserID, index map[chat.ConversationID]*chat.ConversationSummary) error {
	rows, err := tx.QueryContext(ctx, `SELECT `+messageColumns+`
		FROM members me
		JOIN conversations c ON c.id = me.conv_id
		JOIN messages m ON m.conv_id = c.id AND m.seq = c.last_seq
		WHERE me.user_id = ?`, int64(user))
	if err != nil {
		return err
	}
	last, err := collect(rows, scanMessage)
	if err != nil {
		return err
	}
	ptrs := pointers(last)
	if err := attachReactions(ctx, tx, ptrs...); err != nil {
		return err
	}
	for _, m := range ptrs {
		if sum := index[m.Conv]; sum != nil {
			sum.LastMessage = m
		}
	}
	return nil
}
