package httpapi

import (
	"net/http"
	"strconv"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/protocol"
)

func authResponse(res core.AuthResult) protocol.AuthResponse {
	return protocol.AuthResponse{
		User: protocol.FromUser(res.User), SessionID: res.Session.String(),
		AccessToken: res.AccessToken, AccessExpiresAt: res.AccessExpiresAt.UTC(), RefreshToken: res.RefreshToken,
	}
}

func (a *API) register(w http.ResponseWriter, r *http.Request, _ core.Principal) error {
	var req protocol.CredentialsRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := a.svc.Register(r.Context(), req.Username, req.Password, req.Device)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, authResponse(res))
	return nil
}

func (a *API) login(w http.ResponseWriter, r *http.Request, _ core.Principal) error {
	var req protocol.CredentialsRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := a.svc.Login(r.Context(), req.Username, req.Password, req.Device, a.clientAddr(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, authResponse(res))
	return nil
}

func (a *API) refresh(w http.ResponseWriter, r *http.Request, _ core.Principal) error {
	var req protocol.RefreshRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := a.svc.Refresh(r.Context(), req.RefreshToken)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, authResponse(res))
	return nil
}

func (a *API) sessions(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	list, err := a.svc.Sessions(r.Context(), p)
	if err != nil {
		return err
	}
	out := protocol.SessionsResponse{Sessions: make([]protocol.Session, len(list))}
	for i, s := range list {
		out.Sessions[i] = protocol.FromSession(s, s.ID == p.Session)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) logout(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	if err := a.svc.Logout(r.Context(), p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) revokeSession(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.svc.RevokeSession(r.Context(), p, chat.SessionID(id)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) me(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	u, err := a.svc.Me(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.UserResponse{User: protocol.FromUser(u)})
	return nil
}

func parseUserIDs(field string, ids []string) ([]chat.UserID, error) {
	out := make([]chat.UserID, len(ids))
	for i, s := range ids {
		id, err := chat.ParseID(field, s)
		if err != nil {
			return nil, err
		}
		out[i] = chat.UserID(id)
	}
	return out, nil
}

// conversation converts a summary, resolving member usernames.
func (a *API) conversation(r *http.Request, s chat.ConversationSummary) (protocol.Conversation, error) {
	ids := make([]chat.UserID, len(s.Members))
	for i, m := range s.Members {
		ids[i] = m.User
	}
	names, err := a.svc.Usernames(r.Context(), ids)
	if err != nil {
		return protocol.Conversation{}, err
	}
	return protocol.FromSummary(s, names), nil
}

func (a *API) createConversation(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	var req protocol.CreateConversationRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	members, err := parseUserIDs("members", req.Members)
	if err != nil {
		return err
	}
	sum, created, err := a.svc.CreateConversation(r.Context(), p, chat.Kind(req.Kind), members, req.Title)
	if err != nil {
		return err
	}
	c, err := a.conversation(r, sum)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, protocol.ConversationResponse{Conversation: c})
	return nil
}

func (a *API) listConversations(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	list, err := a.svc.ListConversations(r.Context(), p)
	if err != nil {
		return err
	}
	var ids []chat.UserID
	for _, s := range list {
		for _, m := range s.Members {
			ids = append(ids, m.User)
		}
	}
	names, err := a.svc.Usernames(r.Context(), ids)
	if err != nil {
		return err
	}
	out := protocol.ConversationsResponse{Conversations: make([]protocol.Conversation, len(list))}
	for i, s := range list {
		out.Conversations[i] = protocol.FromSummary(s, names)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getConversation(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	sum, err := a.svc.GetConversation(r.Context(), p, chat.ConversationID(id))
	if err != nil {
		return err
	}
	c, err := a.conversation(r, sum)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.ConversationResponse{Conversation: c})
	return nil
}

func (a *API) addMembers(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req protocol.MembersRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	users, err := parseUserIDs("members", req.Members)
	if err != nil {
		return err
	}
	sum, err := a.svc.AddMembers(r.Context(), p, chat.ConversationID(id), users)
	if err != nil {
		return err
	}
	c, err := a.conversation(r, sum)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.ConversationResponse{Conversation: c})
	return nil
}

func (a *API) removeMember(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	user, err := pathID(r, "user")
	if err != nil {
		return err
	}
	if err := a.svc.RemoveMember(r.Context(), p, chat.ConversationID(id), chat.UserID(user)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) setRole(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	user, err := pathID(r, "user")
	if err != nil {
		return err
	}
	var req protocol.RoleRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	sum, err := a.svc.SetRole(r.Context(), p, chat.ConversationID(id), chat.UserID(user), chat.Role(req.Role))
	if err != nil {
		return err
	}
	c, err := a.conversation(r, sum)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.ConversationResponse{Conversation: c})
	return nil
}

func queryInt(r *http.Request, name string) (int64, bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false, chat.Errorf(chat.CodeInvalidArgument, "%s must be a non-negative integer", name)
	}
	return n, true, nil
}

func (a *API) history(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	q := chat.MessageQuery{Conv: chat.ConversationID(id)}
	var hasBefore, hasAfter bool
	var limit int64
	if q.Before, hasBefore, err = queryInt(r, "before"); err != nil {
		return err
	}
	if q.After, hasAfter, err = queryInt(r, "after"); err != nil {
		return err
	}
	if limit, _, err = queryInt(r, "limit"); err != nil {
		return err
	}
	if hasBefore && hasAfter {
		return chat.Errorf(chat.CodeInvalidArgument, "give at most one of before and after")
	}
	if hasBefore && q.Before == 0 {
		return chat.Errorf(chat.CodeInvalidArgument, "before must be a positive seq")
	}
	q.Forward = hasAfter
	q.Limit = int(min(limit, int64(core.MaxHistoryLimit)+1))
	msgs, more, err := a.svc.History(r.Context(), p, q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.MessagesResponse{Messages: protocol.FromMessages(msgs), HasMore: more})
	return nil
}

func (a *API) send(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req protocol.SendRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	var replyTo int64
	if req.ReplyTo != "" {
		if replyTo, err = chat.ParseID("reply_to", req.ReplyTo); err != nil {
			return err
		}
	}
	res, err := a.svc.SendMessage(r.Context(), p, core.Outgoing{Conv: chat.ConversationID(id), ClientID: req.ClientID, Text: req.Text,
		ReplyTo: chat.MessageID(replyTo), Attachments: core.AttachmentIDs(req.Attachments)})
	if err != nil {
		a.met.Sends.WithLabelValues(string(chat.ErrorCode(err))).Inc()
		return err
	}
	status, result := http.StatusCreated, "ok"
	if res.Duplicate {
		status, result = http.StatusOK, "duplicate"
	}
	a.met.Sends.WithLabelValues(result).Inc()
	writeJSON(w, status, protocol.MessageResponse{Message: protocol.FromMessage(res.Message), Duplicate: res.Duplicate})
	return nil
}

func (a *API) markRead(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req protocol.ReadRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	m, err := a.svc.MarkRead(r.Context(), p, chat.ConversationID(id), req.Seq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.ReadResponse{Conv: m.Conv.String(), ReadSeq: m.ReadSeq, DeliveredSeq: m.DeliveredSeq})
	return nil
}
