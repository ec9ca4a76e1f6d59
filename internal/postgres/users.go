package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/internal/chat"
)

const userColumns = `id, username, created_at`

func scanUser(row pgx.Row) (chat.User, error) {
	var u chat.User
	if err := row.Scan(&u.ID, &u.Username, &u.CreatedAt); err != nil {
		return chat.User{}, err
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}

// CreateUser stores u. A taken username gives CodeUsernameTaken, a taken id
// CodeConflict.
func (s *Store) CreateUser(ctx context.Context, u chat.User, passwordHash string) error {
	const op = "postgres.CreateUser"
	_, err := s.pool.Exec(ctx, `INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)`,
		int64(u.ID), u.Username, passwordHash, ms(u.CreatedAt))
	return classify(op, "the user", err)
}

// GetUser returns the user with id, or CodeNotFound.
func (s *Store) GetUser(ctx context.Context, id chat.UserID) (chat.User, error) {
	const op = "postgres.GetUser"
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, int64(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.User{}, newError(op, chat.CodeNotFound, "user not found")
	}
	if err != nil {
		return chat.User{}, classify(op, "the user", err)
	}
	return u, nil
}

// GetUserByUsername returns the user and its password hash, or CodeNotFound.
// username must already be lower case.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (chat.User, string, error) {
	const op = "postgres.GetUserByUsername"
	var u chat.User
	var hash string
	err := s.pool.QueryRow(ctx, `SELECT id, username, created_at, password_hash FROM users WHERE username = $1`, username).
		Scan(&u.ID, &u.Username, &u.CreatedAt, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.User{}, "", newError(op, chat.CodeNotFound, "user not found")
	}
	if err != nil {
		return chat.User{}, "", classify(op, "the user", err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, hash, nil
}

// ListUsers returns the users among ids that exist, ordered by id.
func (s *Store) ListUsers(ctx context.Context, ids []chat.UserID) ([]chat.User, error) {
	const op = "postgres.ListUsers"
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id = ANY($1) ORDER BY id`, int64s(ids))
	if err != nil {
		return nil, classify(op, "the users", err)
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, classify(op, "the users", err)
	}
	return users, nil
}

// SearchUsers implements chat.Store with a range scan of the username
// index: usernames >= prefix and < prefix + U+10FFFF in byte order (the
// column's "C" collation), so LIKE wildcards in the prefix mean nothing.
func (s *Store) SearchUsers(ctx context.Context, prefix, after string, limit int) ([]chat.User, error) {
	const op = "postgres.SearchUsers"
	limit = min(max(limit, 1), chat.MaxPageSize)
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users
		WHERE username >= $1 AND username > $2 AND username < $3 ORDER BY username LIMIT $4`,
		max(prefix, after), after, prefix+"\U0010FFFF", limit)
	if err != nil {
		return nil, classify(op, "the search", err)
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, classify(op, "the search", err)
	}
	if users == nil {
		users = []chat.User{}
	}
	return users, nil
}

const sessionColumns = `id, user_id, device, created_at, last_used_at, expires_at, revoked_at`

func scanSession(row pgx.Row) (chat.Session, error) {
	var s chat.Session
	var revoked *time.Time
	if err := row.Scan(&s.ID, &s.User, &s.Device, &s.CreatedAt, &s.LastUsedAt, &s.ExpiresAt, &revoked); err != nil {
		return chat.Session{}, err
	}
	s.CreatedAt, s.LastUsedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.LastUsedAt.UTC(), s.ExpiresAt.UTC()
	s.RevokedAt = fromNull(revoked)
	return s, nil
}

// CreateSession stores s with refreshHash as its current refresh token hash.
// An unknown user gives CodeNotFound; a taken id or hash CodeConflict.
func (s *Store) CreateSession(ctx context.Context, sess chat.Session, refreshHash string) error {
	const op = "postgres.CreateSession"
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (id, user_id, device, refresh_hash, created_at, last_used_at, expires_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		int64(sess.ID), int64(sess.User), sess.Device, refreshHash,
		ms(sess.CreatedAt), ms(sess.LastUsedAt), ms(sess.ExpiresAt), nullTime(sess.RevokedAt))
	return classify(op, "the session", err)
}

// RotateRefreshToken implements chat.Store in one transaction that locks
// the session row, so two nodes rotating the same token at once rotate it
// once: the second finds the hash rotated away and revokes the session, as
// for any reuse. On reuse the revocation is committed before
// CodeRefreshReused is returned.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash, newHash string, now time.Time, ttl time.Duration) (chat.Session, error) {
	const op = "postgres.RotateRefreshToken"
	var sess chat.Session
	var outcome error
	err := s.write(ctx, op, "the refresh token", func(tx pgx.Tx) error {
		var err error
		sess, outcome = chat.Session{}, nil
		sess, err = scanSession(tx.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE refresh_hash = $1 FOR UPDATE`, oldHash))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			sess, outcome, err = revokeReused(ctx, tx, op, oldHash, now)
			return err
		case err != nil:
			return err
		case !sess.Live(now):
			outcome = newError(op, chat.CodeUnauthenticated, "the session has ended; log in again")
			return errUnchanged
		}
		if _, err := tx.Exec(ctx, `INSERT INTO used_refresh_tokens (hash, session_id) VALUES ($1, $2)`, oldHash, int64(sess.ID)); err != nil {
			return err
		}
		sess.LastUsedAt, sess.ExpiresAt = ms(now), ms(now.Add(ttl))
		_, err = tx.Exec(ctx, `UPDATE sessions SET refresh_hash = $1, last_used_at = $2, expires_at = $3 WHERE id = $4`,
			newHash, sess.LastUsedAt, sess.ExpiresAt, int64(sess.ID))
		return err
	})
	if err != nil {
		return chat.Session{}, err
	}
	if outcome != nil {
		return sess, outcome
	}
	return sess, nil
}

// revokeReused handles a hash that is no session's current one: if it was
// rotated away, its session is revoked in tx (which the caller commits) and
// CodeRefreshReused returned as outcome with the revoked session's ID and
// User; otherwise outcome is CodeUnauthenticated and err errUnchanged, as
// tx has nothing to commit. err is any other failure.
func revokeReused(ctx context.Context, tx pgx.Tx, op, hash string, now time.Time) (revoked chat.Session, outcome, err error) {
	var id, user int64
	err = tx.QueryRow(ctx, `SELECT s.id, s.user_id FROM used_refresh_tokens u JOIN sessions s ON s.id = u.session_id
		WHERE u.hash = $1`, hash).Scan(&id, &user)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Session{}, newError(op, chat.CodeUnauthenticated, "unknown refresh token; log in again"), errUnchanged
	}
	if err != nil {
		return chat.Session{}, nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2`, ms(now), id); err != nil {
		return chat.Session{}, nil, err
	}
	revoked = chat.Session{ID: chat.SessionID(id), User: chat.UserID(user)}
	return revoked, newError(op, chat.CodeRefreshReused, "the refresh token was already used; the session is revoked, log in again"), nil
}

// GetSession returns the session with id, revoked or not, or CodeNotFound.
func (s *Store) GetSession(ctx context.Context, id chat.SessionID) (chat.Session, error) {
	const op = "postgres.GetSession"
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, int64(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Session{}, newError(op, chat.CodeNotFound, "session not found")
	}
	if err != nil {
		return chat.Session{}, classify(op, "the session", err)
	}
	return sess, nil
}

// ListSessions returns user's sessions that are live at now, newest first.
func (s *Store) ListSessions(ctx context.Context, user chat.UserID, now time.Time) ([]chat.Session, error) {
	const op = "postgres.ListSessions"
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
		ORDER BY created_at DESC, id DESC`, int64(user), ms(now))
	if err != nil {
		return nil, classify(op, "the sessions", err)
	}
	sessions, err := collect(rows, scanSession)
	if err != nil {
		return nil, classify(op, "the sessions", err)
	}
	return sessions, nil
}

// RevokeSession revokes user's session id at now. A session that is not the
// user's gives CodeNotFound; revoking again keeps the first revocation time.
func (s *Store) RevokeSession(ctx context.Context, user chat.UserID, id chat.SessionID, now time.Time) error {
	const op = "postgres.RevokeSession"
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 AND user_id = $3`,
		ms(now), int64(id), int64(user))
	if err != nil {
		return classify(op, "the session", err)
	}
	if tag.RowsAffected() == 0 {
		return newError(op, chat.CodeNotFound, "session not found")
	}
	return nil
}
