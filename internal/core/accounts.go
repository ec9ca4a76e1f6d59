package core

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/natter-chat/natter/internal/auth"
	"github.com/natter-chat/natter/internal/chat"
)

// AuthResult is what registration, login and refresh hand back.
type AuthResult struct {
	User            chat.User
	Session         chat.SessionID
	AccessToken     string
	AccessExpiresAt time.Time
	RefreshToken    string
}

const maxDeviceLen = 100

// Register creates an account and logs it in on a new session.
// Errors: invalid_username, weak_password, username_taken.
func (s *Service) Register(ctx context.Context, username, password, device string) (AuthResult, error) {
	name, err := auth.ValidateUsername(username)
	if err != nil {
		return AuthResult{}, err
	}
	if err := auth.ValidatePassword(name, password); err != nil {
		return AuthResult{}, err
	}
	if err := validDevice(device); err != nil {
		return AuthResult{}, err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return AuthResult{}, err
	}
	u := chat.User{ID: chat.UserID(s.ids.NextID()), Username: name, CreatedAt: s.now()}
	if err := s.store.CreateUser(ctx, u, hash); err != nil {
		return AuthResult{}, err
	}
	s.log.Info("account created", "user", u.ID)
	return s.startSession(ctx, u, device)
}

// Login checks a username and password and starts a new session. Failed
// attempts are throttled per username and per client address (addr):
// rate_limited with a retry-after when over the limit.
// Errors: invalid_credentials (the same for an unknown user and a wrong
// password), rate_limited.
func (s *Service) Login(ctx context.Context, username, password, device, addr string) (AuthResult, error) {
	name := strings.ToLower(strings.TrimSpace(username))
	if err := validDevice(device); err != nil {
		return AuthResult{}, err
	}
	// A Check that allows an attempt reserves it: every path below ends in
	// Fail or Succeed.
	if wait := s.throttle.Check(name, addr); wait > 0 {
		return AuthResult{}, &RetryError{Err: chat.Errorf(chat.CodeRateLimited, "too many failed logins; retry later"), After: wait}
	}
	u, hash, err := s.store.GetUserByUsername(ctx, name)
	if chat.IsCode(err, chat.CodeNotFound) {
		_ = s.hasher.VerifyDummy(ctx, password) // same cost as a real check: no user enumeration by timing
		s.throttle.Fail(name, addr)
		return AuthResult{}, errBadCredentials()
	}
	if err != nil {
		s.throttle.Fail(name, addr)
		return AuthResult{}, err
	}
	ok, err := s.hasher.Verify(ctx, hash, password)
	if err != nil {
		s.throttle.Fail(name, addr)
		return AuthResult{}, err
	}
	if !ok {
		s.throttle.Fail(name, addr)
		return AuthResult{}, errBadCredentials()
	}
	s.throttle.Succeed(name, addr)
	return s.startSession(ctx, u, device)
}

func errBadCredentials() error {
	return chat.Errorf(chat.CodeInvalidCredentials, "wrong username or password")
}

func validDevice(device string) error {
	if len(device) > maxDeviceLen || !utf8.ValidString(device) {
		return chat.Errorf(chat.CodeInvalidArgument, "device must be valid UTF-8 of at most %d bytes", maxDeviceLen)
	}
	return nil
}

func (s *Service) startSession(ctx context.Context, u chat.User, device string) (AuthResult, error) {
	now := s.now()
	refresh, refreshHash := auth.NewRefreshToken()
	sess := chat.Session{
		ID: chat.SessionID(s.ids.NextID()), User: u.ID, Device: device,
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(s.opts.RefreshTTL),
	}
	if err := s.store.CreateSession(ctx, sess, refreshHash); err != nil {
		return AuthResult{}, err
	}
	return s.issue(u, sess.ID, refresh)
}

func (s *Service) issue(u chat.User, sid chat.SessionID, refresh string) (AuthResult, error) {
	token, exp, err := s.tokens.Issue(u.ID, sid)
	if err != nil {
		return AuthResult{}, err
	}
	return AuthResult{User: u, Session: sid, AccessToken: token, AccessExpiresAt: exp, RefreshToken: refresh}, nil
}

// Refresh rotates a refresh token: the presented one stops working and a
// new access and refresh token pair is returned. Presenting a token that
// was already rotated revokes the whole session (it was probably stolen).
// Errors: unauthenticated, refresh_token_reused.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (AuthResult, error) {
	if refreshToken == "" || len(refreshToken) > 200 {
		return AuthResult{}, chat.Errorf(chat.CodeUnauthenticated, "invalid refresh token")
	}
	next, nextHash := auth.NewRefreshToken()
	sess, err := s.store.RotateRefreshToken(ctx, auth.HashRefreshToken(refreshToken), nextHash, s.now(), s.opts.RefreshTTL)
	if err != nil {
		if chat.IsCode(err, chat.CodeRefreshReused) {
			s.log.Warn("refresh token reused; session revoked", "user", sess.User)
			if sess.ID != 0 {
				s.publish(ctx, chat.Event{Kind: chat.EventSessionRevoked, Users: []chat.UserID{sess.User}, Session: sess.ID})
			}
		}
		return AuthResult{}, err
	}
	u, err := s.store.GetUser(ctx, sess.User)
	if err != nil {
		return AuthResult{}, err
	}
	return s.issue(u, sess.ID, next)
}

// Authenticate checks an access token and that its session is still live.
// Errors: unauthenticated, token_expired.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (Principal, error) {
	claims, err := s.tokens.Verify(accessToken)
	if err != nil {
		return Principal{}, err
	}
	sess, err := s.store.GetSession(ctx, claims.Session)
	if chat.IsCode(err, chat.CodeNotFound) || (err == nil && (sess.User != claims.User || !sess.RevokedAt.IsZero())) {
		return Principal{}, chat.Errorf(chat.CodeUnauthenticated, "the session has ended; log in again")
	}
	if err != nil {
		return Principal{}, err
	}
	return Principal{User: claims.User, Session: claims.Session}, nil
}

// Me returns the caller's account.
func (s *Service) Me(ctx context.Context, p Principal) (chat.User, error) {
	return s.store.GetUser(ctx, p.User)
}

// Logout revokes the caller's current session.
func (s *Service) Logout(ctx context.Context, p Principal) error {
	return s.RevokeSession(ctx, p, p.Session)
}

// Sessions lists the caller's live sessions, newest first.
func (s *Service) Sessions(ctx context.Context, p Principal) ([]chat.Session, error) {
	return s.store.ListSessions(ctx, p.User, s.now())
}

// RevokeSession ends one of the caller's sessions. Errors: not_found.
// The session's open connections, on every node, are closed.
func (s *Service) RevokeSession(ctx context.Context, p Principal, id chat.SessionID) error {
	if err := s.store.RevokeSession(ctx, p.User, id, s.now()); err != nil {
		return err
	}
	s.publish(ctx, chat.Event{Kind: chat.EventSessionRevoked, Users: []chat.UserID{p.User}, Session: id})
	return nil
}

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Millisecond) }

// RetryError marks an error that the caller may retry after a delay
// (rate_limited). The transport turns After into Retry-After.
type RetryError struct {
	Err   error
	After time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// MaxUserSearch bounds one page of user search (the default is 20).
const MaxUserSearch = 100

// SearchUsers is in people.go: it matches display names too.

// GetUser returns a user's public profile. Errors: not_found.
func (s *Service) GetUser(ctx context.Context, p Principal, id chat.UserID) (chat.User, error) {
	return s.store.GetUser(ctx, id)
}
