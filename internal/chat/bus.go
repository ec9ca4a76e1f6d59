package chat

import "context"

// EventKind says what an Event carries.
type EventKind string

const (
	// EventMessage: a new message (Message is set).
	EventMessage EventKind = "message"
	// EventMembersAdded: Users joined Conv (Conversation is set). A
	// conversation's creation is announced this way too.
	EventMembersAdded EventKind = "members_added"
	// EventMemberRemoved: Users left or were removed from Conv.
	EventMemberRemoved EventKind = "member_removed"
	// EventRoleChanged: Users[0]'s role in Conv became Role.
	EventRoleChanged EventKind = "role_changed"
	// EventRead: Users[0] moved their read watermark in Conv to ReadSeq.
	EventRead EventKind = "read"
	// EventSessionRevoked: Users[0]'s session Session ended (logout,
	// revocation, refresh token reuse); its connections must close.
	EventSessionRevoked EventKind = "session_revoked"
)

// Event is something that happened in a conversation and that connected
// devices must hear about. Events are published only after what they
// describe is durably stored.
type Event struct {
	Kind         EventKind
	Conv         ConversationID
	Message      *Message
	Conversation *Conversation
	Users        []UserID
	ReadSeq      int64
	Session      SessionID
	Role         Role
	// Origin identifies the connection whose request caused the event (0
	// for none). That connection already has the answer (an ack), so the
	// hub does not echo the event back to it.
	Origin int64
}

// Bus carries events between the nodes' hubs. Implementations: membus (in
// process) and, later, natsbus.
//
// Delivery is at-most-once and best effort: a subscriber that misses an
// event (disconnect, overload) catches up from the Store, which is the
// system of record. Events of one conversation published by one node are
// delivered to each subscriber in publish order.
type Bus interface {
	// Publish sends e to every subscriber. It does not wait for them.
	Publish(ctx context.Context, e Event) error
	// Subscribe calls handle for every event published after it returns,
	// from one goroutine per subscription, in order. handle must not block
	// for long. The subscription ends when ctx is done or cancel is called;
	// cancel waits until handle is no longer running.
	Subscribe(ctx context.Context, handle func(Event)) (cancel func(), err error)
}
