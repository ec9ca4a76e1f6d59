package chat

import (
	"context"
	"time"
)

// Store is the system of record: users, sessions, conversations, members
// and messages. Implementations: sqlite (embedded) and, later, postgres.
// Every implementation must pass chattest.TestStore.
//
// Store methods check no permissions (package core does); they enforce only
// data invariants: unique usernames, one direct conversation per pair,
// gap-free seqs and idempotent appends. Lookups of something absent return
// an *Error with CodeNotFound. A failure of the backend itself is returned
// as CodeUnavailable, so callers can tell "retry" from "never".
type Store interface {
	// CreateUser stores a new user with its password hash.
	// Errors: CodeUsernameTaken.
	CreateUser(ctx context.Context, u User, passwordHash string) error
	// GetUser returns the user with id.
	GetUser(ctx context.Context, id UserID) (User, error)
	// GetUserByUsername returns the user and its password hash.
	GetUserByUsername(ctx context.Context, username string) (User, string, error)
	// ListUsers returns the users among ids that exist, in any order.
	ListUsers(ctx context.Context, ids []UserID) ([]User, error)
	// SearchUsers returns up to limit users whose username starts with
	// prefix (already lower-cased), ordered by username, after the username
	// after ("" for the first page).
	SearchUsers(ctx context.Context, prefix, after string, limit int) ([]User, error)

	// CreateSession stores a new session whose current refresh token hashes
	// to refreshHash.
	CreateSession(ctx context.Context, s Session, refreshHash string) error
	// RotateRefreshToken atomically replaces the session's current refresh
	// token hash oldHash by newHash and returns the session.
	// If oldHash is a token of the session that was already rotated away,
	// the session is revoked and CodeRefreshReused returned together with
	// a Session carrying the revoked session's ID and User. An unknown
	// hash, or a revoked or expired session, gives CodeUnauthenticated.
	RotateRefreshToken(ctx context.Context, oldHash, newHash string, now time.Time, ttl time.Duration) (Session, error)
	// GetSession returns a session by id (revoked ones included).
	GetSession(ctx context.Context, id SessionID) (Session, error)
	// ListSessions returns the user's live sessions, newest first.
	ListSessions(ctx context.Context, user UserID, now time.Time) ([]Session, error)
	// RevokeSession revokes the user's session id. Revoking a session that
	// is not the user's gives CodeNotFound; revoking twice is not an error.
	RevokeSession(ctx context.Context, user UserID, id SessionID, now time.Time) error

	// CreateConversation stores c with its members. For a direct
	// conversation that already exists between the same two users it stores
	// nothing and returns the existing one with created == false.
	CreateConversation(ctx context.Context, c Conversation, members []Member) (conv Conversation, created bool, err error)
	// GetConversation returns the conversation with id.
	GetConversation(ctx context.Context, id ConversationID) (Conversation, error)
	// GetMember returns user's membership of conv; CodeNotFound if none.
	GetMember(ctx context.Context, conv ConversationID, user UserID) (Member, error)
	// ListMembers returns conv's members ordered by join time then user id.
	ListMembers(ctx context.Context, conv ConversationID) ([]Member, error)
	// ListConversations returns the user's conversations, most recent
	// activity first, each with its last message and the user's unread count.
	ListConversations(ctx context.Context, user UserID) ([]ConversationSummary, error)
	// ListConversationIDs returns the ids of the user's conversations.
	ListConversationIDs(ctx context.Context, user UserID) ([]ConversationID, error)
	// AddMembers adds members to conv; users already members are left as
	// they are. It returns the members actually added.
	AddMembers(ctx context.Context, conv ConversationID, members []Member) ([]Member, error)
	// RemoveMember removes user from conv. CodeNotFound if not a member.
	// A conversation with members always has an owner: when the last owner
	// leaves, the longest-standing remaining admin (or, failing that,
	// member) becomes owner in the same transaction and is returned.
	RemoveMember(ctx context.Context, conv ConversationID, user UserID) (promoted []Member, err error)
	// UpdateMemberRole sets user's role in conv and returns the member.
	// CodeNotFound if not a member; CodeConflict when it would demote the
	// conversation's last owner.
	UpdateMemberRole(ctx context.Context, conv ConversationID, user UserID, role Role) (Member, error)
	// UpdateReadSeq raises user's read watermark in conv to seq (clamped to
	// the conversation's last seq; it never goes down) and returns the member.
	UpdateReadSeq(ctx context.Context, conv ConversationID, user UserID, seq int64) (Member, error)

	// AppendMessages stores drafts in one transaction (group commit) and
	// returns one result per draft, in order. Within the transaction each
	// new message gets its conversation's next seq, so seqs have no gap and
	// commit in seq order. A draft whose (Conv, Sender, ClientID) is already
	// stored, earlier or in the same batch, yields the stored message with
	// Duplicate set. A draft for a missing conversation yields a per-result
	// CodeNotFound. When the transaction fails, the returned error is
	// non-nil, nothing of the batch is stored, and results are nil.
	// AppendMessages returns only after the transaction is durable.
	AppendMessages(ctx context.Context, drafts []Draft) ([]AppendResult, error)
	// ListMessages returns a page of messages (see MessageQuery).
	ListMessages(ctx context.Context, q MessageQuery) ([]Message, error)

	// GetMessage returns a message of conv by id (tombstones included).
	// CodeNotFound when conv has no such message.
	GetMessage(ctx context.Context, conv ConversationID, id MessageID) (Message, error)
	// EditMessage replaces the text and mentions of a message that is not
	// deleted, sets EditedAt, and returns it. CodeNotFound for an unknown
	// message; CodeConflict for a deleted one.
	EditMessage(ctx context.Context, conv ConversationID, id MessageID, text string, mentions []UserID, at time.Time) (Message, error)
	// DeleteMessage turns a message into a tombstone: text, mentions and
	// reactions are erased from storage, seq and id stay, DeletedAt is set.
	// Deleting a tombstone again returns it unchanged. CodeNotFound for an
	// unknown message.
	DeleteMessage(ctx context.Context, conv ConversationID, id MessageID, at time.Time) (Message, error)
	// SetReaction adds (on) or removes user's emoji on a message that is
	// not deleted and returns the message. Adding twice or removing an
	// absent reaction changes nothing and assigns no new position.
	// CodeNotFound for an unknown message; CodeConflict for a deleted one.
	SetReaction(ctx context.Context, conv ConversationID, id MessageID, user UserID, emoji string, on bool) (Message, error)
	// UpdateDeliveredSeq raises user's delivered watermark in conv like
	// UpdateReadSeq does the read one.
	UpdateDeliveredSeq(ctx context.Context, conv ConversationID, user UserID, seq int64) (Member, error)
	// UpdateTitle sets a conversation's title and returns it.
	UpdateTitle(ctx context.Context, conv ConversationID, title string) (Conversation, error)

	// Every write above that changes something gives what it changed a new
	// change position, from one counter, inside its transaction: appended
	// and changed messages (Message.Pos), created or changed memberships
	// and read/delivered watermarks (Member.Pos), removed memberships (kept
	// as a member_left record) and conversation fields (Conversation.Pos).
	// Positions are unique, increase in commit order, and a write that
	// changes nothing assigns none.

	// ListChanges returns up to limit changes with Pos > after that user
	// may see, in Pos order: the changes of the conversations user is a
	// member of now, and the member_left records of user's own removals.
	// Each change carries the current state of what changed, so a thing
	// changed twice appears once, at its latest position.
	ListChanges(ctx context.Context, user UserID, after int64, limit int) (Changes, error)
	// CountChanges counts the changes ListChanges would return after
	// after, stopping at max.
	CountChanges(ctx context.Context, user UserID, after int64, max int) (int, error)
	// Position returns the newest change position (0 when none).
	Position(ctx context.Context) (int64, error)

	// Ping reports whether the store is reachable and migrated.
	Ping(ctx context.Context) error
	// Close releases the store. It is safe to call once.
	Close() error
}
