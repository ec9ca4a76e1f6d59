package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/natter-chat/natter/internal/chat"
)

var _ chat.PushStore = (*Store)(nil)

const pushColumns = `id, user_id, session_id, kind, endpoint, p256dh, auth, created_at, last_success`

func scanPushSubscription(row pgx.Row, extra ...any) (chat.PushSubscription, error) {
	var sub chat.PushSubscription
	var kind string
	var success *time.Time
	dest := append([]any{&sub.ID, &sub.User, &sub.Session, &kind, &sub.Endpoint, &sub.P256dh, &sub.Auth, &sub.CreatedAt, &success}, extra...)
	if err := row.Scan(dest...); err != nil {
		return chat.PushSubscription{}, err
	}
	sub.Kind, sub.CreatedAt, sub.LastSuccess = chat.PushKind(kind), sub.CreatedAt.UTC(), fromNull(success)
	return sub, nil
}

// nullBytes stores an empty key as NULL.
func nullBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// CreatePushSubscription implements chat.PushStore.
func (s *Store) CreatePushSubscription(ctx context.Context, sub chat.PushSubscription) (chat.PushSubscription, error) {
	const op = "postgres.CreatePushSubscription"
	stored, err := scanPushSubscription(s.pool.QueryRow(ctx, `INSERT INTO push_subscriptions
		(id, user_id, session_id, kind, endpoint, p256dh, auth, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
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

// HasPushSubscriptions implements chat.PushStore.
func (s *Store) HasPushSubscriptions(ctx context.Context) (bool, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM push_subscriptions)`).Scan(&exists); err != nil {
		return false, classify("postgres.HasPushSubscriptions", "the read", err)
	}
	return exists, nil
}

// ListPushSubscriptions implements chat.PushStore.
func (s *Store) ListPushSubscriptions(ctx context.Context, user chat.UserID) ([]chat.PushSubscription, error) {
	const op = "postgres.ListPushSubscriptions"
	rows, err := s.pool.Query(ctx, `SELECT `+pushColumns+` FROM push_subscriptions
		WHERE user_id = $1 ORDER BY created_at, id`, int64(user))
	if err != nil {
		return nil, classify(op, "the read", err)
	}
	out, err := collect(rows, func(row pgx.Row) (chat.PushSubscription, error) { return scanPushSubscription(row) })
	if err != nil {
		return nil, classify(op, "the read", err)
	}
	return out, nil
}

// DeletePushSubscription implements chat.PushStore.
func (s *Store) DeletePushSubscription(ctx context.Context, user chat.UserID, id chat.PushSubscriptionID) error {
	const op = "postgres.DeletePushSubscription"
	tag, err := s.pool.Exec(ctx, `DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2`, int64(id), int64(user))
	if err != nil {
		return classify(op, "the push subscription", err)
	}
	if tag.RowsAffected() == 0 {
		return newError(op, chat.CodeNotFound, "push subscription not found")
	}
	return nil
}

// MarkPushSuccess implements chat.PushStore.
func (s *Store) MarkPushSuccess(ctx context.Context, id chat.PushSubscriptionID, at time.Time) error {
	const op = "postgres.MarkPushSuccess"
	_, err := s.pool.Exec(ctx, `UPDATE push_subscriptions SET last_success = $1 WHERE id = $2`, ms(at), int64(id))
	return classify(op, "the push subscription", err)
}

// GetPushSettings implements chat.PushStore.
func (s *Store) GetPushSettings(ctx context.Context, user chat.UserID) (chat.PushSettings, error) {
	const op = "postgres.GetPushSettings"
	var hide bool
	err := s.pool.QueryRow(ctx, `SELECT hide_text FROM push_settings WHERE user_id = $1`, int64(user)).Scan(&hide)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.PushSettings{}, nil
	}
	if err != nil {
		return chat.PushSettings{}, classify(op, "the read", err)
	}
	return chat.PushSettings{HideText: hide}, nil
}

