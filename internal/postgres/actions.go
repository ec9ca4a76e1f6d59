package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/internal/chat"
)

// lockMessage locks message id of conv in tx and reports whether it is
// deleted: CodeNotFound when conv has no such message. The row lock
// serializes the edits, deletes and reactions of one message.
func lockMessage(ctx context.Context, tx pgx.Tx, op string, conv chat.ConversationID, id chat.MessageID) (deleted bool, err error) {
	var deletedAt *time.Time
	err = tx.QueryRow(ctx, `SELECT deleted_at FROM messages WHERE id = $1 AND conv_id = $2 FOR NO KEY UPDATE`,
		int64(id), int64(conv)).Scan(&deletedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, newError(op, chat.CodeNotFound, "message not found")
	}
	return deletedAt != nil, err
}

// EditMessage implements chat.Store. Every edit takes a change position,
// even one that keeps the text, since it sets EditedAt.
func (s *Store) EditMessage(ctx context.Context, conv chat.ConversationID, id chat.MessageID, text string, mentions []chat.UserID, at time.Time) (chat.Message, error) {
	const op = "postgres.EditMessage"
	var m chat.Message
	err := s.write(ctx, op, "the message", func(tx pgx.Tx) error {
		deleted, err := lockMessage(ctx, tx, op, conv, id)
		if err != nil {
			return err
		}
		if deleted {
			return newError(op, chat.CodeConflict, "the message is deleted")
		}
		m, err = scanMessage(tx.QueryRow(ctx, `WITH p AS (UPDATE positions SET pos = pos + 1 WHERE id = 1 RETURNING pos),
			e AS (UPDATE messages SET text = $3, mentions = $4, edited_at = $5, pos = p.pos FROM p
				WHERE messages.id = $1 AND messages.conv_id = $2 RETURNING messages.*)
			SELECT `+messageColumns+` FROM e AS m`+withReactions,
			int64(id), int64(conv), text, mentionsValue(mentions), ms(at)))
		return err
	})
	if err != nil {
		return chat.Message{}, err
	}
	return m, nil
}

// DeleteMessage implements chat.Store. The tombstone keeps the message's
// id, seq, sender, client id, sent time, ReplyTo and EditedAt; its text
// becomes "" and its mentions and reactions are deleted. Deleting it again
// takes no change position.
func (s *Store) DeleteMessage(ctx context.Context, conv chat.ConversationID, id chat.MessageID, at time.Time) (chat.Message, error) {
	const op = "postgres.DeleteMessage"
	var m chat.Message
	err := s.write(ctx, op, "the message", func(tx pgx.Tx) error {
		var err error
		m, err = scanMessage(tx.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages m`+withReactions+`
			WHERE m.id = $1 AND m.conv_id = $2 FOR NO KEY UPDATE OF m`, int64(id), int64(conv)))
		if errors.Is(err, pgx.ErrNoRows) {
			return newError(op, chat.CodeNotFound, "message not found")
		}
		if err != nil {
			return err
		}
		if !m.DeletedAt.IsZero() {
			return errUnchanged
		}
		m.Text, m.Mentions, m.Reactions, m.DeletedAt = "", nil, nil, ms(at)
		return tx.QueryRow(ctx, `WITH p AS (UPDATE positions SET pos = pos + 1 WHERE id = 1 RETURNING pos),
			r AS (DELETE FROM reactions WHERE message_id = $1)
			UPDATE messages SET text = '', mentions = NULL, deleted_at = $2, pos = p.pos FROM p WHERE messages.id = $1
			RETURNING p.pos`, int64(id), m.DeletedAt).Scan(&m.Pos)
	})
	if err != nil {
		return chat.Message{}, err
	}
	return m, nil
}

// SetReaction implements chat.Store under the message's row lock. A
// reaction added takes a change position, which becomes the message's Pos
// and orders the users of its emoji; a reaction removed gives the message
// a new Pos. A user that does not exist gives CodeNotFound. The emoji is
// stored as given.
func (s *Store) SetReaction(ctx context.Context, conv chat.ConversationID, id chat.MessageID, user chat.UserID, emoji string, on bool) (chat.Message, error) {
	const op = "postgres.SetReaction"
	var m chat.Message
	err := s.write(ctx, op, "the reaction", func(tx pgx.Tx) error {
		deleted, err := lockMessage(ctx, tx, op, conv, id)
		if err != nil {
			return err
		}
		if deleted {
			return newError(op, chat.CodeConflict, "the message is deleted")
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3)`,
			int64(id), emoji, int64(user)).Scan(&exists); err != nil {
			return err
		}
		if exists != on {
			change := `DELETE FROM reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3`
			if on {
				change = `INSERT INTO reactions (message_id, emoji, user_id, pos) SELECT $1, $2, $3, pos FROM p`
			}
			if _, err := tx.Exec(ctx, `WITH p AS (UPDATE positions SET pos = pos + 1 WHERE id = 1 RETURNING pos),
				r AS (`+change+`)
				UPDATE messages SET pos = p.pos FROM p WHERE messages.id = $1`, int64(id), emoji, int64(user)); err != nil {
				return err
			}
		}
		if m, err = getMessage(ctx, tx, conv, id); err != nil {
			return err
		}
		if exists == on {
			return errUnchanged
		}
		return nil
	})
	if err != nil {
		return chat.Message{}, err
	}
	return m, nil
}

