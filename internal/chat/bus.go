package chat

import "context"

// EventKind says what an Event carries.
type EventKind string

const (
	// EventMessage: a new message (Message is set).
	EventMessage EventKind = "message"
	// EventMessageUpdated: a message was edited, deleted or reacted to
	// (Message is its new state).
	EventMessageUpdated EventKind = "message_updated"
	// EventMembersAdded: Users joined Conv (Conversation is set). A
	// conversation's creation is announced this way too.
	EventMembersAdded EventKind = "members_added"
	// EventMemberRemoved: Users left or were removed from Conv.
	EventMemberRemoved EventKind = "member_removed"
	// EventRoleChanged: Member's role changed.
	EventRoleChanged EventKind = "role_changed"
	// EventReceipt: Member's read or delivered watermark moved.
	EventReceipt EventKind = "receipt"
	// EventConversationUpdated: Conversation's own fields (title) changed.
	EventConversationUpdated EventKind = "conversation_updated"
	// EventTyping: Users[0] started or stopped (Typing) typing in Conv.
	// Ephemeral: never stored.
	EventTyping EventKind = "typing"
	// EventSessionRevoked: Users[0]'s session Session ended (logout,
	// revocation, refresh token reuse); its connections must close.
	EventSessionRevoked EventKind = "session_revoked"
)

// Event is something that happened in a conversation and that connected
// devices must hear about. Events about stored state are published only
// after that state is durably stored; Pos fields of what they carry are
// the change positions of the sync stream (see Store.ListChanges).
type Event struct {
	Kind         EventKind
	Conv         ConversationID
	Message      *Message
	Conversation *Conversation
	Member       *Member
	Profile      *Profile       // for EventProfile
	Setting      *SettingChange // for EventSettings
	Users        []UserID
	Session      SessionID
	Typing       bool // for EventTyping: true when the user started typing
	Pos          int64
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

// LossReporter is implemented by a Bus whose subscribers can be told that
// an event of this publisher will never come: ReportLoss makes them treat
// the next message from it as following a lost one (clients reconnect and
// catch up from the store). The core calls it when a write's commit has an
// unknown outcome (ErrCommitUncertain): the change may be stored, but its
// event was not published.
type LossReporter interface {
	ReportLoss()
}
