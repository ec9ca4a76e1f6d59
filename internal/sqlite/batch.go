package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"

	"github.com/natter-chat/natter/internal/chat"
)

// errSlowPath reports that a batch hit a per-draft problem (an unknown
// sender, a reused message id) that the set-based path cannot attribute to
// one draft: the caller rolls back and replays the batch row by row.
var errSlowPath = errors.New("sqlite: batch needs the row-by-row path")

// maxRows bounds the rows of one multi-row statement (10 variables a row,
// far below SQLite's 32,766 variable limit).
const maxRows = 200

// appendBatch stores drafts with a handful of set-based statements instead
// of two per draft: read the conversations' last seqs, find which drafts
// are retries and which reply_to ids are stored messages, assign seqs and
// positions in Go, insert all new rows, and advance every conversation's
// last_seq and the position counter once. It runs inside the caller's
// write transaction, under SQLite's single writer, so each seq is exactly
// the previous last_seq + 1 of its conversation, and each position the
// previous one + 1, as in the row-by-row path.
func appendBatch(ctx context.Context, tx *sql.Tx, pos *counter, drafts []chat.Draft) ([]chat.AppendResult, error) {
	const op = "sqlite.AppendMessages"
	lastSeq, err := lastSeqs(ctx, tx, drafts)
	if err != nil {
		return nil, err
	}
	stored, err := storedRetries(ctx, tx, drafts)
	if err != nil {
		return nil, err
	}
	replyConv, err := replyTargets(ctx, tx, drafts)
	if err != nil {
		return nil, err
	}
	results := make([]chat.AppendResult, len(drafts))
	inBatch := make(map[retryKey]int, len(drafts)) // first draft of each idempotency key
	fresh := make([]int, 0, len(drafts))           // drafts to insert
	for i := range drafts {
		d := &drafts[i]
		last, ok := lastSeq[d.Conv]
		if !ok {
			results[i].Err = newError(op, chat.CodeNotFound, "conversation not found")
			continue
		}
		if d.ClientID != "" {
			k := retryKey{d.Conv, d.Sender, d.ClientID}
			if m, ok := stored[k]; ok {
				results[i] = chat.AppendResult{Message: m, Duplicate: true}
				continue
			}
			if j, ok := inBatch[k]; ok {
				results[i] = chat.AppendResult{Message: results[j].Message, Duplicate: true}
				continue
			}
		}
		if d.ReplyTo != 0 {
			if conv, ok := replyConv[d.ReplyTo]; !ok || conv != d.Conv {
				results[i].Err = newError(op, chat.CodeInvalidArgument, "reply_to is not a message of this conversation")
				continue
			}
		}
		if d.ClientID != "" {
			inBatch[retryKey{d.Conv, d.Sender, d.ClientID}] = i
		}
		last++
		lastSeq[d.Conv] = last
		results[i].Message = newMessage(d, last, pos.take())
		fresh = append(fresh, i)
		if replyConv != nil {
			replyConv[d.ID] = d.Conv // a later draft may reply to this one
		}
	}
	if err := insertRows(ctx, tx, results, fresh); err != nil {
		return nil, err
	}
	if err := advanceSeqs(ctx, tx, results, fresh); err != nil {
		return nil, err
	}
	if err := pos.save(ctx); err != nil {
		return nil, err
	}
	return results, nil
}

// lastSeqs reads the last seq of every conversation the drafts name; a
// conversation that does not exist is absent from the map.
func lastSeqs(ctx context.Context, tx *sql.Tx, drafts []chat.Draft) (map[chat.ConversationID]int64, error) {
	out := make(map[chat.ConversationID]int64)
	seen := make(map[chat.ConversationID]bool)
	var ids []any
	for _, d := range drafts {
		if !seen[d.Conv] {
			seen[d.Conv] = true
			ids = append(ids, int64(d.Conv))
		}
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), maxRows)]
		ids = ids[len(chunk):]
		rows, err := tx.QueryContext(ctx, `SELECT id, last_seq FROM conversations WHERE id IN (`+placeholders(len(chunk), 1)+`)`, chunk...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				rows.Close()
				return nil, err
			}
			out[chat.ConversationID(id)] = seq
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// retryKey is a message's idempotency key.
type retryKey struct {
	conv   chat.ConversationID
	sender chat.UserID
	client string
}

