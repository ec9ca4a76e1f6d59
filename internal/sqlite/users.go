package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

const userColumns = `id, username, created_at`

func scanUser(row scanner) (chat.User, error) {
	var u chat.User
	var created int64
	if err := row.Scan(&u.ID, &u.Username, &created); err != nil {
		return chat.User{}, err
	}
	u.CreatedAt = fromMS(created)
	return u, nil
}

// CreateUser stores u. A taken username gives CodeUsernameTaken, a taken id
// CodeConflict.
func (s *Store) CreateUser(ctx context.Context, u chat.User, passwordHash string) error {
	const op = "sqlite.CreateUser"
	_, err := s.w.ExecContext(ctx, `INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)`,
		int64(u.ID), u.Username, passwordHash, ms(u.CreatedAt))
	if resultCode(err) == violatesUnique { // users has one UNIQUE column besides its key
		return newError(op, chat.CodeUsernameTaken, "the username is taken")
	}
	if err != nil {
		return classify(op, "the user", err)
	}
	return nil
}

// GetUser returns the user with id, or CodeNotFound.
func (s *Store) GetUser(ctx context.Context, id chat.UserID) (chat.User, error) {
	const op = "sqlite.GetUser"
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, int64(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.User{}, newError(op, chat.CodeNotFound, "user not found")
	}
	if err != nil {
		return chat.User{}, chat.Unavailable(op, err)
	}
	return u, nil
}

// GetUserByUsername returns the user and its password hash, or CodeNotFound.
// username must already be lower case.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (chat.User, string, error) {
	const op = "sqlite.GetUserByUsername"
	var u chat.User
	var hash string
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT id, username, created_at, password_hash FROM users WHERE username = ?`, username).
		Scan(&u.ID, &u.Username, &created, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.User{}, "", newError(op, chat.CodeNotFound, "user not found")
	}
	if err != nil {
		return chat.User{}, "", chat.Unavailable(op, err)
	}
	u.CreatedAt = fromMS(created)
	return u, hash, nil
}

// ListUsers returns the users among ids that exist, ordered by id.
func (s *Store) ListUsers(ctx context.Context, ids []chat.UserID) ([]chat.User, error) {
	const op = "sqlite.ListUsers"
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users
		WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id`, idArray(ids))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer rows.Close()
	var users []chat.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, chat.Unavailable(op, err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return users, nil
}

// idArray formats ids as a JSON array, for json_each: one bound parameter
// instead of one per id.
func idArray[ID ~int64](ids []ID) string {
	var b strings.Builder
	b.Grow(len(ids)*20 + 2)
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(int64(id), 10))
	}
	b.WriteByte(']')
	return b.String()
}

const sessionColumns = `id, user_id, device, created_at, last_used_at, expires_at, revoked_at`

func scanSession(row scanner) (chat.Session, error) {
	var s chat.Session
	var created, used, expires int64
	var revoked sql.NullInt64
	if err := row.Scan(&s.ID, &s.User, &s.Device, &created, &used, &expires, &revoked); err != nil {
		return chat.Session{}, err
	}
	s.CreatedAt, s.LastUsedAt, s.ExpiresAt = fromMS(created), fromMS(used), fromMS(expires)
	s.RevokedAt = fromNullMS(revoked)
	return s, nil
}

// nullMS stores the zero time as NULL.
func nullMS(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: ms(t), Valid: true}
}

