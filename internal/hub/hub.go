// Package hub is the per-node fan-out: it knows which users have live
// connections on this node and which conversations they are in, and hands
// each event from the bus to exactly those connections.
//
// Invariants: a message is encoded once per node and the same bytes are
// handed to every connection; Deliver never blocks, so one slow client
// cannot delay anyone else (the connection closes itself when its bounded
// queue overflows); a user removed from a conversation receives none of
// its later events, on any of their connections. The index is
// conversation → local users → connections, so a message costs work
// proportional to its online recipients on this node, not to the
// conversation's size.
package hub

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/protocol"
)

// Conn is a live client connection as the hub sees it.
type Conn interface {
	User() chat.UserID
	// ID is unique among all connections of the cluster (random 63 bits).
	ID() int64
	// Session is the login the connection authenticated as.
	Session() chat.SessionID
	// Revoke closes the connection because its session ended. It must
	// not block.
	Revoke()
	// Deliver queues frame for the client without blocking. frame is shared
	// with other connections and must not be modified.
	Deliver(frame []byte)
}

// Loader lists the conversations a user belongs to.
type Loader func(ctx context.Context, user chat.UserID) ([]chat.ConversationID, error)

// Hub is safe for concurrent use. Create it with New.
type Hub struct {
	load         Loader
	log          *slog.Logger
	typingExpiry time.Duration
	cursor       func(chat.Event) int64 // Options.Cursor

	mu    sync.RWMutex
	users map[chat.UserID]*userState
	convs map[chat.ConversationID]map[chat.UserID]struct{}
	conns int
}

type userState struct {
	conns   []Conn
	convs   map[chat.ConversationID]struct{}
	loaded  bool                             // a load succeeded: convs holds the user's conversations
	loading int                              // loads in progress (at most one)
	loadEnd chan struct{}                    // closed when the load in progress ends; nil when none is
	removed map[chat.ConversationID]struct{} // removals seen while loading
}

// Options configures a Hub. Zero values are documented per field.
type Options struct {
	Logger       *slog.Logger  // nil means discard
	TypingExpiry time.Duration // how long recipients show a "typing" without a repeat; zero means 6s
	// Cursor gives the sync cursor that frames of stored changes carry
	// (clients save it and resume from it): a position such that this
	// node has already handed every change at or below it to the hub.
	// Nil means the event's own position, right when events arrive in
	// position order (one node); a cluster node passes the lowest
	// watermark of the cluster's nodes (see app/cursor.go).
	Cursor func(e chat.Event) int64
}

// New returns an empty hub that uses load to learn a user's conversations
// when their first connection registers.
func New(load Loader, opts Options) *Hub {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.TypingExpiry == 0 {
		opts.TypingExpiry = 6 * time.Second
	}
	return &Hub{load: load, log: opts.Logger, typingExpiry: opts.TypingExpiry, cursor: opts.Cursor,
		users: make(map[chat.UserID]*userState), convs: make(map[chat.ConversationID]map[chat.UserID]struct{})}
}

// Register adds c; from its return on, c receives the events of its
// user's conversations. The caller must call the returned unregister
// exactly once when c closes.
//
// The user's first connection loads their conversations. A connection
// that registers while that load is in progress waits for it (or for ctx),
// so that no connection is ready before the hub knows what it must see: a
// client that syncs right after Register then misses no live event. When
// the load fails, a waiting connection loads the conversations itself.
// On an error c is not registered.
func (h *Hub) Register(ctx context.Context, c Conn) (unregister func(), err error) {
	u := c.User()
	h.mu.Lock()
	st := h.users[u]
	if st == nil {
		st = &userState{convs: make(map[chat.ConversationID]struct{})}
		h.users[u] = st
	}
	st.conns = append(st.conns, c)
	h.conns++
	unregister = func() { h.unregister(c) }
	for st.loading > 0 {
		end := st.loadEnd
		h.mu.Unlock()
		select {
		case <-end:
		case <-ctx.Done():
			unregister()
			return nil, ctx.Err()
		}
		h.mu.Lock()
	}
	if st.loaded {
		h.mu.Unlock()
		return unregister, nil
	}
	st.loading++
	st.loadEnd = make(chan struct{})
	h.mu.Unlock()
	ids, err := h.load(ctx, u)
	h.mu.Lock()
	st.loading--
	if err == nil {
		st.loaded = true
		for _, id := range ids {
			if _, gone := st.removed[id]; !gone {
				h.joinLocked(u, st, id)
			}
		}
	}
	st.removed = nil
	close(st.loadEnd)
	st.loadEnd = nil
	h.mu.Unlock()
	if err != nil {
		unregister()
		return nil, err
	}
	return unregister, nil
}

