package protocol

import (
	"encoding/json"
	"time"
)

// Client frame types.
const (
	TypeAuth = "auth" // {"type":"auth","token":T}: first frame of a browser connection
	TypeSend = "send" // {"type":"send","ref":R,"conv":C,"client_id":K,"text":T}
	TypeRead = "read" // {"type":"read","ref":R,"conv":C,"seq":N}
	TypeSync = "sync" // {"type":"sync","ref":R,"conv":C,"after":N,"limit":L}
	TypePing = "ping" // {"type":"ping","ref":R}

	TypeEdit      = "edit"      // {"type":"edit","ref":R,"conv":C,"id":M,"text":T}
	TypeDelete    = "delete"    // {"type":"delete","ref":R,"conv":C,"id":M}
	TypeReact     = "react"     // {"type":"react","ref":R,"conv":C,"id":M,"emoji":E,"remove":false}
	TypeDelivered = "delivered" // {"type":"delivered","ref":R,"conv":C,"seq":N}
	TypeTyping    = "typing"    // {"type":"typing","conv":C,"state":"start"|"stop"} (also pushed)
	TypePresence  = "presence"  // {"type":"presence","status":"online"|"away"} (also pushed)
	TypeChanges   = "changes"   // {"type":"changes","ref":R,"cursor":P,"limit":L}: the sync stream (also the answer)
)

// Server frame types.
const (
	TypeReady               = "ready"                // after authentication: {"type":"ready","user":U,"session":S}
	TypeAck                 = "ack"                  // answer to send (with message) or read (with read_seq)
	TypeError               = "error"                // {"type":"error","ref":R,"code":C,"message":M}
	TypeMessage             = "message"              // a new message in a conversation of the user
	TypeMessages            = "messages"             // answer to sync: a page of messages
	TypePong                = "pong"                 // answer to ping
	TypeConversation        = "conversation"         // the user was added to a conversation (or it was created)
	TypeMemberAdded         = "members_added"        // members joined a conversation of the user
	TypeMemberGone          = "member_removed"       // a member left or was removed
	TypeReceipt             = "receipt"              // a member's read or delivered watermark moved
	TypeRoleChanged         = "role_changed"         // a member's role changed
	TypeMessageUpdated      = "message_updated"      // a message was edited, deleted or reacted to
	TypeConversationUpdated = "conversation_updated" // a conversation's title changed
	TypeReconnect           = "reconnect"            // the node is draining: reconnect after after_ms
)

// ClientFrame is any frame a client sends. Ref is echoed verbatim in the
// answer; it must be a JSON string or number of at most MaxRefBytes bytes.
type ClientFrame struct {
	Type     string          `json:"type"`
	Ref      json.RawMessage `json:"ref,omitempty"`
	Token    string          `json:"token,omitempty"`
	Conv     string          `json:"conv,omitempty"`
	ClientID string          `json:"client_id,omitempty"`
	Text     string          `json:"text,omitempty"`
	Seq      int64           `json:"seq,omitempty"`
	After    int64           `json:"after,omitempty"`
	Limit    int             `json:"limit,omitempty"`
	ID       string          `json:"id,omitempty"`       // a message id (edit, delete, react)
	ReplyTo  string          `json:"reply_to,omitempty"` // send
	Emoji    string          `json:"emoji,omitempty"`    // react
	Remove   bool            `json:"remove,omitempty"`   // react: take the reaction back
	State    string          `json:"state,omitempty"`    // typing: "start" or "stop"
	Status   string          `json:"status,omitempty"`   // presence: "online" or "away"
	Cursor   int64           `json:"cursor,omitempty"`   // changes

	// Attachments (send) are ids of the sender's ready uploads.
	Attachments []string `json:"attachments,omitempty"`
}

// MaxRefBytes bounds a frame's ref.
const MaxRefBytes = 64

// ServerFrame is any frame the server sends, as a client decodes it. The
// "message" field is an object (Message) in message and ack frames and a
// string in error frames, so it is kept raw: use Msg and ErrorText.
type ServerFrame struct {
	Type         string          `json:"type"`
	Ref          json.RawMessage `json:"ref,omitempty"`
	RawMessage   json.RawMessage `json:"message,omitempty"`
	Duplicate    bool            `json:"duplicate,omitempty"`
	Messages     []Message       `json:"messages,omitempty"`
	HasMore      bool            `json:"has_more,omitempty"`
	Conversation *Conversation   `json:"conversation,omitempty"`
	Conv         string          `json:"conv,omitempty"`
	User         string          `json:"user,omitempty"`
	Users        []string        `json:"users,omitempty"`
	Session      string          `json:"session,omitempty"`
	Role         string          `json:"role,omitempty"`
	DeliveredSeq int64           `json:"delivered_seq,omitempty"`
	Pos          int64           `json:"pos,omitempty"`
	Changes      []Change        `json:"changes,omitempty"`
	Cursor       int64           `json:"cursor,omitempty"`
	State        string          `json:"state,omitempty"`
	ExpiresMS    int64           `json:"expires_ms,omitempty"`
	Status       string          `json:"status,omitempty"`
	DisplayName  *string         `json:"display_name,omitempty"` // profile frames
	StatusText   string          `json:"status_text,omitempty"`  // profile frames
	Avatar       *string         `json:"avatar,omitempty"`       // profile frames
	LastSeen     *time.Time      `json:"last_seen,omitempty"`
	ReadSeq      int64           `json:"read_seq,omitempty"`
	Code         string          `json:"code,omitempty"`
	RetryAfter   int             `json:"retry_after,omitempty"`
	AfterMS      int64           `json:"after_ms,omitempty"`
	What         string          `json:"what,omitempty"`      // settings frames: which setting (Setting*)
	Level        string          `json:"level,omitempty"`     // settings frames: a notification level
	On           bool            `json:"on,omitempty"`        // settings frames: the contact or block is now set
	HideText     bool            `json:"hide_text,omitempty"` // settings frames: push notifications carry no text
}