// UpdatePushSettings implements chat.PushStore.
func (s *Store) UpdatePushSettings(ctx context.Context, user chat.UserID, ps chat.PushSettings) error {
	const op = "postgres.UpdatePushSettings"
	_, err := s.pool.Exec(ctx, `INSERT INTO push_settings (user_id, hide_text) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET hide_text = excluded.hide_text`, int64(user), ps.HideText)
	return classify(op, "the push settings", err)
}

// SetNotifyLevel implements chat.PushStore.
func (s *Store) SetNotifyLevel(ctx context.Context, conv chat.ConversationID, user chat.UserID, level chat.NotifyLevel) error {
	const op = "postgres.SetNotifyLevel"
	var err error
	if level == chat.NotifyAll {
		_, err = s.pool.Exec(ctx, `DELETE FROM notify_levels WHERE conv_id = $1 AND user_id = $2`, int64(conv), int64(user))
	} else {
		_, err = s.pool.Exec(ctx, `INSERT INTO notify_levels (conv_id, user_id, level) VALUES ($1, $2, $3)
			ON CONFLICT (conv_id, user_id) DO UPDATE SET level = excluded.level`, int64(conv), int64(user), string(level))
	}
	return classify(op, "the notification level", err)
}

// GetNotifyLevel implements chat.PushStore.
func (s *Store) GetNotifyLevel(ctx context.Context, conv chat.ConversationID, user chat.UserID) (chat.NotifyLevel, error) {
	const op = "postgres.GetNotifyLevel"
	var level string
	err := s.pool.QueryRow(ctx, `SELECT level FROM notify_levels WHERE conv_id = $1 AND user_id = $2`, int64(conv), int64(user)).Scan(&level)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.NotifyAll, nil
	}
	if err != nil {
		return "", classify(op, "the read", err)
	}
	return chat.NotifyLevel(level), nil
}

// ListNotifyLevels implements chat.PushStore with one query: the user's
// memberships from members_by_user, each joined to its notify_levels row
// by primary key, so it reads no level of a conversation the user left.
func (s *Store) ListNotifyLevels(ctx context.Context, user chat.UserID) ([]chat.ConvNotifyLevel, error) {
	const op = "postgres.ListNotifyLevels"
	rows, err := s.pool.Query(ctx, `SELECT l.conv_id, l.level
		FROM members AS m
		JOIN notify_levels AS l ON l.conv_id = m.conv_id AND l.user_id = m.user_id
		WHERE m.user_id = $1
		ORDER BY m.conv_id`, int64(user))
	if err != nil {
		return nil, classify(op, "the read", err)
	}
	out, err := collect(rows, func(row pgx.Row) (chat.ConvNotifyLevel, error) {
		var conv int64
		var level string
		err := row.Scan(&conv, &level)
		return chat.ConvNotifyLevel{Conv: chat.ConversationID(conv), Level: chat.NotifyLevel(level)}, err
	})
	if err != nil {
		return nil, classify(op, "the read", err)
	}
	return out, nil
}