func (h *Hub) unregister(c Conn) {
	u := c.User()
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.users[u]
	if st == nil {
		return
	}
	i := slices.Index(st.conns, c)
	if i < 0 {
		return
	}
	st.conns = slices.Delete(st.conns, i, i+1)
	h.conns--
	if len(st.conns) == 0 && st.loading == 0 {
		for id := range st.convs {
			h.leaveLocked(u, st, id)
		}
		delete(h.users, u)
	}
}

// joinLocked records that local user u is in conv. h.mu must be held.
func (h *Hub) joinLocked(u chat.UserID, st *userState, conv chat.ConversationID) {
	st.convs[conv] = struct{}{}
	set := h.convs[conv]
	if set == nil {
		set = make(map[chat.UserID]struct{})
		h.convs[conv] = set
	}
	set[u] = struct{}{}
}

// leaveLocked records that local user u left conv. h.mu must be held.
func (h *Hub) leaveLocked(u chat.UserID, st *userState, conv chat.ConversationID) {
	delete(st.convs, conv)
	if set := h.convs[conv]; set != nil {
		delete(set, u)
		if len(set) == 0 {
			delete(h.convs, conv)
		}
	}
}

// Conns returns the number of registered connections.
func (h *Hub) Conns() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.conns
}

// Each calls f for every registered connection (e.g. to drain the node).
// f must not call back into the hub.
func (h *Hub) Each(f func(Conn)) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, st := range h.users {
		for _, c := range st.conns {
			f(c)
		}
	}
}

// ConnsIn returns the registered connections of the local users the hub
// knows as members of conv (those that Handle hands conv's messages to),
// and those of users whose conversations are still loading, who may be
// members: no Register of theirs has returned yet, but their connections
// already get frames, whose cursors a client may keep.
func (h *Hub) ConnsIn(conv chat.ConversationID) []Conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []Conn
	for u := range h.convs[conv] {
		out = append(out, h.users[u].conns...)
	}
	for u, st := range h.users {
		if _, member := h.convs[conv][u]; !member && st.loading > 0 {
			out = append(out, st.conns...)
		}
	}
	return out
}

// Handle fans e out to the local connections that must see it. It is the
// bus subscription's handler.
func (h *Hub) Handle(e chat.Event) {
	cursor := EventPos(e)
	if h.cursor != nil && cursor > 0 {
		cursor = h.cursor(e)
	}
	switch e.Kind {
	case chat.EventMessage:
		if e.Message != nil {
			h.toConv(e.Conv, protocol.AppendMessageFrame(make([]byte, 0, 256+len(e.Message.Text)), e.Message, cursor), e.Origin, 0)
		}
	case chat.EventMessageUpdated:
		if e.Message != nil {
			h.toConv(e.Conv, protocol.AppendMessageUpdatedFrame(make([]byte, 0, 256+len(e.Message.Text)), e.Message, cursor), e.Origin, 0)
		}
	case chat.EventMembersAdded:
		h.membersAdded(e, cursor)
	case chat.EventMemberRemoved:
		h.memberRemoved(e, cursor)
	case chat.EventRoleChanged:
		if m := e.Member; m != nil {
			h.toConv(e.Conv, protocol.Encode(protocol.RoleFrame{Type: protocol.TypeRoleChanged, Conv: e.Conv.String(), User: m.User.String(), Role: string(m.Role), Pos: m.Pos, Cursor: cursor}), 0, 0)
		}
	case chat.EventReceipt:
		if m := e.Member; m != nil {
			h.toConv(e.Conv, protocol.Encode(protocol.ReceiptFrame{Type: protocol.TypeReceipt, Conv: e.Conv.String(), User: m.User.String(),
				ReadSeq: m.ReadSeq, DeliveredSeq: m.DeliveredSeq, Pos: m.Pos, Cursor: cursor}), e.Origin, 0)
		}
	case chat.EventConversationUpdated:
		if e.Conversation != nil {
			h.toConv(e.Conv, protocol.Encode(protocol.ConversationUpdatedFrame{Type: protocol.TypeConversationUpdated, Conversation: protocol.FromConversation(*e.Conversation), Cursor: cursor}), 0, 0)
		}
	case chat.EventTyping:
		if len(e.Users) == 1 {
			state := "stop"
			if e.Typing {
				state = "start"
			}
			// The typist's own devices do not need to hear it.
			h.toConv(e.Conv, protocol.Encode(protocol.TypingFrame{Type: protocol.TypeTyping, Conv: e.Conv.String(), User: e.Users[0].String(),
				State: state, ExpiresMS: h.typingExpiry.Milliseconds()}), 0, e.Users[0])
		}
	case chat.EventSessionRevoked:
		if len(e.Users) == 1 {
			h.revoke(e.Users[0], e.Session)
		}
	case chat.EventProfile:
		h.handleProfile(e)
	case chat.EventSettings:
		h.handleSettings(e)
	}
}