// UpdateTitle implements chat.Store under the conversation's row lock:
// CodeNotFound for an unknown conversation. Setting the title it already
// has changes nothing and takes no change position.
func (s *Store) UpdateTitle(ctx context.Context, conv chat.ConversationID, title string) (chat.Conversation, error) {
	const op = "postgres.UpdateTitle"
	var c chat.Conversation
	err := s.write(ctx, op, "the conversation", func(tx pgx.Tx) error {
		var err error
		c, err = lockConversation(ctx, tx, conv)
		if errors.Is(err, pgx.ErrNoRows) {
			return newError(op, chat.CodeNotFound, "conversation not found")
		}
		if err != nil {
			return err
		}
		if c.Title == title {
			return errUnchanged
		}
		c.Title = title
		return tx.QueryRow(ctx, `WITH p AS (UPDATE positions SET pos = pos + 1 WHERE id = 1 RETURNING pos)
			UPDATE conversations SET title = $2, pos = p.pos FROM p WHERE conversations.id = $1 RETURNING p.pos`,
			int64(conv), title).Scan(&c.Pos)
	})
	if err != nil {
		return chat.Conversation{}, err
	}
	return c, nil
}

// UpdateReadSeq implements chat.Store: the watermark becomes max(old,
// min(seq, last_seq)). Only a watermark that moves takes a change
// position; otherwise the member is returned as it was. A non-member gives
// CodeNotFound.
func (s *Store) UpdateReadSeq(ctx context.Context, conv chat.ConversationID, user chat.UserID, seq int64) (chat.Member, error) {
	return s.raiseWatermark(ctx, "postgres.UpdateReadSeq", readWatermark, conv, user, seq)
}

// UpdateDeliveredSeq implements chat.Store like UpdateReadSeq, for the
// delivered watermark. The two watermarks are independent: neither moves
// the other.
func (s *Store) UpdateDeliveredSeq(ctx context.Context, conv chat.ConversationID, user chat.UserID, seq int64) (chat.Member, error) {
	return s.raiseWatermark(ctx, "postgres.UpdateDeliveredSeq", deliveredWatermark, conv, user, seq)
}

// watermark names one of a member's watermark columns.
type watermark string

const (
	readWatermark      watermark = "read_seq"
	deliveredWatermark watermark = "delivered_seq"
)

// raiseWatermark sets user's column in conv to max(old, min(seq, last_seq))
// under the membership's row lock only: receipts do not wait for the
// conversation's sends. last_seq is read unlocked; a send committing
// meanwhile only makes the clamp a little lower.
func (s *Store) raiseWatermark(ctx context.Context, op string, column watermark, conv chat.ConversationID, user chat.UserID, seq int64) (chat.Member, error) {
	var m chat.Member
	err := s.write(ctx, op, "the member", func(tx pgx.Tx) error {
		var last int64
		var err error
		m, err = scanMemberWith(tx.QueryRow(ctx, `SELECT `+memberColumns+`,
				(SELECT last_seq FROM conversations c WHERE c.id = members.conv_id)
			FROM members WHERE conv_id = $1 AND user_id = $2 FOR NO KEY UPDATE`, int64(conv), int64(user)), &last)
		if errors.Is(err, pgx.ErrNoRows) {
			return newError(op, chat.CodeNotFound, "not a member of the conversation")
		}
		if err != nil {
			return err
		}
		field := &m.ReadSeq
		if column == deliveredWatermark {
			field = &m.DeliveredSeq
		}
		target := max(*field, min(seq, last))
		if target == *field {
			return errUnchanged
		}
		*field = target
		return tx.QueryRow(ctx, `WITH p AS (UPDATE positions SET pos = pos + 1 WHERE id = 1 RETURNING pos)
			UPDATE members SET `+string(column)+` = $3, pos = p.pos FROM p WHERE conv_id = $1 AND user_id = $2
			RETURNING p.pos`, int64(conv), int64(user), target).Scan(&m.Pos)
	})
	if err != nil {
		return chat.Member{}, err
	}
	return m, nil
}
