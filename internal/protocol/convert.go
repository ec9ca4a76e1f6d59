package protocol

import (
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// TimeLayout is how times appear on the wire: RFC 3339 in UTC, with the
// fraction of a second (milliseconds at most) and its trailing zeros
// omitted, exactly as encoding/json writes a time.Time.
const TimeLayout = time.RFC3339Nano

// FromUser converts a domain user.
func FromUser(u chat.User) User {
	return User{ID: u.ID.String(), Username: u.Username, CreatedAt: u.CreatedAt.UTC()}
}

// FromMessage converts a domain message.
func FromMessage(m chat.Message) Message {
	out := Message{
		ID: m.ID.String(), Conv: m.Conv.String(), Seq: m.Seq, Sender: m.Sender.String(),
		ClientID: m.ClientID, Text: m.Text, SentAt: m.SentAt.UTC(), Pos: m.Pos,
		Deleted: !m.DeletedAt.IsZero(),
	}
	if m.ReplyTo != 0 {
		out.ReplyTo = m.ReplyTo.String()
	}
	for _, u := range m.Mentions {
		out.Mentions = append(out.Mentions, u.String())
	}
	if !m.EditedAt.IsZero() {
		t := m.EditedAt.UTC()
		out.EditedAt = &t
	}
	if !m.DeletedAt.IsZero() {
		t := m.DeletedAt.UTC()
		out.DeletedAt = &t
	}
	for _, r := range m.Reactions {
		users := make([]string, len(r.Users))
		for i, u := range r.Users {
			users[i] = u.String()
		}
		out.Reactions = append(out.Reactions, Reaction{Emoji: r.Emoji, Users: users, Count: len(users)})
	}
	out.Attachments = fromAttachments(m.Attachments)
	return out
}

// FromChange converts one sync stream entry.
func FromChange(c chat.Change) Change {
	out := Change{Pos: c.Pos, Kind: string(c.Kind)}
	switch {
	case c.Message != nil:
		m := FromMessage(*c.Message)
		out.Message = &m
	case c.Member != nil:
		m := FromMember(*c.Member, nil)
		out.Member = &m
	case c.Conversation != nil:
		conv := FromConversation(*c.Conversation)
		out.Conversation = &conv
	}
	return out
}

// FromChanges converts a page of the sync stream.
func FromChanges(cs chat.Changes) ChangesResponse {
	out := ChangesResponse{Changes: make([]Change, len(cs.Changes)), Cursor: cs.Cursor, HasMore: cs.HasMore}
	for i, c := range cs.Changes {
		out.Changes[i] = FromChange(c)
	}
	return out
}

// FromConversation converts a conversation's own fields (no members and
// no per-caller state).
func FromConversation(c chat.Conversation) Conversation {
	return Conversation{
		ID: c.ID.String(), Kind: string(c.Kind), Title: c.Title, CreatedBy: c.CreatedBy.String(),
		CreatedAt: c.CreatedAt.UTC(), LastSeq: c.LastSeq, Pos: c.Pos, Members: []Member{},
	}
}

// FromPresence converts one user's presence.
func FromPresence(p chat.PresenceState) Presence {
	out := Presence{User: p.User.String(), Status: string(p.Status)}
	if p.Status != chat.StatusOnline && !p.LastSeen.IsZero() {
		t := p.LastSeen.UTC().Truncate(time.Millisecond)
		out.LastSeen = &t
	}
	return out
}

// FromMessages converts a slice of domain messages; never returns nil.
func FromMessages(ms []chat.Message) []Message {
	out := make([]Message, len(ms))
	for i, m := range ms {
		out[i] = FromMessage(m)
	}
	return out
}

// FromMember converts a domain member; names maps user ids to usernames
// and may be nil.
func FromMember(m chat.Member, names map[chat.UserID]string) Member {
	return Member{
		Conv: m.Conv.String(), User: m.User.String(), Username: names[m.User], Role: string(m.Role),
		JoinedAt: m.JoinedAt.UTC(), ReadSeq: m.ReadSeq, DeliveredSeq: m.DeliveredSeq, Pos: m.Pos,
	}
}

// FromSummary converts a conversation as its member sees it.
func FromSummary(s chat.ConversationSummary, names map[chat.UserID]string) Conversation {
	c := FromConversation(s.Conversation)
	c.ReadSeq, c.Unread = s.ReadSeq, s.Unread
	c.Members = make([]Member, len(s.Members))
	for i, m := range s.Members {
		c.Members[i] = FromMember(m, names)
	}
	if s.LastMessage != nil {
		m := FromMessage(*s.LastMessage)
		c.LastMessage = &m
	}
	return c
}

// FromSession converts a session; current marks the caller's own.
func FromSession(s chat.Session, current bool) Session {
	return Session{ID: s.ID.String(), Device: s.Device, CreatedAt: s.CreatedAt.UTC(), LastUsedAt: s.LastUsedAt.UTC(), ExpiresAt: s.ExpiresAt.UTC(), Current: current}
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, TimeLayout)
	return append(dst, '"')
}