// Msg decodes the frame's message object (message and ack frames).
// It returns nil when the frame carries none.
func (f *ServerFrame) Msg() (*Message, error) {
	if len(f.RawMessage) == 0 || f.RawMessage[0] != '{' {
		return nil, nil
	}
	var m Message
	if err := json.Unmarshal(f.RawMessage, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ErrorText returns the human message of an error frame.
func (f *ServerFrame) ErrorText() string {
	var s string
	if len(f.RawMessage) > 0 && f.RawMessage[0] == '"' {
		_ = json.Unmarshal(f.RawMessage, &s)
	}
	return s
}

// WebSocket close codes used by the server besides the standard ones
// (1000 normal, 1001 going away on drain, 1009 frame too large).
const (
	CloseUnauthenticated = 4001 // no valid token (header or auth frame) in time
	CloseSessionRevoked  = 4003 // the login was revoked or its token expired
	CloseSlowConsumer    = 4008 // the client did not read fast enough; reconnect and sync
	CloseProtocolError   = 4002 // too many bad frames
)

// The frames the server sends, as it encodes them: unlike ServerFrame
// (the client's union type), every field is always present, so a zero
// read_seq or an empty page is explicit.
type (
	ReadyFrame struct {
		Type    string `json:"type"`
		User    string `json:"user"`
		Session string `json:"session"`
	}
	PongFrame struct {
		Type string          `json:"type"`
		Ref  json.RawMessage `json:"ref,omitempty"`
	}
	MessagesFrame struct {
		Type     string          `json:"type"`
		Ref      json.RawMessage `json:"ref,omitempty"`
		Conv     string          `json:"conv"`
		Messages []Message       `json:"messages"`
		HasMore  bool            `json:"has_more"`
	}
	ReadAckFrame struct {
		Type    string          `json:"type"`
		Ref     json.RawMessage `json:"ref,omitempty"`
		Conv    string          `json:"conv"`
		ReadSeq int64           `json:"read_seq"`
	}
	ReceiptFrame struct {
		Type         string `json:"type"`
		Conv         string `json:"conv"`
		User         string `json:"user"`
		ReadSeq      int64  `json:"read_seq"`
		DeliveredSeq int64  `json:"delivered_seq"`
		Pos          int64  `json:"pos"`
		Cursor       int64  `json:"cursor,omitempty"` // the sync cursor to save (see docs/protocol.md 5.7)
	}
	ReceiptAckFrame struct {
		Type         string          `json:"type"`
		Ref          json.RawMessage `json:"ref,omitempty"`
		Conv         string          `json:"conv"`
		ReadSeq      int64           `json:"read_seq"`
		DeliveredSeq int64           `json:"delivered_seq"`
	}
	OKFrame struct {
		Type string          `json:"type"`
		Ref  json.RawMessage `json:"ref,omitempty"`
	}
	ChangesFrame struct {
		Type    string          `json:"type"`
		Ref     json.RawMessage `json:"ref,omitempty"`
		Changes []Change        `json:"changes"`
		Cursor  int64           `json:"cursor"`
		HasMore bool            `json:"has_more"`
	}
	ConversationUpdatedFrame struct {
		Type         string       `json:"type"`
		Conversation Conversation `json:"conversation"`
		Cursor       int64        `json:"cursor,omitempty"`
	}
	TypingFrame struct {
		Type      string `json:"type"`
		Conv      string `json:"conv"`
		User      string `json:"user"`
		State     string `json:"state"`
		ExpiresMS int64  `json:"expires_ms"`
	}
	PresenceFrame struct {
		Type string `json:"type"`
		Presence
	}
	ConversationFrame struct {
		Type         string       `json:"type"`
		Conversation Conversation `json:"conversation"`
		Cursor       int64        `json:"cursor,omitempty"`
	}
	MembersFrame struct {
		Type   string   `json:"type"`
		Conv   string   `json:"conv"`
		Users  []string `json:"users"`
		Cursor int64    `json:"cursor,omitempty"`
	}
	RoleFrame struct {
		Type   string `json:"type"`
		Conv   string `json:"conv"`
		User   string `json:"user"`
		Role   string `json:"role"`
		Pos    int64  `json:"pos"`
		Cursor int64  `json:"cursor,omitempty"`
	}
	ReconnectFrame struct {
		Type    string `json:"type"`
		AfterMS int64  `json:"after_ms"`
	}
)

// Encode marshals a server frame. It panics only on a programming error
// (the frame types always encode).
func Encode(frame any) []byte {
	b, err := json.Marshal(frame)
	if err != nil {
		panic("protocol: cannot encode a server frame: " + err.Error())
	}
	return b
}
