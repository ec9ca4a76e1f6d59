package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/natter-chat/natter/internal/chat"
)

// newError returns an *Error for a failure a user can cause. msg is shown to
// users, so it never carries SQL or driver text.
func newError(op string, code chat.Code, msg string) error {
	return &chat.Error{Code: code, Message: msg, Op: op}
}

// The SQLSTATEs the store tells apart; see Appendix A of the PostgreSQL
// manual.
const (
	uniqueViolation      = "23505"
	foreignKeyViolation  = "23503"
	checkViolation       = "23514"
	notNullViolation     = "23502"
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
)

// sqlState returns the SQLSTATE of a server error, or "" for any other
// error (a network failure, a cancelled context, a closed pool).
func sqlState(err error) string {
	if e, ok := errors.AsType[*pgconn.PgError](err); ok {
		return e.Code
	}
	return ""
}

// classify turns err into the store's contract, once: errors a caller can
// cause get a code, a statement the server cannot run at all (a bug, or a
// schema that does not match the build) is CodeInternal, and anything else
// (network, server shutdown, lock or statement timeouts, a cancelled
// context) is CodeUnavailable. A *chat.Error passes through. what names the
// row being written, for the messages users see; the cause is kept for
// logs only.
func classify(op, what string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*chat.Error](err); ok {
		return err
	}
	e, ok := errors.AsType[*pgconn.PgError](err)
	if !ok {
		return chat.Unavailable(op, err)
	}
	switch {
	case e.Code == uniqueViolation && e.ConstraintName == "users_username_key":
		return newError(op, chat.CodeUsernameTaken, "the username is taken")
	case e.Code == uniqueViolation:
		return newError(op, chat.CodeConflict, what+" already exists")
	case e.Code == foreignKeyViolation:
		return newError(op, chat.CodeNotFound, what+" refers to a user or conversation that does not exist")
	case e.Code == checkViolation || e.Code == notNullViolation:
		return newError(op, chat.CodeInvalidArgument, what+" has an invalid kind or role")
	case strings.HasPrefix(e.Code, "22"): // data exception: a NUL byte, invalid UTF-8, a number out of range
		return newError(op, chat.CodeInvalidArgument, what+" has a value that cannot be stored")
	case strings.HasPrefix(e.Code, "42"), strings.HasPrefix(e.Code, "0A"): // syntax, undefined table, not supported
		return &chat.Error{Code: chat.CodeInternal, Message: "internal error", Op: op, Err: err}
	}
	return chat.Unavailable(op, err)
}

// retryable reports whether a transaction failed only because it lost a
// race with another one, so that running it again may succeed.
func retryable(err error) bool {
	if errors.Is(err, errRaced) {
		return true
	}
	switch sqlState(err) {
	case serializationFailure, deadlockDetected:
		return true
	}
	return false
}

// errUnchanged, returned by the function a write runs, rolls the
// transaction back without an error: the write found nothing to change
// (and must give back any change position it took).
var errUnchanged = errors.New("postgres: nothing to change")

// maxAttempts bounds how often write runs a transaction that lost a race.
const maxAttempts = 4

// write runs fn in a READ COMMITTED transaction and commits it; it returns
// only after the commit is durable. A transaction that fails with a
// deadlock or serialization failure is run again, at most maxAttempts
// times in all, so fn must set its results afresh on every run. An error
// fn returns rolls the transaction back and is classified (what names the
// row written); errUnchanged rolls back and returns nil.
func (s *Store) write(ctx context.Context, op, what string, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.writeOnce(ctx, fn)
		switch {
		case err == nil, errors.Is(err, errUnchanged):
			return nil
		case attempt < maxAttempts && retryable(err) && ctx.Err() == nil:
			continue
		}
		return classify(op, what, err)
	}
}

// writeOnce runs fn in one transaction and commits it.
func (s *Store) writeOnce(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		// A server's answer (a PgError) means the transaction was rolled
		// back; anything else (the connection broke, ctx ended) leaves its
		// outcome unknown.
		if _, ok := errors.AsType[*pgconn.PgError](err); !ok {
			return fmt.Errorf("%w: %w", chat.ErrCommitUncertain, err)
		}
		return err
	}
	return nil
}

// read runs fn in a REPEATABLE READ, READ ONLY transaction: every query fn
// makes sees one snapshot, in which change positions form a gap-free
// prefix (see doc.go).
func (s *Store) read(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return chat.Unavailable(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return classify(op, "the read", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return chat.Unavailable(op, err)
	}
	return nil
}

// collect scans every row of rows with scan and closes rows.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
}

// takePositions takes n change positions inside tx and returns the first
// of them (the others follow it). It must be the last lock the transaction
// takes: the positions row stays locked until the transaction ends, and a
// transaction that holds it must never wait for another (see doc.go).
func takePositions(ctx context.Context, tx pgx.Tx, n int) (int64, error) {
	var last int64
	if err := tx.QueryRow(ctx, `UPDATE positions SET pos = pos + $1 WHERE id = 1 RETURNING pos`, n).Scan(&last); err != nil {
		return 0, err
	}
	return last - int64(n) + 1, nil
}

// Position implements chat.Store: the newest position handed out, 0 when
// none. Positions commit in order and a rollback gives its positions back,
// so every position up to it is committed.
func (s *Store) Position(ctx context.Context) (int64, error) {
	var pos int64
	if err := s.pool.QueryRow(ctx, `SELECT pos FROM positions WHERE id = 1`).Scan(&pos); err != nil {
		return 0, chat.Unavailable("postgres.Position", err)
	}
	return pos, nil
}
