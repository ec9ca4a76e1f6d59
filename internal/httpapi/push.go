package httpapi

import (
	"net/http"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/protocol"
)

// pushRoutes registers the push notification endpoints.
func (a *API) pushRoutes(mux *http.ServeMux) {
	a.handle(mux, "GET /v1/push/vapid-public-key", true, a.vapidKey)
	a.handle(mux, "POST /v1/push/subscriptions", true, a.subscribePush)
	a.handle(mux, "GET /v1/push/subscriptions", true, a.pushSubscriptions)
	a.handle(mux, "DELETE /v1/push/subscriptions/{id}", true, a.unsubscribePush)
	a.handle(mux, "GET /v1/conversations/{id}/notifications", true, a.notifyLevel)
	a.handle(mux, "PUT /v1/conversations/{id}/notifications", true, a.setNotifyLevel)
	a.handle(mux, "GET /v1/me/notification-levels", true, a.notifyLevels)
	a.handle(mux, "GET /v1/me/push-settings", true, a.pushSettings)
	a.handle(mux, "PUT /v1/me/push-settings", true, a.setPushSettings)
}

func (a *API) vapidKey(w http.ResponseWriter, _ *http.Request, _ core.Principal) error {
	key, err := a.svc.VAPIDPublicKey()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.VAPIDKeyResponse{PublicKey: key})
	return nil
}

func (a *API) subscribePush(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	var req protocol.PushSubscribeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	in := core.PushSubscribeRequest{Kind: chat.PushKind(req.Kind), Endpoint: req.Endpoint, Token: req.Token}
	if req.Keys != nil {
		in.P256dh, in.Auth = req.Keys.P256dh, req.Keys.Auth
	}
	sub, err := a.svc.SubscribePush(r.Context(), p, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, protocol.PushSubscriptionResponse{Subscription: protocol.FromPushSubscription(sub, p.Session)})
	return nil
}

func (a *API) pushSubscriptions(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	list, err := a.svc.PushSubscriptions(r.Context(), p)
	if err != nil {
		return err
	}
	out := protocol.PushSubscriptionsResponse{Subscriptions: make([]protocol.PushSubscription, len(list))}
	for i, s := range list {
		out.Subscriptions[i] = protocol.FromPushSubscription(s, p.Session)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) unsubscribePush(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.svc.UnsubscribePush(r.Context(), p, chat.PushSubscriptionID(id)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) notifyLevel(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	level, err := a.svc.NotifyLevel(r.Context(), p, chat.ConversationID(id))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.NotifyLevelBody{Level: string(level)})
	return nil
}

func (a *API) notifyLevels(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	levels, err := a.svc.NotifyLevels(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.FromNotifyLevels(levels))
	return nil
}

func (a *API) setNotifyLevel(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req protocol.NotifyLevelBody
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := a.svc.SetNotifyLevel(r.Context(), p, chat.ConversationID(id), chat.NotifyLevel(req.Level)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}

func (a *API) pushSettings(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	ps, err := a.svc.PushSettings(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.PushSettingsBody{HideText: ps.HideText})
	return nil
}

func (a *API) setPushSettings(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	var req protocol.PushSettingsBody
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := a.svc.UpdatePushSettings(r.Context(), p, chat.PushSettings{HideText: req.HideText}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}
