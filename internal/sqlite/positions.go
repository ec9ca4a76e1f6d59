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

// counter hands out the positions of one write transaction that may need
// several: it reads the counter once and save writes it back once.
type counter struct {
	read, last int64
}

// readCounter reads the newest position handed out so far. It must run
// inside a write transaction.
func readCounter(ctx context.Context, tx *sql.Tx) (*counter, error) {
	var pos int64
	if err := tx.QueryRowContext(ctx, `SELECT pos FROM positions WHERE id = 1`).Scan(&pos); err != nil {
		return nil, err
	}
	return &counter{read: pos, last: pos}, nil
}

// peek returns the position take will return next.
func (c *counter) peek() int64 { return c.last + 1 }

// take returns the next position.
func (c *counter) take() int64 {
	c.last++
	return c.last
}

// save stores the newest position taken, if any was.
func (c *counter) save(ctx context.Context, tx *sql.Tx) error {
	if c.last == c.read {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE positions SET pos = ? WHERE id = 1`, c.last)
	return err
}

// nextPos takes one position, for a write transaction that needs one.
func nextPos(ctx context.Context, tx *sql.Tx) (int64, error) {
	var pos int64
	err := tx.QueryRowContext(ctx, `UPDATE positions SET pos = pos + 1 WHERE id = 1 RETURNING pos`).Scan(&pos)
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
