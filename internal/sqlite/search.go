package sqlite

import (
	"context"

	"github.com/natter-chat/natter/internal/chat"
)

// SearchUsers implements chat.Store with a range scan of the username
// index: usernames >= prefix and < prefix + U+10FFFF, so LIKE wildcards
// in the prefix mean nothing.
func (s *Store) SearchUsers(ctx context.Context, prefix, after string, limit int) ([]chat.User, error) {
	const op = "sqlite.SearchUsers"
	limit = min(max(limit, 1), chat.MaxPageSize)
	from := max(prefix, after)
	rows, err := s.r.QueryContext(ctx, `SELECT id, username, created_at FROM users
		WHERE username >= ? AND username > ? AND username < ? ORDER BY username LIMIT ?`,
		from, after, prefix+"\U0010FFFF", limit)
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer rows.Close()
	out := []chat.User{}
	for rows.Next() {
		var u chat.User
		var created int64
		if err := rows.Scan(&u.ID, &u.Username, &created); err != nil {
			return nil, chat.Unavailable(op, err)
		}
		u.CreatedAt = fromMS(created)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}
