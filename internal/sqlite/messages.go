package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"math"

	"github.com/natter-chat/natter/internal/chat"
)

// The send path's statements, prepared once on the writer connection.
//
// insertMessageSQL stores a draft with its conversation's next seq and
// returns that seq. It returns no row when the conversation does not exist
// or when (conv, sender, client_id) is already stored, whether by an earlier
// batch or earlier in this one: findMessageSQL then tells the two apart.
// Doing the insert first keeps the common path at two statements per
// message; the seq is still read and advanced inside the transaction, under
// the single writer, so it is exactly last_seq + 1.
const (
	insertMessageSQL = `INSERT INTO messages (id, conv_id, seq, sender_id, client_id, text, sent_at)
		SELECT ?1, id, last_seq + 1, ?2, ?3, ?4, ?5 FROM conversations WHERE id = ?6
		ON CONFLICT (conv_id, sender_id, client_id) DO NOTHING
		RETURNING seq`
	bumpSeqSQL     = `UPDATE conversations SET last_seq = ?1, last_activity_at = ?2 WHERE id = ?3`
	findMessageSQL = `SELECT id, seq, text, sent_at FROM messages WHERE conv_id = ?1 AND sender_id = ?2 AND client_id = ?3`
)

func (s *Store) prepare(ctx context.Context) error {
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&s.insertMessage, insertMessageSQL},
		{&s.bumpSeq, bumpSeqSQL},
		{&s.findMessage, findMessageSQL},
	} {
		st, err := s.w.PrepareContext(ctx, p.sql)
		if err != nil {
			return err
		}
		*p.stmt = st
	}
	return nil
}

// AppendMessages implements chat.Store: the whole batch is one write
// transaction, committed (and fsynced) before it returns. A draft with an
// empty ClientID is stored with a NULL client_id and so is never taken for
// a retry. Per-draft errors: CodeNotFound for a conversation or sender that
// does not exist, CodeConflict for a message id already used. Any other
// failure rolls back the batch and returns CodeUnavailable with nil results.
func (s *Store) AppendMessages(ctx context.Context, drafts []chat.Draft) ([]chat.AppendResult, error) {
	const op = "sqlite.AppendMessages"
	if len(drafts) == 0 {
		return []chat.AppendResult{}, nil
	}
	results, err := s.appendFast(ctx, drafts)
	if !errors.Is(err, errSlowPath) {
		if err != nil {
			return nil, chat.Unavailable(op, err)
		}
		return results, nil
	}
	return s.appendRowByRow(ctx, drafts)
}

// appendFast stores the batch with set-based statements (see appendBatch).
func (s *Store) appendFast(ctx context.Context, drafts []chat.Draft) ([]chat.AppendResult, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	results, err := appendBatch(ctx, tx, drafts)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return results, nil
}

// appendRowByRow stores the batch two statements per draft, so that a
// problem of one draft (unknown sender, reused id) fails that draft only.
func (s *Store) appendRowByRow(ctx context.Context, drafts []chat.Draft) ([]chat.AppendResult, error) {
	const op = "sqlite.AppendMessages"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer tx.Rollback()
	a := appender{
		ctx:    ctx,
		insert: tx.StmtContext(ctx, s.insertMessage),
		bump:   tx.StmtContext(ctx, s.bumpSeq),
		find:   tx.StmtContext(ctx, s.findMessage),
	}
	results := make([]chat.AppendResult, len(drafts))
	for i := range drafts {
		if err := a.appendOne(&drafts[i], &results[i]); err != nil {
			return nil, chat.Unavailable(op, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return results, nil
}

// appender holds one AppendMessages transaction's statements.
type appender struct {
	ctx                context.Context
	insert, bump, find *sql.Stmt
}

// appendOne stores d and fills r. It returns an error only when the
// transaction cannot go on; an error of d alone goes into r.Err.
func (a *appender) appendOne(d *chat.Draft, r *chat.AppendResult) error {
	const op = "sqlite.AppendMessages"
	sentAt := ms(d.SentAt)
	clientID := sql.NullString{String: d.ClientID, Valid: d.ClientID != ""}
	var seq int64
	err := a.insert.QueryRowContext(a.ctx, int64(d.ID), int64(d.Sender), clientID, d.Text, sentAt, int64(d.Conv)).Scan(&seq)
	switch {
	case err == nil:
		if _, err := a.bump.ExecContext(a.ctx, seq, sentAt, int64(d.Conv)); err != nil {
			return err
		}
		r.Message = chat.Message{ID: d.ID, Conv: d.Conv, Seq: seq, Sender: d.Sender, ClientID: d.ClientID, Text: d.Text, SentAt: fromMS(sentAt)}
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return a.findDuplicate(d, clientID, r)
	case resultCode(err) == violatesForeignKey: // the sender; a missing conversation inserts no row
		r.Err = newError(op, chat.CodeNotFound, "the sender is not a user")
		return nil
	case resultCode(err) == violatesPrimaryKey:
		r.Err = newError(op, chat.CodeConflict, "the message id is already used")
		return nil
	default:
		return err
	}
}

// findDuplicate fills r for a draft that inserted no row: with the stored
// message if it is a retry, else with CodeNotFound for its conversation.
func (a *appender) findDuplicate(d *chat.Draft, clientID sql.NullString, r *chat.AppendResult) error {
	var m chat.Message
	var sentAt int64
	err := a.find.QueryRowContext(a.ctx, int64(d.Conv), int64(d.Sender), clientID).Scan(&m.ID, &m.Seq, &m.Text, &sentAt)
	if errors.Is(err, sql.ErrNoRows) {
		r.Err = newError("sqlite.AppendMessages", chat.CodeNotFound, "conversation not found")
		return nil
	}
	if err != nil {
		return err
	}
	m.Conv, m.Sender, m.ClientID, m.SentAt = d.Conv, d.Sender, d.ClientID, fromMS(sentAt)
	r.Message, r.Duplicate = m, true
	return nil
}

// ListMessages implements chat.Store: forward (q.Forward or q.After > 0)
// pages ascend from seq After+1, backward pages descend from seq Before-1 or
// the newest. Limit is clamped to [1, chat.MaxPageSize]; an unknown
// conversation has no messages.
func (s *Store) ListMessages(ctx context.Context, q chat.MessageQuery) ([]chat.Message, error) {
	const op = "sqlite.ListMessages"
	limit := min(max(q.Limit, 1), chat.MaxPageSize)
	var rows *sql.Rows
	var err error
	if q.Forward || q.After > 0 {
		rows, err = s.r.QueryContext(ctx, `SELECT id, seq, sender_id, client_id, text, sent_at FROM messages
			WHERE conv_id = ? AND seq > ? ORDER BY seq LIMIT ?`, int64(q.Conv), q.After, limit)
	} else {
		before := q.Before
		if before <= 0 {
			before = math.MaxInt64
		}
		rows, err = s.r.QueryContext(ctx, `SELECT id, seq, sender_id, client_id, text, sent_at FROM messages
			WHERE conv_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, int64(q.Conv), before, limit)
	}
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	msgs, err := collect(rows, func(row scanner) (chat.Message, error) {
		m := chat.Message{Conv: q.Conv}
		var clientID sql.NullString
		var sentAt int64
		err := row.Scan(&m.ID, &m.Seq, &m.Sender, &clientID, &m.Text, &sentAt)
		m.ClientID, m.SentAt = clientID.String, fromMS(sentAt)
		return m, err
	})
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return msgs, nil
}
