package chattest

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// IDs is a chat.IDGenerator for tests: 1, 2, 3, ... Safe for concurrent use.
type IDs struct{ n atomic.Int64 }

var _ chat.IDGenerator = (*IDs)(nil)

// NewIDs returns a counter whose first id is 1.
func NewIDs() *IDs { return new(IDs) }

// NextID returns the next id.
func (g *IDs) NextID() int64 { return g.n.Add(1) }

// At returns a fixed instant, 2025-01-01 00:00:00 UTC, plus offset, truncated
// to whole milliseconds (the resolution stores are required to keep).
func At(offset time.Duration) time.Time {
	return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(offset).Truncate(time.Millisecond)
}

// MustCreateUser stores a user named name, with a fresh id from ids and the
// password hash "hash:"+name, and returns it.
func MustCreateUser(t testing.TB, s chat.Store, ids chat.IDGenerator, name string) chat.User {
	t.Helper()
	u := chat.User{ID: chat.UserID(ids.NextID()), Username: name, CreatedAt: At(0)}
	if err := s.CreateUser(t.Context(), u, "hash:"+name); err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

// MustCreateGroup stores a group created at At(0) by owner, with owner as
// RoleOwner and others as RoleMember, all joined at At(0), and returns it.
func MustCreateGroup(t testing.TB, s chat.Store, ids chat.IDGenerator, owner chat.UserID, others ...chat.UserID) chat.Conversation {
	t.Helper()
	c := chat.Conversation{ID: chat.ConversationID(ids.NextID()), Kind: chat.KindGroup, Title: "group", CreatedBy: owner, CreatedAt: At(0)}
	members := []chat.Member{{User: owner, Role: chat.RoleOwner, JoinedAt: At(0)}}
	for _, u := range others {
		members = append(members, chat.Member{User: u, Role: chat.RoleMember, JoinedAt: At(0)})
	}
	c, _, err := s.CreateConversation(t.Context(), c, members)
	if err != nil {
		t.Fatalf("CreateConversation(group): %v", err)
	}
	return c
}

// MustAppend stores one message from sender in conv, with a fresh id and
// client id, sent at sentAt, and returns it.
func MustAppend(t testing.TB, s chat.Store, ids chat.IDGenerator, conv chat.ConversationID, sender chat.UserID, text string, sentAt time.Time) chat.Message {
	t.Helper()
	id := ids.NextID()
	d := chat.Draft{ID: chat.MessageID(id), Conv: conv, Sender: sender, ClientID: "c" + chat.MessageID(id).String(), Text: text, SentAt: sentAt}
	res, err := s.AppendMessages(t.Context(), []chat.Draft{d})
	if err != nil {
		t.Fatalf("AppendMessages: %v", err)
	}
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("AppendMessages: results %+v, want one without error", res)
	}
	return res[0].Message
}
