package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// A user's sent messages are found conversation by conversation, in the
// conversations the user is a member of (members), left (departed_members)
// or had sent to before memberships that ended were recorded
// (former_senders, see migrations/0011_sent_by_conversation.sql). That
// covers every message a user sent: core sends only for members, a member
// who leaves gets a departed_members row, and that row goes only when the
// user is added back. No index on messages is keyed by sender: one would
// take a write at a scattered place for every message sent, for the sake
// of data export and account deletion, which are rare.

// sentConversationsSQL lists the conversations of user ?1 from ?2 on, in
// id order.
const sentConversationsSQL = `SELECT conv_id FROM members WHERE user_id = ?1 AND conv_id >= ?2
	UNION SELECT conv_id FROM departed_members WHERE user_id = ?1 AND conv_id >= ?2
	UNION SELECT conv_id FROM former_senders WHERE user_id = ?1 AND conv_id >= ?2
	ORDER BY conv_id`

// sentInConversationSQL reads conversation ?1's messages by ?2 with seq
// above ?3 that are not deleted, in seq order, at most ?4. It walks the
// (conv_id, seq) index and checks the sender of each row (the + keeps the
// planner from the (conv_id, sender_id, client_id) index, whose order
// would need a sort of all the sender's messages for every page), so
// paging through a conversation reads it once.
const sentInConversationSQL = `SELECT ` + messageColumns + ` FROM messages m
	WHERE m.conv_id = ?1 AND +m.sender_id = ?2 AND m.seq > ?3 AND m.deleted_at IS NULL
	ORDER BY m.seq LIMIT ?4`

// liveInConversationSQL reads up to ?3 of conversation ?1's messages by ?2
// that are not deleted, in no particular order, through the (conv_id,
// sender_id, client_id) index, so it reads only the sender's messages
// (ordering them by seq would make the planner walk the whole
// conversation instead).
const liveInConversationSQL = `SELECT ` + messageColumns + ` FROM messages m
	WHERE m.conv_id = ?1 AND m.sender_id = ?2 AND m.deleted_at IS NULL LIMIT ?3`

// sentConversations returns the conversations in which user may have sent
// messages, from conv from on, in id order.
func sentConversations(ctx context.Context, q querier, user chat.UserID, from chat.ConversationID) ([]chat.ConversationID, error) {
	return queryAll(ctx, q, sentConversationsSQL, []any{int64(user), int64(from)},
		func(row scanner) (id chat.ConversationID, err error) { return id, row.Scan(&id) })
}

// ListSentMessages implements chat.PeopleStore, in one read transaction.
// A page costs a query per conversation it reaches, and reads every
// message of those conversations between the cursor and the page's last
// message.
func (s *Store) ListSentMessages(ctx context.Context, sender chat.UserID, after chat.SentCursor, limit int) ([]chat.Message, error) {
	const op = "sqlite.ListSentMessages"
	limit = min(max(limit, 1), chat.MaxPageSize)
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	convs, err := sentConversations(ctx, tx, sender, after.Conv)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	var msgs []chat.Message
	for _, conv := range convs {
		var afterSeq int64
		if conv == after.Conv {
			afterSeq = after.Seq
		}
		page, err := queryAll(ctx, tx, sentInConversationSQL,
			[]any{int64(conv), int64(sender), afterSeq, limit - len(msgs)}, scanMessage)
		if err != nil {
			return nil, chat.Unavailable(op, err)
		}
		if msgs = append(msgs, page...); len(msgs) == limit {
			break
		}
	}
	if err := attachReactions(ctx, tx, pointers(msgs)...); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return msgs, nil
}

// TombstoneSent implements chat.PeopleStore, conversation by conversation
// in id order. Each call reads the sender's messages again in the
// conversations it passes, tombstones included, as the index on sender did
// before.
func (s *Store) TombstoneSent(ctx context.Context, sender chat.UserID, at time.Time, limit int) ([]chat.Message, error) {
	const op = "sqlite.TombstoneSent"
	limit = min(max(limit, 1), chat.MaxPageSize)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	convs, err := sentConversations(ctx, tx, sender, 0)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	var msgs []chat.Message
	for _, conv := range convs {
		page, err := queryAll(ctx, tx, liveInConversationSQL, []any{int64(conv), int64(sender), limit - len(msgs)}, scanMessage)
		if err != nil {
			return nil, chat.Unavailable(op, err)
		}
		if msgs = append(msgs, page...); len(msgs) == limit {
			break
		}
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	pos, err := s.readCounter(ctx, tx)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	for i := range msgs {
		m := &msgs[i]
		m.Text, m.Mentions, m.DeletedAt, m.Pos = "", nil, fromMS(ms(at)), pos.take()
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET text = '', mentions = NULL, deleted_at = ?, pos = ? WHERE id = ?`,
			ms(at), m.Pos, int64(m.ID)); err != nil {
			return nil, chat.Unavailable(op, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM reactions WHERE message_id = ?`, int64(m.ID)); err != nil {
			return nil, chat.Unavailable(op, err)
		}
	}
	if err := pos.save(ctx); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return msgs, nil
}
