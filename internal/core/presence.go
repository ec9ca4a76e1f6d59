package core

import (
	"context"

	"github.com/natter-chat/natter/internal/chat"
)

// Connected records that connection conn of the caller is online.
func (s *Service) Connected(ctx context.Context, p Principal, conn int64) error {
	return s.presence.Set(ctx, p.User, conn, chat.StatusOnline)
}

// Disconnected records that connection conn of the caller closed.
func (s *Service) Disconnected(ctx context.Context, p Principal, conn int64) error {
	return s.presence.Remove(ctx, p.User, conn)
}

// SetStatus records the status a client reports for its connection
// (online or away). Errors: invalid_argument.
func (s *Service) SetStatus(ctx context.Context, p Principal, conn int64, status chat.Status) error {
	if status != chat.StatusOnline && status != chat.StatusAway {
		return chat.Errorf(chat.CodeInvalidArgument, `status must be "online" or "away"`)
	}
	return s.presence.Set(ctx, p.User, conn, status)
}

// MaxPresenceBatch bounds one batch presence query.
const MaxPresenceBatch = 200

// Presence returns the presence of users. Presence is visible to every
// authenticated user, like a directory. Errors: invalid_argument.
func (s *Service) Presence(ctx context.Context, p Principal, users []chat.UserID) ([]chat.PresenceState, error) {
	if len(users) == 0 || len(users) > MaxPresenceBatch {
		return nil, chat.Errorf(chat.CodeInvalidArgument, "ask for 1 to %d users", MaxPresenceBatch)
	}
	return s.presence.Get(ctx, users)
}

// WatchPresence calls handle with every presence change (for the hub).
func (s *Service) WatchPresence(ctx context.Context, handle func(chat.PresenceState)) (func(), error) {
	return s.presence.Watch(ctx, handle)
}
