package httpapi

import (
	"net/http"
	"strings"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/protocol"
)

// convAndMessage parses the {id} and {msg} path values.
func convAndMessage(r *http.Request) (chat.ConversationID, chat.MessageID, error) {
	conv, err := pathID(r, "id")
	if err != nil {
		return 0, 0, err
	}
	msg, err := pathID(r, "msg")
	if err != nil {
		return 0, 0, err
	}
	return chat.ConversationID(conv), chat.MessageID(msg), nil
}

func writeMessage(w http.ResponseWriter, m chat.Message) {
	writeJSON(w, http.StatusOK, protocol.MessageResponse{Message: protocol.FromMessage(m)})
}

func (a *API) getMessage(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	conv, msg, err := convAndMessage(r)
	if err != nil {
		return err
	}
	m, err := a.svc.GetMessage(r.Context(), p, conv, msg)
	if err != nil {
		return err
	}
	writeMessage(w, m)
	return nil
}

func (a *API) editMessage(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	conv, msg, err := convAndMessage(r)
	if err != nil {
		return err
	}
	var req protocol.EditRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	m, err := a.svc.EditMessage(r.Context(), p, conv, msg, req.Text)
	if err != nil {
		return err
	}
	writeMessage(w, m)
	return nil
}

func (a *API) deleteMessage(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	conv, msg, err := convAndMessage(r)
	if err != nil {
		return err
	}
	m, err := a.svc.DeleteMessage(r.Context(), p, conv, msg)
	if err != nil {
		return err
	}
	writeMessage(w, m)
	return nil
}

func (a *API) react(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	conv, msg, err := convAndMessage(r)
	if err != nil {
		return err
	}
	m, err := a.svc.React(r.Context(), p, conv, msg, r.PathValue("emoji"), r.Method == http.MethodPut)
	if err != nil {
		return err
	}
	writeMessage(w, m)
	return nil
}

func (a *API) receipts(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	conv, msg, err := convAndMessage(r)
	if err != nil {
		return err
	}
	read, delivered, err := a.svc.Receipts(r.Context(), p, conv, msg)
	if err != nil {
		return err
	}
	out := protocol.ReceiptsResponse{ReadBy: idStrings(read), DeliveredTo: idStrings(delivered), ReadCount: len(read), DeliveredCount: len(delivered)}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func idStrings(ids []chat.UserID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

func (a *API) markDelivered(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req protocol.ReadRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	m, err := a.svc.MarkDelivered(r.Context(), p, chat.ConversationID(id), req.Seq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.ReadResponse{Conv: m.Conv.String(), ReadSeq: m.ReadSeq, DeliveredSeq: m.DeliveredSeq})
	return nil
}

func (a *API) rename(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req protocol.TitleRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	sum, err := a.svc.Rename(r.Context(), p, chat.ConversationID(id), req.Title)
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

func (a *API) presence(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	states, err := a.svc.Presence(r.Context(), p, []chat.UserID{chat.UserID(id)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.PresenceResponse{Presence: protocol.FromPresence(states[0])})
	return nil
}

func (a *API) presences(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	q := r.URL.Query().Get("users")
	if q == "" {
		return chat.Errorf(chat.CodeInvalidArgument, "users is required: comma-separated user ids")
	}
	raw := strings.Split(q, ",")
	ids, err := parseUserIDs("users", raw)
	if err != nil {
		return err
	}
	states, err := a.svc.Presence(r.Context(), p, ids)
	if err != nil {
		return err
	}
	out := protocol.PresencesResponse{Presence: make([]protocol.Presence, len(states))}
	for i, s := range states {
		out.Presence[i] = protocol.FromPresence(s)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) changes(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	cursor, _, err := queryInt(r, "cursor")
	if err != nil {
		return err
	}
	limit, _, err := queryInt(r, "limit")
	if err != nil {
		return err
	}
	cs, err := a.svc.Changes(r.Context(), p, cursor, int(min(limit, core.MaxChangesLimit+1)))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.FromChanges(cs))
	return nil
}

// searchUsers and getUser are in people.go.
