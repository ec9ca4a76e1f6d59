package core

import (
	"sync"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// typingThrottle forwards a user's "started typing" in a conversation at
// most once per interval (clients repeat it while the user types) and a
// "stopped" only after a forwarded start. Recipients expire a start by
// themselves after TypingExpiry, so a lost "stopped" cannot stick.
type typingThrottle struct {
	interval time.Duration
	mu       sync.Mutex
	last     map[typingKey]time.Time // guarded by mu: when a start was last forwarded
}

type typingKey struct {
	conv chat.ConversationID
	user chat.UserID
}

const maxTypingEntries = 100_000

func newTypingThrottle(interval time.Duration) *typingThrottle {
	return &typingThrottle{interval: interval, last: make(map[typingKey]time.Time)}
}

// allow reports whether the event should be forwarded.
func (t *typingThrottle) allow(conv chat.ConversationID, user chat.UserID, typing bool, now time.Time) bool {
	k := typingKey{conv, user}
	t.mu.Lock()
	defer t.mu.Unlock()
	last, started := t.last[k]
	if !typing {
		delete(t.last, k)
		return started
	}
	if started && now.Sub(last) < t.interval {
		return false
	}
	if len(t.last) >= maxTypingEntries {
		for k, at := range t.last { // drop the stale ones; rare
			if now.Sub(at) >= t.interval {
				delete(t.last, k)
			}
		}
	}
	t.last[k] = now
	return true
}

// Limiter is a rate limit: whether key may act now and, if not, how long
// to wait. Package ratelimit provides one.
type Limiter interface {
	Allow(key string) (ok bool, retryAfter time.Duration)
}

type unlimited struct{}

func (unlimited) Allow(string) (bool, time.Duration) { return true, 0 }