// CreateSession stores s with refreshHash as its current refresh token hash.
// An unknown user gives CodeNotFound; a taken id or hash CodeConflict.
func (s *Store) CreateSession(ctx context.Context, sess chat.Session, refreshHash string) error {
	const op = "sqlite.CreateSession"
	_, err := s.w.ExecContext(ctx, `INSERT INTO sessions (id, user_id, device, refresh_hash, created_at, last_used_at, expires_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		int64(sess.ID), int64(sess.User), sess.Device, refreshHash,
		ms(sess.CreatedAt), ms(sess.LastUsedAt), ms(sess.ExpiresAt), nullMS(sess.RevokedAt))
	if err != nil {
		return classify(op, "the session", err)
	}
	return nil
}

// RotateRefreshToken implements chat.Store. It runs in one write
// transaction; on reuse the revocation is committed before CodeRefreshReused
// is returned.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash, newHash string, now time.Time, ttl time.Duration) (chat.Session, error) {
	const op = "sqlite.RotateRefreshToken"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return chat.Session{}, chat.Unavailable(op, err)
	}
	defer tx.Rollback()

	sess, err := scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE refresh_hash = ?`, oldHash))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return revokeReused(ctx, tx, op, oldHash, now)
	case err != nil:
		return chat.Session{}, chat.Unavailable(op, err)
	case !sess.Live(now):
		return chat.Session{}, newError(op, chat.CodeUnauthenticated, "the session has ended; log in again")
	}

	if _, err := tx.ExecContext(ctx, `INSERT INTO used_refresh_tokens (hash, session_id) VALUES (?, ?)`, oldHash, int64(sess.ID)); err != nil {
		return chat.Session{}, classify(op, "the refresh token", err)
	}
	sess.LastUsedAt, sess.ExpiresAt = fromMS(ms(now)), fromMS(ms(now.Add(ttl)))
	if _, err := tx.ExecContext(ctx, `UPDATE sessions SET refresh_hash = ?, last_used_at = ?, expires_at = ? WHERE id = ?`,
		newHash, ms(sess.LastUsedAt), ms(sess.ExpiresAt), int64(sess.ID)); err != nil {
		return chat.Session{}, classify(op, "the refresh token", err)
	}
	if err := tx.Commit(); err != nil {
		return chat.Session{}, chat.Unavailable(op, err)
	}
	return sess, nil
}

// revokeReused handles a hash that is no session's current one: if it was
// rotated away, its session is revoked (committed in tx) and
// CodeRefreshReused returned with the revoked session's ID and User;
// otherwise CodeUnauthenticated.
func revokeReused(ctx context.Context, tx *sql.Tx, op, hash string, now time.Time) (chat.Session, error) {
	var id, user int64
	err := tx.QueryRowContext(ctx, `SELECT s.id, s.user_id FROM used_refresh_tokens u JOIN sessions s ON s.id = u.session_id WHERE u.hash = ?`, hash).Scan(&id, &user)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Session{}, newError(op, chat.CodeUnauthenticated, "unknown refresh token; log in again")
	}
	if err != nil {
		return chat.Session{}, chat.Unavailable(op, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, ms(now), id); err != nil {
		return chat.Session{}, chat.Unavailable(op, err)
	}
	if err := tx.Commit(); err != nil {
		return chat.Session{}, chat.Unavailable(op, err)
	}
	revoked := chat.Session{ID: chat.SessionID(id), User: chat.UserID(user)}
	return revoked, newError(op, chat.CodeRefreshReused, "the refresh token was already used; the session is revoked, log in again")
}

// GetSession returns the session with id, revoked or not, or CodeNotFound.
func (s *Store) GetSession(ctx context.Context, id chat.SessionID) (chat.Session, error) {
	const op = "sqlite.GetSession"
	sess, err := scanSession(s.r.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, int64(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Session{}, newError(op, chat.CodeNotFound, "session not found")
	}
	if err != nil {
		return chat.Session{}, chat.Unavailable(op, err)
	}
	return sess, nil
}

// ListSessions returns user's sessions that are live at now, newest first.
func (s *Store) ListSessions(ctx context.Context, user chat.UserID, now time.Time) ([]chat.Session, error) {
	const op = "sqlite.ListSessions"
	rows, err := s.r.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?
		ORDER BY created_at DESC, id DESC`, int64(user), ms(now))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer rows.Close()
	var sessions []chat.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, chat.Unavailable(op, err)
		}
		sessions = append(sessions, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return sessions, nil
}

// RevokeSession revokes user's session id at now. A session that is not the
// user's gives CodeNotFound; revoking again keeps the first revocation time.
func (s *Store) RevokeSession(ctx context.Context, user chat.UserID, id chat.SessionID, now time.Time) error {
	const op = "sqlite.RevokeSession"
	res, err := s.w.ExecContext(ctx, `UPDATE sessions SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? AND user_id = ?`,
		ms(now), int64(id), int64(user))
	if err != nil {
		return chat.Unavailable(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return chat.Unavailable(op, err)
	} else if n == 0 {
		return newError(op, chat.CodeNotFound, "session not found")
	}
	return nil
}