// ListPushRecipients implements chat.PushStore with one query.
func (s *Store) ListPushRecipients(ctx context.Context, conv chat.ConversationID, users []chat.UserID, now time.Time) ([]chat.PushRecipient, error) {
	const op = "postgres.ListPushRecipients"
	if len(users) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT p.id, p.user_id, p.session_id, p.kind, p.endpoint, p.p256dh, p.auth, p.created_at, p.last_success,
			coalesce(l.level, 'all'), coalesce(st.hide_text, false)
		FROM push_subscriptions AS p
		JOIN sessions AS se ON se.id = p.session_id AND se.revoked_at IS NULL AND se.expires_at > $1
		LEFT JOIN notify_levels AS l ON l.conv_id = $2 AND l.user_id = p.user_id
		LEFT JOIN push_settings AS st ON st.user_id = p.user_id
		WHERE p.user_id = ANY($3)
		ORDER BY p.user_id, p.created_at, p.id`, ms(now), int64(conv), int64s(users))
	if err != nil {
		return nil, classify(op, "the read", err)
	}
	defer rows.Close()
	var out []chat.PushRecipient
	for rows.Next() {
		var level string
		var hide bool
		sub, err := scanPushSubscription(rows, &level, &hide)
		if err != nil {
			return nil, classify(op, "the read", err)
		}
		if n := len(out); n == 0 || out[n-1].User != sub.User {
			out = append(out, chat.PushRecipient{User: sub.User, Level: chat.NotifyLevel(level), Settings: chat.PushSettings{HideText: hide}})
		}
		r := &out[len(out)-1]
		r.Subscriptions = append(r.Subscriptions, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(op, "the read", err)
	}
	return out, nil
}

// GetPushDelivery implements chat.PushStore with one query: every part
// is a primary-key lookup.
func (s *Store) GetPushDelivery(ctx context.Context, user chat.UserID, id chat.PushSubscriptionID, conv chat.ConversationID,
	msg chat.MessageID, now time.Time) (chat.PushDelivery, error) {
	const op = "postgres.GetPushDelivery"
	var (
		d                                 chat.PushDelivery
		level                             string
		convKind, title, text, senderName *string
		msgID, seq, sender                *int64
		sent, edited, deleted             *time.Time
	)
	sub, err := scanPushSubscription(s.pool.QueryRow(ctx, `SELECT p.id, p.user_id, p.session_id, p.kind, p.endpoint, p.p256dh, p.auth, p.created_at, p.last_success,
			coalesce(st.hide_text, false),
			EXISTS (SELECT 1 FROM members WHERE conv_id = $2 AND user_id = p.user_id),
			coalesce((SELECT level FROM notify_levels WHERE conv_id = $2 AND user_id = p.user_id), 'all'),
			c.kind, c.title,
			m.id, m.seq, m.sender_id, m.text, m.sent_at, m.edited_at, m.deleted_at, u.username
		FROM push_subscriptions AS p
		JOIN sessions AS se ON se.id = p.session_id AND se.revoked_at IS NULL AND se.expires_at > $1
		LEFT JOIN push_settings AS st ON st.user_id = p.user_id
		LEFT JOIN conversations AS c ON c.id = $2
		LEFT JOIN messages AS m ON m.id = $3 AND m.conv_id = $2
		LEFT JOIN users AS u ON u.id = m.sender_id
		WHERE p.id = $4 AND p.user_id = $5`,
		ms(now), int64(conv), int64(msg), int64(id), int64(user)),
		&d.Settings.HideText, &d.Member, &level, &convKind, &title,
		&msgID, &seq, &sender, &text, &sent, &edited, &deleted, &senderName)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.PushDelivery{}, newError(op, chat.CodeNotFound, "push subscription not found")
	}
	if err != nil {
		return chat.PushDelivery{}, classify(op, "the read", err)
	}
	d.Subscription, d.Level = sub, chat.NotifyLevel(level)
	if convKind != nil {
		d.ConvKind, d.Title = chat.Kind(*convKind), *title
	}
	if msgID != nil {
		d.Message = &chat.Message{ID: chat.MessageID(*msgID), Conv: conv, Seq: *seq, Sender: chat.UserID(*sender),
			Text: *text, SentAt: sent.UTC(), EditedAt: fromNull(edited), DeletedAt: fromNull(deleted)}
		if senderName != nil {
			d.SenderName = *senderName
		}
	}
	return d, nil
}

// VAPIDKey implements chat.PushStore: the first node to call it stores
// its candidate; every node gets the stored key.
func (s *Store) VAPIDKey(ctx context.Context, candidate []byte) ([]byte, error) {
	const op = "postgres.VAPIDKey"
	if _, err := s.pool.Exec(ctx, `INSERT INTO vapid_key (id, private_key, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`,
		candidate, ms(s.now())); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	var key []byte
	if err := s.pool.QueryRow(ctx, `SELECT private_key FROM vapid_key WHERE id = 1`).Scan(&key); err != nil {
		return nil, chat.Unavailable(op, err)
	}
	return key, nil
}
