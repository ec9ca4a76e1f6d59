package postgres

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/internal/chat"
)

// messageColumns are the columns scanMessage reads: those of the messages
// row aliased m, then its reactions aggregated by withReactions (aliased
// r), so that a message and its reactions come from one statement.
const messageColumns = `m.id, m.conv_id, m.seq, m.sender_id, m.client_id, m.text, m.sent_at,
	m.reply_to, m.mentions, m.edited_at, m.deleted_at, m.pos, r.emojis, r.users`

// withReactions follows the FROM item aliased m: the message's reactions
// as two parallel arrays, ordered by emoji and, within one emoji, by the
// position that added them (the order users reacted in); NULLs when none.
const withReactions = ` CROSS JOIN LATERAL (SELECT array_agg(x.emoji ORDER BY x.emoji, x.pos) AS emojis,
		array_agg(x.user_id ORDER BY x.emoji, x.pos) AS users
	FROM reactions x WHERE x.message_id = m.id) AS r`

// scanMessage scans messageColumns.
func scanMessage(row pgx.Row) (chat.Message, error) {
	var m chat.Message
	var clientID *string
	var replyTo *int64
	var mentions, reactors []int64
	var edited, deleted *time.Time
	var emojis []string
	if err := row.Scan(&m.ID, &m.Conv, &m.Seq, &m.Sender, &clientID, &m.Text, &m.SentAt,
		&replyTo, &mentions, &edited, &deleted, &m.Pos, &emojis, &reactors); err != nil {
		return chat.Message{}, err
	}
	if clientID != nil {
		m.ClientID = *clientID
	}
	if replyTo != nil {
		m.ReplyTo = chat.MessageID(*replyTo)
	}
	m.SentAt, m.EditedAt, m.DeletedAt = m.SentAt.UTC(), fromNull(edited), fromNull(deleted)
	m.Mentions = ids[chat.UserID](mentions)
	for i, emoji := range emojis {
		if len(m.Reactions) == 0 || m.Reactions[len(m.Reactions)-1].Emoji != emoji {
			m.Reactions = append(m.Reactions, chat.Reaction{Emoji: emoji})
		}
		last := &m.Reactions[len(m.Reactions)-1]
		last.Users = append(last.Users, chat.UserID(reactors[i]))
	}
	return m, nil
}

// newMessage is the message d becomes when stored with seq at pos.
func newMessage(d *chat.Draft, seq, pos int64) chat.Message {
	m := chat.Message{ID: d.ID, Conv: d.Conv, Seq: seq, Sender: d.Sender, ClientID: d.ClientID, Text: d.Text,
		SentAt: ms(d.SentAt), ReplyTo: d.ReplyTo, Pos: pos}
	if len(d.Mentions) > 0 {
		m.Mentions = slices.Clone(d.Mentions)
	}
	return m
}

// mentionsLiteral is the text form of a bigint[] for mentions, for binding
// inside a text[] (unnest cannot take an array of arrays of varying
// length); nil, which becomes NULL, for none.
func mentionsLiteral(ids []chat.UserID) *string {
	if len(ids) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(int64(id), 10))
	}
	b.WriteByte('}')
	s := b.String()
	return &s
}

// mentionsValue is the stored form of mentions: nil (NULL) for none.
func mentionsValue(ids []chat.UserID) []int64 {
	if len(ids) == 0 {
		return nil
	}
	return int64s(ids)
}

// querier is a *pgxpool.Pool or a pgx.Tx.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// getMessage reads a message of conv with its reactions; pgx.ErrNoRows if
// conv has no such message.
func getMessage(ctx context.Context, q querier, conv chat.ConversationID, id chat.MessageID) (chat.Message, error) {
	return scanMessage(q.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages m`+withReactions+`
		WHERE m.id = $1 AND m.conv_id = $2`, int64(id), int64(conv)))
}

// GetMessage implements chat.Store.
func (s *Store) GetMessage(ctx context.Context, conv chat.ConversationID, id chat.MessageID) (chat.Message, error) {
	const op = "postgres.GetMessage"
	m, err := getMessage(ctx, s.pool, conv, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Message{}, newError(op, chat.CodeNotFound, "message not found")
	}
	if err != nil {
		return chat.Message{}, classify(op, "the message", err)
	}
	return m, nil
}

// ListMessages implements chat.Store: forward (q.Forward or q.After > 0)
// pages ascend from seq After+1, backward pages descend from seq Before-1 or
// the newest. Limit is clamped to [1, chat.MaxPageSize]; an unknown
// conversation has no messages. A page and its reactions are one statement,
// so one snapshot.
func (s *Store) ListMessages(ctx context.Context, q chat.MessageQuery) ([]chat.Message, error) {
	const op = "postgres.ListMessages"
	limit := min(max(q.Limit, 1), chat.MaxPageSize)
	var rows pgx.Rows
	var err error
	if q.Forward || q.After > 0 {
		rows, err = s.pool.Query(ctx, `SELECT `+messageColumns+` FROM messages m`+withReactions+`
			WHERE m.conv_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3`, int64(q.Conv), q.After, limit)
	} else {
		before := q.Before
		if before <= 0 {
			before = math.MaxInt64
		}
		rows, err = s.pool.Query(ctx, `SELECT `+messageColumns+` FROM messages m`+withReactions+`
			WHERE m.conv_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3`, int64(q.Conv), before, limit)
	}
	if err != nil {
		return nil, classify(op, "the messages", err)
	}
	msgs, err := collect(rows, scanMessage)
	if err != nil {
		return nil, classify(op, "the messages", err)
	}
	return msgs, nil
}
