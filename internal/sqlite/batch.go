package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/natter-chat/natter/internal/chat"
)

// errSlowPath reports that a batch hit a per-draft problem (an unknown
// sender, a reused message id) that the set-based path cannot attribute to
// one draft: the caller rolls back and replays the batch row by row.
var errSlowPath = errors.New("sqlite: batch needs the row-by-row path")

// maxRows bounds the rows of one multi-row statement (7 variables a row,
// far below SQLite's 32,766 variable limit).
const maxRows = 200

// appendBatch stores drafts with a handful of set-based statements instead
// of two per draft: read the conversations' last seqs, find which drafts
// are retries, assign seqs in Go, insert all new rows, and advance every
// conversation's last_seq. It runs inside the caller's write transaction,
// under SQLite's single writer, so each seq is exactly the previous
// last_seq + 1 of its conversation, as in the row-by-row path.
func appendBatch(ctx context.Context, tx *sql.Tx, drafts []chat.Draft) ([]chat.AppendResult, error) {
	lastSeq, err := lastSeqs(ctx, tx, drafts)
	if err != nil {
		return nil, err
	}
	stored, err := storedRetries(ctx, tx, drafts)
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
			results[i].Err = newError("sqlite.AppendMessages", chat.CodeNotFound, "conversation not found")
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
			inBatch[k] = i
		}
		last++
		lastSeq[d.Conv] = last
		results[i].Message = chat.Message{ID: d.ID, Conv: d.Conv, Seq: last, Sender: d.Sender, ClientID: d.ClientID, Text: d.Text, SentAt: fromMS(ms(d.SentAt))}
		fresh = append(fresh, i)
	}
	if err := insertRows(ctx, tx, results, fresh); err != nil {
		return nil, err
	}
	if err := advanceSeqs(ctx, tx, results, fresh); err != nil {
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

// storedRetries returns the already stored messages whose (conv, sender,
// client_id) some draft repeats.
func storedRetries(ctx context.Context, tx *sql.Tx, drafts []chat.Draft) (map[retryKey]chat.Message, error) {
	out := make(map[retryKey]chat.Message)
	var args []any
	for _, d := range drafts {
		if d.ClientID != "" {
			args = append(args, int64(d.Conv), int64(d.Sender), d.ClientID)
		}
	}
	for len(args) > 0 {
		chunk := args[:min(len(args), 3*maxRows)]
		args = args[len(chunk):]
		rows, err := tx.QueryContext(ctx, `SELECT m.conv_id, m.sender_id, m.client_id, m.id, m.seq, m.text, m.sent_at
			FROM (VALUES `+placeholders(len(chunk)/3, 3)+`) AS v
			JOIN messages m ON m.conv_id = v.column1 AND m.sender_id = v.column2 AND m.client_id = v.column3`, chunk...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var m chat.Message
			var sentAt int64
			if err := rows.Scan(&m.Conv, &m.Sender, &m.ClientID, &m.ID, &m.Seq, &m.Text, &sentAt); err != nil {
				rows.Close()
				return nil, err
			}
			m.SentAt = fromMS(sentAt)
			out[retryKey{m.Conv, m.Sender, m.ClientID}] = m
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func insertRows(ctx context.Context, tx *sql.Tx, results []chat.AppendResult, fresh []int) error {
	for len(fresh) > 0 {
		chunk := fresh[:min(len(fresh), maxRows)]
		fresh = fresh[len(chunk):]
		args := make([]any, 0, 7*len(chunk))
		for _, i := range chunk {
			m := &results[i].Message
			clientID := sql.NullString{String: m.ClientID, Valid: m.ClientID != ""}
			args = append(args, int64(m.ID), int64(m.Conv), m.Seq, int64(m.Sender), clientID, m.Text, ms(m.SentAt))
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO messages (id, conv_id, seq, sender_id, client_id, text, sent_at) VALUES `+
			placeholders(len(chunk), 7), args...)
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