// HandlePresence tells the local users who share a conversation with
// p.User about p. It is the presence watch's handler.
func (h *Hub) HandlePresence(p chat.PresenceState) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	convs, err := h.load(ctx, p.User)
	if err != nil {
		h.log.Warn("presence: cannot list conversations", "user", p.User, "err", err)
		return
	}
	frame := protocol.Encode(protocol.PresenceFrame{Type: protocol.TypePresence, Presence: protocol.FromPresence(p)})
	h.mu.RLock()
	defer h.mu.RUnlock()
	told := make(map[chat.UserID]bool)
	for _, conv := range convs {
		for u := range h.convs[conv] {
			if u == p.User || told[u] {
				continue
			}
			told[u] = true
			for _, c := range h.users[u].conns {
				c.Deliver(frame)
			}
		}
	}
}

// toConv delivers frame to every local connection of every member of
// conv, except the connection with id origin and the connections of user
// skip (when not 0).
func (h *Hub) toConv(conv chat.ConversationID, frame []byte, origin int64, skip chat.UserID) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for u := range h.convs[conv] {
		if u == skip {
			continue
		}
		for _, c := range h.users[u].conns {
			if origin == 0 || c.ID() != origin {
				c.Deliver(frame)
			}
		}
	}
}

func (h *Hub) toUsersLocked(users []chat.UserID, frame []byte) {
	for _, u := range users {
		if st := h.users[u]; st != nil {
			for _, c := range st.conns {
				c.Deliver(frame)
			}
		}
	}
}

// revoke closes the local connections of user's session.
func (h *Hub) revoke(user chat.UserID, session chat.SessionID) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if st := h.users[user]; st != nil {
		for _, c := range st.conns {
			if c.Session() == session {
				c.Revoke()
			}
		}
	}
}

func (h *Hub) membersAdded(e chat.Event, cursor int64) {
	// Existing members hear who joined; the new members get the conversation.
	h.toConv(e.Conv, protocol.Encode(protocol.MembersFrame{Type: protocol.TypeMemberAdded, Conv: e.Conv.String(), Users: ids(e.Users), Cursor: cursor}), 0, 0)
	var convFrame []byte
	if e.Conversation != nil {
		c := e.Conversation
		convFrame = protocol.Encode(protocol.ConversationFrame{Type: protocol.TypeConversation, Conversation: protocol.Conversation{
			ID: c.ID.String(), Kind: string(c.Kind), Title: c.Title, CreatedBy: c.CreatedBy.String(),
			CreatedAt: c.CreatedAt.UTC(), LastSeq: c.LastSeq, Members: []protocol.Member{},
		}, Cursor: cursor})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, u := range e.Users {
		st := h.users[u]
		if st == nil {
			continue
		}
		_, already := st.convs[e.Conv]
		delete(st.removed, e.Conv)
		h.joinLocked(u, st, e.Conv)
		if !already && convFrame != nil {
			for _, c := range st.conns {
				c.Deliver(convFrame)
			}
		}
	}
}

func (h *Hub) memberRemoved(e chat.Event, cursor int64) {
	frame := protocol.Encode(protocol.MembersFrame{Type: protocol.TypeMemberGone, Conv: e.Conv.String(), Users: ids(e.Users), Cursor: cursor})
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, u := range e.Users {
		if st := h.users[u]; st != nil {
			h.leaveLocked(u, st, e.Conv)
			if st.loading > 0 {
				if st.removed == nil {
					st.removed = make(map[chat.ConversationID]struct{})
				}
				st.removed[e.Conv] = struct{}{}
			}
		}
	}
	// The removed users hear it once, and then nothing more of conv.
	h.toUsersLocked(e.Users, frame)
	for u := range h.convs[e.Conv] {
		for _, c := range h.users[u].conns {
			c.Deliver(frame)
		}
	}
}

// EventPos is the change position of a stored change's event (0 for
// ephemeral events, and changes that took none). Options.Cursor is only
// asked about events with a position.
func EventPos(e chat.Event) int64 {
	switch {
	case e.Pos > 0:
		return e.Pos
	case e.Message != nil:
		return e.Message.Pos
	case e.Member != nil:
		return e.Member.Pos
	case e.Conversation != nil:
		return e.Conversation.Pos
	}
	return 0
}

func ids(users []chat.UserID) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.String()
	}
	return out
}
