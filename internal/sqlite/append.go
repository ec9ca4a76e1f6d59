package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/natter-chat/natter/internal/chat"
)

// The row-by-row send path's statements, prepared once on the writer
// connection.
//
// insertMessageSQL stores a draft with its conversation's next seq and
// returns that seq. It returns no row when the conversation does not exist
// or when (conv, sender, client_id) is already stored, whether by an earlier
// batch or earlier in this one: findMessageSQL then tells the two apart.
// Doing the insert first keeps the common path at two statements per
// message; the seq is still read and advanced inside the transaction, under
// the single writer, so it is exactly last_seq + 1.
const (
	insertMessageSQL = `INSERT INTO messages (id, conv_id, seq, sender_id, client_id, text, sent_at, reply_to, mentions, pos)
		SELECT ?1, id, last_seq + 1, ?2, ?3, ?4, ?5, ?7, ?8, ?9 FROM conversations WHERE id = ?6
		ON CONFLICT (conv_id, sender_id, client_id) DO NOTHING
		RETURNING seq`
	bumpSeqSQL     = `UPDATE conversations SET last_seq = ?1, last_activity_at = ?2 WHERE id = ?3`
	findMessageSQL = `SELECT ` + messageColumns + ` FROM messages m WHERE m.conv_id = ?1 AND m.sender_id = ?2 AND m.client_id = ?3`
)

func (s *Store) prepare(ctx context.Context) error {
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&s.insertMessage, insertMessageSQL},
		{&s.bumpSeq, bumpSeqSQL},
		{&s.findMessage, findMessageSQL},
		{&s.readPos, readPosSQL},
		{&s.savePos, savePosSQL},
		{&s.takePos, takePosSQL},
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
// transaction, committed (and fsynced) before it returns. Each new message
// takes the next change position, in batch order; a duplicate or a failed
// draft takes none. A draft with an empty ClientID is stored with a NULL
// client_id and so is never taken for a retry. A duplicate yields the
// stored message as it is now (edited, deleted, with its reactions).
// Per-draft errors: CodeNotFound for a conversation or sender that does
// not exist, CodeInvalidArgument for a ReplyTo that is neither a stored
// message of the draft's conversation nor an earlier new message of it in
// the batch, CodeConflict for a message id already used. Any other failure
// rolls back the batch and returns CodeUnavailable with nil results.
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
	st, err := s.batchStatementsFor(ctx, len(drafts))
	if err != nil {
		return nil, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	pos, err := s.readCounter(ctx, tx)
	if err != nil {
		return nil, err
	}
	results, err := appendBatch(ctx, tx, st, pos, drafts)
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
	pos, err := s.readCounter(ctx, tx)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	a := appender{
		ctx:    ctx,
		tx:     tx,
		pos:    pos,
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
	if err := pos.save(ctx); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return results, nil
}

// appender holds one AppendMessages transaction's statements.
type appender struct {
	ctx                context.Context
	tx                 *sql.Tx
	pos                *counter
	insert, bump, find *sql.Stmt
}

// appendOne stores d and fills r. It returns an error only when the
// transaction cannot go on; an error of d alone goes into r.Err.
func (a *appender) appendOne(d *chat.Draft, r *chat.AppendResult) error {
	const op = "sqlite.AppendMessages"
	sentAt := ms(d.SentAt)
	clientID := sql.NullString{String: d.ClientID, Valid: d.ClientID != ""}
	if d.ReplyTo != 0 {
		var one int
		err := a.tx.QueryRowContext(a.ctx, `SELECT 1 FROM messages WHERE id = ? AND conv_id = ?`, int64(d.ReplyTo), int64(d.Conv)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return a.refuseReply(d, clientID, r)
		}
		if err != nil {
			return err
		}
	}
	var seq int64
	err := a.insert.QueryRowContext(a.ctx, int64(d.ID), int64(d.Sender), clientID, d.Text, sentAt, int64(d.Conv),
		replyValue(d.ReplyTo), mentionsValue(d.Mentions), a.pos.peek()).Scan(&seq)
	switch {
	case err == nil:
		if _, err := a.bump.ExecContext(a.ctx, seq, sentAt, int64(d.Conv)); err != nil {
			return err
		}
		r.Message = newMessage(d, seq, a.pos.take())
		return nil
	case errors.Is(err, sql.ErrNoRows):
		found, err := a.findDuplicate(d, clientID, r)
		if err == nil && !found {
			r.Err = newError(op, chat.CodeNotFound, "conversation not found")
		}
		return err
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

// refuseReply fills r for a draft whose ReplyTo is not a message of its
// conversation: a retry still yields the stored message, a missing
// conversation is still CodeNotFound, and anything else is
// CodeInvalidArgument.
func (a *appender) refuseReply(d *chat.Draft, clientID sql.NullString, r *chat.AppendResult) error {
	const op = "sqlite.AppendMessages"
	if found, err := a.findDuplicate(d, clientID, r); err != nil || found {
		return err
	}
	var one int
	err := a.tx.QueryRowContext(a.ctx, `SELECT 1 FROM conversations WHERE id = ?`, int64(d.Conv)).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		r.Err = newError(op, chat.CodeNotFound, "conversation not found")
	case err == nil:
		r.Err = newError(op, chat.CodeInvalidArgument, "reply_to is not a message of this conversation")
	default:
		return err
	}
	return nil
}

// findDuplicate fills r with the stored message d repeats, if any, and
// reports whether there was one.
func (a *appender) findDuplicate(d *chat.Draft, clientID sql.NullString, r *chat.AppendResult) (bool, error) {
	if !clientID.Valid {
		return false, nil
	}
	m, err := scanMessage(a.find.QueryRowContext(a.ctx, int64(d.Conv), int64(d.Sender), clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := attachReactions(a.ctx, a.tx, &m); err != nil {
		return false, err
	}
	r.Message, r.Duplicate = m, true
	return true, nil
}
