package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/natter-chat/natter/internal/protocol"
)

// Push notification types of the wire protocol.
type (
	PushSubscribeRequest = protocol.PushSubscribeRequest
	PushKeys             = protocol.PushKeys
	PushSubscription     = protocol.PushSubscription
)

// VAPIDPublicKey returns the server's Web Push key, base64url, for
// pushManager.subscribe (GET /v1/push/vapid-public-key).
func (c *Client) VAPIDPublicKey(ctx context.Context) (string, error) {
	var r protocol.VAPIDKeyResponse
	err := c.do(ctx, http.MethodGet, "/v1/push/vapid-public-key", nil, nil, &r)
	return r.PublicKey, err
}

// SubscribePush registers this session's device for push notifications
// (POST /v1/push/subscriptions).
func (c *Client) SubscribePush(ctx context.Context, req PushSubscribeRequest) (PushSubscription, error) {
	var r protocol.PushSubscriptionResponse
	err := c.do(ctx, http.MethodPost, "/v1/push/subscriptions", nil, req, &r)
	return r.Subscription, err
}

// PushSubscriptions lists the account's push subscriptions.
func (c *Client) PushSubscriptions(ctx context.Context) ([]PushSubscription, error) {
	var r protocol.PushSubscriptionsResponse
	err := c.do(ctx, http.MethodGet, "/v1/push/subscriptions", nil, nil, &r)
	return r.Subscriptions, err
}

// UnsubscribePush deletes one of the account's push subscriptions.
func (c *Client) UnsubscribePush(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/push/subscriptions/"+url.PathEscape(id), nil, nil, nil)
}

// SetNotificationLevel sets how much of a conversation is pushed: "all",
// "mentions" or "none" (PUT /v1/conversations/{id}/notifications).
func (c *Client) SetNotificationLevel(ctx context.Context, conv, level string) error {
	return c.do(ctx, http.MethodPut, convPath(conv)+"/notifications", nil, protocol.NotifyLevelBody{Level: level}, nil)
}

// NotificationLevels returns the account's notification levels other
// than "all", keyed by conversation id, for every conversation it is a
// member of: a conversation absent from the map is at "all"
// (GET /v1/me/notification-levels).
func (c *Client) NotificationLevels(ctx context.Context) (map[string]string, error) {
	var r protocol.NotifyLevelsResponse
	if err := c.do(ctx, http.MethodGet, "/v1/me/notification-levels", nil, nil, &r); err != nil {
		return nil, err
	}
	levels := make(map[string]string, len(r.Levels))
	for _, l := range r.Levels {
		levels[l.Conv] = l.Level
	}
	return levels, nil
}

// SetPushSettings sets the account's push preferences
// (PUT /v1/me/push-settings).
func (c *Client) SetPushSettings(ctx context.Context, hideText bool) error {
	return c.do(ctx, http.MethodPut, "/v1/me/push-settings", nil, protocol.PushSettingsBody{HideText: hideText}, nil)
}
