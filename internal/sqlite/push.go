package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

var _ chat.PushStore = (*Store)(nil)

const pushColumns = `id, user_id, session_id, kind, endpoint, p256dh, auth, created_at, last_success`

func scanPushSubscription(row scanner) (chat.PushSubscription, error) {
	var sub chat.PushSubscription
	var created int64
	var success sql.NullInt64
	if err := row.Scan(&sub.ID, &sub.User, &sub.Session, &sub.Kind, &sub.Endpoint, &sub.P256dh, &sub.Auth, &created, &success); err != nil {
		return chat.PushSubscription{}, err
	}
	sub.CreatedAt, sub.LastSuccess = fromMS(created), fromNullMS(success)
	return sub, nil
}

// nullBytes stores an empty key as NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// CreatePushSubscription implements chat.PushStore.
func (s *Store) CreatePushSubscription(ctx context.Context, sub chat.PushSubscription) (chat.PushSubscription, error) {
	const op = "sqlite.CreatePushSubscription"
	stored, err := scanPushSubscription(s.w.QueryRowContext(ctx, `INSERT INTO push_subscriptions
		(id, user_id, session_id, kind, endpoint, p256dh, auth, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, endpoint) DO UPDATE SET user_id = excluded.user_id, session_id = excluded.session_id,
			p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at, last_success = NULL
		RETURNING `+pushColumns,
		int64(sub.ID), int64(sub.User), int64(sub.Session), string(sub.Kind), sub.Endpoint,
		nullBytes(sub.P256dh), nullBytes(sub.Auth), ms(sub.CreatedAt)))
	if err != nil {
		return chat.PushSubscription{}, classify(op, "the push subscription", err)
	}
	return stored, nil
}

// ListPushSubscriptions implements chat.PushStore.
func (s *Store) ListPushSubscriptions(ctx context.Context, user chat.UserID) ([]chat.PushSubscription, error) {
	const op = "sqlite.ListPushSubscriptions"
	rows, err := s.r.QueryContext(ctx, `SELECT `+pushColumns+` FROM push_subscriptions
		WHERE user_id = ? ORDER BY created_at, id`, int64(user))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return collectPush(op, rows)
}

// HasPushSubscriptions implements chat.PushStore.
func (s *Store) HasPushSubscriptions(ctx context.Context) (bool, error) {
	var exists bool
	if err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM push_subscriptions)`).Scan(&exists); err != nil {
		return false, chat.Unavailable("sqlite.HasPushSubscriptions", err)
	}
	return exists, nil
}

func collectPush(op string, rows *sql.Rows) ([]chat.PushSubscription, error) {
	defer rows.Close()
	var out []chat.PushSubscription
	for rows.Next() {
		sub, err := scanPushSubscription(rows)
		if err != nil {
			return nil, chat.Unavailable(op, err)
		}
		out = append(out, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}

// DeletePushSubscription implements chat.PushStore.
func (s *Store) DeletePushSubscription(ctx context.Context, user chat.UserID, id chat.PushSubscriptionID) error {
	const op = "sqlite.DeletePushSubscription"
	res, err := s.w.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE id = ? AND user_id = ?`, int64(id), int64(user))
	if err != nil {
		return chat.Unavailable(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return chat.Unavailable(op, err)
	} else if n == 0 {
		return newError(op, chat.CodeNotFound, "push subscription not found")
	}
	return nil
}

// MarkPushSuccess implements chat.PushStore.
func (s *Store) MarkPushSuccess(ctx context.Context, id chat.PushSubscriptionID, at time.Time) error {
	const op = "sqlite.MarkPushSuccess"
	if _, err := s.w.ExecContext(ctx, `UPDATE push_subscriptions SET last_success = ? WHERE id = ?`, ms(at), int64(id)); err != nil {
		return chat.Unavailable(op, err)
	}
	return nil
}

// GetPushSettings implements chat.PushStore.
func (s *Store) GetPushSettings(ctx context.Context, user chat.UserID) (chat.PushSettings, error) {
	const op = "sqlite.GetPushSettings"
	var hide bool
	err := s.r.QueryRowContext(ctx, `SELECT hide_text FROM push_settings WHERE user_id = ?`, int64(user)).Scan(&hide)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.PushSettings{}, nil
	}
	if err != nil {
		return chat.PushSettings{}, chat.Unavailable(op, err)
	}
	return chat.PushSettings{HideText: hide}, nil
}

