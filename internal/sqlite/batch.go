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

// batchStatements are the set-based path's multi-row statements for chunks
// of up to rows rows, prepared once on the writer connection: parsing
// statements of hundreds of placeholders anew for every batch cost a
// quarter of the path's CPU. A shorter chunk binds NULL to the variables
// of its missing rows, which every statement skips: a NULL id matches no
// row and inserts none.
type batchStatements struct {
	rows        int
	lastSeqs    *sql.Stmt // conversations' last seqs, by id
	retries     *sql.Stmt // stored messages, by (conv, sender, client_id)
	insertPlain *sql.Stmt // new messages, without reply_to and mentions
	insertFull  *sql.Stmt // new messages
	advance     *sql.Stmt // conversations' last seq and activity time, by id
}

// The columns insertPlain and insertFull set, in the order of their
// variables.
const (
	plainColumns = `id, conv_id, seq, sender_id, client_id, text, sent_at, pos`
	fullColumns  = plainColumns + `, reply_to, mentions`
)

// rowsBucket returns the chunk size of the statements for batches of n
// drafts: the next power of two, at most maxRows; so at most nine sets of
// statements are ever prepared.
func rowsBucket(n int) int {
	rows := 1
	for rows < n {
		rows *= 2
	}
	return min(rows, maxRows)
}

// batchStatementsFor returns the statements for batches of n drafts,
// preparing them on first use. It must not run inside a write transaction:
// preparing needs the one writer connection.
func (s *Store) batchStatementsFor(ctx context.Context, n int) (*batchStatements, error) {
	rows := rowsBucket(n)
	s.batchMu.Lock()
	defer s.batchMu.Unlock()
	if st := s.batches[rows]; st != nil {
		return st, nil
	}
	st := &batchStatements{rows: rows}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&st.lastSeqs, `SELECT id, last_seq FROM conversations WHERE id IN (` + placeholders(rows, 1) + `)`},
		{&st.retries, `SELECT ` + messageColumns + ` FROM (VALUES ` + placeholders(rows, 3) + `) AS v
			JOIN messages m ON m.conv_id = v.column1 AND m.sender_id = v.column2 AND m.client_id = v.column3`},
		{&st.insertPlain, `INSERT INTO messages (` + plainColumns + `)
			SELECT * FROM (VALUES ` + placeholders(rows, 8) + `) WHERE column1 IS NOT NULL`},
		{&st.insertFull, `INSERT INTO messages (` + fullColumns + `)
			SELECT * FROM (VALUES ` + placeholders(rows, 10) + `) WHERE column1 IS NOT NULL`},
		{&st.advance, `UPDATE conversations SET last_seq = v.column2, last_activity_at = v.column3
			FROM (VALUES ` + placeholders(rows, 3) + `) AS v WHERE conversations.id = v.column1`},
	} {
		stmt, err := s.w.PrepareContext(ctx, p.sql)
		if err != nil {
			st.close()
			return nil, err
		}
		*p.stmt = stmt
	}
	s.batches[rows] = st
	return st, nil
}

// close closes the statements prepared so far.
func (st *batchStatements) close() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{st.lastSeqs, st.retries, st.insertPlain, st.insertFull, st.advance} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	return errors.Join(errs...)
}

// chunks calls f with args cut into chunks of rows rows of width variables
// each, the last one padded with NULLs to full size.
func chunks(args []any, rows, width int, f func(chunk []any) error) error {
	size := rows * width
	for len(args) > 0 {
		chunk := args[:min(len(args), size)]
		args = args[len(chunk):]
		if len(chunk) < size {
			chunk = append(chunk[:len(chunk):len(chunk)], make([]any, size-len(chunk))...)
		}
		if err := f(chunk); err != nil {
			return err
		}
	}
	return nil
}

