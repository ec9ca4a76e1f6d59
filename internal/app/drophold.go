package app

import (
	"sync"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/hub"
)

// dropHold gives an embedded node's sync cursor, the change position that
// live frames carry for clients to resume from. The in-process bus hands
// events to the hub in position order and without loss, so a frame's
// cursor is its own event's position, except after the bus dropped an
// event (its subscriber's queue stayed full for the publisher's whole
// context): every frame after it would carry a cursor past a change that
// no client was sent, and a client resuming from such a cursor would
// never get that change. The rules:
//   - The bus reports a drop (membus.BusOptions.OnDrop) from Publish,
//     before any event published later can reach the hub. From then on
//     frames carry at most the dropped event's position - 1, or, for an
//     event without a position, the highest cursor given so far (events
//     are published in position order, so its change, if it has one, lies
//     above every change handed on before it). Further drops only lower
//     the hold; a hold at 0 makes frames carry no cursor, and clients keep
//     the one they have, which no frame moved past the dropped change.
//   - The node then tells every connection to reconnect (wsapi.Reconnect)
//     and catch up from its cursor, which is below the dropped change.
//     Each connection is tracked before it registers with the hub, and its
//     close is queued behind the reconnect frame, ahead of any frame
//     delivered later; connections tracked after that registered after the
//     drop and sync from the store, which holds the dropped change.
//   - Only once every connection was told does the hold lift (thaw), and
//     only if no drop came since the reconnect started: a later drop keeps
//     the hold until its own reconnect.
//
// Like the cluster's freeze (see cursorClock), the hold trades a larger
// catch-up for never letting a cursor pass a change a client has not got.
type dropHold struct {
	// wake (1-buffered) tells the watcher that a drop awaits its reconnect.
	wake chan struct{}

	mu       sync.Mutex
	given    int64  // the highest cursor given to a frame so far
	drops    uint64 // drops reported so far
	frozen   int64  // while isFrozen, the most a frame's cursor may be
	isFrozen bool
}

func newDropHold() *dropHold { return &dropHold{wake: make(chan struct{}, 1)} }

// cursor is the hub's Options.Cursor: the event's own position, unless a
// drop holds it lower. The hub asks only about events with a position.
func (h *dropHold) cursor(e chat.Event) int64 {
	pos := hub.EventPos(e)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.isFrozen {
		pos = min(pos, h.frozen)
	}
	h.given = max(h.given, pos)
	return pos
}

// drop is the bus's OnDrop: it holds the cursor below e at once and wakes
// the watcher. It does not block.
func (h *dropHold) drop(e chat.Event) {
	h.mu.Lock()
	at := h.given
	if pos := hub.EventPos(e); pos > 0 {
		at = pos - 1
	}
	if !h.isFrozen || at < h.frozen {
		h.frozen = at
	}
	h.isFrozen = true
	h.drops++
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default: // the watcher has a wake-up pending, which covers this drop
	}
}

// dropped returns how many drops were reported so far; pass it to thaw.
func (h *dropHold) dropped() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.drops
}

// thaw lifts the hold, unless a drop came after dropped returned seen:
// call it once every client connected before that call has been told to
// reconnect. It reports whether the hold was lifted.
func (h *dropHold) thaw(seen uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.drops != seen {
		return false
	}
	h.frozen, h.isFrozen = 0, false
	// A wake-up still pending is for a drop counted in seen, whose
	// reconnect went out: no second one.
	select {
	case <-h.wake:
	default:
	}
	return true
}
