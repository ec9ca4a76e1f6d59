package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/natter-chat/natter/internal/natsbus"
)

// cursorClock gives a cluster node's sync cursor, the change position that
// live frames carry for clients to resume from: every change at or below
// it, whichever node made it, has reached this node's hub already (or is
// held by the sequencer, whose Floor the hub also applies).
//
// It is the lowest watermark of the cluster's live nodes. Each node
// publishes, every watermarkInterval and on the connection that carries
// its events, a watermark W: every change it committed at or below W has
// been published before (see core.Service.Settled). NATS keeps the order
// of one connection's messages, and natsbus reports a skip in a node's
// sequence before handling the message that reveals it, so once this
// node's subscription has handed on a node's watermark, it has handed on
// every event of that node at or below it. No assumption about how long
// events take remains: an event that is late is waited for, however late.
//
// The live nodes are those of the node id lease bucket, and those whose
// watermarks arrive; each is known by its lease holder (an incarnation of
// a node id). The rules:
//   - A node that appears (its lease or its first watermark) holds the
//     cursor where it stands: it enters at the current cursor (at least
//     its watermark), so the cursor never goes down. A node publishes a
//     watermark before it starts serving, so none of its changes can lie
//     below the cursor when it enters.
//   - A node that goes silent (cut off from NATS, or dead) holds the
//     cursor at its last watermark for as long as its lease may live:
//     expiry after its last lease refresh or watermark. A node that cannot
//     refresh its lease stops itself a sixth of the TTL before that.
//   - A node gone without a goodbye (silent for expiry, its lease taken
//     by another holder, or released without a goodbye within grace) may
//     have committed changes that never reached this node: due reports it,
//     the caller tells this node's clients to reconnect (their cursors are
//     at most its last watermark, so their catch-up from the store includes
//     those changes), and only then drops it.
//   - A node that stops cleanly publishes a final watermark after its last
//     event; it is dropped at once, and no client reconnects.
//
// Separately, freeze holds the cursor while this node itself may be
// missing events (its NATS connection dropped, NATS dropped events for
// it), until thaw after its clients were told to reconnect.
type cursorClock struct {
	now func() time.Time
	log *slog.Logger

	// Set before run, by joinCluster:
	interval  time.Duration                   // between two of this node's watermarks
	publish   func(ctx context.Context) error // publishes this node's watermark
	connected func() (up bool, reconnects uint64)
	reconnect func() // tells this node's clients to reconnect and catch up

	mu     sync.Mutex
	self   string        // this node's lease holder: never gone
	expiry time.Duration // a node heard of neither way this long is gone
	grace  time.Duration // how long a released lease's goodbye is awaited
	nodes  map[string]*nodeMark
	// left holds the holders that said goodbye (a final watermark), with
	// when: a lease refresh of theirs that comes later (sent before their
	// lease was released, or watched late) must not bring them back, or
	// their release would look like a death.
	left     map[string]time.Time
	frozen   int64 // while isFrozen, the cursor to give until thaw
	isFrozen bool
}

// nodeMark is what this node knows of one incarnation of a node.
type nodeMark struct {
	node     int64
	pos      int64     // the cursor may not pass it: the node's watermark, or the cursor when it appeared
	leased   bool      // its lease was seen
	seen     time.Time // its last lease refresh or watermark
	released time.Time // when its lease was released without a goodbye yet; zero otherwise
	replaced bool      // another holder took its node id
	leaving  bool      // reported by due, to be dropped
}

// watermarkInterval is how often a cluster node publishes its watermark.
const watermarkInterval = 100 * time.Millisecond

func newCursorClock(expiry time.Duration, now func() time.Time, log *slog.Logger) *cursorClock {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &cursorClock{now: now, log: log, interval: watermarkInterval, nodes: make(map[string]*nodeMark), left: make(map[string]time.Time)}
	c.setExpiry(expiry)
	return c
}

// setSelf names this node's lease holder.
func (c *cursorClock) setSelf(holder string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.self = holder
}

