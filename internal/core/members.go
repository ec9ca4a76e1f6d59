package core

import (
	"context"
	"sync"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// memberCache remembers recent positive membership checks for the send
// path, so that a busy sender does not cost a store read per message.
// An entry is forgotten when the member is removed (on this node at once,
// on others when the bus event arrives) and in any case after ttl, which
// bounds how long a missed event can matter.
type memberCache struct {
	store chat.Store
	ttl   time.Duration
	now   func() time.Time
	max   int

	mu      sync.Mutex
	entries map[memberKey]time.Time // guarded by mu: when the entry expires
}

type memberKey struct {
	conv chat.ConversationID
	user chat.UserID
}

func newMemberCache(store chat.Store, now func() time.Time) *memberCache {
	return &memberCache{store: store, ttl: 10 * time.Second, now: now, max: 100_000, entries: make(map[memberKey]time.Time)}
}

// check returns nil when user is a member of conv, else not_found (or the
// store's error).
func (c *memberCache) check(ctx context.Context, conv chat.ConversationID, user chat.UserID) error {
	k := memberKey{conv, user}
	now := c.now()
	c.mu.Lock()
	exp, ok := c.entries[k]
	c.mu.Unlock()
	if ok && now.Before(exp) {
		return nil
	}
	_, err := c.store.GetMember(ctx, conv, user)
	if chat.IsCode(err, chat.CodeNotFound) {
		return errNoConversation()
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	if len(c.entries) >= c.max {
		clear(c.entries) // rare; the next checks refill it
	}
	c.entries[k] = now.Add(c.ttl)
	c.mu.Unlock()
	return nil
}

// forget drops the entries of users in conv.
func (c *memberCache) forget(conv chat.ConversationID, users []chat.UserID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range users {
		delete(c.entries, memberKey{conv, u})
	}
}
