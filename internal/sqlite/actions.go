package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// messageState reads whether conv has message id and whether it is
// deleted, inside tx: CodeNotFound when conv has no such message.
func messageState(ctx context.Context, tx *sql.Tx, op string, conv chat.ConversationID, id chat.MessageID) (deleted bool, err error) {
	var deletedAt sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT deleted_at FROM messages WHERE id = ? AND conv_id = ?`, int64(id), int64(conv)).Scan(&deletedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return false, newError(op, chat.CodeNotFound, "message not found")
	}
	if err != nil {
		return false, chat.Unavailable(op, err)
	}
	return deletedAt.Valid, nil
}

// EditMessage implements chat.Store. Every edit takes a change position,
// even one that keeps the text, since it sets EditedAt.
func (s *Store) EditMessage(ctx context.Context, conv chat.ConversationID, id chat.MessageID, text string, mentions []chat.UserID, at time.Time) (chat.Message, error) {
	const op = "sqlite.EditMessage"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	deleted, err := messageState(ctx, tx, op, conv, id)
	if err != nil {
		return chat.Message{}, err
	}
	if deleted {
		return chat.Message{}, newError(op, chat.CodeConflict, "the message is deleted")
	}
	pos, err := s.nextPos(ctx, tx)
	if err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET text = ?, mentions = ?, edited_at = ?, pos = ? WHERE id = ?`,
		text, mentionsValue(mentions), ms(at), pos, int64(id)); err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	m, err := getMessage(ctx, tx, conv, id)
	if err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	if err := tx.Commit(); err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	return m, nil
}

// DeleteMessage implements chat.Store. The tombstone keeps the message's
// id, seq, sender, client id, sent time, ReplyTo and EditedAt; its text
// becomes "" and its mentions and reactions are deleted. Deleting it again
// takes no change position.
func (s *Store) DeleteMessage(ctx context.Context, conv chat.ConversationID, id chat.MessageID, at time.Time) (chat.Message, error) {
	const op = "sqlite.DeleteMessage"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	m, err := scanMessage(tx.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages m WHERE m.id = ? AND m.conv_id = ?`,
		int64(id), int64(conv)))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Message{}, newError(op, chat.CodeNotFound, "message not found")
	}
	if err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	if !m.DeletedAt.IsZero() {
		return m, nil
	}
	pos, err := s.nextPos(ctx, tx)
	if err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET text = '', mentions = NULL, deleted_at = ?, pos = ? WHERE id = ?`,
		ms(at), pos, int64(id)); err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM reactions WHERE message_id = ?`, int64(id)); err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	if err := tx.Commit(); err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	m.Text, m.Mentions, m.DeletedAt, m.Pos = "", nil, fromMS(ms(at)), pos
	return m, nil
}

// SetReaction implements chat.Store. A reaction added takes a change
// position, which becomes the message's Pos and orders the users of its
// emoji; a reaction removed gives the message a new Pos. A user that does
// not exist gives CodeNotFound. The emoji is stored as given.
func (s *Store) SetReaction(ctx context.Context, conv chat.ConversationID, id chat.MessageID, user chat.UserID, emoji string, on bool) (chat.Message, error) {
	const op = "sqlite.SetReaction"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	deleted, err := messageState(ctx, tx, op, conv, id)
	if err != nil {
		return chat.Message{}, err
	}
	if deleted {
		return chat.Message{}, newError(op, chat.CodeConflict, "the message is deleted")
	}
	pos, err := s.readCounter(ctx, tx)
	if err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	var res sql.Result
	if on {
		res, err = tx.ExecContext(ctx, `INSERT INTO reactions (message_id, emoji, user_id, pos) VALUES (?, ?, ?, ?)
			ON CONFLICT (message_id, emoji, user_id) DO NOTHING`, int64(id), emoji, int64(user), pos.peek())
	} else {
		res, err = tx.ExecContext(ctx, `DELETE FROM reactions WHERE message_id = ? AND emoji = ? AND user_id = ?`,
			int64(id), emoji, int64(user))
	}
	if err != nil {
		return chat.Message{}, classify(op, "the reaction", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	if n > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET pos = ? WHERE id = ?`, pos.take(), int64(id)); err != nil {
			return chat.Message{}, chat.Unavailable(op, err)
		}
		if err := pos.save(ctx); err != nil {
			return chat.Message{}, chat.Unavailable(op, err)
		}
	}
	m, err := getMessage(ctx, tx, conv, id)
	if err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	if err := tx.Commit(); err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	return m, nil
}

// UpdateTitle implements chat.Store: CodeNotFound for an unknown
// conversation. Setting the title it already has changes nothing and takes
// no change position.
func (s *Store) UpdateTitle(ctx context.Context, conv chat.ConversationID, title string) (chat.Conversation, error) {
	const op = "sqlite.UpdateTitle"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return chat.Conversation{}, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	c, err := scanConversation(tx.QueryRowContext(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE id = ?`, int64(conv)))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Conversation{}, newError(op, chat.CodeNotFound, "conversation not found")
	}
	if err != nil {
		return chat.Conversation{}, chat.Unavailable(op, err)
	}
	if c.Title == title {
		return c, nil
	}
	pos, err := s.nextPos(ctx, tx)
	if err != nil {
		return chat.Conversation{}, chat.Unavailable(op, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE conversations SET title = ?, pos = ? WHERE id = ?`, title, pos, int64(conv)); err != nil {
		return chat.Conversation{}, chat.Unavailable(op, err)
	}
	if err := tx.Commit(); err != nil {
		return chat.Conversation{}, chat.Unavailable(op, err)
	}
	c.Title, c.Pos = title, pos
	return c, nil
}
