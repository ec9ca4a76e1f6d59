package core

import (
	"context"
	"sync"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// directCacheTTL bounds how long a cached block check may outlive a
// change that a node did not hear about on the bus.
const directCacheTTL = 10 * time.Second

// directCache remembers, per conversation and sender, whether the
// conversation is direct and whether the other member blocked the sender,
// so that the send path does not read the store for every message. The
// whole cache is dropped when a block changes (blocks change rarely), a
// conversation's entries when a member leaves it, and any entry after
// directCacheTTL.
type directCache struct {
	people chat.PeopleStore
	now    func() time.Time
	max    int

	mu      sync.Mutex
	gen     uint64 // guarded by mu: bumped by invalidate and forget
	size    int    // guarded by mu: the number of entries
	entries map[chat.ConversationID]map[chat.UserID]directEntry
}

type directEntry struct {
	peer chat.DirectPeer
	exp  time.Time
}

func newDirectCache(people chat.PeopleStore, now func() time.Time) *directCache {
	return &directCache{people: people, now: now, max: 100_000, entries: make(map[chat.ConversationID]map[chat.UserID]directEntry)}
}

// check returns blocked when conv is direct and its other member blocked
// sender, forbidden when the other member deleted their account, and nil
// otherwise (for every group).
func (c *directCache) check(ctx context.Context, conv chat.ConversationID, sender chat.UserID) error {
	peer, err := c.get(ctx, conv, sender)
	switch {
	case err != nil:
		return err
	case !peer.Direct:
		return nil
	case peer.Peer == 0:
		return chat.Errorf(chat.CodeForbidden, "the other member deleted their account")
	case peer.Blocked:
		return errBlocked()
	}
	return nil
}

func (c *directCache) get(ctx context.Context, conv chat.ConversationID, sender chat.UserID) (chat.DirectPeer, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[conv][sender]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Before(e.exp) {
		return e.peer, nil
	}
	peer, err := c.people.GetDirectPeer(ctx, conv, sender)
	if chat.IsCode(err, chat.CodeNotFound) {
		return chat.DirectPeer{}, errNoConversation()
	}
	if err != nil {
		return chat.DirectPeer{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return peer, nil // a block changed meanwhile: peer may be stale, so do not keep it
	}
	if c.size >= c.max {
		clear(c.entries) // rare; the next checks refill it
		c.size = 0
	}
	m := c.entries[conv]
	if m == nil {
		m = make(map[chat.UserID]directEntry)
		c.entries[conv] = m
	}
	if _, had := m[sender]; !had {
		c.size++
	}
	m[sender] = directEntry{peer: peer, exp: now.Add(directCacheTTL)}
	return peer, nil
}

// invalidate forgets every entry, and any being read meanwhile.
func (c *directCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
	c.size = 0
}

// forget drops conv's entries, and any being read meanwhile.
func (c *directCache) forget(conv chat.ConversationID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.size -= len(c.entries[conv])
	delete(c.entries, conv)
}
