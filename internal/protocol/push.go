package protocol

import (
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// PushSubscribeRequest is the body of POST /v1/push/subscriptions: a
// browser's PushSubscription.toJSON() as is ({"endpoint", "expirationTime",
// "keys": {"p256dh", "auth"}}), or {"kind": "apns"|"fcm", "token"}.
type PushSubscribeRequest struct {
	Kind           string    `json:"kind,omitempty"`
	Endpoint       string    `json:"endpoint,omitempty"`
	ExpirationTime *float64  `json:"expirationTime,omitempty"` // sent by browsers; ignored
	Keys           *PushKeys `json:"keys,omitempty"`
	Token          string    `json:"token,omitempty"`
}

// PushKeys are a browser subscription's keys, base64url.
type PushKeys struct {
	P256dh string `json:"p256dh"`
	Auth   string `json:"auth"`
}

// PushSubscription is a stored subscription as its owner sees it; the
// keys are never sent back.
type PushSubscription struct {
	ID          string     `json:"id"`
	Kind        string     `json:"kind"`
	Endpoint    string     `json:"endpoint,omitempty"` // webpush
	Token       string     `json:"token,omitempty"`    // apns, fcm
	SessionID   string     `json:"session_id"`
	Current     bool       `json:"current"` // made by the session asking
	CreatedAt   time.Time  `json:"created_at"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
}

// PushSubscriptionResponse answers POST /v1/push/subscriptions.
type PushSubscriptionResponse struct {
	Subscription PushSubscription `json:"subscription"`
}

// PushSubscriptionsResponse answers GET /v1/push/subscriptions.
type PushSubscriptionsResponse struct {
	Subscriptions []PushSubscription `json:"subscriptions"`
}

// VAPIDKeyResponse answers GET /v1/push/vapid-public-key.
type VAPIDKeyResponse struct {
	PublicKey string `json:"public_key"`
}

// NotifyLevelBody is the body and answer of
// PUT/GET /v1/conversations/{id}/notifications.
type NotifyLevelBody struct {
	Level string `json:"level"`
}

// NotifyLevelsResponse answers GET /v1/me/notification-levels: the
// caller's levels other than "all", one per conversation, by id.
type NotifyLevelsResponse struct {
	Levels []ConvNotifyLevel `json:"levels"`
}

// ConvNotifyLevel is the caller's notification level in one conversation.
type ConvNotifyLevel struct {
	Conv  string `json:"conv"`
	Level string `json:"level"`
}

// FromNotifyLevels converts a user's levels (never a null list).
func FromNotifyLevels(levels []chat.ConvNotifyLevel) NotifyLevelsResponse {
	out := NotifyLevelsResponse{Levels: make([]ConvNotifyLevel, len(levels))}
	for i, l := range levels {
		out.Levels[i] = ConvNotifyLevel{Conv: l.Conv.String(), Level: string(l.Level)}
	}
	return out
}

// PushSettingsBody is the body and answer of PUT/GET /v1/me/push-settings.
type PushSettingsBody struct {
	HideText bool `json:"hide_text"`
}

// FromPushSubscription converts a subscription for its owner on session
// current.
func FromPushSubscription(s chat.PushSubscription, current chat.SessionID) PushSubscription {
	out := PushSubscription{ID: s.ID.String(), Kind: string(s.Kind), SessionID: s.Session.String(), Current: s.Session == current, CreatedAt: s.CreatedAt.UTC()}
	if s.Kind == chat.PushWebPush {
		out.Endpoint = s.Endpoint
	} else {
		out.Token = s.Endpoint
	}
	if !s.LastSuccess.IsZero() {
		t := s.LastSuccess.UTC()
		out.LastSuccess = &t
	}
	return out
}
