package chat

import (
	"context"
	"time"
)

// PushKind names a push service.
type PushKind string

const (
	PushWebPush PushKind = "webpush" // Web Push (RFC 8030) with VAPID and aes128gcm payloads
	PushAPNs    PushKind = "apns"    // Apple Push Notification service
	PushFCM     PushKind = "fcm"     // Firebase Cloud Messaging (HTTP v1)
)

// PushSubscriptionID identifies a push subscription.
type PushSubscriptionID int64

func (id PushSubscriptionID) String() string { return UserID(id).String() }

// CodePushNotConfigured: a push subscription of a kind this server has no
// credentials for (APNs or FCM without configuration).
const CodePushNotConfigured Code = "push_not_configured"

// PushSubscription is one device's registration with a push service: a
// Web Push endpoint URL with the browser's keys, or an APNs or FCM device
// token. It belongs to the session (device) that created it and is used
// only while that session is live.
type PushSubscription struct {
	ID      PushSubscriptionID
	User    UserID
	Session SessionID
	Kind    PushKind
	// Endpoint is the Web Push endpoint URL, or the APNs or FCM token.
	Endpoint string
	P256dh   []byte // webpush: the browser's P-256 public key, uncompressed (65 bytes)
	Auth     []byte // webpush: the browser's authentication secret (16 bytes)
	// CreatedAt is when it was last created or re-created; LastSuccess
	// when a notification last reached the push service (zero if never;
	// recorded again only when ten minutes old, so it may lag that much).
	CreatedAt   time.Time
	LastSuccess time.Time
}

// NotifyLevel is how much of a conversation a member wants pushed.
type NotifyLevel string

const (
	NotifyAll      NotifyLevel = "all"      // every message (the default)
	NotifyMentions NotifyLevel = "mentions" // only messages that mention the member
	NotifyNone     NotifyLevel = "none"     // nothing: the conversation is muted
)

// Valid reports whether l is one of the levels.
func (l NotifyLevel) Valid() bool {
	return l == NotifyAll || l == NotifyMentions || l == NotifyNone
}

// ConvNotifyLevel is a user's notification level in one conversation.
type ConvNotifyLevel struct {
	Conv  ConversationID
	Level NotifyLevel
}

// PushSettings are a user's push preferences. The zero value is the default.
type PushSettings struct {
	HideText bool // privacy: notifications carry no message text
}

// PushRecipient is what a notification to one user needs: their level in
// the conversation, their settings and the subscriptions of their live
// sessions.
type PushRecipient struct {
	User          UserID
	Level         NotifyLevel
	Settings      PushSettings
	Subscriptions []PushSubscription
}

// PushDelivery is what delivering one queued notification needs, read
// when it is delivered rather than when it was planned: a queued delivery
// then holds only ids (no keys, tokens or text), and what it says is
// current (renames, edits, deletions, mutes, departures).
type PushDelivery struct {
	Subscription PushSubscription
	Settings     PushSettings // the subscription's user's
	// Member reports whether that user is still a member of the
	// conversation; Level is their level in it (NotifyAll if never set).
	Member bool
	Level  NotifyLevel
	// ConvKind and Title are the conversation's (both empty when it no
	// longer exists).
	ConvKind Kind
	Title    string
	// Message is the message as stored now, with ID, Conv, Seq, Sender,
	// Text, SentAt, EditedAt and DeletedAt only (a tombstone has empty
	// Text and DeletedAt set); nil when the conversation has no such
	// message. SenderName is its sender's username.
	Message    *Message
	SenderName string
}

// PushStore keeps push subscriptions, per-user push settings and
// per-member notification levels. Implemented by the sqlite and postgres
// stores next to chat.Store. Like Store, it checks no permissions.
type PushStore interface {
	// CreatePushSubscription stores sub, or, when a subscription of the
	// same kind and endpoint exists (of any user), moves it to sub's user
	// and session with sub's keys and CreatedAt: an endpoint reaches one
	// device, and the last account that subscribed it owns it. It returns
	// the stored subscription (with the existing ID when one was replaced).
	// Errors: CodeNotFound when the user or session does not exist.
	CreatePushSubscription(ctx context.Context, sub PushSubscription) (PushSubscription, error)
	// ListPushSubscriptions returns user's subscriptions, oldest first.
	ListPushSubscriptions(ctx context.Context, user UserID) ([]PushSubscription, error)
	// HasPushSubscriptions reports whether any user has a subscription
	// (a cheap check that lets a server without push users skip planning).
	HasPushSubscriptions(ctx context.Context) (bool, error)
	// DeletePushSubscription deletes user's subscription id. CodeNotFound
	// when user has no such subscription.
	DeletePushSubscription(ctx context.Context, user UserID, id PushSubscriptionID) error
	// MarkPushSuccess records a delivery to the push service at at; an
	// unknown id is not an error.
	MarkPushSuccess(ctx context.Context, id PushSubscriptionID, at time.Time) error

	// GetPushSettings returns user's settings (the zero value if never set).
	GetPushSettings(ctx context.Context, user UserID) (PushSettings, error)
	// UpdatePushSettings stores user's settings.
	UpdatePushSettings(ctx context.Context, user UserID, s PushSettings) error
	// SetNotifyLevel sets user's level in conv (NotifyAll removes the
	// record). It does not check membership.
	SetNotifyLevel(ctx context.Context, conv ConversationID, user UserID, level NotifyLevel) error
	// GetNotifyLevel returns user's level in conv (NotifyAll if never set).
	GetNotifyLevel(ctx context.Context, conv ConversationID, user UserID) (NotifyLevel, error)
	// ListNotifyLevels returns user's levels other than NotifyAll in the
	// conversations user is a member of now, by conversation id; every
	// other conversation of theirs is at NotifyAll. Levels kept from a
	// conversation they left are not returned (they apply again if they
	// come back). One row at most per membership.
	ListNotifyLevels(ctx context.Context, user UserID) ([]ConvNotifyLevel, error)

	// ListPushRecipients returns, for the users among users that have at
	// least one subscription on a session live at now, their level in
	// conv, settings and those subscriptions; in any order.
	ListPushRecipients(ctx context.Context, conv ConversationID, users []UserID, now time.Time) ([]PushRecipient, error)
	// GetPushDelivery reads, in one query, what delivering a notification
	// about message msg of conv to user's subscription id needs (see
	// PushDelivery). CodeNotFound when user has no subscription id on a
	// session live at now: it was deleted, moved to another account, or
	// its session ended.
	GetPushDelivery(ctx context.Context, user UserID, id PushSubscriptionID, conv ConversationID, msg MessageID, now time.Time) (PushDelivery, error)

	// VAPIDKey returns the server's Web Push (VAPID) private key: candidate
	// if none was stored yet (it is then stored, once), else the stored
	// one, so that every node of a cluster signs with the same key.
	VAPIDKey(ctx context.Context, candidate []byte) ([]byte, error)
}
