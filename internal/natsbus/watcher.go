package natsbus

import (
	"context"
	"sync"

	"github.com/natter-chat/natter/internal/chat"
)

// watcher is one Watch: a bounded queue, then the latest state of each
// user whose announcements did not fit, drained by the watcher's own
// goroutine so that no one waits for a slow handler. While overflow is not
// empty every announcement goes there, so each user's announcements are
// delivered in order.
type watcher struct {
	size     int
	wake     chan struct{} // capacity 1: a pending wake-up suffices
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{} // closed when the goroutine has returned

	mu       sync.Mutex // guards queue, overflow and order
	queue    []chat.PresenceState
	overflow map[chat.UserID]chat.PresenceState
	order    []chat.UserID // the keys of overflow, in the order they entered
}

func newWatcher(size int) *watcher {
	return &watcher{size: size, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		overflow: make(map[chat.UserID]chat.PresenceState)}
}

// push queues st without blocking.
func (w *watcher) push(st chat.PresenceState) {
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

func (w *watcher) halt() { w.stopOnce.Do(func() { close(w.stop) }) }

// run calls handle with the queued states until halted or ctx is done.
func (w *watcher) run(ctx context.Context, handle func(chat.PresenceState)) {
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
