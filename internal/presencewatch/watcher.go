// Package presencewatch is the delivery queue behind chat.Presence.Watch,
// shared by the in-process and the NATS implementations: announcements are
// pushed without ever blocking the presence machinery, and a handler that
// falls behind sees only the latest state of each user whose state changed
// meanwhile.
//
// Invariants: Push never blocks; the queue holds at most Size states plus
// one state per user; each user's announcements reach the handler in the
// order they were pushed; the handler runs on Run's goroutine only.
package presencewatch

import (
	"context"
	"sync"

	"github.com/natter-chat/natter/internal/chat"
)

// Watcher is one Watch: a bounded queue, then the latest state of each
// user whose announcements did not fit, drained by Run. While the overflow
// is not empty every announcement goes there, so each user's
// announcements are delivered in order.
type Watcher struct {
	size     int
	wake     chan struct{} // capacity 1: a pending wake-up suffices
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{} // closed when Run has returned

	mu       sync.Mutex // guards queue, overflow and order
	queue    []chat.PresenceState
	overflow map[chat.UserID]chat.PresenceState
	order    []chat.UserID // the keys of overflow, in the order they entered
}

// New returns a Watcher whose queue holds size states before it keeps
// only the latest per user.
func New(size int) *Watcher {
	return &Watcher{size: size, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		overflow: make(map[chat.UserID]chat.PresenceState)}
}

// Push queues st without blocking.
func (w *Watcher) Push(st chat.PresenceState) {
	w.mu.Lock()
	if len(w.order) == 0 && len(w.queue) < w.size {
		w.queue = append(w.queue, st)
	} else {
		if _, queued := w.overflow[st.User]; !queued {
			w.order = append(w.order, st.User)
		}
		w.overflow[st.User] = st
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Halt makes Run return (before its next handler call); it may be called
// more than once.
func (w *Watcher) Halt() { w.stopOnce.Do(func() { close(w.stop) }) }

// Done is closed once Run has returned.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Run calls handle with the queued states until halted or ctx is done.
// Call it once.
func (w *Watcher) Run(ctx context.Context, handle func(chat.PresenceState)) {
	defer close(w.done)
	var batch []chat.PresenceState
	for {
		select {
		case <-w.wake:
		case <-w.stop:
			return
		case <-ctx.Done():
			return
		}
		w.mu.Lock()
		batch = append(batch[:0], w.queue...)
		for _, id := range w.order {
			batch = append(batch, w.overflow[id])
		}
		w.queue, w.order = w.queue[:0], w.order[:0]
		clear(w.overflow)
		w.mu.Unlock()
		for _, st := range batch {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			default:
			}
			handle(st)
		}
	}
}
