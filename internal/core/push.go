package core

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/natter-chat/natter/internal/chat"
)

// PushOptions configure the push notification use-cases. The zero value
// turns every push endpoint off (push_not_configured).
type PushOptions struct {
	// VAPIDPublicKey is the server's Web Push key (base64url, uncompressed
	// P-256 point); empty means Web Push is off.
	VAPIDPublicKey string
	// Kinds are the push services this node can deliver to; subscriptions
	// of other kinds are refused with push_not_configured.
	Kinds []chat.PushKind
	// AllowHTTP accepts http:// Web Push endpoints on loopback addresses,
	// for tests with a local fake push service. Never set in production.
	AllowHTTP bool
	// MaxSubscriptions bounds a user's subscriptions; zero means 20.
	MaxSubscriptions int
}

// Limits of push subscriptions.
const (
	MaxPushEndpointLen = 2048 // bytes of a Web Push endpoint URL
	MaxPushTokenLen    = 4096 // bytes of an APNs or FCM token
)

// PushSubscribeRequest is a device's registration as a client sends it:
// a Web Push endpoint with the browser's keys (base64url), or an APNs or
// FCM token.
type PushSubscribeRequest struct {
	Kind     chat.PushKind
	Endpoint string
	P256dh   string
	Auth     string
	Token    string
}

func (s *Service) pushStore() (chat.PushStore, error) {
	if s.pushes == nil {
		return nil, chat.Errorf(chat.CodePushNotConfigured, "push notifications are not configured on this server")
	}
	return s.pushes, nil
}

// VAPIDPublicKey returns the key browsers subscribe with.
// Errors: push_not_configured.
func (s *Service) VAPIDPublicKey() (string, error) {
	if s.pushes == nil || s.opts.Push.VAPIDPublicKey == "" {
		return "", chat.Errorf(chat.CodePushNotConfigured, "Web Push is not configured on this server")
	}
	return s.opts.Push.VAPIDPublicKey, nil
}

// SubscribePush registers the caller's device (its session) for push
// notifications. Subscribing an endpoint again updates it; an endpoint
// another account had subscribed moves to the caller.
// Errors: invalid_argument, too_large, push_not_configured, conflict (too
// many subscriptions), unavailable.
func (s *Service) SubscribePush(ctx context.Context, p Principal, req PushSubscribeRequest) (chat.PushSubscription, error) {
	store, err := s.pushStore()
	if err != nil {
		return chat.PushSubscription{}, err
	}
	sub, err := s.validPushSubscription(req)
	if err != nil {
		return chat.PushSubscription{}, err
	}
	existing, err := store.ListPushSubscriptions(ctx, p.User)
	if err != nil {
		return chat.PushSubscription{}, err
	}
	limit := s.opts.Push.MaxSubscriptions
	if limit <= 0 {
		limit = 20
	}
	renewing := slices.ContainsFunc(existing, func(e chat.PushSubscription) bool { return e.Kind == sub.Kind && e.Endpoint == sub.Endpoint })
	if len(existing) >= limit && !renewing {
		return chat.PushSubscription{}, chat.Errorf(chat.CodeConflict, "at most %d push subscriptions per account; delete one first", limit)
	}
	sub.ID = chat.PushSubscriptionID(s.ids.NextID())
	sub.User, sub.Session, sub.CreatedAt = p.User, p.Session, s.now()
	return store.CreatePushSubscription(ctx, sub)
}

func (s *Service) validPushSubscription(req PushSubscribeRequest) (chat.PushSubscription, error) {
	kind := req.Kind
	if kind == "" {
		kind = chat.PushWebPush
	}
	enabled := slices.Contains(s.opts.Push.Kinds, kind)
	sub := chat.PushSubscription{Kind: kind}
	switch kind {
	case chat.PushWebPush:
		if req.Token != "" {
			return sub, chat.Errorf(chat.CodeInvalidArgument, "a webpush subscription has an endpoint and keys, not a token")
		}
		if err := s.validEndpoint(req.Endpoint); err != nil {
			return sub, err
		}
		var err error
		if sub.P256dh, err = decodeKey("keys.p256dh", req.P256dh, 65); err != nil {
			return sub, err
		}
		if _, err := ecdh.P256().NewPublicKey(sub.P256dh); err != nil {
			return sub, chat.Errorf(chat.CodeInvalidArgument, "keys.p256dh must be an uncompressed P-256 public key")
		}
		if sub.Auth, err = decodeKey("keys.auth", req.Auth, 16); err != nil {
			return sub, err
		}
		sub.Endpoint = req.Endpoint
	case chat.PushAPNs, chat.PushFCM:
		if req.Endpoint != "" || req.P256dh != "" || req.Auth != "" {
			return sub, chat.Errorf(chat.CodeInvalidArgument, "an %s subscription has a token, not an endpoint or keys", kind)
		}
		if err := validToken(kind, req.Token); err != nil {
			return sub, err
		}
		sub.Endpoint = req.Token
	default:
		return sub, chat.Errorf(chat.CodeInvalidArgument, `kind must be "webpush", "apns" or "fcm"`)
	}
	if !enabled {
		return sub, chat.Errorf(chat.CodePushNotConfigured, "this server is not configured to send %s notifications", kind)
	}
	return sub, nil
}