// storedRetries returns the already stored messages, as they are now,
// whose (conv, sender, client_id) some draft repeats.
func storedRetries(ctx context.Context, tx *sql.Tx, drafts []chat.Draft) (map[retryKey]chat.Message, error) {
	var args []any
	for _, d := range drafts {
		if d.ClientID != "" {
			args = append(args, int64(d.Conv), int64(d.Sender), d.ClientID)
		}
	}
	var found []chat.Message
	for len(args) > 0 {
		chunk := args[:min(len(args), 3*maxRows)]
		args = args[len(chunk):]
		rows, err := tx.QueryContext(ctx, `SELECT `+messageColumns+`
			FROM (VALUES `+placeholders(len(chunk)/3, 3)+`) AS v
			JOIN messages m ON m.conv_id = v.column1 AND m.sender_id = v.column2 AND m.client_id = v.column3`, chunk...)
		if err != nil {
			return nil, err
		}
		msgs, err := collect(rows, scanMessage)
		if err != nil {
			return nil, err
		}
		found = append(found, msgs...)
	}
	if len(found) == 0 {
		return nil, nil
	}
	if err := attachReactions(ctx, tx, pointers(found)...); err != nil {
		return nil, err
	}
	out := make(map[retryKey]chat.Message, len(found))
	for _, m := range found {
		out[retryKey{m.Conv, m.Sender, m.ClientID}] = m
	}
	return out, nil
}

// replyTargets returns the conversation of each stored message that some
// draft replies to; nil when no draft replies to anything.
func replyTargets(ctx context.Context, tx *sql.Tx, drafts []chat.Draft) (map[chat.MessageID]chat.ConversationID, error) {
	var ids []chat.MessageID
	for _, d := range drafts {
		if d.ReplyTo != 0 {
			ids = append(ids, d.ReplyTo)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, conv_id FROM messages WHERE id IN (SELECT value FROM json_each(?))`, idArray(ids))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[chat.MessageID]chat.ConversationID, len(ids))
	for rows.Next() {
		var id chat.MessageID
		var conv chat.ConversationID
		if err := rows.Scan(&id, &conv); err != nil {
			return nil, err
		}
		out[id] = conv
	}
	return out, rows.Err()
}

// insertRows inserts the fresh messages, maxRows a statement. A chunk in
// which no message replies or mentions anyone leaves those columns out
// (NULL): the statement is parsed anew for every batch, and a shorter one
// parses faster.
func insertRows(ctx context.Context, tx *sql.Tx, results []chat.AppendResult, fresh []int) error {
	for len(fresh) > 0 {
		chunk := fresh[:min(len(fresh), maxRows)]
		fresh = fresh[len(chunk):]
		plain := !slices.ContainsFunc(chunk, func(i int) bool {
			m := &results[i].Message
			return m.ReplyTo != 0 || len(m.Mentions) > 0
		})
		columns, width := `id, conv_id, seq, sender_id, client_id, text, sent_at, pos, reply_to, mentions`, 10
		if plain {
			columns, width = `id, conv_id, seq, sender_id, client_id, text, sent_at, pos`, 8
		}
		args := make([]any, 0, width*len(chunk))
		for _, i := range chunk {
			m := &results[i].Message
			clientID := sql.NullString{String: m.ClientID, Valid: m.ClientID != ""}
			args = append(args, int64(m.ID), int64(m.Conv), m.Seq, int64(m.Sender), clientID, m.Text, ms(m.SentAt), m.Pos)
			if !plain {
				args = append(args, replyValue(m.ReplyTo), mentionsValue(m.Mentions))
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO messages (`+columns+`) VALUES `+placeholders(len(chunk), width), args...)
		if code := resultCode(err); code == violatesForeignKey || code == violatesPrimaryKey {
			return errSlowPath
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// advanceSeqs sets each touched conversation's last_seq and activity time
// to those of its newest new message.
func advanceSeqs(ctx context.Context, tx *sql.Tx, results []chat.AppendResult, fresh []int) error {
	newest := make(map[chat.ConversationID]*chat.Message)
	for _, i := range fresh {
		newest[results[i].Message.Conv] = &results[i].Message // fresh is in seq order per conversation
	}
	args := make([]any, 0, 3*len(newest))
	for _, m := range newest {
		args = append(args, int64(m.Conv), m.Seq, ms(m.SentAt))
	}
	for len(args) > 0 {
		chunk := args[:min(len(args), 3*maxRows)]
		args = args[len(chunk):]
		if _, err := tx.ExecContext(ctx, `UPDATE conversations SET last_seq = v.column2, last_activity_at = v.column3
			FROM (VALUES `+placeholders(len(chunk)/3, 3)+`) AS v WHERE conversations.id = v.column1`, chunk...); err != nil {
			return err
		}
	}
	return nil
}

// placeholders returns n groups of width "?" separated by commas; groups
// of more than one are parenthesised: "(?,?),(?,?)".
func placeholders(n, width int) string {
	var b strings.Builder
	b.Grow(n * (2*width + 2))
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if width > 1 {
			b.WriteByte('(')
		}
		for j := range width {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
		}
		if width > 1 {
			b.WriteByte(')')
		}
	}
	return b.String()
}
