package push

import (
	"sync"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// collapser lets at most one notification per (user, conversation) leave
// per interval. A message admitted opens a window of one interval; the
// messages that arrive during it are folded: counted, the newest kept.
// When the window ends, due hands the folded ones out as one summary,
// which opens the next window. A message arriving after a window ended
// but before due saw it is admitted with the folded count added.
type collapser struct {
	interval time.Duration

	mu      sync.Mutex
	windows map[windowKey]*window // guarded by mu
}

type windowKey struct {
	user chat.UserID
	conv chat.ConversationID
}

type window struct {
	end    time.Time
	folded int
	last   chat.Message // the newest folded message
}

// summary is the trailing notification of a window: count messages, the
// newest being last.
type summary struct {
	user  chat.UserID
	last  chat.Message
	count int
}

func newCollapser(interval time.Duration) *collapser {
	return &collapser{interval: interval, windows: map[windowKey]*window{}}
}

// admit reports whether a notification about m may go to user now, and
// how many messages it stands for.
func (c *collapser) admit(user chat.UserID, m chat.Message, now time.Time) (count int, send bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := windowKey{user, m.Conv}
	w, ok := c.windows[k]
	if ok && now.Before(w.end) {
		w.folded++
		if m.Seq >= w.last.Seq {
			w.last = m
		}
		return 0, false
	}
	count = 1
	if ok {
		count += w.folded
	}
	c.windows[k] = &window{end: now.Add(c.interval)}
	return count, true
}

// due returns the summaries of the windows that ended by now with folded
// messages, opening a new window for each, and forgets windows that ended
// with nothing folded.
func (c *collapser) due(now time.Time) []summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []summary
	for k, w := range c.windows {
		switch {
		case now.Before(w.end):
		case w.folded == 0:
			delete(c.windows, k)
		default:
			out = append(out, summary{user: k.user, last: w.last, count: w.folded})
			*w = window{end: now.Add(c.interval)}
		}
	}
	return out
}