// validEndpoint accepts absolute https URLs whose host is a name or a
// public address (and, with AllowHTTP, http URLs on loopback).
func (s *Service) validEndpoint(endpoint string) error {
	if endpoint == "" {
		return chat.Errorf(chat.CodeInvalidArgument, "endpoint is required")
	}
	if len(endpoint) > MaxPushEndpointLen {
		return chat.Errorf(chat.CodeTooLarge, "endpoint is longer than %d bytes", MaxPushEndpointLen)
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return chat.Errorf(chat.CodeInvalidArgument, "endpoint must be an absolute https URL")
	}
	host := strings.ToLower(u.Hostname())
	addr, err := netip.ParseAddr(host)
	isIP := err == nil
	loopback := host == "localhost" || strings.HasSuffix(host, ".localhost") || isIP && addr.IsLoopback()
	switch {
	case s.opts.Push.AllowHTTP && loopback && (u.Scheme == "http" || u.Scheme == "https"):
		return nil
	case u.Scheme != "https":
		return chat.Errorf(chat.CodeInvalidArgument, "endpoint must be an https URL")
	case loopback || isIP && !publicAddr(addr) || !isIP && !strings.Contains(host, "."):
		return chat.Errorf(chat.CodeInvalidArgument, "endpoint must be on a public host")
	}
	return nil
}

func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast()
}

// decodeKey decodes a base64url key (padding optional) of exactly n bytes.
func decodeKey(field, s string, n int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) != n {
		return nil, chat.Errorf(chat.CodeInvalidArgument, "%s must be %d bytes in base64url", field, n)
	}
	return b, nil
}

// validToken checks an APNs token (hex) or FCM registration token.
func validToken(kind chat.PushKind, token string) error {
	if token == "" {
		return chat.Errorf(chat.CodeInvalidArgument, "token is required")
	}
	if len(token) > MaxPushTokenLen {
		return chat.Errorf(chat.CodeTooLarge, "token is longer than %d bytes", MaxPushTokenLen)
	}
	for _, c := range token {
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
		if kind == chat.PushFCM {
			ok = ok || c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z' || c == '_' || c == '-' || c == ':' || c == '.'
		}
		if !ok {
			if kind == chat.PushAPNs {
				return chat.Errorf(chat.CodeInvalidArgument, "an APNs token is hexadecimal")
			}
			return chat.Errorf(chat.CodeInvalidArgument, "an FCM token has only letters, digits and _-:.")
		}
	}
	if kind == chat.PushAPNs && (len(token) < 64 || len(token)%2 != 0 || len(token) > 200) {
		return chat.Errorf(chat.CodeInvalidArgument, "an APNs token is 64 to 200 hexadecimal digits")
	}
	return nil
}

// PushSubscriptions lists the caller's subscriptions (of every device).
func (s *Service) PushSubscriptions(ctx context.Context, p Principal) ([]chat.PushSubscription, error) {
	store, err := s.pushStore()
	if err != nil {
		return nil, err
	}
	return store.ListPushSubscriptions(ctx, p.User)
}

// UnsubscribePush deletes one of the caller's subscriptions.
// Errors: not_found (also for another user's subscription).
func (s *Service) UnsubscribePush(ctx context.Context, p Principal, id chat.PushSubscriptionID) error {
	store, err := s.pushStore()
	if err != nil {
		return err
	}
	return store.DeletePushSubscription(ctx, p.User, id)
}

// NotifyLevel returns the caller's notification level in conv.
// Errors: not_found (not a member).
func (s *Service) NotifyLevel(ctx context.Context, p Principal, conv chat.ConversationID) (chat.NotifyLevel, error) {
	store, err := s.pushStore()
	if err != nil {
		return "", err
	}
	if err := s.members.check(ctx, conv, p.User); err != nil {
		return "", err
	}
	return store.GetNotifyLevel(ctx, conv, p.User)
}

// NotifyLevels returns the caller's levels other than "all" in the
// conversations they are a member of, by conversation id (one read for
// all of them, instead of NotifyLevel per conversation). It is not paged:
// like ListConversations it has at most one entry per membership.
// Errors: push_not_configured.
func (s *Service) NotifyLevels(ctx context.Context, p Principal) ([]chat.ConvNotifyLevel, error) {
	store, err := s.pushStore()
	if err != nil {
		return nil, err
	}
	return store.ListNotifyLevels(ctx, p.User)
}

// SetNotifyLevel sets the caller's notification level in conv; every
// device of the caller then gets a settings frame with it (see
// changeSetting), even when the level was already that one.
// Errors: invalid_argument, not_found (not a member).
func (s *Service) SetNotifyLevel(ctx context.Context, p Principal, conv chat.ConversationID, level chat.NotifyLevel) error {
	store, err := s.pushStore()
	if err != nil {
		return err
	}
	if !level.Valid() {
		return chat.Errorf(chat.CodeInvalidArgument, `level must be "all", "mentions" or "none"`)
	}
	if err := s.members.check(ctx, conv, p.User); err != nil {
		return err
	}
	change := chat.SettingChange{What: chat.SettingNotifyLevel, Conv: conv, Level: level}
	return s.changeSetting(ctx, p.User, change, func(ctx context.Context) (bool, error) {
		return true, store.SetNotifyLevel(ctx, conv, p.User, level)
	})
}

// PushSettings returns the caller's push settings.
func (s *Service) PushSettings(ctx context.Context, p Principal) (chat.PushSettings, error) {
	store, err := s.pushStore()
	if err != nil {
		return chat.PushSettings{}, err
	}
	return store.GetPushSettings(ctx, p.User)
}

// UpdatePushSettings stores the caller's push settings; every device of
// the caller then gets a settings frame with them (see changeSetting).
func (s *Service) UpdatePushSettings(ctx context.Context, p Principal, ps chat.PushSettings) error {
	store, err := s.pushStore()
	if err != nil {
		return err
	}
	change := chat.SettingChange{What: chat.SettingPush, Push: ps}
	return s.changeSetting(ctx, p.User, change, func(ctx context.Context) (bool, error) {
		return true, store.UpdatePushSettings(ctx, p.User, ps)
	})
}
