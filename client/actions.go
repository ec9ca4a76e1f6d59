package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/natter-chat/natter/internal/protocol"
)

func messagePath(conv, id string) string { return convPath(conv) + "/messages/" + url.PathEscape(id) }

// SendReply is Send with a reply to message replyTo of the same
// conversation.
func (c *Client) SendReply(ctx context.Context, conv, clientID, text, replyTo string) (MessageResponse, error) {
	var r MessageResponse
	err := c.do(ctx, http.MethodPost, convPath(conv)+"/messages", nil, SendRequest{ClientID: clientID, Text: text, ReplyTo: replyTo}, &r)
	return r, err
}

// Edit replaces the text of one's own message.
func (c *Client) Edit(ctx context.Context, conv, id, text string) (Message, error) {
	var r MessageResponse
	err := c.do(ctx, http.MethodPatch, messagePath(conv, id), nil, EditRequest{Text: text}, &r)
	return r.Message, err
}

// Delete turns a message into a tombstone.
func (c *Client) Delete(ctx context.Context, conv, id string) (Message, error) {
	var r MessageResponse
	err := c.do(ctx, http.MethodDelete, messagePath(conv, id), nil, nil, &r)
	return r.Message, err
}

// React adds (on) or removes one's emoji reaction on a message.
func (c *Client) React(ctx context.Context, conv, id, emoji string, on bool) (Message, error) {
	method := http.MethodPut
	if !on {
		method = http.MethodDelete
	}
	var r MessageResponse
	err := c.do(ctx, method, messagePath(conv, id)+"/reactions/"+url.PathEscape(emoji), nil, nil, &r)
	return r.Message, err
}

// Receipts says who has read a message and to whom it was delivered.
func (c *Client) Receipts(ctx context.Context, conv, id string) (ReceiptsResponse, error) {
	var r ReceiptsResponse
	err := c.do(ctx, http.MethodGet, messagePath(conv, id)+"/receipts", nil, nil, &r)
	return r, err
}

// MarkDelivered raises one's delivered watermark in conv to seq.
func (c *Client) MarkDelivered(ctx context.Context, conv string, seq int64) (ReadResponse, error) {
	var r ReadResponse
	err := c.do(ctx, http.MethodPost, convPath(conv)+"/delivered", nil, ReadRequest{Seq: seq}, &r)
	return r, err
}

// Rename sets a group's title.
func (c *Client) Rename(ctx context.Context, conv, title string) (Conversation, error) {
	var r ConversationResponse
	err := c.do(ctx, http.MethodPatch, convPath(conv), nil, TitleRequest{Title: title}, &r)
	return r.Conversation, err
}

// Presence returns the presence of users (GET /v1/presence).
func (c *Client) Presence(ctx context.Context, users ...string) ([]Presence, error) {
	var r protocol.PresencesResponse
	err := c.do(ctx, http.MethodGet, "/v1/presence", url.Values{"users": {strings.Join(users, ",")}}, nil, &r)
	return r.Presence, err
}

// Changes returns a page of one's sync stream after cursor (GET /v1/sync).
// A gap too long to replay is an *Error with code "resync_required" whose
// Cursor says where to continue after reloading conversations and history.
func (c *Client) Changes(ctx context.Context, cursor int64, limit int) (ChangesResponse, error) {
	v := url.Values{"cursor": {strconv.FormatInt(cursor, 10)}}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var r ChangesResponse
	err := c.do(ctx, http.MethodGet, "/v1/sync", v, nil, &r)
	return r, err
}

// Reply is Send with a reply to message replyTo of the same conversation.
func (c *Conn) Reply(ctx context.Context, conv, clientID, text, replyTo string) (Message, bool, error) {
	return c.message(ctx, "ws send", ClientFrame{Type: protocol.TypeSend, Conv: conv, ClientID: clientID, Text: text, ReplyTo: replyTo})
}

// Edit replaces the text of one's own message.
func (c *Conn) Edit(ctx context.Context, conv, id, text string) (Message, error) {
	m, _, err := c.message(ctx, "ws edit", ClientFrame{Type: protocol.TypeEdit, Conv: conv, ID: id, Text: text})
	return m, err
}

// Delete turns a message into a tombstone.
func (c *Conn) Delete(ctx context.Context, conv, id string) (Message, error) {
	m, _, err := c.message(ctx, "ws delete", ClientFrame{Type: protocol.TypeDelete, Conv: conv, ID: id})
	return m, err
}

// React adds (on) or removes one's emoji reaction on a message.
func (c *Conn) React(ctx context.Context, conv, id, emoji string, on bool) (Message, error) {
	m, _, err := c.message(ctx, "ws react", ClientFrame{Type: protocol.TypeReact, Conv: conv, ID: id, Emoji: emoji, Remove: !on})
	return m, err
}

func (c *Conn) message(ctx context.Context, op string, f ClientFrame) (Message, bool, error) {
	r, err := c.request(ctx, op, f)
	if err != nil {
		return Message{}, false, err
	}
	m, err := r.Msg()
	if err != nil || m == nil || r.Type != protocol.TypeAck {
		return Message{}, false, unexpected(op, r, err)
	}
	return *m, r.Duplicate, nil
}

// MarkDelivered raises one's delivered watermark in conv to seq.
func (c *Conn) MarkDelivered(ctx context.Context, conv string, seq int64) (deliveredSeq int64, err error) {
	r, err := c.request(ctx, "ws delivered", ClientFrame{Type: protocol.TypeDelivered, Conv: conv, Seq: seq})
	if err != nil {
		return 0, err
	}
	return r.DeliveredSeq, nil
}

// Typing tells the other members that one started (true) or stopped
// typing in conv. Repeat a start every few seconds while typing.
func (c *Conn) Typing(ctx context.Context, conv string, typing bool) error {
	state := "stop"
	if typing {
		state = "start"
	}
	_, err := c.request(ctx, "ws typing", ClientFrame{Type: protocol.TypeTyping, Conv: conv, State: state})
	return err
}

// SetStatus reports this device "online" or "away".
func (c *Conn) SetStatus(ctx context.Context, status string) error {
	_, err := c.request(ctx, "ws presence", ClientFrame{Type: protocol.TypePresence, Status: status})
	return err
}

// Changes returns a page of one's sync stream after cursor over the
// WebSocket (see Client.Changes).
func (c *Conn) Changes(ctx context.Context, cursor int64, limit int) (ChangesResponse, error) {
	r, err := c.request(ctx, "ws changes", ClientFrame{Type: protocol.TypeChanges, Cursor: cursor, Limit: limit})
	if err != nil {
		return ChangesResponse{}, err
	}
	if r.Type != protocol.TypeChanges {
		return ChangesResponse{}, unexpected("ws changes", r, nil)
	}
	if r.Changes == nil {
		r.Changes = []Change{}
	}
	return ChangesResponse{Changes: r.Changes, Cursor: r.Cursor, HasMore: r.HasMore}, nil
}

// SearchUsers finds users by username prefix (GET /v1/users?q=), a page
// at a time: pass the previous answer's Next as after.
func (c *Client) SearchUsers(ctx context.Context, prefix, after string, limit int) (protocol.UsersResponse, error) {
	v := url.Values{"q": {prefix}}
	if after != "" {
		v.Set("after", after)
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var r protocol.UsersResponse
	err := c.do(ctx, http.MethodGet, "/v1/users", v, nil, &r)
	return r, err
}