// setExpiry sets how long a silent node is waited for.
func (c *cursorClock) setExpiry(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expiry = d
	c.grace = min(d, 5*time.Second)
}

// cursor returns the sync cursor, or 0 when there is none yet (clients
// then keep the cursor they have).
func (c *cursorClock) cursor() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isFrozen {
		return c.frozen
	}
	return c.lowestLocked()
}

func (c *cursorClock) lowestLocked() int64 {
	first := true
	var pos int64
	for _, n := range c.nodes {
		if first || n.pos < pos {
			pos, first = n.pos, false
		}
	}
	return pos
}

// freeze holds the cursor where it is until thaw.
func (c *cursorClock) freeze() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.isFrozen {
		// 0 (no cursor yet: clients keep theirs) stays 0, never 1, which
		// would send clients back to the beginning.
		c.frozen, c.isFrozen = c.lowestLocked(), true
	}
}

// thaw lets the cursor follow the watermarks again.
func (c *cursorClock) thaw() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frozen, c.isFrozen = 0, false
}

// mark takes a watermark that this node's subscription handed on, in
// order with the events.
func (c *cursorClock) mark(w natsbus.Watermark) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[w.Holder]
	if w.Final {
		// Everything it committed has been handed on: nothing to wait for.
		delete(c.nodes, w.Holder)
		c.left[w.Holder] = c.now()
		return
	}
	if _, ok := c.left[w.Holder]; ok {
		return
	}
	if n == nil {
		n = c.addLocked(w.Holder, w.Node)
	}
	n.pos = max(n.pos, w.Pos)
	n.heard()
	n.seen = c.now()
}

// lease takes a change of the lease bucket.
func (c *cursorClock) lease(ch natsbus.NodeChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if ch.Released {
		for _, n := range c.nodes {
			if n.node == ch.Node && n.leased && n.released.IsZero() {
				n.released = now
			}
		}
		return
	}
	for holder, at := range c.left {
		if now.Sub(at) > 2*c.expiry {
			delete(c.left, holder) // its lease is long gone by now
		}
	}
	if _, ok := c.left[ch.Holder]; ok {
		return // a late refresh of a node that said goodbye
	}
	n := c.nodes[ch.Holder]
	if n == nil {
		n = c.addLocked(ch.Holder, ch.Node)
	}
	n.leased, n.released, n.replaced, n.seen = true, time.Time{}, false, now
	n.heard()
	// The key names one holder: any other holder of the id lost it.
	for holder, o := range c.nodes {
		if o.node == ch.Node && holder != ch.Holder {
			o.replaced = true
		}
	}
}

// heard notes that a node that was about to be dropped spoke again: it
// holds the cursor again, unless another holder took its id.
func (n *nodeMark) heard() {
	if !n.replaced {
		n.leaving = false
	}
}

// addLocked starts following a node at the current cursor.
func (c *cursorClock) addLocked(holder string, node int64) *nodeMark {
	n := &nodeMark{node: node, pos: c.lowestLocked(), seen: c.now()}
	c.nodes[holder] = n
	return n
}

// due returns the nodes that are gone without a goodbye. They keep
// holding the cursor until drop: tell the clients to reconnect first.
func (c *cursorClock) due() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var gone []string
	for holder, n := range c.nodes {
		if holder == c.self || n.leaving {
			continue
		}
		if n.replaced || now.Sub(n.seen) >= c.expiry || (!n.released.IsZero() && now.Sub(n.released) >= c.grace) {
			n.leaving = true
			gone = append(gone, holder)
		}
	}
	return gone
}

// drop stops following the nodes due returned, unless one of them spoke
// again meanwhile.
func (c *cursorClock) drop(holders []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range holders {
		if n := c.nodes[h]; n != nil && n.leaving {
			delete(c.nodes, h)
		}
	}
}

// restart restarts the silence of every node: while this node's own
// connection is down, nobody is heard, which says nothing about them.
func (c *cursorClock) restart() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for _, n := range c.nodes {
		n.seen = now
		if !n.released.IsZero() {
			n.released = now
		}
	}
}
