package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/natter-chat/natter/internal/chat"
)

// messageColumns are the columns scanMessage reads, of the table aliased m.
const messageColumns = `m.id, m.conv_id, m.seq, m.sender_id, m.client_id, m.text, m.sent_at,
	m.reply_to, m.mentions, m.edited_at, m.deleted_at, m.pos`

// scanMessage scans messageColumns; Reactions are loaded separately (see
// loadReactions).
func scanMessage(row scanner) (chat.Message, error) {
	var m chat.Message
	var clientID, mentions sql.NullString
	var replyTo, edited, deleted sql.NullInt64
	var sent int64
	if err := row.Scan(&m.ID, &m.Conv, &m.Seq, &m.Sender, &clientID, &m.Text, &sent,
		&replyTo, &mentions, &edited, &deleted, &m.Pos); err != nil {
		return chat.Message{}, err
	}
	mentioned, err := parseIDs[chat.UserID](mentions.String)
	if err != nil {
		return chat.Message{}, fmt.Errorf("message %d: mentions: %w", m.ID, err)
	}
	m.ClientID, m.SentAt, m.ReplyTo, m.Mentions = clientID.String, fromMS(sent), chat.MessageID(replyTo.Int64), mentioned
	m.EditedAt, m.DeletedAt = fromNullMS(edited), fromNullMS(deleted)
	return m, nil
}

// newMessage is the message d becomes when stored with seq at pos.
func newMessage(d *chat.Draft, seq, pos int64) chat.Message {
	m := chat.Message{ID: d.ID, Conv: d.Conv, Seq: seq, Sender: d.Sender, ClientID: d.ClientID, Text: d.Text,
		SentAt: fromMS(ms(d.SentAt)), ReplyTo: d.ReplyTo, Pos: pos}
	if len(d.Mentions) > 0 {
		m.Mentions = slices.Clone(d.Mentions)
	}
	return m
}

// mentionsValue is the stored form of mentions: a JSON array of ids, or
// NULL for none.
func mentionsValue(ids []chat.UserID) sql.NullString {
	if len(ids) == 0 {
		return sql.NullString{}
	}
	return sql.NullString{String: idArray(ids), Valid: true}
}

// replyValue is the stored form of a reply_to: NULL for none.
func replyValue(id chat.MessageID) sql.NullInt64 {
	return sql.NullInt64{Int64: int64(id), Valid: id != 0}
}

// parseIDs parses what idArray formats; "" is no ids (nil).
func parseIDs[ID ~int64](s string) ([]ID, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if s == "" {
		return nil, nil
	}
	out := make([]ID, 0, strings.Count(s, ",")+1)
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, ID(n))
	}
	return out, nil
}

// loadReactions returns the reactions of the messages among msgs that are
// not deleted, keyed by message id, with one query: per message ordered by
// emoji, the users of an emoji in the order they reacted.
func loadReactions(ctx context.Context, q querier, msgs []*chat.Message) (map[chat.MessageID][]chat.Reaction, error) {
	ids := make([]chat.MessageID, 0, len(msgs))
	for _, m := range msgs {
		if m.DeletedAt.IsZero() {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT message_id, emoji, user_id FROM reactions
		WHERE message_id IN (SELECT value FROM json_each(?)) ORDER BY message_id, emoji, pos`, idArray(ids))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[chat.MessageID][]chat.Reaction)
	for rows.Next() {
		var id chat.MessageID
		var emoji string
		var user chat.UserID
		if err := rows.Scan(&id, &emoji, &user); err != nil {
			return nil, err
		}
		rs := out[id]
		if len(rs) == 0 || rs[len(rs)-1].Emoji != emoji {
			rs = append(rs, chat.Reaction{Emoji: emoji})
		}
		rs[len(rs)-1].Users = append(rs[len(rs)-1].Users, user)
		out[id] = rs
	}
	return out, rows.Err()
}

// attachReactions sets the Reactions of msgs (see loadReactions).
func attachReactions(ctx context.Context, q querier, msgs ...*chat.Message) error {
	reactions, err := loadReactions(ctx, q, msgs)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		m.Reactions = reactions[m.ID]
	}
	return nil
}

// pointers returns pointers to the elements of msgs.
func pointers(msgs []chat.Message) []*chat.Message {
	out := make([]*chat.Message, len(msgs))
	for i := range msgs {
		out[i] = &msgs[i]
	}
	return out
}

// getMessage reads a message of conv with its reactions; sql.ErrNoRows if
// conv has no such message.
func getMessage(ctx context.Context, q querier, conv chat.ConversationID, id chat.MessageID) (chat.Message, error) {
	m, err := scanMessage(q.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages m WHERE m.id = ? AND m.conv_id = ?`,
		int64(id), int64(conv)))
	if err != nil {
		return chat.Message{}, err
	}
	if err := attachReactions(ctx, q, &m); err != nil {
		return chat.Message{}, err
	}
	return m, nil
}

// GetMessage implements chat.Store.
func (s *Store) GetMessage(ctx context.Context, conv chat.ConversationID, id chat.MessageID) (chat.Message, error) {
	const op = "sqlite.GetMessage"
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	m, err := getMessage(ctx, tx, conv, id)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Message{}, newError(op, chat.CodeNotFound, "message not found")
	}
	if err != nil {
		return chat.Message{}, chat.Unavailable(op, err)
	}
	return m, nil
}

// ListMessages implements chat.Store: forward (q.Forward or q.After > 0)
// pages ascend from seq After+1, backward pages descend from seq Before-1 or
// the newest. Limit is clamped to [1, chat.MaxPageSize]; an unknown
// conversation has no messages. The page and its reactions are read in one
// snapshot.
func (s *Store) ListMessages(ctx context.Context, q chat.MessageQuery) ([]chat.Message, error) {
	const op = "sqlite.ListMessages"
	limit := min(max(q.Limit, 1), chat.MaxPageSize)
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	var rows *sql.Rows
	if q.Forward || q.After > 0 {
		rows, err = tx.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages m
			WHERE m.conv_id = ? AND m.seq > ? ORDER BY m.seq LIMIT ?`, int64(q.Conv), q.After, limit)
	} else {
		before := q.Before
		if before <= 0 {
			before = math.MaxInt64
		}
		rows, err = tx.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages m
			WHERE m.conv_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?`, int64(q.Conv), before, limit)
	}
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	msgs, err := collect(rows, scanMessage)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	if err := attachReactions(ctx, tx, pointers(msgs)...); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return msgs, nil
}
