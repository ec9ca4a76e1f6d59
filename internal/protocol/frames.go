package protocol

import "encoding/json"

// Client frame types.
const (
	TypeAuth = "auth" // {"type":"auth","token":T}: first frame of a browser connection
	TypeSend = "send" // {"type":"send","ref":R,"conv":C,"client_id":K,"text":T}
	TypeRead = "read" // {"type":"read","ref":R,"conv":C,"seq":N}
	TypeSync = "sync" // {"type":"sync","ref":R,"conv":C,"after":N,"limit":L}
	TypePing = "ping" // {"type":"ping","ref":R}
)

// Server frame types.
const (
	TypeReady        = "ready"          // after authentication: {"type":"ready","user":U,"session":S}
	TypeAck          = "ack"            // answer to send (with message) or read (with read_seq)
	TypeError        = "error"          // {"type":"error","ref":R,"code":C,"message":M}
	TypeMessage      = "message"        // a new message in a conversation of the user
	TypeMessages     = "messages"       // answer to sync: a page of messages
	TypePong         = "pong"           // answer to ping
	TypeConversation = "conversation"   // the user was added to a conversation (or it was created)
	TypeMemberAdded  = "members_added"  // members joined a conversation of the user
	TypeMemberGone   = "member_removed" // a member left or was removed
	TypeReadUpdate   = "read"           // a member's read watermark moved
	TypeRoleChanged  = "role_changed"   // a member's role changed
	TypeReconnect    = "reconnect"      // the node is draining: reconnect after after_ms
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
	ReadSeq      int64           `json:"read_seq,omitempty"`
	Code         string          `json:"code,omitempty"`
	RetryAfter   int             `json:"retry_after,omitempty"`
	AfterMS      int64           `json:"after_ms,omitempty"`
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
	ReadFrame struct {
		Type    string `json:"type"`
		Conv    string `json:"conv"`
		User    string `json:"user"`
		ReadSeq int64  `json:"read_seq"`
	}
	ConversationFrame struct {
		Type         string       `json:"type"`
		Conversation Conversation `json:"conversation"`
	}
	MembersFrame struct {
		Type  string   `json:"type"`
		Conv  string   `json:"conv"`
		Users []string `json:"users"`
	}
	RoleFrame struct {
		Type string `json:"type"`
		Conv string `json:"conv"`
		User string `json:"user"`
		Role string `json:"role"`
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