// UpdatePushSettings implements chat.PushStore.
func (s *Store) UpdatePushSettings(ctx context.Context, user chat.UserID, ps chat.PushSettings) error {
	const op = "sqlite.UpdatePushSettings"
	_, err := s.w.ExecContext(ctx, `INSERT INTO push_settings (user_id, hide_text) VALUES (?, ?)
		ON CONFLICT (user_id) DO UPDATE SET hide_text = excluded.hide_text`, int64(user), ps.HideText)
	if err != nil {
		return classify(op, "the push settings", err)
	}
	return nil
}

// SetNotifyLevel implements chat.PushStore.
func (s *Store) SetNotifyLevel(ctx context.Context, conv chat.ConversationID, user chat.UserID, level chat.NotifyLevel) error {
	const op = "sqlite.SetNotifyLevel"
	var err error
	if level == chat.NotifyAll {
		_, err = s.w.ExecContext(ctx, `DELETE FROM notify_levels WHERE conv_id = ? AND user_id = ?`, int64(conv), int64(user))
	} else {
		_, err = s.w.ExecContext(ctx, `INSERT INTO notify_levels (conv_id, user_id, level) VALUES (?, ?, ?)
			ON CONFLICT (conv_id, user_id) DO UPDATE SET level = excluded.level`, int64(conv), int64(user), string(level))
	}
	if err != nil {
		return classify(op, "the notification level", err)
	}
	return nil
}

// GetNotifyLevel implements chat.PushStore.
func (s *Store) GetNotifyLevel(ctx context.Context, conv chat.ConversationID, user chat.UserID) (chat.NotifyLevel, error) {
	const op = "sqlite.GetNotifyLevel"
	var level string
	err := s.r.QueryRowContext(ctx, `SELECT level FROM notify_levels WHERE conv_id = ? AND user_id = ?`, int64(conv), int64(user)).Scan(&level)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.NotifyAll, nil
	}
	if err != nil {
		return "", chat.Unavailable(op, err)
	}
	return chat.NotifyLevel(level), nil
}