// appendBatch stores drafts with a handful of set-based statements instead
// of two per draft: read the conversations' last seqs, find which drafts
// are retries and which reply_to ids are stored messages, assign seqs and
// positions in Go, insert all new rows, and advance every conversation's
// last_seq and the position counter once. It runs inside the caller's
// write transaction, under SQLite's single writer, so each seq is exactly
// the previous last_seq + 1 of its conversation, and each position the
// previous one + 1, as in the row-by-row path.
func appendBatch(ctx context.Context, tx *sql.Tx, st *batchStatements, pos *counter, drafts []chat.Draft) ([]chat.AppendResult, error) {
	const op = "sqlite.AppendMessages"
	lastSeq, err := lastSeqs(ctx, tx, st, drafts)
	if err != nil {
		return nil, err
	}
	stored, err := storedRetries(ctx, tx, st, drafts)
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
	if err := insertRows(ctx, tx, st, results, fresh); err != nil {
		return nil, err
	}
	if err := advanceSeqs(ctx, tx, st, results, fresh); err != nil {
		return nil, err
	}
	if err := pos.save(ctx); err != nil {
		return nil, err
	}
	return results, nil
}

// lastSeqs reads the last seq of every conversation the drafts name; a
// conversation that does not exist is absent from the map.
func lastSeqs(ctx context.Context, tx *sql.Tx, st *batchStatements, drafts []chat.Draft) (map[chat.ConversationID]int64, error) {
	out := make(map[chat.ConversationID]int64)
	seen := make(map[chat.ConversationID]bool)
	var ids []any
	for _, d := range drafts {
		if !seen[d.Conv] {
			seen[d.Conv] = true
			ids = append(ids, int64(d.Conv))
		}
	}
	stmt := tx.StmtContext(ctx, st.lastSeqs)
	err := chunks(ids, st.rows, 1, func(chunk []any) error {
		rows, err := stmt.QueryContext(ctx, chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				return err
			}
			out[chat.ConversationID(id)] = seq
		}
		return rows.Close()
	})
	if err != nil {
		return nil, err
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
func storedRetries(ctx context.Context, tx *sql.Tx, st *batchStatements, drafts []chat.Draft) (map[retryKey]chat.Message, error) {
	var args []any
	for _, d := range drafts {
		if d.ClientID != "" {
			args = append(args, int64(d.Conv), int64(d.Sender), d.ClientID)
		}
	}
	var found []chat.Message
	stmt := tx.StmtContext(ctx, st.retries)
	err := chunks(args, st.rows, 3, func(chunk []any) error {
		rows, err := stmt.QueryContext(ctx, chunk...)
		if err != nil {
			return err
		}
		msgs, err := collect(rows, scanMessage)
		found = append(found, msgs...)
		return err
	})
	if err != nil || len(found) == 0 {
		return nil, err
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

// insertRows inserts the fresh messages. A chunk in which no message
// replies or mentions anyone leaves those columns out (NULL), binding a
// fifth fewer variables.
func insertRows(ctx context.Context, tx *sql.Tx, st *batchStatements, results []chat.AppendResult, fresh []int) error {
	for len(fresh) > 0 {
		chunk := fresh[:min(len(fresh), st.rows)]
		fresh = fresh[len(chunk):]
		plain := !slices.ContainsFunc(chunk, func(i int) bool {
			m := &results[i].Message
			return m.ReplyTo != 0 || len(m.Mentions) > 0
		})
		stmt, width := st.insertFull, 10
		if plain {
			stmt, width = st.insertPlain, 8
		}
		args := make([]any, 0, width*st.rows)
		for _, i := range chunk {
			m := &results[i].Message
			clientID := sql.NullString{String: m.ClientID, Valid: m.ClientID != ""}
			args = append(args, int64(m.ID), int64(m.Conv), m.Seq, int64(m.Sender), clientID, m.Text, ms(m.SentAt), m.Pos)
			if !plain {
				args = append(args, replyValue(m.ReplyTo), mentionsValue(m.Mentions))
			}
		}
		err := chunks(args, st.rows, width, func(padded []any) error {
			_, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, padded...)
			return err
		})
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
func advanceSeqs(ctx context.Context, tx *sql.Tx, st *batchStatements, results []chat.AppendResult, fresh []int) error {
	newest := make(map[chat.ConversationID]*chat.Message)
	for _, i := range fresh {
		newest[results[i].Message.Conv] = &results[i].Message // fresh is in seq order per conversation
	}
	args := make([]any, 0, 3*len(newest))
	for _, m := range newest {
		args = append(args, int64(m.Conv), m.Seq, ms(m.SentAt))
	}
	stmt := tx.StmtContext(ctx, st.advance)
	return chunks(args, st.rows, 3, func(chunk []any) error {
		_, err := stmt.ExecContext(ctx, chunk...)
		return err
	})
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
