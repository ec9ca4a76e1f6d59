package protocol

import (
	"encoding/json"
	"time"
)

// User is an account as others see it.
type User struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"created_at"`
}

// Message is a stored message: its current state. A deleted message is
// a tombstone: "deleted":true, empty text, no mentions or reactions.
type Message struct {
	ID        string     `json:"id"`
	Conv      string     `json:"conv"`
	Seq       int64      `json:"seq"`
	Sender    string     `json:"sender"`
	ClientID  string     `json:"client_id"`
	Text      string     `json:"text"`
	SentAt    time.Time  `json:"sent_at"`
	Pos       int64      `json:"pos"`
	ReplyTo   string     `json:"reply_to,omitempty"`
	Mentions  []string   `json:"mentions,omitempty"`
	EditedAt  *time.Time `json:"edited_at,omitempty"`
	Deleted   bool       `json:"deleted,omitempty"`
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
	Reactions []Reaction `json:"reactions,omitempty"`
	// Attachments are the files the message carries (none once deleted).
	Attachments []Attachment `json:"attachments,omitempty"`
}

// Reaction is one emoji on a message with the users who chose it.
type Reaction struct {
	Emoji string   `json:"emoji"`
	Users []string `json:"users"`
	Count int      `json:"count"`
}

// Member is one member of a conversation.
type Member struct {
	Conv         string    `json:"conv,omitempty"`
	User         string    `json:"user"`
	Username     string    `json:"username,omitempty"`
	Role         string    `json:"role"`
	JoinedAt     time.Time `json:"joined_at"`
	ReadSeq      int64     `json:"read_seq"`
	DeliveredSeq int64     `json:"delivered_seq"`
	Pos          int64     `json:"pos"`
}

// Conversation is a conversation as one of its members sees it. ReadSeq
// and Unread are the caller's; LastMessage is null when there is none.
type Conversation struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Title       string    `json:"title,omitempty"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	LastSeq     int64     `json:"last_seq"`
	Pos         int64     `json:"pos"`
	Members     []Member  `json:"members"`
	LastMessage *Message  `json:"last_message"`
	ReadSeq     int64     `json:"read_seq"`
	Unread      int64     `json:"unread"`
}

