package chat

import "time"

// User is an account. Usernames are unique, case-insensitively, and stored
// in lower case.
type User struct {
	ID        UserID
	Username  string
	CreatedAt time.Time
}

// Session is one login of a user: one device. Its refresh token is stored
// only as a hash and rotated on every use.
type Session struct {
	ID         SessionID
	User       UserID
	Device     string // free text the client gave at login, e.g. "laptop"; may be empty
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time // the refresh token stops working at this time
	RevokedAt  time.Time // zero while the session is live
}

// Live reports whether the session may still refresh at time now.
func (s Session) Live(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// Kind is the kind of a conversation.
type Kind string

const (
	KindDirect Kind = "direct" // exactly two members, both owners, unique per pair
	KindGroup  Kind = "group"  // a title and any number of members with roles
)

// Role is a member's role in a conversation.
type Role string

const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// CanManage reports whether the role may add and remove members.
func (r Role) CanManage() bool { return r == RoleOwner || r == RoleAdmin }

// Conversation is a direct or group conversation. LastSeq is the seq of its
// newest message (0 when empty).
type Conversation struct {
	ID        ConversationID
	Kind      Kind
	Title     string
	CreatedBy UserID
	CreatedAt time.Time
	LastSeq   int64
}

// Member is one user's membership of a conversation. ReadSeq is the read
// watermark the user's clients set: messages with seq <= ReadSeq are read.
type Member struct {
	Conv     ConversationID
	User     UserID
	Role     Role
	JoinedAt time.Time
	ReadSeq  int64
}

// ConversationSummary is a conversation as its member sees it in a list:
// the newest message, the caller's unread count and the members.
type ConversationSummary struct {
	Conversation
	Members     []Member
	LastMessage *Message // nil when the conversation has no message
	ReadSeq     int64    // the caller's read watermark
	Unread      int64    // messages after ReadSeq not sent by the caller
}

// Message is a stored message. Seq numbers a conversation's messages 1, 2,
// 3, ... with no gap; ID is unique across conversations and nodes.
type Message struct {
	ID       MessageID
	Conv     ConversationID
	Seq      int64
	Sender   UserID
	ClientID string // the sender's idempotency key
	Text     string
	SentAt   time.Time
}

// Draft is a message to append. ID and SentAt are chosen by the caller;
// the store assigns Seq inside the committing transaction.
type Draft struct {
	ID       MessageID
	Conv     ConversationID
	Sender   UserID
	ClientID string
	Text     string
	SentAt   time.Time
}

// AppendResult is the outcome of one Draft in Store.AppendMessages.
// Exactly one of Err and Message is meaningful. Duplicate is true when a
// message with the same (Conv, Sender, ClientID) was already stored: Message
// is then that original message, with its original ID, Seq and SentAt.
type AppendResult struct {
	Message   Message
	Duplicate bool
	Err       error
}

// MessageQuery selects a page of a conversation's messages.
// With Forward set (or After > 0) it returns messages with seq > After in
// ascending seq order; otherwise messages with seq < Before (or the newest
// when Before is 0) in descending seq order. Limit is clamped to
// [1, MaxPageSize].
type MessageQuery struct {
	Conv    ConversationID
	Before  int64
	After   int64
	Forward bool
	Limit   int
}

// MaxPageSize bounds every page of messages.
const MaxPageSize = 1000
