package sqlite

import (
	"context"
	"database/sql"

	"github.com/natter-chat/natter/internal/chat"
)

// Change positions come from the one-row table positions. They are taken
// inside the write transaction that uses them, and all writes go through
// the single writer connection, so positions are unique and increase in
// commit order; a transaction that rolls back gives its positions back.

// The counter's statements, prepared once on the writer connection: the
// send path runs them for every batch.
const (
	readPosSQL = `SELECT pos FROM positions WHERE id = 1`
	savePosSQL = `UPDATE positions SET pos = ?1 WHERE id = 1`
	takePosSQL = `UPDATE positions SET pos = pos + 1 WHERE id = 1 RETURNING pos`
)

// counter hands out the positions of one write transaction that may need
// several: it reads the counter once and save writes it back once.
type counter struct {
	read, last int64
	update     *sql.Stmt // savePosSQL, bound to the transaction
}

// readCounter reads the newest position handed out so far, inside the
// write transaction tx.
func (s *Store) readCounter(ctx context.Context, tx *sql.Tx) (*counter, error) {
	var pos int64
	if err := tx.StmtContext(ctx, s.readPos).QueryRowContext(ctx).Scan(&pos); err != nil {
		return nil, err
	}
	return &counter{read: pos, last: pos, update: tx.StmtContext(ctx, s.savePos)}, nil
}

// peek returns the position take will return next.
func (c *counter) peek() int64 { return c.last + 1 }

// take returns the next position.
func (c *counter) take() int64 {
	c.last++
	return c.last
}

// save stores the newest position taken, if any was.
func (c *counter) save(ctx context.Context) error {
	if c.last == c.read {
		return nil
	}
	_, err := c.update.ExecContext(ctx, c.last)
	return err
}

// nextPos takes one position, for a write transaction that needs one.
func (s *Store) nextPos(ctx context.Context, tx *sql.Tx) (int64, error) {
	var pos int64
	err := tx.StmtContext(ctx, s.takePos).QueryRowContext(ctx).Scan(&pos)
	return pos, err
}

// Position implements chat.Store: the newest position handed out, 0 when
// none.
func (s *Store) Position(ctx context.Context) (int64, error) {
	var pos int64
	if err := s.r.QueryRowContext(ctx, `SELECT pos FROM positions WHERE id = 1`).Scan(&pos); err != nil {
		return 0, chat.Unavailable("sqlite.Position", err)
	}
	return pos, nil
}