// Session is one login (device) of the caller.
type Session struct {
	ID         string    `json:"id"`
	Device     string    `json:"device,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Current    bool      `json:"current"`
}

// CredentialsRequest is the body of POST /v1/accounts and POST /v1/sessions.
type CredentialsRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Device   string `json:"device,omitempty"`
}

// RefreshRequest is the body of POST /v1/sessions/refresh.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// AuthResponse answers registration, login and refresh.
type AuthResponse struct {
	User            User      `json:"user"`
	SessionID       string    `json:"session_id"`
	AccessToken     string    `json:"access_token"`
	AccessExpiresAt time.Time `json:"access_expires_at"`
	RefreshToken    string    `json:"refresh_token"`
}

// CreateConversationRequest is the body of POST /v1/conversations. Members
// are user ids; the caller is always a member and need not be listed.
type CreateConversationRequest struct {
	Kind    string   `json:"kind"`
	Members []string `json:"members"`
	Title   string   `json:"title,omitempty"`
}

// ConversationResponse wraps one conversation.
type ConversationResponse struct {
	Conversation Conversation `json:"conversation"`
}

// ConversationsResponse answers GET /v1/conversations.
type ConversationsResponse struct {
	Conversations []Conversation `json:"conversations"`
}

// MembersRequest is the body of POST /v1/conversations/{id}/members.
type MembersRequest struct {
	Members []string `json:"members"`
}

// RoleRequest is the body of PATCH /v1/conversations/{id}/members/{user}.
type RoleRequest struct {
	Role string `json:"role"`
}

// SendRequest is the body of POST /v1/conversations/{id}/messages.
// ReplyTo is the id of an earlier message of the same conversation.
type SendRequest struct {
	ClientID string `json:"client_id"`
	Text     string `json:"text"`
	ReplyTo  string `json:"reply_to,omitempty"`
	// Attachments are ids of the sender's ready uploads to the
	// conversation; with any, Text may be empty.
	Attachments []string `json:"attachments,omitempty"`
}

// EditRequest is the body of PATCH /v1/conversations/{id}/messages/{msg}.
type EditRequest struct {
	Text string `json:"text"`
}

// TitleRequest is the body of PATCH /v1/conversations/{id}.
type TitleRequest struct {
	Title string `json:"title"`
}

// Presence is one user's presence. LastSeen is omitted while online and
// for users never seen.
type Presence struct {
	User     string     `json:"user"`
	Status   string     `json:"status"`
	LastSeen *time.Time `json:"last_seen,omitempty"`
}

// PresenceResponse answers GET /v1/users/{id}/presence.
type PresenceResponse struct {
	Presence Presence `json:"presence"`
}

// PresencesResponse answers GET /v1/presence?users=...
type PresencesResponse struct {
	Presence []Presence `json:"presence"`
}

// Change is one entry of the sync stream: the current state of what
// changed at Pos. Kind is "message", "member", "member_left" or
// "conversation", and names the field that is set.
type Change struct {
	Pos          int64         `json:"pos"`
	Kind         string        `json:"kind"`
	Message      *Message      `json:"message,omitempty"`
	Member       *Member       `json:"member,omitempty"`
	Conversation *Conversation `json:"conversation,omitempty"`
}

// ChangesResponse answers GET /v1/sync: a page of the caller's changes
// after the cursor asked for. Cursor is where the next page starts.
type ChangesResponse struct {
	Changes []Change `json:"changes"`
	Cursor  int64    `json:"cursor"`
	HasMore bool     `json:"has_more"`
}

// ReceiptsResponse answers GET /v1/conversations/{id}/messages/{msg}/receipts:
// which members have read the message and to whose devices it was
// delivered (the sender excluded).
type ReceiptsResponse struct {
	ReadBy         []string `json:"read_by"`
	DeliveredTo    []string `json:"delivered_to"`
	ReadCount      int      `json:"read_count"`
	DeliveredCount int      `json:"delivered_count"`
}

// MessageResponse wraps one message. Duplicate is true when the send was a
// retry of an already stored message (the original is returned).
type MessageResponse struct {
	Message   Message `json:"message"`
	Duplicate bool    `json:"duplicate,omitempty"`
}

// MessagesResponse is a page of history. HasMore says whether another page
// exists in the same direction.
type MessagesResponse struct {
	Messages []Message `json:"messages"`
	HasMore  bool      `json:"has_more"`
}

// ReadRequest is the body of POST /v1/conversations/{id}/read.
type ReadRequest struct {
	Seq int64 `json:"seq"`
}

// ReadResponse answers a read watermark update.
type ReadResponse struct {
	Conv         string `json:"conv"`
	ReadSeq      int64  `json:"read_seq"`
	DeliveredSeq int64  `json:"delivered_seq"`
}

// SessionsResponse answers GET /v1/sessions.
type SessionsResponse struct {
	Sessions []Session `json:"sessions"`
}

// UsersResponse answers GET /v1/users?q=: a page of users; Next, when
// set, is the after= value of the next page.
type UsersResponse struct {
	Users []User `json:"users"`
	Next  string `json:"next,omitempty"`
}

// UserResponse wraps one user.
type UserResponse struct {
	User User `json:"user"`
}

// ErrorBody is every REST error: {"error":{"code":..,"message":..}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of an ErrorBody. RetryAfter, in whole seconds,
// is set for rate_limited.
type ErrorDetail struct {
	Code       string `json:"code"`
	Message    string `json:"message"`
	RetryAfter int    `json:"retry_after,omitempty"`
	Cursor     *int64 `json:"cursor,omitempty"` // for resync_required: where to sync from after reloading
}

// Raw is a JSON value passed through untouched (e.g. a frame's ref).
type Raw = json.RawMessage
