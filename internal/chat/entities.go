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
	Pos       int64 // change position of the latest change of its own fields (title)
}

// Member is one user's membership of a conversation. ReadSeq is the read
// watermark the user's clients set: messages with seq <= ReadSeq are read.
type Member struct {
	Conv         ConversationID
	User         UserID
	Role         Role
	JoinedAt     time.Time
	ReadSeq      int64
	DeliveredSeq int64 // messages with seq <= DeliveredSeq reached one of the user's devices
	Pos          int64 // change position of the membership's latest change
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
	Text     string // empty once deleted
	SentAt   time.Time
	ReplyTo  MessageID // an earlier message of the same conversation; 0 for none
	Mentions []UserID  // users named as @username in Text, resolved when sent or edited
	// EditedAt is when the text was last edited (zero if never); DeletedAt
	// when the message was deleted (zero if not): its text and mentions
	// are then erased from storage and only this tombstone stays.
	EditedAt  time.Time
	DeletedAt time.Time
	Reactions []Reaction // current reactions, ordered by emoji
	// Attachments are the files the message carries, in the order sent
	// (none once deleted). Stores leave it empty; core fills it in from
	// the AttachmentStore.
	Attachments []Attachment
	// Pos is the change position of the message's latest change (append,
	// edit, delete or reaction): see Store.ListChanges.
	Pos int64
}

// Reaction is one emoji on a message and who reacted with it, in the
// order they reacted.
type Reaction struct {
	Emoji string
	Users []UserID
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
	ReplyTo  MessageID // checked by the store: it must be a message of Conv
	Mentions []UserID
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

// ChangeKind says what a Change carries.
type ChangeKind string

const (
	ChangeMessage      ChangeKind = "message"      // a message was sent, edited, deleted or reacted to: Message is its current state
	ChangeMember       ChangeKind = "member"       // a membership was created or changed (role, receipts): Member
	ChangeMemberLeft   ChangeKind = "member_left"  // a member left or was removed: Member (its last state)
	ChangeConversation ChangeKind = "conversation" // a conversation's own fields changed (title): Conversation
)

// Change is one entry of a user's sync stream: the current state of
// something that changed at position Pos.
type Change struct {
	Pos          int64
	Kind         ChangeKind
	Message      *Message
	Member       *Member
	Conversation *Conversation
}

// Changes is a page of a user's sync stream. Cursor is the position to
// ask from next; HasMore says whether more changes follow it.
type Changes struct {
	Changes []Change
	Cursor  int64
	HasMore bool
}