// ListNotifyLevels implements chat.PushStore with one query: the user's
// memberships from members_by_user, each joined to its notify_levels row
// by primary key, so it reads no level of a conversation the user left.
func (s *Store) ListNotifyLevels(ctx context.Context, user chat.UserID) ([]chat.ConvNotifyLevel, error) {
	const op = "sqlite.ListNotifyLevels"
	rows, err := s.r.QueryContext(ctx, `SELECT l.conv_id, l.level
		FROM members AS m
		JOIN notify_levels AS l ON l.conv_id = m.conv_id AND l.user_id = m.user_id
		WHERE m.user_id = ?
		ORDER BY m.conv_id`, int64(user))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer rows.Close()
	var out []chat.ConvNotifyLevel
	for rows.Next() {
		var l chat.ConvNotifyLevel
		if err := rows.Scan(&l.Conv, &l.Level); err != nil {
			return nil, chat.Unavailable(op, err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}

// ListPushRecipients implements chat.PushStore with one query.
func (s *Store) ListPushRecipients(ctx context.Context, conv chat.ConversationID, users []chat.UserID, now time.Time) ([]chat.PushRecipient, error) {
	const op = "sqlite.ListPushRecipients"
	if len(users) == 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT p.id, p.user_id, p.session_id, p.kind, p.endpoint, p.p256dh, p.auth, p.created_at, p.last_success,
			coalesce(l.level, 'all'), coalesce(st.hide_text, 0)
		FROM push_subscriptions AS p
		JOIN sessions AS se ON se.id = p.session_id AND se.revoked_at IS NULL AND se.expires_at > ?
		LEFT JOIN notify_levels AS l ON l.conv_id = ? AND l.user_id = p.user_id
		LEFT JOIN push_settings AS st ON st.user_id = p.user_id
		WHERE p.user_id IN (SELECT value FROM json_each(?))
		ORDER BY p.user_id, p.created_at, p.id`, ms(now), int64(conv), idArray(users))
	if err != nil {
		return nil, chat.Unavailable(op, err)
	}
	defer rows.Close()
	var out []chat.PushRecipient
	for rows.Next() {
		var sub chat.PushSubscription
		var created int64
		var success sql.NullInt64
		var level string
		var hide bool
		if err := rows.Scan(&sub.ID, &sub.User, &sub.Session, &sub.Kind, &sub.Endpoint, &sub.P256dh, &sub.Auth, &created, &success, &level, &hide); err != nil {
			return nil, chat.Unavailable(op, err)
		}
		sub.CreatedAt, sub.LastSuccess = fromMS(created), fromNullMS(success)
		if n := len(out); n == 0 || out[n-1].User != sub.User {
			out = append(out, chat.PushRecipient{User: sub.User, Level: chat.NotifyLevel(level), Settings: chat.PushSettings{HideText: hide}})
		}
		r := &out[len(out)-1]
		r.Subscriptions = append(r.Subscriptions, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return out, nil
}

// GetPushDelivery implements chat.PushStore with one query: every part
// is a primary-key lookup.
func (s *Store) GetPushDelivery(ctx context.Context, user chat.UserID, id chat.PushSubscriptionID, conv chat.ConversationID,
	msg chat.MessageID, now time.Time) (chat.PushDelivery, error) {
	const op = "sqlite.GetPushDelivery"
	var (
		d                                 chat.PushDelivery
		sub                               chat.PushSubscription
		created                           int64
		success                           sql.NullInt64
		level                             string
		convKind, title, text, senderName sql.NullString
		msgID, seq, sender, sent, edited  sql.NullInt64
		deleted                           sql.NullInt64 // of the message
	)
	err := s.r.QueryRowContext(ctx, `SELECT p.id, p.user_id, p.session_id, p.kind, p.endpoint, p.p256dh, p.auth, p.created_at, p.last_success,
			coalesce(st.hide_text, 0),
			EXISTS (SELECT 1 FROM members WHERE conv_id = ?2 AND user_id = p.user_id),
			coalesce((SELECT level FROM notify_levels WHERE conv_id = ?2 AND user_id = p.user_id), 'all'),
			c.kind, c.title,
			m.id, m.seq, m.sender_id, m.text, m.sent_at, m.edited_at, m.deleted_at, u.username
		FROM push_subscriptions AS p
		JOIN sessions AS se ON se.id = p.session_id AND se.revoked_at IS NULL AND se.expires_at > ?1
		LEFT JOIN push_settings AS st ON st.user_id = p.user_id
		LEFT JOIN conversations AS c ON c.id = ?2
		LEFT JOIN messages AS m ON m.id = ?3 AND m.conv_id = ?2
		LEFT JOIN users AS u ON u.id = m.sender_id
		WHERE p.id = ?4 AND p.user_id = ?5`,
		ms(now), int64(conv), int64(msg), int64(id), int64(user)).Scan(
		&sub.ID, &sub.User, &sub.Session, &sub.Kind, &sub.Endpoint, &sub.P256dh, &sub.Auth, &created, &success,
		&d.Settings.HideText, &d.Member, &level, &convKind, &title,
		&msgID, &seq, &sender, &text, &sent, &edited, &deleted, &senderName)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.PushDelivery{}, newError(op, chat.CodeNotFound, "push subscription not found")
	}
	if err != nil {
		return chat.PushDelivery{}, chat.Unavailable(op, err)
	}
	sub.CreatedAt, sub.LastSuccess = fromMS(created), fromNullMS(success)
	d.Subscription, d.Level, d.ConvKind, d.Title = sub, chat.NotifyLevel(level), chat.Kind(convKind.String), title.String
	if msgID.Valid {
		d.Message = &chat.Message{ID: chat.MessageID(msgID.Int64), Conv: conv, Seq: seq.Int64, Sender: chat.UserID(sender.Int64),
			Text: text.String, SentAt: fromMS(sent.Int64), EditedAt: fromNullMS(edited), DeletedAt: fromNullMS(deleted)}
		d.SenderName = senderName.String
	}
	return d, nil
}

// VAPIDKey implements chat.PushStore.
func (s *Store) VAPIDKey(ctx context.Context, candidate []byte) ([]byte, error) {
	const op = "sqlite.VAPIDKey"
	if _, err := s.w.ExecContext(ctx, `INSERT INTO vapid_key (id, private_key, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`,
		candidate, ms(s.now())); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	var key []byte
	if err := s.w.QueryRowContext(ctx, `SELECT private_key FROM vapid_key WHERE id = 1`).Scan(&key); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return key, nil
}
