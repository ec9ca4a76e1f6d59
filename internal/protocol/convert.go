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
	return Message{
		ID: m.ID.String(), Conv: m.Conv.String(), Seq: m.Seq, Sender: m.Sender.String(),
		ClientID: m.ClientID, Text: m.Text, SentAt: m.SentAt.UTC(),
	}
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
	return Member{User: m.User.String(), Username: names[m.User], Role: string(m.Role), JoinedAt: m.JoinedAt.UTC(), ReadSeq: m.ReadSeq}
}

// FromSummary converts a conversation as its member sees it.
func FromSummary(s chat.ConversationSummary, names map[chat.UserID]string) Conversation {
	c := Conversation{
		ID: s.ID.String(), Kind: string(s.Kind), Title: s.Title, CreatedBy: s.CreatedBy.String(),
		CreatedAt: s.CreatedAt.UTC(), LastSeq: s.LastSeq, ReadSeq: s.ReadSeq, Unread: s.Unread,
		Members: make([]Member, len(s.Members)),
	}
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
